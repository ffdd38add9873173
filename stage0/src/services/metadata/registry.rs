//! The metadata service's pods, in memory as rkt kept them: registered by
//! stage0 over the unix socket, found by the token in the URL the apps
//! are given. Every answer is rendered once, at registration, so a request
//! is a map lookup and a copy.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use abi::schema::{Annotation, ImageManifest, PodManifest};
use serde_json::Value;

/// Longest token accepted: stage0 makes 32 hex digits; this leaves room
/// for other registrars without letting one fill memory.
const MAX_TOKEN_LEN: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RegistryError {
    #[error("UUID is missing or malformed: {0:?}")]
    MalformedUuid(String),
    #[error(
        "token missing or malformed: give ?token= with 1 to {MAX_TOKEN_LEN} letters and digits"
    )]
    MalformedToken,
    #[error("JSON-decoding failed: {0}")]
    BadManifest(String),
    #[error(
        "pod {0} is already registered with another token; unregister it first (DELETE /pods/{0})"
    )]
    AlreadyRegistered(String),
    #[error("token is in use by pod {0}; every pod needs its own token")]
    TokenInUse(String),
    #[error("pod {0} not found")]
    PodNotFound(String),
    #[error("app name {0:?} is not a valid AC Name")]
    BadAppName(String),
    #[error("pod {pod} has no app {app:?} in its manifest")]
    NotInPod { pod: String, app: String },
}

/// One registered app: its image manifest and the answers about it.
#[derive(Debug)]
pub struct AppEntry {
    /// The image manifest as registered (compact JSON).
    pub image_manifest: Vec<u8>,
    /// The image ID of the app in the pod manifest.
    pub image_id: String,
    /// Image annotations overridden by the pod app's (JSON list).
    pub annotations: Vec<u8>,
    merged: Vec<Annotation>,
}

impl AppEntry {
    pub fn annotation(&self, name: &str) -> Option<&str> {
        annotation(&self.merged, name)
    }
}

/// One registered pod.
#[derive(Debug, Clone)]
pub struct PodEntry {
    pub uuid: String,
    /// The UUID's 16 bytes, which the HMAC signatures cover.
    pub uuid_bytes: [u8; 16],
    manifest: PodManifest,
    /// The pod manifest as registered (compact JSON).
    pub manifest_json: Vec<u8>,
    /// Its `annotations`, as it holds them (`[]`, or `null` when absent).
    pub annotations: Vec<u8>,
    apps: HashMap<String, Arc<AppEntry>>,
}

impl PodEntry {
    pub fn annotation(&self, name: &str) -> Option<&str> {
        annotation(&self.manifest.annotations, name)
    }

    pub fn app(&self, name: &str) -> Option<&AppEntry> {
        self.apps.get(name).map(Arc::as_ref)
    }
}

fn annotation<'a>(list: &'a [Annotation], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|a| a.name.as_str() == name)
        .map(|a| a.value.as_str())
}

#[derive(Default)]
struct Maps {
    by_token: HashMap<String, Arc<PodEntry>>,
    token_of: HashMap<String, String>,
}

/// The registered pods, shared by both listeners.
#[derive(Default)]
pub struct Registry {
    maps: RwLock<Maps>,
}

/// The canonical form of `text` as a UUID and its bytes.
pub fn parse_uuid(text: &str) -> Result<(String, [u8; 16]), RegistryError> {
    let uuid = uuid::Uuid::parse_str(text)
        .ok()
        .filter(|_| text.len() == 36)
        .ok_or_else(|| RegistryError::MalformedUuid(text.to_string()))?;
    Ok((uuid.hyphenated().to_string(), *uuid.as_bytes()))
}

