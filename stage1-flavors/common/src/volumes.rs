//! Volumes: matching pod volumes with the app's mount points and the
//! RuntimeApp's mounts (rkt `GenerateMounts`, rkt.md §10.2), creating the
//! backing directories of `empty` volumes and bind mounting everything into
//! the app rootfs with targets resolved inside it.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};

use abi::pod_dir;
use abi::schema::{AcName, Volume, VolumeKind};
use thiserror::Error;

use crate::mount::{self, MountError};
use crate::paths::{resolve_in_root, PathError};
use crate::pod::PodApp;

/// Mode of `$pod/sharedVolumes` itself.
const SHARED_VOLUMES_MODE: u32 = 0o755;
const DEFAULT_EMPTY_MODE: &str = "0755";

#[derive(Debug, Error)]
pub enum VolumeError {
    #[error("app {app:?} mounts volume {volume:?} at {path:?}, but the pod has no such volume; add --volume {volume},kind=...")]
    UnknownVolume {
        app: String,
        volume: String,
        path: String,
    },
    #[error("volume {volume:?}: host source {source_path:?} does not exist; create it first (rkt never creates host paths)")]
    MissingSource {
        volume: String,
        source_path: PathBuf,
    },
    #[error("volume {0:?} is kind=host but has no source; add source=/host/path")]
    NoSource(String),
    #[error("volume {volume:?}: invalid mode {mode:?}; use an octal string such as \"0755\"")]
    Mode { volume: String, mode: String },
    #[error("volume {volume:?}: cannot prepare {path:?}: {source}")]
    Io {
        volume: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("volume {volume:?}: {source}")]
    Path {
        volume: String,
        #[source]
        source: PathError,
    },
    #[error("volume {volume:?}: {source}")]
    Mount {
        volume: String,
        #[source]
        source: MountError,
    },
}

/// One volume to mount into an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppMount {
    pub volume: Volume,
    /// Target path inside the app.
    pub path: String,
    pub read_only: bool,
    /// An `empty` volume made up for a mount point nothing satisfied.
    pub implicit: bool,
}

/// Matches `pod_volumes` with the app's RuntimeApp mounts first, then its
/// image mount points (skipping paths a mount already covers). A mount point
/// without a volume gets an implicit `empty` volume named `<app>-<point>`.
/// A volume's `readOnly` overrides the mount point's.
pub fn plan_mounts(pod_volumes: &[Volume], app: &PodApp) -> Result<Vec<AppMount>, VolumeError> {
    let volumes: HashMap<&str, &Volume> =
        pod_volumes.iter().map(|v| (v.name.as_str(), v)).collect();
    let mut covered: HashSet<PathBuf> = HashSet::new();
    let mut out = Vec::new();
    for m in &app.runtime.mounts {
        let volume = match &m.app_volume {
            Some(v) => v.clone(),
            None => {
                (*volumes
                    .get(m.volume.as_str())
                    .ok_or_else(|| VolumeError::UnknownVolume {
                        app: app.name.clone(),
                        volume: m.volume.to_string(),
                        path: m.path.clone(),
                    })?)
                .clone()
            }
        };
        let point_ro = app
            .app
            .mount_points
            .iter()
            .find(|mp| mp.name == m.volume)
            .is_some_and(|mp| mp.read_only);
        covered.insert(clean(&m.path));
        out.push(AppMount {
            read_only: volume.read_only.unwrap_or(point_ro),
            volume,
            path: m.path.clone(),
            implicit: false,
        });
    }
    for mp in &app.app.mount_points {
        if covered.contains(&clean(&mp.path)) {
            continue;
        }
        let (volume, implicit) = match volumes.get(mp.name.as_str()) {
            Some(v) => ((*v).clone(), false),
            None => (implicit_volume(&app.name, &mp.name), true),
        };
        covered.insert(clean(&mp.path));
        out.push(AppMount {
            read_only: volume.read_only.unwrap_or(mp.read_only),
            volume,
            path: mp.path.clone(),
            implicit,
        });
    }
    Ok(out)
}

fn implicit_volume(app: &str, point: &AcName) -> Volume {
    // Both parts are AC names, so the join is one too.
    let name = AcName::new(format!("{app}-{point}")).unwrap_or_else(|_| point.clone());
    Volume {
        name,
        kind: VolumeKind::Empty,
        source: None,
        read_only: None,
        recursive: None,
        mode: Some(DEFAULT_EMPTY_MODE.to_string()),
        uid: Some(0),
        gid: Some(0),
    }
}

