//! Images as the API describes them, and `ImageFilter` matching.

use std::collections::HashMap;

use abi::calendar::unix_secs;
use abi::schema::ImageManifest;

use super::proto::{self, ImageFilter, KeyValue};
use crate::store::{ImageInfo, ImageKey, Store};

/// An image with what filtering and answering need.
pub struct StoredImage {
    pub info: ImageInfo,
    pub manifest: Option<ImageManifest>,
    pub raw_manifest: Vec<u8>,
}

/// Every image in the store, with its manifest.
pub fn all(store: &Store) -> Result<Vec<StoredImage>, crate::store::StoreError> {
    Ok(store
        .list()?
        .into_iter()
        .map(|info| StoredImage::load(store, info))
        .collect())
}

fn pairs<'a>(list: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<KeyValue> {
    list.map(|(k, v)| KeyValue {
        key: k.to_string(),
        value: v.to_string(),
    })
    .collect()
}

impl StoredImage {
    /// The image `info` describes, with its manifest from `store`.
    pub fn load(store: &Store, info: ImageInfo) -> StoredImage {
        let raw_manifest = store.raw_manifest(&info.key).unwrap_or_default();
        let manifest = ImageManifest::from_json(&raw_manifest).ok();
        StoredImage {
            info,
            manifest,
            raw_manifest,
        }
    }

    pub fn to_proto(&self, detail: bool) -> proto::Image {
        let m = self.manifest.as_ref();
        proto::Image {
            base_format: Some(proto::ImageFormat {
                r#type: proto::ImageType::Appc as i32,
                version: m
                    .map(|m| m.ac_version.clone())
                    .unwrap_or_else(|| abi::schema::AC_VERSION.to_string()),
            }),
            id: self.info.key.to_string(),
            name: self.info.name.clone(),
            version: self.info.version.clone().unwrap_or_default(),
            import_timestamp: unix_secs(self.info.import_time),
            manifest: if detail {
                self.raw_manifest.clone()
            } else {
                Vec::new()
            },
            size: (self.info.size + self.info.tree_store_size) as i64,
            annotations: m.map_or_else(Vec::new, |m| {
                pairs(
                    m.annotations
                        .iter()
                        .map(|a| (a.name.as_str(), a.value.as_str())),
                )
            }),
            labels: m.map_or_else(Vec::new, |m| {
                pairs(m.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
            }),
        }
    }

    fn label(&self, name: &str) -> Option<&str> {
        self.manifest.as_ref()?.label(name)
    }

    fn annotation(&self, name: &str) -> Option<&str> {
        self.manifest.as_ref()?.annotation(name)
    }

    /// Whether the image meets every condition `filter` sets.
    pub fn matches(&self, filter: &ImageFilter) -> bool {
        let id = self.info.key.as_str();
        let name = self.info.name.as_str();
        let base = name.rsplit('/').next().unwrap_or(name);
        let imported = unix_secs(self.info.import_time);
        let any = |list: &[String], f: &dyn Fn(&str) -> bool| {
            list.is_empty() || list.iter().any(|s| f(s))
        };
        any(&filter.ids, &|s| id.starts_with(s))
            && any(&filter.prefixes, &|s| name.starts_with(s))
            && any(&filter.base_names, &|s| base == s)
            && any(&filter.keywords, &|s| name.contains(s))
            && any(&filter.full_names, &|s| name == s)
            && filter
                .labels
                .iter()
                .all(|kv| self.label(&kv.key) == Some(kv.value.as_str()))
            && filter
                .annotations
                .iter()
                .all(|kv| self.annotation(&kv.key) == Some(kv.value.as_str()))
            && (filter.imported_after == 0 || imported > filter.imported_after)
            && (filter.imported_before == 0 || imported < filter.imported_before)
    }
}

/// The images of one request, each converted once however many pods
/// refer to it.
#[derive(Default)]
pub struct ImageCache {
    images: HashMap<String, Option<proto::Image>>,
}

impl ImageCache {
    /// The whole image `id` from `store`, or just its id if it is gone.
    pub fn get(&mut self, store: Option<&Store>, id: &str) -> proto::Image {
        let found = self.images.entry(id.to_string()).or_insert_with(|| {
            let store = store?;
            let key = ImageKey::parse(id)?;
            let info = store.info(&key).ok()?;
            Some(StoredImage::load(store, info).to_proto(true))
        });
        found.clone().unwrap_or_else(|| proto::Image {
            id: id.to_string(),
            ..Default::default()
        })
    }
}
