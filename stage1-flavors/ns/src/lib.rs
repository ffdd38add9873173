//! The ns stage1 flavor: each pod gets new mount, PID, UTS, IPC (unless
//! `--ipc=parent`) and network (unless `--net=host`) namespaces, with a small
//! supervisor as its PID 1 that starts every app in a mount namespace and
//! root of its own (DESIGN.md, "Process model of the ns flavor").
//!
//! `run` creates the namespaces, forks the supervisor into them, writes
//! `$pod/pid` and then only waits: it holds the pod lock and returns the
//! supervisor's exit code, which is the failing app's (0 when all succeed).
//!
//! This library holds what the four entrypoint binaries share.

pub use stage1_common::entry::{debug, exec, fail, fork, reset_signals_for_exec, EntryError};

pub use stage1_common::STAGE1_ERROR_EXIT;

pub mod applog;
pub mod console;
pub mod control;
pub mod crossing;
pub mod dbus;
pub mod dev;
pub mod events;
pub mod launch;
pub mod machine;
pub mod namespaces;
pub mod output;
pub mod plan;
pub mod podjournal;
pub mod podroot;
pub mod procfs;
pub mod residency;
pub mod rootfs;
pub mod signals;
pub mod supervisor;

/// Inside the stage1 rootfs: `<app>` holds the pid of the app's first
/// process as the pod's PID namespace numbers it (`enter` finds the app's
/// namespaces through it).
pub const APP_PIDS_DIR: &str = "rkt/ns-pids";
