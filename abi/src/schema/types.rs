//! Small validated string types of the appc spec.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::SchemaError;

/// URL-like name used for images, labels, annotations and isolators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AcIdentifier(String);

impl AcIdentifier {
    pub fn new(s: impl Into<String>) -> Result<Self, SchemaError> {
        let s = s.into();
        if is_ac_identifier(&s) {
            Ok(Self(s))
        } else {
            Err(SchemaError::AcIdentifier(s))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What may separate the letters and digits of an AC identifier.
const SEPARATORS: &[char] = &['-', '.', '_', '~', '/'];

impl AcIdentifier {
    /// Lowercases and turns anything an identifier cannot hold (the `:` of
    /// a registry's port, say) into `_`, trimming separators at the ends
    /// (docker2aci's `SanitizeACIdentifier`).
    pub fn sanitize(s: &str) -> Result<Self, SchemaError> {
        let mapped: String = s
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() || SEPARATORS.contains(&c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Self::new(mapped.trim_matches(SEPARATORS))
    }
}

fn is_ac_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || SEPARATORS.contains(&c))
        && !s.starts_with(SEPARATORS)
        && !s.ends_with(SEPARATORS)
}

/// Short name used for apps, volumes, mount points and ports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AcName(String);

impl AcName {
    pub fn new(s: impl Into<String>) -> Result<Self, SchemaError> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
            // Go's regex `^[a-z0-9]+([-][a-z0-9]+)*$` forbids "--".
            && !s.contains("--");
        if ok {
            Ok(Self(s))
        } else {
            Err(SchemaError::AcName(s))
        }
    }

    /// Lowercases, replaces invalid characters with `-` and trims edge dashes
    /// (appc `SanitizeACName`).
    pub fn sanitize(s: &str) -> Result<Self, SchemaError> {
        let mapped: String = s
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let mut collapsed = String::with_capacity(mapped.len());
        for c in mapped.chars() {
            if c == '-' && collapsed.ends_with('-') {
                continue;
            }
            collapsed.push(c);
        }
        Self::new(collapsed.trim_matches('-'))
    }

    /// The default pod app name for an image (rkt): the last `/`-separated
    /// component of the image name, sanitised (`example.com/some-app` →
    /// `some-app`).
    pub fn from_image_name(image: &str) -> Result<Self, SchemaError> {
        Self::sanitize(image.rsplit('/').next().unwrap_or(image))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `sha512-<hex>` identifier of an image: the SHA-512 of its uncompressed tar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageId(String);

impl ImageId {
    pub const PREFIX: &'static str = "sha512-";

    pub fn new(s: impl Into<String>) -> Result<Self, SchemaError> {
        let s = s.into();
        match s.split_once('-') {
            Some(("sha512", hex))
                if !hex.is_empty()
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(Self(s))
            }
            _ => Err(SchemaError::ImageId(s)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex digest after `sha512-`.
    pub fn hex(&self) -> &str {
        &self.0[Self::PREFIX.len()..]
    }

    /// True for a complete ID (128 hex digits) rather than a prefix.
    pub fn is_full(&self) -> bool {
        self.hex().len() == 128
    }
}

macro_rules! string_newtype_impls {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = SchemaError;
            fn try_from(s: String) -> Result<Self, SchemaError> {
                Self::new(s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $t {
            type Err = SchemaError;
            fn from_str(s: &str) -> Result<Self, SchemaError> {
                Self::new(s)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
string_newtype_impls!(AcIdentifier);
string_newtype_impls!(AcName);
string_newtype_impls!(ImageId);

/// A `{name, value}` label of an image (`version`, `os`, `arch`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub name: AcIdentifier,
    pub value: String,
}

/// A `{name, value}` annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    pub name: AcIdentifier,
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["example.com/app", "coreos.com/etcd", "a", "a_b~c.d/e-f"] {
            assert!(AcIdentifier::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Example.com", "/a", "a/", "a b", "-a"] {
            assert!(AcIdentifier::new(bad).is_err(), "{bad}");
        }
        for ok in ["app", "my-app-2", "9"] {
            assert!(AcName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "App", "a--b", "-a", "a-", "a_b", "a.b"] {
            assert!(AcName::new(bad).is_err(), "{bad}");
        }
        let e = AcName::new("My_App").unwrap_err();
        assert!(
            e.to_string().contains("only a-z, 0-9 and single dashes"),
            "{e}"
        );
    }

    #[test]
    fn identifiers_are_sanitized() {
        assert_eq!(
            AcIdentifier::sanitize("127.0.0.1:5000/Team/App")
                .unwrap()
                .as_str(),
            "127.0.0.1_5000/team/app"
        );
        assert!(AcIdentifier::sanitize("::").is_err());
    }

    #[test]
    fn sanitize() {
        assert_eq!(
            AcName::from_image_name("example.com/some-app")
                .unwrap()
                .as_str(),
            "some-app"
        );
        assert_eq!(
            AcName::from_image_name("coreos.com/rkt/stage1-fly")
                .unwrap()
                .as_str(),
            "stage1-fly"
        );
        assert_eq!(
            AcName::from_image_name("busybox").unwrap().as_str(),
            "busybox"
        );
        assert_eq!(
            AcName::sanitize("My_App..v2!").unwrap().as_str(),
            "my-app-v2"
        );
        assert_eq!(
            AcName::sanitize("example.com/some-app").unwrap().as_str(),
            "example-com-some-app"
        );
        assert!(AcName::sanitize("___").is_err());
    }

    #[test]
    fn image_ids() {
        let full = format!("sha512-{}", "ab".repeat(64));
        let id = ImageId::new(full.clone()).unwrap();
        assert!(id.is_full());
        assert_eq!(id.hex().len(), 128);
        assert!(!ImageId::new("sha512-abc").unwrap().is_full());
        for bad in ["sha256-ab", "sha512-", "sha512-XYZ", "sha512-ab-cd", "ab"] {
            assert!(ImageId::new(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{full}\""));
        assert!(serde_json::from_str::<ImageId>("\"sha512-zz\"").is_err());
    }
}
