//! Writing archive entries under a destination directory. Every parent
//! component is opened relative to the destination with `O_NOFOLLOW`, so no
//! entry can create or write anything outside it, whatever symlinks earlier
//! entries (or earlier layers) left behind.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};
use xxhash_rust::xxh3::Xxh3;

use super::archive::{Entry, Kind};
use super::{sys, StoreError};

/// XXH3-128 of the contents of each regular file written (hard links
/// included), by path relative to the destination: the tree hash uses them
/// instead of reading the files back. A fast non-cryptographic digest is
/// enough: the tree hash detects accidental change of a rendered tree, and
/// whoever can write the tree can rewrite its `hash` file too.
pub(crate) type FileDigests = HashMap<String, [u8; 16]>;

/// Where an entry's contents come from.
pub(crate) enum Data<'a> {
    /// The stored blob, at the entry's `data_offset`.
    Blob(&'a File),
    /// The entry's reader of a tar stream.
    Stream(&'a mut dyn Read),
}

/// Buffer for contents copied through user space.
const COPY_BUF: usize = 1 << 20;

/// Executables are written at most this much per call. The page cache
/// makes a folio as large as the write that fills it, and a fault maps the
/// whole folio: a binary written 1 MiB at a time puts 512 KiB into the
/// resident set of every process around each function it runs (a pod's
/// idle supervisor then shows 1.2 MiB instead of 0.5). 64 KiB is the
/// kernel's fault-around window, the amount a fault maps anyway.
const EXEC_WRITE_CHUNK: usize = 64 << 10;

struct DirMeta {
    rel: String,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

pub(crate) struct Extractor {
    root: OwnedFd,
    /// Open descriptors of the components of the last parent directory.
    stack: Vec<(String, OwnedFd)>,
    dirs: Vec<DirMeta>,
    /// Regular files written by this extractor: the only valid hard-link targets.
    written: HashSet<String>,
    chown: bool,
    copy_buf: Vec<u8>,
    /// Set when the caller wants the contents hashed while they are written.
    digests: Option<FileDigests>,
}

fn unsafe_err(rel: &str, why: impl Into<String>) -> StoreError {
    StoreError::Unsafe {
        entry: rel.to_string(),
        why: why.into(),
    }
}

fn io_err(rel: &str, what: &str, e: impl Into<io::Error>) -> StoreError {
    StoreError::Io {
        context: format!("{what} {rel:?}"),
        source: e.into(),
    }
}

impl Extractor {
    pub fn new(dest: &Path) -> Result<Self, StoreError> {
        let root = sys::open_dir(dest).map_err(StoreError::io(format!(
            "opening destination {}",
            dest.display()
        )))?;
        Ok(Extractor {
            root,
            stack: Vec::new(),
            dirs: Vec::new(),
            written: HashSet::new(),
            chown: nix::unistd::geteuid().is_root(),
            copy_buf: Vec::new(),
            digests: None,
        })
    }

    /// Also hashes every file's contents as it writes them (see [`FileDigests`]).
    pub fn with_digests(mut self) -> Self {
        self.digests = Some(FileDigests::new());
        self
    }

    /// Opens directory `rel` under the root, creating missing components
    /// (mode 0755) and refusing to pass through anything but real directories.
    fn open_dir(&self, rel: &str) -> Result<OwnedFd, StoreError> {
        let mut cur = self
            .root
            .try_clone()
            .map_err(StoreError::io("duplicating a descriptor"))?;
        for comp in rel.split('/').filter(|c| !c.is_empty()) {
            cur = open_or_create_dir(cur.as_raw_fd(), comp).map_err(|e| match e {
                Errno::ELOOP | Errno::ENOTDIR => unsafe_err(
                    rel,
                    format!("path component {comp:?} is a symlink or not a directory; refusing to write through it"),
                ),
                e => io_err(rel, "opening directory", e),
            })?;
        }
        Ok(cur)
    }

    /// True if a regular file was written at `rel` (a valid hard-link target).
    pub fn was_written(&self, rel: &str) -> bool {
        self.written.contains(rel)
    }

    /// Descriptor of directory `dir`, reusing the open chain of the previous
    /// entry's directory (archives list a directory's entries together).
    fn parent(&mut self, dir: &str) -> Result<RawFd, StoreError> {
        let comps: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
        let common = self
            .stack
            .iter()
            .zip(&comps)
            .take_while(|((name, _), c)| name == *c)
            .count();
        self.stack.truncate(common);
        for (i, comp) in comps.iter().enumerate().skip(common) {
            let base = match self.stack.last() {
                Some((_, fd)) => fd.as_raw_fd(),
                None => self.root.as_raw_fd(),
            };
            let fd = open_or_create_dir(base, comp).map_err(|e| match e {
                Errno::ELOOP | Errno::ENOTDIR => unsafe_err(
                    &comps[..=i].join("/"),
                    format!("path component {comp:?} is a symlink or not a directory; refusing to write through it"),
                ),
                e => io_err(&comps[..=i].join("/"), "opening directory", e),
            })?;
            self.stack.push((comp.to_string(), fd));
        }
        Ok(match self.stack.last() {
            Some((_, fd)) => fd.as_raw_fd(),
            None => self.root.as_raw_fd(),
        })
    }

    /// Removes a non-directory at `name` so a new entry can take its place.
    fn clear(&self, pfd: RawFd, name: &str, rel: &str) -> Result<(), StoreError> {
        match nix::unistd::unlinkat(Some(pfd), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR) | Err(Errno::EPERM) => Err(unsafe_err(
                rel,
                "a directory already exists there; refusing to replace it",
            )),
            Err(e) => Err(io_err(rel, "removing existing", e)),
        }
    }

    /// Writes `e` at `rel` (relative to the destination; empty = the
    /// destination itself). `link_rel` is a hard link's target mapped the same way.
    pub fn entry(
        &mut self,
        data: Data<'_>,
        e: &Entry,
        rel: &str,
        link_rel: Option<&str>,
    ) -> Result<(), StoreError> {
        if rel.is_empty() {
            if e.kind == Kind::Dir {
                self.dirs.push(dir_meta(e, rel));
            }
            return Ok(());
        }
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let pfd = self.parent(dir)?;
        match e.kind {
            Kind::Dir => {
                match nix::sys::stat::mkdirat(Some(pfd), name, Mode::from_bits_truncate(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => {
                        let st =
                            nix::sys::stat::fstatat(Some(pfd), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                                .map_err(|e| io_err(rel, "inspecting", e))?;
                        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
                            // A lower layer's symlink or file is replaced, never followed.
                            self.clear(pfd, name, rel)?;
                            nix::sys::stat::mkdirat(
                                Some(pfd),
                                name,
                                Mode::from_bits_truncate(0o700),
                            )
                            .map_err(|e| io_err(rel, "creating directory", e))?;
                        }
                    }
                    Err(err) => return Err(io_err(rel, "creating directory", err)),
                }
                self.dirs.push(dir_meta(e, rel));
            }
            Kind::File => {
                self.clear(pfd, name, rel)?;
                let f =
                    sys::create_file_at(pfd, name).map_err(|err| io_err(rel, "creating", err))?;
                self.copy_data(data, &f, e, rel)?;
                self.set_xattrs(&f, e, rel);
                self.own_and_mode(&f, e, rel)?;
                self.written.insert(rel.to_string());
            }
            Kind::Symlink => {
                self.clear(pfd, name, rel)?;
                let target = e.link.as_deref().unwrap_or_default();
                nix::unistd::symlinkat(target, Some(pfd), name)
                    .map_err(|err| io_err(rel, "creating symlink", err))?;
                if self.chown {
                    nix::unistd::fchownat(
                        Some(pfd),
                        name,
                        Some(Uid::from_raw(e.uid as u32)),
                        Some(Gid::from_raw(e.gid as u32)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|err| io_err(rel, "changing owner of", err))?;
                }
                let t = TimeSpec::new(e.mtime as i64, 0);
                nix::sys::stat::utimensat(Some(pfd), name, &t, &t, UtimensatFlags::NoFollowSymlink)
                    .map_err(|err| io_err(rel, "setting times of", err))?;
            }
            Kind::Hardlink => {
                let target = link_rel.unwrap_or_default();
                if !self.written.contains(target) {
                    return Err(unsafe_err(
                        rel,
                        format!("hard link target {target:?} is not an earlier file of this image"),
                    ));
                }
                let (tdir, tname) = target.rsplit_once('/').unwrap_or(("", target));
                let tfd = self.open_dir(tdir)?;
                self.clear(pfd, name, rel)?;
                nix::unistd::linkat(
                    Some(tfd.as_raw_fd()),
                    tname,
                    Some(pfd),
                    name,
                    AtFlags::empty(),
                )
                .map_err(|err| io_err(rel, "creating hard link", err))?;
                if let Some(d) = self.digests.as_mut() {
                    if let Some(sum) = d.get(target).copied() {
                        d.insert(rel.to_string(), sum);
                    }
                }
                self.written.insert(rel.to_string());
            }
            Kind::Fifo => {
                self.clear(pfd, name, rel)?;
                nix::sys::stat::mknodat(
                    Some(pfd),
                    name,
                    SFlag::S_IFIFO,
                    Mode::from_bits_truncate(0o600),
                    0,
                )
                .map_err(|err| io_err(rel, "creating fifo", err))?;
                // Opening a fifo would block: adjust it by name, not following links.
                if self.chown {
                    nix::unistd::fchownat(
                        Some(pfd),
                        name,
                        Some(Uid::from_raw(e.uid as u32)),
                        Some(Gid::from_raw(e.gid as u32)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|err| io_err(rel, "changing owner of", err))?;
                }
                nix::sys::stat::fchmodat(
                    Some(pfd),
                    name,
                    Mode::from_bits_truncate(e.mode & 0o7777),
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
                .map_err(|err| io_err(rel, "changing mode of", err))?;
                let t = TimeSpec::new(e.mtime as i64, 0);
                nix::sys::stat::utimensat(Some(pfd), name, &t, &t, UtimensatFlags::NoFollowSymlink)
                    .map_err(|err| io_err(rel, "setting times of", err))?;
            }
            Kind::Device => return Err(unsafe_err(rel, "device nodes are not allowed in images")),
            Kind::Sparse | Kind::Other(_) => {
                return Err(unsafe_err(rel, "unsupported tar entry type"))
            }
        }
        Ok(())
    }

    /// Copies the entry's bytes: from the blob in the kernel when nothing
    /// needs to see them, else through a buffer (hashing them if asked).
    fn copy_data(
        &mut self,
        data: Data<'_>,
        f: &File,
        e: &Entry,
        rel: &str,
    ) -> Result<(), StoreError> {
        let truncated = || StoreError::InvalidAci(format!("archive is truncated inside {rel:?}"));
        let mut off = e.data_offset as i64;
        let mut left = e.size as usize;
        let mut hasher = self.digests.as_ref().map(|_| Xxh3::new());
        let executable = e.mode & 0o111 != 0;
        // Executables: up to the next multiple of the chunk in the file, so
        // that a short write does not misalign the folios after it. Other
        // files: as much as the kernel takes in one call.
        let size = e.size as usize;
        let piece = |left: usize| match executable {
            true => left.min(EXEC_WRITE_CHUNK - (size - left) % EXEC_WRITE_CHUNK),
            false => left,
        };
        if let (Data::Blob(blob), None) = (&data, &hasher) {
            while left > 0 {
                match sys::copy_file_range(*blob, &mut off, f, piece(left)) {
                    Ok(0) => return Err(truncated()),
                    Ok(n) => left -= n,
                    Err(Errno::EINTR) => {}
                    Err(Errno::EXDEV | Errno::ENOSYS | Errno::EINVAL | Errno::EOPNOTSUPP) => break,
                    Err(err) => return Err(io_err(rel, "writing", err)),
                }
            }
        }
        if left > 0 && self.copy_buf.len() < COPY_BUF {
            self.copy_buf.resize(COPY_BUF, 0);
        }
        let mut out = f;
        let mut data = data;
        while left > 0 {
            let want = piece(left).min(self.copy_buf.len());
            let buf = &mut self.copy_buf[..want];
            let n = match &mut data {
                Data::Blob(blob) => blob.read_at(buf, off as u64),
                Data::Stream(r) => r.read(buf),
            };
            let n = match n {
                Ok(0) => return Err(truncated()),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(io_err(rel, "reading archive for", err)),
            };
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[..n]);
            }
            out.write_all(&buf[..n])
                .map_err(|err| io_err(rel, "writing", err))?;
            off += n as i64;
            left -= n;
        }
        if let (Some(d), Some(h)) = (self.digests.as_mut(), hasher) {
            d.insert(rel.to_string(), h.digest128().to_le_bytes());
        }
        Ok(())
    }

    fn set_xattrs(&self, f: &impl AsRawFd, e: &Entry, rel: &str) {
        for (k, v) in &e.xattrs {
            // Best effort: the target filesystem may not support every namespace.
            if let Err(err) = sys::fsetxattr(f, k, v) {
                tracing::debug!("{rel}: cannot set xattr {k}: {err}");
            }
        }
    }

    fn own_and_mode(&self, f: &impl AsRawFd, e: &Entry, rel: &str) -> Result<(), StoreError> {
        apply_meta(f.as_raw_fd(), self.chown, e.uid, e.gid, e.mode, e.mtime)
            .map_err(|err| io_err(rel, "setting owner, mode and times of", err))
    }

    /// Applies directory metadata, deepest last-created first, now that their
    /// contents no longer change their mtimes. Returns the file digests
    /// (empty unless [`with_digests`](Self::with_digests)).
    pub fn finish(mut self) -> Result<FileDigests, StoreError> {
        self.stack.clear();
        while let Some(d) = self.dirs.pop() {
            let fd = self.open_dir(&d.rel)?;
            apply_meta(fd.as_raw_fd(), self.chown, d.uid, d.gid, d.mode, d.mtime)
                .map_err(|err| io_err(&d.rel, "setting owner, mode and times of", err))?;
        }
        Ok(self.digests.take().unwrap_or_default())
    }
}

/// Opens (creating with mode 0755 if missing) directory `name` under `dir`,
/// never following a symlink.
fn open_or_create_dir(dir: RawFd, name: &str) -> nix::Result<OwnedFd> {
    match sys::open_dir_at(dir, name) {
        Err(Errno::ENOENT) => {
            match nix::sys::stat::mkdirat(Some(dir), name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            sys::open_dir_at(dir, name)
        }
        r => r,
    }
}

fn dir_meta(e: &Entry, rel: &str) -> DirMeta {
    DirMeta {
        rel: rel.to_string(),
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        mtime: e.mtime,
    }
}

/// chown before chmod: chown clears setuid/setgid bits.
fn apply_meta(
    fd: RawFd,
    chown: bool,
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: u64,
) -> nix::Result<()> {
    if chown {
        nix::unistd::fchown(
            fd,
            Some(Uid::from_raw(uid as u32)),
            Some(Gid::from_raw(gid as u32)),
        )?;
    }
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode & 0o7777))?;
    let t = TimeSpec::new(mtime as i64, 0);
    nix::sys::stat::futimens(fd, &t, &t)
}
