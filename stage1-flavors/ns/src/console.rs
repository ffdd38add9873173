//! The terminal of an interactive pod: a pseudo-terminal of the pod's own
//! (as systemd-nspawn gave rkt's pods), relayed to the caller's terminal.
//!
//! The app never holds the caller's terminal, so it cannot push input into
//! the caller's shell (TIOCSTI) or leave it in a state of its own. `run`
//! puts the caller's terminal in raw mode, so that every key (^C, ^Z) goes
//! to the pod's line discipline and signals the app, copies bytes both
//! ways, passes window-size changes on, and restores the terminal at the end.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::{dup2, ttyname};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConsoleError {
    #[error("cannot create the pod's terminal: {0}; check /dev/ptmx and /dev/pts, or run without --interactive")]
    Open(Errno),
    #[error("cannot give the pod its terminal: {0}; run without --interactive")]
    Attach(Errno),
    #[error("cannot put the caller's terminal in raw mode: {0}; run from a terminal, or without --interactive")]
    Raw(Errno),
    #[error("cannot start the terminal relay: {0}; run without --interactive")]
    Thread(std::io::Error),
}

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, Winsize);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, Winsize);

/// How long output the pod wrote just before its end may take to reach the
/// caller once the pod is gone.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A pseudo-terminal made for the pod, sized like the caller's.
#[derive(Debug)]
pub struct PodConsole {
    master: OwnedFd,
    slave: OwnedFd,
    slave_path: PathBuf,
}

impl PodConsole {
    /// A new pty the size of `caller` (the terminal `rkt run` runs on).
    pub fn open(caller: BorrowedFd) -> Result<Self, ConsoleError> {
        let size = window_size(caller);
        let pty = openpty(size.as_ref(), None).map_err(ConsoleError::Open)?;
        let slave_path = ttyname(pty.slave.as_fd()).map_err(ConsoleError::Open)?;
        for fd in [&pty.master, &pty.slave] {
            nix::fcntl::fcntl(
                fd.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .map_err(ConsoleError::Open)?;
        }
        Ok(PodConsole {
            master: pty.master,
            slave: pty.slave,
            slave_path,
        })
    }

    /// The terminal's device, shown to the pod as /dev/console.
    pub fn path(&self) -> &Path {
        &self.slave_path
    }

    /// In the pod's PID 1: makes the terminal stdin, stdout and stderr, and
    /// lets go of the relay's end.
    pub fn attach_stdio(self) -> Result<(), ConsoleError> {
        for target in 0..=2 {
            dup2(self.slave.as_raw_fd(), target).map_err(ConsoleError::Attach)?;
        }
        Ok(())
    }

    /// In `run`: relays between `caller` (stdin; output goes to stdout) and
    /// the pod's terminal until [`Relay::finish`].
    pub fn relay(self) -> Result<Relay, ConsoleError> {
        // Only the pod holds the terminal from now on: once its last
        // process is gone, reading the master ends.
        drop(self.slave);
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).map_err(ConsoleError::Raw)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).map_err(ConsoleError::Raw)?;
        let restore = RestoreTerminal { saved };
        let to_pod = File::from(self.master.try_clone().map_err(ConsoleError::Thread)?);
        let from_pod = File::from(self.master.try_clone().map_err(ConsoleError::Thread)?);
        // Blocked in read(2) on the caller's terminal until the process
        // exits: it holds nothing that needs cleaning up.
        thread::Builder::new()
            .name("console-in".into())
            .spawn(move || {
                copy(std::io::stdin().lock(), to_pod);
            })
            .map_err(ConsoleError::Thread)?;
        let (drained_tx, drained) = mpsc::channel();
        thread::Builder::new()
            .name("console-out".into())
            .spawn(move || {
                let mut from_pod = from_pod;
                if copy(&mut from_pod, std::io::stdout().lock()) {
                    // Nobody reads the output any more (`| head`): as when
                    // a terminal goes away, the app gets SIGHUP, and what
                    // it still writes is dropped rather than blocking it.
                    // (TIOCSIG cannot send SIGHUP: the pty allows INT, QUIT
                    // and TSTP only.)
                    if let Ok(group) = nix::unistd::tcgetpgrp(&from_pod) {
                        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGHUP);
                    }
                    let _ = std::io::copy(&mut from_pod, &mut std::io::sink());
                }
                let _ = drained_tx.send(());
            })
            .map_err(ConsoleError::Thread)?;
        Ok(Relay {
            master: self.master,
            drained,
            _restore: restore,
        })
    }
}

/// The running relay; dropping it restores the caller's terminal.
#[derive(Debug)]
pub struct Relay {
    master: OwnedFd,
    drained: mpsc::Receiver<()>,
    _restore: RestoreTerminal,
}

impl Relay {
    /// Gives the pod's terminal the caller's size (on SIGWINCH); the kernel
    /// signals the app's foreground process group.
    pub fn resize(&self) {
        if let Some(size) = window_size(std::io::stdin().as_fd()) {
            // SAFETY: TIOCSWINSZ reads one Winsize from a valid pointer.
            let _ = unsafe { set_winsize(self.master.as_raw_fd(), &size) };
        }
    }

    /// Once the pod is gone: waits (briefly) for its last output to be
    /// copied, then restores the caller's terminal.
    pub fn finish(self) {
        let _ = self.drained.recv_timeout(DRAIN_TIMEOUT);
    }
}

#[derive(Debug)]
struct RestoreTerminal {
    saved: Termios,
}

impl Drop for RestoreTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

fn window_size(fd: BorrowedFd) -> Option<Winsize> {
    let mut size = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one Winsize to a valid pointer.
    unsafe { get_winsize(fd.as_raw_fd(), &mut size) }
        .ok()
        .map(|_| size)
}

/// Copies until EOF or an error (EIO on the master once the pod is gone),
/// flushing each chunk so that the other side sees it at once.
/// Returns whether writing failed (rather than reading ending).
fn copy(mut from: impl Read, mut to: impl Write) -> bool {
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
            return true;
        }
    }
}
