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
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::fcntl::Flock;
use sha2::{Digest, Sha256};

use super::http::{Http, HttpError};
use super::FetchError;
use crate::store::{to_hex, ImageKey, Store, StoreError};

/// A download of an image that has begun.
pub enum Started {
    /// 304: the version the caller has is current.
    Unchanged {
        max_age: u64,
    },
    Body(Download),
}

/// The whole image as one reader (the kept bytes first when resumed), the
/// response's cache headers, and what is being kept.
pub struct Download {
    pub etag: Option<String>,
    pub max_age: u64,
    /// All of it, as far as the server said.
    pub total: Option<u64>,
    pub reader: Box<dyn Read + Send>,
    pub kept: Option<Kept>,
}

/// The kept copy of a download, to be resumed if it breaks off.
pub struct Kept {
    partial: PartialDownload,
    broken: Arc<AtomicBool>,
}

impl Kept {
    /// After the import: a complete download is not kept; one that broke
    /// off is, and its error then says so.
    pub fn finish(self, url: &str, imported: &Result<ImageKey, FetchError>) -> Option<FetchError> {
        let broken = self.broken.load(Ordering::SeqCst);
        let have = self.partial.len();
        self.partial.finish(broken);
        match imported {
            Err(e) if broken => Some(FetchError::DownloadBroken {
                url: url.to_string(),
                have,
                why: e.to_string(),
            }),
            _ => None,
        }
    }
}

/// GETs `url` (conditionally on `etag`, the stored version's), resuming
/// a download of it that broke off, and keeping this one as it arrives.
/// At most `limit` bytes in all.
pub fn start(
    store: &Store,
    http: &Http,
    url: &str,
    etag: Option<&str>,
    limit: u64,
) -> Result<Started, FetchError> {
    let mut partial = PartialDownload::open(store, url).unwrap_or_else(|e| {
        tracing::debug!("not keeping the download of {url}: {e}");
        None
    });
    let resume_at = partial
        .as_ref()
        .and_then(|p| p.resume_point())
        .map(|(from, tag)| (from, tag.to_string()));
    let response = match http.get(
        url,
        etag,
        resume_at.as_ref().map(|(from, tag)| (*from, tag.as_str())),
    ) {
        // 416: the kept bytes are all of it (a fetch stopped after the
        // download); they are dropped and the image asked for again.
        Err(e) if e.status() == Some(416) => {
            if let Some(p) = partial.as_mut() {
                p.restart(None)
                    .map_err(StoreError::io("dropping the kept download"))?;
            }
            http.get(url, etag, None)?
        }
        other => other?,
    };
    if response.status == 304 && etag.is_some() {
        if let Some(p) = partial {
            p.finish(false);
        }
        return Ok(Started::Unchanged {
            max_age: response.max_age,
        });
    }
    let resumed = match (response.status, &resume_at) {
        (206, Some((from, _))) if response.range_start == Some(*from) => *from,
        (206, _) => {
            return Err(HttpError::Request {
                url: url.to_string(),
                why: "the server answered with a range that was not asked for".into(),
            }
            .into())
        }
        _ => 0,
    };
    let (etag, max_age) = (response.etag, response.max_age);
    let total = response
        .body
        .content_length()
        .map(|n| n.saturating_add(resumed));
    let rest = response
        .body
        .into_with_config()
        .limit(limit.saturating_sub(resumed))
        .reader();
    // Kept only with an ETag, which tells the next fetch whether the kept
    // bytes are current.
    let (reader, kept): (Box<dyn Read + Send>, _) = match partial {
        Some(mut p) if resumed > 0 || etag.is_some() => {
            if resumed > 0 {
                eprintln!("image: resuming the download of {url} at byte {resumed}");
            } else {
                p.restart(etag.as_deref())
                    .map_err(StoreError::io("keeping the download"))?;
            }
            let (reader, broken) = p
                .stream(rest)
                .map_err(StoreError::io("keeping the download"))?;
            (Box::new(reader), Some(Kept { partial: p, broken }))
        }
        // What was kept belongs to another version; nothing to keep.
        Some(p) => {
            p.finish(false);
            (Box::new(rest), None)
        }
        None => (Box::new(rest), None),
    };
    Ok(Started::Body(Download {
        etag,
        max_age,
        total,
        reader,
        kept,
    }))
}

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
    /// The kept download of `url` in `store`; `None` while another process
    /// downloads the same URL (this one then keeps nothing).
    fn open(store: &Store, url: &str) -> io::Result<Option<PartialDownload>> {
        let key = to_hex(&Sha256::digest(url.as_bytes())[..16]);
        let Some((file, path)) = store.kept_download(&key)? else {
            return Ok(None);
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
    fn resume_point(&self) -> Option<(u64, &str)> {
        let have = self.file.metadata().ok()?.len();
        match (&self.etag, have) {
            (Some(etag), 1..) => Some((have, etag.as_str())),
            _ => None,
        }
    }

    /// How many bytes are kept.
    fn len(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }

    /// Drops the kept bytes: a download of `etag` starts from zero.
    fn restart(&mut self, etag: Option<&str>) -> io::Result<()> {
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
    fn stream<R: Read + Send + 'static>(
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
    fn finish(self, broken: bool) {
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
        let store = Store::open(dir.path()).unwrap();
        let kept_files = || {
            std::fs::read_dir(dir.path().join("cas/tmp"))
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("download-"))
                .count()
        };
        let mut p = PartialDownload::open(&store, "https://h/x.aci")
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
        assert!(PartialDownload::open(&store, "https://h/x.aci")
            .unwrap()
            .is_none());
        drop(p);

        let p = PartialDownload::open(&store, "https://h/x.aci")
            .unwrap()
            .unwrap();
        assert_eq!(p.resume_point(), Some((6, "\"v1\"")));
        let (mut r, _) = p.stream(&b"world"[..]).unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello world");
        drop(r);
        p.finish(false);
        assert_eq!(kept_files(), 0);
    }
}
