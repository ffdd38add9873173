//! Small syscall wrappers for writing inside a directory without ever
//! following a symlink out of it.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

/// Opens directory `name` (one component) under `dir` without following a
/// symlink in its place.
pub fn open_dir_at(dir: RawFd, name: &str) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::openat(
        Some(dir),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a directory path (may follow symlinks: the caller chose it).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: open just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Creates a new regular file `name` under `dir`; fails if anything exists there.
pub fn create_file_at(dir: RawFd, name: &str) -> nix::Result<File> {
    let fd = nix::fcntl::openat(
        Some(dir),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Sets extended attribute `name` on an open file.
pub fn fsetxattr(fd: &impl AsRawFd, name: &str, value: &[u8]) -> io::Result<()> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: fd is open, cname is NUL-terminated and value is a valid slice for its length.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Takes an exclusive flock on `path` (created if missing), waiting if `wait`.
/// `Ok(None)` when not waiting and someone else holds it.
pub fn lock_file(path: &Path, wait: bool) -> io::Result<Option<Flock<File>>> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    lock_open_file(f, wait, true)
}

pub fn lock_open_file(f: File, wait: bool, exclusive: bool) -> io::Result<Option<Flock<File>>> {
    let arg = match (exclusive, wait) {
        (true, true) => FlockArg::LockExclusive,
        (true, false) => FlockArg::LockExclusiveNonblock,
        (false, true) => FlockArg::LockShared,
        (false, false) => FlockArg::LockSharedNonblock,
    };
    match Flock::lock(f, arg) {
        Ok(l) => Ok(Some(l)),
        Err((_, Errno::EWOULDBLOCK)) if !wait => Ok(None),
        Err((_, e)) => Err(e.into()),
    }
}

/// True if anything is mounted at or below `path` (read from mountinfo), so a
/// recursive removal there could reach into another filesystem.
pub fn has_mounts_under(path: &Path) -> io::Result<bool> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let p = path.to_string_lossy();
    let prefix = format!("{}/", p.trim_end_matches('/'));
    Ok(info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .map(unescape_mountinfo)
            .is_some_and(|m| m == p || m.starts_with(&prefix))
    }))
}

fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Removes a directory tree after checking nothing is mounted inside it.
pub fn remove_dir_all_checked(path: &Path) -> io::Result<()> {
    if has_mounts_under(path)? {
        return Err(io::Error::other(format!(
            "{} has mounts under it; unmount them first",
            path.display()
        )));
    }
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// `copy_file_range` from `fd_in` at `*off_in` (advanced) to `fd_out`'s position.
pub fn copy_file_range(
    fd_in: &impl AsRawFd,
    off_in: &mut i64,
    fd_out: &impl AsRawFd,
    len: usize,
) -> nix::Result<usize> {
    // SAFETY: both descriptors are open; off_in points to a valid i64 and the
    // output offset is NULL (use and advance the file position).
    let r = unsafe {
        libc::copy_file_range(
            fd_in.as_raw_fd(),
            off_in,
            fd_out.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            0,
        )
    };
    Errno::result(r).map(|n| n as usize)
}
