//! The image store: CAS blobs, the SQLite image database and the tree store.
//!
//! Layout under `$dir/cas` (rkt's, with SQLite in place of ql):
//! `blob/sha512/<2 hex>/<key>` (uncompressed ACI tar), `imageManifest/sha512/<2 hex>/<key>`,
//! `db/images.sqlite`, `tree/<tree id>/{rootfs,manifest,hash,rendered,image}`,
//! `treestorelocks/`, `imagelocks/`, `tmp/`.

mod archive;
mod db;
mod error;
mod extract;
mod import;
mod key;
mod render;
mod sys;
mod treehash;

use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::Flock;

use abi::schema::ImageManifest;

use db::Db;
pub use db::Remote;

pub use error::StoreError;
pub use import::MAX_MANIFEST_SIZE;
pub(crate) use key::to_hex;
pub use key::{is_key_prefix, normalize_prefix, ImageKey, TreeId};
pub use render::{dep_list, Layer};

/// Options of one import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The image was fetched by name without a version (rkt's `latest` flag).
    pub latest: bool,
    /// Render the image's tree while importing (when it has no dependencies
    /// and no path whitelist; else `render_tree` does it later). `None`: when
    /// running as root, the only user of the tree store.
    pub render_tree: Option<bool>,
}

/// What `image list` shows about a stored image.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub key: ImageKey,
    pub name: String,
    pub version: Option<String>,
    pub import_time: SystemTime,
    pub last_used: SystemTime,
    pub latest: bool,
    /// Size of the stored (uncompressed) ACI blob.
    pub size: u64,
    /// Size of the image's rendered tree, 0 when not rendered.
    pub tree_store_size: u64,
}

/// Name prefix of kept downloads in the tmp dir ([`Store::kept_download`]).
const KEPT_DOWNLOAD: &str = "download-";
/// A kept partial download untouched this long is not resumed any more.
const ABANDONED_DOWNLOAD: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// The store's tmp dir, for unnamed private files ([`Store::private_copy`]).
#[derive(Debug, Clone)]
pub struct PrivateFiles {
    dir: PathBuf,
}

impl PrivateFiles {
    /// An unnamed copy of `reader`, positioned at its start.
    pub fn copy(&self, mut reader: impl Read) -> Result<File, StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o600)
            .open(&self.dir)
            .map_err(StoreError::io(format!(
                "creating a file in {}",
                self.dir.display()
            )))?;
        io::copy(&mut reader, &mut file).map_err(StoreError::io("copying the image"))?;
        file.seek(io::SeekFrom::Start(0))
            .map_err(StoreError::io("copying the image"))?;
        Ok(file)
    }
}

/// The CAS under `$dir/cas`.
pub struct Store {
    cas: PathBuf,
    db: Db,
    /// Opened by a member of the data dir's group (see `open_read_only`).
    read_only: bool,
}

const TREE_ROOTFS: &str = "rootfs";
/// Temp files younger than this are never taken for leftovers.
const TMP_GRACE: std::time::Duration = std::time::Duration::from_secs(120);
const TREE_MANIFEST: &str = "manifest";
const TREE_HASH: &str = "hash";
const TREE_RENDERED: &str = "rendered";
const TREE_IMAGE: &str = "image";
/// Suffix of the temp directory of a tree rendered while importing, after
/// the name of its lock file.
const SPEC_SUFFIX: &str = ".tree";

