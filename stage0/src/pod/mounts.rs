//! The mount table and safe removal of pod directories.
//!
//! A pod directory can have mounts under it (overlays of stage1 and apps made
//! by stage0, binds of host paths made by a stage1). Removing it recursively
//! while something is still mounted would delete host files through the mount,
//! so removal always unmounts first, re-reads the mount table to verify nothing
//! is left, and then walks the tree refusing to descend into any directory that
//! lives on a different mount than the pod directory itself.

use std::ffi::CStr;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};
use thiserror::Error;

const MOUNTINFO: &str = "/proc/self/mountinfo";

#[derive(Debug, Error)]
pub enum MountError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("malformed mountinfo line {line}: {reason}")]
    Parse { line: usize, reason: String },
    #[error("cannot unmount {mount_point}: {source}")]
    Unmount { mount_point: PathBuf, source: Errno },
    #[error(
        "refusing to remove {path}: {mount_point} is still mounted under it; \
         unmount it (umount -l {mount_point}) and retry"
    )]
    StillMounted { path: PathBuf, mount_point: PathBuf },
    #[error(
        "refusing to remove {path}: {entry} is on another mount than the directory being \
         removed; unmount it and retry"
    )]
    CrossesMount { path: PathBuf, entry: PathBuf },
    #[error("cannot remove {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub id: u32,
    pub parent_id: u32,
    /// Path of the mounted directory inside its filesystem.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub options: String,
    /// Propagation tags such as `shared:1` or `master:2`.
    pub optional: Vec<String>,
    pub fs_type: String,
    pub source: String,
}

/// A parsed snapshot of the calling process's mount table, in kernel order
/// (a later entry may be stacked on an earlier one).
#[derive(Debug, Clone, Default)]
pub struct MountTable {
    mounts: Vec<MountInfo>,
}

