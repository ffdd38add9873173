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

/// Where the device nodes of a /dev come from.
#[derive(Debug, Clone, Copy)]
pub enum Nodes<'a> {
    /// Made with mknod(2) (the supervisor's own /dev in the stage1 rootfs).
    Make,
    /// Bound one by one from this directory into a `nodev` tmpfs (an
    /// app's /dev): the app may create device nodes (CAP_MKNOD is in rkt's
    /// default set) but cannot open them; only these and its device
    /// volumes work.
    BindFrom(&'a Path),
}

/// Builds a minimal /dev at `dev` (a path inside the root being set up).
/// `console` is the terminal to show as /dev/console (interactive pods);
/// otherwise /dev/console is a null device.
pub fn setup_dev(dev: &Path, console: Option<&Path>, nodes: Nodes<'_>) -> Result<(), DevError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DevError::Io { path, source }
    };
    std::fs::create_dir_all(dev).map_err(io_err(dev))?;
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
    if matches!(nodes, Nodes::BindFrom(_)) {
        flags |= MsFlags::MS_NODEV;
    }
    mount_fs("tmpfs", "tmpfs", dev, flags, "mode=755,size=65536k")?;
    for (name, major, minor) in DEVICES {
        let path = dev.join(name);
        match nodes {
            Nodes::Make => make_char(&path, major, minor)?,
            Nodes::BindFrom(src) => bind_node(&src.join(name), &path)?,
        }
    }
    let console_path = dev.join("console");
    match (console, nodes) {
        (Some(tty), _) => bind_node(tty, &console_path)?,
        (None, Nodes::Make) => make_char(&console_path, 1, 3)?,
        (None, Nodes::BindFrom(src)) => bind_node(&src.join("null"), &console_path)?,
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

/// Binds the device node `source` on a new empty file `target`; the bind
/// keeps the source filesystem's device access, not the target's `nodev`.
fn bind_node(source: &Path, target: &Path) -> Result<(), DevError> {
    std::fs::File::create(target).map_err(|e| DevError::Io {
        path: target.to_path_buf(),
        source: e,
    })?;
    mnt::bind(source, target, false)?;
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
