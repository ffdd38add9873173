//! Checking a detached signature over an image file against the keyring
//! trusted for the image's name.

use std::io::Read;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::parse::stream::{
    DetachedVerifierBuilder, GoodChecksum, MessageLayer, MessageStructure, VerificationError,
    VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::types::RevocationStatus;
use openpgp::{Cert, KeyHandle};

use super::keystore::{fingerprint_of, unusable_now};
use super::{Keyring, TrustError};

/// Who made a good signature.
#[derive(Debug, Clone)]
pub struct Signer {
    pub fingerprint: String,
    /// The key's user IDs (`Name <email>`).
    pub identities: Vec<String>,
}

/// Checks `signature` (armored or binary) over `data` for image `name`: it
/// must be made by a key in `keyring` that is valid now (not expired, not
/// revoked, its signing subkey bound), and match the data.
pub fn verify_detached(
    name: &str,
    keyring: &Keyring,
    data: impl Read + Send + Sync,
    signature: &[u8],
    signature_what: &str,
) -> Result<Signer, TrustError> {
    let policy = StandardPolicy::new();
    let helper = Helper {
        name,
        certs: keyring.keys().iter().map(|k| k.cert.clone()).collect(),
        outcome: None,
    };
    let no_signature = |why: String| TrustError::NoSignature {
        name: name.to_string(),
        what: signature_what.to_string(),
        why,
    };
    let mut verifier = DetachedVerifierBuilder::from_bytes(signature)
        .map_err(|e| TrustError::BadSignatureFile {
            what: signature_what.to_string(),
            why: e.to_string(),
        })?
        .with_policy(&policy, None, helper)
        .map_err(|e| no_signature(e.to_string()))?;
    let verified = verifier.verify_reader(data);
    let helper = verifier.into_helper();
    match (helper.outcome, verified) {
        (Some(Ok(signer)), Ok(())) => Ok(signer),
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(_)), Err(e)) | (None, Err(e)) => Err(no_signature(e.to_string())),
        (None, Ok(())) => Err(no_signature("the file holds no signature".into())),
    }
}

struct Helper<'a> {
    name: &'a str,
    certs: Vec<Cert>,
    /// The first good signature, else the most telling failure.
    outcome: Option<Result<Signer, TrustError>>,
}

impl Helper<'_> {
    fn untrusted(&self, fingerprint: String) -> TrustError {
        TrustError::Untrusted {
            name: self.name.to_string(),
            fingerprint,
        }
    }

    fn not_valid(&self, fingerprint: String, why: String) -> TrustError {
        TrustError::KeyNotValid {
            name: self.name.to_string(),
            fingerprint,
            why,
        }
    }

    /// A good checksum counts only if the key is usable now: verification
    /// itself judges the key as of the signature's creation, which would
    /// accept a key that has since expired or been revoked.
    fn judge_now(&self, good: &GoodChecksum) -> Result<Signer, TrustError> {
        let cert = good.ka.cert();
        let fingerprint = fingerprint_of(cert);
        // The certificate as `rkt trust` judges it, then its signing key.
        if let Some(why) = unusable_now(cert) {
            return Err(self.not_valid(fingerprint, why));
        }
        let policy = StandardPolicy::new();
        let valid = cert
            .with_policy(&policy, None)
            .map_err(|e| self.not_valid(fingerprint.clone(), e.to_string()))?;
        let key = valid
            .keys()
            .key_handle(good.ka.key().key_handle())
            .next()
            .ok_or_else(|| {
                self.not_valid(
                    fingerprint.clone(),
                    "its signing subkey is no longer bound to it".into(),
                )
            })?;
        if let RevocationStatus::Revoked(_) = key.revocation_status() {
            return Err(self.not_valid(fingerprint, "its signing subkey is revoked".into()));
        }
        key.alive().map_err(|e| {
            self.not_valid(
                fingerprint.clone(),
                format!("its signing subkey has expired or is not valid yet ({e})"),
            )
        })?;
        let identities = valid
            .userids()
            .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned())
            .collect();
        Ok(Signer {
            fingerprint,
            identities,
        })
    }

    fn judge_failure(&self, error: &VerificationError) -> TrustError {
        match error {
            VerificationError::MissingKey { sig } => {
                let issuer = sig
                    .issuer_fingerprints()
                    .next()
                    .map(|f| f.to_hex().to_ascii_lowercase())
                    .or_else(|| {
                        sig.issuers()
                            .next()
                            .map(|k| format!("with ID {}", k.to_hex().to_ascii_lowercase()))
                    })
                    .unwrap_or_else(|| "(unnamed in the signature)".into());
                self.untrusted(issuer)
            }
            VerificationError::UnboundKey { cert, error, .. } => {
                self.not_valid(fingerprint_of(cert), error.to_string())
            }
            VerificationError::BadKey { ka, error, .. } => {
                self.not_valid(fingerprint_of(ka.cert()), error.to_string())
            }
            VerificationError::BadSignature { ka, error, .. } => TrustError::BadSignature {
                name: self.name.to_string(),
                fingerprint: fingerprint_of(ka.cert()),
                why: error.to_string(),
            },
            other => TrustError::NoSignature {
                name: self.name.to_string(),
                what: "the signature".into(),
                why: other.to_string(),
            },
        }
    }
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.certs.clone())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            let MessageLayer::SignatureGroup { results } = layer else {
                continue;
            };
            for result in results {
                let judged = match &result {
                    Ok(good) => self.judge_now(good),
                    Err(e) => Err(self.judge_failure(e)),
                };
                match judged {
                    Ok(signer) => {
                        self.outcome = Some(Ok(signer));
                        return Ok(());
                    }
                    // A bad signature or a dead key says more than an
                    // unknown one; keep the first of the most telling kind.
                    Err(e) => {
                        let better = match (&self.outcome, &e) {
                            (None, _) => true,
                            (
                                Some(Err(TrustError::Untrusted { .. })),
                                TrustError::Untrusted { .. },
                            ) => false,
                            (Some(Err(TrustError::Untrusted { .. })), _) => true,
                            _ => false,
                        };
                        if better {
                            self.outcome = Some(Err(e));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
