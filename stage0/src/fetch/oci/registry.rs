//! A client of the registry v2 / OCI distribution API: manifests and blobs
//! of one repository, with the token (Bearer) and Basic authentication
//! registries ask for in their 401 challenges.

use std::io::Read;
use std::sync::Mutex;

use super::reference::DockerRef;
use super::OciError;
use crate::fetch::http::{basic_auth, credential, header, read_limited, Http, HttpError};

/// Every manifest type this client reads: a registry answers with another
/// format (or 404) for types left out.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
const MAX_TOKEN_BYTES: u64 = 1 << 20;

/// A user and password for a registry (`dockerAuth` in `auth.d`).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// The `dockerAuth` entry of `registry`, if the configuration has one.
    pub fn for_registry(
        entries: &[(String, serde_json::Value)],
        registry: &str,
    ) -> Result<Option<Credentials>, OciError> {
        let hub_aliases = ["registry-1.docker.io", "docker.io", "index.docker.io"];
        let matches = |name: &str| {
            name == registry || (hub_aliases.contains(&registry) && hub_aliases.contains(&name))
        };
        let Some((name, entry)) = entries.iter().find(|(name, _)| matches(name)) else {
            return Ok(None);
        };
        let field = |key| {
            credential(entry, "dockerAuth", name, key)
                .map(str::to_string)
                .map_err(OciError::Config)
        };
        Ok(Some(Credentials {
            user: field("user")?,
            password: field("password")?,
        }))
    }

    fn basic(&self) -> String {
        basic_auth(&self.user, &self.password)
    }
}

/// A manifest document as the registry sent it.
pub struct ManifestResponse {
    pub body: Vec<u8>,
    /// `Content-Type`.
    pub media_type: Option<String>,
    /// `Docker-Content-Digest`.
    pub digest: Option<String>,
}

/// One repository of one registry.
pub struct Registry<'h> {
    http: &'h Http,
    /// `https://host[:port]`, or `http://` once https failed and plain
    /// http is allowed.
    base: Mutex<String>,
    allow_http: bool,
    registry: String,
    repository: String,
    creds: Option<Credentials>,
    /// What the last challenge was answered with, for every later request.
    authorization: Mutex<Option<String>>,
}

impl<'h> Registry<'h> {
    pub fn new(
        http: &'h Http,
        r: &DockerRef,
        creds: Option<Credentials>,
        allow_http: bool,
    ) -> Self {
        Registry {
            http,
            base: Mutex::new(format!("https://{}", r.registry)),
            allow_http,
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            creds,
            authorization: Mutex::new(None),
        }
    }

    /// The manifest or index at `reference` (a tag or a digest).
    pub fn manifest(&self, reference: &str) -> Result<ManifestResponse, OciError> {
        let path = format!("/v2/{}/manifests/{reference}", self.repository);
        let response = self.get(&path, Some(MANIFEST_ACCEPT))?;
        let media_type = header(&response, "content-type");
        let digest = header(&response, "docker-content-digest");
        let url = self.url(&path);
        let body = read_limited(response.into_body(), &url, super::MAX_DOCUMENT_BYTES)?;
        Ok(ManifestResponse {
            body,
            media_type,
            digest,
        })
    }

