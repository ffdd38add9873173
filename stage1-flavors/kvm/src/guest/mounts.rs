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
pub fn mount_9p(tag: &str, target: &Path) -> Result<(), MountError> {
    mount_fs(
        tag,
        target,
        "9p",
        MsFlags::empty(),
        Some("trans=virtio,version=9p2000.L,msize=262144,cache=mmap,access=client"),
    )
}

/// Where the pod directory is mounted first, before the guest knows the
/// host's path of it.
pub const POD_MOUNT: &str = "/rkt-pod";

pub fn mount_pod() -> Result<(), MountError> {
    mount_9p(POD_TAG, Path::new(POD_MOUNT))
}

/// Each shared host directory at its host path, and then the pod directory
/// at its own (which may lie below one of them).
pub fn mount_shared(pod_dir: &Path, shared: &[SharedDir]) -> Result<(), MountError> {
    for dir in shared {
        mount_9p(&dir.tag, &dir.path)?;
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
    })
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
