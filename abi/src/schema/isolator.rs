//! Isolators: `{name, value}` pairs whose value's shape depends on the name.

use serde::{Deserialize, Serialize};

use super::AcIdentifier;

/// An isolator as it appears in a manifest. The value is kept as raw JSON so
/// that unknown isolators round-trip; typed views are derived from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isolator {
    pub name: AcIdentifier,
    pub value: serde_json::Value,
}
