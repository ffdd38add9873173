//! Small wrappers over mount(2)/umount2(2) and a `/proc/self/mountinfo`
//! reader. `unmount_all_under` is what makes removing a pod safe: nothing may
//! `rm -rf` through a bind mount of a host directory.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use thiserror::Error;

const MOUNTINFO: &str = "/proc/self/mountinfo";
/// Stacked mounts need one pass each; more than this means something keeps
/// remounting under us.
const MAX_UNMOUNT_PASSES: usize = 16;

#[derive(Debug, Error)]
pub enum MountError {
    #[error("cannot {op} {target:?}{from}: {errno}", from = source_suffix(.from))]
    Mount {
        op: &'static str,
        from: Option<PathBuf>,
        target: PathBuf,
        errno: Errno,
    },
    #[error("cannot unmount {target:?}: {errno}; find the user with `fuser -m` and retry")]
    Unmount { target: PathBuf, errno: Errno },
    #[error("mounts remain under {path:?} after unmounting: {remaining:?}")]
    Remaining {
        path: PathBuf,
        remaining: Vec<PathBuf>,
    },
    #[error("cannot read {MOUNTINFO}: {0}")]
    MountInfo(#[source] io::Error),
}

fn source_suffix(from: &Option<PathBuf>) -> String {
    from.as_ref()
        .map(|s| format!(" from {s:?}"))
        .unwrap_or_default()
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub id: u32,
    pub parent: u32,
    /// Root of the mount within its filesystem.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub options: String,
    pub fs_type: String,
    pub source: String,
}

/// Propagation type of a mount (mount(2) `MS_SHARED` etc.).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Shared,
    Slave,
    Private,
}

/// Parses mountinfo content; malformed lines are skipped.
pub fn parse_mountinfo(content: &str) -> Vec<MountInfo> {
    content
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 6 || post.len() < 2 {
                return None;
            }
            Some(MountInfo {
                id: pre[0].parse().ok()?,
                parent: pre[1].parse().ok()?,
                root: PathBuf::from(unescape(pre[3])),
                mount_point: PathBuf::from(unescape(pre[4])),
                options: pre[5].to_string(),
                fs_type: post[0].to_string(),
                source: unescape(post[1]),
            })
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for space, ...).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|o| std::str::from_utf8(o).ok())
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The current process's mount table.
pub fn read_mountinfo() -> Result<Vec<MountInfo>, MountError> {
    std::fs::read_to_string(MOUNTINFO)
        .map(|c| parse_mountinfo(&c))
        .map_err(MountError::MountInfo)
}

/// Mount points at `path` (if `include_self`) or below it, in mount order.
pub fn mounts_under(path: &Path, include_self: bool) -> Result<Vec<MountInfo>, MountError> {
    let base = canonical(path);
    Ok(read_mountinfo()?
        .into_iter()
        .filter(|m| {
            (include_self && m.mount_point == base)
                || (m.mount_point != base && m.mount_point.starts_with(&base))
        })
        .collect())
}

/// Whether anything is mounted at or below `path`.
pub fn has_mounts_under(path: &Path) -> Result<bool, MountError> {
    Ok(!mounts_under(path, true)?.is_empty())
}

/// Unmounts everything mounted at or below `path`, deepest first, falling
/// back to a lazy detach for busy mounts. Errors if anything remains.
pub fn unmount_all_under(path: &Path) -> Result<(), MountError> {
    unmount_matching(path, true)
}

/// Like [`unmount_all_under`] but leaves a mount at `path` itself alone
/// (e.g. an overlay stage0 mounted and will unmount).
pub fn unmount_all_below(path: &Path) -> Result<(), MountError> {
    unmount_matching(path, false)
}

fn unmount_matching(path: &Path, include_self: bool) -> Result<(), MountError> {
    for _ in 0..MAX_UNMOUNT_PASSES {
        let mut mounts = mounts_under(path, include_self)?;
        if mounts.is_empty() {
            return Ok(());
        }
        // Deepest first; among equals, the most recent (topmost) first.
        mounts.sort_by_key(|m| std::cmp::Reverse((m.mount_point.components().count(), m.id)));
        for m in &mounts {
            unmount_one(&m.mount_point)?;
        }
    }
    let remaining: Vec<PathBuf> = mounts_under(path, include_self)?
        .into_iter()
        .map(|m| m.mount_point)
        .collect();
    if remaining.is_empty() {
        Ok(())
    } else {
        Err(MountError::Remaining {
            path: path.to_path_buf(),
            remaining,
        })
    }
}

