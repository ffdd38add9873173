//! The images this project ships or tests with: manifests and rootfs layouts.
//!
//! Each recipe gives a manifest (callers may patch it, as rkt's tests did
//! with `actool patch-manifest`) and fills a staging rootfs directory that
//! [`crate::AciBuilder`] then writes out.

mod busybox;
pub mod guest;
mod inspect;
mod stage1;

use std::fs;
use std::io;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use abi::schema::SchemaError;
use thiserror::Error;

pub use busybox::{busybox_manifest, busybox_version, populate_busybox_rootfs};
pub use inspect::{inspect_manifest, populate_inspect_rootfs};
pub use stage1::{populate_stage1_rootfs, stage1_manifest, Stage1Flavor, STAGE1_FLAVORS};

#[derive(Debug, Error)]
pub enum RecipeError {
    // `err` rather than `source`: the message already carries it, and error
    // chains printed with `{:#}` would repeat it.
    #[error("{action} {path}: {err}")]
    Io {
        action: &'static str,
        path: PathBuf,
        err: io::Error,
    },
    #[error("running {program}: {detail}")]
    Command { program: PathBuf, detail: String },
    #[error("unknown stage1 flavor {0:?}; known flavors: {1}")]
    UnknownFlavor(String, String),
    #[error("invalid manifest value: {0}")]
    Schema(#[from] SchemaError),
    #[error(
        "the {0} stage1 boots a VM; pass --guest-kernel DIR (scripts/guest-kernel.sh fetches one)"
    )]
    NoGuestKernel(&'static str),
    #[error(transparent)]
    Guest(#[from] guest::GuestError),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> RecipeError + 'a {
    move |err| RecipeError::Io {
        action,
        path: path.to_path_buf(),
        err,
    }
}

/// Creates `root/rel` (and parents) with an explicit mode, ignoring umask.
fn mkdir(root: &Path, rel: &str, mode: u32) -> Result<(), RecipeError> {
    let path = root.join(rel);
    fs::create_dir_all(&path).map_err(io_err("creating directory", &path))?;
    set_mode(&path, mode)
}

fn write(root: &Path, rel: &str, content: &[u8], mode: u32) -> Result<(), RecipeError> {
    let path = root.join(rel);
    fs::write(&path, content).map_err(io_err("writing", &path))?;
    set_mode(&path, mode)
}

/// Copies a binary into the rootfs as an executable.
fn install(root: &Path, rel: &str, from: &Path) -> Result<(), RecipeError> {
    let path = root.join(rel);
    fs::copy(from, &path).map_err(io_err("copying binary", from))?;
    set_mode(&path, 0o755)
}

fn link(root: &Path, rel: &str, target: &str) -> Result<(), RecipeError> {
    let path = root.join(rel);
    symlink(target, &path).map_err(io_err("creating symlink", &path))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), RecipeError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_err("setting mode of", path))
}

fn set_owner(root: &Path, rel: &str, uid: u32, gid: u32) -> Result<(), RecipeError> {
    let path = root.join(rel);
    chown(&path, Some(uid), Some(gid)).map_err(io_err("changing owner of (build as root)", &path))
}

/// Accounts every test image shares: root, an unprivileged `user` and nobody.
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
user:x:1000:1000:user:/home/user:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

/// Groups matching [`PASSWD`], plus `staff` (50) for supplementary-group tests.
pub const GROUP: &str = "root:x:0:\n\
staff:x:50:user\n\
user:x:1000:\n\
nogroup:x:65534:\n";

/// Writes `/etc/passwd` and `/etc/group`.
fn etc_accounts(root: &Path) -> Result<(), RecipeError> {
    mkdir(root, "etc", 0o755)?;
    write(root, "etc/passwd", PASSWD.as_bytes(), 0o644)?;
    write(root, "etc/group", GROUP.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse() {
        for line in PASSWD.lines() {
            assert_eq!(line.split(':').count(), 7, "{line}");
        }
        for line in GROUP.lines() {
            assert_eq!(line.split(':').count(), 4, "{line}");
        }
        assert!(GROUP.contains("staff:x:50:"));
    }
}
