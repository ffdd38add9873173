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

use std::convert::Infallible;
use std::ffi::{CString, NulError};
use std::fmt::Display;

use nix::errno::Errno;
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::unistd::ForkResult;
use thiserror::Error;

pub use stage1_common::STAGE1_ERROR_EXIT;

pub mod dev;
pub mod events;
pub mod namespaces;
pub mod procfs;
pub mod rootfs;
pub mod signals;
pub mod supervisor;

/// Inside the stage1 rootfs: `<app>` holds the pid of the app's first
/// process as the pod's PID namespace numbers it (`enter` finds the app's
/// namespaces through it).
pub const APP_PIDS_DIR: &str = "rkt/ns-pids";

#[derive(Debug, Error)]
pub enum NsError {
    #[error("argument or environment string contains a NUL byte: {0}")]
    Nul(#[from] NulError),
    #[error("cannot execute {path:?}: {errno}")]
    Exec { path: String, errno: Errno },
    #[error("cannot reset signal {signal}: {errno}")]
    Signal { signal: Signal, errno: Errno },
    #[error("cannot fork: {0}")]
    Fork(Errno),
}

/// Restores the default disposition of SIGPIPE, which the Rust runtime sets
/// to "ignore" and `exec` would otherwise pass on to the app.
pub fn reset_signals_for_exec() -> Result<(), NsError> {
    // SAFETY: installing SIG_DFL runs no handler code; nothing else in this
    // single-threaded process relies on SIGPIPE being ignored after this.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }
        .map(drop)
        .map_err(|errno| NsError::Signal {
            signal: Signal::SIGPIPE,
            errno,
        })
}

/// fork(2). Only for the entrypoints and the supervisor, which never start
/// threads: the child may then allocate and run arbitrary code.
pub fn fork() -> Result<ForkResult, NsError> {
    // SAFETY: these processes are single-threaded, so no lock can be held by
    // a thread that does not exist in the child.
    unsafe { nix::unistd::fork() }.map_err(NsError::Fork)
}

/// Replaces the process with `path`, argv `argv` and environment `env`.
pub fn exec(path: &str, argv: &[String], env: &[String]) -> Result<Infallible, NsError> {
    let c_path = CString::new(path)?;
    let c_argv = argv
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
    let c_env = env
        .iter()
        .map(|e| CString::new(e.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
    reset_signals_for_exec()?;
    nix::unistd::execve(&c_path, &c_argv, &c_env).map_err(|errno| NsError::Exec {
        path: path.to_string(),
        errno,
    })
}

/// Prints `err` the stage1 way and exits 254.
pub fn fail(err: impl Display) -> ! {
    eprintln!("stage1: {err}");
    std::process::exit(STAGE1_ERROR_EXIT)
}

/// Debug output on stderr, when `--debug` was given.
pub fn debug(enabled: bool, msg: impl Display) {
    if enabled {
        eprintln!("stage1: {msg}");
    }
}
