//! The process `run` stays as after forking the app: it keeps the pod lock
//! (the pod is "running" while it is held), forwards termination signals to
//! the app, follows its job-control stops on a terminal, reaps it and turns
//! its wait status into an exit code for `rkt status` and `rkt run`.
//!
//! No threads and no handlers: the signals are blocked and read from a
//! signalfd, SIGCHLD included.

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpgrp, getpid, getsid, Pid};
use thiserror::Error;

use crate::terminal::Terminal;

/// What the waiter passes on to the app (rkt's fly had no waiter).
pub use stage1_common::entry::FORWARDED_SIGNALS as FORWARDED;

/// Stops that come from terminal job control (Ctrl-Z, background I/O).
const JOB_STOPS: [Signal; 3] = [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU];

#[derive(Debug, Error)]
pub enum WaiterError {
    #[error("cannot block signals: {0}")]
    Mask(Errno),
    #[error("cannot create a signalfd: {0}")]
    SignalFd(Errno),
    #[error("cannot read the signalfd: {0}")]
    Read(Errno),
    #[error("cannot wait for the app (pid {pid}): {errno}")]
    Wait { pid: Pid, errno: Errno },
}

/// The signals the waiter reads, blocked in this process. Block them before
/// forking so that none sent in between is lost; the child restores the
/// previous mask before exec.
#[derive(Debug)]
pub struct BlockedSignals {
    previous: SigSet,
}

impl BlockedSignals {
    pub fn block() -> Result<Self, WaiterError> {
        let mut set = waited_set();
        // Not read, only blocked: lets `tcsetpgrp` work from a background
        // process group (the waiter's, once the app has the terminal).
        set.add(Signal::SIGTTOU);
        let mut previous = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut previous))
            .map_err(WaiterError::Mask)?;
        Ok(BlockedSignals { previous })
    }

    /// Back to the mask from before [`BlockedSignals::block`] (in the child,
    /// right before exec; pending signals are delivered then).
    pub fn restore(&self) -> Result<(), WaiterError> {
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None).map_err(WaiterError::Mask)
    }
}

fn waited_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Waits for `child` (whose process group is its own pid) to end, forwarding
/// signals meanwhile, and returns its exit code. `terminal` is the
/// controlling terminal the child may have been given.
pub fn wait_for(
    child: Pid,
    _blocked: &BlockedSignals,
    terminal: Option<Terminal>,
) -> Result<i32, WaiterError> {
    let fd = SignalFd::with_flags(&waited_set(), SfdFlags::SFD_CLOEXEC)
        .map_err(WaiterError::SignalFd)?;
    let flags = if terminal.is_some() {
        WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED
    } else {
        WaitPidFlag::WNOHANG
    };
    loop {
        // Reap first: the child may be gone before the signalfd existed.
        loop {
            match waitpid(child, Some(flags)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(WaitStatus::Stopped(_, sig)) => {
                    if let Some(t) = terminal {
                        follow_stop(child, sig, t);
                    }
                }
                Ok(status) => {
                    if let Some(code) = exit_code(status) {
                        if let Some(t) = terminal {
                            // Give the terminal back for whoever started rkt.
                            let _ = t.pass_on(child, getpgrp());
                        }
                        return Ok(code);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(WaiterError::Wait { pid: child, errno }),
            }
        }
        let info = match fd.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) | Err(Errno::EINTR) => continue,
            Err(errno) => return Err(WaiterError::Read(errno)),
        };
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if FORWARDED.contains(&sig) {
            // ESRCH: it exited meanwhile; the SIGCHLD is queued.
            let _ = kill(child, sig);
        }
    }
}

/// The app stopped. On a terminal stop, do what a shell's job would: stop
/// the waiter too so the shell sees rkt stopped, and on `fg`/`bg` continue
/// the app (with the terminal when the waiter got it back).
fn follow_stop(child: Pid, sig: Signal, terminal: Terminal) {
    if !JOB_STOPS.contains(&sig) {
        // Someone sent SIGSTOP: not ours to undo.
        return;
    }
    if getsid(None).ok() == Some(getpid()) {
        // The waiter leads the session (e.g. under `script -c`): no shell
        // will ever continue it, so Ctrl-Z is ignored as in an orphaned
        // group. Background reads stay stopped rather than spin.
        if sig == Signal::SIGTSTP {
            let _ = killpg(child, Signal::SIGCONT);
        }
        return;
    }
    let own = getpgrp();
    let _ = terminal.pass_on(child, own);
    // Returns once the shell sends SIGCONT.
    let _ = kill(getpid(), Signal::SIGSTOP);
    let _ = terminal.pass_on(own, child);
    let _ = killpg(child, Signal::SIGCONT);
}

pub use stage1_common::entry::exit_code;
