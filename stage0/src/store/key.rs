//! Image keys (`sha512-` + 64 hex, rkt's CAS key) and tree-store ids.

use std::fmt;

use sha2::{Digest, Sha512};

/// Length of a full key: `sha512-` + 64 hex (half of the SHA-512 digest).
pub const KEY_LEN: usize = PREFIX.len() + 64;
/// Shortest accepted user prefix: `sha512-` + 2 hex.
pub const MIN_PREFIX_LEN: usize = PREFIX.len() + 2;

const PREFIX: &str = "sha512-";

/// rkt's store key of an image: `sha512-` and the first 64 hex digits of the
/// SHA-512 of the uncompressed ACI tar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageKey(String);

impl ImageKey {
    /// Key from a finished SHA-512 digest (rkt's `hashToKey`).
    pub fn from_digest(digest: &[u8]) -> Self {
        let hex = to_hex(digest);
        ImageKey(format!("{PREFIX}{}", &hex[..64.min(hex.len())]))
    }

    /// Accepts a full key (or a longer `sha512-` id, truncated like rkt does).
    pub fn parse(s: &str) -> Option<Self> {
        let s = normalize_prefix(s)?;
        (s.len() == KEY_LEN).then_some(ImageKey(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 19-character form `image list` prints (`sha512-` + 12 hex).
    pub fn short(&self) -> &str {
        &self.0[..19.min(self.0.len())]
    }

    /// The 39-character form `rkt fetch` prints (appc `ShortHash`).
    pub fn fetch_short(&self) -> &str {
        &self.0[..39.min(self.0.len())]
    }

    /// The two hex digits the CAS shards by.
    pub(crate) fn shard(&self) -> &str {
        &self.0[PREFIX.len()..PREFIX.len() + 2]
    }
}

impl fmt::Display for ImageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ImageKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Validates and lowercases a user-supplied key prefix; longer ids (a full
/// 128-hex image ID) are cut to the key length like rkt does.
pub fn normalize_prefix(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let hex = lower.strip_prefix(PREFIX)?;
    if lower.len() < MIN_PREFIX_LEN || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = lower;
    out.truncate(KEY_LEN);
    Some(out)
}

/// True for strings rkt treats as image hashes (`sha512-` + at least 2 hex).
pub fn is_key_prefix(s: &str) -> bool {
    normalize_prefix(s).is_some()
}

/// Id of a rendered tree: `deps-` + key of the SHA-512 of the comma-joined keys
/// of the flattened dependency list (rkt `treestore.GetID`), so the same image
/// with differently resolved dependencies gets a different tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TreeId(String);

impl TreeId {
    pub fn from_dep_list(keys: &[ImageKey]) -> Self {
        let joined = keys
            .iter()
            .map(ImageKey::as_str)
            .collect::<Vec<_>>()
            .join(",");
        let digest = Sha512::digest(joined.as_bytes());
        TreeId(format!("deps-{}", ImageKey::from_digest(&digest)))
    }

    /// Accepts a stored id such as a pod's `treeStoreID` file; rejects anything
    /// that could escape the tree directory.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let hex = s.strip_prefix("deps-")?.strip_prefix(PREFIX)?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| TreeId(s.into()))
    }

    /// Wraps an id read back from a pod directory without checking it; store
    /// operations that delete or create refuse ids that do not [`parse`](Self::parse).
    pub fn from_string(s: String) -> Self {
        TreeId(s.trim().to_string())
    }

    /// True if the id has the `deps-sha512-<64 hex>` form.
    pub fn is_valid(&self) -> bool {
        Self::parse(&self.0).is_some()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TreeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_forms() {
        let k = ImageKey::from_digest(&Sha512::digest(b""));
        assert_eq!(k.as_str().len(), KEY_LEN);
        assert!(k.as_str().starts_with("sha512-cf83e1357eefb8bd"));
        assert_eq!(k.short().len(), 19);
        assert_eq!(k.fetch_short().len(), 39);
        assert_eq!(ImageKey::parse(k.as_str()), Some(k.clone()));
        let full = format!("{}{}", k.as_str(), "ab".repeat(32));
        assert_eq!(ImageKey::parse(&full), Some(k));
    }

    #[test]
    fn prefixes() {
        assert!(is_key_prefix("sha512-ab"));
        assert!(is_key_prefix("SHA512-AB"));
        assert!(!is_key_prefix("sha512-a"));
        assert!(!is_key_prefix("sha512-zz"));
        assert!(!is_key_prefix("example.com/app"));
    }

    #[test]
    fn tree_ids() {
        let a = ImageKey::from_digest(&Sha512::digest(b"a"));
        let b = ImageKey::from_digest(&Sha512::digest(b"b"));
        let t = TreeId::from_dep_list(&[a.clone(), b.clone()]);
        assert!(t.as_str().starts_with("deps-sha512-"));
        assert_eq!(t.as_str().len(), 5 + KEY_LEN);
        assert_ne!(t, TreeId::from_dep_list(&[b, a]));
        assert_eq!(TreeId::parse(t.as_str()), Some(t));
        assert_eq!(TreeId::parse("deps-sha512-../../etc"), None);
    }
}
