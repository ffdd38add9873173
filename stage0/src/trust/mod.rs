//! Image signatures and the keys trusted to make them (rkt's keystore):
//! armored detached OpenPGP signatures over ACI files, checked against the
//! keys trusted for the image name's prefix (or as root keys) in the system
//! and local configuration directories.

mod keystore;
mod verify;

use std::path::PathBuf;

use thiserror::Error;

pub use keystore::{fingerprint_of, parse_key, unusable_now, Keyring, Keystore, Scope, TrustedKey};
pub use verify::{verify_detached, Signer};

#[derive(Debug, Error)]
pub enum TrustError {
    #[error("invalid prefix {0:?}: {1}")]
    BadPrefix(String, String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not an OpenPGP public key: {why}; give an armored public key (gpg --armor --export KEYID)")]
    NotAKey { what: String, why: String },
    #[error("trusted key file {path} holds key {found}; a key file is named after its key's lowercase fingerprint")]
    FingerprintMismatch { path: PathBuf, found: String },
    #[error("signature file {what}: {why}; it must be an OpenPGP detached signature (gpg --armor --detach-sign)")]
    BadSignatureFile { what: String, why: String },
    #[error("image {name:?} is signed by key {fingerprint}, which is not trusted for prefix {name:?}; trust it with `rkt trust --prefix={name} KEYFILE` (or for a parent prefix, or as a root key with --root)")]
    Untrusted { name: String, fingerprint: String },
    #[error("image {name:?}: the signature by key {fingerprint} does not match the image (tampered image, or a signature of another file): {why}")]
    BadSignature {
        name: String,
        fingerprint: String,
        why: String,
    },
    #[error("image {name:?}: the signing key {fingerprint} is trusted for this name but cannot vouch for it: {why}; get a current key from the image's publisher and trust it")]
    KeyNotValid {
        name: String,
        fingerprint: String,
        why: String,
    },
    #[error("image {name:?}: no valid signature in {what}: {why}")]
    NoSignature {
        name: String,
        what: String,
        why: String,
    },
}

impl TrustError {
    /// The error about image `name`, for a check made before the name was
    /// known.
    pub fn for_name(self, name: &str) -> TrustError {
        let name = name.to_string();
        match self {
            TrustError::Untrusted { fingerprint, .. } => {
                TrustError::Untrusted { name, fingerprint }
            }
            TrustError::BadSignature {
                fingerprint, why, ..
            } => TrustError::BadSignature {
                name,
                fingerprint,
                why,
            },
            TrustError::KeyNotValid {
                fingerprint, why, ..
            } => TrustError::KeyNotValid {
                name,
                fingerprint,
                why,
            },
            TrustError::NoSignature { what, why, .. } => {
                TrustError::NoSignature { name, what, why }
            }
            other => other,
        }
    }
}

/// `AAAA BBBB …` as rkt and gpg print fingerprints for review.
pub fn spaced_fingerprint(hex: &str) -> String {
    let upper = hex.to_ascii_uppercase();
    let groups: Vec<&str> = upper
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let half = groups.len() / 2;
    if groups.len() == 10 {
        format!("{}  {}", groups[..half].join(" "), groups[half..].join(" "))
    } else {
        groups.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_print_like_gpg() {
        assert_eq!(
            spaced_fingerprint("8b86de38890ddb7291867b025210bd8888182190"),
            "8B86 DE38 890D DB72 9186  7B02 5210 BD88 8818 2190"
        );
    }
}
