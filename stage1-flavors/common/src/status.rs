//! Files stage1 writes for stage0 to read: `pid` / `pgid` / `ppid` in the pod
//! directory, and per-app exit status and markers under
//! `stage1/rootfs/rkt/status/` (rkt.md §2.1, §2.7).

use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StatusError {
    #[error("cannot write {path:?}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path:?}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path:?} does not hold a number: {content:?}")]
    Parse { path: PathBuf, content: String },
}

/// Writes `contents` to `path` through a temporary file in the same directory
/// and a rename, so readers never see a partial file. No fsync: these are
/// runtime files of a live pod, meaningless after a host crash.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Like [`write_atomic`] for `name` in the directory open at `dir`, for use
/// after a chroot has hidden the pod directory's path.
pub fn write_atomic_at(dir: BorrowedFd<'_>, name: &str, contents: &[u8]) -> io::Result<()> {
    let tmp = format!(".{name}.tmp{}", std::process::id());
    let result = (|| {
        let fd = openat(
            Some(dir.as_raw_fd()),
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )?;
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
        f.write_all(contents)?;
        renameat(
            Some(dir.as_raw_fd()),
            tmp.as_str(),
            Some(dir.as_raw_fd()),
            name,
        )?;
        Ok(())
    })();
    if result.is_err() {
        let _ = unlinkat(
            Some(dir.as_raw_fd()),
            tmp.as_str(),
            UnlinkatFlags::NoRemoveDir,
        );
    }
    result
}

/// Writes `pid` and `pgid` (fly) into the pod directory open at `pod_dir`.
pub fn write_pid_files_at(
    pod_dir: BorrowedFd<'_>,
    pid: i32,
    pgid: Option<i32>,
) -> Result<(), StatusError> {
    let write = |name: &str, n: i32| {
        write_atomic_at(pod_dir, name, n.to_string().as_bytes()).map_err(|source| {
            StatusError::Write {
                path: PathBuf::from(name),
                source,
            }
        })
    };
    // pgid first: stage0 takes `pid` appearing as "started".
    if let Some(pgid) = pgid {
        write(abi::pod_dir::PGID, pgid)?;
    }
    write(abi::pod_dir::PID, pid)
}

