//! Import: one streaming pass that decompresses on the calling thread while a
//! second thread hashes and writes the uncompressed tar, and optionally a
//! third extracts its rootfs into a tree as the bytes go by; then a
//! header-only walk of the written blob that checks the ACI layout and reads
//! the manifest.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};

use abi::schema::ImageManifest;
use sha2::{Digest, Sha512};

use super::archive::{self, Kind};
use super::extract::{Data, Extractor, FileDigests};
use super::render::rootfs_rel;
use super::StoreError;

/// Largest manifest accepted; stops a hostile image from making us buffer gigabytes.
pub const MAX_MANIFEST_SIZE: u64 = abi::schema::MAX_MANIFEST_SIZE as u64;
/// Size of the buffers passed between the decompressing and hashing threads.
const CHUNK: usize = 1 << 20;
/// Buffers in flight: enough to keep all threads busy, little memory.
const IN_FLIGHT: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    Gzip,
    Bzip2,
    Xz,
    Tar,
}

/// Detects the file type by magic bytes like appc's `DetectFileType`.
pub(crate) fn detect(head: &[u8]) -> Option<Compression> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if head.starts_with(b"BZh") {
        Some(Compression::Bzip2)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Compression::Xz)
    } else if head.len() > 262 && &head[257..262] == b"ustar" {
        Some(Compression::Tar)
    } else {
        None
    }
}

/// The result of copying an image stream into a blob file.
pub(crate) struct Copied {
    pub digest: [u8; 64],
    pub size: u64,
    /// Digests of the files extracted into the `tree` directory given to
    /// [`copy_stream`]; `None` if that extraction failed or was given up.
    pub tree: Option<FileDigests>,
}

/// Decompresses `reader` into `out`, hashing the uncompressed bytes. With
/// `tree`, the rootfs entries are also extracted into that (empty, existing)
/// directory, unless the manifest turns out to need a full render.
pub(crate) fn copy_stream(
    mut reader: impl Read,
    out: &mut File,
    tree: Option<&Path>,
) -> Result<Copied, StoreError> {
    let mut decoder = decompressor(&mut reader)?;
    pipeline(&mut decoder, out, tree)
}

/// The uncompressed tar stream of an image file, whatever its compression.
fn decompressor<'r>(mut reader: impl Read + 'r) -> Result<Box<dyn Read + 'r>, StoreError> {
    let mut head = Vec::with_capacity(512);
    (&mut reader)
        .take(512)
        .read_to_end(&mut head)
        .map_err(StoreError::io("reading the image"))?;
    let kind = detect(&head).ok_or(StoreError::UnknownFileType)?;
    let input = BufReader::with_capacity(256 << 10, io::Cursor::new(head).chain(reader));
    Ok(match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        Compression::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(input)),
        Compression::Tar => Box::new(input),
    })
}

