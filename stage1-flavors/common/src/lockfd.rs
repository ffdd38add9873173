//! The pod lock stage0 hands over in `RKT_LOCK_FD`: an fd of the pod
//! directory holding an exclusive flock. The pod is "running" exactly while
//! that lock is held, so the fd must outlive stage1 and survive `exec`.

use std::os::fd::RawFd;

use abi::stage1::LOCK_FD_ENV;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LockFdError {
    #[error("{LOCK_FD_ENV} is not set; the stage1 run entrypoint must be started by rkt with the pod lock")]
    Unset,
    #[error("{LOCK_FD_ENV}={0:?} is not a file descriptor number")]
    Invalid(String),
    #[error("{LOCK_FD_ENV}={fd} is not an open file descriptor: {errno}")]
    NotOpen { fd: RawFd, errno: Errno },
}

/// The lock fd from the environment, checked to be open.
pub fn lock_fd_from_env() -> Result<RawFd, LockFdError> {
    let value = std::env::var(LOCK_FD_ENV).map_err(|_| LockFdError::Unset)?;
    let fd: RawFd = value
        .trim()
        .parse()
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| LockFdError::Invalid(value.clone()))?;
    fcntl(fd, FcntlArg::F_GETFD).map_err(|errno| LockFdError::NotOpen { fd, errno })?;
    Ok(fd)
}

/// Sets or clears FD_CLOEXEC on `fd`.
pub fn set_cloexec(fd: RawFd, cloexec: bool) -> Result<(), LockFdError> {
    let flags = fcntl(fd, FcntlArg::F_GETFD).map_err(|errno| LockFdError::NotOpen { fd, errno })?;
    let mut flags = FdFlag::from_bits_truncate(flags);
    flags.set(FdFlag::FD_CLOEXEC, cloexec);
    fcntl(fd, FcntlArg::F_SETFD(flags)).map_err(|errno| LockFdError::NotOpen { fd, errno })?;
    Ok(())
}

/// Makes the lock survive `exec` so the app keeps the pod running.
pub fn keep_lock_across_exec(fd: RawFd) -> Result<(), LockFdError> {
    set_cloexec(fd, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn cloexec_toggles() {
        let f = std::fs::File::open("/").unwrap();
        let fd = f.as_raw_fd();
        set_cloexec(fd, false).unwrap();
        let flags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
        assert!(!flags.contains(FdFlag::FD_CLOEXEC));
        set_cloexec(fd, true).unwrap();
        let flags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
        assert!(flags.contains(FdFlag::FD_CLOEXEC));
    }
}
