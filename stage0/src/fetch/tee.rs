//! The bytes an import reads, handed to a signature check running beside
//! it: the image is read once, and what is verified is exactly what is
//! imported.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// Chunks in flight between the import and the check.
const IN_FLIGHT: usize = 32;

type Sender = Arc<Mutex<Option<SyncSender<Vec<u8>>>>>;
type Failed = Arc<std::sync::atomic::AtomicBool>;

/// Reads `inner` and sends a copy of every chunk read.
pub struct Tee<R> {
    inner: R,
    to: Sender,
    failed: Failed,
}

/// Ends the copy (the check then sees the end of its input).
pub struct Closer(Sender, Failed);

/// The copy, as a reader.
pub struct Copy {
    from: Mutex<Receiver<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

pub fn tee<R: Read>(inner: R) -> (Tee<R>, Closer, Copy) {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let to: Sender = Arc::new(Mutex::new(Some(tx)));
    let failed = Failed::default();
    (
        Tee {
            inner,
            to: to.clone(),
            failed: failed.clone(),
        },
        Closer(to, failed),
        Copy {
            from: Mutex::new(rx),
            chunk: Vec::new(),
            pos: 0,
        },
    )
}

fn lock(s: &Sender) -> std::sync::MutexGuard<'_, Option<SyncSender<Vec<u8>>>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                return Err(e);
            }
        };
        let mut to = lock(&self.to);
        if n == 0 {
            *to = None;
        } else if let Some(tx) = to.as_ref() {
            // A check that has given up needs no more.
            if tx.send(buf[..n].to_vec()).is_err() {
                *to = None;
            }
        }
        Ok(n)
    }
}

/// The import stopped reading (done, or failed): the check sees the end.
impl<R> Drop for Tee<R> {
    fn drop(&mut self) {
        *lock(&self.to) = None;
    }
}

impl Closer {
    pub fn close(&self) {
        *lock(&self.0) = None;
    }

    /// Whether reading the image failed (a download that broke off): the
    /// check then saw a cut-short image, and its verdict means nothing.
    pub fn input_failed(&self) -> bool {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Read for Copy {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            let next = self.from.lock().unwrap_or_else(|e| e.into_inner()).recv();
            match next {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_what_was_read_and_ends_when_closed() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (mut tee, closer, mut copy) = tee(&data[..]);
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            copy.read_to_end(&mut got).unwrap();
            got
        });
        let mut first = vec![0u8; 1000];
        tee.read_exact(&mut first).unwrap();
        let mut rest = Vec::new();
        tee.read_to_end(&mut rest).unwrap();
        closer.close();
        assert_eq!(reader.join().unwrap(), data);

        // Closed early: the copy ends short instead of waiting.
        let (mut tee, closer, mut copy) = super::tee(&data[..]);
        let mut some = vec![0u8; 10];
        tee.read_exact(&mut some).unwrap();
        closer.close();
        let mut got = Vec::new();
        copy.read_to_end(&mut got).unwrap();
        assert_eq!(got, &data[..10]);
    }
}