/// Runs the decompressor here and, on scoped threads, the hashing, the blob
/// writing and the tree extraction, with a small pool of big buffers cycling
/// through them in that order.
fn pipeline(
    decoder: &mut dyn Read,
    out: &mut File,
    tree: Option<&Path>,
) -> Result<Copied, StoreError> {
    let (full_tx, full_rx) = mpsc::channel::<Vec<u8>>();
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let extractor = tree.map(|dir| {
            let (tx, rx) = mpsc::channel::<Vec<u8>>();
            let recycle = empty_tx.clone();
            let handle = s.spawn(move || {
                let mut chunks = ChunkReader::new(rx, recycle);
                let r = extract_stream(&mut chunks, dir);
                // Whatever happened, keep the buffers flowing back.
                chunks.drain();
                r
            });
            (tx, handle)
        });
        let (to_tree, extractor) = extractor.unzip();
        // SHA-512 is the slowest stage, so its thread does nothing else: the
        // blob is written (and the buffer passed on to the tree) by the next.
        let (hashed_tx, hashed_rx) = mpsc::channel::<Vec<u8>>();
        let hasher = s.spawn(move || -> ([u8; 64], u64) {
            let mut hasher = Sha512::new();
            let mut size = 0u64;
            for buf in full_rx {
                hasher.update(&buf);
                size += buf.len() as u64;
                if hashed_tx.send(buf).is_err() {
                    break;
                }
            }
            (hasher.finalize().into(), size)
        });
        let writer = s.spawn(move || -> io::Result<()> {
            let mut to_tree = to_tree;
            for buf in hashed_rx {
                out.write_all(&buf)?;
                let buf = match &to_tree {
                    Some(tx) => match tx.send(buf) {
                        Ok(()) => continue,
                        Err(mpsc::SendError(buf)) => {
                            to_tree = None;
                            buf
                        }
                    },
                    None => buf,
                };
                // The producer may already be gone; then the buffer is just freed.
                let _ = empty_tx.send(buf);
            }
            // Dropping `to_tree` here ends the extractor's input.
            Ok(())
        });
        let mut allocated = 0;
        let read_result = loop {
            let mut buf = match empty_rx.try_recv() {
                Ok(b) => b,
                Err(_) if allocated < IN_FLIGHT => {
                    allocated += 1;
                    Vec::new()
                }
                Err(_) => match empty_rx.recv() {
                    Ok(b) => b,
                    // The writer stopped early: its error is reported below.
                    Err(_) => break Ok(()),
                },
            };
            buf.resize(CHUNK, 0);
            let n = match fill(decoder, &mut buf) {
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            if n == 0 {
                break Ok(());
            }
            buf.truncate(n);
            if full_tx.send(buf).is_err() {
                break Ok(());
            }
        };
        drop(full_tx);
        let hashed = hasher.join();
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("image writer thread panicked")))
            .and_then(|()| {
                let (digest, size) =
                    hashed.map_err(|_| io::Error::other("image hasher thread panicked"))?;
                Ok(Copied {
                    digest,
                    size,
                    tree: None,
                })
            });
        let tree = extractor.and_then(|h| match h.join() {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                tracing::debug!("extraction while importing given up: {e}");
                None
            }
            Err(_) => None,
        });
        read_result.map_err(StoreError::Decompress)?;
        let mut copied = written.map_err(StoreError::io("writing the image blob"))?;
        copied.tree = tree;
        Ok(copied)
    })
}

/// Extracts the rootfs entries of the tar stream `r` into `dir`. `Ok(None)`
/// when the manifest has dependencies or a path whitelist: the tree is then
/// not the image's own rootfs alone. Layout and safety checks of the whole
/// image are `validate`'s job; the extractor alone keeps every write inside `dir`.
fn extract_stream(r: &mut dyn Read, dir: &Path) -> Result<Option<FileDigests>, StoreError> {
    let mut ex = Extractor::new(dir)?.with_digests();
    let mut wanted = true;
    archive::walk_stream(r, |e, data| {
        if !wanted {
            return Ok(());
        }
        if e.path == "manifest" {
            if e.size <= MAX_MANIFEST_SIZE {
                let mut raw = Vec::with_capacity(e.size as usize);
                data.read_to_end(&mut raw)
                    .map_err(StoreError::io("reading the image manifest"))?;
                let m = parse_manifest(&raw)?;
                wanted = m.dependencies.is_empty() && m.path_whitelist.is_empty();
            }
            return Ok(());
        }
        let Some(rel) = rootfs_rel(&e.path) else {
            return Ok(());
        };
        let link = match e.kind {
            Kind::Hardlink => e.link.as_deref().and_then(rootfs_rel),
            _ => None,
        };
        ex.entry(Data::Stream(data), e, rel, link)
    })?;
    if !wanted {
        return Ok(None);
    }
    ex.finish().map(Some)
}

