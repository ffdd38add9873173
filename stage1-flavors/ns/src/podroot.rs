//! The supervisor's own root: the stage1 rootfs, as in rkt (nspawn's
//! container root was stage1's rootfs). Once the supervisor has pivoted,
//! nothing of the host's tree is reachable from inside the pod, not even
//! through `/proc/1/root` by an app that may ptrace its PID 1.
//!
//! What the apps still need from the host is bound into the stage1 rootfs
//! first: volume sources under `/rkt/volumes/<app>/<n>`, the terminal at
//! `/dev/console`, and the cgroup tree at `/sys/fs/cgroup` (same path as on
//! the host, so the pod's cgroup handles stay valid).

use std::path::{Path, PathBuf};

use abi::schema::{Volume, VolumeKind};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::statfs::{statfs, SYSFS_MAGIC};
use nix::unistd::{chdir, pivot_root};
use thiserror::Error;

use stage1_common::cgroups::CGROUP_ROOT;
use stage1_common::mount::{self as mnt, MountError, Propagation};
use stage1_common::volumes::{self, VolumeError};

use crate::dev::{self, DevError};
use crate::podjournal::POD_SYSLOG_SOCKET;
use crate::supervisor::AppLaunch;

/// Where volume sources are bound inside the stage1 rootfs.
pub const STAGED_VOLUMES_DIR: &str = "rkt/volumes";

#[derive(Debug, Error)]
pub enum PodRootError {
    #[error("cannot create the pod's mount namespace: {0}")]
    Unshare(Errno),
    #[error("cannot mount the pod's /proc on {path:?}: {errno}")]
    Proc { path: PathBuf, errno: Errno },
    #[error("cannot create {path:?}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot mount the pod's /sys on {path:?}: {errno}")]
    Sysfs { path: PathBuf, errno: Errno },
    #[error("cannot switch the pod's root to {path:?} ({step}): {errno}")]
    Pivot {
        path: PathBuf,
        step: &'static str,
        errno: Errno,
    },
    #[error("{0} is not inside the stage1 rootfs")]
    Outside(PathBuf),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Dev(#[from] DevError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
}

/// Moves the calling process (the pod's PID 1) into a mount namespace of
/// its own whose root is the stage1 rootfs, and rewrites every app's host
/// paths into paths under that root. `run` has made `stage1_rootfs` a
/// mount point, staged the apps' volumes ([`stage_volumes`]) and started
/// us in it: everything here is relative to the cwd, because the root of a
/// user namespace may not be allowed to walk the pod directory's path.
pub fn enter(stage1_rootfs: &Path, apps: &mut [AppLaunch]) -> Result<(), PodRootError> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(PodRootError::Unshare)?;
    mnt::set_propagation(Path::new("/"), Propagation::Slave, true)?;
    // The cwd moved to this namespace's copy of the pod's root. In a user
    // namespace that copy is locked, and pivot_root refuses a locked new
    // root: a bind of it made here is not, and `../rootfs` walks onto it.
    mnt::bind(Path::new("."), Path::new("."), true)?;
    let name = stage1_rootfs
        .file_name()
        .ok_or_else(|| PodRootError::Outside(stage1_rootfs.to_path_buf()))?;
    let top = Path::new("..").join(name);
    chdir(&top).map_err(|errno| PodRootError::Pivot {
        path: stage1_rootfs.to_path_buf(),
        step: "enter the pod's root",
        errno,
    })?;
    let root = Path::new(".");

    let proc = create_dir(root, "proc")?;
    mount(
        Some("proc"),
        &proc,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|errno| PodRootError::Proc { path: proc, errno })?;
    let console = apps.iter().find_map(|a| a.root.console.clone());
    let syslog = root.join(POD_SYSLOG_SOCKET);
    let syslog = syslog.exists().then_some(syslog.as_path());
    dev::setup_dev(
        &root.join("dev"),
        console.as_deref(),
        Path::new("/dev"),
        syslog,
    )?;
    // A sysfs in the pod's root lets apps mount their own from a user
    // namespace (the kernel wants one already visible), and under it the
    // host's cgroup tree at its usual path.
    let sys = create_dir(root, "sys")?;
    // `run` mounted it already when the pod's root is in a user namespace
    // and its network namespace is the host root's (CNI).
    let mounted = statfs(&sys).is_ok_and(|s| s.filesystem_type() == SYSFS_MAGIC);
    if !mounted {
        mount(
            Some("sysfs"),
            &sys,
            Some("sysfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|errno| PodRootError::Sysfs {
            path: sys.clone(),
            errno,
        })?;
    }
    let cgroup = root.join(CGROUP_ROOT.trim_start_matches('/'));
    mnt::bind(Path::new(CGROUP_ROOT), &cgroup, true)?;

