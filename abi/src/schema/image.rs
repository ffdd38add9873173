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
