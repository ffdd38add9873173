//! CNI network configurations: `*.conf` (one plugin) and `*.conflist` (a
//! chain of plugins), loaded the way rkt did (`networking/podenv.go`):
//! the stage1's built-in `net.d` and the user's `<local-config>/net.d`,
//! each read in file-name order; within one directory the first file of a
//! name wins and later ones are ignored with a warning; a user network
//! overrides a built-in one of the same name (with a warning); user
//! networks come first, in file order, then the built-in ones asked for.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use thiserror::Error;

use crate::request::NetRequest;

/// The version a configuration without `cniVersion` speaks (rkt's).
pub const DEFAULT_CNI_VERSION: &str = "0.1.0";
/// Longest configuration file read (a network config is a few hundred
/// bytes; this keeps a stray huge file from being slurped).
const MAX_CONF_BYTES: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum ConfError {
    #[error("cannot read network configuration {path:?}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network configuration {path:?} is larger than 1 MiB; is it a network configuration?")]
    TooLarge { path: PathBuf },
    #[error("network configuration {path:?} is not valid JSON: {source}; fix the file")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("network configuration {path:?}: {problem}; fix the file")]
    Invalid { path: PathBuf, problem: String },
    #[error("networks not found: {0}; add a configuration for each to <local-config>/net.d")]
    Missing(String),
}

/// One plugin of a network: its `type` and its whole JSON object (what it
/// gets on stdin, with `name`, `cniVersion` and, when chained,
/// `prevResult` added).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConf {
    pub plugin_type: String,
    pub raw: Map<String, Value>,
}

impl PluginConf {
    /// rkt's choice of the "forwardable" network is the first with
    /// `ipMasq: true`.
    pub fn ip_masq(&self) -> bool {
        self.raw.get("ipMasq").and_then(Value::as_bool) == Some(true)
    }
}

/// A network: a name, the CNI version its plugins speak, its plugins.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<PluginConf>,
    pub disable_check: bool,
    /// The file it was read from.
    pub source: PathBuf,
    /// That file's bytes as parsed (the pod keeps a copy for DEL).
    pub bytes: Vec<u8>,
}

