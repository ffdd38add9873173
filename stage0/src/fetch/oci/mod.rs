//! Docker and OCI images: from a registry (`docker://`, the registry v2 /
//! OCI distribution API) or an OCI image layout directory (`oci:DIR[:TAG]`),
//! stored as one ACI each (what docker2aci made), converted on the way in.
//!
//! Layers download in parallel, newest first, each into a private file;
//! the newest is merged into the ACI (see `flatten`) while older ones still
//! download, and the ACI streams straight into the store's import. Every
//! blob is checked against its digest and size; a mismatch fails the
//! import and nothing is stored.

mod convert;
mod flatten;
mod layout;
mod pipe;
mod reference;
mod registry;

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use oci_spec::image::{Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, Os};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use crate::fetch::http::HttpError;
use crate::store::{to_hex, ImageKey, ImportOptions, PrivateFiles, Store, StoreError};

pub use convert::Origin;
pub use flatten::FlattenError;
pub use layout::Layout;
pub use reference::DockerRef;
pub use registry::{Credentials, Registry};

#[derive(Debug, Error)]
pub enum OciError {
    #[error("invalid docker image reference {reference:?}: {why}")]
    BadReference { reference: String, why: String },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{url}: {why}; if {registry} serves plain http, pass --insecure-options=http")]
    HttpsFailed {
        url: String,
        why: String,
        registry: String,
    },
    #[error("registry {registry} refused access ({why}); if the image needs credentials, add a dockerAuth entry for {registry} to auth.d")]
    AuthRefused { registry: String, why: String },
    #[error("{url}: {why}; check the image name and tag")]
    NotInRegistry { url: String, why: String },
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Convert(String),
    #[error("{what}: {why}")]
    BadDocument { what: String, why: String },
    #[error("{0} is a Docker schema 1 manifest, which is not supported; push the image again with a current docker or skopeo")]
    Schema1(String),
    #[error(
        "{what} has no image for linux/amd64 (it has {found}); use an image built for this machine"
    )]
    NoPlatform { what: String, found: String },
    #[error("{what}: the content has digest {got}, not {wanted}; the source is corrupt or tampered with, and nothing was stored")]
    DigestMismatch {
        what: String,
        wanted: String,
        got: String,
    },
    #[error("{what}: more than the {size} bytes its manifest gives; refusing the rest, nothing was stored")]
    TooLarge { what: String, size: u64 },
    #[error("digest {0:?}: only sha256 digests are supported")]
    UnsupportedDigest(String),
    #[error("layer {digest}: {why}")]
    UnsupportedLayer { digest: String, why: String },
    #[error("OCI layout {dir}: {why}")]
    Layout { dir: PathBuf, why: String },
    #[error(transparent)]
    Flatten(#[from] FlattenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

/// Largest manifest, index or `index.json` read: they are small documents.
const MAX_DOCUMENT_BYTES: u64 = 4 << 20;
/// Manifests and indexes nest at most this deep (index → index → manifest).
const MAX_INDEX_DEPTH: usize = 3;
/// Image configurations are JSON documents; some carry long histories.
const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Layers downloading at once.
const PARALLEL_DOWNLOADS: usize = 4;
/// Docker builds at most 127 layers (overlayfs' limit); a manifest with
/// thousands is hostile (a file descriptor each while merging).
const MAX_LAYERS: usize = 256;

/// A manifest or an index of manifests.
pub(crate) enum Document {
    Manifest(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

/// Parses a manifest document (`content_type` as the registry sent it).
pub(crate) fn classify(
    bytes: &[u8],
    content_type: Option<&str>,
    what: &str,
) -> Result<Document, OciError> {
    let bad = |why: String| OciError::BadDocument {
        what: what.to_string(),
        why,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON ({e})")))?;
    if value
        .get("schemaVersion")
        .and_then(serde_json::Value::as_u64)
        == Some(1)
    {
        return Err(OciError::Schema1(what.to_string()));
    }
    let media_type = value
        .get("mediaType")
        .and_then(serde_json::Value::as_str)
        .or(content_type)
        .unwrap_or_default();
    let is_index = media_type.contains("manifest.list")
        || media_type.contains("image.index")
        || (media_type.is_empty() && value.get("manifests").is_some());
    if is_index {
        serde_json::from_value(value)
            .map(|i| Document::Index(Box::new(i)))
            .map_err(|e| bad(format!("not an image index ({e})")))
    } else {
        serde_json::from_value(value)
            .map(|m| Document::Manifest(Box::new(m)))
            .map_err(|e| bad(format!("not an image manifest ({e})")))
    }
}

/// The linux/amd64 entry of an index (or its only entry, when that names
/// no platform).
pub(crate) fn pick_platform(index: &ImageIndex, what: &str) -> Result<Descriptor, OciError> {
    let ours = index.manifests().iter().find(|d| {
        d.platform()
            .as_ref()
            .is_some_and(|p| *p.os() == Os::Linux && *p.architecture() == Arch::Amd64)
    });
    if let Some(d) = ours {
        return Ok(d.clone());
    }
    if let [only] = index.manifests().as_slice() {
        if only.platform().is_none() {
            return Ok(only.clone());
        }
    }
    let found: Vec<String> = index
        .manifests()
        .iter()
        .map(|d| match d.platform() {
            Some(p) => format!("{}/{}", p.os(), p.architecture()),
            None => "an entry without platform".into(),
        })
        .collect();
    Err(OciError::NoPlatform {
        what: what.to_string(),
        found: if found.is_empty() {
            "none".into()
        } else {
            found.join(", ")
        },
    })
}

/// The hex part of a sha256 digest.
pub(crate) fn sha256_hex(digest: &str) -> Result<&str, OciError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or_else(|| OciError::UnsupportedDigest(digest.to_string()))
}

pub(crate) fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", to_hex(&Sha256::digest(bytes)))
}

/// A blob of at most `limit` bytes, read whole and checked against its
/// descriptor's digest and size.
fn read_verified(reader: impl Read, d: &Descriptor, limit: u64) -> Result<Vec<u8>, OciError> {
    if d.size() > limit {
        return Err(OciError::TooLarge {
            what: format!("blob {}", d.digest()),
            size: limit,
        });
    }
    let mut check = Verified::new(reader, d, "blob");
    let mut bytes = Vec::new();
    let read = check.read_to_end(&mut bytes);
    check.into_result()?;
    read.map_err(|source| OciError::Io {
        what: format!("reading blob {}", d.digest()),
        source,
    })?;
    Ok(bytes)
}

/// Follows manifest lists and indexes from `reference` (a tag, or a
/// digest the document must have) to the linux/amd64 image manifest, and
/// its digest. `fetch` gives a document's bytes and, if known, its media
/// type.
fn follow_indexes(
    what: &str,
    reference: String,
    mut fetch: impl FnMut(&str) -> Result<(Vec<u8>, Option<String>), OciError>,
) -> Result<(ImageManifest, String), OciError> {
    let mut reference = reference;
    for _ in 0..MAX_INDEX_DEPTH {
        let (body, media_type) = fetch(&reference)?;
        let digest = sha256_of(&body);
        let at = format!("{what}@{reference}");
        if reference.starts_with("sha256:") && reference != digest {
            return Err(OciError::DigestMismatch {
                what: format!("manifest {at}"),
                wanted: reference,
                got: digest,
            });
        }
        match classify(&body, media_type.as_deref(), &at)? {
            Document::Manifest(m) => return Ok((*m, digest)),
            Document::Index(index) => {
                reference = pick_platform(&index, &at)?.digest().to_string();
            }
        }
    }
    Err(OciError::BadDocument {
        what: what.to_string(),
        why: "manifest lists nest too deep".into(),
    })
}

/// The manifest `r` names, through manifest lists to linux/amd64, with
/// its digest.
pub fn resolve_registry(
    registry: &Registry<'_>,
    r: &DockerRef,
) -> Result<(ImageManifest, String), OciError> {
    let what = format!("{}/{}", r.registry, r.repository);
    follow_indexes(&what, r.manifest_reference().to_string(), |reference| {
        let response = registry.manifest(reference)?;
        // A tag's answer names its digest: it must be what came.
        if let Some(claimed) = response.digest.filter(|h| h.starts_with("sha256:")) {
            let got = sha256_of(&response.body);
            if claimed != got {
                return Err(OciError::DigestMismatch {
                    what: format!("manifest {what}@{reference}"),
                    wanted: claimed,
                    got,
                });
            }
        }
        Ok((response.body, response.media_type))
    })
}

/// Where an image's blobs are.
pub enum Blobs<'a> {
    Registry(&'a Registry<'a>),
    Layout(&'a Layout),
}

impl Blobs<'_> {
    fn read_small(&self, d: &Descriptor, limit: u64) -> Result<Vec<u8>, OciError> {
        match self {
            Blobs::Layout(l) => read_verified(l.open_blob(d)?, d, limit),
            Blobs::Registry(r) => read_verified(r.blob(d.digest().as_ref())?, d, limit),
        }
    }

    /// The layer's compressed bytes in a file, checked against its digest
    /// and size: the layout's own file, or a private download (cut off
    /// past its size).
    fn layer_file(&self, d: &Descriptor, files: &PrivateFiles) -> Result<File, OciError> {
        let digest = d.digest().to_string();
        let (copied, check) = match self {
            Blobs::Layout(l) => {
                let file = l.open_blob(d)?;
                let mut check = Verified::new(&file, d, "layer");
                let read = io::copy(&mut check, &mut io::sink()).map_err(|source| OciError::Io {
                    what: format!("reading layer {digest}"),
                    source,
                });
                let checked = check.into_result();
                (read.map(|_| file), checked)
            }
            Blobs::Registry(r) => {
                let mut check = Verified::new(r.blob(&digest)?, d, "layer");
                let copied = files.copy(&mut check).map_err(OciError::from);
                (copied, check.into_result())
            }
        };
        match (copied, check) {
            // Cut off for its size, which is the news.
            (_, Err(e @ OciError::TooLarge { .. })) => Err(e),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            (Ok(file), Ok(())) => Ok(file),
        }
    }
}

/// Imports the image `manifest` describes as one ACI.
pub fn import(
    store: &Store,
    blobs: &Blobs<'_>,
    manifest: &ImageManifest,
    origin: &Origin,
) -> Result<ImageKey, OciError> {
    let config_bytes = blobs.read_small(manifest.config(), MAX_CONFIG_BYTES)?;
    let config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).map_err(|e| OciError::BadDocument {
            what: format!("image configuration {}", manifest.config().digest()),
            why: e.to_string(),
        })?;
    if *config.os() != Os::Linux || *config.architecture() != Arch::Amd64 {
        return Err(OciError::NoPlatform {
            what: origin.name.clone(),
            found: format!("{}/{}", config.os(), config.architecture()),
        });
    }
    let layers = manifest.layers();
    if layers.len() > MAX_LAYERS {
        return Err(OciError::BadDocument {
            what: origin.name.clone(),
            why: format!(
                "{} layers, more than the {MAX_LAYERS} an image may have",
                layers.len()
            ),
        });
    }
    for l in layers {
        sha256_hex(l.digest().as_ref())?;
        let media = l.media_type().to_string();
        if media.contains("zstd") || media.contains("foreign") || media.contains("nondistributable")
        {
            return Err(OciError::UnsupportedLayer {
                digest: l.digest().to_string(),
                why: format!("media type {media} is not supported (gzip and plain tar layers are)"),
            });
        }
    }
    let slots: Vec<Slot> = layers.iter().map(|_| Slot::default()).collect();
    let next = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let files = store.private_files();
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_DOWNLOADS.min(layers.len()) {
            s.spawn(|| loop {
                // Newest first: the merge starts with it.
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= layers.len() || cancel.load(Ordering::SeqCst) {
                    return;
                }
                let idx = layers.len() - 1 - i;
                slots[idx].put(blobs.layer_file(&layers[idx], &files));
            });
        }
        let (writer, reader) = pipe::chunk_pipe();
        let producer = s.spawn(|| {
            let config = (manifest.config().digest().as_ref(), &config);
            let merged = merge_layers(writer, layers, &slots, config, origin);
            if merged.is_err() {
                cancel.store(true, Ordering::SeqCst);
            }
            merged
        });
        let imported = store.import(reader, &ImportOptions::default());
        let merged = producer.join().expect("the layer merge does not panic");
        cancel.store(true, Ordering::SeqCst);
        match (merged, imported) {
            // The import stopped reading: its error is the news.
            (Err(e), Err(i)) if stopped_reading(&e) => Err(i.into()),
            (Err(e), _) => Err(e),
            (Ok(()), imported) => Ok(imported?),
        }
    })
}

