//! The project's own CNI plugins.
//!
//! Each binary in `src/bin/` is a thin wrapper that hands one [`cni::Plugin`]
//! implementation to [`cni::run`]; everything else lives in library modules so
//! it can be unit tested and shared (ptp and bridge both need veths, IPAM
//! delegation and masquerading).
//!
//! Binaries: `host-local` (IPAM), `loopback`, `ptp`, `bridge`, `portmap`
//! (the `portMappings` capability, in one nftables table per attachment). ptp and bridge
//! run the IPAM plugin named by `ipam.type` from the CNI_PATH directories, so
//! either this crate's `host-local` or the reference one works. Results,
//! error codes, lease files and iptables chains follow the reference
//! containernetworking-plugins (1.1.1) so the two can replace each other on
//! a live host; error objects also carry `cniVersion`, as the spec asks.

pub mod attach;
pub mod bridge;
pub mod cni;
pub mod ipam;
pub mod ipnet;
pub mod iptables;
pub mod loopback;
pub mod netlink;
pub mod netns;
pub mod nft_forward;
pub mod portmap;
pub mod ptp;
pub mod spoofcheck;
pub mod sysctl;
pub mod tool;
pub mod types;
pub mod veth;
