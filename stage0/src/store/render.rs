//! Dependency flattening and layer selection (appc `acirenderer`): which image
//! provides each path of a rendered rootfs.

use std::collections::HashMap;
use std::collections::HashSet;
use std::fs::File;

use abi::schema::ImageManifest;

use super::archive::{self, Kind};
use super::extract::{Data, Extractor, FileDigests};
use super::{ImageKey, Store, StoreError};

/// Deepest dependency chain accepted; a longer one is almost surely a loop.
const MAX_DEPTH: usize = 64;
/// Most images in one flattened list.
const MAX_IMAGES: usize = 1024;

/// One image of a flattened dependency list.
#[derive(Debug, Clone)]
pub struct Layer {
    pub key: ImageKey,
    pub manifest: ImageManifest,
    pub level: usize,
    /// Index in the list of the image that depends on this one.
    pub parent: Option<usize>,
}

/// Flattens `key` and its dependencies like acirenderer: the top image first,
/// each image's dependencies inserted right after it (so they end up in
/// reverse listed order). `A->[B,C], C->[D]` gives A, C, D, B.
pub fn dep_list(store: &Store, key: &ImageKey) -> Result<Vec<Layer>, StoreError> {
    let top = Layer {
        key: key.clone(),
        manifest: store.manifest(key)?,
        level: 0,
        parent: None,
    };
    let mut list = vec![top];
    let mut i = 0;
    while i < list.len() {
        let deps = list[i].manifest.dependencies.clone();
        let level = list[i].level + 1;
        if !deps.is_empty() && level > MAX_DEPTH {
            return Err(StoreError::DependencyLoop(
                list[0].manifest.name.to_string(),
            ));
        }
        for d in deps {
            let dep_key =
                match &d.image_id {
                    Some(id) => store.resolve_key(id.as_str()).map_err(|_| {
                        StoreError::MissingDependency {
                            name: list[i].manifest.name.to_string(),
                            dep: format!("{} ({})", d.image_name, id),
                        }
                    })?,
                    None => {
                        let labels: Vec<(String, String)> = d
                            .labels
                            .iter()
                            .map(|l| (l.name.to_string(), l.value.clone()))
                            .collect();
                        store
                            .find_by_name(d.image_name.as_str(), &labels)?
                            .ok_or_else(|| StoreError::MissingDependency {
                                name: list[i].manifest.name.to_string(),
                                dep: describe(d.image_name.as_str(), &labels),
                            })?
                    }
                };
            let manifest = store.manifest(&dep_key)?;
            list.insert(
                i + 1,
                Layer {
                    key: dep_key,
                    manifest,
                    level,
                    parent: Some(i),
                },
            );
            // Inserting shifts later parents; fix indices that pointed past i.
            for l in list.iter_mut().skip(i + 2) {
                if let Some(p) = l.parent.as_mut() {
                    if *p > i {
                        *p += 1;
                    }
                }
            }
            if list.len() > MAX_IMAGES {
                return Err(StoreError::DependencyLoop(
                    list[0].manifest.name.to_string(),
                ));
            }
        }
        i += 1;
    }
    Ok(list)
}

fn describe(name: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name} ({})", l.join(","))
}

fn whitelist(m: &ImageManifest) -> Option<HashSet<String>> {
    let set: HashSet<String> = m
        .path_whitelist
        .iter()
        .map(|p| p.trim_end_matches('/').to_string())
        .filter(|p| !p.is_empty())
        .collect();
    (!set.is_empty()).then_some(set)
}

/// For each rootfs path, the index of the layer that provides it: the first
/// image in list order that has it, subject to its own whitelist (files
/// only) and every ancestor's whitelist (all entries), and never below a path
/// an earlier image provided as a non-directory.
pub fn providers(
    store: &Store,
    layers: &[Layer],
) -> Result<HashMap<String, (usize, Kind)>, StoreError> {
    let mut provided: HashMap<String, (usize, Kind)> = HashMap::new();
    for (i, layer) in layers.iter().enumerate() {
        let own = whitelist(&layer.manifest);
        let mut ancestors = Vec::new();
        let mut p = layer.parent;
        while let Some(a) = p {
            if let Some(w) = whitelist(&layers[a].manifest) {
                ancestors.push(w);
            }
            p = layers[a].parent;
        }
        let blob = store.open_blob(&layer.key)?;
        archive::walk(&blob, |e, _| {
            let Some(rel) = rootfs_rel(&e.path) else {
                return Ok(());
            };
            if !rel.is_empty() {
                let abs = format!("/{rel}");
                if e.kind != Kind::Dir && own.as_ref().is_some_and(|w| !w.contains(&abs)) {
                    return Ok(());
                }
                if ancestors.iter().any(|w| !w.contains(&abs)) {
                    return Ok(());
                }
            }
            if provided.contains_key(rel) {
                return Ok(());
            }
            let mut parent = rel;
            while let Some((p, _)) = parent.rsplit_once('/') {
                if provided.get(p).is_some_and(|(_, k)| *k != Kind::Dir) {
                    return Ok(());
                }
                parent = p;
            }
            provided.insert(rel.to_string(), (i, e.kind));
            Ok(())
        })?;
    }
    Ok(provided)
}

/// `rootfs/a/b` → `a/b`, `rootfs` → ``, anything else → None.
pub(crate) fn rootfs_rel(path: &str) -> Option<&str> {
    if path == "rootfs" {
        Some("")
    } else {
        path.strip_prefix("rootfs/")
    }
}

/// Renders the layers' rootfs into the existing directory `dest`. With
/// `digests`, the files' contents are hashed as they are written.
pub fn render_layers(
    store: &Store,
    layers: &[Layer],
    dest: &std::path::Path,
    digests: bool,
) -> Result<FileDigests, StoreError> {
    let provided = providers(store, layers)?;
    let blobs: Vec<File> = layers
        .iter()
        .map(|l| store.open_blob(&l.key))
        .collect::<Result<_, _>>()?;
    // Lowest layers first, like acirenderer; each path has exactly one provider.
    let mut ex = Extractor::new(dest)?;
    if digests {
        ex = ex.with_digests();
    }
    for (i, blob) in blobs.iter().enumerate().rev() {
        archive::walk(blob, |e, _| {
            let Some(rel) = rootfs_rel(&e.path) else {
                return Ok(());
            };
            if provided.get(rel).map(|(idx, _)| *idx) != Some(i) {
                return Ok(());
            }
            let link = e.link.as_deref().and_then(rootfs_rel);
            if e.kind == Kind::Hardlink && !link.is_some_and(|l| ex.was_written(l)) {
                tracing::debug!("skipping hard link {rel}: its target is not in the rendered tree");
                return Ok(());
            }
            ex.entry(Data::Blob(blob), e, rel, link)
        })?;
    }
    ex.finish()
}