/// Lexically cleaned absolute form of a target, for duplicate detection.
fn clean(path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Creates `$pod/sharedVolumes/<name>` for an `empty` volume with its mode
/// and owner, and returns it.
pub fn prepare_empty_volume(pod_dir: &Path, volume: &Volume) -> Result<PathBuf, VolumeError> {
    let name = volume.name.to_string();
    let mode_str = volume.mode.as_deref().unwrap_or(DEFAULT_EMPTY_MODE);
    let mode = u32::from_str_radix(mode_str, 8).map_err(|_| VolumeError::Mode {
        volume: name.clone(),
        mode: mode_str.to_string(),
    })?;
    let shared = pod_dir.join(pod_dir::SHARED_VOLUMES);
    let path = shared.join(&name);
    let io_err = |path: &Path| {
        let volume = name.clone();
        let path = path.to_path_buf();
        move |source| VolumeError::Io {
            volume,
            path,
            source,
        }
    };
    std::fs::create_dir_all(&shared).map_err(io_err(&shared))?;
    std::fs::set_permissions(
        &shared,
        std::fs::Permissions::from_mode(SHARED_VOLUMES_MODE),
    )
    .map_err(io_err(&shared))?;
    match std::fs::create_dir(&path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io_err(&path)(e)),
        _ => {}
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(&path))?;
    chown(
        &path,
        Some(volume.uid.unwrap_or(0)),
        Some(volume.gid.unwrap_or(0)),
    )
    .map_err(io_err(&path))?;
    Ok(path)
}

/// The host path backing `volume` (creating it for `empty` volumes).
pub fn volume_source(pod_dir: &Path, volume: &Volume) -> Result<PathBuf, VolumeError> {
    match volume.kind {
        VolumeKind::Empty => prepare_empty_volume(pod_dir, volume),
        VolumeKind::Host => {
            let source = PathBuf::from(
                volume
                    .source
                    .as_deref()
                    .ok_or_else(|| VolumeError::NoSource(volume.name.to_string()))?,
            );
            match std::fs::metadata(&source) {
                Ok(_) => Ok(source),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(VolumeError::MissingSource {
                    volume: volume.name.to_string(),
                    source_path: source,
                }),
                Err(e) => Err(VolumeError::Io {
                    volume: volume.name.to_string(),
                    path: source,
                    source: e,
                }),
            }
        }
    }
}

/// Bind mounts each of `mounts` into `app_rootfs`, parents before children.
/// Targets are resolved inside the rootfs and created (a directory, or an
/// empty file for a file source). `default_recursive` applies to host
/// volumes that do not say (fly: false; appc says true).
pub fn mount_volumes(
    pod_dir: &Path,
    app_rootfs: &Path,
    mounts: &[AppMount],
    default_recursive: bool,
) -> Result<(), VolumeError> {
    let mut ordered: Vec<&AppMount> = mounts.iter().collect();
    ordered.sort_by_key(|m| clean(&m.path).components().count());
    for m in ordered {
        let name = m.volume.name.to_string();
        let source = volume_source(pod_dir, &m.volume)?;
        let target = resolve_in_root(app_rootfs, Path::new(&m.path)).map_err(|source| {
            VolumeError::Path {
                volume: name.clone(),
                source,
            }
        })?;
        create_target(&source, &target).map_err(|e| VolumeError::Io {
            volume: name.clone(),
            path: target.clone(),
            source: e,
        })?;
        let recursive =
            m.volume.kind == VolumeKind::Host && m.volume.recursive.unwrap_or(default_recursive);
        let mount_err = |source| VolumeError::Mount {
            volume: name.clone(),
            source,
        };
        mount::bind(&source, &target, recursive).map_err(mount_err)?;
        if m.read_only {
            mount::remount_readonly(&target, recursive).map_err(mount_err)?;
        }
    }
    Ok(())
}

