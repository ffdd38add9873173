//! Builds a well-formed ACI from a manifest and a rootfs directory.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use abi::schema::ImageManifest;
use thiserror::Error;

use crate::raw::{RawAciWriter, RawEntry, RawError, RawKind};

/// mtime of every entry in a deterministic build (2000-01-01T00:00:00Z), so
/// the same inputs always give the same tar and thus the same image ID.
pub const DETERMINISTIC_MTIME: u64 = 946_684_800;

#[derive(Debug, Error)]
pub enum BuildError {
    // `err`, not `source`: the message carries it already (no repeat in
    // `{:#}` chains).
    #[error("reading rootfs entry {path}: {err}")]
    Read { path: PathBuf, err: io::Error },
    #[error("rootfs entry {0} is a socket or unknown file type; ACIs cannot hold it, remove it from the rootfs")]
    Unsupported(PathBuf),
    #[error("writing ACI {path}: {err}")]
    Write { path: PathBuf, err: io::Error },
    #[error(transparent)]
    Tar(#[from] RawError),
}

/// Writes `manifest`, `rootfs` and everything under the rootfs source
/// directory (sorted by path, hard links detected by inode).
#[derive(Debug, Clone)]
pub struct AciBuilder {
    manifest: ImageManifest,
    rootfs: PathBuf,
    gzip: bool,
    mtime: Option<u64>,
}

impl AciBuilder {
    pub fn new(manifest: ImageManifest, rootfs: impl Into<PathBuf>) -> Self {
        AciBuilder {
            manifest,
            rootfs: rootfs.into(),
            gzip: false,
            mtime: None,
        }
    }

    /// Gzip-compresses the output.
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }

    /// Stamps every entry with [`DETERMINISTIC_MTIME`] instead of the source's.
    pub fn deterministic(mut self, on: bool) -> Self {
        self.mtime = on.then_some(DETERMINISTIC_MTIME);
        self
    }

    /// Stamps every entry with `mtime` (seconds since the epoch).
    pub fn mtime(mut self, mtime: u64) -> Self {
        self.mtime = Some(mtime);
        self
    }

    pub fn manifest(&self) -> &ImageManifest {
        &self.manifest
    }

