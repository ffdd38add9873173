//! A tar writer that puts exactly the bytes it is given into each header.
//!
//! `tar::Header::set_path` refuses `..` and absolute names, which is right for
//! normal archives but useless for crafting hostile ACIs in tests. This writer
//! copies names and link targets verbatim, spilling long ones into GNU
//! `././@LongLink` entries, and leaves all validation to the reader under test.

use std::io::{self, Read, Write};

use abi::schema::ImageManifest;
use tar::{EntryType, Header};
use thiserror::Error;

const BLOCK: usize = 512;
/// Room for a name or link target in the old header; longer ones need a GNU
/// long-name entry.
const NAME_FIELD: usize = 100;

#[derive(Debug, Error)]
pub enum RawError {
    // Not `#[from]`: that would also expose the cause as `source` and
    // `{:#}` chains would print it twice.
    #[error("writing the ACI tar stream failed: {0}")]
    Io(io::Error),
    #[error("serialising the image manifest failed: {0}")]
    Manifest(serde_json::Error),
    #[error("file entry {name:?} declared {declared} bytes but its reader gave {actual}")]
    ShortData {
        name: String,
        declared: u64,
        actual: u64,
    },
}

impl From<io::Error> for RawError {
    fn from(e: io::Error) -> Self {
        RawError::Io(e)
    }
}

impl From<serde_json::Error> for RawError {
    fn from(e: serde_json::Error) -> Self {
        RawError::Manifest(e)
    }
}

/// What an entry is; the payload is whatever the type carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawKind {
    File(Vec<u8>),
    Dir,
    Symlink(Vec<u8>),
    /// Target is another entry's archive name (e.g. `rootfs/bin/sh`).
    Hardlink(Vec<u8>),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    /// Any typeflag, with optional data and link name, for entry types the
    /// reader should reject (sockets, PAX headers, ...).
    Other {
        typeflag: u8,
        data: Vec<u8>,
        link: Vec<u8>,
    },
}

/// One tar entry with a raw byte name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub name: Vec<u8>,
    pub kind: RawKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

impl RawEntry {
    fn new(name: impl AsRef<[u8]>, kind: RawKind, mode: u32) -> Self {
        RawEntry {
            name: name.as_ref().to_vec(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    /// Regular file, mode 0644.
    pub fn file(name: impl AsRef<[u8]>, data: impl Into<Vec<u8>>) -> Self {
        Self::new(name, RawKind::File(data.into()), 0o644)
    }
    /// Directory, mode 0755.
    pub fn dir(name: impl AsRef<[u8]>) -> Self {
        Self::new(name, RawKind::Dir, 0o755)
    }
    /// Symbolic link, mode 0777.
    pub fn symlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        Self::new(name, RawKind::Symlink(target.as_ref().to_vec()), 0o777)
    }
    /// Hard link to another archive name, mode 0644.
    pub fn hardlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        Self::new(name, RawKind::Hardlink(target.as_ref().to_vec()), 0o644)
    }
    /// Character device, mode 0666.
    pub fn char_device(name: impl AsRef<[u8]>, major: u32, minor: u32) -> Self {
        Self::new(name, RawKind::CharDevice { major, minor }, 0o666)
    }
    /// Block device, mode 0660.
    pub fn block_device(name: impl AsRef<[u8]>, major: u32, minor: u32) -> Self {
        Self::new(name, RawKind::BlockDevice { major, minor }, 0o660)
    }
    /// Named pipe, mode 0644.
    pub fn fifo(name: impl AsRef<[u8]>) -> Self {
        Self::new(name, RawKind::Fifo, 0o644)
    }

    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    pub fn with_owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn with_mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }
}

/// Writes tar entries one by one, verbatim, in the order they are appended.
pub struct RawAciWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> RawAciWriter<W> {
    pub fn new(out: W) -> Self {
        RawAciWriter { out, written: 0 }
    }

    /// Bytes of tar stream written so far (headers, data and padding).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Appends the `manifest` entry, serialised with serde_json.
    pub fn manifest(&mut self, manifest: &ImageManifest, mtime: u64) -> Result<(), RawError> {
        let json = serde_json::to_vec_pretty(manifest)?;
        self.append(&RawEntry::file("manifest", json).with_mtime(mtime))
    }

    /// Appends a `manifest` entry holding arbitrary bytes (invalid JSON, ...).
    pub fn manifest_bytes(&mut self, bytes: &[u8]) -> Result<(), RawError> {
        self.append(&RawEntry::file("manifest", bytes))
    }

    pub fn append(&mut self, entry: &RawEntry) -> Result<(), RawError> {
        let data: &[u8] = match &entry.kind {
            RawKind::File(data) | RawKind::Other { data, .. } => data,
            _ => &[],
        };
        self.append_reader(entry, data.len() as u64, data)
    }

