//! `rkt export`: an exited pod's app (its image manifest plus its rootfs as
//! the app left it) written as an ACI.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use abi::pod_dir;
use nix::mount::{umount2, MntFlags};
use thiserror::Error;

use super::Pod;
use crate::pod::mounts::{MountError, MountTable};
use crate::pod::overlay::OverlayLayers;

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("cannot read app {app}'s {what} {path}: {source}")]
    AppInfo {
        app: String,
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0}")]
    Mount(String),
    #[error("app {app}'s rootfs still has mounts: {source}")]
    Mounted { app: String, source: MountError },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Writes app `app` of `pod` to `out` (an uncompressed ACI), through a
/// temporary file renamed into place. Overlay pods get the app's overlay
/// mounted afresh on a private temporary directory under `$dir/tmp`;
/// non-overlay pods are refused while mounts remain under the app rootfs.
pub fn export_app(
    pod: &Pod,
    app: &str,
    out: &Path,
    mounts: &MountTable,
) -> Result<(), ExportError> {
    let info = pod.path().join(pod_dir::APPS_INFO_DIR).join(app);
    let manifest_path = info.join("manifest");
    let manifest = std::fs::read(&manifest_path).map_err(|source| ExportError::AppInfo {
        app: app.to_string(),
        what: "image manifest",
        path: manifest_path.clone(),
        source,
    })?;
    let app_rootfs = pod
        .path()
        .join(pod_dir::STAGE1_ROOTFS)
        .join(pod_dir::app_rootfs(app));

    let mut temp_mount = None;
    let source = if pod.uses_overlay() {
        let id_path = info.join("treeStoreID");
        let id = std::fs::read_to_string(&id_path).map_err(|source| ExportError::AppInfo {
            app: app.to_string(),
            what: "tree store id",
            path: id_path.clone(),
            source,
        })?;
        let id = id.trim();
        let tmp_root = pod.data_dir().join("tmp");
        std::fs::create_dir_all(&tmp_root).map_err(|source| ExportError::Write {
            path: tmp_root.clone(),
            source,
        })?;
        let dir = tempdir_in(&tmp_root).map_err(|source| ExportError::Write {
            path: tmp_root.clone(),
            source,
        })?;
        let mounted = OverlayLayers::of(pod.data_dir(), pod.path(), id, app).mount(&dir);
        match mounted {
            Ok(()) => {
                temp_mount = Some(dir.clone());
                dir
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                // A pod dir made by another tool may still have its run's
                // overlay mounted here; the kernel may refuse a second overlay
                // on the same upper dir, so read through that one instead.
                if mounts.is_mount_point(&app_rootfs) {
                    app_rootfs.clone()
                } else {
                    return Err(ExportError::Mount(e.to_string()));
                }
            }
        }
    } else {
        mounts
            .ensure_no_mounts_under(&app_rootfs)
            .map_err(|source| ExportError::Mounted {
                app: app.to_string(),
                source,
            })?;
        app_rootfs.clone()
    };

    let result = write_aci(&manifest, &source, out);
    if let Some(dir) = temp_mount {
        let _ = umount2(&dir, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&dir);
    }
    result
}

fn tempdir_in(parent: &Path) -> io::Result<PathBuf> {
    for _ in 0..16 {
        let p = parent.join(format!("export-{:016x}", rand::random::<u64>()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "cannot pick a unique temporary directory name",
    ))
}

fn write_aci(manifest: &[u8], rootfs: &Path, out: &Path) -> Result<(), ExportError> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.tmp-{:08x}",
        name.unwrap_or_default(),
        rand::random::<u32>()
    ));
    let werr = |source| ExportError::Write {
        path: out.to_path_buf(),
        source,
    };
    let result = (|| -> io::Result<()> {
        let file = File::create(&tmp)?;
        let mut b = tar::Builder::new(BufWriter::new(file));
        b.follow_symlinks(false);
        let mut h = tar::Header::new_gnu();
        h.set_size(manifest.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(now_secs());
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "manifest", manifest)?;
        let root_meta = std::fs::symlink_metadata(rootfs)?;
        b.append_path_with_name(rootfs, "rootfs")?;
        walk(&mut b, rootfs, Path::new("rootfs"), root_meta.dev())?;
        let mut w = b.into_inner()?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Appends the tree under `dir` in sorted order, not descending into other
/// filesystems (a mount left inside the rootfs is exported as an empty dir).
fn walk<W: Write>(b: &mut tar::Builder<W>, dir: &Path, name: &Path, dev: u64) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let child = name.join(e.file_name());
        let meta = std::fs::symlink_metadata(&path)?;
        b.append_path_with_name(&path, &child)?;
        if meta.is_dir() && meta.dev() == dev {
            walk(b, &path, &child, dev)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_a_non_overlay_app() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let mut pod = Pod::create(d).unwrap();
        pod.to_run().unwrap();
        let p = pod.path().to_path_buf();
        std::fs::create_dir_all(p.join("appsinfo/app")).unwrap();
        std::fs::write(p.join("appsinfo/app/manifest"), b"{\"m\":1}").unwrap();
        let rootfs = p.join("stage1/rootfs/opt/stage2/app/rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/hello"), b"hi").unwrap();
        std::os::unix::fs::symlink("hello", rootfs.join("etc/link")).unwrap();
        let out = d.join("out.aci");
        export_app(&pod, "app", &out, &MountTable::default()).unwrap();
        let mut ar = tar::Archive::new(File::open(&out).unwrap());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "manifest",
                "rootfs",
                "rootfs/etc",
                "rootfs/etc/hello",
                "rootfs/etc/link"
            ]
        );
    }
}