    /// Writes the ACI to `out` and returns it.
    pub fn write_to<W: Write>(&self, out: W) -> Result<W, BuildError> {
        if self.gzip {
            let enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            let enc = self.write_tar(enc)?;
            enc.finish().map_err(|e| BuildError::Tar(e.into()))
        } else {
            self.write_tar(out)
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, BuildError> {
        self.write_to(Vec::new())
    }

    /// Writes the ACI to `path` through a temporary sibling, so a failed
    /// build never leaves a half-written image behind.
    pub fn write_file(&self, path: &Path) -> Result<(), BuildError> {
        let werr = |err| BuildError::Write {
            path: path.to_path_buf(),
            err,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let result = File::create(&tmp)
            .map_err(werr)
            .and_then(|f| self.write_to(BufWriter::new(f)))
            .and_then(|w| w.into_inner().map_err(|e| werr(e.into_error())))
            .and_then(|f| f.sync_all().map_err(werr))
            .and_then(|()| fs::rename(&tmp, path).map_err(werr));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn write_tar<W: Write>(&self, out: W) -> Result<W, BuildError> {
        let mut w = RawAciWriter::new(out);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        w.manifest(&self.manifest, self.mtime.unwrap_or(now))?;

        let mut entries = vec![(OsString::from("rootfs"), self.rootfs.clone())];
        collect(&self.rootfs, "rootfs".into(), &mut entries)?;
        // Byte order puts every directory before its contents.
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

        let mut seen_inodes: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
        for (name, path) in entries {
            let rerr = |err| BuildError::Read {
                path: path.clone(),
                err,
            };
            let meta = fs::symlink_metadata(&path).map_err(rerr)?;
            let name = name.into_vec();
            let ft = meta.file_type();
            let mut kind = if ft.is_dir() {
                RawKind::Dir
            } else if ft.is_file() {
                RawKind::File(Vec::new())
            } else if ft.is_symlink() {
                RawKind::Symlink(
                    fs::read_link(&path)
                        .map_err(rerr)?
                        .into_os_string()
                        .into_vec(),
                )
            } else if ft.is_char_device() {
                let (major, minor) = dev_numbers(meta.rdev());
                RawKind::CharDevice { major, minor }
            } else if ft.is_block_device() {
                let (major, minor) = dev_numbers(meta.rdev());
                RawKind::BlockDevice { major, minor }
            } else if ft.is_fifo() {
                RawKind::Fifo
            } else {
                return Err(BuildError::Unsupported(path));
            };
            if !ft.is_dir() && meta.nlink() > 1 {
                match seen_inodes.get(&(meta.dev(), meta.ino())) {
                    Some(first) => kind = RawKind::Hardlink(first.clone()),
                    None => {
                        seen_inodes.insert((meta.dev(), meta.ino()), name.clone());
                    }
                }
            }
            let entry = RawEntry {
                name,
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid().into(),
                gid: meta.gid().into(),
                mtime: self
                    .mtime
                    .unwrap_or_else(|| meta.mtime().try_into().unwrap_or(0)),
            };
            if let RawKind::File(_) = entry.kind {
                let f = File::open(&path).map_err(rerr)?;
                w.append_reader(&entry, meta.len(), f)?;
            } else {
                w.append(&entry)?;
            }
        }
        Ok(w.finish()?)
    }
}

/// Collects (archive name, source path) of everything under `dir`.
fn collect(
    dir: &Path,
    prefix: OsString,
    out: &mut Vec<(OsString, PathBuf)>,
) -> Result<(), BuildError> {
    let rerr = |err| BuildError::Read {
        path: dir.to_path_buf(),
        err,
    };
    for ent in fs::read_dir(dir).map_err(rerr)? {
        let ent = ent.map_err(rerr)?;
        let mut name = prefix.clone();
        name.push("/");
        name.push(ent.file_name());
        let path = ent.path();
        let is_dir = ent.file_type().map_err(rerr)?.is_dir();
        out.push((name.clone(), path.clone()));
        if is_dir {
            collect(&path, name, out)?;
        }
    }
    Ok(())
}

/// Splits a Linux `dev_t` the way glibc's `major()`/`minor()` do.
fn dev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::manifest::image_manifest;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("bin")).unwrap();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(r.join("bin/tool"), b"binary").unwrap();
        fs::hard_link(r.join("bin/tool"), r.join("bin/tool2")).unwrap();
        symlink("tool", r.join("bin/link")).unwrap();
        fs::write(r.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
        dir
    }

    fn list(bytes: &[u8]) -> Vec<(String, tar::EntryType, Option<String>)> {
        tar::Archive::new(bytes)
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                    e.link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn entries_are_sorted_and_hardlinks_detected() {
        let dir = rootfs();
        let m = image_manifest("example.com/test", &[("version", "1")]).unwrap();
        let bytes = AciBuilder::new(m.clone(), dir.path())
            .deterministic(true)
            .to_bytes()
            .unwrap();
        let got = list(&bytes);
        use tar::EntryType as T;
        let expected = [
            ("manifest", T::Regular, None),
            ("rootfs", T::Directory, None),
            ("rootfs/bin", T::Directory, None),
            ("rootfs/bin/link", T::Symlink, Some("tool")),
            ("rootfs/bin/tool", T::Regular, None),
            ("rootfs/bin/tool2", T::Link, Some("rootfs/bin/tool")),
            ("rootfs/etc", T::Directory, None),
            ("rootfs/etc/passwd", T::Regular, None),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(n, t, l)| (n.to_string(), *t, l.map(str::to_string)))
            .collect();
        assert_eq!(got, expected);

        let mut ar = tar::Archive::new(&bytes[..]);
        let mut first = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(first.header().mtime().unwrap(), DETERMINISTIC_MTIME);
        let read: ImageManifest = serde_json::from_reader(&mut first).unwrap();
        assert_eq!(read, m);
    }

    #[test]
    fn deterministic_builds_are_identical_and_gzip_round_trips() {
        let dir = rootfs();
        let m = image_manifest("example.com/test", &[]).unwrap();
        let b = AciBuilder::new(m, dir.path()).deterministic(true);
        let one = b.to_bytes().unwrap();
        assert_eq!(one, b.to_bytes().unwrap());

        let gz = b.clone().gzip(true).to_bytes().unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let mut plain = Vec::new();
        io::copy(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        assert_eq!(plain, one);
    }

    #[test]
    fn write_file_leaves_no_temporary() {
        let dir = rootfs();
        let out = tempfile::tempdir().unwrap();
        let m = image_manifest("example.com/test", &[]).unwrap();
        let path = out.path().join("x.aci");
        AciBuilder::new(m, dir.path()).write_file(&path).unwrap();
        let names: Vec<_> = fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [OsString::from("x.aci")]);
    }

    #[test]
    fn missing_rootfs_is_reported() {
        let m = image_manifest("example.com/test", &[]).unwrap();
        let err = AciBuilder::new(m, "/nonexistent-rootfs")
            .to_bytes()
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent-rootfs"), "{err}");
    }

    #[test]
    fn dev_numbers_split_like_glibc() {
        assert_eq!(dev_numbers(0x0103), (1, 3));
        assert_eq!(dev_numbers(0x0800), (8, 0));
    }
}