    /// Appends `entry` with `size` bytes of data streamed from `data` (the
    /// payload in `entry.kind` is ignored except for link targets and device
    /// numbers). Lets tests write huge entries without holding them in memory.
    pub fn append_reader(
        &mut self,
        entry: &RawEntry,
        size: u64,
        data: impl Read,
    ) -> Result<(), RawError> {
        let mut header = Header::new_gnu();
        let link: &[u8] = match &entry.kind {
            RawKind::Symlink(t) | RawKind::Hardlink(t) => t,
            RawKind::Other { link, .. } => link,
            _ => &[],
        };
        if entry.name.len() > NAME_FIELD {
            self.long_name(EntryType::GNULongName, &entry.name)?;
        }
        if link.len() > NAME_FIELD {
            self.long_name(EntryType::GNULongLink, link)?;
        }
        copy_field(&mut header.as_old_mut().name, &entry.name);
        copy_field(&mut header.as_old_mut().linkname, link);
        header.set_entry_type(match &entry.kind {
            RawKind::File(_) => EntryType::Regular,
            RawKind::Dir => EntryType::Directory,
            RawKind::Symlink(_) => EntryType::Symlink,
            RawKind::Hardlink(_) => EntryType::Link,
            RawKind::CharDevice { .. } => EntryType::Char,
            RawKind::BlockDevice { .. } => EntryType::Block,
            RawKind::Fifo => EntryType::Fifo,
            RawKind::Other { typeflag, .. } => EntryType::new(*typeflag),
        });
        if let RawKind::CharDevice { major, minor } | RawKind::BlockDevice { major, minor } =
            entry.kind
        {
            header.set_device_major(major)?;
            header.set_device_minor(minor)?;
        }
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mtime(entry.mtime);
        header.set_size(size);
        header.set_cksum();
        self.write_block_data(header.as_bytes(), size, data, &entry.name)
    }

    /// Writes the two zero blocks that end a tar archive and returns the sink.
    pub fn finish(mut self) -> Result<W, RawError> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Returns the sink without the end-of-archive blocks (a truncated ACI;
    /// cut the bytes further to end mid-entry).
    pub fn finish_truncated(self) -> W {
        self.out
    }

    fn long_name(&mut self, kind: EntryType, bytes: &[u8]) -> Result<(), RawError> {
        let mut header = Header::new_gnu();
        copy_field(&mut header.as_old_mut().name, b"././@LongLink");
        header.set_entry_type(kind);
        header.set_mode(0o644);
        let mut data = bytes.to_vec();
        data.push(0);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.write_block_data(header.as_bytes(), data.len() as u64, &data[..], bytes)
    }

    fn write_block_data(
        &mut self,
        header: &[u8],
        size: u64,
        data: impl Read,
        name: &[u8],
    ) -> Result<(), RawError> {
        self.out.write_all(header)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(RawError::ShortData {
                name: String::from_utf8_lossy(name).into_owned(),
                declared: size,
                actual: copied,
            });
        }
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..pad])?;
        self.written += (BLOCK as u64) + size + pad as u64;
        Ok(())
    }
}

/// Copies as much of `src` as fits; the rest went into a long-name entry.
fn copy_field(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
    dst[n..].fill(0);
}

/// Gzip-compresses a whole archive (for tests crafting compressed ACIs).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(bytes: &[u8]) -> Vec<(Vec<u8>, EntryType, Option<Vec<u8>>)> {
        let mut ar = tar::Archive::new(bytes);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e.link_name_bytes().map(|l| l.into_owned());
                (e.path_bytes().into_owned(), e.header().entry_type(), link)
            })
            .collect()
    }

    #[test]
    fn hostile_names_are_written_verbatim() {
        let long = format!("rootfs/{}/file", "d".repeat(150));
        let long_target = format!("/{}", "t".repeat(200));
        let mut w = RawAciWriter::new(Vec::new());
        w.manifest_bytes(b"{}").unwrap();
        w.append(&RawEntry::file("rootfs/../../etc/evil", "x"))
            .unwrap();
        w.append(&RawEntry::file("/etc/absolute", "x")).unwrap();
        w.append(&RawEntry::symlink("rootfs/etc", "/etc")).unwrap();
        w.append(&RawEntry::file("rootfs/etc/passwd", "evil"))
            .unwrap();
        w.append(&RawEntry::hardlink("rootfs/shadow", "../../etc/shadow"))
            .unwrap();
        w.append(&RawEntry::char_device("rootfs/mem", 1, 1))
            .unwrap();
        w.append(&RawEntry::block_device("rootfs/sda", 8, 0))
            .unwrap();
        w.append(&RawEntry::file(&long, "x")).unwrap();
        w.append(&RawEntry::symlink("rootfs/l", &long_target))
            .unwrap();
        let bytes = w.finish().unwrap();

        let got = entries(&bytes);
        let names: Vec<String> = got
            .iter()
            .map(|(n, _, _)| String::from_utf8(n.clone()).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "manifest",
                "rootfs/../../etc/evil",
                "/etc/absolute",
                "rootfs/etc",
                "rootfs/etc/passwd",
                "rootfs/shadow",
                "rootfs/mem",
                "rootfs/sda",
                long.as_str(),
                "rootfs/l",
            ]
        );
        assert_eq!(got[5].1, EntryType::Link);
        assert_eq!(got[5].2.as_deref(), Some(&b"../../etc/shadow"[..]));
        assert_eq!(got[6].1, EntryType::Char);
        assert_eq!(got[9].2.as_deref(), Some(long_target.as_bytes()));

        let mut ar = tar::Archive::new(&bytes[..]);
        let sda = ar.entries().unwrap().nth(7).unwrap().unwrap();
        assert_eq!(sda.header().device_major().unwrap(), Some(8));
    }

    #[test]
    fn truncated_archive_has_no_trailer() {
        let mut w = RawAciWriter::new(Vec::new());
        w.manifest_bytes(b"{}").unwrap();
        assert_eq!(w.bytes_written(), 1024);
        let bytes = w.finish_truncated();
        assert_eq!(bytes.len(), 1024);
    }

    #[test]
    fn short_reader_is_an_error() {
        let mut w = RawAciWriter::new(Vec::new());
        let err = w
            .append_reader(&RawEntry::file("manifest", ""), 10, &b"abc"[..])
            .unwrap_err();
        assert!(matches!(err, RawError::ShortData { actual: 3, .. }));
    }
}
