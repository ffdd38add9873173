//! What every stage1 entrypoint binary needs around processes: fork in a
//! single-threaded process, exec with a clean SIGPIPE disposition, and rkt's
//! stage1 error/debug output.

use std::convert::Infallible;
use std::ffi::{CString, NulError};
use std::fmt::Display;

use nix::errno::Errno;
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::ForkResult;
use thiserror::Error;

use crate::STAGE1_ERROR_EXIT;

#[derive(Debug, Error)]
pub enum EntryError {
    #[error("argument or environment string contains a NUL byte: {0}")]
    Nul(#[from] NulError),
    #[error("cannot execute {path:?}: {errno}")]
    Exec { path: String, errno: Errno },
    #[error("cannot execute {path:?}: its interpreter {interpreter:?} is missing from the app's rootfs; add it (and its libraries) to the image, or use a statically linked program")]
    MissingInterpreter { path: String, interpreter: String },
    #[error("cannot reset signal {signal}: {errno}")]
    Signal { signal: Signal, errno: Errno },
    #[error("cannot fork: {0}")]
    Fork(Errno),
}

/// What a stage1 passes on to the apps: the signals a user or a service
/// manager sends to stop or poke a pod.
pub const FORWARDED_SIGNALS: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Restores the default disposition of SIGPIPE, which the Rust runtime sets
/// to "ignore" and `exec` would otherwise pass on to the app.
pub fn reset_signals_for_exec() -> Result<(), EntryError> {
    // SAFETY: installing SIG_DFL runs no handler code; nothing else in these
    // single-threaded processes relies on SIGPIPE being ignored after this.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }
        .map(drop)
        .map_err(|errno| EntryError::Signal {
            signal: Signal::SIGPIPE,
            errno,
        })
}

/// fork(2). Only for the entrypoints and the supervisor: the child may
/// allocate and run arbitrary code before it execs.
pub fn fork() -> Result<ForkResult, EntryError> {
    // SAFETY: these processes are single-threaded, except the ns supervisor's
    // output thread, which holds no lock a child takes: it only polls, reads,
    // writes raw descriptors and allocates (glibc's fork leaves malloc
    // usable in the child).
    unsafe { nix::unistd::fork() }.map_err(EntryError::Fork)
}

/// Replaces the process with `path`, argv `argv` and environment `env`.
pub fn exec(path: &str, argv: &[String], env: &[String]) -> Result<Infallible, EntryError> {
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
    let Err(errno) = nix::unistd::execve(&c_path, &c_argv, &c_env);
    if errno == Errno::ENOENT {
        if let Some(interpreter) = crate::interp::missing_interpreter(std::path::Path::new(path)) {
            return Err(EntryError::MissingInterpreter {
                path: path.to_string(),
                interpreter,
            });
        }
    }
    Err(EntryError::Exec {
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

/// The exit code of a finished process the way a shell reports it: its
/// status, or 128 + the signal that killed it. `None` while it runs.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::Pid;

    #[test]
    fn exit_codes_like_a_shell() {
        let pid = Pid::from_raw(10);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 3)), Some(3));
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            Some(143)
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }
}