/// Merges the layers (newest first, as their downloads finish) into an
/// ACI written to `out`.
fn merge_layers(
    out: pipe::ChunkWriter,
    layers: &[Descriptor],
    slots: &[Slot],
    (config_digest, config): (&str, &ImageConfiguration),
    origin: &Origin,
) -> Result<(), OciError> {
    let mut flattener = flatten::Flattener::new(out)?;
    for (idx, layer) in layers.iter().enumerate().rev() {
        // Checked against its digest already.
        let file = slots[idx].take()?;
        let name = layer.digest().to_string();
        flattener.add_layer(&name, &|| open_layer(&file))?;
    }
    if flattener.devices_skipped > 0 {
        tracing::debug!(
            "{}: left out {} device nodes (stage1 gives the pod its /dev)",
            origin.name,
            flattener.devices_skipped
        );
    }
    let manifest = convert::aci_manifest(origin, config_digest, config, flattener.passwd())?;
    let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    let writer = flattener.finish(&json)?;
    writer.finish().map_err(|source| OciError::Io {
        what: "writing the converted image".into(),
        source,
    })
}

/// Whether the merge failed only because the import stopped reading.
fn stopped_reading(e: &OciError) -> bool {
    let io = match e {
        OciError::Flatten(FlattenError::Write(io)) => io,
        OciError::Io { source, .. } => source,
        _ => return false,
    };
    io.kind() == io::ErrorKind::BrokenPipe
}

