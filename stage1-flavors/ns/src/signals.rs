//! Signals of `run` and the supervisor: blocked before forking (so none is
//! lost) and read from a signalfd; children restore the old mask before
//! exec.

use nix::errno::Errno;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use thiserror::Error;

/// Passed on to the apps (through the supervisor).
pub use stage1_common::entry::FORWARDED_SIGNALS as FORWARDED;

#[derive(Debug, Error)]
pub enum SignalError {
    #[error("cannot block signals: {0}")]
    Mask(Errno),
    #[error("cannot create a signalfd: {0}")]
    SignalFd(Errno),
    #[error("cannot read the signalfd: {0}")]
    Read(Errno),
}

/// The handled signals, blocked in this process.
#[derive(Debug, Clone)]
pub struct BlockedSignals {
    previous: SigSet,
}

impl BlockedSignals {
    pub fn block() -> Result<Self, SignalError> {
        let mut previous = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled()), Some(&mut previous))
            .map_err(SignalError::Mask)?;
        Ok(BlockedSignals { previous })
    }

    /// Back to the mask from before [`BlockedSignals::block`].
    pub fn restore(&self) -> Result<(), SignalError> {
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None).map_err(SignalError::Mask)
    }

    /// A signalfd reading the blocked signals.
    pub fn signalfd(&self) -> Result<SignalFd, SignalError> {
        SignalFd::with_flags(&handled(), SfdFlags::SFD_CLOEXEC).map_err(SignalError::SignalFd)
    }
}

/// Waits for the next signal on `fd`.
pub fn next(fd: &SignalFd) -> Result<Option<Signal>, SignalError> {
    loop {
        match fd.read_signal() {
            Ok(Some(info)) => return Ok(Signal::try_from(info.ssi_signo as i32).ok()),
            Ok(None) | Err(Errno::EINTR) => continue,
            Err(errno) => return Err(SignalError::Read(errno)),
        }
    }
}

fn handled() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    // The supervisor's kill timer.
    set.add(Signal::SIGALRM);
    // `run` passes the caller's window size on to an interactive pod.
    set.add(Signal::SIGWINCH);
    set
}

pub use stage1_common::entry::exit_code;
