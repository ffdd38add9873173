//! rkt's download progress line (`Downloading ACI: [====   ] 2.71 MB/3.79 MB`),
//! drawn on stderr when it is a terminal.

use std::io::{self, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

const WIDTH: usize = 45;
const EVERY: Duration = Duration::from_millis(100);

pub struct Progress<R> {
    inner: R,
    label: &'static str,
    total: Option<u64>,
    done: u64,
    drawn: Option<Instant>,
}

impl<R: Read> Progress<R> {
    /// `inner` with a progress line when stderr is a terminal.
    pub fn wrap(inner: R, label: &'static str, total: Option<u64>) -> Box<dyn Read + Send + 'static>
    where
        R: Send + 'static,
    {
        if io::stderr().is_terminal() {
            Box::new(Progress {
                inner,
                label,
                total,
                done: 0,
                drawn: None,
            })
        } else {
            Box::new(inner)
        }
    }

    fn draw(&mut self, last: bool) {
        let mb = |b: u64| b as f64 / 1e6;
        let line = match self.total {
            Some(total) if total > 0 => {
                let filled = (self.done.min(total) as usize * WIDTH) / total as usize;
                format!(
                    "\r{}: [{}{}] {:.2} MB/{:.2} MB",
                    self.label,
                    "=".repeat(filled),
                    " ".repeat(WIDTH - filled),
                    mb(self.done),
                    mb(total)
                )
            }
            _ => format!("\r{}: {:.2} MB", self.label, mb(self.done)),
        };
        let mut err = io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        if last {
            let _ = err.write_all(b"\n");
        }
        self.drawn = Some(Instant::now());
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if n == 0 {
            self.draw(true);
        } else if self.drawn.is_none_or(|t| t.elapsed() >= EVERY) {
            self.draw(false);
        }
        Ok(n)
    }
}
