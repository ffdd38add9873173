//! Turns an app's rendered rootfs into its root: in the app's own mount
//! namespace, mounts /proc (the pod's PID namespace), read-only /sys with
//! the app's own cgroups, a minimal /dev, the path protection, the volumes
//! and the /etc files, then pivots into it.

use std::io;
use std::path::{Path, PathBuf};

use abi::stage1::DnsConfMode;
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{chdir, pivot_root};
use thiserror::Error;

use stage1_common::cgroups::CgroupError;
use stage1_common::etc::{self, EtcError};
use stage1_common::mount::{self as mnt, MountError, Propagation};
use stage1_common::paths::{resolve_in_root, PathError};
use stage1_common::volumes::{self, AppMount, VolumeError};

use crate::dev::{self, DevError};

mod cgroupfs;
pub mod protect;

#[derive(Debug, Error)]
pub enum RootfsError {
    #[error("cannot create the app's mount namespace: {0}")]
    Unshare(Errno),
    #[error("cannot mount {what} on {path:?}: {errno}")]
    Mount {
        what: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("cannot set up {path:?}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot switch the root to {path:?} ({step}): {errno}")]
    Pivot {
        path: PathBuf,
        step: &'static str,
        errno: Errno,
    },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Mounts(#[from] MountError),
    #[error(transparent)]
    Dev(#[from] DevError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Etc(#[from] EtcError),
    #[error("cannot show the app its cgroups: {0}")]
    Cgroup(#[from] CgroupError),
}

/// What one app's root needs, all host paths.
#[derive(Debug, Clone)]
pub struct AppRoot {
    pub pod_dir: PathBuf,
    pub stage1_rootfs: PathBuf,
    pub rootfs: PathBuf,
    pub mounts: Vec<AppMount>,
    pub dns: DnsConfMode,
    pub read_only: bool,
    /// The terminal to show as /dev/console.
    pub console: Option<PathBuf>,
    /// Path protection (see [`protect`]); off with
    /// `--insecure-options=paths`, which also makes /sys and /proc/sys
    /// writable (as rkt's SYSTEMD_NSPAWN_API_VFS_WRITABLE did).
    pub protect_paths: bool,
}

impl AppRoot {
    /// Builds the root in a new mount namespace and pivots into it; on
    /// return `/` is the app's rootfs and the cwd is `/`.
    pub fn enter(&self) -> Result<(), RootfsError> {
        unshare(CloneFlags::CLONE_NEWNS).map_err(RootfsError::Unshare)?;
        // Nothing mounted here may reach the pod's namespace (or the host's).
        mnt::set_propagation(Path::new("/"), Propagation::Slave, true)?;
        let rootfs = &self.rootfs;
        // pivot_root needs a mount point; the submounts below go on it.
        mnt::bind(rootfs, rootfs, true)?;
        // Device nodes the app creates in its rootfs stay unusable (see
        // `dev::setup_dev`).
        mnt::remount_bind(rootfs, MsFlags::MS_NODEV)?;

        let proc = self.dir("/proc")?;
        mount_fs(
            "proc",
            "proc",
            &proc,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )?;
        let sys = self.dir("/sys")?;
        let mut sys_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if self.protect_paths {
            sys_flags |= MsFlags::MS_RDONLY;
        }
        match mount(Some("sysfs"), &sys, Some("sysfs"), sys_flags, None::<&str>) {
            Ok(()) => {}
            // In a user namespace whose network namespace the host's root
            // owns (--private-users on a CNI network), sysfs cannot be
            // mounted: the pod's own, which `run` mounted, is bound instead.
            Err(Errno::EPERM) => {
                let pod_sys = self.stage1_rootfs.join("sys");
                mnt::bind(&pod_sys, &sys, false)?;
                mnt::remount_bind(&sys, sys_flags)?;
            }
            Err(errno) => {
                return Err(RootfsError::Mount {
                    what: "sysfs",
                    path: sys.clone(),
                    errno,
                })
            }
        }
        // Still the host's /sys/fs/cgroup and /proc here; fresh sysfs has
        // no symlinks on the way.
        cgroupfs::mount_own_cgroups(&sys.join("fs/cgroup"))?;
        let dev = resolve_in_root(rootfs, Path::new("/dev"))?;
        // The pod's own /dev (the supervisor's) has the nodes.
        // The pod's journal's syslog socket, when it has one.
        let syslog = self.stage1_rootfs.join("dev/log");
        dev::setup_dev(
            &dev,
            self.console.as_deref(),
            &self.stage1_rootfs.join("dev"),
            syslog.exists().then_some(syslog.as_path()),
        )?;
        if self.protect_paths {
            protect::protect(&proc, &sys, &dev.join("null"))?;
        }

        volumes::mount_volumes(&self.pod_dir, rootfs, &self.mounts, true)?;
        self.bind_hostname()?;
        etc::setup_resolv(self.dns.resolv, &self.stage1_rootfs, rootfs)?;
        etc::setup_hosts(self.dns.hosts, &self.stage1_rootfs, rootfs)?;
        etc::ensure_mtab(rootfs)?;
        if self.read_only {
            mnt::remount_readonly(rootfs, false)?;
        }
        self.pivot()
    }

    /// `path` inside the rootfs, created as a directory.
    fn dir(&self, path: &str) -> Result<PathBuf, RootfsError> {
        let host = resolve_in_root(&self.rootfs, Path::new(path))?;
        std::fs::create_dir_all(&host).map_err(|source| RootfsError::Io {
            path: host.clone(),
            source,
        })?;
        Ok(host)
    }

    /// Binds the pod's `etc/hostname` over the app's, when the app has /etc.
    fn bind_hostname(&self) -> Result<(), RootfsError> {
        let source = self.stage1_rootfs.join("etc/hostname");
        let etc = resolve_in_root(&self.rootfs, Path::new("/etc"))?;
        if !etc.is_dir() || !source.is_file() {
            return Ok(());
        }
        let target = resolve_in_root(&self.rootfs, Path::new("/etc/hostname"))?;
        volumes::create_target(&source, &target).map_err(|source| RootfsError::Io {
            path: target.clone(),
            source,
        })?;
        mnt::bind(&source, &target, false)?;
        Ok(())
    }

    fn pivot(&self) -> Result<(), RootfsError> {
        let err = |step| {
            let path = self.rootfs.clone();
            move |errno| RootfsError::Pivot { path, step, errno }
        };
        chdir(&self.rootfs).map_err(err("chdir"))?;
        // Stacks the old root on the new one; detaching it leaves only the
        // app's tree in this namespace.
        pivot_root(".", ".").map_err(err("pivot_root"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(err("detach the old root"))?;
        chdir("/").map_err(err("chdir /"))
    }
}

fn mount_fs(
    source: &str,
    fstype: &'static str,
    target: &Path,
    flags: MsFlags,
) -> Result<(), RootfsError> {
    mount(Some(source), target, Some(fstype), flags, None::<&str>).map_err(|errno| {
        RootfsError::Mount {
            what: fstype,
            path: target.to_path_buf(),
            errno,
        }
    })
}
