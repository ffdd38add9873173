//! The project's own CNI plugins.
//!
//! Each binary in `src/bin/` is a thin wrapper that hands one [`cni::Plugin`]
//! implementation to [`cni::run`]; everything else lives in library modules so
//! it can be unit tested and shared (ptp and bridge both need veths, IPAM
//! delegation and masquerading).

pub mod attach;
pub mod bridge;
pub mod cni;
pub mod ipam;
pub mod ipnet;
pub mod iptables;
pub mod loopback;
pub mod netlink;
pub mod netns;
pub mod ptp;
pub mod sysctl;
pub mod types;
pub mod veth;