impl NetConf {
    /// Parses a `.conf` (a single plugin) or a `.conflist`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, ConfError> {
        let invalid = |problem: String| ConfError::Invalid {
            path: path.to_path_buf(),
            problem,
        };
        let value: Value = serde_json::from_slice(bytes).map_err(|source| ConfError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        let Value::Object(obj) = value else {
            return Err(invalid("the top level is not a JSON object".into()));
        };
        let name = match obj.get("name") {
            Some(Value::String(n)) if valid_name(n) => n.clone(),
            Some(Value::String(n)) => {
                return Err(invalid(format!(
                    "network name {n:?} is invalid (letters, digits, '_', '.', '-', starting with a letter or digit)"
                )))
            }
            _ => return Err(invalid("\"name\" is missing or not a string".into())),
        };
        let cni_version = match obj.get("cniVersion") {
            None => DEFAULT_CNI_VERSION.to_string(),
            Some(Value::String(v)) => v.clone(),
            Some(_) => return Err(invalid("\"cniVersion\" is not a string".into())),
        };
        let disable_check = obj.get("disableCheck").and_then(Value::as_bool) == Some(true);
        let plugin_objects = match obj.get("plugins") {
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .map(|p| match p {
                    Value::Object(o) => Ok(o.clone()),
                    _ => Err(invalid("an entry of \"plugins\" is not an object".into())),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(invalid("\"plugins\" must be a non-empty list".into())),
            None => vec![obj.clone()],
        };
        let plugins = plugin_objects
            .into_iter()
            .map(|raw| match raw.get("type") {
                Some(Value::String(t)) if !t.is_empty() && !t.contains('/') => Ok(PluginConf {
                    plugin_type: t.clone(),
                    raw,
                }),
                _ => Err(invalid(
                    "a plugin has no \"type\" (the plugin binary's name)".into(),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetConf {
            name,
            cni_version,
            plugins,
            disable_check,
            source: path.to_path_buf(),
            bytes: bytes.to_vec(),
        })
    }

    /// Whether any plugin masquerades (rkt's "forwardable" network).
    pub fn ip_masq(&self) -> bool {
        self.plugins.iter().any(PluginConf::ip_masq)
    }
}

/// CNI's rule for network names.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The networks of one directory in file-name order, the first of each
/// name kept; warnings for the ones ignored. A missing directory has none.
pub fn load_dir(dir: &Path) -> Result<(Vec<NetConf>, Vec<String>), ConfError> {
    let read_err = |source| ConfError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(read_err(e)),
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    files.retain(|p| {
        p.extension()
            .is_some_and(|ext| ext == "conf" || ext == "conflist")
    });
    files.sort();
    let mut nets: Vec<NetConf> = Vec::new();
    let mut warnings = Vec::new();
    for path in files {
        let net = NetConf::parse(&path, &read_limited(&path)?)?;
        match nets.iter().find(|n| n.name == net.name) {
            Some(first) => warnings.push(format!(
                "network {:?} in {path:?} is ignored: {:?} already defines it",
                net.name, first.source
            )),
            None => nets.push(net),
        }
    }
    Ok((nets, warnings))
}

fn read_limited(path: &Path) -> Result<Vec<u8>, ConfError> {
    use std::io::Read;
    let err = |source| ConfError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(err)?
        .take(MAX_CONF_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > MAX_CONF_BYTES {
        return Err(ConfError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// The networks a pod gets for `request`: user networks (from `user_dir`)
/// first, then the built-in ones (from `builtin_dir`) that no user network
/// overrides; with the warnings to show. Errors name every requested
/// network that exists nowhere.
pub fn select(
    builtin_dir: &Path,
    user_dir: &Path,
    request: &NetRequest,
) -> Result<(Vec<NetConf>, Vec<String>), ConfError> {
    if matches!(request, NetRequest::Host | NetRequest::None) {
        return Ok((Vec::new(), Vec::new()));
    }
    let (user, mut warnings) = load_dir(user_dir)?;
    let (builtin, builtin_warnings) = load_dir(builtin_dir)?;
    warnings.extend(builtin_warnings);
    let mut chosen: Vec<NetConf> = user
        .into_iter()
        .filter(|n| request.wants(&n.name))
        .collect();
    for net in builtin {
        // `all` brings the built-in `default` too, not `default-restricted`
        // (rkt's rule); named requests bring what they name.
        let wanted = match request {
            NetRequest::All => net.name == "default",
            _ => request.wants(&net.name),
        };
        if !wanted {
            continue;
        }
        match chosen.iter().find(|n| n.name == net.name) {
            Some(own) => warnings.push(format!(
                "overriding {:?} network with {:?}",
                net.name, own.source
            )),
            None => chosen.push(net),
        }
    }
    let missing: Vec<&str> = request
        .names()
        .into_iter()
        .filter(|name| !chosen.iter().any(|n| n.name == *name))
        .collect();
    if !missing.is_empty() {
        return Err(ConfError::Missing(missing.join(", ")));
    }
    Ok((chosen, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, body: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), body).unwrap();
    }

    #[test]
    fn conf_and_conflist() {
        let conf = NetConf::parse(
            Path::new("a.conf"),
            br#"{"name":"mynet","type":"ptp","ipMasq":true,"ipam":{"type":"host-local","subnet":"10.1.0.0/24"}}"#,
        )
        .unwrap();
        assert_eq!(conf.cni_version, DEFAULT_CNI_VERSION);
        assert_eq!(conf.plugins.len(), 1);
        assert_eq!(conf.plugins[0].plugin_type, "ptp");
        assert!(conf.ip_masq());
        assert!(conf.plugins[0].raw.contains_key("ipam"));

        let list = NetConf::parse(
            Path::new("b.conflist"),
            br#"{"cniVersion":"1.0.0","name":"chain","disableCheck":true,"plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        assert_eq!(list.cni_version, "1.0.0");
        assert!(list.disable_check);
        let types: Vec<_> = list
            .plugins
            .iter()
            .map(|p| p.plugin_type.as_str())
            .collect();
        assert_eq!(types, ["bridge", "portmap"]);
        assert!(!list.ip_masq());
    }

    #[test]
    fn malformed_configurations_say_what_is_wrong() {
        let cases: [(&[u8], &str); 7] = [
            (b"{not json", "not valid JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"type":"ptp"}"#, "\"name\" is missing"),
            (br#"{"name":"-x","type":"ptp"}"#, "is invalid"),
            (br#"{"name":"x"}"#, "no \"type\""),
            (br#"{"name":"x","type":"../evil"}"#, "no \"type\""),
            (br#"{"name":"x","plugins":[]}"#, "non-empty list"),
        ];
        for (body, needle) in cases {
            let e = NetConf::parse(Path::new("n.conf"), body)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e}");
            assert!(e.contains("n.conf"), "{e}");
        }
    }

    #[test]
    fn rkt_loading_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let builtin = tmp.path().join("stage1-net.d");
        let user = tmp.path().join("net.d");
        write(
            &builtin,
            "99-default.conf",
            r#"{"name":"default","type":"ptp","ipMasq":true}"#,
        );
        write(
            &builtin,
            "99-default-restricted.conf",
            r#"{"name":"default-restricted","type":"ptp"}"#,
        );
        write(&user, "20-b.conf", r#"{"name":"b","type":"bridge"}"#);
        write(
            &user,
            "10-a.conflist",
            r#"{"name":"a","plugins":[{"type":"ptp"}]}"#,
        );
        write(&user, "30-a-again.conf", r#"{"name":"a","type":"macvlan"}"#);
        write(&user, "README", "not a configuration");

        let (nets, warnings) = select(&builtin, &user, &NetRequest::All).unwrap();
        let names: Vec<_> = nets.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "default"]);
        assert_eq!(nets[0].plugins[0].plugin_type, "ptp", "the first file wins");
        assert!(
            warnings.iter().any(|w| w.contains("30-a-again.conf")),
            "{warnings:?}"
        );

        // A user network named like a built-in one replaces it.
        write(
            &user,
            "50-default.conf",
            r#"{"name":"default","type":"bridge"}"#,
        );
        let req = NetRequest::parse("default").unwrap();
        let (nets, warnings) = select(&builtin, &user, &req).unwrap();
        assert_eq!(nets.len(), 1);
        assert_eq!(nets[0].plugins[0].plugin_type, "bridge");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("overriding \"default\"")),
            "{warnings:?}"
        );

        let req = NetRequest::parse("b,nosuch,alsonot").unwrap();
        let e = select(&builtin, &user, &req).unwrap_err().to_string();
        assert!(e.contains("networks not found: nosuch, alsonot"), "{e}");

        let (nets, _) = select(&builtin, &user, &NetRequest::None).unwrap();
        assert!(nets.is_empty());
        // No user directory at all is fine.
        let req = NetRequest::parse("default-restricted,default").unwrap();
        let (nets, _) = select(&builtin, &tmp.path().join("absent"), &req).unwrap();
        assert_eq!(nets.len(), 2);
    }

    #[test]
    fn huge_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let big = "x".repeat((MAX_CONF_BYTES + 10) as usize);
        write(tmp.path(), "big.conf", &big);
        let e = load_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("larger than 1 MiB"), "{e}");
    }
}
