//! Walking a stored (uncompressed) ACI tar: entry names cleaned and checked,
//! contents located by offset so callers can copy them without re-reading the
//! archive sequentially.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use tar::EntryType;

use super::StoreError;

/// What an archive entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Fifo,
    Device,
    Sparse,
    Other(u8),
}

/// One entry with its metadata; contents are at `data_offset` in the blob.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Cleaned relative path: no leading `/` or `./`, no `.`/`..`, no trailing `/`.
    pub path: String,
    pub kind: Kind,
    /// Symlink target as written; hardlink target cleaned like `path`.
    pub link: Option<String>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub data_offset: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Cleans an archive path. Absolute names and `..` components are refused,
/// never rewritten, so a hostile archive cannot aim anywhere else.
pub(crate) fn clean_path(raw: &[u8]) -> Result<String, StoreError> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let s = std::str::from_utf8(raw).map_err(|_| StoreError::Unsafe {
        entry: shown.clone(),
        why: "file name is not valid UTF-8".into(),
    })?;
    if s.starts_with('/') {
        return Err(StoreError::Unsafe {
            entry: shown,
            why: "absolute paths are not allowed in images".into(),
        });
    }
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(StoreError::Unsafe {
                    entry: shown,
                    why: "\"..\" components are not allowed in images".into(),
                })
            }
            c if c.contains('\0') => {
                return Err(StoreError::Unsafe {
                    entry: shown,
                    why: "NUL in file name".into(),
                })
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

fn kind_of(t: EntryType) -> Kind {
    match t {
        EntryType::Regular | EntryType::Continuous => Kind::File,
        EntryType::Directory => Kind::Dir,
        EntryType::Symlink => Kind::Symlink,
        EntryType::Link => Kind::Hardlink,
        EntryType::Fifo => Kind::Fifo,
        EntryType::Char | EntryType::Block => Kind::Device,
        EntryType::GNUSparse => Kind::Sparse,
        other => Kind::Other(other.as_byte()),
    }
}

/// Calls `f` for every entry of the tar in `blob` (entries named `.` are
/// skipped). `f` may read the entry's contents from the reader it is given.
pub(crate) fn walk(
    blob: &File,
    f: impl FnMut(&Entry, &mut dyn Read) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let len = blob
        .metadata()
        .map_err(StoreError::io("reading the image blob"))?
        .len();
    let mut reader = blob;
    reader
        .seek(SeekFrom::Start(0))
        .map_err(StoreError::io("reading the image blob"))?;
    let mut archive = tar::Archive::new(reader);
    // Seeking skips the contents `f` does not read.
    let entries = archive.entries_with_seek().map_err(bad)?;
    walk_entries(entries, Some(len), f)
}

/// Like [`walk`] over a tar stream read once from the start; a truncated
/// stream shows up as an error reading an entry or the next header.
pub(crate) fn walk_stream(
    reader: impl Read,
    f: impl FnMut(&Entry, &mut dyn Read) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(bad)?;
    walk_entries(entries, None, f)
}

fn bad(e: std::io::Error) -> StoreError {
    StoreError::InvalidAci(format!("bad tar archive: {e}"))
}

/// The entries of `entries`, checked against the archive length `len` when known.
fn walk_entries<R: Read>(
    entries: tar::Entries<'_, R>,
    len: Option<u64>,
    mut f: impl FnMut(&Entry, &mut dyn Read) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for entry in entries {
        let mut entry = entry.map_err(bad)?;
        let path = clean_path(&entry.path_bytes())?;
        if path.is_empty() {
            continue;
        }
        let header = entry.header().clone();
        let kind = kind_of(header.entry_type());
        let link =
            match (kind, entry.link_name_bytes()) {
                (Kind::Hardlink, Some(l)) => Some(clean_path(&l)?),
                (Kind::Symlink, Some(l)) => Some(String::from_utf8(l.into_owned()).map_err(
                    |_| StoreError::Unsafe {
                        entry: path.clone(),
                        why: "symlink target is not valid UTF-8".into(),
                    },
                )?),
                (Kind::Hardlink | Kind::Symlink, None) => {
                    return Err(StoreError::InvalidAci(format!(
                        "link {path:?} has no target"
                    )))
                }
                _ => None,
            };
        let size = entry.size();
        let data_offset = entry.raw_file_position();
        let end = data_offset.saturating_add(header.entry_size().map_err(bad)?);
        if len.is_some_and(|len| end > len) {
            return Err(StoreError::InvalidAci(format!(
                "archive is truncated inside {path:?}"
            )));
        }
        let mut xattrs = Vec::new();
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                if let Ok(k) = ext.key() {
                    if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                        xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
        let e = Entry {
            path,
            kind,
            link,
            // Empty numeric fields read as 0, like Go's archive/tar.
            mode: header.mode().unwrap_or(0),
            uid: header.uid().unwrap_or(0),
            gid: header.gid().unwrap_or(0),
            mtime: header.mtime().unwrap_or(0),
            size,
            data_offset,
            xattrs,
        };
        f(&e, &mut entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        assert_eq!(clean_path(b"./rootfs/bin/").unwrap(), "rootfs/bin");
        assert_eq!(clean_path(b"rootfs//a/./b").unwrap(), "rootfs/a/b");
        assert_eq!(clean_path(b"./").unwrap(), "");
        assert!(clean_path(b"/etc/passwd").is_err());
        assert!(clean_path(b"rootfs/../../x").is_err());
        assert!(clean_path(b"rootfs/a/..").is_err());
    }
}
