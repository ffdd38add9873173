//! File helpers for cgroupfs: every error names the file, and removal is
//! `rmdir` only (cgroupfs directories cannot be `rm -rf`ed, and a recursive
//! delete must never be pointed at a path that might be something else).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::CgroupError;

/// How long cleanup waits for killed processes to leave a cgroup.
pub(crate) const EMPTY_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(5);

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    // No O_CREAT: a missing file means a missing controller, which must be
    // reported, not papered over.
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source,
        })
}

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })
}

pub(crate) fn parse_error(path: &Path, content: &str, reason: &str) -> CgroupError {
    CgroupError::Parse {
        path: path.to_path_buf(),
        content: content.to_string(),
        reason: reason.to_string(),
    }
}

pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    let s = read(path)?;
    s.parse()
        .map_err(|_| parse_error(path, &s, "expected an unsigned integer"))
}

/// Creates `dir` and its missing parents, calling `prepare` on each
/// directory this call created, parents first (cpuset needs its cpus/mems
/// filled in before a child or a task can use it). The leaf is tried
/// first: its parents usually exist (the pod's cgroup for an app's).
pub(crate) fn create_dirs(
    base: &Path,
    rel: &Path,
    mut prepare: impl FnMut(&Path) -> Result<(), CgroupError>,
) -> Result<(), CgroupError> {
    create_below(base, rel, &mut prepare)
}

fn create_below(
    base: &Path,
    rel: &Path,
    prepare: &mut impl FnMut(&Path) -> Result<(), CgroupError>,
) -> Result<(), CgroupError> {
    if rel.as_os_str().is_empty() {
        return Ok(());
    }
    let dir = base.join(rel);
    match fs::create_dir(&dir) {
        Ok(()) => prepare(&dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = rel.parent().unwrap_or(Path::new(""));
            if parent.as_os_str().is_empty() {
                return Err(CgroupError::Create {
                    path: dir,
                    source: e,
                });
            }
            create_below(base, parent, prepare)?;
            match fs::create_dir(&dir) {
                Ok(()) => prepare(&dir),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(source) => Err(CgroupError::Create { path: dir, source }),
            }
        }
        Err(source) => Err(CgroupError::Create { path: dir, source }),
    }
}

/// Pids listed in `dir/cgroup.procs`; a missing cgroup has none.
pub(crate) fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    match fs::read_to_string(&path) {
        Ok(s) => s
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.trim()
                    .parse()
                    .map_err(|_| parse_error(&path, l, "expected one pid per line"))
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// `dir` and every cgroup below it, children before parents (rmdir order).
pub(crate) fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = children(dir).iter().flat_map(|c| subtree(c)).collect();
    if dir.is_dir() {
        out.push(dir.to_path_buf());
    }
    out
}

/// The cgroups right below `dir` (none when it cannot be read).
fn children(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Pids in `dir` and below, in every given hierarchy directory.
pub(crate) fn subtree_procs(dirs: &[PathBuf]) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    for dir in dirs {
        for cg in subtree(dir) {
            pids.extend(procs(&cg)?);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

pub(crate) fn sigkill_all(pids: &[i32], dir: &Path) -> Result<(), CgroupError> {
    for &pid in pids {
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(errno) => {
                return Err(CgroupError::Kill {
                    pid,
                    path: dir.to_path_buf(),
                    errno,
                })
            }
        }
    }
    Ok(())
}

/// Waits until no process is left in `dirs` (and below), SIGKILLing
/// stragglers each round when `kill_stragglers` (a process may fork between
/// our read of cgroup.procs and its death).
pub(crate) fn wait_empty(dirs: &[PathBuf], kill_stragglers: bool) -> Result<(), CgroupError> {
    let deadline = Instant::now() + EMPTY_TIMEOUT;
    loop {
        let pids = subtree_procs(dirs)?;
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CgroupError::NotEmpty {
                path: dirs.first().cloned().unwrap_or_default(),
                pids,
                secs: EMPTY_TIMEOUT.as_secs(),
            });
        }
        if kill_stragglers {
            sigkill_all(&pids, &dirs[0])?;
        }
        std::thread::sleep(POLL);
    }
}

/// Removes every cgroup in and below `dirs`, children first, if none has a
/// process left: the common case of a pod whose processes have all exited
/// costs an rmdir per cgroup (and a listing per parent) instead of reading
/// every cgroup.procs first. `false` at the first cgroup that could not go
/// (left for the careful path).
pub(crate) fn remove_if_empty(dirs: &[PathBuf]) -> bool {
    dirs.iter().all(|dir| remove_empty_tree(dir))
}

/// rmdir of `dir`, and on EBUSY of the cgroups below it first: a leaf,
/// which most cgroups are, needs no listing of its (many) files.
fn remove_empty_tree(dir: &Path) -> bool {
    match fs::remove_dir(dir) {
        Ok(()) => return true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
        // Child cgroups (or tasks, which the children's removal keeps).
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
        Err(_) => return false,
    }
    let children = children(dir);
    if children.is_empty() {
        return false;
    }
    children.iter().all(|child| remove_empty_tree(child))
        && match fs::remove_dir(dir) {
            Ok(()) => true,
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
}

/// Removes `dir` and every cgroup below it with rmdir, children first.
/// Missing directories are fine (cleanup is idempotent); every failure is
/// collected rather than stopping at the first.
pub(crate) fn remove_tree(dir: &Path, errors: &mut Vec<CgroupError>) {
    for cg in subtree(dir) {
        // EBUSY right after the last task exited is transient on v1.
        let mut tries = 0;
        loop {
            match fs::remove_dir(&cg) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(POLL);
                }
                Err(source) => {
                    errors.push(CgroupError::Remove { path: cg, source });
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_dirs_prepares_only_new_levels() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("a")).unwrap();
        let mut seen = Vec::new();
        create_dirs(tmp.path(), Path::new("a/b/c"), |d| {
            seen.push(d.strip_prefix(tmp.path()).unwrap().to_path_buf());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [PathBuf::from("a/b"), PathBuf::from("a/b/c")]);
    }

    #[test]
    fn subtree_lists_children_first_and_procs_parse() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("pod");
        fs::create_dir_all(root.join("app")).unwrap();
        fs::write(root.join("cgroup.procs"), "12\n").unwrap();
        fs::write(root.join("app/cgroup.procs"), "7\n12\n").unwrap();
        assert_eq!(subtree(&root), [root.join("app"), root.clone()]);
        assert_eq!(subtree_procs(std::slice::from_ref(&root)).unwrap(), [7, 12]);
        assert!(procs(&tmp.path().join("missing")).unwrap().is_empty());
        fs::write(root.join("cgroup.procs"), "x\n").unwrap();
        assert!(matches!(procs(&root), Err(CgroupError::Parse { .. })));
    }

    #[test]
    fn write_does_not_create_missing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write(&tmp.path().join("memory.max"), "1").unwrap_err();
        assert!(err.to_string().contains("memory.max"), "{err}");
    }
}