/// Makes sure a bind target of the right type exists at `target`.
pub fn create_target(source: &Path, target: &Path) -> io::Result<()> {
    if std::fs::metadata(source)?.is_dir() {
        return std::fs::create_dir_all(target);
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
    {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::schema::{App, ImageManifest, MountPoint, RuntimeApp};

    fn name(s: &str) -> AcName {
        AcName::new(s).unwrap()
    }

    fn host(n: &str, ro: Option<bool>) -> Volume {
        Volume {
            name: name(n),
            kind: VolumeKind::Host,
            source: Some(format!("/srv/{n}")),
            read_only: ro,
            recursive: None,
            mode: None,
            uid: None,
            gid: None,
        }
    }

    fn app(mounts: &str, points: Vec<MountPoint>) -> PodApp {
        let runtime: RuntimeApp = serde_json::from_str(&format!(
            r#"{{"name":"web","image":{{"id":"sha512-aa"}},"mounts":{mounts}}}"#
        ))
        .unwrap();
        let image: ImageManifest =
            serde_json::from_str(r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"x"}"#)
                .unwrap();
        PodApp {
            name: "web".into(),
            runtime,
            image,
            app: App {
                mount_points: points,
                ..Default::default()
            },
            rootfs: PathBuf::from("/nonexistent"),
        }
    }

    fn point(n: &str, path: &str, ro: bool) -> MountPoint {
        MountPoint {
            name: name(n),
            path: path.into(),
            read_only: ro,
        }
    }

    #[test]
    fn mounts_then_mount_points_then_implicit() {
        let vols = vec![host("data", None), host("logs", Some(false))];
        let a = app(
            r#"[{"volume":"data","path":"/data"}]"#,
            vec![
                point("data", "/data/", true),
                point("logs", "/var/log", true),
                point("cache", "/cache", false),
            ],
        );
        let m = plan_mounts(&vols, &a).unwrap();
        assert_eq!(m.len(), 3);
        // The mount point's readOnly applies to a matching mount by name.
        assert_eq!((m[0].path.as_str(), m[0].read_only), ("/data", true));
        // The volume's readOnly overrides the mount point's.
        assert_eq!((m[1].path.as_str(), m[1].read_only), ("/var/log", false));
        assert!(m[2].implicit);
        assert_eq!(m[2].volume.name.as_str(), "web-cache");
        assert_eq!(m[2].volume.kind, VolumeKind::Empty);
    }

    #[test]
    fn inline_app_volume_and_unknown_volume() {
        let a = app(
            r#"[{"volume":"x","path":"/x","appVolume":{"name":"x","kind":"empty","mode":"0700"}}]"#,
            vec![],
        );
        let m = plan_mounts(&[], &a).unwrap();
        assert_eq!(m[0].volume.mode.as_deref(), Some("0700"));
        let a = app(r#"[{"volume":"nope","path":"/x"}]"#, vec![]);
        assert!(matches!(
            plan_mounts(&[], &a),
            Err(VolumeError::UnknownVolume { .. })
        ));
    }

    #[test]
    fn empty_volume_gets_mode_and_owner() {
        let pod = tempfile::tempdir().unwrap();
        let mut v = implicit_volume("web", &name("cache"));
        v.mode = Some("0710".into());
        v.uid = Some(123);
        v.gid = Some(456);
        let p = prepare_empty_volume(pod.path(), &v).unwrap();
        assert_eq!(p, pod.path().join("sharedVolumes/web-cache"));
        let meta = std::fs::metadata(&p).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.mode() & 0o7777, 0o710);
        assert_eq!((meta.uid(), meta.gid()), (123, 456));
        // Idempotent.
        prepare_empty_volume(pod.path(), &v).unwrap();
        v.mode = Some("rwx".into());
        assert!(matches!(
            prepare_empty_volume(pod.path(), &v),
            Err(VolumeError::Mode { .. })
        ));
    }

    #[test]
    fn missing_host_source_is_a_clear_error() {
        let pod = tempfile::tempdir().unwrap();
        let mut v = host("data", None);
        v.source = Some(pod.path().join("nope").display().to_string());
        let e = volume_source(pod.path(), &v).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn targets_match_source_type() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("f");
        std::fs::write(&file, "x").unwrap();
        create_target(&file, &d.path().join("root/etc/f")).unwrap();
        assert!(d.path().join("root/etc/f").is_file());
        create_target(d.path(), &d.path().join("root/a/b")).unwrap();
        assert!(d.path().join("root/a/b").is_dir());
        // Existing targets are left alone.
        create_target(&file, &d.path().join("root/etc/f")).unwrap();
    }
}
