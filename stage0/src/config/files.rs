//! The configuration directories: `paths.d`, `stage1.d` and `auth.d` JSON
//! files layered system < local < user (rkt's `rkt/config`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{what} is defined twice in {dir}: in {first} and {second}; keep one")]
    Duplicate {
        what: String,
        dir: PathBuf,
        first: PathBuf,
        second: PathBuf,
    },
}

/// `paths.d`: where rkt keeps data and finds stage1 images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathsConfig {
    pub data: Option<PathBuf>,
    pub stage1_images: Option<PathBuf>,
}

/// `stage1.d`: the default stage1 image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stage1Config {
    pub name: Option<String>,
    pub version: Option<String>,
    pub location: Option<String>,
}

/// Everything the config directories say, merged.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub paths: PathsConfig,
    pub stage1: Stage1Config,
    /// `auth` entries keyed by domain and `dockerAuth` entries keyed by
    /// registry, as raw JSON (used by remote fetching).
    pub auth: Vec<(String, Value)>,
    pub docker_auth: Vec<(String, Value)>,
}

#[derive(Deserialize)]
struct Header {
    #[serde(rename = "rktKind")]
    kind: String,
    #[serde(rename = "rktVersion")]
    version: String,
}

impl Config {
    /// Loads and merges the layers; later directories override earlier ones.
    pub fn load(dirs: &[&Path]) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        for dir in dirs {
            cfg.merge_paths(dir)?;
            cfg.merge_stage1(dir)?;
            cfg.merge_auth(dir)?;
        }
        Ok(cfg)
    }

    fn merge_paths(&mut self, dir: &Path) -> Result<(), ConfigError> {
        let sub = dir.join("paths.d");
        let mut seen: Vec<(&str, PathBuf)> = Vec::new();
        for (path, obj) in read_kind(&sub, &["paths"])? {
            for (key, field) in [("data", 0), ("stage1-images", 1)] {
                let Some(v) = obj.get(key) else { continue };
                let s = v
                    .as_str()
                    .ok_or_else(|| invalid(&path, format!("{key} must be a string")))?;
                if !s.starts_with('/') {
                    return Err(invalid(&path, format!("{key} must be an absolute path")));
                }
                duplicate_check(&mut seen, key, &sub, &path)?;
                let target = if field == 0 {
                    &mut self.paths.data
                } else {
                    &mut self.paths.stage1_images
                };
                *target = Some(PathBuf::from(s));
            }
        }
        Ok(())
    }

    fn merge_stage1(&mut self, dir: &Path) -> Result<(), ConfigError> {
        let sub = dir.join("stage1.d");
        let mut seen: Vec<(&str, PathBuf)> = Vec::new();
        for (path, obj) in read_kind(&sub, &["stage1"])? {
            let get = |k: &str| -> Result<Option<String>, ConfigError> {
                match obj.get(k) {
                    None => Ok(None),
                    Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                    Some(Value::String(_)) => Ok(None),
                    Some(_) => Err(invalid(&path, format!("{k} must be a string"))),
                }
            };
            let (name, version, location) = (get("name")?, get("version")?, get("location")?);
            if name.is_some() != version.is_some() {
                return Err(invalid(
                    &path,
                    "name and version must be given together".into(),
                ));
            }
            if name.is_some() {
                duplicate_check(
                    &mut seen,
                    "the default stage1 name and version",
                    &sub,
                    &path,
                )?;
                self.stage1.name = name;
                self.stage1.version = version;
            }
            if let Some(loc) = location {
                let ok = loc.starts_with('/')
                    || ["file://", "http://", "https://", "docker://"]
                        .iter()
                        .any(|s| loc.starts_with(s));
                if !ok {
                    return Err(invalid(
                        &path,
                        format!("location {loc:?} must be an absolute path or a URL"),
                    ));
                }
                duplicate_check(&mut seen, "the default stage1 location", &sub, &path)?;
                self.stage1.location = Some(loc);
            }
        }
        Ok(())
    }

    fn merge_auth(&mut self, dir: &Path) -> Result<(), ConfigError> {
        let sub = dir.join("auth.d");
        for (path, obj) in read_kind(&sub, &["auth", "dockerAuth"])? {
            let kind = obj
                .get("rktKind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (key, list) = if kind == "auth" {
                ("domains", &mut self.auth)
            } else {
                ("registries", &mut self.docker_auth)
            };
            let entries = obj
                .get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| invalid(&path, format!("{key} must be a list")))?;
            for e in entries {
                let d = e
                    .as_str()
                    .ok_or_else(|| invalid(&path, format!("{key} must hold strings")))?;
                list.retain(|(k, _)| k != d);
                list.push((d.to_string(), Value::Object(obj.clone())));
            }
        }
        Ok(())
    }
}

