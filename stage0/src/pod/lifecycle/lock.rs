//! flock(2) on pod directory fds: the exclusive lock marks a pod as
//! preparing, running or being deleted; a non-blocking shared-lock probe
//! tells whether someone holds it.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Opens a directory read-only (close-on-exec) for locking.
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(File::open(path)?.into())
}

fn flock(fd: &OwnedFd, op: libc::c_int) -> io::Result<()> {
    // SAFETY: flock only reads the fd number, which `fd` keeps open.
    let rc = unsafe { libc::flock(fd.as_raw_fd(), op) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Takes the exclusive lock without blocking; `Ok(false)` when held elsewhere.
pub(crate) fn try_exclusive(fd: &OwnedFd) -> io::Result<bool> {
    match flock(fd, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether another open file description holds the exclusive lock. Leaves
/// `fd` unlocked.
pub(crate) fn is_locked(fd: &OwnedFd) -> io::Result<bool> {
    match flock(fd, libc::LOCK_SH | libc::LOCK_NB) {
        Ok(()) => {
            flock(fd, libc::LOCK_UN)?;
            Ok(false)
        }
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Whether `path` still names the directory open as `fd` (it was not renamed
/// away between opening and checking).
pub(crate) fn still_at(fd: &OwnedFd, path: &Path) -> bool {
    let Ok(by_path) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let file = match fd.try_clone() {
        Ok(f) => File::from(f),
        Err(_) => return false,
    };
    match file.metadata() {
        Ok(by_fd) => by_fd.ino() == by_path.ino() && by_fd.dev() == by_path.dev(),
        Err(_) => false,
    }
}

/// fsync of a directory, making a rename inside it durable.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}
