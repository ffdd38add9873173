//! Import: one streaming pass that decompresses on the calling thread while a
//! second thread hashes and writes the uncompressed tar, then a header-only
//! walk of the written blob that checks the ACI layout and reads the manifest.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::sync::mpsc;

use abi::schema::ImageManifest;
use sha2::{Digest, Sha512};

use super::archive::{self, Kind};
use super::StoreError;

/// Largest manifest accepted; stops a hostile image from making us buffer gigabytes.
pub const MAX_MANIFEST_SIZE: u64 = abi::schema::MAX_MANIFEST_SIZE as u64;
/// Size of the buffers passed between the decompressing and hashing threads.
const CHUNK: usize = 1 << 20;
/// Buffers in flight: enough to keep both threads busy, little memory.
const IN_FLIGHT: usize = 4;

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
}

/// Decompresses `reader` into `out`, hashing the uncompressed bytes.
pub(crate) fn copy_stream(mut reader: impl Read, out: &mut File) -> Result<Copied, StoreError> {
    let mut head = Vec::with_capacity(512);
    (&mut reader)
        .take(512)
        .read_to_end(&mut head)
        .map_err(StoreError::io("reading the image"))?;
    let kind = detect(&head).ok_or(StoreError::UnknownFileType)?;
    let input = BufReader::with_capacity(256 << 10, io::Cursor::new(head).chain(reader));
    let mut decoder: Box<dyn Read> = match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        Compression::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(input)),
        Compression::Tar => Box::new(input),
    };
    pipeline(&mut decoder, out)
}

/// Runs the decompressor here and hashing + writing on a scoped thread, with
/// a small pool of big buffers cycling between them.
fn pipeline(decoder: &mut dyn Read, out: &mut File) -> Result<Copied, StoreError> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> io::Result<Copied> {
            let mut hasher = Sha512::new();
            let mut size = 0u64;
            for buf in full_rx {
                hasher.update(&buf);
                out.write_all(&buf)?;
                size += buf.len() as u64;
                // The producer may already be gone; then the buffer is just freed.
                let _ = empty_tx.send(buf);
            }
            Ok(Copied {
                digest: hasher.finalize().into(),
                size,
            })
        });
        let mut allocated = 0;
        let read_result = loop {
            let mut buf = match empty_rx.try_recv() {
                Ok(b) => b,
                Err(_) if allocated < IN_FLIGHT + 2 => {
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
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("image writer thread panicked")));
        read_result.map_err(StoreError::Decompress)?;
        written.map_err(StoreError::io("writing the image blob"))
    })
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
