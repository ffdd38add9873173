//! Image fetching: from the store, local files, http(s) URLs (cached by
//! ETag and max-age, resumed when broken off), appc names through
//! discovery, and Docker/OCI images (`oci`); signatures checked against the
//! keystore as the image is imported.

mod discovery;
mod http;
mod image_ref;
mod oci;
mod progress;
mod resume;
mod tee;

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

use abi::schema::ImageManifest;

use crate::config::InsecureOptions;
use crate::store::{dep_list, ImageKey, ImportOptions, Remote, Store, StoreError};
use crate::trust::{verify_detached, Keystore, TrustError};

pub use discovery::DiscoveryError;
pub use http::{AuthHeaders, HttpError};
pub use image_ref::{parse_image_ref, ImageRef};
pub use oci::OciError;

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
    #[error("{0}: signature verification for docker and OCI images is not supported; pass --insecure-options=image to fetch it unverified")]
    ImageUnsigned(String),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("the download of {url} broke off after {have} bytes ({why}); run the fetch again to resume it")]
    DownloadBroken { url: String, have: u64, why: String },
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
    #[error("the signature check crashed; the image was not stored")]
    VerifierPanicked,
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
    /// `Authorization` per host, from `auth.d`.
    auth: AuthHeaders,
    /// `dockerAuth` entries of `auth.d`, by registry.
    docker_auth: Vec<(String, serde_json::Value)>,
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
            auth: AuthHeaders::default(),
            docker_auth: Vec::new(),
        }
    }

    /// Logs in to registries with these `dockerAuth` entries.
    pub fn with_docker_auth(mut self, entries: Vec<(String, serde_json::Value)>) -> Self {
        self.docker_auth = entries;
        self
    }

    /// Sends these `Authorization` headers to their hosts.
    pub fn with_auth(mut self, auth: AuthHeaders) -> Self {
        self.auth = auth;
        self
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
            ImageRef::Docker(d) => self.fetch_docker(d),
            ImageRef::OciLayout { dir, tag } => self.fetch_oci_layout(dir, tag.as_deref(), shown),
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
        let signature = read_signature(&sig)?;
        self.import_checked(
            file,
            Some((signature, sig.display().to_string())),
            None,
            &abs.display().to_string(),
        )
    }

    /// The signature file to check beside a local image, or none with
    /// `--insecure-options=image`.
    fn signature_of(
        &self,
        path: &Path,
        signature: Option<&Path>,
    ) -> Result<Option<PathBuf>, FetchError> {
        match self.signature_source(signature)? {
            SignatureSource::Skip => Ok(None),
            SignatureSource::File(sig) => Ok(Some(sig)),
            // A file's default signature sits beside it.
            SignatureSource::Default => {
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

    /// Imports `image` if it is what `expect` (URL, name, labels) asked for
    /// and `signature` (bytes, and where they came from) is good for it.
    /// The image is read once: the signature is checked, on a thread of its
    /// own, over a copy of the bytes the import reads, against every
    /// trusted key; the manifest then names the image, and its signer must
    /// be trusted for that name. Nothing is stored until both agree.
    fn import_checked(
        &self,
        image: impl Read,
        signature: Option<(Vec<u8>, String)>,
        expect: Option<Expected<'_>>,
        shown: &str,
    ) -> Result<ImageKey, FetchError> {
        let opts = ImportOptions::default();
        let identity = |m: &ImageManifest| match &expect {
            Some(e) => check_identity(m, e),
            None => Ok(()),
        };
        let Some((signature, what)) = signature else {
            return self.store.import_gated(image, &opts, identity);
        };
        let any_trusted = match &self.keystore {
            Some(ks) => ks.all_keys()?,
            None => Default::default(),
        };
        let (image, closer, copy) = tee::tee(image);
        std::thread::scope(|s| {
            let mut verifier = Some(
                s.spawn(move || verify_detached(shown, &any_trusted, copy, &signature, &what)),
            );
            let imported: Result<ImageKey, FetchError> =
                self.store.import_gated(image, &opts, |m| {
                    identity(m)?;
                    let name = m.name.as_str();
                    closer.close();
                    let signer = verifier
                        .take()
                        .expect("the gate runs once")
                        .join()
                        .map_err(|_| FetchError::VerifierPanicked)?
                        .map_err(|e| e.for_name(name))?;
                    let trusted = match &self.keystore {
                        Some(ks) => ks.keyring(name)?,
                        None => Default::default(),
                    };
                    if !trusted.contains(&signer.fingerprint) {
                        return Err(TrustError::Untrusted {
                            name: name.to_string(),
                            fingerprint: signer.fingerprint,
                        }
                        .into());
                    }
                    eprintln!("image: signature verified:");
                    for id in &signer.identities {
                        eprintln!("  {id}");
                    }
                    Ok(())
                });
            // An image that failed to import before its signature was
            // looked at: a bad signature is the more telling news (a
            // tampered image is often not a valid archive either).
            match (imported, verifier.take().map(|v| v.join())) {
                (Err(e), _) if closer.input_failed() => Err(e),
                (Err(_), Some(Ok(Err(bad_signature)))) => Err(bad_signature.into()),
                (result, _) => result,
            }
        })
    }

    /// An image at an http(s) URL: from the store when the pull policy
    /// and the cache headers recorded for the URL allow it, else
    /// downloaded (conditionally, with the recorded ETag), its signature
    /// (`<url minus .aci>.aci.asc`) checked, and imported.
    fn fetch_url(&self, url: &str, signature: Option<&Path>) -> Result<ImageKey, FetchError> {
        let http = Http::new(&self.insecure, &self.auth);
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
        if let Some(key) = self.stored_copy(url, cached.as_ref())? {
            return Ok(key);
        }
        http.check_scheme(url)?;
        let sig_url = sig_url.to_string();
        // rkt's order: the signature first; a 202 defers it until after
        // the image (servers that sign on demand).
        let signature = match self.signature_source(signature)? {
            SignatureSource::Skip => None,
            SignatureSource::File(sig) => Some(Signature::File(sig)),
            SignatureSource::Default => Some(self.get_signature(http, url, &sig_url)?),
        };
        self.diag(&format!("fetching image from {url}"));
        let stored_etag = cached.as_ref().and_then(|c| c.etag.as_deref());
        let download = match resume::start(self.store, http, url, stored_etag, MAX_IMAGE_BYTES)? {
            resume::Started::Unchanged { max_age } => {
                let mut c = cached.expect("a 304 answers a stored version's ETag");
                self.diag(&format!("{url} is unchanged; using the stored image"));
                c.downloaded = now;
                c.max_age = max_age;
                self.store.set_remote(url, Some(&sig_url), &c)?;
                return Ok(c.key);
            }
            resume::Started::Body(download) => download,
        };
        let resume::Download {
            etag,
            max_age,
            total,
            reader,
            kept,
        } = download;
        let body = progress::Progress::wrap(reader, "Downloading ACI", total);
        let too_large = |e: FetchError| match e {
            FetchError::Store(StoreError::Io { source, .. }) if http::exceeded_limit(&source) => {
                FetchError::Http(HttpError::TooLarge {
                    url: url.to_string(),
                    limit: MAX_IMAGE_BYTES,
                })
            }
            other => other,
        };
        let expect = expect.map(|(name, labels)| Expected { url, name, labels });
        let imported = (|| match signature {
            // Signed by a server that signs on demand: the image is kept
            // (privately) until the signature is there.
            Some(Signature::Deferred) => {
                let copy = self
                    .store
                    .private_copy(body)
                    .map_err(|e| too_large(e.into()))?;
                let signature = match self.get_signature(http, url, &sig_url)? {
                    Signature::Bytes(bytes) => bytes,
                    _ => {
                        return Err(FetchError::UrlUnsigned {
                            url: url.to_string(),
                            sig_url: sig_url.clone(),
                            why: "still deferred (202) after the image was downloaded".into(),
                        })
                    }
                };
                self.import_checked(copy, Some((signature, sig_url.clone())), expect, url)
            }
            signature => {
                let signature = match signature {
                    Some(Signature::File(path)) => {
                        Some((read_signature(&path)?, path.display().to_string()))
                    }
                    Some(Signature::Bytes(bytes)) => Some((bytes, sig_url.clone())),
                    _ => None,
                };
                self.import_checked(body, signature, expect, url)
                    .map_err(too_large)
            }
        })();
        if let Some(broken_off) = kept.and_then(|k| k.finish(url, &imported)) {
            return Err(broken_off);
        }
        let key = imported?;
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

    /// The stored image of `url` (last fetched as `cached`), when the pull
    /// policy allows it: `new` and `never` take any, `update` one still
    /// fresh by its Cache-Control max-age. `never` without one is an error.
    fn stored_copy(
        &self,
        url: &str,
        cached: Option<&Remote>,
    ) -> Result<Option<ImageKey>, FetchError> {
        match (cached, self.pull_policy) {
            (Some(c), PullPolicy::New | PullPolicy::Never) => {
                self.diag(&format!("using image from local store for {url}"));
                Ok(Some(c.key.clone()))
            }
            (Some(c), PullPolicy::Update) if c.is_fresh(std::time::SystemTime::now()) => {
                self.diag(&format!(
                    "using image from local store for {url} (fresh for {} s)",
                    c.max_age
                ));
                Ok(Some(c.key.clone()))
            }
            (None, PullPolicy::Never) => Err(FetchError::NotCached(url.to_string())),
            _ => Ok(None),
        }
    }

    /// Where the signature comes from, by the flags: none, `--signature`,
    /// or the image's own (beside the file, or at `<url>.aci.asc`).
    fn signature_source(&self, signature: Option<&Path>) -> Result<SignatureSource, FetchError> {
        if self.insecure.image {
            eprintln!("image: warning: image signature verification has been disabled");
            return Ok(SignatureSource::Skip);
        }
        match signature {
            Some(s) if !s.exists() => Err(FetchError::SignatureMissing(s.to_path_buf())),
            Some(s) => Ok(SignatureSource::File(s.to_path_buf())),
            None => Ok(SignatureSource::Default),
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

    /// A Docker or OCI image from a registry (`docker://`, unsigned: only
    /// with `--insecure-options=image`, as in rkt). The store's copy is
    /// used per the pull policy; `update` asks the registry for the
    /// manifest and downloads nothing when its digest is the stored one.
    fn fetch_docker(&self, reference: &str) -> Result<ImageKey, FetchError> {
        let r = oci::DockerRef::parse(reference)?;
        if !self.insecure.image {
            return Err(FetchError::ImageUnsigned(reference.to_string()));
        }
        let url = r.canonical();
        let cached = self.store.remote(&url)?;
        if let Some(key) = self.stored_copy(&url, cached.as_ref())? {
            return Ok(key);
        }
        let http = Http::new(&self.insecure, &AuthHeaders::default());
        let creds = oci::Credentials::for_registry(&self.docker_auth, &r.registry)?;
        let registry = oci::Registry::new(&http, &r, creds, self.insecure.http);
        let (manifest, digest) = oci::resolve_registry(&registry, &r)?;
        let now = std::time::SystemTime::now();
        let key = match cached.filter(|c| c.etag.as_deref() == Some(digest.as_str())) {
            Some(c) => {
                self.diag(&format!(
                    "{url} is unchanged ({digest}); using the stored image"
                ));
                c.key
            }
            None => {
                self.diag(&format!("fetching {url} ({digest})"));
                let origin = oci::registry_origin(&r, &digest);
                oci::import(
                    self.store,
                    &oci::Blobs::Registry(&registry),
                    &manifest,
                    &origin,
                )?
            }
        };
        self.store.set_remote(
            &url,
            None,
            &Remote {
                key: key.clone(),
                etag: Some(digest),
                max_age: 0,
                downloaded: now,
            },
        )?;
        Ok(key)
    }

    /// An image of an OCI layout directory: always imported, like a file
    /// (unsigned: only with `--insecure-options=image`).
    fn fetch_oci_layout(
        &self,
        dir: &Path,
        tag: Option<&str>,
        shown: &str,
    ) -> Result<ImageKey, FetchError> {
        if !self.insecure.image {
            return Err(FetchError::ImageUnsigned(shown.to_string()));
        }
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let layout = oci::Layout::open(&dir)?;
        let (manifest, digest, tag) = layout.resolve(tag)?;
        self.diag(&format!(
            "using image {digest} of OCI layout {}",
            dir.display()
        ));
        let origin = oci::layout_origin(&dir, tag, &digest);
        Ok(oci::import(
            self.store,
            &oci::Blobs::Layout(&layout),
            &manifest,
            &origin,
        )?)
    }

    /// An image by name and labels: from the store unless the pull policy
    /// is `update`, else found by appc discovery and fetched from the first
    /// endpoint that serves it.
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
        let http = Http::new(&self.insecure, &self.auth);
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
    let http = Http::new(insecure, &AuthHeaders::default());
    Ok(http.get_small(url, MAX_KEY_BYTES)?.1)
}

/// The public-key URLs `prefix`'s discovery pages offer
/// (`ac-discovery-pubkeys`), for `rkt trust --prefix=P` without key files.
pub fn discover_key_urls(
    insecure: &InsecureOptions,
    prefix: &str,
) -> Result<Vec<String>, FetchError> {
    let http = Http::new(insecure, &AuthHeaders::default());
    Ok(discovery::discover_keys(&http, insecure.http, prefix)?)
}

/// What discovery asked for: the image at `url` must have this name and
/// these labels.
struct Expected<'a> {
    url: &'a str,
    name: &'a str,
    labels: &'a [(String, String)],
}

/// The downloaded image must be the one asked for: its manifest's name,
/// and each requested label (the host's os and arch included).
fn check_identity(manifest: &ImageManifest, expected: &Expected<'_>) -> Result<(), FetchError> {
    let matches = manifest.name.as_str() == expected.name
        && expected
            .labels
            .iter()
            .all(|(k, v)| manifest.label(k) == Some(v.as_str()));
    if matches {
        return Ok(());
    }
    let wanted = std::iter::once(expected.name.to_string())
        .chain(expected.labels.iter().map(|(k, v)| format!("{k}={v}")))
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
    Err(FetchError::WrongImage {
        url: expected.url.to_string(),
        wanted,
        found,
    })
}

fn read_signature(path: &Path) -> Result<Vec<u8>, FetchError> {
    std::fs::read(path).map_err(|source| FetchError::ReadSignature {
        path: path.to_path_buf(),
        source,
    })
}

/// The largest image body taken from a server (one that sends endless
/// bytes stops here rather than at a full disk).
const MAX_IMAGE_BYTES: u64 = 32 << 30;
/// Signatures are a few hundred bytes; keyrings in them are refused.
const MAX_SIGNATURE_BYTES: u64 = 1 << 20;

enum SignatureSource {
    Skip,
    File(PathBuf),
    Default,
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
