//! The app's minimal `/dev`: a tmpfs with the usual character devices, a
//! private devpts instance, `/dev/shm` and the `fd` links; no host device
//! nodes beyond those (rkt's prepare-app set).

use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
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
    #[error("cannot mount {what} on {path:?}: {errno}")]
    Mount {
        what: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error(transparent)]
    Bind(#[from] MountError),
}

/// The character devices every app gets.
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Symlinks in /dev (name, target).
pub const LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Builds a minimal /dev at `dev` (a path inside the root being set up):
/// a `nodev` tmpfs with the device nodes bound in one by one from `nodes`
/// (the host's /dev for the pod's own, the pod's for an app's). Nodes an
/// app makes itself (CAP_MKNOD is in rkt's default set) cannot be opened,
/// and nothing needs mknod(2), which a user namespace forbids. `console`
/// is the terminal to show as /dev/console (interactive pods); otherwise
/// /dev/console is a null device. `syslog`, when the pod has a journal, is
/// its syslog socket, shown as /dev/log.
pub fn setup_dev(
    dev: &Path,
    console: Option<&Path>,
    nodes: &Path,
    syslog: Option<&Path>,
) -> Result<(), DevError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DevError::Io { path, source }
    };
    std::fs::create_dir_all(dev).map_err(io_err(dev))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME;
    mount_fs("tmpfs", "tmpfs", dev, flags, "mode=755,size=65536k")?;
    for name in DEVICES {
        bind_node(&nodes.join(name), &dev.join(name))?;
    }
    let console_node = console.map_or_else(|| nodes.join("null"), Path::to_path_buf);
    bind_node(&console_node, &dev.join("console"))?;
    if let Some(socket) = syslog {
        bind_node(socket, &dev.join("log"))?;
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
