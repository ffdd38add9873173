//! HTTP(S) for fetching images, their signatures and discovery pages: one
//! blocking client (stage0 is a short-lived command), TLS with rustls and the
//! host's CA bundle, bodies read raw (no transparent decompression: the bytes
//! of an image are what its signature covers).

use std::time::Duration;

use thiserror::Error;
use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};

use crate::config::InsecureOptions;

/// Where the host's CA certificates are (Debian's ca-certificates);
/// `SSL_CERT_FILE` overrides it, as for OpenSSL and Go.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: u32 = 10;

#[derive(Debug, Error)]
pub enum HttpError {
    #[error(
        "{url}: plain http is refused; use https, or pass --insecure-options=http to allow it"
    )]
    PlainHttp { url: String },
    #[error("{url}: {why}")]
    Request { url: String, why: String },
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: more than {limit} bytes; refusing the rest")]
    TooLarge { url: String, limit: u64 },
}

impl HttpError {
    /// The HTTP status of a refused request, if that is what failed.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An answer with a body, and the caching headers rkt records.
pub struct Response {
    pub status: u16,
    pub etag: Option<String>,
    /// `Cache-Control: max-age`, in seconds (0 when absent).
    pub max_age: u64,
    /// Where the body starts in the resource, for a 206 answering a range.
    pub range_start: Option<u64>,
    pub body: ureq::Body,
}

pub struct Http {
    agent: ureq::Agent,
    allow_http: bool,
    auth: AuthHeaders,
}

/// `Authorization` values per host, from the `auth` entries of `auth.d`
/// (rkt's `basic` and `oauth` types).
#[derive(Debug, Clone, Default)]
pub struct AuthHeaders(Vec<(String, String)>);

impl AuthHeaders {
    /// From the merged config's `(domain, entry)` pairs.
    pub fn from_config(entries: &[(String, serde_json::Value)]) -> Result<AuthHeaders, String> {
        let mut out = Vec::new();
        for (domain, entry) in entries {
            let field = |name| credential(entry, "auth.d", domain, name);
            let value = match entry.get("type").and_then(serde_json::Value::as_str) {
                Some("basic") => basic_auth(field("user")?, field("password")?),
                Some("oauth") => format!("Bearer {}", field("token")?),
                Some(other) => {
                    return Err(format!(
                        "auth.d entry for {domain}: type {other:?} is not supported by this build; use basic or oauth"
                    ))
                }
                None => return Err(format!("auth.d entry for {domain}: no type; use basic or oauth")),
            };
            out.push((domain.clone(), value));
        }
        Ok(AuthHeaders(out))
    }

    /// The header for `url`'s host (`host:port` first, then `host`).
    fn for_url(&self, url: &str) -> Option<&str> {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
        self.0
            .iter()
            .find(|(d, _)| d == host_port)
            .or_else(|| self.0.iter().find(|(d, _)| d == host))
            .map(|(_, v)| v.as_str())
    }
}

impl Http {
    /// A client that verifies certificates against the host's CA bundle
    /// unless `--insecure-options=tls`, and refuses plain http (also in
    /// redirects) unless `--insecure-options=http`.
    pub fn new(insecure: &InsecureOptions, auth: &AuthHeaders) -> Http {
        let tls = if insecure.tls {
            TlsConfig::builder().disable_verification(true).build()
        } else {
            TlsConfig::builder().root_certs(host_roots()).build()
        };
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .https_only(!insecure.http)
            .http_status_as_error(false)
            .max_redirects(MAX_REDIRECTS)
            // Credentials follow a redirect on the same host over https,
            // never to another host (a registry's blob store).
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(RESPONSE_TIMEOUT))
            // A connection that stalls is an error (a download that breaks
            // off, to be resumed), not a fetch that hangs.
            .timeout_per_read(Some(RESPONSE_TIMEOUT))
            .user_agent(concat!("rkt/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: config.into(),
            allow_http: insecure.http,
            auth: auth.clone(),
        }
    }

    /// Refuses a plain-http URL unless allowed.
    pub fn check_scheme(&self, url: &str) -> Result<(), HttpError> {
        if url.starts_with("http://") && !self.allow_http {
            return Err(HttpError::PlainHttp {
                url: url.to_string(),
            });
        }
        Ok(())
    }

    /// GET `url`, conditional on `etag` when given: a 304 (what the caller
    /// has is current, with fresh cache headers) or a 2xx; other statuses
    /// are errors. With `resume` (offset, ETag of the bytes the caller
    /// has), the rest if the resource is still that version (206), else
    /// all of it (200).
    pub fn get(
        &self,
        url: &str,
        etag: Option<&str>,
        resume: Option<(u64, &str)>,
    ) -> Result<Response, HttpError> {
        self.check_scheme(url)?;
        let mut request = self.agent.get(url);
        if let Some(tag) = etag {
            request = request.header("If-None-Match", tag);
        }
        if let Some((offset, tag)) = resume {
            request = request
                .header("Range", format!("bytes={offset}-"))
                .header("If-Range", tag);
        }
        // ureq does not carry it across a redirect to another host.
        if let Some(auth) = self.auth.for_url(url) {
            request = request.header("Authorization", auth);
        }
        let response = request.call().map_err(|e| HttpError::Request {
            url: url.to_string(),
            why: describe(&e),
        })?;
        let status = response.status().as_u16();
        let not_modified = status == 304 && etag.is_some();
        if !(200..300).contains(&status) && !not_modified {
            return Err(HttpError::Status {
                url: url.to_string(),
                status,
            });
        }
        let header = |name: &str| header(&response, name);
        let etag = header("etag");
        let max_age = header("cache-control")
            .as_deref()
            .and_then(max_age)
            .unwrap_or(0);
        let range_start = match status {
            206 => header("content-range").as_deref().and_then(range_start),
            _ => None,
        };
        Ok(Response {
            status,
            etag,
            max_age,
            range_start,
            body: response.into_body(),
        })
    }

