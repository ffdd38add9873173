//! Mounts into and out of a running pod's mount namespace (mutable pods).
//!
//! The pod's PID 1 has pivoted into the stage1 rootfs, so no host path leads
//! to where an app's rootfs must appear. The overlay is therefore built as a
//! detached mount in stage0's namespace with the new mount API (its layers
//! are host paths), then moved onto `/opt/stage2/<app>/rootfs` by a thread
//! that alone joins the pod's mount namespace. The inverse detaches whatever
//! is mounted at or below a path of the pod, reading the pod's mountinfo.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use thiserror::Error;

use super::mounts::MountTable;
use super::overlay::OverlayLayers;

#[derive(Debug, Error)]
pub enum AttachError {
    #[error("cannot create the overlay for {lower}: {step}: {source}{log}")]
    Overlay {
        lower: PathBuf,
        step: &'static str,
        source: std::io::Error,
        /// The kernel's own explanation from the filesystem context, if any.
        log: String,
    },
    #[error(
        "cannot join the mount namespace of pod process {pid}: {source}; is the pod still running?"
    )]
    Join { pid: i32, source: std::io::Error },
    #[error("cannot {what} {path} inside the pod: {source}")]
    InPod {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the mounts of pod process {pid}: {source}")]
    MountInfo { pid: i32, source: std::io::Error },
    #[error("{path} is still mounted inside the pod after unmounting it")]
    StillMounted { path: PathBuf },
    #[error("the thread working inside the pod's mount namespace panicked")]
    Thread,
}

// Kernel UAPI (linux/mount.h) values, stable since 5.2.
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// A mount not attached anywhere yet (an fd from `fsmount`). Dropping it
/// unmounts it.
#[derive(Debug)]
pub struct DetachedMount(OwnedFd);

fn fd_result(rc: libc::c_long) -> std::io::Result<OwnedFd> {
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) })
}

fn fsopen(fs: &CStr) -> std::io::Result<OwnedFd> {
    // SAFETY: `fs` is a NUL-terminated string valid for the call.
    fd_result(unsafe { libc::syscall(libc::SYS_fsopen, fs.as_ptr(), FSOPEN_CLOEXEC) })
}

