//! Interrupted downloads resume where they stopped, as rkt's resumable
//! sessions did. The bytes of an image download are also kept in the
//! store's tmp dir (`download-<hash of the URL>`, with the response's ETag
//! beside it); when a download breaks off, the next fetch of the URL asks
//! for the rest (`Range: bytes=N-`, `If-Range: <ETag>`) and imports the
//! kept bytes followed by it. A server that changed the image answers in
//! full and the kept bytes are dropped. Without an ETag nothing is
//! resumed: the kept bytes could belong to another version.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

/// Name prefix of kept downloads in the store's tmp dir.
pub const PREFIX: &str = "download-";

/// The kept bytes of one URL's download, locked by this process.
pub struct PartialDownload {
    file: Flock<File>,
    path: PathBuf,
    etag_path: PathBuf,
    etag: Option<String>,
    /// A write to the kept file failed.
    spoiled: Arc<AtomicBool>,
}

impl PartialDownload {
    /// The kept download of `url` in `dir`; `None` while another process
    /// downloads the same URL (this one then keeps nothing).
    pub fn open(dir: &Path, url: &str) -> io::Result<Option<PartialDownload>> {
        let hash = Sha256::digest(url.as_bytes());
        let name: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
        let path = dir.join(format!("{PREFIX}{name}"));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, e)) => return Err(e.into()),
        };
        let etag_path = path.with_extension("etag");
        let etag = std::fs::read_to_string(&etag_path).ok();
        Ok(Some(PartialDownload {
            file,
            path,
            etag_path,
            etag,
            spoiled: Arc::default(),
        }))
    }

    /// Where to resume, and the ETag the kept bytes belong to.
    pub fn resume_point(&self) -> Option<(u64, &str)> {
        let have = self.file.metadata().ok()?.len();
        match (&self.etag, have) {
            (Some(etag), 1..) => Some((have, etag.as_str())),
            _ => None,
        }
    }

    /// How many bytes are kept.
    pub fn len(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }

    /// Drops the kept bytes: a download of `etag` starts from zero.
    pub fn restart(&mut self, etag: Option<&str>) -> io::Result<()> {
        self.file.set_len(0)?;
        match etag {
            Some(e) => std::fs::write(&self.etag_path, e)?,
            None => match std::fs::remove_file(&self.etag_path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            },
        }
        self.etag = etag.map(str::to_string);
        Ok(())
    }

    /// The whole image: the kept bytes, then `rest` (which is kept too as
    /// it is read). The flag tells whether `rest` broke off.
    pub fn stream<R: Read + Send + 'static>(
        &self,
        rest: R,
    ) -> io::Result<(impl Read + Send + 'static, Arc<AtomicBool>)> {
        // Opened anew: each with an offset of its own.
        let kept = File::open(&self.path)?.take(self.file.metadata()?.len());
        // Big writes: the network hands over TLS records of 16 KiB.
        let sink =
            BufWriter::with_capacity(1 << 20, File::options().append(true).open(&self.path)?);
        let broken = Arc::new(AtomicBool::new(false));
        let recording = Recording {
            inner: rest,
            sink: Some(sink),
            broken: broken.clone(),
            spoiled: self.spoiled.clone(),
        };
        Ok((kept.chain(recording), broken))
    }

    /// After the import: kept only if the download broke off (to be
    /// resumed) and all of it was kept; a complete one, imported or
    /// refused, goes.
    pub fn finish(self, broken: bool) {
        if !broken || self.spoiled.load(Ordering::SeqCst) {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(&self.etag_path);
        }
    }
}

/// Passes `inner` through, appending what it reads to `sink`.
struct Recording<R> {
    inner: R,
    /// Flushed when dropped, so a broken-off download keeps all it got.
    sink: Option<BufWriter<File>>,
    broken: Arc<AtomicBool>,
    spoiled: Arc<AtomicBool>,
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                // Keeping is best effort; kept bytes with a gap would be
                // resumed into a wrong image, so after a failed write
                // nothing is kept.
                if let Some(sink) = self.sink.as_mut() {
                    if sink.write_all(&buf[..n]).is_err() {
                        self.sink = None;
                        self.spoiled.store(true, Ordering::SeqCst);
                    }
                }
                Ok(n)
            }
            Err(e) => {
                // Broken off, unless the image was only too large (the
                // rest would be too) or the read is to be retried.
                if !super::http::exceeded_limit(&e) && e.kind() != io::ErrorKind::Interrupted {
                    self.broken.store(true, Ordering::SeqCst);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_bytes_come_first_and_grow_with_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PartialDownload::open(dir.path(), "https://h/x.aci")
            .unwrap()
            .unwrap();
        assert!(p.resume_point().is_none());
        p.restart(Some("\"v1\"")).unwrap();
        let (mut r, broken) = p.stream(&b"hello "[..]).unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello ");
        assert!(!broken.load(Ordering::SeqCst));
        drop(r);
        // Another process downloading the same URL finds it locked.
        assert!(PartialDownload::open(dir.path(), "https://h/x.aci")
            .unwrap()
            .is_none());
        drop(p);

        let p = PartialDownload::open(dir.path(), "https://h/x.aci")
            .unwrap()
            .unwrap();
        assert_eq!(p.resume_point(), Some((6, "\"v1\"")));
        let (mut r, _) = p.stream(&b"world"[..]).unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello world");
        drop(r);
        p.finish(false);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