impl Store {
    /// Opens (creating if needed) the store under `data_dir/cas` and cleans
    /// temporary files that no running import or render owns any more.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        crate::data_dir::ensure(data_dir)
            .map_err(StoreError::io(format!("creating {}", data_dir.display())))?;
        let cas = data_dir.join("cas");
        for d in [
            "blob/sha512",
            "imageManifest/sha512",
            "db",
            "tree",
            "treestorelocks",
            "imagelocks",
            "tmp",
        ] {
            let p = cas.join(d);
            fs::create_dir_all(&p).map_err(StoreError::io(format!("creating {}", p.display())))?;
        }
        // Creating the database, switching it to WAL and migrating it must not
        // race another process doing the same (SQLite reports "locked" then).
        let lock_path = cas.join("db/open.lock");
        let lock = sys::lock_file(&lock_path, true)
            .map_err(StoreError::io(format!("locking {}", lock_path.display())))?;
        let db = Db::open(&cas.join("db/images.sqlite"))?;
        drop(lock);
        // Trees are rendered under tmp/, each a hierarchy of its own (a
        // render of a few thousand files took twice as long without).
        if let Err(e) = crate::data_dir::set_topdir(&cas.join("tmp")) {
            tracing::trace!("cannot mark {}/tmp as a top directory: {e}", cas.display());
        }
        let store = Store {
            cas,
            db,
            read_only: false,
        };
        store.clean_tmp();
        Ok(store)
    }

    /// Opens an existing store for reading only: what users other than root
    /// get from [`Store::open_for_reading`]. Nothing is created, locked or
    /// cleaned.
    pub fn open_read_only(data_dir: &Path) -> Result<Store, StoreError> {
        let cas = data_dir.join("cas");
        let db = Db::open_read_only(&cas.join("db/images.sqlite"))?;
        Ok(Store {
            cas,
            db,
            read_only: true,
        })
    }

    /// The store as a reading command needs it: root opens (and creates or
    /// upgrades) it as usual; anyone else reads it as it is, which works for
    /// members of the data directory's group (rkt's `rkt` group layout).
    pub fn open_for_reading(data_dir: &Path) -> Result<Store, StoreError> {
        if nix::unistd::geteuid().is_root() {
            Store::open(data_dir)
        } else {
            Store::open_read_only(data_dir)
        }
    }

    /// An unnamed copy of `reader` in the store's tmp dir (`O_TMPFILE`),
    /// positioned at its start: nobody else can change it, so the bytes a
    /// signature was checked against are the bytes imported.
    pub fn private_copy(&self, reader: impl Read) -> Result<File, StoreError> {
        self.private_files().copy(reader)
    }

    /// The file keeping the download named `key` (a hash of its URL) for
    /// resuming, created if needed and locked for this process; `None`
    /// while another process holds it. Its path (siblings such as an ETag
    /// file take its name with an extension) goes with it. [`Store::open`]
    /// removes one untouched for a week.
    pub fn kept_download(&self, key: &str) -> io::Result<Option<(Flock<File>, PathBuf)>> {
        let path = self.tmp_dir().join(format!("{KEPT_DOWNLOAD}{key}"));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        Ok(sys::lock_open_file(file, false, true)?.map(|locked| (locked, path)))
    }

    /// Where private copies are made, for threads of their own (the store
    /// itself stays on one thread).
    pub fn private_files(&self) -> PrivateFiles {
        PrivateFiles {
            dir: self.tmp_dir(),
        }
    }

    /// What `url` last gave, if that image is still stored.
    pub fn remote(&self, url: &str) -> Result<Option<Remote>, StoreError> {
        Ok(self
            .db
            .remote(url)?
            .filter(|r| self.blob_path(&r.key).exists()))
    }

    /// Records what `url` gave (its signature from `sig_url`).
    pub fn set_remote(
        &self,
        url: &str,
        sig_url: Option<&str>,
        remote: &Remote,
    ) -> Result<(), StoreError> {
        self.db.set_remote(url, sig_url, remote)
    }

    /// The store's root directory (`$dir/cas`).
    pub fn cas_dir(&self) -> &Path {
        &self.cas
    }

    fn tmp_dir(&self) -> PathBuf {
        self.cas.join("tmp")
    }

    /// Removes leftovers of killed imports/renders. Live ones hold a lock and
    /// are left alone.
    fn clean_tmp(&self) {
        let Ok(rd) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if let Some(owner) = name
                .strip_prefix("import-")
                .and_then(|n| n.strip_suffix(SPEC_SUFFIX))
            {
                // A tree rendered while importing: in use while its lock file
                // (`import-<id>`, removed last) is locked.
                let lock = self.tmp_dir().join(format!("import-{owner}"));
                let live = match File::options().write(true).open(&lock) {
                    Ok(f) => !matches!(sys::lock_open_file(f, false, true), Ok(Some(_))),
                    Err(_) => false,
                };
                if !live {
                    let _ = sys::remove_dir_all_checked(&path);
                }
            } else if name.starts_with("import-") || name.starts_with("write-") {
                // A file just created may not be locked yet by its importer.
                let young = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_none_or(|age| age < TMP_GRACE);
                if young {
                    continue;
                }
                let Ok(f) = File::options().write(true).open(&path) else {
                    continue;
                };
                if let Ok(Some(_lock)) = sys::lock_open_file(f, false, true) {
                    let _ = fs::remove_file(&path);
                }
            } else if name.starts_with(KEPT_DOWNLOAD) {
                // Kept for resuming; abandoned after a week untouched.
                let abandoned = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > ABANDONED_DOWNLOAD);
                if !abandoned {
                    continue;
                }
                let Ok(f) = File::options().write(true).open(&path) else {
                    continue;
                };
                if let Ok(Some(_lock)) = sys::lock_open_file(f, false, true) {
                    let _ = fs::remove_file(&path);
                }
            } else if let Some(rest) = name.strip_prefix("tree-") {
                let Some(id) = rest.rsplit_once('.').and_then(|(id, _)| TreeId::parse(id)) else {
                    continue;
                };
                if let Ok(Some(_lock)) = sys::lock_file(&self.tree_lock_path(&id), false) {
                    let _ = sys::remove_dir_all_checked(&path);
                }
            }
        }
    }

    fn blob_path(&self, key: &ImageKey) -> PathBuf {
        self.cas
            .join("blob/sha512")
            .join(key.shard())
            .join(key.as_str())
    }

    fn manifest_path(&self, key: &ImageKey) -> PathBuf {
        self.cas
            .join("imageManifest/sha512")
            .join(key.shard())
            .join(key.as_str())
    }

    /// A new temp file in `cas/tmp`, locked so `open` of another process
    /// does not take it for a leftover.
    fn temp_file(&self, prefix: &str) -> Result<TempFile, StoreError> {
        let path = self
            .tmp_dir()
            .join(format!("{prefix}{}", uuid::Uuid::new_v4().simple()));
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(StoreError::io(format!("creating {}", path.display())))?;
        let lock = sys::lock_open_file(f, true, true)
            .map_err(StoreError::io("locking a temporary file"))?
            .ok_or_else(|| StoreError::Io {
                context: "locking a temporary file".into(),
                source: io::Error::from(io::ErrorKind::WouldBlock),
            })?;
        Ok(TempFile {
            path,
            file: Some(lock),
        })
    }

    /// Imports an ACI (plain tar, or gzip/bzip2/xz compressed) from `reader`.
    /// Importing the same image again yields the same key and refreshes its row.
    pub fn import(&self, reader: impl Read, opts: &ImportOptions) -> Result<ImageKey, StoreError> {
        self.import_gated(reader, opts, |_| Ok::<(), StoreError>(()))
    }

    /// [`Store::import`], with `gate` deciding, once the image is read and
    /// validated and before anything is stored, whether it goes in (a
    /// signature checked meanwhile, the name that was asked for). A refused
    /// image leaves nothing behind.
    pub fn import_gated<E: From<StoreError>>(
        &self,
        reader: impl Read,
        opts: &ImportOptions,
        gate: impl FnOnce(&ImageManifest) -> Result<(), E>,
    ) -> Result<ImageKey, E> {
        let mut tmp = self.temp_file("import-")?;
        let spec = if opts
            .render_tree
            .unwrap_or_else(|| nix::unistd::geteuid().is_root())
        {
            self.speculative_tree()
                .inspect_err(|e| tracing::debug!("not rendering while importing: {e}"))
                .ok()
        } else {
            None
        };
        let t0 = std::time::Instant::now();
        let copied = import::copy_stream(
            reader,
            tmp.file(),
            spec.as_ref().map(|s| s.rootfs.as_path()),
        )?;
        let t1 = std::time::Instant::now();
        let key = ImageKey::from_digest(&copied.digest);
        let (raw_manifest, manifest) = import::validate(tmp.file())?;
        tracing::debug!(
            "import {key}: {} bytes copied in {:?}, validated in {:?}",
            copied.size,
            t1 - t0,
            t1.elapsed()
        );
        gate(&manifest)?;

        let mpath = self.manifest_path(&key);
        write_atomic(&self.tmp_dir(), &mpath, &raw_manifest)?;
        let bpath = self.blob_path(&key);
        create_parent(&bpath)?;
        // Same content under the same name: a concurrent import of the same
        // image renaming over ours is harmless.
        fs::rename(&tmp.path, &bpath)
            .map_err(StoreError::io(format!("storing {}", bpath.display())))?;
        tmp.persisted();

        let now = SystemTime::now();
        self.db.upsert(&ImageInfo {
            key: key.clone(),
            name: manifest.name.to_string(),
            version: manifest.label("version").map(str::to_string),
            import_time: now,
            last_used: now,
            latest: opts.latest,
            size: copied.size,
            tree_store_size: 0,
        })?;
        if let Some(spec) = spec {
            let own_rootfs_only =
                manifest.dependencies.is_empty() && manifest.path_whitelist.is_empty();
            match copied.tree.filter(|_| own_rootfs_only) {
                Some(digests) => {
                    if let Err(e) = self.install_tree(&spec, &key, &raw_manifest, &digests) {
                        // Not fatal: render_tree renders it from the blob.
                        tracing::debug!("keeping the tree rendered while importing failed: {e}");
                    }
                }
                None => tracing::debug!("import {key}: tree not rendered while importing"),
            }
        }
        Ok(key)
    }

    /// A temp directory for a tree rendered while importing, with the locked
    /// file that tells `clean_tmp` it is in use.
    fn speculative_tree(&self) -> Result<SpecTree, StoreError> {
        let lock = self.temp_file("import-")?;
        let dir = PathBuf::from(format!("{}{SPEC_SUFFIX}", lock.path.display()));
        let rootfs = dir.join(TREE_ROOTFS);
        fs::create_dir_all(&rootfs)
            .map_err(StoreError::io(format!("creating {}", rootfs.display())))?;
        Ok(SpecTree {
            dir,
            rootfs,
            _lock: lock,
        })
    }

    /// Completes a tree extracted while importing `key` (an image without
    /// dependencies, so its tree holds its rootfs alone) and moves it into
    /// the tree store unless that tree is already there.
    fn install_tree(
        &self,
        spec: &SpecTree,
        key: &ImageKey,
        raw_manifest: &[u8],
        digests: &extract::FileDigests,
    ) -> Result<(), StoreError> {
        let id = TreeId::from_dep_list(std::slice::from_ref(key));
        let _lock = sys::lock_file(&self.tree_lock_path(&id), true)
            .map_err(StoreError::io(format!("locking tree store {id}")))?;
        if self.tree_rendered(&id) {
            return Ok(());
        }
        let dir = self.tree_dir(&id);
        if dir.exists() {
            sys::remove_dir_all_checked(&dir)
                .map_err(StoreError::io(format!("removing stale {}", dir.display())))?;
        }
        let size = self.finish_tree(&spec.dir, key, raw_manifest, Some(digests))?;
        fs::rename(&spec.dir, &dir)
            .map_err(StoreError::io(format!("storing tree {}", dir.display())))?;
        self.db.set_tree_store_size(key, size)
    }

    /// Resolves a user-given key prefix (`sha512-` + at least 2 hex digits).
    pub fn resolve_key(&self, prefix: &str) -> Result<ImageKey, StoreError> {
        let p = normalize_prefix(prefix).ok_or_else(|| StoreError::BadKey(prefix.to_string()))?;
        let mut keys = self.db.keys_with_prefix(&p)?;
        match keys.len() {
            0 => Err(StoreError::NotFound(prefix.to_string())),
            1 => Ok(keys.remove(0)),
            _ => Err(StoreError::Ambiguous(prefix.to_string())),
        }
    }

    /// rkt's `GetACI`: images named `name` carrying all `labels`; without a
    /// requested `version`, `latest` images are preferred; then the newest import.
    pub fn find_by_name(
        &self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<Option<ImageKey>, StoreError> {
        let mut candidates = Vec::new();
        for row in self.db.by_name(name)? {
            let Ok(m) = self.manifest(&row.key) else {
                continue;
            };
            if labels.iter().all(|(k, v)| m.label(k) == Some(v.as_str())) {
                candidates.push(row);
            }
        }
        if !labels.iter().any(|(k, _)| k == "version") && candidates.iter().any(|r| r.latest) {
            candidates.retain(|r| r.latest);
        }
        Ok(candidates
            .into_iter()
            .max_by_key(|r| r.import_time)
            .map(|r| r.key))
    }

    /// Every stored image named `name` (rkt's `ResolveName`), newest import first.
    pub fn keys_by_name(&self, name: &str) -> Result<Vec<ImageKey>, StoreError> {
        let mut rows = self.db.by_name(name)?;
        rows.sort_by_key(|r| std::cmp::Reverse(r.import_time));
        Ok(rows.into_iter().map(|r| r.key).collect())
    }

    /// The stored manifest of an image.
    pub fn manifest(&self, key: &ImageKey) -> Result<ImageManifest, StoreError> {
        import::parse_manifest(&self.raw_manifest(key)?)
    }

    /// The manifest bytes exactly as they were in the ACI.
    pub fn raw_manifest(&self, key: &ImageKey) -> Result<Vec<u8>, StoreError> {
        fs::read(self.manifest_path(key)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound(key.to_string()),
            _ => StoreError::Io {
                context: format!("reading the manifest of {key}"),
                source: e,
            },
        })
    }

    pub fn info(&self, key: &ImageKey) -> Result<ImageInfo, StoreError> {
        self.db
            .get(key)?
            .ok_or_else(|| StoreError::NotFound(key.to_string()))
    }

    pub fn list(&self) -> Result<Vec<ImageInfo>, StoreError> {
        self.db.all()
    }

    /// The stored uncompressed ACI tar.
    pub fn open_blob(&self, key: &ImageKey) -> Result<File, StoreError> {
        File::open(self.blob_path(key)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound(key.to_string()),
            _ => StoreError::Io {
                context: format!("opening the blob of {key}"),
                source: e,
            },
        })
    }

    /// Records that the image was just used.
    pub fn touch(&self, key: &ImageKey) -> Result<(), StoreError> {
        // A reader outside root cannot record it; the use still happened.
        if self.read_only {
            return Ok(());
        }
        self.db.touch(key, SystemTime::now())
    }

    /// Removes an image's row, blob and manifest. Rendered trees stay until
    /// `image gc` finds no pod using them.
    pub fn remove(&self, key: &ImageKey) -> Result<(), StoreError> {
        if !self.db.remove(key)? {
            return Err(StoreError::NotFound(key.to_string()));
        }
        for p in [self.blob_path(key), self.manifest_path(key)] {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(StoreError::Io {
                        context: format!("removing {}", p.display()),
                        source: e,
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks a stored blob against its key (rehashes it).
    pub fn verify_blob(&self, key: &ImageKey) -> Result<(), StoreError> {
        use sha2::{Digest, Sha512};
        let mut f = self.open_blob(key)?;
        let mut h = Sha512::new();
        io::copy(&mut f, &mut h).map_err(StoreError::io(format!("reading the blob of {key}")))?;
        let got = ImageKey::from_digest(&h.finalize());
        if &got != key {
            return Err(StoreError::Corrupt {
                key: key.to_string(),
                got: got.to_string(),
            });
        }
        Ok(())
    }

    // ---- tree store ----

    fn tree_lock_path(&self, id: &TreeId) -> PathBuf {
        self.cas.join("treestorelocks").join(id.as_str())
    }

    pub fn tree_dir(&self, id: &TreeId) -> PathBuf {
        self.cas.join("tree").join(id.as_str())
    }

    pub fn tree_rootfs(&self, id: &TreeId) -> PathBuf {
        self.tree_dir(id).join(TREE_ROOTFS)
    }

    /// The id of the tree `render_tree` would produce for `key` with the
    /// dependencies currently in the store.
    pub fn tree_id(&self, key: &ImageKey) -> Result<TreeId, StoreError> {
        let layers = dep_list(self, key)?;
        Ok(tree_id_of(&layers))
    }

    /// True if the tree is completely rendered.
    pub fn tree_rendered(&self, id: &TreeId) -> bool {
        self.tree_dir(id).join(TREE_RENDERED).exists()
    }

    /// Renders the image and its dependencies once into the tree store and
    /// returns the tree id. Trees are immutable: later calls return the
    /// existing tree. Concurrent renders of one tree wait for each other.
    pub fn render_tree(&self, key: &ImageKey) -> Result<TreeId, StoreError> {
        let layers = dep_list(self, key)?;
        let id = tree_id_of(&layers);
        let _lock = sys::lock_file(&self.tree_lock_path(&id), true)
            .map_err(StoreError::io(format!("locking tree store {id}")))?;
        let dir = self.tree_dir(&id);
        if self.tree_rendered(&id) {
            return Ok(id);
        }
        if dir.exists() {
            // An unfinished tree from before the rename-into-place scheme or a crash.
            sys::remove_dir_all_checked(&dir)
                .map_err(StoreError::io(format!("removing stale {}", dir.display())))?;
        }
        let tmp = self
            .tmp_dir()
            .join(format!("tree-{id}.{}", uuid::Uuid::new_v4().simple()));
        let result = self.render_tree_into(&layers, key, &tmp).and_then(|size| {
            fs::rename(&tmp, &dir)
                .map_err(StoreError::io(format!("storing tree {}", dir.display())))?;
            Ok(size)
        });
        match result {
            Ok(size) => {
                self.db.set_tree_store_size(key, size)?;
                Ok(id)
            }
            Err(e) => {
                let _ = sys::remove_dir_all_checked(&tmp);
                Err(e)
            }
        }
    }

    fn render_tree_into(
        &self,
        layers: &[Layer],
        key: &ImageKey,
        tmp: &Path,
    ) -> Result<u64, StoreError> {
        let rootfs = tmp.join(TREE_ROOTFS);
        fs::create_dir_all(&rootfs)
            .map_err(StoreError::io(format!("creating {}", rootfs.display())))?;
        let t0 = std::time::Instant::now();
        let digests = render::render_layers(self, layers, &rootfs, true)?;
        tracing::debug!("tree for {key}: rendered in {:?}", t0.elapsed());
        self.finish_tree(tmp, key, &self.raw_manifest(key)?, Some(&digests))
    }

    /// Writes the files next to a rendered `rootfs` in `tmp`, the `rendered`
    /// marker last; returns the size of the tree.
    fn finish_tree(
        &self,
        tmp: &Path,
        key: &ImageKey,
        raw_manifest: &[u8],
        digests: Option<&extract::FileDigests>,
    ) -> Result<u64, StoreError> {
        let t0 = std::time::Instant::now();
        fs::write(tmp.join(TREE_MANIFEST), raw_manifest)
            .map_err(StoreError::io("writing the tree manifest"))?;
        let (hash, size) = treehash::hash_tree(&tmp.join(TREE_ROOTFS), digests)
            .map_err(StoreError::io("hashing the rendered tree"))?;
        tracing::debug!("tree for {key}: hashed in {:?}", t0.elapsed());
        fs::write(tmp.join(TREE_HASH), &hash).map_err(StoreError::io("writing the tree hash"))?;
        fs::write(tmp.join(TREE_IMAGE), key.as_str())
            .map_err(StoreError::io("writing the tree image"))?;
        // The marker goes last: a tree without it is never used.
        fs::write(tmp.join(TREE_RENDERED), b"")
            .map_err(StoreError::io("writing the tree marker"))?;
        Ok(size)
    }

    /// Recomputes a rendered tree's hash and compares it with the stored one.
    pub fn verify_tree(&self, id: &TreeId) -> Result<(), StoreError> {
        let dir = self.tree_dir(id);
        if !self.tree_rendered(id) {
            return Err(StoreError::Tree {
                id: id.to_string(),
                why: "not rendered".into(),
            });
        }
        let want = fs::read_to_string(dir.join(TREE_HASH))
            .map_err(StoreError::io(format!("reading the hash of tree {id}")))?;
        let got = treehash::rehash_like(&dir.join(TREE_ROOTFS), want.trim())
            .map_err(StoreError::io(format!("hashing tree {id}")))?;
        if want.trim() != got {
            return Err(StoreError::Tree {
                id: id.to_string(),
                why: format!("hash mismatch: expected {}, got {got}", want.trim()),
            });
        }
        Ok(())
    }

    /// Removes a tree (under its lock; refuses when something is mounted in it).
    pub fn remove_tree(&self, id: &TreeId) -> Result<(), StoreError> {
        if !id.is_valid() {
            return Err(StoreError::Tree {
                id: id.to_string(),
                why: "not a valid tree store id".into(),
            });
        }
        let _lock = sys::lock_file(&self.tree_lock_path(id), true)
            .map_err(StoreError::io(format!("locking tree store {id}")))?;
        let dir = self.tree_dir(id);
        sys::remove_dir_all_checked(&dir)
            .map_err(StoreError::io(format!("removing {}", dir.display())))?;
        let _ = fs::remove_file(self.tree_lock_path(id));
        Ok(())
    }

    /// Ids of all trees in the tree store (rendered or not).
    pub fn list_trees(&self) -> Result<Vec<TreeId>, StoreError> {
        let dir = self.cas.join("tree");
        let mut ids: Vec<TreeId> = fs::read_dir(&dir)
            .map_err(StoreError::io(format!("reading {}", dir.display())))?
            .flatten()
            .filter_map(|e| TreeId::parse(&e.file_name().to_string_lossy()))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The image key recorded in a rendered tree.
    pub fn tree_image(&self, id: &TreeId) -> Option<ImageKey> {
        fs::read_to_string(self.tree_dir(id).join(TREE_IMAGE))
            .ok()
            .and_then(|s| ImageKey::parse(s.trim()))
    }

    /// Renders image + dependencies into `dest` (which gets `manifest` and
    /// `rootfs/`), without the tree store.
    pub fn render_to(&self, key: &ImageKey, dest: &Path) -> Result<(), StoreError> {
        let rootfs = dest.join(TREE_ROOTFS);
        fs::create_dir_all(&rootfs)
            .map_err(StoreError::io(format!("creating {}", rootfs.display())))?;
        let layers = dep_list(self, key)?;
        render::render_layers(self, &layers, &rootfs, false)?;
        fs::write(dest.join(TREE_MANIFEST), self.raw_manifest(key)?)
            .map_err(StoreError::io("writing the manifest"))
    }

    /// Renders only the rootfs of image + dependencies into `dest`.
    pub fn render_rootfs_to(&self, key: &ImageKey, dest: &Path) -> Result<(), StoreError> {
        fs::create_dir_all(dest).map_err(StoreError::io(format!("creating {}", dest.display())))?;
        let layers = dep_list(self, key)?;
        render::render_layers(self, &layers, dest, false).map(|_| ())
    }

    /// Extracts the image's own ACI (no dependencies, no whitelist) into
    /// `dest`: `manifest` + `rootfs/`, or with `rootfs_only` the rootfs contents.
    pub fn extract_to(
        &self,
        key: &ImageKey,
        dest: &Path,
        rootfs_only: bool,
    ) -> Result<(), StoreError> {
        fs::create_dir_all(dest).map_err(StoreError::io(format!("creating {}", dest.display())))?;
        let blob = self.open_blob(key)?;
        let mut ex = extract::Extractor::new(dest)?;
        archive::walk(&blob, |e, _| {
            let (rel, link) = if rootfs_only {
                match render::rootfs_rel(&e.path) {
                    Some(r) => (r, e.link.as_deref().and_then(render::rootfs_rel)),
                    None => return Ok(()),
                }
            } else {
                (e.path.as_str(), e.link.as_deref())
            };
            let link = if e.kind == archive::Kind::Hardlink {
                link
            } else {
                None
            };
            ex.entry(extract::Data::Blob(&blob), e, rel, link)
        })?;
        ex.finish().map(|_| ())
    }
}

fn tree_id_of(layers: &[Layer]) -> TreeId {
    let keys: Vec<ImageKey> = layers.iter().map(|l| l.key.clone()).collect();
    TreeId::from_dep_list(&keys)
}

fn create_parent(p: &Path) -> Result<(), StoreError> {
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent)
            .map_err(StoreError::io(format!("creating {}", parent.display())))?;
    }
    Ok(())
}

/// Writes `data` to `dest` through a temp file and a rename.
fn write_atomic(tmp_dir: &Path, dest: &Path, data: &[u8]) -> Result<(), StoreError> {
    create_parent(dest)?;
    let tmp = tmp_dir.join(format!("write-{}", uuid::Uuid::new_v4().simple()));
    fs::write(&tmp, data).map_err(StoreError::io(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, dest).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::Io {
            context: format!("storing {}", dest.display()),
            source: e,
        }
    })
}

/// A tree being rendered while importing: `dir` holds `rootfs/`.
struct SpecTree {
    dir: PathBuf,
    rootfs: PathBuf,
    /// Dropped (unlocked and removed) only after `dir` is gone.
    _lock: TempFile,
}

impl Drop for SpecTree {
    /// Removes the directory unless it was moved into the tree store.
    fn drop(&mut self) {
        if self.dir.exists() {
            if let Err(e) = sys::remove_dir_all_checked(&self.dir) {
                tracing::debug!("removing {}: {e}", self.dir.display());
            }
        }
    }
}

/// A locked file in `cas/tmp`, removed on drop unless persisted.
struct TempFile {
    path: PathBuf,
    file: Option<nix::fcntl::Flock<File>>,
}

impl TempFile {
    fn file(&mut self) -> &mut File {
        // Only `persisted` empties it, and it consumes the need for the file.
        self.file.as_deref_mut().expect("temp file still open")
    }

    fn persisted(&mut self) {
        self.file = None;
        self.path = PathBuf::new();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests;

/// ACI builders for tests of this crate.
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::tests::{aci, manifest};
}
