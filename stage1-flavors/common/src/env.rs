//! The app's environment (rkt.md §10.4, appc §6.4) and the `rkt/env/<app>`
//! file `enter` reads back.
//!
//! stage0 has already merged `--set-env`, `--inherit-env` etc. into the pod
//! manifest's app environment; stage1 adds `AC_APP_NAME`, `AC_METADATA_URL`
//! and fills in defaults for what is still missing.

use std::io;
use std::path::{Path, PathBuf};

use abi::schema::App;
use thiserror::Error;

/// appc's PATH; conforming apps compare it literally.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Defaults applied when the manifest does not set the variable (rkt's list).
pub const DEFAULTS: [(&str, &str); 5] = [
    ("PATH", DEFAULT_PATH),
    ("SHELL", "/bin/sh"),
    ("USER", "root"),
    ("LOGNAME", "root"),
    ("HOME", "/root"),
];

#[derive(Debug, Error)]
pub enum EnvError {
    #[error("environment variable name {0:?} is invalid (empty or contains '=' or a NUL/newline)")]
    InvalidName(String),
    #[error("cannot write env file {path:?}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read env file {path:?}: {source}; is the app running?")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An ordered environment with unique names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment(Vec<(String, String)>);

impl Environment {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name`, replacing an existing value in place.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.0.push((name.to_string(), value.to_string())),
        }
    }

    /// Sets `name` only if it is not set yet.
    pub fn set_default(&mut self, name: &str, value: &str) {
        if self.get(name).is_none() {
            self.0.push((name.to_string(), value.to_string()));
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// `NAME=value` strings, for execve.
    pub fn to_strings(&self) -> Vec<String> {
        self.iter().map(|(n, v)| format!("{n}={v}")).collect()
    }

    /// The PATH to search executables in (the default when unset).
    pub fn search_path(&self) -> &str {
        self.get("PATH").unwrap_or(DEFAULT_PATH)
    }

    /// Writes the env file: one `NAME=value` per line. Backslashes and
    /// newlines in values are escaped (`\\`, `\n`) so every line stays one
    /// variable; [`Environment::read_file`] undoes it.
    pub fn write_file(&self, path: &Path) -> Result<(), EnvError> {
        let mut out = String::new();
        for (n, v) in self.iter() {
            validate_name(n)?;
            out.push_str(n);
            out.push('=');
            out.push_str(&v.replace('\\', "\\\\").replace('\n', "\\n"));
            out.push('\n');
        }
        let write = || -> io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            crate::status::write_atomic(path, out.as_bytes())
        };
        write().map_err(|source| EnvError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads an env file written by [`Environment::write_file`]; lines without
    /// `=` are ignored.
    pub fn read_file(path: &Path) -> Result<Self, EnvError> {
        let content = std::fs::read_to_string(path).map_err(|source| EnvError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut env = Environment::new();
        for line in content.lines() {
            if let Some((n, v)) = line.split_once('=') {
                env.set(n, &unescape(v));
            }
        }
        Ok(env)
    }
}

fn validate_name(name: &str) -> Result<(), EnvError> {
    if name.is_empty() || name.contains(['=', '\0', '\n']) {
        return Err(EnvError::InvalidName(name.to_string()));
    }
    Ok(())
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The app's full environment: manifest entries (later ones win), then
/// `AC_APP_NAME`, `AC_METADATA_URL` when the pod is registered with the
/// metadata service, then the defaults for anything still unset.
pub fn compose(app_name: &str, app: &App, metadata_url: Option<&str>) -> Environment {
    let mut env = Environment::new();
    for var in &app.environment {
        env.set(&var.name, &var.value);
    }
    env.set("AC_APP_NAME", app_name);
    if let Some(url) = metadata_url {
        env.set("AC_METADATA_URL", url.trim_end_matches('/'));
    }
    for (n, v) in DEFAULTS {
        env.set_default(n, v);
    }
    env
}

/// Where the env file of `app` lives, given the stage1 rootfs.
/// The environment `enter` gives a command in `app`: the env file `run`
/// wrote under `stage1_rootfs` (or, without one, e.g. for a pod started by
/// another stage1 version, the same rules `run` applies), with the caller's
/// `TERM`.
pub fn enter_environment(
    stage1_rootfs: &Path,
    name: &str,
    app: &App,
) -> Result<Environment, EnvError> {
    let mut environment = match Environment::read_file(&env_file_path(stage1_rootfs, name)) {
        Ok(e) => e,
        Err(EnvError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            compose(name, app, None)
        }
        Err(e) => return Err(e),
    };
    if let Ok(term) = std::env::var("TERM") {
        environment.set("TERM", &term);
    }
    Ok(environment)
}

pub fn env_file_path(stage1_rootfs: &Path, app: &str) -> PathBuf {
    stage1_rootfs.join(abi::pod_dir::ENV_DIR).join(app)
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::schema::EnvironmentVariable;

    fn var(n: &str, v: &str) -> EnvironmentVariable {
        EnvironmentVariable {
            name: n.into(),
            value: v.into(),
        }
    }

    #[test]
    fn defaults_fill_only_missing_names() {
        let app = App {
            environment: vec![var("HOME", "/home/x"), var("FOO", "1"), var("FOO", "2")],
            ..Default::default()
        };
        let env = compose("web", &app, None);
        assert_eq!(env.get("HOME"), Some("/home/x"));
        assert_eq!(env.get("FOO"), Some("2"));
        assert_eq!(env.get("PATH"), Some(DEFAULT_PATH));
        assert_eq!(env.get("USER"), Some("root"));
        assert_eq!(env.get("AC_APP_NAME"), Some("web"));
        assert_eq!(env.get("AC_METADATA_URL"), None);
        assert_eq!(env.to_strings()[0], "HOME=/home/x");
    }

    #[test]
    fn app_name_and_mds_url_override_manifest() {
        let app = App {
            environment: vec![var("AC_APP_NAME", "spoof"), var("PATH", "/x")],
            ..Default::default()
        };
        let env = compose("web", &app, Some("http://169.254.169.255:2375/"));
        assert_eq!(env.get("AC_APP_NAME"), Some("web"));
        assert_eq!(
            env.get("AC_METADATA_URL"),
            Some("http://169.254.169.255:2375")
        );
        assert_eq!(env.search_path(), "/x");
    }

    #[test]
    fn env_file_round_trips_awkward_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = env_file_path(dir.path(), "app");
        let mut env = Environment::new();
        env.set("A", "plain");
        env.set("B", "two\nlines");
        env.set("C", "back\\slash=eq");
        env.set("D", "");
        env.write_file(&path).unwrap();
        assert_eq!(Environment::read_file(&path).unwrap(), env);
        let mut bad = Environment::new();
        bad.set("X=Y", "1");
        assert!(matches!(
            bad.write_file(&path),
            Err(EnvError::InvalidName(_))
        ));
    }
}
