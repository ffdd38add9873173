//! Pod identity, rkt's scheme: one random 64-byte key per service start
//! (signatures do not outlive it); a signature is the standard, padded
//! base64 of HMAC-SHA512(key, the signing pod's 16 UUID bytes ‖ content).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha512;

type HmacSha512 = Hmac<Sha512>;

pub struct Signer {
    key: [u8; 64],
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("signature field missing or corrupt: not standard base64")]
pub struct CorruptSignature;

impl Signer {
    /// A signer with a fresh random key.
    pub fn random() -> Self {
        let mut key = [0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Signer { key }
    }

    fn mac(&self, uuid: &[u8; 16], content: &[u8]) -> HmacSha512 {
        let mut mac = HmacSha512::new_from_slice(&self.key).expect("HMAC takes keys of any size");
        mac.update(uuid);
        mac.update(content);
        mac
    }

    pub fn sign(&self, uuid: &[u8; 16], content: &[u8]) -> String {
        STANDARD.encode(self.mac(uuid, content).finalize().into_bytes())
    }

    /// Whether `signature` is `uuid`'s signature of `content` (compared in
    /// constant time).
    pub fn verify(
        &self,
        uuid: &[u8; 16],
        content: &[u8],
        signature: &str,
    ) -> Result<bool, CorruptSignature> {
        let raw = STANDARD.decode(signature).map_err(|_| CorruptSignature)?;
        Ok(self.mac(uuid, content).verify_slice(&raw).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let s = Signer { key: [7; 64] };
        let a = [1u8; 16];
        let sig = s.sign(&a, b"hello");
        assert_eq!(sig.len(), 88, "64 bytes, padded base64");
        assert_eq!(s.verify(&a, b"hello", &sig), Ok(true));
        assert_eq!(s.verify(&a, b"hellO", &sig), Ok(false));
        assert_eq!(
            s.verify(&[2u8; 16], b"hello", &sig),
            Ok(false),
            "another pod"
        );
        assert_eq!(
            Signer { key: [8; 64] }.verify(&a, b"hello", &sig),
            Ok(false)
        );
        assert_eq!(s.verify(&a, b"hello", "***"), Err(CorruptSignature));
        // RFC 4231-style cross-check: HMAC-SHA512 with key "key" of the
        // pangram, computed by hand from the standard.
        let mut mac = HmacSha512::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(hex.starts_with("b42af09057bac1e2d41708e48a902e09b5ff7f12ab428a4fe86653c73dd248fb"));
    }
}