fn fsconfig(
    fd: &OwnedFd,
    cmd: libc::c_uint,
    key: Option<&CStr>,
    value: Option<&CStr>,
) -> std::io::Result<()> {
    let key = key.map_or(std::ptr::null(), CStr::as_ptr);
    let value = value.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: `fd` is open; key and value are NUL-terminated strings (or
    // null where the command takes none) valid for the call.
    let rc = unsafe { libc::syscall(libc::SYS_fsconfig, fd.as_raw_fd(), cmd, key, value, 0) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn fsmount(fd: &OwnedFd) -> std::io::Result<OwnedFd> {
    // SAFETY: `fd` is an open filesystem context; no pointers are passed.
    fd_result(unsafe { libc::syscall(libc::SYS_fsmount, fd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) })
}

fn move_mount_to(mnt: &OwnedFd, target: &CStr) -> std::io::Result<()> {
    let empty = c"";
    // SAFETY: `mnt` is an open mount fd, both paths are NUL-terminated
    // strings valid for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The messages the kernel left in a filesystem context (lines `e ...`).
fn context_log(fd: &OwnedFd) -> String {
    let Ok(dup) = fd.try_clone() else {
        return String::new();
    };
    let mut f = File::from(dup);
    let mut out = String::new();
    let mut buf = [0u8; 1024];
    // Each read returns one message; ENODATA ends the log.
    for _ in 0..16 {
        match f.read(&mut buf) {
            Ok(n) if n > 0 => {
                let line = String::from_utf8_lossy(&buf[..n]);
                out.push_str(" (");
                out.push_str(line.trim_end());
                out.push(')');
            }
            _ => break,
        }
    }
    out
}

fn cstring(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// Creates the overlay of `layers` as a detached mount. Its layer paths are
/// resolved here, in the caller's mount namespace.
pub fn overlay_mount(layers: &OverlayLayers) -> Result<DetachedMount, AttachError> {
    let fail = |step, source, ctx: Option<&OwnedFd>| AttachError::Overlay {
        lower: layers.lower.clone(),
        step,
        source,
        log: ctx.map(context_log).unwrap_or_default(),
    };
    let ctx = fsopen(c"overlay").map_err(|e| fail("fsopen(overlay)", e, None))?;
    for (key, path) in [
        (c"lowerdir", &layers.lower),
        (c"upperdir", &layers.upper),
        (c"workdir", &layers.work),
    ] {
        let value = cstring(path).map_err(|e| fail("a layer path has a NUL byte", e, None))?;
        fsconfig(&ctx, FSCONFIG_SET_STRING, Some(key), Some(&value))
            .map_err(|e| fail("fsconfig", e, Some(&ctx)))?;
    }
    fsconfig(&ctx, FSCONFIG_CMD_CREATE, None, None)
        .map_err(|e| fail("fsconfig(create)", e, Some(&ctx)))?;
    let mnt = fsmount(&ctx).map_err(|e| fail("fsmount", e, Some(&ctx)))?;
    Ok(DetachedMount(mnt))
}

/// Runs `work` in a new thread that has joined the mount namespace of
/// `pid`: its root and cwd are then the pod's root. Only that thread
/// changes namespace (`unshare(CLONE_FS)` first, which setns requires).
fn in_pod_namespace<T: Send + 'static>(
    pid: i32,
    work: impl FnOnce() -> Result<T, AttachError> + Send + 'static,
) -> Result<T, AttachError> {
    let ns_path = format!("/proc/{pid}/ns/mnt");
    let ns = File::open(&ns_path).map_err(|source| AttachError::Join { pid, source })?;
    std::thread::spawn(move || {
        let join = |e: nix::Error| AttachError::Join {
            pid,
            source: e.into(),
        };
        unshare(CloneFlags::CLONE_FS).map_err(join)?;
        setns(&ns, CloneFlags::CLONE_NEWNS).map_err(join)?;
        work()
    })
    .join()
    .map_err(|_| AttachError::Thread)?
}

/// Creates `target` (an absolute path as the pod sees it) inside the pod's
/// mount namespace and moves `mnt` onto it, private so that nothing
/// propagates to or from it.
pub fn attach(pid: i32, mnt: DetachedMount, target: &Path) -> Result<(), AttachError> {
    let target = target.to_path_buf();
    in_pod_namespace(pid, move || {
        let in_pod = |what, source| AttachError::InPod {
            what,
            path: target.clone(),
            source,
        };
        std::fs::create_dir_all(&target).map_err(|e| in_pod("create", e))?;
        let c = cstring(&target).map_err(|e| in_pod("name", e))?;
        move_mount_to(&mnt.0, &c).map_err(|e| in_pod("mount the overlay on", e))?;
        mount(
            None::<&str>,
            &target,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| in_pod("make private", e.into()))
    })
}

/// Mount points at or below `path` in the mount namespace of `pid` (paths as
/// the pod sees them), parents before children.
pub fn mounts_at_or_below(pid: i32, path: &Path) -> Result<Vec<PathBuf>, AttachError> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map_err(|source| AttachError::MountInfo { pid, source })?;
    let table = MountTable::parse(&info).map_err(|e| AttachError::MountInfo {
        pid,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })?;
    Ok(parents_first(&table, path))
}

/// [`MountTable::mounts_under`] (deepest first) the other way round.
fn parents_first(table: &MountTable, path: &Path) -> Vec<PathBuf> {
    let mut mounts = table.mounts_under(path);
    mounts.reverse();
    mounts
}

/// Detaches everything mounted at or below `path` (as the pod sees it) in
/// the mount namespace of `pid`, children first, and checks that nothing is
/// left. Returns how many mounts were detached.
pub fn detach(pid: i32, path: &Path) -> Result<usize, AttachError> {
    let mounts = mounts_at_or_below(pid, path)?;
    if mounts.is_empty() {
        return Ok(0);
    }
    let count = mounts.len();
    in_pod_namespace(pid, move || {
        for m in mounts.iter().rev() {
            match umount2(m, MntFlags::MNT_DETACH) {
                // Gone with a parent detached before it.
                Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
                Err(e) => {
                    return Err(AttachError::InPod {
                        what: "unmount",
                        path: m.clone(),
                        source: e.into(),
                    })
                }
            }
        }
        Ok(())
    })?;
    if let Some(left) = mounts_at_or_below(pid, path)?.into_iter().next() {
        return Err(AttachError::StillMounted { path: left });
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_below_a_path() {
        let info = "\
22 1 0:20 / / rw - overlay overlay rw
30 22 0:21 / /opt/stage2/a/rootfs rw - overlay overlay rw
31 30 0:22 / /opt/stage2/a/rootfs/data rw - ext4 /dev/x rw
32 22 0:23 / /opt/stage2/ab/rootfs rw - overlay overlay rw
33 22 0:24 / /opt/stage2/a\\040b rw - tmpfs tmpfs rw
";
        let table = MountTable::parse(info).unwrap();
        let got = parents_first(&table, Path::new("/opt/stage2/a"));
        assert_eq!(
            got,
            vec![
                PathBuf::from("/opt/stage2/a/rootfs"),
                PathBuf::from("/opt/stage2/a/rootfs/data"),
            ]
        );
        let spaced = parents_first(&table, Path::new("/opt/stage2/a b"));
        assert_eq!(spaced, vec![PathBuf::from("/opt/stage2/a b")]);
    }

    /// Root only: an overlay built detached, moved into a fresh mount
    /// namespace held by a child process, seen there, then detached.
    #[test]
    fn attach_and_detach_in_another_namespace() {
        assert!(nix::unistd::geteuid().is_root(), "this test needs root");
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let layers = OverlayLayers {
            lower: d.join("lower"),
            upper: d.join("upper"),
            work: d.join("work"),
        };
        for p in [&layers.lower, &layers.upper, &layers.work] {
            std::fs::create_dir_all(p).unwrap();
        }
        std::fs::write(layers.lower.join("hello"), "hi").unwrap();
        // A process in its own mount namespace (not pivoted: its root is
        // the host's, so target paths are host paths here).
        let mut child = std::process::Command::new("unshare")
            .args(["--mount", "--propagation=private", "sleep", "30"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let ns_differs = || {
            std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
                != std::fs::read_link("/proc/self/ns/mnt").ok()
        };
        for _ in 0..100 {
            if ns_differs() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let target = d.join("target/rootfs");
        let result = (|| {
            let mnt = overlay_mount(&layers)?;
            attach(pid, mnt, &target)?;
            let seen =
                std::fs::read_to_string(format!("/proc/{pid}/root{}/hello", target.display()))
                    .unwrap_or_default();
            // Not visible in our own namespace.
            let here = target.join("hello").exists();
            let below = mounts_at_or_below(pid, &d.join("target"))?;
            let n = detach(pid, &d.join("target"))?;
            Ok::<_, AttachError>((seen, here, below, n))
        })();
        let _ = child.kill();
        let _ = child.wait();
        let (seen, here, below, n) = result.unwrap();
        assert_eq!(seen, "hi");
        assert!(!here);
        assert_eq!(below, vec![target.clone()]);
        assert_eq!(n, 1);
    }
}
