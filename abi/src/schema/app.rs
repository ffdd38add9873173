//! The `app` section of an image manifest (also used in pod manifests).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::isolator::validate_isolators;
use super::validate::{is_abs, is_env_name};
use super::{AcName, Isolator, SchemaError};

/// How to run an image: argv, credentials, environment, isolators, ports...
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
    pub user: String,
    pub group: String,
    #[serde(
        default,
        rename = "supplementaryGIDs",
        alias = "supplementaryGids",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub supplementary_gids: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_handlers: Vec<EventHandler>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(default)]
    pub environment: Vec<EnvironmentVariable>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub isolators: Vec<Isolator>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
}

/// `pre-start` / `post-stop` hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHandler {
    pub name: String,
    pub exec: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: String,
}

/// A place in the app's rootfs where a volume is expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    pub name: AcName,
    pub path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// A named port the app listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    pub name: AcName,
    pub protocol: String,
    pub port: u16,
    #[serde(default = "default_port_count")]
    pub count: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub socket_activated: bool,
}

fn default_port_count() -> u32 {
    1
}

/// The two event handler names appc defines.
pub const EVENT_HANDLER_NAMES: &[&str] = &["pre-start", "post-stop"];

impl App {
    /// appc rules for an `app` section; `field` prefixes error messages
    /// (e.g. `app` or `apps[web].app`).
    pub fn validate(&self, field: &str) -> Result<(), SchemaError> {
        let err = |msg: String| Err(SchemaError::Invalid(format!("{field}.{msg}")));
        let mut handlers = BTreeSet::new();
        for h in &self.event_handlers {
            if !EVENT_HANDLER_NAMES.contains(&h.name.as_str()) {
                return err(format!(
                    "eventHandlers: unknown handler {:?}; use \"pre-start\" or \"post-stop\"",
                    h.name
                ));
            }
            if !handlers.insert(h.name.as_str()) {
                return err(format!(
                    "eventHandlers: more than one {:?} handler; keep one",
                    h.name
                ));
            }
        }
        if let Some(wd) = &self.working_directory {
            if !wd.is_empty() && !is_abs(wd) {
                return err(format!(
                    "workingDirectory {wd:?} must be an absolute path (start with /)"
                ));
            }
        }
        let mut env = BTreeSet::new();
        for e in &self.environment {
            if !is_env_name(&e.name) {
                return err(format!(
                    "environment: invalid variable name {:?}; use letters, digits, _ . - and do not start with a digit",
                    e.name
                ));
            }
            if !env.insert(e.name.as_str()) {
                return err(format!(
                    "environment: variable {:?} is set twice; keep one",
                    e.name
                ));
            }
        }
        validate_isolators(&self.isolators, &format!("{field}.isolators"))?;
        let mut mps = BTreeSet::new();
        for mp in &self.mount_points {
            if !mps.insert(mp.name.as_str()) {
                return err(format!(
                    "mountPoints: duplicate mount point name {:?}; names must be unique",
                    mp.name.as_str()
                ));
            }
            if mp.path.is_empty() {
                return err(format!("mountPoints: {:?} needs a path", mp.name.as_str()));
            }
        }
        let mut ports = BTreeSet::new();
        for p in &self.ports {
            if !ports.insert(p.name.as_str()) {
                return err(format!(
                    "ports: duplicate port name {:?}; names must be unique",
                    p.name.as_str()
                ));
            }
            p.validate()
                .map_err(|e| SchemaError::Invalid(format!("{field}.ports: {e}")))?;
        }
        Ok(())
    }

    /// Go decode defaults: port counts of 0 become 1 (a missing count
    /// already defaults to 1; `environment` to `[]`).
    pub fn apply_defaults(&mut self) {
        for p in &mut self.ports {
            p.apply_defaults();
        }
    }

    /// The value of environment variable `name`, if set.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.environment
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value.as_str())
    }
}

impl Port {
    /// Port 1..=65535 and `port + count - 1` within range (count 0 counts as 1).
    pub fn validate(&self) -> Result<(), SchemaError> {
        let name = self.name.as_str();
        if self.port == 0 {
            return Err(SchemaError::Invalid(format!(
                "port {name:?}: port number must be in 1..=65535"
            )));
        }
        let count = u64::from(self.count.max(1));
        if u64::from(self.port) + count > 65536 {
            return Err(SchemaError::Invalid(format!(
                "port {name:?}: port {} + count {} exceeds 65536; lower the count",
                self.port, self.count
            )));
        }
        Ok(())
    }

    /// Go's decoder turns a 0 count into 1.
    pub fn apply_defaults(&mut self) {
        if self.count == 0 {
            self.count = 1;
        }
    }
}
