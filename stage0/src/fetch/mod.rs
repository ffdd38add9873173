//! Image fetching (local files and the store now; HTTPS, discovery and docker later).

mod image_ref;

use std::fmt;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::InsecureOptions;
use crate::store::{dep_list, peek_manifest, ImageKey, ImportOptions, Store, StoreError};
use crate::trust::{verify_detached, Keystore, TrustError};

pub use image_ref::{parse_image_ref, ImageRef};

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
    #[error("{0:?}: --pull-policy=update looks the name up remotely (appc discovery), which is not available yet; use --pull-policy=new to take it from the store")]
    DiscoveryUnavailable(String),
    #[error("{0:?}: fetching images over http(s) is not supported yet; download the ACI and fetch the file")]
    UrlUnsupported(String),
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
        }
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
    /// the store (looked up by image ID, else by name and labels).
    pub fn fetch_with_deps(
        &self,
        image: &str,
        signature: Option<&Path>,
    ) -> Result<ImageKey, FetchError> {
        let key = self.fetch(image, signature)?;
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
            ImageRef::Url(u) => Err(FetchError::UrlUnsupported(u.clone())),
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
        self.verify(&mut copy, &sig)?;
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

    /// Checks `sig` over `image` (left at its start) against the keys
    /// trusted for the name the image's manifest gives.
    fn verify(&self, image: &mut File, sig: &Path) -> Result<(), FetchError> {
        let signature = std::fs::read(sig).map_err(|source| FetchError::ReadSignature {
            path: sig.to_path_buf(),
            source,
        })?;
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
        let signer = verify_detached(
            &name,
            &keyring,
            &*image,
            &signature,
            &sig.display().to_string(),
        )?;
        rewind(image)?;
        eprintln!("image: signature verified:");
        for id in &signer.identities {
            eprintln!("  {id}");
        }
        Ok(())
    }

    /// Names come from the store; remote discovery is not implemented yet, so
    /// every policy ends there.
    fn fetch_name(
        &self,
        name: &str,
        labels: &[(String, String)],
        shown: &str,
    ) -> Result<ImageKey, FetchError> {
        if self.pull_policy == PullPolicy::Update {
            return Err(FetchError::DiscoveryUnavailable(shown.to_string()));
        }
        let labels = with_host_labels(labels);
        match self.store.find_by_name(name, &labels)? {
            Some(key) => {
                self.diag(&format!(
                    "using image from local store for image name {shown}"
                ));
                Ok(key)
            }
            None => Err(FetchError::NotFound(shown.to_string())),
        }
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
