//! What every stage1 flavor shares: loading the pod directory, the app's
//! credentials and environment, path resolution inside an app rootfs, mount
//! helpers, volumes, /etc files and the status/pid files stage0 reads.
//!
//! Flavors use this exactly as a third-party stage1 would use its own code:
//! they meet stage0 only through `abi` and the pod directory.

pub mod cgroups;
pub mod enter;
pub mod entry;
pub mod env;
pub mod etc;
pub mod interp;
pub mod isolators;
pub mod journal;
pub mod lockfd;
pub mod mount;
pub mod paths;
pub mod pod;
pub mod status;
pub mod user;
pub mod volumes;

/// Exit status of a stage1 entrypoint that failed on its own (rkt's rule).
pub const STAGE1_ERROR_EXIT: i32 = 254;