fn unmount_one(target: &Path) -> Result<(), MountError> {
    match umount2(target, MntFlags::empty()) {
        // EINVAL/ENOENT: already gone, e.g. detached along with a parent.
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EBUSY) => match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
            Err(errno) => Err(MountError::Unmount {
                target: target.to_path_buf(),
                errno,
            }),
        },
        Err(errno) => Err(MountError::Unmount {
            target: target.to_path_buf(),
            errno,
        }),
    }
}

/// Bind mounts `source` on `target` (`rbind` when `recursive`).
pub fn bind(source: &Path, target: &Path, recursive: bool) -> Result<(), MountError> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(source), target, None::<&str>, flags, None::<&str>).map_err(|errno| {
        MountError::Mount {
            op: if recursive { "rbind" } else { "bind" },
            from: Some(source.to_path_buf()),
            target: target.to_path_buf(),
            errno,
        }
    })
}

/// A detached copy of the mount tree at `source` (open_tree(2) with
/// `OPEN_TREE_CLONE`), to be attached with [`attach_detached`] — possibly
/// in another mount namespace, where `source` itself is out of reach.
pub fn clone_detached(source: &Path, recursive: bool) -> Result<OwnedFd, MountError> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let err = |errno| MountError::Mount {
        op: "clone the mount tree of",
        from: None,
        target: source.to_path_buf(),
        errno,
    };
    let path = CString::new(source.as_os_str().as_bytes()).map_err(|_| err(Errno::EINVAL))?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree(2) with a NUL-terminated path that outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(err(Errno::last()));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Attaches a detached mount (from [`clone_detached`]) on `target` in the
/// caller's mount namespace (move_mount(2)).
pub fn attach_detached(tree: &OwnedFd, target: &Path) -> Result<(), MountError> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
    let err = |errno| MountError::Mount {
        op: "attach a mount on",
        from: None,
        target: target.to_path_buf(),
        errno,
    };
    let to = CString::new(target.as_os_str().as_bytes()).map_err(|_| err(Errno::EINVAL))?;
    // SAFETY: move_mount(2) with a valid fd, an empty and a NUL-terminated
    // path, both outliving the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(err(Errno::last()));
    }
    Ok(())
}

/// Adds `extra` (e.g. `MS_NODEV`) to the flags of the bind mount at
/// `target`, keeping the ones the kernel locks.
pub fn remount_bind(target: &Path, extra: MsFlags) -> Result<(), MountError> {
    let attrs = [
        (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    ];
    let wanted = attrs
        .iter()
        .filter(|(flag, _)| extra.contains(*flag))
        .fold(0, |acc, (_, attr)| acc | attr);
    // Only these four can be added without touching the other flags.
    if extra.bits() & !attrs.iter().fold(0, |acc, (f, _)| acc | f.bits()) == 0 {
        if let Some(done) = set_mount_attrs(target, wanted, false) {
            return done.map_err(|errno| MountError::Mount {
                op: "remount",
                from: None,
                target: target.to_path_buf(),
                errno,
            });
        }
    }
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
    if let Ok(st) = statvfs(target) {
        flags |= locked_flags(st.flags());
        if st.flags().contains(FsFlags::ST_RDONLY) {
            flags |= MsFlags::MS_RDONLY;
        }
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(|errno| {
        MountError::Mount {
            op: "remount",
            from: None,
            target: target.to_path_buf(),
            errno,
        }
    })
}

/// Makes the bind mount at `target` read-only, and every mount below it when
/// `recursive` (MS_RDONLY does not propagate to submounts by itself). Flags
/// the kernel locks (nosuid, nodev, noexec, atime) are kept.
pub fn remount_readonly(target: &Path, recursive: bool) -> Result<(), MountError> {
    if let Some(done) = set_mount_attrs(target, libc::MOUNT_ATTR_RDONLY, recursive) {
        return done.map_err(|errno| MountError::Mount {
            op: "remount read-only",
            from: None,
            target: target.to_path_buf(),
            errno,
        });
    }
    // Kernels before 5.12: one MS_REMOUNT per mount, each repeating the
    // flags the kernel locks. Only the recursive case compares with
    // mountinfo, which needs the canonical path; resolving it walks every
    // component (a readlink each).
    let mut points = vec![if recursive {
        canonical(target)
    } else {
        target.to_path_buf()
    }];
    if recursive {
        points.extend(
            mounts_under(target, false)?
                .into_iter()
                .map(|m| m.mount_point),
        );
    }
    for point in points {
        let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if let Ok(st) = statvfs(&point) {
            flags |= locked_flags(st.flags());
        }
        mount(None::<&str>, &point, None::<&str>, flags, None::<&str>).map_err(|errno| {
            MountError::Mount {
                op: "remount read-only",
                from: None,
                target: point.clone(),
                errno,
            }
        })?;
    }
    Ok(())
}

/// Sets `attrs` (`MOUNT_ATTR_*`) on the mount at `target`, or on every
/// mount of its subtree when `recursive`, in one mount_setattr(2) that
/// leaves the mounts' other flags as they are. `None` where the call is
/// missing (Linux < 5.12) or filtered out, for the caller to fall back on
/// MS_REMOUNT.
fn set_mount_attrs(target: &Path, attrs: u64, recursive: bool) -> Option<Result<(), Errno>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    // Set once the call is known missing or filtered: no second try.
    static UNAVAILABLE: AtomicBool = AtomicBool::new(false);
    if UNAVAILABLE.load(Ordering::Relaxed) {
        return None;
    }
    let path = CString::new(target.as_os_str().as_bytes()).ok()?;
    let attr = libc::mount_attr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags: libc::c_uint = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    // SAFETY: mount_setattr(2) with a NUL-terminated path and a mount_attr
    // of the size passed, both outliving the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    match rc {
        0 => Some(Ok(())),
        _ => match Errno::last() {
            Errno::ENOSYS => {
                UNAVAILABLE.store(true, Ordering::Relaxed);
                None
            }
            // A seccomp filter's answer, or a mount MS_REMOUNT may still
            // change (and report on properly).
            Errno::EPERM => None,
            errno => Some(Err(errno)),
        },
    }
}

