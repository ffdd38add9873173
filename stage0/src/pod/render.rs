//! Lays the images into a pod directory at prepare time: the stage1 and each
//! app, either as tree-store references mounted with overlayfs at run time, or
//! as private copies (`--no-overlay`, or when overlayfs is unavailable).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use abi::pod_dir;
use abi::schema::{ImageManifest, PodManifest};
use thiserror::Error;

use super::overlay::OverlayLayers;
use crate::store::{ImageKey, Store, StoreError, TreeId};

#[derive(Debug, Error)]
pub enum RenderError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot render image {key}: {source}")]
    Store {
        key: String,
        #[source]
        source: StoreError,
    },
}

/// An app to lay into the pod: its pod name and image.
#[derive(Debug, Clone)]
pub struct AppImage {
    pub name: String,
    pub key: ImageKey,
    pub manifest: ImageManifest,
}

/// Writes the pod manifest and lays out stage1 and the apps.
pub fn render_pod(
    store: &Store,
    pod: &Path,
    manifest: &PodManifest,
    stage1: (&ImageKey, &ImageManifest),
    apps: &[AppImage],
    use_overlay: bool,
) -> Result<(), RenderError> {
    let json = serde_json::to_vec(manifest).expect("pod manifest serialises");
    write_file(&pod.join(pod_dir::POD_MANIFEST), &json, 0o640)?;
    let (stage1_key, stage1_manifest) = stage1;
    if use_overlay {
        let tree = render_tree(store, stage1_key)?;
        write_file(
            &pod.join(pod_dir::STAGE1_TREE_STORE_ID),
            tree.as_str().as_bytes(),
            0o640,
        )?;
        mkdirs(&pod.join(pod_dir::STAGE1_ROOTFS))?;
        write_manifest(&pod.join(pod_dir::STAGE1_MANIFEST), stage1_manifest)?;
        let layers = OverlayLayers::with_lower(store.tree_rootfs(&tree), pod, tree.as_str(), "");
        mkdirs(&layers.upper)?;
        mkdirs(&layers.work)?;
    } else {
        store
            .render_to(stage1_key, &pod.join(pod_dir::STAGE1_DIR))
            .map_err(|source| store_err(stage1_key, source))?;
    }
    for app in apps {
        render_app(store, pod, app, use_overlay)?;
    }
    if use_overlay {
        write_file(&pod.join(pod_dir::OVERLAY_PREPARED), b"", 0o640)?;
    }
    Ok(())
}

/// Lays one app into the pod: `appsinfo/<app>/manifest`, and either its
/// tree-store id and empty overlay upper/work directories, or a private copy
/// in `stage1/rootfs/opt/stage2/<app>`. Also used by `app add`.
pub fn render_app(
    store: &Store,
    pod: &Path,
    app: &AppImage,
    use_overlay: bool,
) -> Result<(), RenderError> {
    let info = pod.join(pod_dir::APPS_INFO_DIR).join(&app.name);
    mkdirs(&info)?;
    write_manifest(&info.join("manifest"), &app.manifest)?;
    if use_overlay {
        let tree = render_tree(store, &app.key)?;
        write_file(&info.join("treeStoreID"), tree.as_str().as_bytes(), 0o640)?;
        let layers =
            OverlayLayers::with_lower(store.tree_rootfs(&tree), pod, tree.as_str(), &app.name);
        mkdirs(&layers.upper)?;
        mkdirs(&layers.work)?;
    } else {
        let dest = pod
            .join(pod_dir::STAGE1_ROOTFS)
            .join(pod_dir::app_dir(&app.name));
        store
            .render_to(&app.key, &dest)
            .map_err(|source| store_err(&app.key, source))?;
    }
    Ok(())
}

fn render_tree(store: &Store, key: &ImageKey) -> Result<TreeId, RenderError> {
    store
        .render_tree(key)
        .map_err(|source| store_err(key, source))
}

fn store_err(key: &ImageKey, source: StoreError) -> RenderError {
    RenderError::Store {
        key: key.to_string(),
        source,
    }
}

fn write_manifest(path: &Path, m: &ImageManifest) -> Result<(), RenderError> {
    let json = serde_json::to_vec(m).expect("image manifest serialises");
    write_file(path, &json, 0o640)
}

pub fn mkdirs(path: &Path) -> Result<(), RenderError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(|source| RenderError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes through a temporary file and a rename so readers never see half a file.
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), RenderError> {
    let err = |source| RenderError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(data).map_err(err)?;
    drop(f);
    fs::rename(&tmp, path).map_err(err)
}