/// Writes a decimal number file such as `$pod/pid` atomically.
pub fn write_number_file(path: &Path, n: i64) -> Result<(), StatusError> {
    write_atomic(path, n.to_string().as_bytes()).map_err(|source| StatusError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a decimal number file; `Ok(None)` when it does not exist.
pub fn read_number_file(path: &Path) -> Result<Option<i64>, StatusError> {
    let content = match abi::pod_file::read_small(path, 64) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StatusError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    content
        .trim()
        .parse()
        .map(Some)
        .map_err(|_| StatusError::Parse {
            path: path.to_path_buf(),
            content,
        })
}

/// `$pod/pid`: pid of the pod's first process (fly: the app itself).
pub fn write_pid(pod_dir: &Path, pid: i32) -> Result<(), StatusError> {
    write_number_file(&pod_dir.join(abi::pod_dir::PID), pid.into())
}

/// `$pod/pgid`: process group of the pod (fly).
pub fn write_pgid(pod_dir: &Path, pgid: i32) -> Result<(), StatusError> {
    write_number_file(&pod_dir.join(abi::pod_dir::PGID), pgid.into())
}

/// `$pod/ppid`: parent whose only child is the pod's first process.
pub fn write_ppid(pod_dir: &Path, ppid: i32) -> Result<(), StatusError> {
    write_number_file(&pod_dir.join(abi::pod_dir::PPID), ppid.into())
}

/// `stage1/rootfs/rkt/status`, given the stage1 rootfs.
pub fn status_dir(stage1_rootfs: &Path) -> PathBuf {
    stage1_rootfs.join(abi::pod_dir::STATUS_DIR)
}

/// The pid in `path` when it is one a stop may signal: never ourselves,
/// init or "every process" (0, 1, -1) by way of a bad file.
pub fn read_signal_target(path: &Path) -> Result<Option<i32>, StatusError> {
    Ok(read_number_file(path)?
        .filter(|n| *n > 1)
        .and_then(|n| i32::try_from(n).ok()))
}

/// Records the exit code of `app` (`rkt/status/<app>`, decimal text).
pub fn write_exit_status(stage1_rootfs: &Path, app: &str, code: i32) -> Result<(), StatusError> {
    let dir = status_dir(stage1_rootfs);
    std::fs::create_dir_all(&dir).map_err(|source| StatusError::Write {
        path: dir.clone(),
        source,
    })?;
    write_number_file(&dir.join(app), code.into())
}

/// Like [`write_exit_status`] through the status directory open at `dir`,
/// for a process whose view of the pod's paths may differ (chroot, or the
/// pod's own mount namespace).
pub fn write_exit_status_at(dir: BorrowedFd<'_>, app: &str, code: i32) -> Result<(), StatusError> {
    write_atomic_at(dir, app, code.to_string().as_bytes()).map_err(|source| StatusError::Write {
        path: PathBuf::from(abi::pod_dir::STATUS_DIR).join(app),
        source,
    })
}

/// The recorded exit code of `app`, if it has exited.
pub fn read_exit_status(stage1_rootfs: &Path, app: &str) -> Result<Option<i32>, StatusError> {
    let path = status_dir(stage1_rootfs).join(app);
    Ok(read_number_file(&path)?.map(|n| n as i32))
}

/// Touches `rkt/status/<app>-created` (its mtime is the creation time).
pub fn mark_created(stage1_rootfs: &Path, app: &str) -> Result<(), StatusError> {
    touch_marker(stage1_rootfs, &format!("{app}-created"))
}

/// Touches `rkt/status/<app>-started` (its mtime is the start time).
pub fn mark_started(stage1_rootfs: &Path, app: &str) -> Result<(), StatusError> {
    touch_marker(stage1_rootfs, &format!("{app}-started"))
}

/// Points `rkt/supervisor-status` at `ready` (`rkt status --wait-ready`).
pub fn mark_ready(stage1_rootfs: &Path) -> Result<(), StatusError> {
    let link = stage1_rootfs.join(abi::pod_dir::SUPERVISOR_STATUS);
    let tmp = link.with_file_name(format!(".supervisor-status.tmp{}", std::process::id()));
    (|| {
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink("ready", &tmp)?;
        std::fs::rename(&tmp, &link)
    })()
    .map_err(|source| StatusError::Write {
        path: link.clone(),
        source,
    })
}

fn touch_marker(stage1_rootfs: &Path, name: &str) -> Result<(), StatusError> {
    let dir = status_dir(stage1_rootfs);
    let path = dir.join(name);
    // Recreate rather than open: the mtime must be the time of this event.
    (|| {
        std::fs::create_dir_all(&dir)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::File::create(&path).map(drop)
    })()
    .map_err(|source| StatusError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_round_trip() {
        let pod = tempfile::tempdir().unwrap();
        write_pid(pod.path(), 1234).unwrap();
        write_pgid(pod.path(), 1234).unwrap();
        assert_eq!(
            std::fs::read_to_string(pod.path().join("pid")).unwrap(),
            "1234"
        );
        assert_eq!(
            read_number_file(&pod.path().join("pgid")).unwrap(),
            Some(1234)
        );
        assert_eq!(read_number_file(&pod.path().join("ppid")).unwrap(), None);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(pod.path()).unwrap().count(), 2);
    }

    #[test]
    fn pid_files_through_a_dir_fd() {
        use std::os::fd::AsFd;
        let pod = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(pod.path()).unwrap();
        write_pid_files_at(dir.as_fd(), 42, Some(41)).unwrap();
        assert_eq!(read_number_file(&pod.path().join("pid")).unwrap(), Some(42));
        assert_eq!(
            read_number_file(&pod.path().join("pgid")).unwrap(),
            Some(41)
        );
        assert_eq!(std::fs::read_dir(pod.path()).unwrap().count(), 2);
    }

    #[test]
    fn exit_status_and_markers() {
        let s1 = tempfile::tempdir().unwrap();
        assert_eq!(read_exit_status(s1.path(), "app").unwrap(), None);
        mark_created(s1.path(), "app").unwrap();
        mark_started(s1.path(), "app").unwrap();
        mark_started(s1.path(), "app").unwrap();
        write_exit_status(s1.path(), "app", 3).unwrap();
        assert_eq!(read_exit_status(s1.path(), "app").unwrap(), Some(3));
        let dir = status_dir(s1.path());
        assert!(dir.join("app-created").is_file());
        assert!(dir.join("app-started").is_file());
    }

    #[test]
    fn exit_status_through_a_dir_fd() {
        use std::os::fd::AsFd;
        let s1 = tempfile::tempdir().unwrap();
        let dir = status_dir(s1.path());
        std::fs::create_dir_all(&dir).unwrap();
        let fd = std::fs::File::open(&dir).unwrap();
        write_exit_status_at(fd.as_fd(), "app", 143).unwrap();
        assert_eq!(read_exit_status(s1.path(), "app").unwrap(), Some(143));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn garbage_number_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("pid"), "abc").unwrap();
        assert!(matches!(
            read_number_file(&d.path().join("pid")),
            Err(StatusError::Parse { .. })
        ));
    }
}