    /// The bytes of blob `digest`, as the registry (or the storage it
    /// redirects to) sends them; the caller checks size and digest.
    pub fn blob(&self, digest: &str) -> Result<impl Read + Send + 'static, OciError> {
        let path = format!("/v2/{}/blobs/{digest}", self.repository);
        Ok(self.get(&path, None)?.into_body().into_reader())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.lock().expect("base"))
    }

    /// GET `path`, answering one authentication challenge; a status other
    /// than 2xx is an error naming what to do.
    fn get(
        &self,
        path: &str,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, OciError> {
        let mut answered = false;
        loop {
            let response = self.send(path, accept)?;
            let status = response.status().as_u16();
            if status == 401 && !answered {
                answered = true;
                let challenge = header(&response, "www-authenticate").unwrap_or_default();
                let authorization = self.answer(&challenge)?;
                *self.authorization.lock().expect("authorization") = Some(authorization);
                continue;
            }
            let url = self.url(path);
            return match status {
                200..=299 => Ok(response),
                401 | 403 => Err(OciError::AuthRefused {
                    registry: self.registry.clone(),
                    why: format!("{url} answered {status}"),
                }),
                404 => Err(OciError::NotInRegistry {
                    url,
                    why: registry_error(response),
                }),
                _ => Err(HttpError::Status { url, status }.into()),
            };
        }
    }

    /// One request, on https, or on plain http when https cannot connect
    /// and `--insecure-options=http` allows it.
    fn send(
        &self,
        path: &str,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, OciError> {
        let authorization = self.authorization.lock().expect("authorization").clone();
        let mut headers = Vec::new();
        if let Some(a) = accept {
            headers.push(("Accept", a));
        }
        if let Some(a) = &authorization {
            headers.push(("Authorization", a.as_str()));
        }
        let url = self.url(path);
        match self.http.get_raw(&url, &headers) {
            Err(HttpError::Request { why, .. })
                if self.allow_http && url.starts_with("https://") =>
            {
                tracing::debug!("{url}: {why}; trying plain http");
                let plain = format!("http://{}", self.registry);
                *self.base.lock().expect("base") = plain;
                Ok(self.http.get_raw(&self.url(path), &headers)?)
            }
            Err(HttpError::Request { url, why }) if url.starts_with("https://") => {
                Err(OciError::HttpsFailed {
                    url,
                    why,
                    registry: self.registry.clone(),
                })
            }
            other => Ok(other?),
        }
    }

    /// The `Authorization` answering a 401's `WWW-Authenticate`: a token
    /// from the realm the registry names (with our credentials, if any), or
    /// our credentials themselves.
    fn answer(&self, challenge: &str) -> Result<String, OciError> {
        let refused = |why: String| OciError::AuthRefused {
            registry: self.registry.clone(),
            why,
        };
        let (scheme, params) = parse_challenge(challenge);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => match &self.creds {
                Some(c) => Ok(c.basic()),
                None => Err(refused("it asks for a user and password".into())),
            },
            "bearer" => {
                let param = |k: &str| {
                    params
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v.as_str())
                };
                let realm = param("realm")
                    .ok_or_else(|| refused("its token challenge names no realm".into()))?;
                // Credentials go over https, unless the registry itself is
                // plain http (which the user allowed).
                let plain_registry = self.base.lock().expect("base").starts_with("http://");
                if realm.starts_with("http://") && !plain_registry && self.creds.is_some() {
                    return Err(refused(format!(
                        "its token service {realm} is plain http while the registry is https; credentials are not sent there"
                    )));
                }
                let scope = param("scope")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let mut query = form_urlencoded::Serializer::new(String::new());
                if let Some(service) = param("service") {
                    query.append_pair("service", service);
                }
                query.append_pair("scope", &scope);
                let sep = if realm.contains('?') { '&' } else { '?' };
                let url = format!("{realm}{sep}{}", query.finish());
                let basic = self.creds.as_ref().map(Credentials::basic);
                let headers: Vec<(&str, &str)> = basic
                    .as_deref()
                    .map(|b| vec![("Authorization", b)])
                    .unwrap_or_default();
                let response = self.http.get_raw(&url, &headers)?;
                let status = response.status().as_u16();
                if !(200..300).contains(&status) {
                    return Err(refused(format!(
                        "its token service {realm} answered {status}"
                    )));
                }
                let body = read_limited(response.into_body(), &url, MAX_TOKEN_BYTES)?;
                let doc: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|e| refused(format!("its token service sent no JSON ({e})")))?;
                let token = ["token", "access_token"]
                    .iter()
                    .find_map(|k| doc.get(k).and_then(serde_json::Value::as_str))
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| refused("its token service sent no token".into()))?;
                Ok(format!("Bearer {token}"))
            }
            _ => Err(refused(format!(
                "it asks for authentication this client does not speak ({challenge:?})"
            ))),
        }
    }
}

/// The message of a registry's JSON error body, if it sent one.
fn registry_error(response: ureq::http::Response<ureq::Body>) -> String {
    let body = read_limited(response.into_body(), "", 64 << 10).unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.pointer("/errors/0")?;
            Some(format!(
                "{}: {}",
                e.get("code")?.as_str()?,
                e.get("message").and_then(|m| m.as_str()).unwrap_or("")
            ))
        })
        .unwrap_or_else(|| "not found".into())
}

/// `Scheme k1="v1",k2=v2` (RFC 7235 auth-params; quoted values may hold
/// commas and escaped quotes).
fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.push((key.trim().to_string(), value.trim().to_string()));
    }
    (scheme.to_string(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_as_auth_params() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            vec![
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "reg".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        let (scheme, params) = parse_challenge(r#"Basic realm="basic-realm""#);
        assert_eq!(scheme, "Basic");
        assert_eq!(params, vec![("realm".into(), "basic-realm".into())]);
    }

    #[test]
    fn credentials_come_from_docker_auth() {
        let entries = vec![(
            "127.0.0.1:5000".to_string(),
            serde_json::json!({"rktKind": "dockerAuth", "credentials": {"user": "u", "password": "p"}}),
        )];
        let c = Credentials::for_registry(&entries, "127.0.0.1:5000")
            .unwrap()
            .unwrap();
        assert_eq!(c.basic(), "Basic dTpw");
        assert!(Credentials::for_registry(&entries, "quay.io")
            .unwrap()
            .is_none());
        let hub = vec![(
            "docker.io".to_string(),
            serde_json::json!({"credentials": {"user": "u"}}),
        )];
        assert!(Credentials::for_registry(&hub, "registry-1.docker.io").is_err());
    }
}