/// The uncompressed tar of a layer (gzip or plain).
fn open_layer<'f>(file: &'f File) -> io::Result<Box<dyn Read + 'f>> {
    let mut f = file;
    f.seek(io::SeekFrom::Start(0))?;
    let mut buffered = BufReader::with_capacity(256 << 10, f);
    let head = io::BufRead::fill_buf(&mut buffered)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(io::Error::other(
            "zstd-compressed layers are not supported (gzip and plain tar are)",
        ))
    } else {
        Ok(Box::new(buffered))
    }
}

/// A reader that hashes what it reads, and stops with an error past the
/// descriptor's size (a server sending endless bytes).
struct Verified<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    size: u64,
    digest: String,
    too_large: bool,
    /// What the blob is, for messages: `layer`, `blob`.
    kind: &'static str,
}

impl<R: Read> Verified<R> {
    fn new(inner: R, d: &Descriptor, kind: &'static str) -> Self {
        Verified {
            inner,
            hasher: Sha256::new(),
            read: 0,
            size: d.size(),
            digest: d.digest().to_string(),
            too_large: false,
            kind,
        }
    }

    /// Whether what was read is the descriptor's content.
    fn into_result(self) -> Result<(), OciError> {
        let what = format!("{} {}", self.kind, self.digest);
        if self.too_large {
            return Err(OciError::TooLarge {
                what,
                size: self.size,
            });
        }
        let got = format!("sha256:{}", to_hex(&self.hasher.finalize()));
        if got != self.digest || self.read != self.size {
            return Err(OciError::DigestMismatch {
                what: format!("{what} ({} bytes, {} expected)", self.read, self.size),
                wanted: self.digest,
                got,
            });
        }
        Ok(())
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.size {
            self.too_large = true;
            return Err(io::Error::other(format!(
                "more than the {} bytes the manifest gives",
                self.size
            )));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A layer's download, handed from a download thread to the merge.
#[derive(Default)]
struct Slot {
    file: Mutex<Option<Result<File, OciError>>>,
    ready: Condvar,
}

impl Slot {
    fn put(&self, result: Result<File, OciError>) {
        *self.file.lock().expect("slot") = Some(result);
        self.ready.notify_all();
    }

    fn take(&self) -> Result<File, OciError> {
        let mut guard = self.file.lock().expect("slot");
        loop {
            if let Some(result) = guard.take() {
                return result;
            }
            guard = self.ready.wait(guard).expect("slot");
        }
    }
}

/// The origin of an image from a registry.
pub fn registry_origin(r: &DockerRef, manifest_digest: &str) -> Origin {
    Origin {
        name: format!("{}/{}", r.registry, r.repository),
        version: r.tag.clone(),
        // Canonical, not as typed: one image, one image ID, however the
        // user spelled its name.
        annotations: vec![
            ("appc.io/docker/originalname".into(), r.canonical()),
            ("appc.io/docker/registryurl".into(), r.registry.clone()),
            ("appc.io/docker/repository".into(), r.repository.clone()),
        ],
        manifest_digest: manifest_digest.to_string(),
    }
}

/// The origin of an image from a layout directory: named after it.
pub fn layout_origin(dir: &Path, tag: Option<String>, manifest_digest: &str) -> Origin {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "oci-image".into());
    let original = match &tag {
        Some(t) => format!("oci:{}:{t}", dir.display()),
        None => format!("oci:{}", dir.display()),
    };
    Origin {
        name: base,
        version: tag,
        annotations: vec![("appc.io/docker/originalname".into(), original)],
        manifest_digest: manifest_digest.to_string(),
    }
}
