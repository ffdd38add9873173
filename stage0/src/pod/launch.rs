//! The last steps of `rkt run` / `run-prepared`: mount the pod's overlays in
//! a mount namespace private to the pod, write the files stage0 owns inside
//! stage1 (DNS, hosts, mtab), and exec the stage1 `run` entrypoint with the
//! versioned arguments and `RKT_LOCK_FD`.
//!
//! rkt mounted the overlays in the host's mount namespace and left them there
//! until `gc`; leaked and propagated mounts were its most reported gc failure.
//! Here they live and die with the pod's processes.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use abi::pod_dir;
use abi::schema::PodManifest;
use abi::stage1::{Entrypoint, RunArgs, HOST_MOUNT_NS_FD_ENV, LOCK_FD_ENV};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use thiserror::Error;

use super::overlay::{OverlayError, OverlayLayers};
use super::render::{mkdirs, write_file, RenderError};
use super::stage1::{Stage1Error, Stage1Image};
use crate::store::TreeId;

#[derive(Debug, Error)]
pub enum LaunchError {
    #[error("cannot create a mount namespace for the pod: {0}")]
    Unshare(nix::Error),
    #[error("cannot mount {what} on {target}: {source}")]
    Mount {
        what: String,
        target: PathBuf,
        source: nix::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} does not hold a tree-store id; the pod directory is damaged, remove it with `rkt rm`")]
    BadTreeId { path: PathBuf },
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Stage1(#[from] Stage1Error),
    #[error("cannot execute stage1 entrypoint {path}: {source}")]
    Exec { path: PathBuf, source: nix::Error },
}

/// Files stage0 writes into the stage1 rootfs when DNS/hosts mode is `stage0`.
#[derive(Debug, Clone, Default)]
pub struct StageZeroFiles {
    pub resolv_conf: Option<String>,
    pub hosts: Option<String>,
}

/// Mounts the pod's overlays (when prepared with overlay) in a new private
/// mount namespace of this process, which stage1 inherits. Returns the
/// mount namespace it left (for [`exec_stage1`]) when it made one.
pub fn mount_pod(
    data_dir: &Path,
    pod: &Path,
    manifest: &PodManifest,
) -> Result<Option<OwnedFd>, LaunchError> {
    let stage1_rootfs = pod.join(pod_dir::STAGE1_ROOTFS);
    if !pod.join(pod_dir::OVERLAY_PREPARED).exists() {
        return Ok(None);
    }
    let host_mounts = fs::File::open("/proc/self/ns/mnt")
        .map(OwnedFd::from)
        .map_err(|source| LaunchError::Read {
            path: PathBuf::from("/proc/self/ns/mnt"),
            source,
        })?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(LaunchError::Unshare)?;
    // Nothing mounted from here on propagates back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|source| LaunchError::Mount {
        what: "/ as slave".into(),
        target: "/".into(),
        source,
    })?;
    let stage1_tree = read_tree_id(&pod.join(pod_dir::STAGE1_TREE_STORE_ID))?;
    OverlayLayers::of(data_dir, pod, stage1_tree.as_str(), "").mount(&stage1_rootfs)?;
    for app in &manifest.apps {
        let name = app.name.as_str();
        let info = pod.join(pod_dir::APPS_INFO_DIR).join(name);
        let tree = read_tree_id(&info.join("treeStoreID"))?;
        let app_dir = stage1_rootfs.join(pod_dir::app_dir(name));
        let rootfs = app_dir.join("rootfs");
        mkdirs(&rootfs)?;
        let manifest = fs::read(info.join("manifest")).map_err(|source| LaunchError::Read {
            path: info.join("manifest"),
            source,
        })?;
        write_file(&app_dir.join("manifest"), &manifest, 0o640)?;
        OverlayLayers::of(data_dir, pod, tree.as_str(), name).mount(&rootfs)?;
    }
    Ok(Some(host_mounts))
}

