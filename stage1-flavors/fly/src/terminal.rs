//! Job control on the controlling terminal. The app runs in its own process
//! group (so `stop` can signal it with its children) while the waiter stays
//! in the group stage0 was started in; when that group owned the terminal,
//! the app's group must own it instead, or reading the terminal stops it
//! with SIGTTIN.
//!
//! Callers must have SIGTTOU blocked: `tcsetpgrp` from a background group
//! is otherwise stopped by it.

use std::io::stdin;
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::unistd::{tcgetpgrp, tcsetpgrp, Pid};
use thiserror::Error;

#[derive(Debug, Error)]
#[error("cannot give the terminal to process group {pgrp}: {errno}")]
pub struct TerminalError {
    pub pgrp: Pid,
    pub errno: Errno,
}

/// Stdin, when it is this process's controlling terminal.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    _private: (),
}

impl Terminal {
    /// `None` when stdin is not a terminal, or not ours (then there is no
    /// job control to take part in).
    pub fn controlling_stdin() -> Option<Self> {
        tcgetpgrp(stdin().as_fd())
            .ok()
            .map(|_| Terminal { _private: () })
    }

    /// The process group in the terminal's foreground.
    pub fn foreground(&self) -> Option<Pid> {
        tcgetpgrp(stdin().as_fd()).ok()
    }

    /// Puts `pgrp` in the foreground.
    pub fn give_to(&self, pgrp: Pid) -> Result<(), TerminalError> {
        tcsetpgrp(stdin().as_fd(), pgrp).map_err(|errno| TerminalError { pgrp, errno })
    }

    /// Moves the foreground from `from` to `to`, only if `from` has it: a
    /// terminal the shell took back (e.g. `bg`) is left alone.
    pub fn pass_on(&self, from: Pid, to: Pid) -> Result<bool, TerminalError> {
        if self.foreground() != Some(from) {
            return Ok(false);
        }
        self.give_to(to).map(|()| true)
    }
}
