//! `rkt export`: an exited pod's app (its image manifest plus its rootfs as
//! the app left it) written as an ACI.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use abi::pod_dir;
use abi::stage1::IdRange;
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
    #[error(
        "app {app}'s rootfs {path} is not a directory of the pod (a symlink?); nothing exported"
    )]
    NotARoot { app: String, path: PathBuf },
}

/// `app_rootfs` itself, read through: refused unless it and its parent are
/// real directories (a kvm guest can write `opt/stage2`, and a symlink
/// there must not export the host's files).
fn real_root(app: &str, app_rootfs: &Path) -> Result<PathBuf, ExportError> {
    let real_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    match app_rootfs.parent().is_some_and(real_dir) && real_dir(app_rootfs) {
        true => Ok(app_rootfs.to_path_buf()),
        false => Err(ExportError::NotARoot {
            app: app.to_string(),
            path: app_rootfs.to_path_buf(),
        }),
    }
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
                    real_root(app, &app_rootfs)?
                } else {
                    return Err(ExportError::Mount(e.to_string()));
                }
            }
        }
    } else {
        let root = real_root(app, &app_rootfs)?;
        mounts
            .ensure_no_mounts_under(&root)
            .map_err(|source| ExportError::Mounted {
                app: app.to_string(),
                source,
            })?;
        root
    };

    // A --private-users pod's files are owned by its id range on the host:
    // the image gets them back as the app saw them (rkt did the same).
    let users = crate::pod::userns::read(pod.path()).map_err(|e| ExportError::Write {
        path: pod.path().join(pod_dir::PRIVATE_USERS_PREPARED),
        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    })?;
    let result = write_aci(&manifest, &source, out, users);
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

fn write_aci(
    manifest: &[u8],
    rootfs: &Path,
    out: &Path,
    users: Option<IdRange>,
) -> Result<(), ExportError> {
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
        let tree = Tree {
            dev: root_meta.dev(),
            users,
        };
        tree.append(&mut b, rootfs, Path::new("rootfs"), &root_meta)?;
        tree.walk(&mut b, rootfs, Path::new("rootfs"))?;
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

/// How to write an app's tree: which filesystem it is on, and the id
/// range to shift its owners back from.
struct Tree {
    dev: u64,
    users: Option<IdRange>,
}

impl Tree {
    /// Appends the tree under `dir` in sorted order, not descending into
    /// other filesystems (a mount left inside the rootfs is exported as an
    /// empty dir).
    fn walk<W: Write>(&self, b: &mut tar::Builder<W>, dir: &Path, name: &Path) -> io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let child = name.join(e.file_name());
            let meta = std::fs::symlink_metadata(&path)?;
            self.append(b, &path, &child, &meta)?;
            if meta.is_dir() && meta.dev() == self.dev {
                self.walk(b, &path, &child)?;
            }
        }
        Ok(())
    }

    /// One entry, its owner shifted back into the app's ids.
    fn append<W: Write>(
        &self,
        b: &mut tar::Builder<W>,
        path: &Path,
        name: &Path,
        meta: &std::fs::Metadata,
    ) -> io::Result<()> {
        let Some(users) = self.users else {
            return b.append_path_with_name(path, name);
        };
        let mut h = tar::Header::new_gnu();
        h.set_metadata(meta);
        h.set_uid(u64::from(users.unshifted(meta.uid())));
        h.set_gid(u64::from(users.unshifted(meta.gid())));
        if meta.file_type().is_symlink() {
            h.set_size(0);
            b.append_link(&mut h, name, std::fs::read_link(path)?)
        } else if meta.is_file() {
            b.append_data(&mut h, name, File::open(path)?)
        } else {
            h.set_size(0);
            b.append_data(&mut h, name, io::empty())
        }
    }
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

        // The same app of a --private-users pod: owners shifted back.
        let shift = 65536 * 9;
        std::fs::write(p.join("private-users-prepared"), format!("{shift}:65536")).unwrap();
        for f in ["", "etc", "etc/hello", "etc/link"] {
            std::os::unix::fs::lchown(rootfs.join(f), Some(shift + 3), Some(shift + 4)).unwrap();
        }
        export_app(&pod, "app", &out, &MountTable::default()).unwrap();
        let mut ar = tar::Archive::new(File::open(&out).unwrap());
        for e in ar.entries().unwrap().skip(1) {
            let e = e.unwrap();
            let h = e.header();
            let what = e.path().unwrap().display().to_string();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (3, 4), "{what}");
            if what == "rootfs/etc/link" {
                assert_eq!(e.link_name().unwrap().unwrap(), Path::new("hello"));
            }
            if what == "rootfs/etc/hello" {
                assert_eq!(h.size().unwrap(), 2);
            }
        }
    }
}
