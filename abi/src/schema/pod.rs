//! The pod manifest (`$pod/pod`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{AcIdentifier, AcName, Annotation, App, ImageId, Isolator, Label, Port};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodManifest {
    pub ac_version: String,
    pub ac_kind: String,
    #[serde(default)]
    pub apps: Vec<RuntimeApp>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub isolators: Vec<Isolator>,
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    #[serde(default)]
    pub ports: Vec<ExposedPort>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
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
