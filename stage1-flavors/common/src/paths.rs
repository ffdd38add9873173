//! Path resolution inside an app rootfs: symlinks are followed but clamped at
//! the root, so an image cannot point a mount target or working directory at
//! the host (what rkt's `EvaluateSymlinksInsideApp` does).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// Linux's own limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;

#[derive(Debug, Error)]
pub enum PathError {
    #[error("too many levels of symbolic links resolving {path:?} inside {root:?}; fix the image's symlinks")]
    SymlinkLoop { root: PathBuf, path: PathBuf },
    #[error("cannot inspect {path:?}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("executable {name:?} not found in the app's PATH {search_path:?} inside {root:?}; use an absolute exec path or fix PATH")]
    ExecNotFound {
        name: String,
        search_path: String,
        root: PathBuf,
    },
    #[error("executable {path:?} does not exist in the app rootfs {root:?} or is not an executable file")]
    ExecMissing { path: String, root: PathBuf },
    #[error("exec path {0:?} is relative; give an absolute path or a bare name looked up in PATH")]
    ExecRelative(String),
}

/// Resolves `path` (interpreted as absolute inside `root`) to a host path
/// under `root`, following symlinks as the kernel would after `chroot(root)`:
/// absolute targets restart at `root` and `..` never climbs above it.
/// Components that do not exist yet are appended lexically.
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<PathBuf, PathError> {
    let mut pending: VecDeque<OsString> = components(path).collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    let mut missing = false;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = join_all(root, &resolved).join(&part);
        if missing {
            resolved.push(part);
            continue;
        }
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(PathError::SymlinkLoop {
                        root: root.to_path_buf(),
                        path: path.to_path_buf(),
                    });
                }
                let target = std::fs::read_link(&candidate).map_err(|source| PathError::Io {
                    path: candidate.clone(),
                    source,
                })?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for (i, c) in components(&target).enumerate() {
                    pending.insert(i, c);
                }
            }
            Ok(_) => resolved.push(part),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing = true;
                resolved.push(part);
            }
            Err(source) => {
                return Err(PathError::Io {
                    path: candidate,
                    source,
                })
            }
        }
    }
    Ok(join_all(root, &resolved))
}

/// The path `host_path` has inside `root` (`/` for the root itself).
pub fn path_inside(root: &Path, host_path: &Path) -> PathBuf {
    match host_path.strip_prefix(root) {
        Ok(rel) => Path::new("/").join(rel),
        Err(_) => host_path.to_path_buf(),
    }
}

/// Finds the executable to run for `exec0` inside `root`: an absolute path is
/// checked, a bare name is searched in `search_path` (a `PATH` value), both
/// with symlinks resolved inside `root`. Returns the path as the app sees it.
pub fn resolve_exec(root: &Path, exec0: &str, search_path: &str) -> Result<String, PathError> {
    if exec0.starts_with('/') {
        let host = resolve_in_root(root, Path::new(exec0))?;
        if is_executable_file(&host) {
            return Ok(exec0.to_string());
        }
        return Err(PathError::ExecMissing {
            path: exec0.to_string(),
            root: root.to_path_buf(),
        });
    }
    if exec0.contains('/') {
        return Err(PathError::ExecRelative(exec0.to_string()));
    }
    for dir in search_path.split(':').filter(|d| d.starts_with('/')) {
        let candidate = format!("{}/{exec0}", dir.trim_end_matches('/'));
        let host = resolve_in_root(root, Path::new(&candidate))?;
        if is_executable_file(&host) {
            return Ok(candidate);
        }
    }
    Err(PathError::ExecNotFound {
        name: exec0.to_string(),
        search_path: search_path.to_string(),
        root: root.to_path_buf(),
    })
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Normal and `..` components of `path`; root and `.` are dropped.
fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    })
}

fn join_all(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn plain_and_missing_paths() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("/a/b")).unwrap(),
            r.join("a/b")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("a/./b/../c/d")).unwrap(),
            r.join("a/c/d")
        );
        assert_eq!(resolve_in_root(r, Path::new("/")).unwrap(), r);
    }

    #[test]
    fn dotdot_is_clamped_at_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert_eq!(
            resolve_in_root(r, Path::new("/../../etc/passwd")).unwrap(),
            r.join("etc/passwd")
        );
    }

    #[test]
    fn symlinks_stay_inside() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("real/dir")).unwrap();
        symlink("/real", r.join("abs")).unwrap();
        symlink("real/dir", r.join("rel")).unwrap();
        symlink("../../../../etc", r.join("escape")).unwrap();
        symlink("/../../host", r.join("real/up")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("/abs/dir/x")).unwrap(),
            r.join("real/dir/x")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/rel/../dir")).unwrap(),
            r.join("real/dir")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/escape/shadow")).unwrap(),
            r.join("etc/shadow")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/real/up/y")).unwrap(),
            r.join("host/y")
        );
    }

    #[test]
    fn symlink_loops_are_errors() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        symlink("/b", r.join("a")).unwrap();
        symlink("/a", r.join("b")).unwrap();
        assert!(matches!(
            resolve_in_root(r, Path::new("/a/x")),
            Err(PathError::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn exec_is_searched_in_path_inside_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::write(r.join("usr/bin/tool"), "").unwrap();
        std::fs::set_permissions(
            r.join("usr/bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(r.join("bin/noexec"), "").unwrap();
        // An absolute symlink must be followed inside the root.
        symlink("/usr/bin/tool", r.join("bin/sh")).unwrap();
        assert_eq!(
            resolve_exec(r, "tool", "/bin:/usr/bin").unwrap(),
            "/usr/bin/tool"
        );
        assert_eq!(resolve_exec(r, "sh", "/bin:/usr/bin").unwrap(), "/bin/sh");
        assert!(matches!(
            resolve_exec(r, "noexec", "/bin"),
            Err(PathError::ExecNotFound { .. })
        ));
        assert_eq!(resolve_exec(r, "/bin/sh", "").unwrap(), "/bin/sh");
        assert!(matches!(
            resolve_exec(r, "/bin/nope", ""),
            Err(PathError::ExecMissing { .. })
        ));
        assert!(matches!(
            resolve_exec(r, "./x", "/bin"),
            Err(PathError::ExecRelative(_))
        ));
    }

    #[test]
    fn path_inside_strips_root() {
        assert_eq!(
            path_inside(Path::new("/r"), Path::new("/r/a/b")),
            PathBuf::from("/a/b")
        );
        assert_eq!(
            path_inside(Path::new("/r"), Path::new("/r")),
            PathBuf::from("/")
        );
    }
}