    /// GET `url` with `headers` (no `auth.d` header: the caller does its
    /// own authentication), whatever the status: the caller reads it.
    pub fn get_raw(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<ureq::http::Response<ureq::Body>, HttpError> {
        self.check_scheme(url)?;
        let mut request = self.agent.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.call().map_err(|e| HttpError::Request {
            url: url.to_string(),
            why: describe(&e),
        })
    }

    /// GET a small document (signature, key, discovery page) of at most
    /// `limit` bytes.
    pub fn get_small(&self, url: &str, limit: u64) -> Result<(u16, Vec<u8>), HttpError> {
        let response = self.get(url, None, None)?;
        let status = response.status;
        let body = read_limited(response.body, url, limit)?;
        Ok((status, body))
    }
}

/// Whether a body read failed for going past its size limit.
pub fn exceeded_limit(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|u| matches!(u, ureq::Error::BodyExceedsLimit(_)))
}

/// `credentials.<name>` of an `auth.d` entry (`kind` for `auth` or
/// `dockerAuth`, for `domain`), or the one-line error naming what to add.
pub fn credential<'e>(
    entry: &'e serde_json::Value,
    kind: &str,
    domain: &str,
    name: &str,
) -> Result<&'e str, String> {
    entry
        .pointer(&format!("/credentials/{name}"))
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("{kind} entry for {domain}: credentials.{name} is missing; add it"))
}

/// `Basic` credentials, as an `Authorization` value.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A response header's value, if it is there and readable.
pub fn header<B>(response: &ureq::http::Response<B>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// All of `body`, refusing more than `limit` bytes.
pub fn read_limited(body: ureq::Body, url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
    body.into_with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => HttpError::TooLarge {
                url: url.to_string(),
                limit,
            },
            other => HttpError::Request {
                url: url.to_string(),
                why: describe(&other),
            },
        })
}

/// The reason a request failed, in words a user can act on.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::TooManyRedirects => {
            format!("more than {MAX_REDIRECTS} redirects (a redirect loop?)")
        }
        ureq::Error::RequireHttpsOnly(_) => {
            "redirected to plain http; pass --insecure-options=http to follow it".into()
        }
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => tls_failed(e),
        ureq::Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) =>
        {
            tls_failed(io)
        }
        other => other.to_string(),
    }
}

fn tls_failed(e: &dyn std::fmt::Display) -> String {
    format!(
        "TLS failed ({e}); if the server's certificate is not from a CA in {CA_BUNDLE} (or $SSL_CERT_FILE), add its CA there, or pass --insecure-options=tls"
    )
}

/// The first byte of `Content-Range: bytes N-M/T`.
fn range_start(content_range: &str) -> Option<u64> {
    let range = content_range.trim().strip_prefix("bytes ")?;
    range.split_once('-')?.0.trim().parse().ok()
}

/// `max-age=N` of a Cache-Control value.
fn max_age(cache_control: &str) -> Option<u64> {
    cache_control
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim_matches('"').parse().ok())
}

fn host_roots() -> RootCerts {
    let path = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| CA_BUNDLE.into());
    let pem = std::fs::read(&path).unwrap_or_default();
    let certs: Vec<_> = parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    RootCerts::new_with_certs(&certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_headers_come_from_auth_d_entries() {
        let entries = vec![
            (
                "example.com".to_string(),
                serde_json::json!({"type": "basic", "credentials": {"user": "u", "password": "p"}}),
            ),
            (
                "other.example:8443".to_string(),
                serde_json::json!({"type": "oauth", "credentials": {"token": "t0k"}}),
            ),
        ];
        let auth = AuthHeaders::from_config(&entries).unwrap();
        assert_eq!(
            auth.for_url("https://example.com/a.aci"),
            Some("Basic dTpw")
        );
        assert_eq!(
            auth.for_url("https://example.com:443/a"),
            Some("Basic dTpw")
        );
        assert_eq!(
            auth.for_url("https://other.example:8443/x"),
            Some("Bearer t0k")
        );
        assert_eq!(auth.for_url("https://other.example/x"), None);
        assert_eq!(auth.for_url("https://elsewhere.example/x"), None);
        let aws = vec![("a.example".to_string(), serde_json::json!({"type": "aws"}))];
        assert!(AuthHeaders::from_config(&aws)
            .unwrap_err()
            .contains("not supported"));
    }

    #[test]
    fn content_range_gives_the_start() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=300"), Some(300));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=\"60\", private"), Some(60));
    }
}