fn locked_flags(st: FsFlags) -> MsFlags {
    let pairs = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    pairs
        .iter()
        .filter(|(s, _)| st.contains(*s))
        .fold(MsFlags::empty(), |acc, (_, m)| acc | *m)
}

/// Sets the propagation of the mount at `target` (and below when `recursive`).
pub fn set_propagation(
    target: &Path,
    propagation: Propagation,
    recursive: bool,
) -> Result<(), MountError> {
    let (mut flags, op) = match propagation {
        Propagation::Shared => (MsFlags::MS_SHARED, "make shared"),
        Propagation::Slave => (MsFlags::MS_SLAVE, "make slave"),
        Propagation::Private => (MsFlags::MS_PRIVATE, "make private"),
    };
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(|errno| {
        MountError::Mount {
            op,
            from: None,
            target: target.to_path_buf(),
            errno,
        }
    })
}

/// Mounts a tmpfs on `target` with mount `options` (e.g. `mode=1777`).
pub fn mount_tmpfs(target: &Path, flags: MsFlags, options: &str) -> Result<(), MountError> {
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(options)).map_err(|errno| {
        MountError::Mount {
            op: "mount tmpfs on",
            from: None,
            target: target.to_path_buf(),
            errno,
        }
    })
}

/// `path` with symlinks resolved when it exists (mountinfo shows real paths).
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=10k
41 22 8:1 /srv/with\\040space /mnt/a\\040b rw - ext4 /dev/sda1 rw
bogus line
";

    #[test]
    fn parses_mountinfo_with_escapes() {
        let m = parse_mountinfo(SAMPLE);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].mount_point, PathBuf::from("/dev"));
        assert_eq!(m[1].fs_type, "devtmpfs");
        assert_eq!(m[1].source, "udev");
        assert_eq!(m[1].parent, 22);
        assert_eq!(m[2].mount_point, PathBuf::from("/mnt/a b"));
        assert_eq!(m[2].root, PathBuf::from("/srv/with space"));
    }

    #[test]
    fn unescape_leaves_other_backslashes() {
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("a\\9"), "a\\9");
        assert_eq!(unescape("tail\\"), "tail\\");
    }

    #[test]
    fn own_mount_table_is_readable() {
        let m = read_mountinfo().unwrap();
        assert!(m.iter().any(|m| m.mount_point == Path::new("/")));
        let empty = tempfile::tempdir().unwrap();
        assert!(!has_mounts_under(empty.path()).unwrap());
        // Nothing to do is success.
        unmount_all_under(empty.path()).unwrap();
    }

    #[test]
    fn locked_flags_map() {
        let f = locked_flags(FsFlags::ST_NOSUID | FsFlags::ST_NODEV);
        assert_eq!(f, MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
    }
}
