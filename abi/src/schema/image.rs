//! The image manifest (`manifest` at the top of an ACI).

use serde::{Deserialize, Serialize};

use super::gojson;
use super::labels::{validate_annotations, validate_labels};
use super::validate::{check_ac_kind, check_ac_version, is_abs};
use super::{AcIdentifier, Annotation, App, ImageId, Label, SchemaError, AC_VERSION};

/// `acKind` of image manifests.
pub const IMAGE_MANIFEST_KIND: &str = "ImageManifest";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub ac_kind: String,
    pub ac_version: String,
    pub name: AcIdentifier,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<App>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_whitelist: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
}

impl ImageManifest {
    /// An empty manifest of the current [`AC_VERSION`] named `name`.
    pub fn new(name: AcIdentifier) -> Self {
        ImageManifest {
            ac_kind: IMAGE_MANIFEST_KIND.to_string(),
            ac_version: AC_VERSION.to_string(),
            name,
            labels: Vec::new(),
            app: None,
            dependencies: Vec::new(),
            path_whitelist: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// Parses and validates a manifest the way appc's Go decoder does:
    /// keys match case-insensitively, unknown keys and `null`s are ignored,
    /// decode defaults are applied. Input above [`super::MAX_MANIFEST_SIZE`]
    /// is refused before parsing (hostile images).
    pub fn from_json(bytes: &[u8]) -> Result<Self, SchemaError> {
        let mut m: ImageManifest = gojson::decode(bytes, "image manifest")?;
        m.apply_defaults();
        m.validate()?;
        Ok(m)
    }

    /// Go decode defaults (see [`App::apply_defaults`]).
    pub fn apply_defaults(&mut self) {
        if let Some(app) = &mut self.app {
            app.apply_defaults();
        }
    }

    /// The appc rules of an image manifest (spec §2-§4). Errors are one line
    /// naming the offending field.
    pub fn validate(&self) -> Result<(), SchemaError> {
        check_ac_kind(&self.ac_kind, IMAGE_MANIFEST_KIND)?;
        check_ac_version(&self.ac_version)?;
        validate_labels(&self.labels, "labels")?;
        if let Some(app) = &self.app {
            app.validate("app")?;
        }
        for (i, dep) in self.dependencies.iter().enumerate() {
            validate_labels(&dep.labels, &format!("dependencies[{i}].labels"))?;
        }
        for p in &self.path_whitelist {
            if !is_abs(p) {
                return Err(SchemaError::Invalid(format!(
                    "pathWhitelist entry {p:?} must be an absolute path (start with /)"
                )));
            }
        }
        validate_annotations(&self.annotations, "annotations")
    }

    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name.as_str() == name)
            .map(|l| l.value.as_str())
    }

    /// The value of annotation `name`, if present.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|a| a.name.as_str() == name)
            .map(|a| a.value.as_str())
    }
}

