//! Image fetching (local files and the store now; HTTPS, discovery and docker later).

mod discovery;
mod http;
mod image_ref;

use std::fmt;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::InsecureOptions;
use crate::store::{dep_list, peek_manifest, ImageKey, ImportOptions, Remote, Store, StoreError};
use crate::trust::{verify_detached, Keystore, TrustError};

pub use discovery::DiscoveryError;
pub use http::HttpError;
pub use image_ref::{parse_image_ref, ImageRef};

use http::Http;

/// When to go to the image's source instead of using the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Use the store when the image is there, else fetch (run/prepare default).
    New,
    /// Always fetch from the source (fetch default).
    Update,
    /// Store only.
    Never,
}

impl PullPolicy {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "new" => Ok(PullPolicy::New),
            "update" => Ok(PullPolicy::Update),
            "never" => Ok(PullPolicy::Never),
            other => Err(format!(
                "invalid pull policy {other:?}: use new, update or never"
            )),
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PullPolicy::New => "new",
            PullPolicy::Update => "update",
            PullPolicy::Never => "never",
        })
    }
}

#[derive(Debug, Error)]
pub enum FetchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("image {0:?} not found in the store; fetch it from a file with `rkt fetch FILE`")]
    NotFound(String),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("the image at {url} is {found}, not the requested {wanted}; the discovery templates of {wanted:?} point at the wrong image")]
    WrongImage {
        url: String,
        wanted: String,
        found: String,
    },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("image {0} is not in the store and --pull-policy=never forbids fetching it")]
    NotCached(String),
    #[error("no signature for {url} at {sig_url} ({why}); ask the publisher to sign it, give one with --signature, or pass --insecure-options=image to skip verification")]
    UrlUnsigned {
        url: String,
        sig_url: String,
        why: String,
    },
    #[error("{0:?}: docker images are not supported yet; convert the image to an ACI and fetch the file")]
    DockerUnsupported(String),
    #[error("cannot open image file {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image file {path} is not signed: no signature {sig} found; sign it (gpg --armor --detach-sign) or pass --insecure-options=image to skip signature verification")]
    Unsigned { path: PathBuf, sig: PathBuf },
    #[error("signature file {0}: not found; pass an existing file to --signature")]
    SignatureMissing(PathBuf),
    #[error("cannot read signature file {path}: {source}")]
    ReadSignature {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("image {image}: dependency {dep} was fetched as {got}, but the manifest requires image ID {wanted}; the publisher of {dep} serves another image than {image} was built on")]
    WrongDependency {
        image: String,
        dep: String,
        wanted: String,
        got: String,
    },
    #[error("image {image}: dependency {dep} not found in the store; fetch it first with `rkt fetch FILE`")]
    MissingDependency { image: String, dep: String },
}

/// Fetches images into the store according to the pull policy and the
/// insecure options.
pub struct Fetcher<'a> {
    store: &'a Store,
    insecure: InsecureOptions,
    pull_policy: PullPolicy,
    debug: bool,
    /// Where signatures are checked; none trusts no key.
    keystore: Option<Keystore>,
    trust_keys_from_https: bool,
}

impl<'a> Fetcher<'a> {
    pub fn new(
        store: &'a Store,
        insecure: InsecureOptions,
        pull_policy: PullPolicy,
        debug: bool,
    ) -> Self {
        Fetcher {
            store,
            insecure,
            pull_policy,
            debug,
            keystore: None,
            trust_keys_from_https: false,
        }
    }

    /// With no key trusted for a name yet, trust the keys its discovery
    /// offers over https (rkt's `--trust-keys-from-https`).
    pub fn with_trust_keys_from_https(mut self, on: bool) -> Self {
        self.trust_keys_from_https = on;
        self
    }

    /// Checks signatures against `keystore`'s trusted keys.
    pub fn with_keystore(mut self, keystore: Keystore) -> Self {
        self.keystore = Some(keystore);
        self
    }

    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// Fetches one image (not its dependencies) and returns its key.
    pub fn fetch(&self, image: &str, signature: Option<&Path>) -> Result<ImageKey, FetchError> {
        self.fetch_ref(&parse_image_ref(image), image, signature)
    }

