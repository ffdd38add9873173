//! Apps' output in pods of several apps (and mutable pods): each app
//! writes into pipes of its own, and a thread of the supervisor forwards
//! whole lines to the pod's stdout and stderr as they complete, so lines of
//! different apps never mix (what journald's console forwarding gave rkt).
//! A single app keeps the pod's stdout/stderr itself: nothing in between,
//! unless the pod has a journal (the host runs journald): then every app's
//! lines also go to the pod's journal, tagged with the app's name.
//!
//! The thread only polls, reads, allocates and writes raw descriptors, so
//! the supervisor may still fork apps (it holds no lock a child uses).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{pipe2, read, write};
use stage1_common::journal::{Journal, PRIORITY_ERR, PRIORITY_INFO};

use crate::applog::AppLogs;
use thiserror::Error;

/// A partial line is forwarded after this long without its end (a prompt,
/// a progress dot). Long enough that an app writing a line in pieces on a
/// loaded machine is not split (journald, which rkt used, waits for the
/// newline forever).
const PARTIAL_LINE_WAIT: Duration = Duration::from_secs(1);
/// A "line" longer than this is forwarded in pieces.
const MAX_LINE: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// At the end, what is left in a pipe is forwarded up to this much.
const MAX_DRAIN: usize = 16 << 20;

#[derive(Debug, Error)]
pub enum OutputError {
    #[error("cannot create the app's output pipes: {0}")]
    Pipe(Errno),
    #[error("cannot start the output thread: {0}")]
    Thread(std::io::Error),
}

