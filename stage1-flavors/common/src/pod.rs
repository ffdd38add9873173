//! Loading a pod directory as stage0 prepared it: the pod manifest, each
//! app's image manifest and the effective `app` section (the pod manifest's
//! `RuntimeApp.app` replaces the image's wholesale, appc §5).

use std::io;
use std::path::{Path, PathBuf};

use abi::pod_dir;
use abi::schema::{App, ImageManifest, PodManifest, RuntimeApp};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PodError {
    #[error("cannot read {path:?}: {source}; is this a pod directory prepared by rkt?")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot parse {path:?}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path:?} has acKind {kind:?}, expected {expected:?}")]
    Kind {
        path: PathBuf,
        kind: String,
        expected: &'static str,
    },
    #[error("app {0:?} has no app section in the pod manifest or its image; pass --exec or use an image with an app")]
    NoApp(String),
    #[error("app {0:?} is not in the pod manifest")]
    UnknownApp(String),
}

/// One app of the pod with everything stage1 needs to run it.
#[derive(Debug, Clone)]
pub struct PodApp {
    pub name: String,
    pub runtime: RuntimeApp,
    pub image: ImageManifest,
    /// The effective app section (pod manifest override or image's).
    pub app: App,
    /// Host path of the app's rendered rootfs.
    pub rootfs: PathBuf,
}

impl PodApp {
    /// The app's working directory as it sees it (`/` when unset).
    pub fn working_directory(&self) -> &str {
        self.app
            .working_directory
            .as_deref()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
    }
}

/// Where a pod's leftover mounts could be, for `gc` to unmount what is
/// below them before the directory goes: its shared volumes and every
/// app's rootfs (an app rootfs itself may be stage0's overlay, which
/// stage0 unmounts). Only real directories: what a pod could write there
/// (a kvm guest can) must not point gc at the host's mounts.
pub fn mount_roots(pod_dir: &Path) -> Vec<PathBuf> {
    let real_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    let mut roots = vec![pod_dir.join(pod_dir::SHARED_VOLUMES)];
    let stage2 = pod_dir.join(pod_dir::STAGE1_ROOTFS).join("opt/stage2");
    if let Ok(entries) = std::fs::read_dir(&stage2) {
        roots.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|app| real_dir(app))
                .map(|app| app.join("rootfs"))
                .filter(|rootfs| real_dir(rootfs)),
        );
    }
    roots
}

/// A loaded pod directory.
#[derive(Debug, Clone)]
pub struct Pod {
    /// Absolute pod directory.
    pub dir: PathBuf,
    pub manifest: PodManifest,
    pub apps: Vec<PodApp>,
}

impl Pod {
    /// Loads `pod_dir` (made absolute against the current directory).
    pub fn load(pod_dir: &Path) -> Result<Self, PodError> {
        let dir = std::path::absolute(pod_dir).map_err(|source| PodError::Read {
            path: pod_dir.to_path_buf(),
            source,
        })?;
        let manifest_path = dir.join(pod_dir::POD_MANIFEST);
        let manifest: PodManifest = read_json(&manifest_path)?;
        check_kind(&manifest_path, &manifest.ac_kind, "PodManifest")?;
        let stage1_rootfs = dir.join(pod_dir::STAGE1_ROOTFS);
        let apps = manifest
            .apps
            .iter()
            .map(|ra| {
                let name = ra.name.as_str().to_string();
                let image = read_image_manifest(&dir, &name)?;
                let app = ra
                    .app
                    .clone()
                    .or_else(|| image.app.clone())
                    .ok_or_else(|| PodError::NoApp(name.clone()))?;
                Ok(PodApp {
                    rootfs: stage1_rootfs.join(pod_dir::app_rootfs(&name)),
                    name,
                    runtime: ra.clone(),
                    image,
                    app,
                })
            })
            .collect::<Result<_, PodError>>()?;
        Ok(Pod {
            dir,
            manifest,
            apps,
        })
    }

    pub fn stage1_rootfs(&self) -> PathBuf {
        self.dir.join(pod_dir::STAGE1_ROOTFS)
    }

    pub fn app(&self, name: &str) -> Result<&PodApp, PodError> {
        self.apps
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| PodError::UnknownApp(name.to_string()))
    }
}

