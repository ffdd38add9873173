//! `--private-users` (rkt's scheme): the pod runs in a user namespace whose
//! root is host uid `shift`, for a random `shift` (a multiple of 65536 with
//! the top bit clear) and 65536 ids. The apps' rendered files are chowned
//! into that range at prepare time, which is why overlay cannot be used,
//! and the range is recorded in `$pod/private-users-prepared` as
//! `<shift>:<count>`.

use std::io;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use abi::pod_dir;
use abi::stage1::{IdRange, ID_RANGE_COUNT};
use rand::Rng;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum UsernsError {
    #[error("cannot shift the owner of {path:?} into the pod's id range: {source}")]
    Shift {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot {op} {path:?}: {source}")]
    File {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path:?} holds {content:?}; expected <shift>:<count>")]
    Malformed { path: PathBuf, content: String },
}

/// A random range: a multiple of 65536 with the top bit clear, 65536 ids.
pub fn random_range() -> IdRange {
    let block: u32 = rand::thread_rng().gen_range(1..=0x7fff);
    IdRange {
        shift: block << 16,
        count: ID_RANGE_COUNT,
    }
}

/// Picks the pod's range, shifts its rendered files and records the range.
pub fn prepare(pod: &Path) -> Result<IdRange, UsernsError> {
    let range = random_range();
    // The apps' files only: the stage1's own (its entrypoints, which the
    // host's root runs) stay the host's, out of the pod root's reach.
    let apps = pod.join(pod_dir::STAGE1_ROOTFS).join("opt/stage2");
    if apps.exists() {
        shift_tree(&apps, range)?;
    }
    let path = pod.join(pod_dir::PRIVATE_USERS_PREPARED);
    std::fs::write(&path, range.to_string()).map_err(|source| UsernsError::File {
        op: "write",
        path,
        source,
    })?;
    Ok(range)
}

/// The pod's range, when it was prepared with `--private-users`.
pub fn read(pod: &Path) -> Result<Option<IdRange>, UsernsError> {
    let path = pod.join(pod_dir::PRIVATE_USERS_PREPARED);
    match std::fs::read_to_string(&path) {
        Ok(content) => IdRange::parse(&content)
            .map(Some)
            .ok_or(UsernsError::Malformed { path, content }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(UsernsError::File {
            op: "read",
            path,
            source,
        }),
    }
}

/// Chowns everything under `root` (itself included, symlinks not
/// followed) into `range`, keeping setuid/setgid bits chown clears.
pub fn shift_tree(root: &Path, range: IdRange) -> Result<(), UsernsError> {
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let err = |source| UsernsError::Shift {
            path: path.clone(),
            source,
        };
        let meta = std::fs::symlink_metadata(&path).map_err(err)?;
        lchown(
            &path,
            Some(range.shifted(meta.uid())),
            Some(range.shifted(meta.gid())),
        )
        .map_err(err)?;
        let mode = meta.mode() & 0o7777;
        if !meta.file_type().is_symlink() && mode & 0o6000 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(err)? {
                pending.push(entry.map_err(err)?.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ranges() {
        for _ in 0..100 {
            let r = random_range();
            assert_eq!(r.shift % 65536, 0);
            assert!(r.shift > 0 && r.shift < 1 << 31);
        }
    }

    #[test]
    fn shifts_a_tree_keeping_setuid() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        let su = root.join("bin/su");
        std::fs::write(&su, b"x").unwrap();
        lchown(&su, Some(0), Some(5)).unwrap();
        std::fs::set_permissions(&su, std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("/nowhere", root.join("link")).unwrap();
        let r = IdRange {
            shift: 65536 * 7,
            count: ID_RANGE_COUNT,
        };
        shift_tree(&root, r).unwrap();
        let m = std::fs::metadata(&su).unwrap();
        assert_eq!((m.uid(), m.gid()), (458752, 458757));
        assert_eq!(m.mode() & 0o7777, 0o4755);
        assert_eq!(
            std::fs::symlink_metadata(root.join("link")).unwrap().uid(),
            458752
        );
    }
}
