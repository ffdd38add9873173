//! Go `encoding/json` compatibility for manifests written by actool, rkt or
//! hand: object keys match the documented field names case-insensitively
//! (the appc spec's own example writes `supplementaryGids` for
//! `supplementaryGIDs`) and `null` means "unset" for every field.
//!
//! Rather than aliasing every possible casing in serde attributes, the
//! manifest parsers rewrite the JSON tree once before decoding it: keys that
//! case-fold to a documented field name get that name, and null-valued keys
//! are dropped (Go leaves the field at its zero value, which is what a missing
//! key gives us through `#[serde(default)]`). Free-form subtrees (isolator
//! values, `userAnnotations`, `userLabels`) are left alone.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Parses untrusted manifest bytes: size limit, JSON, Go key folding.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, super::SchemaError> {
    use super::SchemaError;
    if bytes.len() > super::MAX_MANIFEST_SIZE {
        return Err(SchemaError::Invalid(format!(
            "{what} is {} bytes, more than the {} byte limit; refusing it",
            bytes.len(),
            super::MAX_MANIFEST_SIZE
        )));
    }
    let mut value: Value = serde_json::from_slice(bytes)
        .map_err(|e| SchemaError::Invalid(format!("{what} is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(SchemaError::Invalid(format!(
            "{what} must be a JSON object"
        )));
    }
    normalize(&mut value);
    serde_json::from_value(value)
        .map_err(|e| SchemaError::Invalid(format!("{what} does not match the appc schema: {e}")))
}

/// `deserialize_with` helper: JSON `null` decodes like a missing field (Go
/// writes `null` for unset slices, e.g. pod manifest `volumes`).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Every JSON key of the image and pod manifest schemas. No two differ only
/// by case, so case-folding is unambiguous.
const KEYS: &[&str] = &[
    "acKind",
    "acVersion",
    "name",
    "labels",
    "app",
    "dependencies",
    "pathWhitelist",
    "annotations",
    "exec",
    "user",
    "group",
    "supplementaryGIDs",
    "eventHandlers",
    "workingDirectory",
    "environment",
    "isolators",
    "mountPoints",
    "ports",
    "userAnnotations",
    "userLabels",
    "value",
    "path",
    "readOnly",
    "protocol",
    "port",
    "count",
    "socketActivated",
    "imageName",
    "imageID",
    "size",
    "apps",
    "volumes",
    "image",
    "readOnlyRootFS",
    "mounts",
    "id",
    "volume",
    "appVolume",
    "kind",
    "source",
    "recursive",
    "mode",
    "uid",
    "gid",
    "hostPort",
    "hostIP",
    "podPort",
];

/// Keys whose values are free-form and must not be rewritten.
const OPAQUE: &[&str] = &["value", "userAnnotations", "userLabels"];

fn canonical(key: &str) -> Option<&'static str> {
    KEYS.iter().copied().find(|k| k.eq_ignore_ascii_case(key))
}

/// Rewrites `v` in place as described in the module docs.
pub(crate) fn normalize(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let old = std::mem::take(map);
            let mut out = Map::new();
            // An exact spelling wins over a case-folded one when both occur
            // (serde_json's map does not keep document order, so "last key
            // wins" as in Go cannot be reproduced).
            let (exact, folded): (Vec<_>, Vec<_>) = old
                .into_iter()
                .partition(|(k, _)| canonical(k) == Some(k.as_str()));
            for (key, mut value) in folded.into_iter().chain(exact) {
                if value.is_null() {
                    continue;
                }
                let key = canonical(&key).map_or(key, str::to_string);
                if !OPAQUE.contains(&key.as_str()) {
                    normalize(&mut value);
                }
                out.insert(key, value);
            }
            *map = out;
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn folds_keys_and_drops_nulls() {
        let mut v = json!({
            "ACKIND": "PodManifest",
            "volumes": null,
            "apps": [{"Name": "a", "ReadOnlyRootFs": true, "image": {"ID": "sha512-1"}}],
            "userLabels": {"Keep-Me": "x"},
            "isolators": [{"NAME": "x/y", "value": {"Limit": null}}],
            "unknownKey": {"NAME": 1}
        });
        normalize(&mut v);
        assert_eq!(
            v,
            json!({
                "acKind": "PodManifest",
                "apps": [{"name": "a", "readOnlyRootFS": true, "image": {"id": "sha512-1"}}],
                "userLabels": {"Keep-Me": "x"},
                "isolators": [{"name": "x/y", "value": {"Limit": null}}],
                "unknownKey": {"name": 1}
            })
        );
    }

    #[test]
    fn exact_spelling_wins() {
        let mut v = json!({"NAME": "b", "name": "a"});
        normalize(&mut v);
        assert_eq!(v, json!({"name": "a"}));
    }
}
