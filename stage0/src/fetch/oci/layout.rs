//! An OCI image layout directory (`oci-layout`, `index.json`, `blobs/`),
//! as `skopeo copy … oci:DIR:TAG` and `umoci` write it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex};

use super::{follow_indexes, OciError, MAX_DOCUMENT_BYTES};

/// The annotation that tags an image of a layout.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub fn open(dir: &Path) -> Result<Layout, OciError> {
        let bad = |why: String| OciError::Layout {
            dir: dir.to_path_buf(),
            why,
        };
        let marker = dir.join("oci-layout");
        let text = std::fs::read_to_string(&marker).map_err(|e| {
            bad(format!(
                "cannot read {}: {e}; is this an OCI image layout?",
                marker.display()
            ))
        })?;
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_string))
            .ok_or_else(|| bad("oci-layout has no imageLayoutVersion".into()))?;
        if !version.starts_with("1.") {
            return Err(bad(format!(
                "image layout version {version} is not supported (1.x is)"
            )));
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    /// The blob of `descriptor`'s digest (sha256 only, so the name is
    /// 64 hex digits and stays inside `blobs/`).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, OciError> {
        let hex = super::sha256_hex(digest)?;
        Ok(self.dir.join("blobs/sha256").join(hex))
    }

    pub fn open_blob(&self, d: &Descriptor) -> Result<File, OciError> {
        let path = self.blob_path(d.digest().as_ref())?;
        File::open(&path).map_err(|e| OciError::Layout {
            dir: self.dir.clone(),
            why: format!("blob {} is missing ({e})", d.digest()),
        })
    }

    /// A manifest or index by its digest (checked by the caller).
    fn read_document(&self, digest: &str) -> Result<Vec<u8>, OciError> {
        let mut bytes = Vec::new();
        File::open(self.blob_path(digest)?)
            .and_then(|f| f.take(MAX_DOCUMENT_BYTES).read_to_end(&mut bytes))
            .map_err(|e| OciError::Layout {
                dir: self.dir.clone(),
                why: format!("cannot read blob {digest}: {e}"),
            })?;
        Ok(bytes)
    }

    /// The image manifest for `tag` (or the layout's only image) and its
    /// digest, through nested indexes to the linux/amd64 image.
    pub fn resolve(
        &self,
        tag: Option<&str>,
    ) -> Result<(oci_spec::image::ImageManifest, String, Option<String>), OciError> {
        let bad = |why: String| OciError::Layout {
            dir: self.dir.clone(),
            why,
        };
        let path = self.dir.join("index.json");
        let mut raw = Vec::new();
        File::open(&path)
            .and_then(|f| f.take(MAX_DOCUMENT_BYTES).read_to_end(&mut raw))
            .map_err(|e| bad(format!("cannot read index.json: {e}")))?;
        let index: ImageIndex = serde_json::from_slice(&raw)
            .map_err(|e| bad(format!("index.json is not an image index: {e}")))?;
        let tag_of = |d: &Descriptor| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
        };
        let top = match tag {
            Some(t) => index
                .manifests()
                .iter()
                .find(|d| tag_of(d).as_deref() == Some(t))
                .ok_or_else(|| bad(format!("no image tagged {t:?}; tags: {}", tags(&index))))?
                .clone(),
            None => match index.manifests().as_slice() {
                [only] => only.clone(),
                [] => return Err(bad("index.json lists no image".into())),
                _ => {
                    return Err(bad(format!(
                        "it holds several images; name one with oci:DIR:TAG (tags: {})",
                        tags(&index)
                    )))
                }
            },
        };
        let tag = tag.map(str::to_string).or_else(|| tag_of(&top));
        let what = format!("OCI layout {}", self.dir.display());
        let (manifest, digest) = follow_indexes(&what, top.digest().to_string(), |digest| {
            Ok((self.read_document(digest)?, None))
        })?;
        Ok((manifest, digest, tag))
    }
}

fn tags(index: &ImageIndex) -> String {
    let names: Vec<String> = index
        .manifests()
        .iter()
        .filter_map(|d| d.annotations().as_ref()?.get(REF_NAME).cloned())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
