//! Pod UUIDs: generation, unique-prefix resolution and `--uuid-file` I/O.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::state::StateDir;
use super::{pods_dir, PodError};

/// A fresh random (v4) UUID in canonical lowercase form.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// Whether `s` is a canonical lowercase hyphenated UUID.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok() && !s.bytes().any(|b| b.is_ascii_uppercase())
}

/// The pod UUIDs found in `dirs`, deduplicated and sorted.
pub(crate) fn list_uuids(data_dir: &Path, dirs: &[StateDir]) -> Result<BTreeSet<String>, PodError> {
    let mut out = BTreeSet::new();
    for dir in dirs {
        let path = pods_dir(data_dir).join(dir.name());
        let rd = match std::fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) if source.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(PodError::PodsUnreadable { path, source })
            }
            Err(source) => {
                return Err(PodError::Io {
                    what: "cannot read pods directory",
                    path,
                    source,
                })
            }
        };
        for entry in rd.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                if is_uuid(name) {
                    out.insert(name.to_string());
                }
            }
        }
    }
    Ok(out)
}

/// Resolves a unique UUID prefix among all pods.
pub(crate) fn resolve(data_dir: &Path, prefix: &str) -> Result<String, PodError> {
    let wanted = prefix.to_ascii_lowercase();
    let all = list_uuids(data_dir, &StateDir::ALL)?;
    let matches: Vec<&String> = all.iter().filter(|u| u.starts_with(&wanted)).collect();
    match matches.as_slice() {
        [] => Err(PodError::NoMatch(prefix.to_string())),
        [one] => Ok((*one).clone()),
        many => Err(PodError::Ambiguous(many.len())),
    }
}

/// Reads a `--uuid-file` (content trimmed).
pub fn read_uuid_file(path: &Path) -> Result<String, PodError> {
    let text = std::fs::read_to_string(path).map_err(|source| PodError::Io {
        what: "cannot read UUID file",
        path: path.to_path_buf(),
        source,
    })?;
    let uuid = text.trim();
    if uuid.is_empty() {
        return Err(PodError::EmptyUuidFile(path.to_path_buf()));
    }
    Ok(uuid.to_string())
}

/// Writes a `--uuid-file-save`: the UUID without newline, mode 0644.
pub fn write_uuid_file(path: &Path, uuid: &str) -> Result<(), PodError> {
    let io = |source| PodError::Io {
        what: "cannot write UUID file",
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .map_err(io)?;
    f.write_all(uuid.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(data: &Path, dir: &str, uuid: &str) {
        std::fs::create_dir_all(data.join("pods").join(dir).join(uuid)).unwrap();
    }

    #[test]
    fn prefix_resolution() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        mk(d, "run", "11111111-2222-4333-8444-555555555555");
        mk(d, "garbage", "11112222-2222-4333-8444-555555555555");
        mk(d, "embryo", "abcdef00-2222-4333-8444-555555555555");
        std::fs::create_dir_all(d.join("pods/run/not-a-uuid")).unwrap();
        assert_eq!(
            resolve(d, "1111").unwrap_err().to_string(),
            "ambiguous uuid, 2 matches"
        );
        assert_eq!(
            resolve(d, "11111").unwrap(),
            "11111111-2222-4333-8444-555555555555"
        );
        assert_eq!(
            resolve(d, "ABCDEF").unwrap(),
            "abcdef00-2222-4333-8444-555555555555"
        );
        assert_eq!(
            resolve(d, "ffff").unwrap_err().to_string(),
            "no matches found for \"ffff\""
        );
        assert_eq!(
            resolve(d, "11112222-2222-4333-8444-555555555555").unwrap(),
            "11112222-2222-4333-8444-555555555555"
        );
    }

    #[test]
    fn uuid_files() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("u");
        let u = new_uuid();
        assert!(is_uuid(&u));
        write_uuid_file(&f, &u).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), u);
        std::fs::write(&f, format!("  {u}\n")).unwrap();
        assert_eq!(read_uuid_file(&f).unwrap(), u);
        std::fs::write(&f, "\n").unwrap();
        assert!(read_uuid_file(&f).is_err());
    }
}