    /// Fetches an image and makes sure every dependency, recursively, is in
    /// the store: looked up by image ID, else by name and labels, and
    /// fetched through discovery when missing (an image ID given by the
    /// manifest must then match what was fetched).
    pub fn fetch_with_deps(
        &self,
        image: &str,
        signature: Option<&Path>,
    ) -> Result<ImageKey, FetchError> {
        let key = self.fetch(image, signature)?;
        if self.pull_policy != PullPolicy::Never {
            self.fetch_missing_deps(&key)?;
        }
        let layers = dep_list(self.store, &key).map_err(|e| match e {
            StoreError::MissingDependency { name, dep } => {
                FetchError::MissingDependency { image: name, dep }
            }
            other => FetchError::Store(other),
        })?;
        for l in layers.iter().skip(1) {
            self.diag(&format!(
                "using image from local store for image name {}",
                l.manifest.name
            ));
        }
        Ok(key)
    }

    /// Walks `key`'s dependencies, fetching by discovery those the store
    /// lacks. Loops and depth are `dep_list`'s to judge afterwards; this
    /// walk only stops at images it has seen.
    fn fetch_missing_deps(&self, key: &ImageKey) -> Result<(), FetchError> {
        let mut seen = std::collections::HashSet::new();
        let mut pending = vec![key.clone()];
        while let Some(k) = pending.pop() {
            if !seen.insert(k.clone()) {
                continue;
            }
            let manifest = self.store.manifest(&k)?;
            for dep in &manifest.dependencies {
                let name = dep.image_name.as_str();
                let labels: Vec<(String, String)> = dep
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.clone()))
                    .collect();
                let stored = match &dep.image_id {
                    Some(id) => self.store.resolve_key(id.as_str()).ok(),
                    None => self.store.find_by_name(name, &labels)?,
                };
                let dep_key = match stored {
                    Some(found) => found,
                    None => {
                        let shown = describe_name(name, &labels);
                        let fetched = self.fetch_name(name, &labels, &shown)?;
                        if let Some(id) = &dep.image_id {
                            if !fetched.as_str().starts_with(id.as_str()) {
                                return Err(FetchError::WrongDependency {
                                    image: manifest.name.to_string(),
                                    dep: shown,
                                    wanted: id.to_string(),
                                    got: fetched.to_string(),
                                });
                            }
                        }
                        fetched
                    }
                };
                pending.push(dep_key);
            }
        }
        Ok(())
    }

    /// Fetches an already classified image string (`shown` is used in messages).
    pub fn fetch_ref(
        &self,
        r: &ImageRef,
        shown: &str,
        signature: Option<&Path>,
    ) -> Result<ImageKey, FetchError> {
        match r {
            ImageRef::Hash(h) => Ok(self.store.resolve_key(h)?),
            ImageRef::Path(p) => self.fetch_file(p, signature),
            ImageRef::Name { name, labels } => self.fetch_name(name, labels, shown),
            ImageRef::Url(u) => self.fetch_url(u, signature),
            ImageRef::Docker(d) => Err(FetchError::DockerUnsupported(d.clone())),
        }
    }

    /// A local file is always imported, whatever the pull policy (rkt §5.1).
    fn fetch_file(&self, path: &Path, signature: Option<&Path>) -> Result<ImageKey, FetchError> {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let file = File::open(&abs).map_err(|source| FetchError::Open {
            path: abs.clone(),
            source,
        })?;
        self.diag(&format!("using image from file {}", abs.display()));
        let Some(sig) = self.signature_of(&abs, signature)? else {
            return Ok(self.store.import(file, &ImportOptions::default())?);
        };
        let mut copy = self.store.private_copy(file)?;
        self.verify_file(&mut copy, &sig)?;
        Ok(self.store.import(copy, &ImportOptions::default())?)
    }

    /// The signature file to check, or none with `--insecure-options=image`.
    fn signature_of(
        &self,
        path: &Path,
        signature: Option<&Path>,
    ) -> Result<Option<PathBuf>, FetchError> {
        if self.insecure.image {
            eprintln!("image: warning: image signature verification has been disabled");
            return Ok(None);
        }
        match signature {
            Some(s) if !s.exists() => Err(FetchError::SignatureMissing(s.to_path_buf())),
            Some(s) => Ok(Some(s.to_path_buf())),
            None => {
                let sig = asc_path(path);
                if sig.exists() {
                    Ok(Some(sig))
                } else {
                    Err(FetchError::Unsigned {
                        path: path.to_path_buf(),
                        sig,
                    })
                }
            }
        }
    }

    /// Checks the signature file `sig` over `image` (see [`Self::verify`]).
    fn verify_file(&self, image: &mut File, sig: &Path) -> Result<(), FetchError> {
        let signature = std::fs::read(sig).map_err(|source| FetchError::ReadSignature {
            path: sig.to_path_buf(),
            source,
        })?;
        self.verify(image, &signature, &sig.display().to_string())
    }

    /// Checks `signature` (from `what`) over `image` (left at its start)
    /// against the keys trusted for the name the image's manifest gives.
    fn verify(&self, image: &mut File, signature: &[u8], what: &str) -> Result<(), FetchError> {
        let rewind = |f: &mut File| {
            f.seek(SeekFrom::Start(0))
                .map_err(StoreError::io("reading the image"))
        };
        let name = peek_manifest(&*image)?.name.as_str().to_string();
        rewind(image)?;
        let keyring = match &self.keystore {
            Some(ks) => ks.keyring(&name)?,
            None => Default::default(),
        };
        let signer = verify_detached(&name, &keyring, &*image, signature, what)?;
        rewind(image)?;
        eprintln!("image: signature verified:");
        for id in &signer.identities {
            eprintln!("  {id}");
        }
        Ok(())
    }

    /// An image at an http(s) URL: from the store when the pull policy
    /// and the cache headers recorded for the URL allow it, else
    /// downloaded (conditionally, with the recorded ETag), its signature
    /// (`<url minus .aci>.aci.asc`) checked, and imported.
    fn fetch_url(&self, url: &str, signature: Option<&Path>) -> Result<ImageKey, FetchError> {
        let http = Http::new(&self.insecure);
        self.fetch_remote(&http, url, &asc_url(url), signature, None)
    }

    /// [`Self::fetch_url`] with the signature at `sig_url`; with `expect`,
    /// the image must have that name and those labels (what discovery was
    /// asked for).
    fn fetch_remote(
        &self,
        http: &Http,
        url: &str,
        sig_url: &str,
        signature: Option<&Path>,
        expect: Option<(&str, &[(String, String)])>,
    ) -> Result<ImageKey, FetchError> {
        let cached = self.store.remote(url)?;
        let now = std::time::SystemTime::now();
        match (&cached, self.pull_policy) {
            (Some(c), PullPolicy::New | PullPolicy::Never) => {
                self.diag(&format!("using image from local store for url {url}"));
                return Ok(c.key.clone());
            }
            (Some(c), PullPolicy::Update) if c.is_fresh(now) => {
                self.diag(&format!(
                    "using image from local store for url {url} (fresh for {} s)",
                    c.max_age
                ));
                return Ok(c.key.clone());
            }
            (None, PullPolicy::Never) => return Err(FetchError::NotCached(url.to_string())),
            _ => {}
        }
        http.check_scheme(url)?;
        let sig_url = sig_url.to_string();
        // rkt's order: the signature first; a 202 defers it until after
        // the image (servers that sign on demand).
        let mut signature = match self.signature_source(signature)? {
            SignatureSource::Skip => None,
            SignatureSource::File(sig) => Some(Signature::File(sig)),
            SignatureSource::Remote => Some(self.get_signature(http, url, &sig_url)?),
        };
        self.diag(&format!("fetching image from {url}"));
        let etag = cached.as_ref().and_then(|c| c.etag.as_deref());
        let response = http.get(url, etag)?;
        if let (304, Some(mut c)) = (response.status, cached) {
            self.diag(&format!("{url} is unchanged; using the stored image"));
            c.downloaded = now;
            c.max_age = response.max_age;
            self.store.set_remote(url, Some(&sig_url), &c)?;
            return Ok(c.key);
        }
        let (etag, max_age) = (response.etag.clone(), response.max_age);
        let body = response
            .body
            .into_with_config()
            .limit(MAX_IMAGE_BYTES)
            .reader();
        let mut image = self.store.private_copy(body).map_err(|e| match e {
            StoreError::Io { source, .. }
                if source
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<ureq::Error>())
                    .is_some_and(|e| matches!(e, ureq::Error::BodyExceedsLimit(_))) =>
            {
                FetchError::Http(HttpError::TooLarge {
                    url: url.to_string(),
                    limit: MAX_IMAGE_BYTES,
                })
            }
            other => FetchError::Store(other),
        })?;
        if let Some(Signature::Deferred) = signature {
            signature = Some(match self.get_signature(http, url, &sig_url)? {
                Signature::Deferred => {
                    return Err(FetchError::UrlUnsigned {
                        url: url.to_string(),
                        sig_url,
                        why: "still deferred (202) after the image was downloaded".into(),
                    })
                }
                other => other,
            });
        }
        if let Some((wanted, labels)) = expect {
            check_identity(&mut image, url, wanted, labels)?;
        }
        match signature {
            Some(Signature::File(path)) => self.verify_file(&mut image, &path)?,
            Some(Signature::Bytes(bytes)) => self.verify(&mut image, &bytes, &sig_url)?,
            Some(Signature::Deferred) | None => {}
        }
        let key = self.store.import(image, &ImportOptions::default())?;
        self.store.set_remote(
            url,
            Some(&sig_url),
            &Remote {
                key: key.clone(),
                etag,
                max_age,
                downloaded: now,
            },
        )?;
        Ok(key)
    }

    /// Where the signature comes from, by the flags.
    fn signature_source(&self, signature: Option<&Path>) -> Result<SignatureSource, FetchError> {
        if self.insecure.image {
            eprintln!("image: warning: image signature verification has been disabled");
            return Ok(SignatureSource::Skip);
        }
        match signature {
            Some(s) if !s.exists() => Err(FetchError::SignatureMissing(s.to_path_buf())),
            Some(s) => Ok(SignatureSource::File(s.to_path_buf())),
            None => Ok(SignatureSource::Remote),
        }
    }

    fn get_signature(
        &self,
        http: &Http,
        url: &str,
        sig_url: &str,
    ) -> Result<Signature, FetchError> {
        self.diag(&format!("downloading signature from {sig_url}"));
        match http.get_small(sig_url, MAX_SIGNATURE_BYTES) {
            Ok((202, _)) => Ok(Signature::Deferred),
            Ok((_, bytes)) => Ok(Signature::Bytes(bytes)),
            // The server is there and has no signature for it.
            Err(e) if e.status().is_some() => Err(FetchError::UrlUnsigned {
                url: url.to_string(),
                sig_url: sig_url.to_string(),
                why: e.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Names come from the store; remote discovery is not implemented yet, so
    /// every policy ends there.
    fn fetch_name(
        &self,
        name: &str,
        labels: &[(String, String)],
        shown: &str,
    ) -> Result<ImageKey, FetchError> {
        let labels = with_host_labels(labels);
        if self.pull_policy != PullPolicy::Update {
            if let Some(key) = self.store.find_by_name(name, &labels)? {
                self.diag(&format!(
                    "using image from local store for image name {shown}"
                ));
                return Ok(key);
            }
            if self.pull_policy == PullPolicy::Never {
                return Err(FetchError::NotFound(shown.to_string()));
            }
        }
        eprintln!("image: searching for app image {shown}");
        let http = Http::new(&self.insecure);
        let endpoints = discovery::discover_acis(&http, self.insecure.http, name, &labels)?;
        if self.trust_keys_from_https && !self.insecure.image {
            self.trust_discovered_keys(name)?;
        }
        let mut last = None;
        for ep in &endpoints {
            eprintln!("image: remote fetching from URL {:?}", ep.aci);
            match self.fetch_remote(&http, &ep.aci, &ep.asc, None, Some((name, &labels))) {
                Ok(key) => return Ok(key),
                // Another template may be served elsewhere; a refused
                // signature or a wrong image is final.
                Err(e @ (FetchError::Http(_) | FetchError::UrlUnsigned { .. })) => {
                    eprintln!("image: {e}");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| FetchError::NotFound(shown.to_string())))
    }

    /// Discovers `name`'s public keys over https only and trusts them for
    /// `name`, unless some key is trusted for it already.
    fn trust_discovered_keys(&self, name: &str) -> Result<(), FetchError> {
        let Some(keystore) = &self.keystore else {
            return Ok(());
        };
        if !keystore.keyring(name)?.is_empty() {
            self.diag(&format!(
                "keys already exist for prefix {name:?}, not fetching again"
            ));
            return Ok(());
        }
        let https_only = InsecureOptions {
            http: false,
            ..self.insecure
        };
        let scope = crate::trust::Scope::prefix(name)?;
        for url in discover_key_urls(&https_only, name)? {
            let bytes = download_key(&https_only, &url)?;
            let cert = crate::trust::parse_key(&bytes, &url)?;
            if let Some(why) = crate::trust::unusable_now(&cert) {
                eprintln!(
                    "image: not trusting key {} from {url}: {why}",
                    crate::trust::fingerprint_of(&cert)
                );
                continue;
            }
            let path = keystore.store(&scope, &cert)?;
            eprintln!("image: trusting key {} from {url} for prefix {name:?} (--trust-keys-from-https): added at {}", crate::trust::fingerprint_of(&cert), path.display());
        }
        Ok(())
    }

    fn diag(&self, msg: &str) {
        if self.debug {
            eprintln!("image: {msg}");
        }
    }

    pub fn pull_policy(&self) -> PullPolicy {
        self.pull_policy
    }
}

/// `name:version,label=value` as the user would type it.
fn describe_name(name: &str, labels: &[(String, String)]) -> String {
    let mut out = name.to_string();
    if let Some((_, v)) = labels.iter().find(|(k, _)| k == "version") {
        out.push(':');
        out.push_str(v);
    }
    for (k, v) in labels.iter().filter(|(k, _)| k != "version") {
        out.push_str(&format!(",{k}={v}"));
    }
    out
}

/// Keys are small; a keyring of a few keys is a few KiB.
const MAX_KEY_BYTES: u64 = 1 << 20;

/// A public key downloaded from `url` (`rkt trust URL`); plain http only
/// with `insecure.http`.
pub fn download_key(insecure: &InsecureOptions, url: &str) -> Result<Vec<u8>, FetchError> {
    let http = Http::new(insecure);
    Ok(http.get_small(url, MAX_KEY_BYTES)?.1)
}

/// The public-key URLs `prefix`'s discovery pages offer
/// (`ac-discovery-pubkeys`), for `rkt trust --prefix=P` without key files.
pub fn discover_key_urls(
    insecure: &InsecureOptions,
    prefix: &str,
) -> Result<Vec<String>, FetchError> {
    let http = Http::new(insecure);
    Ok(discovery::discover_keys(&http, insecure.http, prefix)?)
}

/// The downloaded image must be the one asked for: its manifest's name,
/// and each requested label (the host's os and arch included).
fn check_identity(
    image: &mut File,
    url: &str,
    wanted: &str,
    labels: &[(String, String)],
) -> Result<(), FetchError> {
    let manifest = peek_manifest(&*image)?;
    image
        .seek(SeekFrom::Start(0))
        .map_err(StoreError::io("reading the image"))?;
    let wanted_full = std::iter::once(wanted.to_string())
        .chain(labels.iter().map(|(k, v)| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(",");
    let found = std::iter::once(manifest.name.as_str().to_string())
        .chain(
            manifest
                .labels
                .iter()
                .map(|l| format!("{}={}", l.name.as_str(), l.value)),
        )
        .collect::<Vec<_>>()
        .join(",");
    let matches = manifest.name.as_str() == wanted
        && labels
            .iter()
            .all(|(k, v)| manifest.label(k) == Some(v.as_str()));
    if matches {
        Ok(())
    } else {
        Err(FetchError::WrongImage {
            url: url.to_string(),
            wanted: wanted_full,
            found,
        })
    }
}

/// The largest image body taken from a server (one that sends endless
/// bytes stops here rather than at a full disk).
const MAX_IMAGE_BYTES: u64 = 32 << 30;
/// Signatures are a few hundred bytes; keyrings in them are refused.
const MAX_SIGNATURE_BYTES: u64 = 1 << 20;

enum SignatureSource {
    Skip,
    File(PathBuf),
    Remote,
}

enum Signature {
    File(PathBuf),
    Bytes(Vec<u8>),
    /// The server answered 202: ask again after the image.
    Deferred,
}

/// `<url minus .aci>.aci.asc`, where rkt looks for an image's signature.
pub fn asc_url(url: &str) -> String {
    format!("{}.aci.asc", url.strip_suffix(".aci").unwrap_or(url))
}

/// `<file minus .aci>.aci.asc`, where rkt looks for a file's signature.
pub fn asc_path(path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    PathBuf::from(format!("{}.aci.asc", s.strip_suffix(".aci").unwrap_or(&s)))
}

/// Adds the host's `os` and `arch` labels unless given, like rkt does for names.
pub fn with_host_labels(labels: &[(String, String)]) -> Vec<(String, String)> {
    let (os, arch) = abi::schema::host_os_arch();
    let mut out = labels.to_vec();
    for (k, v) in [("os", os), ("arch", arch)] {
        if !out.iter().any(|(n, _)| n == k) {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests;
