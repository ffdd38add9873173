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

fn is_ac_identifier(s: &str) -> bool {
    const SEPARATORS: &[char] = &['-', '.', '_', '~', '/'];
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
            && !s.ends_with('-');
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
            Some(("sha512", hex)) if !hex.is_empty() && !hex.contains('-') => Ok(Self(s)),
            _ => Err(SchemaError::ImageId(s)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
