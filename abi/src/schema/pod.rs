//! The pod manifest (`$pod/pod`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::gojson::{self, null_as_default};
use super::isolator::validate_isolators;
use super::labels::{validate_annotations, validate_labels};
use super::validate::{check_ac_kind, check_ac_version, is_abs};
use super::{
    AcIdentifier, AcName, Annotation, App, ImageId, Isolator, Label, Port, SchemaError, AC_VERSION,
};

/// `acKind` of pod manifests.
pub const POD_MANIFEST_KIND: &str = "PodManifest";
/// Mode of an `empty` volume when the manifest gives none.
pub const EMPTY_VOLUME_DEFAULT_MODE: &str = "0755";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodManifest {
    pub ac_version: String,
    pub ac_kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub apps: Vec<RuntimeApp>,
    // `volumes`, `isolators`, `annotations` and `ports` are always written,
    // as arrays. rkt's Go writes `null` when they are unset; we write `[]`
    // because clients of the metadata service's `/pod/annotations` tell the
    // two apart and appc recommends `[]` (appc.md §13). `null` is accepted
    // on input.
    #[serde(default, deserialize_with = "null_as_default")]
    pub volumes: Vec<Volume>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub isolators: Vec<Isolator>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub annotations: Vec<Annotation>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ports: Vec<ExposedPort>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
}

impl Default for PodManifest {
    /// An empty pod manifest of the current [`AC_VERSION`].
    fn default() -> Self {
        PodManifest {
            ac_version: AC_VERSION.to_string(),
            ac_kind: POD_MANIFEST_KIND.to_string(),
            apps: Vec::new(),
            volumes: Vec::new(),
            isolators: Vec::new(),
            annotations: Vec::new(),
            ports: Vec::new(),
            user_annotations: BTreeMap::new(),
            user_labels: BTreeMap::new(),
        }
    }
}

impl PodManifest {
    /// Parses and validates a pod manifest like appc's Go decoder (see
    /// [`super::ImageManifest::from_json`]); empty-volume defaults and port
    /// counts are filled in.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SchemaError> {
        let mut m: PodManifest = gojson::decode(bytes, "pod manifest")?;
        m.apply_defaults();
        m.validate()?;
        Ok(m)
    }

    /// Go decode defaults: `empty` volumes get mode 0755 and uid/gid 0
    /// (also inline `appVolume`s); port counts of 0 become 1.
    pub fn apply_defaults(&mut self) {
        for v in &mut self.volumes {
            v.apply_defaults();
        }
        for app in &mut self.apps {
            if let Some(a) = &mut app.app {
                a.apply_defaults();
            }
            for m in &mut app.mounts {
                if let Some(v) = &mut m.app_volume {
                    v.apply_defaults();
                }
            }
        }
        for p in &mut self.ports {
            if let Some(pp) = &mut p.pod_port {
                pp.apply_defaults();
            }
        }
    }

    /// The appc rules of a pod manifest (spec §5), plus `acVersion`, which Go
    /// does not check but a reified pod needs.
    pub fn validate(&self) -> Result<(), SchemaError> {
        check_ac_kind(&self.ac_kind, POD_MANIFEST_KIND)?;
        check_ac_version(&self.ac_version)?;
        let mut apps = BTreeSet::new();
        for app in &self.apps {
            let name = app.name.as_str();
            if !apps.insert(name) {
                return Err(SchemaError::Invalid(format!(
                    "apps: duplicate app name {name:?}; give each app a unique --name"
                )));
            }
            app.validate()?;
        }
        let mut volumes = BTreeSet::new();
        for v in &self.volumes {
            if !volumes.insert(v.name.as_str()) {
                return Err(SchemaError::Invalid(format!(
                    "volumes: duplicate volume name {:?}; volume names must be unique",
                    v.name.as_str()
                )));
            }
            v.validate("volumes")?;
        }
        validate_isolators(&self.isolators, "isolators")?;
        validate_annotations(&self.annotations, "annotations")?;
        let mut ports = BTreeSet::new();
        for p in &self.ports {
            if !ports.insert(p.name.as_str()) {
                return Err(SchemaError::Invalid(format!(
                    "ports: port {:?} is forwarded twice; forward each app port once",
                    p.name.as_str()
                )));
            }
            p.validate()?;
        }
        Ok(())
    }

    /// The app named `name`, if present.
    pub fn app(&self, name: &str) -> Option<&RuntimeApp> {
        self.apps.iter().find(|a| a.name.as_str() == name)
    }

    /// The pod volume named `name`, if present.
    pub fn volume(&self, name: &str) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.name.as_str() == name)
    }

    /// The value of pod annotation `name`, if present.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|a| a.name.as_str() == name)
            .map(|a| a.value.as_str())
    }
}