/// Reads the buffers coming from the writer thread as one stream, handing
/// each back to the decompressor once consumed.
struct ChunkReader {
    rx: Receiver<Vec<u8>>,
    recycle: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl ChunkReader {
    fn new(rx: Receiver<Vec<u8>>, recycle: Sender<Vec<u8>>) -> Self {
        ChunkReader {
            rx,
            recycle,
            cur: Vec::new(),
            pos: 0,
        }
    }

    /// Consumes the rest of the stream.
    fn drain(mut self) {
        let _ = self.recycle.send(std::mem::take(&mut self.cur));
        for b in self.rx.iter() {
            let _ = self.recycle.send(b);
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            let done = std::mem::take(&mut self.cur);
            if done.capacity() > 0 {
                let _ = self.recycle.send(done);
            }
            self.pos = 0;
            match self.rx.recv() {
                Ok(b) => self.cur = b,
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or the stream ends.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Checks the ACI layout (appc §1.1, stricter where the reference is lax) and
/// refuses entries that could hurt whoever renders the image. Returns the raw
/// manifest bytes and the parsed manifest.
pub(crate) fn validate(blob: &File) -> Result<(Vec<u8>, ImageManifest), StoreError> {
    let mut seen = HashSet::new();
    let mut non_dirs = HashSet::new();
    let mut linkable = HashSet::new();
    let mut manifest = None;
    let mut rootfs = false;
    archive::walk(blob, |e, data| {
        let unsafe_entry = |why: &str| StoreError::Unsafe {
            entry: e.path.clone(),
            why: why.to_string(),
        };
        if !seen.insert(e.path.clone()) {
            return Err(StoreError::InvalidAci(format!(
                "duplicate file entry {:?}",
                e.path
            )));
        }
        let top = e.path.split('/').next().unwrap_or_default();
        if top != "manifest" && top != "rootfs" {
            return Err(StoreError::InvalidAci(format!(
                "unexpected top-level entry {:?}: an ACI holds only \"manifest\" and \"rootfs/\"",
                e.path
            )));
        }
        // An entry below a symlink or file would be written through it.
        let mut parent = e.path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            if non_dirs.contains(p) {
                return Err(unsafe_entry(
                    "it lies under an earlier symlink or file entry",
                ));
            }
            parent = p;
        }
        match e.kind {
            Kind::Device => return Err(unsafe_entry("device nodes are not allowed in images")),
            Kind::Sparse => return Err(unsafe_entry("sparse files are not supported")),
            Kind::Other(t) => {
                return Err(unsafe_entry(&format!(
                    "unsupported tar entry type {:?}",
                    t as char
                )))
            }
            Kind::Hardlink => {
                let target = e.link.as_deref().unwrap_or_default();
                if !target.starts_with("rootfs/") || !linkable.contains(target) {
                    return Err(unsafe_entry(
                        "hard link target must be an earlier regular file inside rootfs/",
                    ));
                }
            }
            _ => {}
        }
        if e.path == "manifest" {
            if e.kind != Kind::File {
                return Err(StoreError::InvalidAci(
                    "manifest is not a regular file".into(),
                ));
            }
            if e.size > MAX_MANIFEST_SIZE {
                return Err(StoreError::InvalidManifest(format!(
                    "it is {} bytes; the limit is {MAX_MANIFEST_SIZE}",
                    e.size
                )));
            }
            let mut buf = Vec::with_capacity(e.size as usize);
            data.take(MAX_MANIFEST_SIZE)
                .read_to_end(&mut buf)
                .map_err(StoreError::io("reading the image manifest"))?;
            manifest = Some(buf);
        } else if top == "manifest" {
            return Err(StoreError::InvalidAci(format!(
                "unexpected entry {:?}: manifest must be a file",
                e.path
            )));
        } else if e.path == "rootfs" {
            if e.kind != Kind::Dir {
                return Err(StoreError::InvalidAci("rootfs is not a directory".into()));
            }
            rootfs = true;
        }
        if e.kind != Kind::Dir {
            non_dirs.insert(e.path.clone());
        }
        if matches!(e.kind, Kind::File | Kind::Hardlink) {
            linkable.insert(e.path.clone());
        }
        Ok(())
    })?;
    let raw = manifest.ok_or_else(|| StoreError::InvalidAci("no image manifest found".into()))?;
    if !rootfs {
        return Err(StoreError::InvalidAci("no rootfs found".into()));
    }
    let parsed = parse_manifest(&raw)?;
    Ok((raw, parsed))
}

/// Parses and checks an image manifest (appc rules, Go decoding quirks).
pub(crate) fn parse_manifest(raw: &[u8]) -> Result<ImageManifest, StoreError> {
    ImageManifest::from_json(raw).map_err(|e| StoreError::InvalidManifest(e.to_string()))
}