fn read_tree_id(path: &Path) -> Result<TreeId, LaunchError> {
    let id = fs::read_to_string(path).map_err(|source| LaunchError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    TreeId::parse(&id).ok_or_else(|| LaunchError::BadTreeId {
        path: path.to_path_buf(),
    })
}

/// Writes what stage0 owns inside the stage1 rootfs before exec: the
/// `rkt/status` directory, `/etc/mtab` links in the apps, DNS and hosts files.
pub fn write_stage0_files(
    pod: &Path,
    manifest: &PodManifest,
    files: &StageZeroFiles,
) -> Result<(), LaunchError> {
    let s1 = pod.join(pod_dir::STAGE1_ROOTFS);
    mkdirs(&s1.join(pod_dir::STATUS_DIR))?;
    for app in &manifest.apps {
        ensure_mtab(&s1.join(pod_dir::app_rootfs(app.name.as_str())));
    }
    if let Some(resolv) = &files.resolv_conf {
        mkdirs(&s1.join("etc"))?;
        write_file(&s1.join(pod_dir::RKT_RESOLV_CONF), resolv.as_bytes(), 0o644)?;
    }
    if let Some(hosts) = &files.hosts {
        mkdirs(&s1.join("etc"))?;
        write_file(&s1.join(pod_dir::RKT_HOSTS), hosts.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// `/etc/mtab -> ../proc/self/mounts` when the app has `/etc` but no mtab
/// (rkt's behaviour). `etc` must be a real directory: a symlink planted by the
/// image must not redirect the write. Also used by `app add`.
pub fn ensure_mtab(app_rootfs: &Path) {
    let etc = app_rootfs.join("etc");
    let is_dir = fs::symlink_metadata(&etc).is_ok_and(|m| m.is_dir());
    let mtab = etc.join("mtab");
    if is_dir && fs::symlink_metadata(&mtab).is_err() {
        let _ = std::os::unix::fs::symlink("../proc/self/mounts", &mtab);
    }
}

/// Replaces this process with the stage1 `run` entrypoint. Returns only on error.
pub fn exec_stage1(
    pod: &Path,
    stage1: &Stage1Image,
    args: &RunArgs,
    lock_fd: RawFd,
    host_mounts: Option<BorrowedFd<'_>>,
    warn: &mut dyn FnMut(&str),
) -> LaunchError {
    let entry = match stage1.entrypoint_path(pod, Entrypoint::Run) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let (argv, warnings) = args.to_argv(stage1.version);
    tracing::debug!(
        "execing stage1 {} (interface version {}) {}",
        entry.display(),
        stage1.version.0,
        argv.join(" ")
    );
    for w in &warnings {
        warn(w);
    }
    if let Err(source) = std::env::set_current_dir(pod) {
        return LaunchError::Read {
            path: pod.to_path_buf(),
            source,
        };
    }
    // The lock must survive exec: stage1 holds it for the pod's life; so
    // must the mount namespace fd, which `run` uses and closes.
    let inherited = [Some(lock_fd), host_mounts.map(|fd| fd.as_raw_fd())];
    for fd in inherited.into_iter().flatten() {
        if let Err(source) = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        ) {
            return LaunchError::Exec {
                path: entry,
                source,
            };
        }
    }
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != LOCK_FD_ENV && k != HOST_MOUNT_NS_FD_ENV)
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    env.push(CString::new(format!("{LOCK_FD_ENV}={lock_fd}")).expect("no NUL"));
    if let Some(fd) = host_mounts {
        let var = format!("{HOST_MOUNT_NS_FD_ENV}={}", fd.as_raw_fd());
        env.push(CString::new(var).expect("no NUL"));
    }
    let path_c = match CString::new(entry.as_os_str().as_bytes()) {
        Ok(c) => c,
        Err(_) => {
            return LaunchError::Exec {
                path: entry,
                source: nix::Error::EINVAL,
            }
        }
    };
    let mut argv_c = vec![path_c.clone()];
    argv_c.extend(argv.into_iter().filter_map(|a| CString::new(a).ok()));
    match nix::unistd::execve(&path_c, &argv_c, &env) {
        Ok(never) => match never {},
        Err(source) => LaunchError::Exec {
            path: entry,
            source,
        },
    }
}

/// Whether overlayfs can back pods under `data_dir` (rkt's
/// `PathSupportsOverlay`): the kernel knows overlay and the data dir is not on
/// a filesystem overlay refuses as upper/lower (aufs, zfs) or lacks d_type.
pub fn overlay_supported(data_dir: &Path) -> Result<(), String> {
    let filesystems = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems
        .lines()
        .any(|l| l.trim_end().ends_with("\toverlay"))
    {
        return Err("overlay filesystem is not available in this kernel".to_string());
    }
    match nix::sys::statfs::statfs(data_dir) {
        Ok(st) => {
            let magic = st.filesystem_type().0;
            const AUFS: i64 = 0x6175_6673;
            const ZFS: i64 = 0x2FC1_2FC1;
            if magic == AUFS || magic == ZFS {
                return Err(format!(
                    "{} is on a filesystem overlayfs cannot use (magic {magic:#x})",
                    data_dir.display()
                ));
            }
            Ok(())
        }
        Err(e) => Err(format!("cannot statfs {}: {e}", data_dir.display())),
    }
}
