//! The stage1 ABI: how stage0 finds a stage1's entrypoints and what it passes
//! to them (rkt's stage1 implementors' guide, interface versions 1 to 6).

mod args;
mod entrypoint;
mod features;
mod id_range;
mod net_check;

pub use args::{
    AppArgs, ArgsError, DnsConfMode, EnterArgs, GcArgs, HostsMode, IpcMode, NetCheckArgs,
    ResolvMode, RunArgs, StopArgs,
};
pub use entrypoint::{Entrypoint, InterfaceVersion, INTERFACE_VERSION_ANNOTATION};
pub use features::{format_features, parse_features, Feature, FEATURES_ANNOTATION};
pub use id_range::{IdRange, ID_RANGE_COUNT};
pub use net_check::NetCheckOutcome;

/// Environment variable carrying the fd of the pod directory whose exclusive
/// flock marks the pod as running. Stage1 keeps it open for the pod's life.
pub const LOCK_FD_ENV: &str = "RKT_LOCK_FD";
/// `run`: fd of the mount namespace stage0 was started in, set when stage0
/// moved into a private one (for the pod's overlays) before exec'ing
/// `run`. What must outlive `run`'s namespaces, the bind mount of the
/// pod's network namespace, is mounted there. Unset: `run`'s own mount
/// namespace is that one.
pub const HOST_MOUNT_NS_FD_ENV: &str = "RKT_HOST_MOUNT_NS_FD";
/// Crossing entrypoints: absolute path of the stage1 enter entrypoint.
pub const ENTER_CMD_ENV: &str = "RKT_STAGE1_ENTERCMD";
/// Crossing entrypoints: pid of the pod's PID 1.
pub const ENTER_PID_ENV: &str = "RKT_STAGE1_ENTERPID";
/// Crossing entrypoints: app name (defined, not set by stage0, as in rkt).
pub const ENTER_APP_ENV: &str = "RKT_STAGE1_ENTERAPP";

/// Exit status of `app/stop` meaning "the app was not running".
pub const APP_STOP_NOT_RUNNING: i32 = 5;