/// Another image whose rootfs is laid under this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub image_name: AcIdentifier,
    #[serde(
        rename = "imageID",
        alias = "imageId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub image_id: Option<ImageId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{IsolatorValue, MAX_MANIFEST_SIZE};

    /// Modelled on appc's spec example (`spec/aci.md`).
    const EXAMPLE: &str = r#"{
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": "example.com/reduce-worker",
        "labels": [
            {"name": "version", "value": "1.0.0"},
            {"name": "arch", "value": "amd64"},
            {"name": "os", "value": "linux"}
        ],
        "app": {
            "exec": ["/usr/bin/reduce-worker", "--quiet"],
            "user": "100",
            "group": "300",
            "supplementaryGids": [400, 500],
            "eventHandlers": [
                {"exec": ["/usr/bin/data-downloader"], "name": "pre-start"},
                {"exec": ["/usr/bin/deregister-worker", "--verbose"], "name": "post-stop"}
            ],
            "workingDirectory": "/opt/work",
            "environment": [{"name": "REDUCE_WORKER_DEBUG", "value": "true"}],
            "isolators": [
                {"name": "resource/cpu", "value": {"request": "250m", "limit": "500m"}},
                {"name": "resource/memory", "value": {"limit": "1G"}},
                {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]}},
                {"name": "example.com/custom", "value": {"anything": [1, 2]}}
            ],
            "mountPoints": [
                {"name": "work", "path": "/var/lib/work", "readOnly": false},
                {"name": "conf", "path": "/etc/reduce", "readOnly": true}
            ],
            "ports": [
                {"name": "health", "port": 4000, "protocol": "tcp", "socketActivated": true},
                {"name": "range", "port": 5000, "protocol": "udp", "count": 10}
            ],
            "userAnnotations": {"Owner": "team-a"},
            "userLabels": {"Tier": "backend"}
        },
        "dependencies": [
            {
                "imageName": "example.com/reduce-worker-base",
                "imageID": "sha512-8d3fffddf79e9a232ffd19f9ccaa4d6b37a6a243dbe0f23137b108a043d9da13121a9b505c804956b22e93c7f93969f4a7ba8ddea45bf4aab0bebc8f814e0990",
                "labels": [{"name": "os", "value": "linux"}, {"name": "env", "value": "canary"}],
                "size": 1024
            }
        ],
        "pathWhitelist": ["/etc/ca/example.com/crt", "/usr/bin/map-reduce-worker"],
        "annotations": [
            {"name": "authors", "value": "Carly Container <carly@example.com>"},
            {"name": "created", "value": "2014-10-27T19:32:58.000Z"},
            {"name": "documentation", "value": "https://example.com/docs"},
            {"name": "homepage", "value": "https://example.com"}
        ],
        "someFutureKey": {"ignored": true}
    }"#;

    fn example() -> serde_json::Value {
        serde_json::from_str(EXAMPLE).unwrap()
    }

    fn parse(v: &serde_json::Value) -> Result<ImageManifest, SchemaError> {
        ImageManifest::from_json(&serde_json::to_vec(v).unwrap())
    }

    fn err_of(v: &serde_json::Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    #[test]
    fn parses_and_round_trips() {
        let m = ImageManifest::from_json(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(m.name.as_str(), "example.com/reduce-worker");
        assert_eq!(m.label("version"), Some("1.0.0"));
        assert_eq!(m.annotation("homepage"), Some("https://example.com"));
        let app = m.app.as_ref().unwrap();
        assert_eq!(app.supplementary_gids, vec![400, 500]);
        assert_eq!(app.ports[0].count, 1);
        assert_eq!(app.ports[1].count, 10);
        assert_eq!(app.env("REDUCE_WORKER_DEBUG"), Some("true"));
        assert_eq!(
            app.isolators[1].typed().unwrap(),
            IsolatorValue::ResourceMemory {
                request: Some(1_000_000_000),
                limit: Some(1_000_000_000)
            }
        );
        assert!(!app.isolators[3].is_known());
        assert_eq!(m.dependencies[0].size, Some(1024));
        assert!(m.dependencies[0].image_id.as_ref().unwrap().is_full());

        let out = serde_json::to_vec(&m).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("\"supplementaryGIDs\":[400,500]"), "{text}");
        assert!(text.contains("\"imageID\":\"sha512-8d3f"), "{text}");
        assert!(!text.contains("someFutureKey"));
        let again = ImageManifest::from_json(&out).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn minimal_manifest_and_defaults() {
        let m = ImageManifest::from_json(
            br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/base"}"#,
        )
        .unwrap();
        assert!(m.app.is_none());
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/base"}"#
        );
        let m = ImageManifest::from_json(
            br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"a","labels":null,
                 "app":{"exec":["/a"],"user":"0","group":"0","ports":[{"name":"p","protocol":"tcp","port":80,"count":0}]}}"#,
        )
        .unwrap();
        let app = m.app.unwrap();
        assert!(app.environment.is_empty());
        assert_eq!(app.ports[0].count, 1);
        let new = ImageManifest::new(AcIdentifier::new("example.com/x").unwrap());
        assert!(new.validate().is_ok());
    }

    #[test]
    fn go_style_keys() {
        let m = ImageManifest::from_json(
            br#"{"ACKind":"ImageManifest","ACVersion":"0.8.11","Name":"a",
                 "App":{"Exec":["/a"],"User":"0","Group":"0","SupplementaryGIDS":[7],
                        "WorkingDirectory":"/w","Isolators":[{"Name":"resource/cpu","Value":{"Limit":"1"}}]},
                 "Dependencies":[{"ImageName":"b","ImageId":"sha512-ab"}],
                 "PathWhiteList":["/x"]}"#,
        )
        .unwrap();
        let app = m.app.as_ref().unwrap();
        assert_eq!(app.supplementary_gids, vec![7]);
        assert_eq!(app.working_directory.as_deref(), Some("/w"));
        assert_eq!(
            app.isolators[0].typed().unwrap(),
            IsolatorValue::ResourceCpu {
                request: Some(1000),
                limit: Some(1000)
            }
        );
        assert_eq!(
            m.dependencies[0].image_id.as_ref().unwrap().as_str(),
            "sha512-ab"
        );
        assert_eq!(m.path_whitelist, vec!["/x".to_string()]);
        // Plain serde (no folding) still knows the spec's own spelling.
        let plain: App = serde_json::from_str(
            r#"{"exec":["/a"],"user":"0","group":"0","supplementaryGids":[1]}"#,
        )
        .unwrap();
        assert_eq!(plain.supplementary_gids, vec![1]);
    }

    #[test]
    fn validation_errors() {
        type Mutate = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Mutate, &str)> = vec![
            (
                "kind",
                Box::new(|v| v["acKind"] = "PodManifest".into()),
                "acKind is \"PodManifest\" but must be \"ImageManifest\"",
            ),
            (
                "version",
                Box::new(|v| v["acVersion"] = "0.0.0".into()),
                "acVersion must not be 0.0.0",
            ),
            (
                "semver",
                Box::new(|v| v["acVersion"] = "latest".into()),
                "acVersion: invalid version",
            ),
            (
                "name label",
                Box::new(|v| v["labels"][0]["name"] = "name".into()),
                "may not be called \"name\"",
            ),
            (
                "dup label",
                Box::new(|v| v["labels"][1]["name"] = "version".into()),
                "duplicate label \"version\"",
            ),
            (
                "os",
                Box::new(|v| v["labels"][2]["value"] = "windows".into()),
                "bad os label \"windows\"",
            ),
            (
                "arch",
                Box::new(|v| v["labels"][1]["value"] = "x86_64".into()),
                "bad arch label \"x86_64\" for os \"linux\"",
            ),
            (
                "handler",
                Box::new(|v| v["app"]["eventHandlers"][0]["name"] = "pre-stop".into()),
                "app.eventHandlers: unknown handler \"pre-stop\"",
            ),
            (
                "handler twice",
                Box::new(|v| v["app"]["eventHandlers"][1]["name"] = "pre-start".into()),
                "more than one \"pre-start\"",
            ),
            (
                "workdir",
                Box::new(|v| v["app"]["workingDirectory"] = "work".into()),
                "app.workingDirectory \"work\" must be an absolute path",
            ),
            (
                "env name",
                Box::new(|v| v["app"]["environment"][0]["name"] = "1X".into()),
                "invalid variable name \"1X\"",
            ),
            (
                "env dup",
                Box::new(|v| {
                    v["app"]["environment"] =
                        serde_json::json!([{"name":"A","value":"1"},{"name":"A","value":"2"}])
                }),
                "variable \"A\" is set twice",
            ),
            (
                "mount dup",
                Box::new(|v| v["app"]["mountPoints"][1]["name"] = "work".into()),
                "duplicate mount point name \"work\"",
            ),
            (
                "port dup",
                Box::new(|v| v["app"]["ports"][1]["name"] = "health".into()),
                "duplicate port name \"health\"",
            ),
            (
                "port zero",
                Box::new(|v| v["app"]["ports"][0]["port"] = 0.into()),
                "port number must be in 1..=65535",
            ),
            (
                "port range",
                Box::new(|v| v["app"]["ports"][1]["port"] = 65530.into()),
                "exceeds 65536",
            ),
            (
                "isolator",
                Box::new(|v| v["app"]["isolators"][0]["value"]["limit"] = "1K".into()),
                "app.isolators: isolator \"resource/cpu\": \"limit\"",
            ),
            (
                "dep labels",
                Box::new(|v| v["dependencies"][0]["labels"][0]["value"] = "beos".into()),
                "dependencies[0].labels: bad os",
            ),
            (
                "whitelist",
                Box::new(|v| v["pathWhitelist"][0] = "etc/x".into()),
                "pathWhitelist entry \"etc/x\" must be an absolute path",
            ),
            (
                "created",
                Box::new(|v| v["annotations"][1]["value"] = "2014-10-27".into()),
                "\"created\" value \"2014-10-27\" is not an RFC 3339 time",
            ),
            (
                "homepage",
                Box::new(|v| v["annotations"][3]["value"] = "example.com".into()),
                "\"homepage\" value \"example.com\" must be an http",
            ),
            (
                "dup annotation",
                Box::new(|v| v["annotations"][1]["name"] = "authors".into()),
                "duplicate annotation \"authors\"",
            ),
            (
                "bad name",
                Box::new(|v| v["name"] = "Example.com/X".into()),
                "invalid AC Identifier",
            ),
            (
                "missing user",
                Box::new(|v| {
                    v["app"].as_object_mut().unwrap().remove("user");
                }),
                "missing field `user`",
            ),
        ];
        for (what, mutate, want) in cases {
            let mut v = example();
            mutate(&mut v);
            let err = err_of(&v);
            assert!(err.contains(want), "{what}: {err}");
            assert!(!err.contains('\n'), "{what}: multi-line error {err}");
        }
    }

    #[test]
    fn size_limit_and_garbage() {
        let mut big =
            br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"a","x":""#.to_vec();
        big.resize(MAX_MANIFEST_SIZE + 1, b'a');
        big.extend_from_slice(br#""}"#);
        let err = ImageManifest::from_json(&big).unwrap_err().to_string();
        assert!(err.contains("byte limit"), "{err}");
        let err = ImageManifest::from_json(b"[1]").unwrap_err().to_string();
        assert!(err.contains("must be a JSON object"), "{err}");
        let err = ImageManifest::from_json(b"{").unwrap_err().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
