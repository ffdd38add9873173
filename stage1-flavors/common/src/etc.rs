//! The app's `/etc/resolv.conf`, `/etc/hosts` and `/etc/mtab` per the
//! `--dns-conf-mode` (rkt.md §2.3) and rkt's mtab rule (§10.5).

use std::io;
use std::path::{Path, PathBuf};

use abi::pod_dir;
use abi::stage1::{HostsMode, ResolvMode};
use thiserror::Error;

use crate::mount::{self, MountError};
use crate::paths::{resolve_in_root, PathError};
use crate::volumes::create_target;

const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
const HOST_HOSTS: &str = "/etc/hosts";
/// What the app gets when it has no /etc/hosts (hosts mode `default`).
pub const FALLBACK_HOSTS: &str = "127.0.0.1 localhost localdomain\n::1 localhost\n";

#[derive(Debug, Error)]
pub enum EtcError {
    #[error("cannot set up {path:?} in the app: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "dns mode stage0 but stage0 did not write {0:?}; was the pod prepared by a compatible rkt?"
    )]
    MissingStage0File(PathBuf),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Mount(#[from] MountError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EtcError + '_ {
    move |source| EtcError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Applies the resolv.conf mode. `Default` and `None` do nothing here: a
/// flavor with CNI DNS results handles `Default` itself.
pub fn setup_resolv(
    mode: ResolvMode,
    stage1_rootfs: &Path,
    app_rootfs: &Path,
) -> Result<(), EtcError> {
    match mode {
        ResolvMode::Host => bind_host_file(Path::new(HOST_RESOLV_CONF), app_rootfs),
        ResolvMode::Stage0 => copy_stage0_file(
            &stage1_rootfs.join(pod_dir::RKT_RESOLV_CONF),
            app_rootfs,
            HOST_RESOLV_CONF,
        ),
        ResolvMode::None | ResolvMode::Default => Ok(()),
    }
}

/// Applies the hosts mode; `Default` writes [`FALLBACK_HOSTS`] only when the
/// app has no /etc/hosts (appc: never modify the image's own file).
pub fn setup_hosts(
    mode: HostsMode,
    stage1_rootfs: &Path,
    app_rootfs: &Path,
) -> Result<(), EtcError> {
    match mode {
        HostsMode::Host => bind_host_file(Path::new(HOST_HOSTS), app_rootfs),
        HostsMode::Stage0 => copy_stage0_file(
            &stage1_rootfs.join(pod_dir::RKT_HOSTS),
            app_rootfs,
            HOST_HOSTS,
        ),
        HostsMode::Default => {
            let target = resolve_in_root(app_rootfs, Path::new(HOST_HOSTS))?;
            if target.exists() {
                return Ok(());
            }
            write_file(&target, FALLBACK_HOSTS.as_bytes())
        }
    }
}

/// Creates `/etc/mtab -> ../proc/self/mounts` when the app has `/etc` and no
/// mtab (not even a dangling link). Idempotent.
pub fn ensure_mtab(app_rootfs: &Path) -> Result<(), EtcError> {
    let etc = resolve_in_root(app_rootfs, Path::new("/etc"))?;
    if !etc.is_dir() {
        return Ok(());
    }
    let mtab = etc.join("mtab");
    if mtab.symlink_metadata().is_ok() {
        return Ok(());
    }
    match std::os::unix::fs::symlink("../proc/self/mounts", &mtab) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(io_err(&mtab)(e)),
        _ => Ok(()),
    }
}

/// Read-only bind of a host file over the app's copy. A host without the
/// file leaves the app's alone.
fn bind_host_file(host: &Path, app_rootfs: &Path) -> Result<(), EtcError> {
    if !host.exists() {
        return Ok(());
    }
    let target = resolve_in_root(app_rootfs, host)?;
    create_target(host, &target).map_err(io_err(&target))?;
    mount::bind(host, &target, false)?;
    mount::remount_readonly(&target, false)?;
    Ok(())
}

fn copy_stage0_file(source: &Path, app_rootfs: &Path, app_path: &str) -> Result<(), EtcError> {
    let content = match std::fs::read(source) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(EtcError::MissingStage0File(source.to_path_buf()))
        }
        Err(e) => return Err(io_err(source)(e)),
    };
    let target = resolve_in_root(app_rootfs, Path::new(app_path))?;
    write_file(&target, &content)
}

fn write_file(target: &Path, content: &[u8]) -> Result<(), EtcError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    std::fs::write(target, content).map_err(io_err(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let s1 = d.path().join("stage1");
        let app = d.path().join("app");
        std::fs::create_dir_all(s1.join("etc")).unwrap();
        std::fs::create_dir_all(&app).unwrap();
        (d, s1, app)
    }

    #[test]
    fn stage0_files_are_copied_through_symlinks() {
        let (_d, s1, app) = dirs();
        std::fs::write(s1.join("etc/rkt-resolv.conf"), "nameserver 1.1.1.1\n").unwrap();
        std::fs::write(s1.join("etc/rkt-hosts"), "10.0.0.1 db\n").unwrap();
        std::fs::create_dir_all(app.join("etc")).unwrap();
        // A typical image: resolv.conf is a dangling absolute link.
        std::os::unix::fs::symlink("/run/resolv.conf", app.join("etc/resolv.conf")).unwrap();
        setup_resolv(ResolvMode::Stage0, &s1, &app).unwrap();
        setup_hosts(HostsMode::Stage0, &s1, &app).unwrap();
        assert_eq!(
            std::fs::read_to_string(app.join("run/resolv.conf")).unwrap(),
            "nameserver 1.1.1.1\n"
        );
        assert_eq!(
            std::fs::read_to_string(app.join("etc/hosts")).unwrap(),
            "10.0.0.1 db\n"
        );
    }

    #[test]
    fn missing_stage0_file_is_an_error() {
        let (_d, s1, app) = dirs();
        assert!(matches!(
            setup_resolv(ResolvMode::Stage0, &s1, &app),
            Err(EtcError::MissingStage0File(_))
        ));
        setup_resolv(ResolvMode::None, &s1, &app).unwrap();
        setup_resolv(ResolvMode::Default, &s1, &app).unwrap();
        assert!(!app.join("etc").exists());
    }

    #[test]
    fn default_hosts_only_when_missing() {
        let (_d, s1, app) = dirs();
        setup_hosts(HostsMode::Default, &s1, &app).unwrap();
        assert_eq!(
            std::fs::read_to_string(app.join("etc/hosts")).unwrap(),
            FALLBACK_HOSTS
        );
        std::fs::write(app.join("etc/hosts"), "mine\n").unwrap();
        setup_hosts(HostsMode::Default, &s1, &app).unwrap();
        assert_eq!(
            std::fs::read_to_string(app.join("etc/hosts")).unwrap(),
            "mine\n"
        );
    }

    #[test]
    fn mtab_symlink() {
        let (_d, _s1, app) = dirs();
        ensure_mtab(&app).unwrap();
        assert!(!app.join("etc/mtab").exists());
        std::fs::create_dir(app.join("etc")).unwrap();
        ensure_mtab(&app).unwrap();
        assert_eq!(
            std::fs::read_link(app.join("etc/mtab")).unwrap(),
            PathBuf::from("../proc/self/mounts")
        );
        ensure_mtab(&app).unwrap();
    }
}