/// The image manifest of `app`: the copy next to its rootfs, or the one in
/// `appsinfo/` (present in both layouts rkt uses).
fn read_image_manifest(dir: &Path, app: &str) -> Result<ImageManifest, PodError> {
    let beside_rootfs = dir
        .join(pod_dir::STAGE1_ROOTFS)
        .join(pod_dir::app_dir(app))
        .join("manifest");
    let path = if beside_rootfs.exists() {
        beside_rootfs
    } else {
        dir.join(pod_dir::APPS_INFO_DIR).join(app).join("manifest")
    };
    let manifest: ImageManifest = read_json(&path)?;
    check_kind(&path, &manifest.ac_kind, "ImageManifest")?;
    Ok(manifest)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, PodError> {
    let bytes = std::fs::read(path).map_err(|source| PodError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| PodError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

fn check_kind(path: &Path, kind: &str, expected: &'static str) -> Result<(), PodError> {
    if kind == expected {
        Ok(())
    } else {
        Err(PodError::Kind {
            path: path.to_path_buf(),
            kind: kind.to_string(),
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_roots_skip_what_is_not_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let stage2 = dir.path().join(pod_dir::STAGE1_ROOTFS).join("opt/stage2");
        std::fs::create_dir_all(stage2.join("app/rootfs")).unwrap();
        std::fs::create_dir_all(stage2.join("linked")).unwrap();
        std::os::unix::fs::symlink("/", stage2.join("linked/rootfs")).unwrap();
        std::os::unix::fs::symlink("/", stage2.join("escape")).unwrap();
        let roots = mount_roots(dir.path());
        assert_eq!(
            roots,
            [
                dir.path().join(pod_dir::SHARED_VOLUMES),
                stage2.join("app/rootfs")
            ]
        );
    }

    const IMAGE: &str = r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app",
        "app":{"exec":["/bin/img"],"user":"0","group":"0"}}"#;

    fn pod_with(app_override: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let pod = format!(
            r#"{{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{{"name":"app",
            "image":{{"id":"sha512-aa"}}{app_override}}}]}}"#
        );
        std::fs::write(d.path().join("pod"), pod).unwrap();
        let app_dir = d.path().join("stage1/rootfs/opt/stage2/app");
        std::fs::create_dir_all(app_dir.join("rootfs")).unwrap();
        std::fs::write(app_dir.join("manifest"), IMAGE).unwrap();
        d
    }

    #[test]
    fn image_app_is_used_without_override() {
        let d = pod_with("");
        let pod = Pod::load(d.path()).unwrap();
        let app = pod.app("app").unwrap();
        assert_eq!(app.app.exec, vec!["/bin/img"]);
        assert_eq!(
            app.rootfs,
            d.path().join("stage1/rootfs/opt/stage2/app/rootfs")
        );
        assert!(pod.app("other").is_err());
    }

    #[test]
    fn runtime_app_replaces_image_app() {
        let d = pod_with(r#","app":{"exec":["/bin/pod"],"user":"1","group":"2"}"#);
        let pod = Pod::load(d.path()).unwrap();
        let app = &pod.app("app").unwrap().app;
        assert_eq!(app.exec, vec!["/bin/pod"]);
        assert_eq!(app.user, "1");
    }

    #[test]
    fn falls_back_to_appsinfo_and_reports_missing_files() {
        let d = pod_with("");
        let app_dir = d.path().join("stage1/rootfs/opt/stage2/app");
        std::fs::remove_file(app_dir.join("manifest")).unwrap();
        assert!(matches!(Pod::load(d.path()), Err(PodError::Read { .. })));
        std::fs::create_dir_all(d.path().join("appsinfo/app")).unwrap();
        std::fs::write(d.path().join("appsinfo/app/manifest"), IMAGE).unwrap();
        assert!(Pod::load(d.path()).is_ok());
    }

    #[test]
    fn wrong_kind_is_rejected() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("pod"),
            r#"{"acKind":"ImageManifest","acVersion":"0.8.11","apps":[]}"#,
        )
        .unwrap();
        assert!(matches!(Pod::load(d.path()), Err(PodError::Kind { .. })));
    }
}