impl MountTable {
    /// Reads `/proc/self/mountinfo`.
    pub fn read() -> Result<Self, MountError> {
        let text = fs::read_to_string(MOUNTINFO).map_err(|source| MountError::Read {
            path: PathBuf::from(MOUNTINFO),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, MountError> {
        let mounts = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                parse_line(l).map_err(|reason| MountError::Parse {
                    line: i + 1,
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(MountTable { mounts })
    }

    pub fn mounts(&self) -> &[MountInfo] {
        &self.mounts
    }

    /// Whether `path` itself is a mount point.
    pub fn is_mount_point(&self, path: &Path) -> bool {
        let path = normalize(path);
        self.mounts.iter().any(|m| m.mount_point == path)
    }

    /// Mount points at or below `path`, deepest first; a point mounted several
    /// times appears once per mount, topmost first, so unmounting in this
    /// order peels every stack.
    pub fn mounts_under(&self, path: &Path) -> Vec<PathBuf> {
        let path = normalize(path);
        let mut found: Vec<&MountInfo> = self
            .mounts
            .iter()
            .filter(|m| m.mount_point.starts_with(&path))
            .collect();
        found.reverse();
        // Stable: equal depths keep the reversed (newest first) kernel order.
        found.sort_by_key(|m| std::cmp::Reverse(m.mount_point.components().count()));
        found.into_iter().map(|m| m.mount_point.clone()).collect()
    }

    /// Fails naming the first mount found at or below `path`.
    pub fn ensure_no_mounts_under(&self, path: &Path) -> Result<(), MountError> {
        match self.mounts_under(path).into_iter().next() {
            None => Ok(()),
            Some(mount_point) => Err(MountError::StillMounted {
                path: path.to_path_buf(),
                mount_point,
            }),
        }
    }

    /// Unmounts everything this table lists at or below `path` (deepest
    /// first; made private first so the unmount does not propagate to the
    /// host's peers; lazily when busy), then re-reads the mount table and
    /// fails if anything is still mounted there.
    pub fn unmount_all_under(&self, path: &Path) -> Result<(), MountError> {
        let targets = self.mounts_under(path);
        if targets.is_empty() {
            return Ok(());
        }
        let mut first_error = None;
        for mp in &targets {
            if let Err(e) = unmount_one(mp) {
                first_error.get_or_insert(e);
            }
        }
        let fresh = MountTable::read()?;
        if fresh.mounts_under(path).is_empty() {
            return Ok(());
        }
        // Mounts listed as peers of a detached one can show up again only if
        // new ones appeared; one more pass catches those.
        for mp in fresh.mounts_under(path) {
            if let Err(e) = unmount_one(&mp) {
                first_error.get_or_insert(e);
            }
        }
        let fresh = MountTable::read()?;
        match (fresh.ensure_no_mounts_under(path), first_error) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(e)) => Err(e),
            (Err(e), None) => Err(e),
        }
    }
}

/// Removes a pod directory without ever deleting through a mount: unmounts
/// what `table` lists under it and verifies with a fresh mount table that
/// nothing is left, then removes the tree, refusing to descend into any
/// directory on another mount (a mount that appeared after `table` was read).
pub fn remove_pod_dir_safely(path: &Path, table: &MountTable) -> Result<(), MountError> {
    if !table.mounts_under(path).is_empty() {
        table.unmount_all_under(path)?;
    }
    remove_tree_on_one_mount(path)
}

/// `rm -rf path` that stays on the mount of `path` and fails on crossing one.
pub fn remove_tree_on_one_mount(path: &Path) -> Result<(), MountError> {
    let remove_err = |p: &Path, e: Errno| MountError::Remove {
        path: p.to_path_buf(),
        source: io::Error::from(e),
    };
    let root = match nix::fcntl::open(path, dir_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(remove_err(path, e)),
    };
    // SAFETY: `open` just returned this fd and nothing else owns it.
    let root = unsafe { owned(root) };
    let id = mount_identity(&root).map_err(|e| remove_err(path, e))?;
    remove_contents(root, path, id, path)?;
    match fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(MountError::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Takes ownership of a raw fd returned by a nix call.
///
/// # Safety
/// `fd` must be open and owned by nobody else.
unsafe fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: guaranteed by the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// (device, mount id) of an open directory: two directories are on the same
/// mount exactly when both match (the device alone misses same-fs binds).
fn mount_identity(fd: &OwnedFd) -> Result<(u64, u64), Errno> {
    let st = fstat(fd.as_raw_fd())?;
    Ok((st.st_dev, mount_id(fd).unwrap_or(0)))
}

/// The mount id of an open fd via statx(STATX_MNT_ID); `None` on kernels
/// without it (before 5.8), where the device comparison remains.
fn mount_id(fd: &OwnedFd) -> Option<u64> {
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    let empty: &CStr = c"";
    // SAFETY: `empty` is NUL-terminated, `stx` is a valid out-buffer of the
    // right type, and AT_EMPTY_PATH makes statx describe `fd` itself.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            stx.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: statx succeeded and filled the buffer.
    let stx = unsafe { stx.assume_init() };
    (stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id)
}

fn remove_contents(
    dir_fd: OwnedFd,
    dir_path: &Path,
    id: (u64, u64),
    top: &Path,
) -> Result<(), MountError> {
    let err = |p: &Path, e: Errno| MountError::Remove {
        path: p.to_path_buf(),
        source: io::Error::from(e),
    };
    let raw = dir_fd.as_raw_fd();
    let mut dir = Dir::from_fd(nix::unistd::dup(raw).map_err(|e| err(dir_path, e))?)
        .map_err(|e| err(dir_path, e))?;
    let mut entries = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(|e| err(dir_path, e))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        entries.push((name.to_owned(), entry.file_type()));
    }
    drop(dir);
    for (name, ty) in entries {
        let child = dir_path
            .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes()));
        let is_dir = match ty {
            Some(Type::Directory) => true,
            Some(_) => false,
            None => nix::sys::stat::fstatat(
                Some(raw),
                name.as_c_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .map_err(|e| err(&child, e))?,
        };
        if is_dir {
            let fd = match openat(Some(raw), name.as_c_str(), dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(err(&child, e)),
            };
            // SAFETY: `openat` just returned this fd and nothing else owns it.
            let fd = unsafe { owned(fd) };
            if mount_identity(&fd).map_err(|e| err(&child, e))? != id {
                return Err(MountError::CrossesMount {
                    path: top.to_path_buf(),
                    entry: child,
                });
            }
            remove_contents(fd, &child, id, top)?;
            match unlinkat(Some(raw), name.as_c_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(err(&child, e)),
            }
        } else {
            match unlinkat(Some(raw), name.as_c_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(err(&child, e)),
            }
        }
    }
    Ok(())
}

fn unmount_one(mp: &Path) -> Result<(), MountError> {
    // Private first: unmounting a shared mount would propagate the unmount
    // to its peers (e.g. the host's copy of a bind).
    let _ = mount(
        None::<&str>,
        mp,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    );
    let result = match umount2(mp, MntFlags::empty()) {
        Err(Errno::EBUSY) => umount2(mp, MntFlags::MNT_DETACH),
        other => other,
    };
    match result {
        // Already gone, e.g. detached together with its parent.
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(source) => Err(MountError::Unmount {
            mount_point: mp.to_path_buf(),
            source,
        }),
    }
}

/// The form mountinfo uses: absolute, symlinks resolved when possible,
/// without `.` components or a trailing slash.
fn normalize(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn parse_line(line: &str) -> Result<MountInfo, String> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields
        .iter()
        .position(|f| *f == "-")
        .ok_or("no \" - \" separator")?;
    if sep < 6 || fields.len() < sep + 3 {
        return Err(format!("too few fields in {line:?}"));
    }
    let num = |s: &str, what: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("invalid {what} {s:?} in {line:?}"))
    };
    Ok(MountInfo {
        id: num(fields[0], "mount id")?,
        parent_id: num(fields[1], "parent id")?,
        root: PathBuf::from(unescape(fields[3])),
        mount_point: PathBuf::from(unescape(fields[4])),
        options: fields[5].to_string(),
        optional: fields[6..sep].iter().map(|s| s.to_string()).collect(),
        fs_type: unescape(fields[sep + 1]),
        source: unescape(fields[sep + 2]),
    })
}

/// Decodes the kernel's `\ooo` octal escapes (space, tab, newline, backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = (digits[0] - b'0') as u32 * 64
                    + (digits[1] - b'0') as u32 * 8
                    + (digits[2] - b'0') as u32;
                if v <= 255 {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 27 8:1 /srv /var/lib/rkt/pods/run/abc/stage1/rootfs rw shared:1 - overlay overlay rw,lowerdir=/x
41 40 0:6 / /var/lib/rkt/pods/run/abc/stage1/rootfs/dev rw master:2 - devtmpfs udev rw
42 27 8:1 / /var/lib/rkt/pods/run/abcdef rw - ext4 /dev/sda1 rw
43 27 8:1 /a\\040b /mnt/with\\040space\\011tab rw - ext4 /dev/with\\134slash rw
44 40 8:1 / /var/lib/rkt/pods/run/abc/stage1/rootfs rw - tmpfs tmpfs rw
";

    #[test]
    fn parses_fields_and_escapes() {
        let t = MountTable::parse(SAMPLE).unwrap();
        assert_eq!(t.mounts().len(), 7);
        let m = &t.mounts()[5];
        assert_eq!(m.id, 43);
        assert_eq!(m.root, PathBuf::from("/a b"));
        assert_eq!(m.mount_point, PathBuf::from("/mnt/with space\ttab"));
        assert_eq!(m.source, "/dev/with\\slash");
        assert_eq!(t.mounts()[2].optional, vec!["shared:1".to_string()]);
        assert_eq!(t.mounts()[3].fs_type, "devtmpfs");
        assert!(MountTable::parse("1 2 3").is_err());
    }

    #[test]
    fn unescape_leaves_non_octal_alone() {
        assert_eq!(unescape("a\\b"), "a\\b");
        assert_eq!(unescape("x\\04"), "x\\04");
        assert_eq!(unescape("\\012"), "\n");
    }

    #[test]
    fn mounts_under_is_deepest_first_and_component_wise() {
        let t = MountTable::parse(SAMPLE).unwrap();
        let under = t.mounts_under(Path::new("/var/lib/rkt/pods/run/abc"));
        assert_eq!(
            under,
            vec![
                PathBuf::from("/var/lib/rkt/pods/run/abc/stage1/rootfs/dev"),
                // Stacked: the newer (44) before the older (40).
                PathBuf::from("/var/lib/rkt/pods/run/abc/stage1/rootfs"),
                PathBuf::from("/var/lib/rkt/pods/run/abc/stage1/rootfs"),
            ]
        );
        assert!(t.is_mount_point(Path::new("/var/lib/rkt/pods/run/abcdef")));
        assert!(t
            .ensure_no_mounts_under(Path::new("/var/lib/rkt/pods/run/zzz"))
            .is_ok());
        let e = t
            .ensure_no_mounts_under(Path::new("/var/lib/rkt/pods/run/abc"))
            .unwrap_err();
        assert!(e.to_string().contains("stage1/rootfs/dev"), "{e}");
    }

    #[test]
    fn removes_a_plain_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let pod = tmp.path().join("pod");
        fs::create_dir_all(pod.join("a/b/c")).unwrap();
        fs::write(pod.join("a/b/c/f"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc", pod.join("a/link")).unwrap();
        remove_pod_dir_safely(&pod, &MountTable::read().unwrap()).unwrap();
        assert!(!pod.exists());
        assert!(Path::new("/etc").exists());
        // Removing what is already gone is fine.
        remove_tree_on_one_mount(&pod).unwrap();
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Bind-mounts a directory with a sentinel under a pod dir.
    fn bind_setup(tmp: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let host = tmp.join("host");
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("precious"), b"keep me").unwrap();
        let pod = tmp.join("pods/run/uuid");
        let target = pod.join("stage1/rootfs/mnt");
        fs::create_dir_all(&target).unwrap();
        mount(
            Some(&host),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        (host, pod, target)
    }

    #[test]
    fn root_unmounts_before_removing() {
        assert!(is_root(), "this test needs root (make test runs as root)");
        let tmp = tempfile::tempdir().unwrap();
        let (host, pod, target) = bind_setup(tmp.path());
        let table = MountTable::read().unwrap();
        assert!(table.is_mount_point(&target));
        let result = remove_pod_dir_safely(&pod, &table);
        // Clean up whatever happens before asserting.
        let _ = umount2(&target, MntFlags::MNT_DETACH);
        result.unwrap();
        assert!(!pod.exists());
        assert_eq!(fs::read(host.join("precious")).unwrap(), b"keep me");
        assert!(!MountTable::read().unwrap().is_mount_point(&target));
    }

    #[test]
    fn root_refuses_to_cross_an_unlisted_mount() {
        assert!(is_root(), "this test needs root (make test runs as root)");
        let tmp = tempfile::tempdir().unwrap();
        // A stale table (read before the mount) does not list the bind: the
        // per-directory mount check must catch it.
        let stale = MountTable::read().unwrap();
        let (host, pod, target) = bind_setup(tmp.path());
        let result = remove_pod_dir_safely(&pod, &stale);
        let _ = umount2(&target, MntFlags::MNT_DETACH);
        let e = result.unwrap_err();
        assert!(matches!(e, MountError::CrossesMount { .. }), "{e}");
        assert!(e.to_string().contains("stage1/rootfs/mnt"), "{e}");
        assert_eq!(fs::read(host.join("precious")).unwrap(), b"keep me");
        remove_tree_on_one_mount(&pod).unwrap();
    }

    #[test]
    fn root_verification_catches_mounts_missing_from_the_table() {
        assert!(is_root(), "this test needs root (make test runs as root)");
        let tmp = tempfile::tempdir().unwrap();
        let (host, pod, target) = bind_setup(tmp.path());
        // The table lists a (bogus) mount under the pod but not the real
        // bind: the re-read after unmounting must find and unmount it.
        let mut table = MountTable::read().unwrap();
        table.mounts.retain(|m| m.mount_point != target);
        table.mounts.push(MountInfo {
            mount_point: pod.join("stage1"),
            ..table.mounts[0].clone()
        });
        let result = remove_pod_dir_safely(&pod, &table);
        let _ = umount2(&target, MntFlags::MNT_DETACH);
        result.unwrap();
        assert!(!pod.exists());
        assert_eq!(fs::read(host.join("precious")).unwrap(), b"keep me");
    }
}
