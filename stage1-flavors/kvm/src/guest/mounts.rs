//! The guest's file systems.

use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::unistd::{chdir, chroot};
use thiserror::Error;

use crate::config::SharedDir;
use crate::POD_TAG;

#[derive(Debug, Error)]
pub enum MountError {
    #[error("cannot mount {what} on {target:?}: {errno}")]
    Mount {
        what: String,
        target: String,
        errno: nix::errno::Errno,
    },
    #[error("cannot create {path:?}: {source}")]
    Mkdir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot leave the initramfs: {0}")]
    SwitchRoot(nix::errno::Errno),
}

fn mount_fs(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), MountError> {
    std::fs::create_dir_all(target).map_err(|source| MountError::Mkdir {
        path: target.display().to_string(),
        source,
    })?;
    mount(Some(source), target, Some(fstype), flags, data).map_err(|errno| MountError::Mount {
        what: format!("{fstype} {source:?}"),
        target: target.display().to_string(),
        errno,
    })
}

/// /proc, /sys and /dev, which the module loading and device lookups need.
pub fn mount_kernel_filesystems() -> Result<(), MountError> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    mount_fs("proc", Path::new("/proc"), "proc", nosuid, None)?;
    mount_fs("sysfs", Path::new("/sys"), "sysfs", nosuid, None)?;
    mount_fs(
        "devtmpfs",
        Path::new("/dev"),
        "devtmpfs",
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    )
}

/// Moves the root from the initramfs (which pivot_root refuses) to a
/// tmpfs, taking /proc, /sys and /dev along, as switch_root does.
pub fn switch_to_tmpfs_root() -> Result<(), MountError> {
    let new_root = Path::new("/root");
    mount_fs(
        "root",
        new_root,
        "tmpfs",
        MsFlags::empty(),
        Some("mode=0755"),
    )?;
    for dir in ["proc", "sys", "dev"] {
        let target = new_root.join(dir);
        std::fs::create_dir_all(&target).map_err(|source| MountError::Mkdir {
            path: target.display().to_string(),
            source,
        })?;
        mount(
            Some(Path::new("/").join(dir).as_path()),
            &target,
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|errno| MountError::Mount {
            what: format!("/{dir}"),
            target: target.display().to_string(),
            errno,
        })?;
    }
    chdir(new_root).map_err(MountError::SwitchRoot)?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(MountError::SwitchRoot)?;
    chroot(".").map_err(MountError::SwitchRoot)?;
    chdir("/").map_err(MountError::SwitchRoot)
}

/// 9p over virtio, as the host's QEMU shares it (passthrough: owners and
/// modes are the host's).
pub fn mount_9p(tag: &str, target: &Path, read_only: bool) -> Result<(), MountError> {
    let flags = match read_only {
        true => MsFlags::MS_RDONLY,
        false => MsFlags::empty(),
    };
    mount_fs(
        tag,
        target,
        "9p",
        flags,
        Some("trans=virtio,version=9p2000.L,msize=262144,cache=mmap,access=client"),
    )
}

/// Where the pod directory is mounted first, before the guest knows the
/// host's path of it.
pub const POD_MOUNT: &str = "/rkt-pod";

/// The pod directory, which the host shares read-only.
pub fn mount_pod() -> Result<(), MountError> {
    mount_9p(POD_TAG, Path::new(POD_MOUNT), true)
}

/// Each host volume's directory at its host path (the host sorted them,
/// parents first), the pod directory at its own (which may lie below one
/// of them), and the pod's writable parts over it.
pub fn mount_shared(
    pod_dir: &Path,
    volumes: &[SharedDir],
    writable: &[SharedDir],
) -> Result<(), MountError> {
    for dir in volumes {
        mount_9p(&dir.tag, &dir.path, dir.read_only)?;
    }
    std::fs::create_dir_all(pod_dir).map_err(|source| MountError::Mkdir {
        path: pod_dir.display().to_string(),
        source,
    })?;
    mount(
        Some(POD_MOUNT),
        pod_dir,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|errno| MountError::Mount {
        what: POD_MOUNT.to_string(),
        target: pod_dir.display().to_string(),
        errno,
    })?;
    for dir in writable {
        // The directories exist (the host made them): nothing is created
        // on the read-only pod directory.
        mount_9p(&dir.tag, &dir.path, false)?;
    }
    Ok(())
}

/// cgroup2 on /sys/fs/cgroup, for the pod's and apps' cgroups.
pub fn mount_cgroups() -> Result<(), MountError> {
    mount_fs(
        "cgroup2",
        Path::new("/sys/fs/cgroup"),
        "cgroup2",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        None,
    )
}
