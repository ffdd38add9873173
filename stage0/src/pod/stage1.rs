//! What stage0 reads from a stage1 image: its entrypoints, interface version
//! and declared features.

use std::path::{Path, PathBuf};

use abi::pod_dir;
use abi::schema::ImageManifest;
use abi::stage1::{
    parse_features, Entrypoint, Feature, InterfaceVersion, FEATURES_ANNOTATION,
    INTERFACE_VERSION_ANNOTATION,
};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Stage1Error {
    #[error("cannot read stage1 manifest {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid stage1 manifest {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("stage1 image {image} has no {annotation} annotation")]
    MissingEntrypoint {
        image: String,
        annotation: &'static str,
    },
    #[error("stage1 image {image}: {reason}")]
    Version { image: String, reason: String },
}

/// A stage1 image as stage0 sees it through its manifest.
#[derive(Debug, Clone)]
pub struct Stage1Image {
    pub manifest: ImageManifest,
    pub version: InterfaceVersion,
    /// `None` when the image declares no features (a third-party stage1):
    /// everything its interface version allows is assumed, as in rkt.
    pub features: Option<Vec<Feature>>,
}

impl Stage1Image {
    pub fn from_manifest(manifest: ImageManifest) -> Result<Self, Stage1Error> {
        let version =
            InterfaceVersion::from_annotation(manifest.annotation(INTERFACE_VERSION_ANNOTATION))
                .map_err(|reason| Stage1Error::Version {
                    image: manifest.name.to_string(),
                    reason,
                })?;
        let features = manifest.annotation(FEATURES_ANNOTATION).map(parse_features);
        Ok(Stage1Image {
            manifest,
            version,
            features,
        })
    }

    /// Reads `$pod/stage1/manifest`.
    pub fn load(pod: &Path) -> Result<Self, Stage1Error> {
        let path = pod.join(pod_dir::STAGE1_MANIFEST);
        let bytes = std::fs::read(&path).map_err(|source| Stage1Error::Read {
            path: path.clone(),
            source,
        })?;
        let manifest: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| Stage1Error::Invalid {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Self::from_manifest(manifest)
    }

    /// The image name, e.g. `coreos.com/rkt/stage1-fly`.
    pub fn name(&self) -> &str {
        self.manifest.name.as_str()
    }

    /// The flavor for messages: the name's `stage1-<flavor>` suffix, else the name.
    pub fn flavor(&self) -> &str {
        let last = self.name().rsplit('/').next().unwrap_or(self.name());
        last.strip_prefix("stage1-").unwrap_or(self.name())
    }

    /// The entrypoint's path inside the stage1 rootfs, if declared.
    pub fn entrypoint(&self, ep: Entrypoint) -> Option<&str> {
        self.manifest.annotation(ep.annotation())
    }

    /// The entrypoint's binary: `<pod>/stage1/rootfs/<entrypoint>` when the
    /// stage1 rootfs is present there (copied pods, or inside the pod's mount
    /// namespace), else the same file in the tree store's rendering of the
    /// stage1 image, which is immutable (rkt does this for `enter`). An error
    /// when the entrypoint is not declared.
    pub fn entrypoint_path(&self, pod: &Path, ep: Entrypoint) -> Result<PathBuf, Stage1Error> {
        let rel = self
            .entrypoint(ep)
            .ok_or_else(|| Stage1Error::MissingEntrypoint {
                image: self.name().to_string(),
                annotation: ep.annotation(),
            })?
            .trim_start_matches('/');
        let in_pod = pod.join(pod_dir::STAGE1_ROOTFS).join(rel);
        if in_pod.exists() {
            return Ok(in_pod);
        }
        let tree = std::fs::read_to_string(pod.join(pod_dir::STAGE1_TREE_STORE_ID));
        // $dir/pods/<state>/<uuid> -> $dir
        let data_dir = pod.parent().and_then(Path::parent).and_then(Path::parent);
        match (tree, data_dir) {
            (Ok(id), Some(data_dir)) => Ok(data_dir
                .join("cas/tree")
                .join(id.trim())
                .join("rootfs")
                .join(rel)),
            _ => Ok(in_pod),
        }
    }

    /// Whether the stage1 honours `feature`.
    pub fn supports(&self, feature: Feature) -> bool {
        match &self.features {
            None => true,
            Some(list) => list.contains(&feature),
        }
    }

    /// Mutable pods need the app add/rm/start/stop entrypoints (rkt's rule).
    pub fn supports_mutable(&self) -> bool {
        [Entrypoint::AppRm, Entrypoint::AppStart, Entrypoint::AppStop]
            .into_iter()
            .all(|ep| self.entrypoint(ep).is_some())
            && self.supports(Feature::Mutable)
    }
}
