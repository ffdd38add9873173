//! The trusted keys: `<config>/trustedkeys/root.d/<fingerprint>` (trusted for
//! every name) and `<config>/trustedkeys/prefix.d/<prefix>/<fingerprint>`
//! (trusted for names under that prefix), in the system and the local
//! configuration directories. The local directory wins: an empty file there
//! named after a key's fingerprint masks (untrusts) that key. `rkt trust`
//! writes to the local directory only.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sequoia_openpgp as openpgp;

use openpgp::cert::CertParser;
use openpgp::parse::Parse;
use openpgp::serialize::SerializeInto;
use openpgp::Cert;

use super::TrustError;

const TRUSTED_KEYS: &str = "trustedkeys";
const ROOT_D: &str = "root.d";
const PREFIX_D: &str = "prefix.d";

/// What a key is trusted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every image name.
    Root,
    /// Names equal to or below this prefix (`example.com/app`).
    Prefix(String),
}

impl Scope {
    /// A prefix scope, checked: an appc identifier whose `/`-separated
    /// parts are plain names (it becomes a directory path).
    pub fn prefix(prefix: &str) -> Result<Scope, TrustError> {
        Ok(Scope::Prefix(prefix_parts(prefix)?.join("/")))
    }
}

fn prefix_parts(prefix: &str) -> Result<Vec<&str>, TrustError> {
    let bad = |why: &str| TrustError::BadPrefix(prefix.to_string(), why.to_string());
    if prefix.contains("://") {
        return Err(bad("a prefix is an image name prefix, not a URL"));
    }
    abi::schema::AcIdentifier::new(prefix).map_err(|_| {
        bad("use lowercase letters, digits and -._~/ (an image name like example.com/app)")
    })?;
    let parts: Vec<&str> = prefix.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(bad("empty, `.` and `..` path elements are not allowed"));
    }
    Ok(parts)
}

/// A key trusted for a name, and the file it came from.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub cert: Cert,
    pub path: PathBuf,
}

/// The keys trusted for one image name.
#[derive(Debug, Default)]
pub struct Keyring {
    keys: Vec<TrustedKey>,
}

impl Keyring {
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether the key with this (lowercase hex) fingerprint is in it.
    pub fn contains(&self, fingerprint: &str) -> bool {
        self.keys
            .iter()
            .any(|k| fingerprint_of(&k.cert) == fingerprint)
    }
}

/// The trusted keys of a system and a local configuration directory.
#[derive(Debug, Clone)]
pub struct Keystore {
    system: PathBuf,
    local: PathBuf,
}

impl Keystore {
    pub fn new(system_config: &Path, local_config: &Path) -> Keystore {
        Keystore {
            system: system_config.join(TRUSTED_KEYS),
            local: local_config.join(TRUSTED_KEYS),
        }
    }

    /// The keys trusted for image `name`: root keys, then keys of every
    /// prefix from the name's first element down to the name itself,
    /// system before local at each level, so local files mask system ones.
    pub fn keyring(&self, name: &str) -> Result<Keyring, TrustError> {
        let parts = prefix_parts(name)?;
        let mut dirs = vec![self.system.join(ROOT_D), self.local.join(ROOT_D)];
        for base in [&self.system, &self.local] {
            let mut dir = base.join(PREFIX_D);
            for part in &parts {
                dir.push(part);
                dirs.push(dir.clone());
            }
        }
        let mut found: BTreeMap<String, TrustedKey> = BTreeMap::new();
        for dir in dirs {
            for (name, path, size) in key_files(&dir)? {
                if size == 0 {
                    found.remove(&name);
                    continue;
                }
                let key = load_key_file(&path, &name)?;
                found.insert(name, key);
            }
        }
        Ok(Keyring {
            keys: found.into_values().collect(),
        })
    }

