//! An in-process pipe from the thread that writes a converted image to the
//! store's import: big chunks (few wake-ups), and a writer's failure reaches
//! the reader as an error, never as an early end of a valid-looking stream.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

pub fn chunk_pipe() -> (ChunkWriter, ChunkReader) {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    (
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            finished: false,
        },
        ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            done: false,
        },
    )
}

pub struct ChunkWriter {
    tx: SyncSender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    finished: bool,
}

impl ChunkWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(Ok(full))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the import stopped reading"))
    }

    /// The stream is complete.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buf()?;
        self.finished = true;
        Ok(())
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A writer dropped before [`ChunkWriter::finish`] (its producer failed)
/// ends the stream with an error.
impl Drop for ChunkWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self
                .tx
                .send(Err(io::Error::other("the converted image was cut short")));
        }
    }
}

pub struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // Only a finished writer hangs up without a word.
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_writer_is_an_error_not_an_end() {
        let (mut w, mut r) = chunk_pipe();
        let t = std::thread::spawn(move || {
            w.write_all(b"partial").unwrap();
            w.send_buf().unwrap();
            drop(w);
        });
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        t.join().unwrap();
        assert_eq!(got, b"partial");
        assert!(e.to_string().contains("cut short"), "{e}");

        let (mut w, mut r) = chunk_pipe();
        let t = std::thread::spawn(move || {
            w.write_all(&vec![7u8; 3 * CHUNK + 5]).unwrap();
            w.finish().unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        t.join().unwrap();
        assert_eq!(got.len(), 3 * CHUNK + 5);
    }
}
