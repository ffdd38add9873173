//! Choosing the stage1 image of a pod (rkt's `stage1hash.go`): the
//! `--stage1-*` flags, else the configured or built-in default, looked up in
//! the store first and imported from its location otherwise.

use std::fs::File;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::Config;
use crate::fetch::{FetchError, Fetcher};
use crate::store::{ImageKey, ImportOptions, Store, StoreError};

/// The flavor used when the user names none.
pub const DEFAULT_FLAVOR: &str = "ns";
/// Where `make install` puts the stage1 images, relative to `bin/rkt`.
const INSTALL_DIR_FROM_BIN: &str = "../lib/rkt/stage1-images";
/// The system-wide stage1 image directory (rkt's default).
pub const SYSTEM_STAGE1_IMAGES_DIR: &str = "/usr/lib/rkt/stage1-images";

#[derive(Debug, Error)]
pub enum SelectError {
    #[error("only one of --stage1-url, --stage1-path, --stage1-name, --stage1-hash and --stage1-from-dir may be given")]
    Conflict,
    #[error("stage1 image {0}")]
    Fetch(String, #[source] FetchError),
    #[error("stage1 image {0}")]
    Store(String, #[source] StoreError),
    #[error("cannot open stage1 image {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--stage1-from-dir={0:?} must be a file name inside the stage1 images directory, not a path")]
    FromDirPath(String),
    #[error("no stage1 image found: tried the store ({name}:{version}) and {tried}; build it with `make`, install it with `make install`, or pass --stage1-path")]
    NoDefault {
        name: String,
        version: String,
        tried: String,
    },
}

/// The user's `--stage1-*` choice.
#[derive(Debug, Clone, Default)]
pub struct Stage1Request {
    pub url: Option<String>,
    pub path: Option<PathBuf>,
    pub name: Option<String>,
    pub hash: Option<String>,
    pub from_dir: Option<String>,
}

/// Resolves the stage1 image into the store and returns its key.
pub fn select_stage1(
    store: &Store,
    fetcher: &Fetcher,
    req: &Stage1Request,
    config: &Config,
) -> Result<ImageKey, SelectError> {
    let given = [
        req.url.is_some(),
        req.path.is_some(),
        req.name.is_some(),
        req.hash.is_some(),
        req.from_dir.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(SelectError::Conflict);
    }
    let images_dir = stage1_images_dir(config);
    if let Some(url) = &req.url {
        if let Some(path) = url.strip_prefix("file://") {
            return import_path(store, fetcher, Path::new(path), &images_dir);
        }
        // http(s) (or docker://): fetched like any image, without
        // dependencies, its signature checked unless told otherwise.
        return fetcher
            .fetch(url, None)
            .map_err(|e| SelectError::Fetch(url.clone(), e));
    }
    if let Some(path) = &req.path {
        return import_path(store, fetcher, path, &images_dir);
    }
    if let Some(name) = &req.name {
        return fetcher
            .fetch(name, None)
            .map_err(|e| SelectError::Fetch(name.clone(), e));
    }
    if let Some(hash) = &req.hash {
        return store
            .resolve_key(hash)
            .map_err(|e| SelectError::Store(hash.clone(), e));
    }
    if let Some(file) = &req.from_dir {
        if file.contains('/') {
            return Err(SelectError::FromDirPath(file.clone()));
        }
        return import_trusted(store, &images_dir.join(file));
    }
    default_stage1(store, config)
}

/// The directory `--stage1-from-dir` names files in.
pub fn stage1_images_dir(config: &Config) -> PathBuf {
    config
        .paths
        .stage1_images
        .clone()
        .unwrap_or_else(|| PathBuf::from(SYSTEM_STAGE1_IMAGES_DIR))
}

/// Candidate default image files, in search order: beside the binary (rkt's
/// build layout, `target/release/`), the install dir next to `bin/`, then the
/// configured stage1 images directory.
pub fn default_image_candidates(config: &Config, file_name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(location) = config
        .stage1
        .location
        .as_deref()
        .map(|l| l.strip_prefix("file://").unwrap_or(l))
        .filter(|l| l.starts_with('/'))
    {
        out.push(PathBuf::from(location));
    }
    if let Some(bin_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        out.push(bin_dir.join(file_name));
        out.push(bin_dir.join(INSTALL_DIR_FROM_BIN).join(file_name));
    }
    out.push(stage1_images_dir(config).join(file_name));
    out
}

fn default_stage1(store: &Store, config: &Config) -> Result<ImageKey, SelectError> {
    let name = config
        .stage1
        .name
        .clone()
        .unwrap_or_else(|| format!("coreos.com/rkt/stage1-{DEFAULT_FLAVOR}"));
    let version = config
        .stage1
        .version
        .clone()
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string());
    // A "-dirty" build may differ from what the store holds under its name.
    if !version.ends_with("-dirty") {
        let labels = [("version".to_string(), version.clone())];
        if let Some(key) = store
            .find_by_name(&name, &labels)
            .map_err(|e| SelectError::Store(name.clone(), e))?
        {
            tracing::debug!("using stage1 {name}:{version} from the local store ({key})");
            return Ok(key);
        }
    }
    let file_name = format!("stage1-{DEFAULT_FLAVOR}.aci");
    let candidates = default_image_candidates(config, &file_name);
    for candidate in &candidates {
        if candidate.is_file() {
            tracing::debug!("using stage1 image file {}", candidate.display());
            return import_trusted(store, candidate);
        }
    }
    Err(SelectError::NoDefault {
        name,
        version,
        tried: candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Images in the default locations (beside the binary, the install dir, the
/// stage1 images dir) are trusted: no signature needed, as rkt.
fn import_path(
    store: &Store,
    fetcher: &Fetcher,
    path: &Path,
    images_dir: &Path,
) -> Result<ImageKey, SelectError> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let abs = abs.canonicalize().unwrap_or(abs);
    let canon = |p: PathBuf| p.canonicalize().unwrap_or(p);
    let mut trusted_dirs = vec![canon(images_dir.to_path_buf())];
    if let Some(bin_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        trusted_dirs.push(canon(bin_dir.join(INSTALL_DIR_FROM_BIN)));
        trusted_dirs.push(canon(bin_dir));
    }
    if abs
        .parent()
        .is_some_and(|p| trusted_dirs.iter().any(|d| d == p))
    {
        return import_trusted(store, &abs);
    }
    let s = abs.to_string_lossy().to_string();
    fetcher
        .fetch(&s, None)
        .map_err(|e| SelectError::Fetch(s, e))
}

fn import_trusted(store: &Store, path: &Path) -> Result<ImageKey, SelectError> {
    let file = File::open(path).map_err(|source| SelectError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    store
        .import(std::io::BufReader::new(file), &ImportOptions::default())
        .map_err(|e| SelectError::Store(path.display().to_string(), e))
}
