use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Errors of the image store.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("image database {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot read the image store {path} as an unprivileged user: {why}; run as root, or as a member of the data directory's group (`rkt`)")]
    Unreadable { path: PathBuf, why: String },
    #[error("the image store {path} is at schema version {found}, this rkt reads {wanted}; run any image command as root once to upgrade it")]
    NeedsUpgrade {
        path: PathBuf,
        found: i64,
        wanted: i64,
    },
    #[error("no image IDs found for {0:?}; list the stored images with `rkt image list`")]
    NotFound(String),
    #[error("ambiguous image ID {0:?}: it matches several images; give more characters of the ID")]
    Ambiguous(String),
    #[error("invalid image ID {0:?}: expected sha512- followed by at least 2 hex digits")]
    BadKey(String),
    #[error("unknown image filetype: not a tar archive, nor gzip, bzip2 or xz compressed; is it an ACI?")]
    UnknownFileType,
    #[error("reading the image failed (corrupt or truncated archive?): {0}")]
    Decompress(#[source] io::Error),
    #[error("invalid ACI: {0}")]
    InvalidAci(String),
    #[error("invalid image manifest: {0}")]
    InvalidManifest(String),
    #[error(
        "image {name:?}: dependency {dep} not found in the store; fetch it first (rkt fetch FILE)"
    )]
    MissingDependency { name: String, dep: String },
    #[error("image {0}: dependency loop; an image depends on itself")]
    DependencyLoop(String),
    #[error("unsafe archive entry {entry:?}: {why}")]
    Unsafe { entry: String, why: String },
    #[error("tree store {id}: {why}")]
    Tree { id: String, why: String },
    #[error("image {key}: stored blob does not match its key (got {got}); remove it with `rkt image rm` and fetch it again")]
    Corrupt { key: String, got: String },
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Io { context, source }
    }
}