/// One app of a pod: a name, the image backing it and optional overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeApp {
    pub name: AcName,
    pub image: RuntimeImage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<App>,
    #[serde(
        rename = "readOnlyRootFS",
        alias = "readOnlyRootFs",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub read_only_root_fs: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
}

impl RuntimeApp {
    fn validate(&self) -> Result<(), SchemaError> {
        let field = format!("apps[{}]", self.name.as_str());
        validate_labels(&self.image.labels, &format!("{field}.image.labels"))?;
        if let Some(app) = &self.app {
            app.validate(&format!("{field}.app"))?;
        }
        for m in &self.mounts {
            if m.path.is_empty() {
                return Err(SchemaError::Invalid(format!(
                    "{field}.mounts: mount of volume {:?} needs a path",
                    m.volume.as_str()
                )));
            }
            if let Some(v) = &m.app_volume {
                v.validate(&format!("{field}.mounts.appVolume"))?;
            }
        }
        validate_annotations(&self.annotations, &format!("{field}.annotations"))
    }

    /// The value of app annotation `name`, if present.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|a| a.name.as_str() == name)
            .map(|a| a.value.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeImage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<AcIdentifier>,
    pub id: ImageId,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
}

/// Binds a volume at a path inside an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub volume: AcName,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_volume: Option<Volume>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    Host,
    Empty,
}

/// A pod volume: a host path or an empty directory shared by the pod's apps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: AcName,
    pub kind: VolumeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

impl Volume {
    /// Go decode defaults for `empty` volumes: mode 0755, uid 0, gid 0.
    pub fn apply_defaults(&mut self) {
        if self.kind == VolumeKind::Empty {
            self.mode
                .get_or_insert_with(|| EMPTY_VOLUME_DEFAULT_MODE.to_string());
            self.uid.get_or_insert(0);
            self.gid.get_or_insert(0);
        }
    }

    /// `host` volumes need an absolute source and take no mode/uid/gid;
    /// `empty` volumes take no source and an octal mode.
    pub fn validate(&self, field: &str) -> Result<(), SchemaError> {
        let name = self.name.as_str();
        let err = |msg: &str| {
            Err(SchemaError::Invalid(format!(
                "{field}: volume {name:?}: {msg}"
            )))
        };
        match self.kind {
            VolumeKind::Host => {
                match self.source.as_deref() {
                    None | Some("") => return err("kind=host needs a source path"),
                    Some(s) if !is_abs(s) => {
                        return err("source must be an absolute path (start with /)")
                    }
                    _ => {}
                }
                if self.mode.is_some() || self.uid.is_some() || self.gid.is_some() {
                    return err("mode, uid and gid are only allowed with kind=empty; remove them");
                }
            }
            VolumeKind::Empty => {
                if self.source.as_deref().is_some_and(|s| !s.is_empty()) {
                    return err("kind=empty takes no source; remove it or use kind=host");
                }
                if let Some(mode) = &self.mode {
                    if parse_mode(mode).is_none() {
                        return err("mode must be an octal permission such as \"0755\"");
                    }
                }
            }
        }
        Ok(())
    }

    /// The mode of an `empty` volume's directory (default 0755).
    pub fn mode_bits(&self) -> u32 {
        self.mode.as_deref().and_then(parse_mode).unwrap_or(0o755)
    }

    /// The owner uid of an `empty` volume's directory (default 0).
    pub fn uid_or_default(&self) -> u32 {
        self.uid.unwrap_or(0)
    }

    /// The owner gid of an `empty` volume's directory (default 0).
    pub fn gid_or_default(&self) -> u32 {
        self.gid.unwrap_or(0)
    }

    /// `readOnly`, default false.
    pub fn is_read_only(&self) -> bool {
        self.read_only.unwrap_or(false)
    }
}

fn parse_mode(s: &str) -> Option<u32> {
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o7777)
}

/// A host port forwarded to an app's named port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExposedPort {
    pub name: AcName,
    pub host_port: u16,
    #[serde(
        rename = "hostIP",
        alias = "hostIp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_port: Option<Port>,
}

impl ExposedPort {
    fn validate(&self) -> Result<(), SchemaError> {
        let name = self.name.as_str();
        if self.host_port == 0 {
            return Err(SchemaError::Invalid(format!(
                "ports: {name:?}: hostPort must be in 1..=65535"
            )));
        }
        if let Some(ip) = &self.host_ip {
            if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
                return Err(SchemaError::Invalid(format!(
                    "ports: {name:?}: hostIP {ip:?} is not an IP address; use e.g. 127.0.0.1"
                )));
            }
        }
        if let Some(p) = &self.pod_port {
            p.validate()
                .map_err(|e| SchemaError::Invalid(format!("ports: {name:?}: podPort: {e}")))?;
        }
        Ok(())
    }
}