    pivot(root)?;

    for app in apps.iter_mut() {
        let root = &mut app.root;
        root.rootfs = inside(stage1_rootfs, &root.rootfs)?;
        root.stage1_rootfs = PathBuf::from("/");
        // Only volumes used the pod directory; they are staged now.
        root.pod_dir = PathBuf::from("/");
        if root.console.is_some() {
            root.console = Some(PathBuf::from("/dev/console"));
        }
    }
    Ok(())
}

/// Binds each of the app's volume sources at `/rkt/volumes/<app>/<n>` in
/// the stage1 rootfs (run does this with the host's privileges, before the
/// pod's namespaces exist) and points its mount there, as a host volume of
/// the pod's root.
pub fn stage_volumes(stage1_rootfs: &Path, app: &mut AppLaunch) -> Result<(), PodRootError> {
    let pod_dir = app.root.pod_dir.clone();
    for (n, m) in app.root.mounts.iter().enumerate() {
        let source = volumes::volume_source(&pod_dir, &m.volume)?;
        let host_staged = stage1_rootfs.join(staged_volume(&app.name, n));
        volumes::create_target(&source, &host_staged).map_err(|source| PodRootError::Io {
            path: host_staged.clone(),
            source,
        })?;
        mnt::bind(&source, &host_staged, staged_recursively(&m.volume))?;
    }
    use_staged_volumes(app);
    Ok(())
}

/// Inside the stage1 rootfs (relative): where mount `n` of `app` has its
/// source staged.
pub fn staged_volume(app: &str, n: usize) -> PathBuf {
    Path::new(STAGED_VOLUMES_DIR).join(app).join(n.to_string())
}

/// The directory of `app`'s staged volume sources under `stage1_rootfs`.
pub fn staged_volumes_dir(stage1_rootfs: &Path, app: &str) -> PathBuf {
    stage1_rootfs.join(STAGED_VOLUMES_DIR).join(app)
}

/// appc: host volumes are recursive unless they say otherwise.
pub fn staged_recursively(volume: &Volume) -> bool {
    volume.kind == VolumeKind::Host && volume.recursive.unwrap_or(true)
}

/// Points every mount of `app` at its staged source (mount `n` at
/// `/rkt/volumes/<app>/<n>`), as a host volume of the pod's root.
pub fn use_staged_volumes(app: &mut AppLaunch) {
    for (n, m) in app.root.mounts.iter_mut().enumerate() {
        let recursive = staged_recursively(&m.volume);
        m.volume = Volume {
            kind: VolumeKind::Host,
            source: Some(
                Path::new("/")
                    .join(staged_volume(&app.name, n))
                    .to_string_lossy()
                    .into_owned(),
            ),
            recursive: Some(recursive),
            ..m.volume.clone()
        };
    }
}

fn create_dir(root: &Path, rel: &str) -> Result<PathBuf, PodRootError> {
    let path = root.join(rel);
    std::fs::create_dir_all(&path).map_err(|source| PodRootError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// `path` (a host path under `root`) as seen once `root` is `/`.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, PodRootError> {
    path.strip_prefix(root)
        .map(|rel| Path::new("/").join(rel))
        .map_err(|_| PodRootError::Outside(path.to_path_buf()))
}

fn pivot(root: &Path) -> Result<(), PodRootError> {
    let err = |step| {
        let path = root.to_path_buf();
        move |errno| PodRootError::Pivot { path, step, errno }
    };
    chdir(root).map_err(err("chdir"))?;
    pivot_root(".", ".").map_err(err("pivot_root"))?;
    // The host's tree, stacked under the new root: gone for good.
    umount2(".", MntFlags::MNT_DETACH).map_err(err("detach the host's root"))?;
    chdir("/").map_err(err("chdir /"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_the_new_root() {
        let root = Path::new("/var/lib/rkt/pods/run/u/stage1/rootfs");
        assert_eq!(
            inside(root, &root.join("opt/stage2/a/rootfs")).unwrap(),
            Path::new("/opt/stage2/a/rootfs")
        );
        assert!(inside(root, Path::new("/etc")).is_err());
    }
}