fn compact(body: &[u8]) -> Result<(Value, Vec<u8>), RegistryError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| RegistryError::BadManifest(e.to_string()))?;
    let bytes = serde_json::to_vec(&value).expect("a parsed JSON value serializes");
    Ok((value, bytes))
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|e| e.into_inner())
    }

    /// `PUT /pods/<uuid>?token=<token>` with the pod manifest. The same
    /// pod and token again replaces the manifest (a retried request);
    /// another token for a registered pod is refused.
    pub fn register_pod(&self, uuid: &str, token: &str, body: &[u8]) -> Result<(), RegistryError> {
        let (uuid, uuid_bytes) = parse_uuid(uuid)?;
        if token.is_empty()
            || token.len() > MAX_TOKEN_LEN
            || !token.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(RegistryError::MalformedToken);
        }
        let manifest =
            PodManifest::from_json(body).map_err(|e| RegistryError::BadManifest(e.to_string()))?;
        let (value, manifest_json) = compact(body)?;
        let annotations = serde_json::to_vec(value.get("annotations").unwrap_or(&Value::Null))
            .expect("a JSON value serializes");
        let mut maps = self.write();
        match maps.token_of.get(&uuid) {
            Some(held) if held != token => return Err(RegistryError::AlreadyRegistered(uuid)),
            _ => {}
        }
        if let Some(other) = maps.by_token.get(token).filter(|p| p.uuid != uuid) {
            return Err(RegistryError::TokenInUse(other.uuid.clone()));
        }
        // A retried registration keeps the apps registered so far that the
        // manifest still has.
        let apps = maps
            .by_token
            .get(token)
            .map(|old| {
                old.apps
                    .iter()
                    .filter(|(name, _)| manifest.app(name).is_some())
                    .map(|(name, app)| (name.clone(), app.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let entry = PodEntry {
            uuid: uuid.clone(),
            uuid_bytes,
            manifest,
            manifest_json,
            annotations,
            apps,
        };
        maps.token_of.insert(uuid, token.to_string());
        maps.by_token.insert(token.to_string(), Arc::new(entry));
        Ok(())
    }

    /// `PUT /pods/<uuid>/<app>` with the app's image manifest.
    pub fn register_app(&self, uuid: &str, app: &str, body: &[u8]) -> Result<(), RegistryError> {
        let (uuid, _) = parse_uuid(uuid)?;
        if abi::schema::AcName::new(app).is_err() {
            return Err(RegistryError::BadAppName(app.to_string()));
        }
        let image = ImageManifest::from_json(body)
            .map_err(|e| RegistryError::BadManifest(e.to_string()))?;
        let (_, image_manifest) = compact(body)?;
        let mut maps = self.write();
        let token = maps
            .token_of
            .get(&uuid)
            .cloned()
            .ok_or_else(|| RegistryError::PodNotFound(uuid.clone()))?;
        let pod = maps.by_token.get(&token).expect("both maps hold every pod");
        let runtime_app = pod
            .manifest
            .app(app)
            .ok_or_else(|| RegistryError::NotInPod {
                pod: uuid.clone(),
                app: app.to_string(),
            })?;
        let mut merged = image.annotations.clone();
        for a in &runtime_app.annotations {
            match merged.iter_mut().find(|m| m.name == a.name) {
                Some(m) => m.value = a.value.clone(),
                None => merged.push(a.clone()),
            }
        }
        let entry = AppEntry {
            image_manifest,
            image_id: runtime_app.image.id.to_string(),
            annotations: serde_json::to_vec(&merged).expect("annotations serialize"),
            merged,
        };
        let mut pod = PodEntry::clone(pod);
        pod.apps.insert(app.to_string(), Arc::new(entry));
        maps.by_token.insert(token, Arc::new(pod));
        Ok(())
    }

    /// `DELETE /pods/<uuid>`.
    pub fn unregister(&self, uuid: &str) -> Result<(), RegistryError> {
        let (uuid, _) = parse_uuid(uuid)?;
        let mut maps = self.write();
        let token = maps
            .token_of
            .remove(&uuid)
            .ok_or(RegistryError::PodNotFound(uuid))?;
        maps.by_token.remove(&token);
        Ok(())
    }

    /// The pod an app's token stands for.
    pub fn by_token(&self, token: &str) -> Option<Arc<PodEntry>> {
        self.read().by_token.get(token).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.read().by_token.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "6733c4b8-4b6a-4d4b-a4f6-2a1b1c1d1e1f";
    const ID: &str = "sha512-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn pod(annotations: &str) -> Vec<u8> {
        format!(
            r#"{{"acVersion":"0.8.11","acKind":"PodManifest",
            "apps":[{{"name":"web","image":{{"id":"{ID}"}},
            "annotations":[{{"name":"color","value":"pod-red"}}]}}],
            "volumes":[],"isolators":[],{annotations}"ports":[]}}"#
        )
        .into_bytes()
    }

    fn image() -> &'static [u8] {
        br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/web",
        "annotations":[{"name":"color","value":"image-blue"},{"name":"size","value":"xl"}]}"#
    }

    #[test]
    fn registration_renders_the_answers() {
        let r = Registry::default();
        r.register_pod(
            UUID,
            "t0k3n",
            &pod(r#""annotations":[{"name":"a","value":"1"}],"#),
        )
        .unwrap();
        r.register_app(UUID, "web", image()).unwrap();
        let p = r.by_token("t0k3n").unwrap();
        assert_eq!(p.uuid, UUID);
        assert_eq!(p.annotations, br#"[{"name":"a","value":"1"}]"#);
        assert!(!p.manifest_json.contains(&b'\n'));
        assert_eq!(p.annotation("a"), Some("1"));
        let app = p.app("web").unwrap();
        assert_eq!(app.image_id, ID);
        assert_eq!(
            String::from_utf8_lossy(&app.annotations),
            r#"[{"name":"color","value":"pod-red"},{"name":"size","value":"xl"}]"#,
            "image annotations, the pod's winning, in the image's order"
        );
        assert!(r.by_token("other").is_none());
    }

    #[test]
    fn absent_annotations_are_null_and_empty_ones_stay_empty() {
        let r = Registry::default();
        r.register_pod(UUID, "a", &pod("")).unwrap();
        assert_eq!(r.by_token("a").unwrap().annotations, b"null");
        r.unregister(UUID).unwrap();
        r.register_pod(UUID, "b", &pod(r#""annotations":[],"#))
            .unwrap();
        assert_eq!(r.by_token("b").unwrap().annotations, b"[]");
    }

    #[test]
    fn bad_registrations() {
        let r = Registry::default();
        let body = pod("");
        assert!(matches!(
            r.register_pod("nope", "t", &body),
            Err(RegistryError::MalformedUuid(_))
        ));
        assert_eq!(
            r.register_pod(UUID, "", &body),
            Err(RegistryError::MalformedToken)
        );
        assert_eq!(
            r.register_pod(UUID, "a/b", &body),
            Err(RegistryError::MalformedToken)
        );
        assert!(matches!(
            r.register_pod(UUID, "t", b"{"),
            Err(RegistryError::BadManifest(_))
        ));
        r.register_pod(UUID, "t", &body).unwrap();
        r.register_pod(UUID, "t", &body)
            .expect("a retry with the same token");
        assert!(matches!(
            r.register_pod(UUID, "u", &body),
            Err(RegistryError::AlreadyRegistered(_))
        ));
        let other = "7733c4b8-4b6a-4d4b-a4f6-2a1b1c1d1e1f";
        assert!(matches!(
            r.register_pod(other, "t", &body),
            Err(RegistryError::TokenInUse(_))
        ));
        assert!(matches!(
            r.register_app(other, "web", image()),
            Err(RegistryError::PodNotFound(_))
        ));
        assert!(matches!(
            r.register_app(UUID, "db", image()),
            Err(RegistryError::NotInPod { .. })
        ));
        assert!(matches!(
            r.register_app(UUID, "Web!", image()),
            Err(RegistryError::BadAppName(_))
        ));
        r.unregister(UUID).unwrap();
        assert!(matches!(
            r.unregister(UUID),
            Err(RegistryError::PodNotFound(_))
        ));
        assert!(r.is_empty());
    }
}