    /// Every key trusted for some name (masks aside): what a signature can
    /// be checked against before the image's name is known. Whether the
    /// signer is trusted for that name is then a [`Keyring::contains`] of
    /// [`Keystore::keyring`].
    pub fn all_keys(&self) -> Result<Keyring, TrustError> {
        let mut found: BTreeMap<String, TrustedKey> = BTreeMap::new();
        let mut dirs = Vec::new();
        for base in [&self.system, &self.local] {
            dirs.push(base.join(ROOT_D));
            dirs.push(base.join(PREFIX_D));
        }
        while let Some(dir) = dirs.pop() {
            if let Ok(entries) = fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) && !dir.ends_with(ROOT_D) {
                        dirs.push(entry.path());
                    }
                }
            }
            for (name, path, size) in key_files(&dir)? {
                if size == 0 || found.contains_key(&name) {
                    continue;
                }
                let key = load_key_file(&path, &name)?;
                found.insert(name, key);
            }
        }
        Ok(Keyring {
            keys: found.into_values().collect(),
        })
    }

    /// Writes `cert` (public parts, armored) as trusted for `scope` in the
    /// local directory; returns the file's path.
    pub fn store(&self, scope: &Scope, cert: &Cert) -> Result<PathBuf, TrustError> {
        let dir = match scope {
            Scope::Root => self.local.join(ROOT_D),
            Scope::Prefix(p) => self.local.join(PREFIX_D).join(p),
        };
        fs::create_dir_all(&dir).map_err(|source| TrustError::Write {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(fingerprint_of(cert));
        let armored = cert.armored().to_vec().map_err(|e| TrustError::NotAKey {
            what: path.display().to_string(),
            why: e.to_string(),
        })?;
        write_atomic(&path, &armored)?;
        Ok(path)
    }
}

/// Lowercase hex, the key file's name.
pub fn fingerprint_of(cert: &Cert) -> String {
    cert.fingerprint().to_hex().to_ascii_lowercase()
}

/// The first certificate in `bytes` (armored or binary), public or secret.
pub fn parse_key(bytes: &[u8], what: &str) -> Result<Cert, TrustError> {
    let not_a_key = |why: String| TrustError::NotAKey {
        what: what.to_string(),
        why,
    };
    let mut certs = CertParser::from_bytes(bytes).map_err(|e| not_a_key(e.to_string()))?;
    match certs.next() {
        Some(Ok(cert)) => Ok(cert.strip_secret_key_material()),
        Some(Err(e)) => Err(not_a_key(e.to_string())),
        None => Err(not_a_key("no key found".into())),
    }
}

/// Why `cert` cannot be trusted today (revoked, expired, or invalid under
/// the standard policy), if it cannot.
pub fn unusable_now(cert: &Cert) -> Option<String> {
    use openpgp::policy::StandardPolicy;
    use openpgp::types::RevocationStatus;
    let policy = StandardPolicy::new();
    let valid = match cert.with_policy(&policy, None) {
        Ok(v) => v,
        Err(e) => return Some(e.to_string()),
    };
    if let RevocationStatus::Revoked(_) = valid.revocation_status() {
        return Some("it is revoked".into());
    }
    valid
        .alive()
        .err()
        .map(|e| format!("it has expired or is not valid yet ({e})"))
}

/// The key in `path`, which must be named after its fingerprint.
fn load_key_file(path: &Path, name: &str) -> Result<TrustedKey, TrustError> {
    let cert = read_key_file(path)?;
    let fingerprint = fingerprint_of(&cert);
    if fingerprint != name {
        return Err(TrustError::FingerprintMismatch {
            path: path.to_path_buf(),
            found: fingerprint,
        });
    }
    Ok(TrustedKey {
        cert,
        path: path.to_path_buf(),
    })
}

fn read_key_file(path: &Path) -> Result<Cert, TrustError> {
    let bytes = fs::read(path).map_err(|source| TrustError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_key(&bytes, &format!("trusted key file {}", path.display()))
}

/// Regular files directly in `dir` (name, path, size), by name; a missing
/// directory has none.
fn key_files(dir: &Path) -> Result<Vec<(String, PathBuf, u64)>, TrustError> {
    let read_err = |source| TrustError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        let meta = fs::metadata(&path).map_err(|source| TrustError::Read {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() {
            continue;
        }
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            path,
            meta.len(),
        ));
    }
    out.sort();
    Ok(out)
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), TrustError> {
    use std::os::unix::fs::OpenOptionsExt;
    let write_err = |source| TrustError::Write {
        path: path.to_path_buf(),
        source,
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_names_not_paths() {
        assert!(Scope::prefix("example.com/app").is_ok());
        for bad in [
            "example.com/../etc",
            "example.com//app",
            "https://example.com",
            "Example.com",
            "/abs",
            "",
        ] {
            assert!(Scope::prefix(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_missing_keystore_trusts_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let ks = Keystore::new(&tmp.path().join("sys"), &tmp.path().join("local"));
        assert!(ks.keyring("example.com/app").unwrap().is_empty());
    }
}
