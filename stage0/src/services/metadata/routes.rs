//! What the metadata service answers, apart from HTTP itself: the public
//! `/<token>/acMetadata/v1/...` API the apps call and the registration API
//! stage0 calls over the unix socket (appc.md §7, rkt.md §8).

use super::identity::Signer;
use super::registry::{parse_uuid, AppEntry, PodEntry, Registry, RegistryError};
use abi::schema::{AcIdentifier, AcName};

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=us-ascii";

/// An answer: status, content type and body.
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: body.into(),
        }
    }

    /// An error: a one-line message for whoever reads it with curl.
    fn error(status: u16, message: impl std::fmt::Display) -> Reply {
        Reply {
            status,
            content_type: TEXT,
            body: format!("{message}\n").into_bytes(),
        }
    }
}

/// A request, as both APIs see it.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

impl Request<'_> {
    /// A form field from the body or, failing that, the query (as Go's
    /// `FormValue`); the first of repeated fields.
    fn form(&self, name: &str) -> Option<String> {
        let find = |raw: &[u8]| {
            form_urlencoded::parse(raw)
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        find(self.body).or_else(|| self.query.and_then(|q| find(q.as_bytes())))
    }
}

const PREFIX: &str = "/acMetadata/v1/";

/// The public API. Every path starts with the pod's token; an unknown
/// token is 401 whatever follows.
pub fn public(registry: &Registry, signer: &Signer, req: &Request) -> Reply {
    let Some((token, rest)) = req
        .path
        .strip_prefix('/')
        .and_then(|p| p.split_once(PREFIX.trim_end_matches('/')))
        .and_then(|(token, rest)| Some((token, rest.strip_prefix('/')?)))
    else {
        return Reply::error(
            404,
            "not found: the metadata API is at $AC_METADATA_URL/acMetadata/v1/",
        );
    };
    let Some(pod) = registry.by_token(token) else {
        return Reply::error(
            401,
            "unknown token: this pod is not registered with the metadata service",
        );
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let signing = matches!(segments.as_slice(), ["pod", "hmac", "sign" | "verify"]);
    match (req.method, segments.as_slice()) {
        ("POST", ["pod", "hmac", "sign"]) => sign(&pod, signer, req),
        ("POST", ["pod", "hmac", "verify"]) => verify(signer, req),
        (method, _) if signing => {
            Reply::error(405, format!("{method} is not allowed here; use POST"))
        }
        (method, path) => match (get(&pod, path), matches!(method, "GET" | "HEAD")) {
            (Some(reply), true) => reply,
            (Some(_), false) => Reply::error(405, format!("{method} is not allowed here; use GET")),
            (None, _) => Reply::error(404, format!("no metadata at {PREFIX}{rest}")),
        },
    }
}

/// The answer to a GET of `path` (below the prefix), `None` where the API
/// has nothing.
fn get(pod: &PodEntry, path: &[&str]) -> Option<Reply> {
    Some(match path {
        ["pod", "annotations"] => Reply::ok(JSON, pod.annotations.clone()),
        ["pod", "annotations", name] => single_annotation(pod.annotation(name), name, "Pod"),
        ["pod", "manifest"] => Reply::ok(JSON, pod.manifest_json.clone()),
        ["pod", "uuid"] => Reply::ok(TEXT, pod.uuid.clone()),
        ["apps", app, tail @ ..] => return app_get(pod, app, tail),
        _ => return None,
    })
}

fn single_annotation(value: Option<&str>, name: &str, whose: &str) -> Reply {
    if AcIdentifier::new(name).is_err() {
        return Reply::error(
            400,
            format!("{whose} annotation name {name:?} is not a valid AC Identifier"),
        );
    }
    match value {
        Some(v) => Reply::ok(TEXT, v),
        None => Reply::error(404, format!("{whose} annotation {name:?} not found")),
    }
}

fn app_get(pod: &PodEntry, app: &str, tail: &[&str]) -> Option<Reply> {
    let answer: Box<dyn Fn(&AppEntry) -> Reply> = match *tail {
        ["annotations"] => Box::new(|e| Reply::ok(JSON, e.annotations.clone())),
        ["annotations", name] => {
            Box::new(move |e| single_annotation(e.annotation(name), name, "App"))
        }
        ["image", "manifest"] => Box::new(|e| Reply::ok(JSON, e.image_manifest.clone())),
        ["image", "id"] => Box::new(|e| Reply::ok(TEXT, e.image_id.clone())),
        _ => return None,
    };
    if AcName::new(app).is_err() {
        return Some(Reply::error(
            400,
            format!("App name {app:?} is not a valid AC Name"),
        ));
    }
    Some(match pod.app(app) {
        Some(entry) => answer(entry),
        None => Reply::error(404, format!("app {app:?} not found in pod {}", pod.uuid)),
    })
}

fn sign(pod: &PodEntry, signer: &Signer, req: &Request) -> Reply {
    match req.form("content").filter(|c| !c.is_empty()) {
        Some(content) => Reply::ok(TEXT, signer.sign(&pod.uuid_bytes, content.as_bytes())),
        None => Reply::error(400, "content form value not found; POST content=<data>"),
    }
}

fn verify(signer: &Signer, req: &Request) -> Reply {
    // rkt's older clients sent the signer as `uid`.
    let Some(uuid) = req.form("uuid").or_else(|| req.form("uid")) else {
        return Reply::error(400, "uuid field missing: POST uuid=<signing pod's UUID>");
    };
    let uuid = match parse_uuid(&uuid) {
        Ok((_, bytes)) => bytes,
        Err(e) => return Reply::error(400, format!("uuid field malformed: {e}")),
    };
    let Some(content) = req.form("content").filter(|c| !c.is_empty()) else {
        return Reply::error(400, "content field missing");
    };
    let Some(signature) = req.form("signature") else {
        return Reply::error(400, "signature field missing");
    };
    match signer.verify(&uuid, content.as_bytes(), &signature) {
        Ok(true) => Reply::ok(TEXT, Vec::new()),
        Ok(false) => Reply {
            status: 403,
            content_type: TEXT,
            body: Vec::new(),
        },
        Err(e) => Reply::error(400, e),
    }
}

/// The registration API: `PUT /pods/<uuid>?token=T` (pod manifest),
/// `PUT /pods/<uuid>/<app>` (image manifest), `DELETE /pods/<uuid>`.
pub fn registration(registry: &Registry, req: &Request) -> Reply {
    let Some(rest) = req.path.strip_prefix("/pods/") else {
        return Reply::error(404, "not found: registration is under /pods/<uuid>");
    };
    let result = match (req.method, rest.split_once('/')) {
        ("PUT", None) => {
            let token = req
                .query
                .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "token"))
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            registry.register_pod(rest, &token, req.body)
        }
        ("PUT", Some((uuid, app))) => registry.register_app(uuid, app, req.body),
        ("DELETE", None) => registry.unregister(rest),
        (method, app) => {
            let allowed = match app {
                None => "PUT or DELETE",
                Some(_) => "PUT",
            };
            return Reply::error(405, format!("{method} is not allowed here; use {allowed}"));
        }
    };
    match result {
        Ok(()) => Reply::ok(TEXT, Vec::new()),
        Err(e) => {
            let status = match e {
                RegistryError::PodNotFound(_) | RegistryError::NotInPod { .. } => 404,
                RegistryError::AlreadyRegistered(_) | RegistryError::TokenInUse(_) => 409,
                _ => 400,
            };
            Reply::error(status, e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "6733c4b8-4b6a-4d4b-a4f6-2a1b1c1d1e1f";
    const ID: &str = "sha512-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn req<'a>(method: &'a str, path: &'a str, body: &'a [u8]) -> Request<'a> {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        Request {
            method,
            path,
            query,
            body,
        }
    }

    fn setup() -> (Registry, Signer) {
        let r = Registry::default();
        let pod = format!(
            r#"{{"acVersion":"0.8.11","acKind":"PodManifest","apps":[{{"name":"web","image":{{"id":"{ID}"}}}}],
            "annotations":[{{"name":"team","value":"blue"}}]}}"#
        );
        let put = |path: &str, body: &[u8]| registration(&r, &req("PUT", path, body)).status;
        assert_eq!(
            put(&format!("/pods/{UUID}?token=abc123"), pod.as_bytes()),
            200
        );
        let image = br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/web"}"#;
        assert_eq!(put(&format!("/pods/{UUID}/web"), image), 200);
        (r, Signer::random())
    }

    fn get(r: &Registry, s: &Signer, path: &str) -> Reply {
        public(r, s, &req("GET", path, b""))
    }

    #[test]
    fn public_answers() {
        let (r, s) = setup();
        let base = "/abc123/acMetadata/v1";
        assert_eq!(
            get(&r, &s, &format!("{base}/pod/uuid")),
            Reply::ok(TEXT, UUID)
        );
        assert_eq!(
            get(&r, &s, &format!("{base}/pod/annotations")),
            Reply::ok(JSON, r#"[{"name":"team","value":"blue"}]"#)
        );
        assert_eq!(
            get(&r, &s, &format!("{base}/pod/annotations/team")),
            Reply::ok(TEXT, "blue")
        );
        assert_eq!(
            get(&r, &s, &format!("{base}/pod/annotations/nope")).status,
            404
        );
        assert_eq!(
            get(&r, &s, &format!("{base}/pod/annotations/Bad!")).status,
            400
        );
        assert_eq!(
            get(&r, &s, &format!("{base}/apps/web/image/id")),
            Reply::ok(TEXT, ID)
        );
        assert_eq!(
            get(&r, &s, &format!("{base}/apps/web/annotations")),
            Reply::ok(JSON, "[]")
        );
        assert_eq!(get(&r, &s, &format!("{base}/apps/db/image/id")).status, 404);
        assert_eq!(get(&r, &s, &format!("{base}/apps/DB/image/id")).status, 400);
        let manifest = get(&r, &s, &format!("{base}/pod/manifest"));
        assert_eq!(manifest.content_type, JSON);
        assert!(manifest.body.starts_with(br#"{"acVersion""#) && !manifest.body.ends_with(b"\n"));
        assert_eq!(get(&r, &s, "/wrong/acMetadata/v1/pod/uuid").status, 401);
        assert_eq!(get(&r, &s, "/abc123/other").status, 404);
        assert_eq!(
            public(&r, &s, &req("POST", &format!("{base}/pod/uuid"), b"")).status,
            405
        );
    }

    #[test]
    fn sign_and_verify() {
        let (r, s) = setup();
        let post = |path: &str, body: &str| public(&r, &s, &req("POST", path, body.as_bytes()));
        let sig = post(
            "/abc123/acMetadata/v1/pod/hmac/sign",
            "content=hello%20world",
        );
        assert_eq!(sig.status, 200);
        let sig = String::from_utf8(sig.body).unwrap();
        let form = |uuid: &str, content: &str, sig: &str| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("uuid", uuid)
                .append_pair("content", content)
                .append_pair("signature", sig)
                .finish()
        };
        let verify = "/abc123/acMetadata/v1/pod/hmac/verify";
        assert_eq!(post(verify, &form(UUID, "hello world", &sig)).status, 200);
        assert_eq!(post(verify, &form(UUID, "hello there", &sig)).status, 403);
        let other = "7733c4b8-4b6a-4d4b-a4f6-2a1b1c1d1e1f";
        assert_eq!(post(verify, &form(other, "hello world", &sig)).status, 403);
        assert_eq!(post(verify, &form("x", "hello world", &sig)).status, 400);
        assert_eq!(post(verify, &form(UUID, "hello world", "%%%")).status, 400);
        assert_eq!(post(verify, "uuid=&content=").status, 400);
        assert_eq!(post("/abc123/acMetadata/v1/pod/hmac/sign", "").status, 400);
        assert_eq!(
            post("/nope/acMetadata/v1/pod/hmac/sign", "content=x").status,
            401
        );
    }

    #[test]
    fn registration_errors() {
        let (r, _) = setup();
        let call = |m: &str, path: &str| registration(&r, &req(m, path, b"{}")).status;
        assert_eq!(
            call("PUT", &format!("/pods/{UUID}?token=zzz")),
            400,
            "not a pod manifest"
        );
        assert_eq!(
            call("DELETE", "/pods/7733c4b8-4b6a-4d4b-a4f6-2a1b1c1d1e1f"),
            404
        );
        assert_eq!(call("GET", &format!("/pods/{UUID}")), 405);
        assert_eq!(call("DELETE", &format!("/pods/{UUID}")), 200);
        assert_eq!(call("PUT", "/elsewhere"), 404);
    }
}