/// The write ends an app gets as its stdout and stderr.
#[derive(Debug)]
pub struct AppOutput {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

enum Message {
    Pipes {
        app: Arc<str>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Finish,
}

/// The forwarding thread and the way to reach it.
pub struct OutputMux {
    tx: Sender<Message>,
    wake: OwnedFd,
    thread: Option<JoinHandle<()>>,
    /// The thread's work until [`OutputMux::spawn`] starts it.
    pending: Option<Forwarder>,
}

impl std::fmt::Debug for OutputMux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputMux")
            .field("started", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl OutputMux {
    /// Prepares the forwarding; with `journal`, lines also go to
    /// journald, and with `logs` to the apps' log files. Pipes made now
    /// are read once [`OutputMux::spawn`] has started the thread.
    pub fn start(journal: Option<Journal>, logs: Option<AppLogs>) -> Result<Self, OutputError> {
        let (wake_r, wake_w) =
            pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(OutputError::Pipe)?;
        let (tx, rx) = channel();
        Ok(OutputMux {
            tx,
            wake: wake_w,
            thread: None,
            pending: Some(Forwarder::new(wake_r, rx, Sink { journal, logs })),
        })
    }

    /// Starts the thread; idempotent. The supervisor does it right before
    /// it first waits for its apps: they get the pod's first PIDs (the
    /// thread takes one), and a pod whose apps are already done by then
    /// needs no thread at all ([`OutputMux::finish`] forwards inline).
    pub fn spawn(&mut self) -> Result<(), OutputError> {
        let Some(forwarder) = self.pending.take() else {
            return Ok(());
        };
        let thread = std::thread::Builder::new()
            .name("output".into())
            .stack_size(64 * 1024)
            .spawn(move || forwarder.run())
            .map_err(OutputError::Thread)?;
        self.thread = Some(thread);
        Ok(())
    }

    /// New pipes for app `app`; the thread reads the other ends.
    pub fn app_output(&self, app: &str) -> Result<AppOutput, OutputError> {
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).map_err(OutputError::Pipe)?;
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(OutputError::Pipe)?;
        self.send(Message::Pipes {
            app: app.into(),
            stdout: out_r,
            stderr: err_r,
        });
        Ok(AppOutput {
            stdout: out_w,
            stderr: err_w,
        })
    }

    /// Forwards what the apps left in their pipes and stops the thread.
    pub fn finish(mut self) {
        if let Some(forwarder) = self.pending.take() {
            // Never started: forward what is there on this thread.
            self.send(Message::Finish);
            forwarder.run();
            return;
        }
        self.send(Message::Finish);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn send(&self, message: Message) {
        if self.tx.send(message).is_ok() {
            let _ = write(&self.wake, b"x");
        }
    }
}

/// One app's pipe and the partial line read from it.
struct Source {
    pipe: OwnedFd,
    app: Arc<str>,
    /// 1 or 2: where its lines go.
    target: RawFd,
    pending: Vec<u8>,
    /// When the partial line in `pending` started waiting.
    since: Option<Instant>,
}

struct Forwarder {
    wake: OwnedFd,
    rx: Receiver<Message>,
    /// In the order the apps' pipes came (stdout before stderr), which is
    /// the order the final drain forwards them in.
    sources: Vec<Source>,
    sink: Sink,
    finishing: bool,
}

/// Where complete lines go: the pod's stdout or stderr, and the journal
/// or the apps' log files.
struct Sink {
    journal: Option<Journal>,
    logs: Option<AppLogs>,
}

impl Forwarder {
    fn new(wake: OwnedFd, rx: Receiver<Message>, sink: Sink) -> Self {
        Forwarder {
            wake,
            rx,
            sources: Vec::new(),
            sink,
            finishing: false,
        }
    }

    fn run(mut self) {
        loop {
            self.receive();
            if self.finishing {
                self.drain();
                return;
            }
            let ready = self.wait();
            for fd in ready {
                self.read_from(fd);
            }
            self.flush_stale_partials();
        }
    }

    fn receive(&mut self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = read(self.wake.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
        }
        while let Ok(message) = self.rx.try_recv() {
            match message {
                Message::Pipes {
                    app,
                    stdout,
                    stderr,
                } => {
                    self.add(app.clone(), stdout, libc::STDOUT_FILENO);
                    self.add(app, stderr, libc::STDERR_FILENO);
                }
                Message::Finish => self.finishing = true,
            }
        }
    }

    fn add(&mut self, app: Arc<str>, pipe: OwnedFd, target: RawFd) {
        // Non-blocking, so the final drain stops at "nothing more now".
        let _ = nix::fcntl::fcntl(
            pipe.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
        );
        self.sources.push(Source {
            pipe,
            app,
            target,
            pending: Vec::new(),
            since: None,
        });
    }

    /// The pipes with something to read (or at EOF).
    fn wait(&self) -> Vec<RawFd> {
        let mut fds = vec![PollFd::new(self.wake.as_fd(), PollFlags::POLLIN)];
        fds.extend(
            self.sources
                .iter()
                .map(|s| PollFd::new(s.pipe.as_fd(), PollFlags::POLLIN)),
        );
        let timeout = match self.sources.iter().filter_map(|s| s.since).min() {
            Some(since) => {
                let left = (since + PARTIAL_LINE_WAIT).saturating_duration_since(Instant::now());
                PollTimeout::try_from(left.as_millis() as i32 + 1).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        if poll(&mut fds, timeout).is_err() {
            return Vec::new();
        }
        fds[1..]
            .iter()
            .zip(&self.sources)
            .filter(|(p, _)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, s)| s.pipe.as_raw_fd())
            .collect()
    }

    /// Reads what is there; forwards whole lines; at EOF the rest too.
    fn read_from(&mut self, fd: RawFd) {
        let Some(index) = self.sources.iter().position(|s| s.pipe.as_raw_fd() == fd) else {
            return;
        };
        let source = &mut self.sources[index];
        let mut buf = vec![0u8; READ_CHUNK];
        match read(source.pipe.as_raw_fd(), &mut buf) {
            Ok(0) => {
                source.flush_pending(&mut self.sink);
                self.sources.remove(index);
            }
            Ok(n) => source.take(&buf[..n], &mut self.sink),
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(_) => {
                self.sources.remove(index);
            }
        }
    }

    fn flush_stale_partials(&mut self) {
        let now = Instant::now();
        for source in self.sources.iter_mut() {
            if source.since.is_some_and(|s| now >= s + PARTIAL_LINE_WAIT) {
                source.flush_pending(&mut self.sink);
            }
        }
    }

    /// What is still readable (up to [`MAX_DRAIN`] a pipe), then the
    /// partial lines.
    fn drain(&mut self) {
        let mut buf = vec![0u8; READ_CHUNK];
        for source in self.sources.iter_mut() {
            let mut left = MAX_DRAIN;
            while let Ok(n @ 1..) = read(source.pipe.as_raw_fd(), &mut buf) {
                source.take(&buf[..n], &mut self.sink);
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
            source.flush_pending(&mut self.sink);
        }
    }
}

impl Source {
    /// Appends `bytes`; forwards every complete line.
    fn take(&mut self, bytes: &[u8], sink: &mut Sink) {
        self.pending.extend_from_slice(bytes);
        let cut = match self.pending.iter().rposition(|b| *b == b'\n') {
            Some(last) => last + 1,
            None if self.pending.len() >= MAX_LINE => self.pending.len(),
            None => 0,
        };
        if cut > 0 {
            sink.emit(&self.app, self.target, &self.pending[..cut]);
            self.pending.drain(..cut);
        }
        self.since = match (self.pending.is_empty(), self.since) {
            (true, _) => None,
            (false, Some(s)) => Some(s),
            (false, None) => Some(Instant::now()),
        };
    }

    /// Forwards the partial line as it is.
    fn flush_pending(&mut self, sink: &mut Sink) {
        let pending = std::mem::take(&mut self.pending);
        if !pending.is_empty() {
            sink.emit(&self.app, self.target, &pending);
        }
        self.since = None;
    }
}

impl Sink {
    /// Forwards `bytes` (whole lines, or a partial line given up on) of
    /// `app` to `target` and, one entry per line, to the journal.
    fn emit(&mut self, app: &str, target: RawFd, bytes: &[u8]) {
        flush(target, bytes);
        if let Some(logs) = &mut self.logs {
            if let Err(e) = logs.append(app, target == libc::STDERR_FILENO, bytes) {
                let message =
                    format!("stage1: cannot write the log of app {app:?}: {e}; app output goes to stdout/stderr only\n");
                flush(libc::STDERR_FILENO, message.as_bytes());
                self.logs = None;
            }
        }
        let Some(journal) = &self.journal else {
            return;
        };
        let priority = match target {
            libc::STDERR_FILENO => PRIORITY_ERR,
            _ => PRIORITY_INFO,
        };
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        for line in body.split(|b| *b == b'\n') {
            if let Err(e) = journal.send_line(app, priority, line) {
                // Given up for good: the output still reaches stdout and
                // stderr, and a stuck journald does not hold the apps.
                let message = format!("stage1: {e}; app output goes to stdout/stderr only\n");
                flush(libc::STDERR_FILENO, message.as_bytes());
                self.journal = None;
                return;
            }
        }
    }
}

/// Writes all of `bytes` to `fd` (the pod's stdout or stderr); a reader
/// that went away loses the output, not the pod.
fn flush(fd: RawFd, mut bytes: &[u8]) {
    // SAFETY: stdout and stderr stay open for the supervisor's life.
    let target = unsafe { BorrowedFd::borrow_raw(fd) };
    while !bytes.is_empty() {
        match write(target, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut p = [PollFd::new(target, PollFlags::POLLOUT)];
                let _ = poll(&mut p, PollTimeout::NONE);
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_go_out_partial_ones_wait_and_each_line_is_one_journal_entry() {
        let (r, w) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let (_keep, dummy) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let journald = std::os::unix::net::UnixDatagram::bind(dir.path().join("s")).unwrap();
        journald.set_nonblocking(true).unwrap();
        let mut sink = Sink {
            journal: Journal::connect(&dir.path().join("s"), "u"),
            logs: None,
        };
        let mut s = Source {
            pipe: dummy,
            app: "web".into(),
            target: w.as_raw_fd(),
            pending: Vec::new(),
            since: None,
        };
        s.take(b"one\ntw", &mut sink);
        assert_eq!(s.pending, b"tw");
        assert!(s.since.is_some());
        s.take(b"o\nthree", &mut sink);
        assert_eq!(s.pending, b"three");
        s.flush_pending(&mut sink);
        assert!(s.since.is_none());
        drop(w);
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = read(r.as_raw_fd(), &mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, b"one\ntwo\nthree");
        let mut messages = Vec::new();
        let mut entry = [0u8; 512];
        while let Ok(n) = journald.recv(&mut entry) {
            let text = String::from_utf8(entry[..n].to_vec()).unwrap();
            assert!(text.contains("SYSLOG_IDENTIFIER=web\n"), "{text}");
            messages.push(text.lines().next().unwrap().to_string());
        }
        assert_eq!(messages, ["MESSAGE=one", "MESSAGE=two", "MESSAGE=three"]);
    }
}
