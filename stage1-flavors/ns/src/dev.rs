//! The app's minimal `/dev`: a tmpfs with the usual character devices, a
//! private devpts instance, `/dev/shm` and the `fd` links; no host device
//! nodes beyond those (rkt's prepare-app set).

use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use thiserror::Error;

use stage1_common::mount::{self as mnt, MountError};

#[derive(Debug, Error)]
pub enum DevError {
    #[error("cannot create {path:?} in the app's /dev: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create device node {path:?}: {errno}")]
    Mknod { path: PathBuf, errno: Errno },
    #[error("cannot mount {what} on {path:?}: {errno}")]
    Mount {
        what: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error(transparent)]
    Bind(#[from] MountError),
}

/// (name, major, minor) of the character devices every app gets.
pub const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Symlinks in /dev (name, target).
pub const LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Builds the app's /dev at `dev` (a host path inside the app rootfs).
/// `console` is the terminal to show as /dev/console (interactive pods);
/// otherwise /dev/console is a null device.
pub fn setup_dev(dev: &Path, console: Option<&Path>) -> Result<(), DevError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DevError::Io { path, source }
    };
    std::fs::create_dir_all(dev).map_err(io_err(dev))?;
    mount_fs(
        "tmpfs",
        "tmpfs",
        dev,
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        "mode=755,size=65536k",
    )?;
    for (name, major, minor) in DEVICES {
        make_char(&dev.join(name), major, minor)?;
    }
    let console_path = dev.join("console");
    match console {
        Some(tty) => {
            std::fs::File::create(&console_path).map_err(io_err(&console_path))?;
            mnt::bind(tty, &console_path, false)?;
        }
        None => make_char(&console_path, 1, 3)?,
    }
    for (name, target) in LINKS {
        let path = dev.join(name);
        symlink(target, &path).map_err(io_err(&path))?;
    }
    let pts = dev.join("pts");
    std::fs::create_dir(&pts).map_err(io_err(&pts))?;
    mount_fs(
        "devpts",
        "devpts",
        &pts,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=620,gid=5",
    )?;
    let shm = dev.join("shm");
    std::fs::create_dir(&shm).map_err(io_err(&shm))?;
    mount_fs(
        "shm",
        "tmpfs",
        &shm,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=1777",
    )?;
    Ok(())
}

fn make_char(path: &Path, major: u64, minor: u64) -> Result<(), DevError> {
    mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(major, minor),
    )
    .map_err(|errno| DevError::Mknod {
        path: path.to_path_buf(),
        errno,
    })?;
    // The umask trimmed the mode mknod got.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(|source| {
        DevError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn mount_fs(
    source: &str,
    fstype: &'static str,
    target: &Path,
    flags: MsFlags,
    data: &str,
) -> Result<(), DevError> {
    mount(Some(source), target, Some(fstype), flags, Some(data)).map_err(|errno| DevError::Mount {
        what: fstype,
        path: target.to_path_buf(),
        errno,
    })
}