fn invalid(path: &Path, reason: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        reason,
    }
}

fn duplicate_check<'a>(
    seen: &mut Vec<(&'a str, PathBuf)>,
    what: &'a str,
    dir: &Path,
    path: &Path,
) -> Result<(), ConfigError> {
    if let Some((_, first)) = seen.iter().find(|(w, _)| *w == what) {
        return Err(ConfigError::Duplicate {
            what: what.to_string(),
            dir: dir.to_path_buf(),
            first: first.clone(),
            second: path.to_path_buf(),
        });
    }
    seen.push((what, path.to_path_buf()));
    Ok(())
}

/// A config file's path and its JSON object.
type ConfigFile = (PathBuf, Map<String, Value>);

/// The `*.json` files directly in `dir` (sorted), checked for an accepted
/// `rktKind` and `rktVersion` `v1`. A missing directory is empty.
fn read_kind(dir: &Path, kinds: &[&str]) -> Result<Vec<ConfigFile>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let bytes = std::fs::read(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(&path, e.to_string()))?;
        let header: Header = serde_json::from_value(value.clone())
            .map_err(|_| invalid(&path, "rktKind and rktVersion are required".into()))?;
        if header.version != "v1" {
            return Err(invalid(
                &path,
                format!("unsupported rktVersion {:?}, use \"v1\"", header.version),
            ));
        }
        if !kinds.contains(&header.kind.as_str()) {
            return Err(invalid(
                &path,
                format!(
                    "rktKind {:?} does not belong in {}",
                    header.kind,
                    dir.display()
                ),
            ));
        }
        let Value::Object(obj) = value else {
            return Err(invalid(&path, "expected a JSON object".into()));
        };
        out.push((path, obj));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, sub: &str, name: &str, body: &str) {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::write(dir.join(sub).join(name), body).unwrap();
    }

    #[test]
    fn layers_override_and_duplicates_fail() {
        let sys = tempfile::tempdir().unwrap();
        let local = tempfile::tempdir().unwrap();
        write(
            sys.path(),
            "paths.d",
            "p.json",
            r#"{"rktKind":"paths","rktVersion":"v1","data":"/sys-data","stage1-images":"/s1"}"#,
        );
        write(
            local.path(),
            "paths.d",
            "p.json",
            r#"{"rktKind":"paths","rktVersion":"v1","data":"/local-data"}"#,
        );
        write(
            local.path(),
            "stage1.d",
            "s.json",
            r#"{"rktKind":"stage1","rktVersion":"v1","name":"example.com/s1","version":"1","location":"/x.aci"}"#,
        );
        let cfg = Config::load(&[sys.path(), local.path()]).unwrap();
        assert_eq!(cfg.paths.data, Some(PathBuf::from("/local-data")));
        assert_eq!(cfg.paths.stage1_images, Some(PathBuf::from("/s1")));
        assert_eq!(cfg.stage1.location.as_deref(), Some("/x.aci"));
        write(
            local.path(),
            "paths.d",
            "q.json",
            r#"{"rktKind":"paths","rktVersion":"v1","data":"/other"}"#,
        );
        assert!(matches!(
            Config::load(&[local.path()]),
            Err(ConfigError::Duplicate { .. })
        ));
    }

    #[test]
    fn bad_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "stage1.d",
            "s.json",
            r#"{"rktKind":"stage1","rktVersion":"v2"}"#,
        );
        let e = Config::load(&[d.path()]).unwrap_err().to_string();
        assert!(e.contains("s.json") && e.contains("v2"), "{e}");
    }
}
