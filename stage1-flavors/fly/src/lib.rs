//! The fly stage1 flavor: one app, chrooted, in the host's network, PID, IPC
//! and UTS namespaces, with no isolators (rkt.md §6 "Fly").
//!
//! Unlike rkt's fly, `run` sets the app up in a private mount namespace (a
//! slave of the host's), so nothing it mounts outlives the app and `gc` has
//! nothing to clean up in the host.
//!
//! `run` forks: the child becomes the app, the parent stays as a small
//! waiter (see [`waiter`]) that holds the pod lock and records the app's exit
//! code, which rkt's fly (exec'ing the app directly) never did.
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

pub mod terminal;
pub mod waiter;

#[derive(Debug, Error)]
pub enum FlyError {
    #[error("fly runs apps in the host network namespace; --net={0} is not supported (use --net=host or leave --net unset)")]
    Network(String),
    #[error("argument or environment string contains a NUL byte: {0}")]
    Nul(#[from] NulError),
    #[error("cannot execute {path:?}: {errno}")]
    Exec { path: String, errno: Errno },
    #[error("cannot reset signal {signal}: {errno}")]
    Signal { signal: Signal, errno: Errno },
    #[error("cannot fork the app process: {0}")]
    Fork(Errno),
}

/// Checks a `--net` value: fly only knows the host network. rkt passes
/// `default` when the user said nothing, which fly (like rkt's) runs as host.
pub fn check_net(net: &str) -> Result<(), FlyError> {
    for entry in net.split(',').filter(|e| !e.is_empty()) {
        let name = entry.split(':').next().unwrap_or(entry);
        if name != "host" && name != "default" {
            return Err(FlyError::Network(net.to_string()));
        }
    }
    Ok(())
}

/// Restores the default disposition of SIGPIPE, which the Rust runtime sets
/// to "ignore" and `exec` would otherwise pass on to the app.
pub fn reset_signals_for_exec() -> Result<(), FlyError> {
    // SAFETY: installing SIG_DFL runs no handler code; nothing else in this
    // single-threaded process relies on SIGPIPE being ignored after this.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }
        .map(drop)
        .map_err(|errno| FlyError::Signal {
            signal: Signal::SIGPIPE,
            errno,
        })
}

/// fork(2). Only for the entrypoints, which never start threads: the child
/// may then allocate and run arbitrary code before it execs.
pub fn fork() -> Result<ForkResult, FlyError> {
    // SAFETY: the entrypoint binaries are single-threaded, so no lock can be
    // held by a thread that does not exist in the child.
    unsafe { nix::unistd::fork() }.map_err(FlyError::Fork)
}

/// Replaces the process with `path`, argv `argv` and environment `env`.
pub fn exec(path: &str, argv: &[String], env: &[String]) -> Result<Infallible, FlyError> {
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
    nix::unistd::execve(&c_path, &c_argv, &c_env).map_err(|errno| FlyError::Exec {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_values() {
        for ok in ["", "host", "default", "default,host"] {
            check_net(ok).unwrap();
        }
        for bad in ["none", "mynet", "default,mynet:IP=10.0.0.2"] {
            let e = check_net(bad).unwrap_err();
            assert!(e.to_string().contains("--net=host"), "{e}");
        }
    }
}
