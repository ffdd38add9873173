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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const ID: &str = "sha512-8d3fffddf79e9a232ffd19f9ccaa4d6b37a6a243dbe0f23137b108a043d9da13121a9b505c804956b22e93c7f93969f4a7ba8ddea45bf4aab0bebc8f814e0990";

    /// A pod as rkt writes it (Go `null`s included), modelled on
    /// appc's `spec/pods.md` example.
    fn example() -> Value {
        json!({
            "acVersion": "0.8.11",
            "acKind": "PodManifest",
            "apps": [
                {
                    "name": "reduce-worker",
                    "image": {"name": "example.com/reduce-worker", "id": ID,
                              "labels": [{"name": "version", "value": "1.0.0"}]},
                    "app": {
                        "exec": ["/bin/reduce-worker"],
                        "user": "0",
                        "group": "0",
                        "mountPoints": [{"name": "work", "path": "/var/lib/work"}],
                        "ports": [{"name": "health", "protocol": "tcp", "port": 4000}]
                    },
                    "readOnlyRootFS": true,
                    "mounts": [
                        {"volume": "work", "path": "/var/lib/work"},
                        {"volume": "scratch", "path": "/tmp/scratch",
                         "appVolume": {"name": "scratch", "kind": "empty"}}
                    ],
                    "annotations": [{"name": "coreos.com/rkt/stage2/stdin", "value": "null"}]
                },
                {
                    "name": "backup",
                    "image": {"id": ID},
                    "app": null,
                    "readOnlyRootFS": false
                }
            ],
            "volumes": [
                {"name": "work", "kind": "host", "source": "/opt/tenant1/work", "readOnly": true, "recursive": true},
                {"name": "cache", "kind": "empty", "mode": "0700", "uid": 1000}
            ],
            "isolators": [{"name": "resource/memory", "value": {"limit": "512Mi"}}],
            "annotations": [{"name": "coreos.com/rkt/stage1/mutable", "value": "false"}],
            "ports": [{"name": "health", "hostPort": 8080, "hostIP": "127.0.0.1"}],
            "userAnnotations": {"a": "b"},
            "userLabels": {"c": "d"}
        })
    }

    fn parse(v: &Value) -> Result<PodManifest, SchemaError> {
        PodManifest::from_json(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn parses_with_defaults_and_round_trips() {
        let m = parse(&example()).unwrap();
        assert_eq!(m.apps.len(), 2);
        let app = m.app("reduce-worker").unwrap();
        assert!(app.read_only_root_fs);
        assert_eq!(app.image.id.as_str(), ID);
        assert_eq!(app.annotation("coreos.com/rkt/stage2/stdin"), Some("null"));
        assert!(m.app("backup").unwrap().app.is_none());
        let cache = m.volume("cache").unwrap();
        assert_eq!(cache.mode.as_deref(), Some("0700"));
        assert_eq!(cache.mode_bits(), 0o700);
        assert_eq!((cache.uid, cache.gid), (Some(1000), Some(0)));
        let scratch = app.mounts[1].app_volume.as_ref().unwrap();
        assert_eq!(scratch.mode.as_deref(), Some(EMPTY_VOLUME_DEFAULT_MODE));
        let work = m.volume("work").unwrap();
        assert!(work.is_read_only());
        assert_eq!(work.mode, None);
        assert_eq!(m.annotation("coreos.com/rkt/stage1/mutable"), Some("false"));
        assert_eq!(m.ports[0].host_ip.as_deref(), Some("127.0.0.1"));

        let out = serde_json::to_vec(&m).unwrap();
        assert_eq!(parse(&serde_json::from_slice(&out).unwrap()).unwrap(), m);
    }

    #[test]
    fn empty_lists_serialise_as_arrays_and_null_reads_as_empty() {
        let m = PodManifest::from_json(
            br#"{"acVersion":"0.8.11","acKind":"PodManifest","apps":null,"volumes":null,"isolators":null,"annotations":null,"ports":null}"#,
        )
        .unwrap();
        assert_eq!(m, PodManifest::default());
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"acVersion":"0.8.11","acKind":"PodManifest","apps":[],"volumes":[],"isolators":[],"annotations":[],"ports":[]}"#
        );
        // Plain serde accepts Go's nulls too.
        let plain: PodManifest = serde_json::from_str(
            r#"{"acVersion":"0.8.11","acKind":"PodManifest","apps":[],"volumes":null,"ports":null}"#,
        )
        .unwrap();
        assert!(plain.volumes.is_empty());
    }

    #[test]
    fn go_style_keys() {
        let m = PodManifest::from_json(
            format!(
                r#"{{"ACVersion":"0.8.11","ACKind":"PodManifest",
                    "Apps":[{{"Name":"a","Image":{{"ID":"{ID}"}},"ReadOnlyRootFs":true,
                              "Mounts":[{{"Volume":"v","Path":"/v","AppVolume":{{"Name":"v","Kind":"host","Source":"/s","ReadOnly":true}}}}]}}],
                    "Ports":[{{"Name":"p","HostPort":1,"HostIp":"::1","PodPort":{{"Name":"p","Protocol":"tcp","Port":2,"Count":0}}}}]}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(m.apps[0].read_only_root_fs);
        let v = m.apps[0].mounts[0].app_volume.as_ref().unwrap();
        assert_eq!(v.source.as_deref(), Some("/s"));
        assert_eq!(m.ports[0].host_ip.as_deref(), Some("::1"));
        assert_eq!(m.ports[0].pod_port.as_ref().unwrap().count, 1);
    }

    #[test]
    fn validation_errors() {
        type Mutate = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Mutate, &str)> = vec![
            (
                "kind",
                Box::new(|v| v["acKind"] = "ImageManifest".into()),
                "acKind is \"ImageManifest\" but must be \"PodManifest\"",
            ),
            (
                "no kind",
                Box::new(|v| v["acKind"] = "".into()),
                "acKind must be set",
            ),
            (
                "version",
                Box::new(|v| v["acVersion"] = "1.2".into()),
                "acVersion: invalid version",
            ),
            (
                "dup app",
                Box::new(|v| v["apps"][1]["name"] = "reduce-worker".into()),
                "duplicate app name \"reduce-worker\"",
            ),
            (
                "dup volume",
                Box::new(|v| v["volumes"][1]["name"] = "work".into()),
                "duplicate volume name \"work\"",
            ),
            (
                "host no source",
                Box::new(|v| {
                    v["volumes"][0].as_object_mut().unwrap().remove("source");
                }),
                "volume \"work\": kind=host needs a source path",
            ),
            (
                "host relative",
                Box::new(|v| v["volumes"][0]["source"] = "work".into()),
                "source must be an absolute path",
            ),
            (
                "host mode",
                Box::new(|v| v["volumes"][0]["mode"] = "0755".into()),
                "mode, uid and gid are only allowed with kind=empty",
            ),
            (
                "empty source",
                Box::new(|v| v["volumes"][1]["source"] = "/x".into()),
                "kind=empty takes no source",
            ),
            (
                "bad mode",
                Box::new(|v| v["volumes"][1]["mode"] = "rwx".into()),
                "mode must be an octal permission",
            ),
            (
                "bad kind",
                Box::new(|v| v["volumes"][1]["kind"] = "tmpfs".into()),
                "unknown variant `tmpfs`",
            ),
            (
                "app volume",
                Box::new(|v| v["apps"][0]["mounts"][1]["appVolume"]["source"] = "/x".into()),
                "apps[reduce-worker].mounts.appVolume: volume \"scratch\"",
            ),
            (
                "app section",
                Box::new(|v| v["apps"][0]["app"]["workingDirectory"] = "rel".into()),
                "apps[reduce-worker].app.workingDirectory",
            ),
            (
                "image labels",
                Box::new(|v| v["apps"][0]["image"]["labels"][0]["name"] = "name".into()),
                "apps[reduce-worker].image.labels",
            ),
            (
                "isolators",
                Box::new(|v| v["isolators"][0]["value"] = json!({"default": true})),
                "isolators: isolator \"resource/memory\"",
            ),
            (
                "annotations",
                Box::new(|v| {
                    v["annotations"] = json!([{"name":"a","value":"1"},{"name":"a","value":"2"}])
                }),
                "annotations: duplicate annotation \"a\"",
            ),
            (
                "dup port",
                Box::new(|v| {
                    v["ports"] = json!([{"name":"p","hostPort":1},{"name":"p","hostPort":2}])
                }),
                "port \"p\" is forwarded twice",
            ),
            (
                "host ip",
                Box::new(|v| v["ports"][0]["hostIP"] = "localhost".into()),
                "hostIP \"localhost\" is not an IP address",
            ),
            (
                "host port",
                Box::new(|v| v["ports"][0]["hostPort"] = 0.into()),
                "hostPort must be in 1..=65535",
            ),
            (
                "image id",
                Box::new(|v| v["apps"][1]["image"]["id"] = "sha1-00".into()),
                "invalid image ID",
            ),
            (
                "app name",
                Box::new(|v| v["apps"][1]["name"] = "Backup".into()),
                "invalid AC Name",
            ),
        ];
        for (what, mutate, want) in cases {
            let mut v = example();
            mutate(&mut v);
            let err = parse(&v).unwrap_err().to_string();
            assert!(err.contains(want), "{what}: {err}");
            assert!(!err.contains('\n'), "{what}: multi-line error {err}");
        }
    }
}
