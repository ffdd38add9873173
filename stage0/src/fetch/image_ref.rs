//! The image strings `run`, `prepare` and `fetch` accept (rkt `DistFromImageString`).

use std::path::{Path, PathBuf};

use crate::store::is_key_prefix;

/// What an image argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// `sha512-…` (any prefix of at least 2 hex digits): store only.
    Hash(String),
    /// A local ACI file (a path or a `file://` URL).
    Path(PathBuf),
    /// An appc image name with labels (`version` from `name:version`).
    Name {
        name: String,
        labels: Vec<(String, String)>,
    },
    /// An `http(s)://…` URL.
    Url(String),
    /// A `docker://` or `docker:` reference.
    Docker(String),
    /// An OCI image layout directory (`oci:DIR[:TAG]`, or a path to one).
    OciLayout { dir: PathBuf, tag: Option<String> },
}

/// Classifies an image string in rkt's order: hash; no scheme → path
/// (absolute, an existing regular file, containing `./`, or ending in `.aci`)
/// unless it contains `:`, else name; `file`/`http`/`https` URLs; `docker`;
/// any other scheme is a name (`app:v1`).
pub fn parse_image_ref(s: &str) -> ImageRef {
    if is_key_prefix(s) {
        return ImageRef::Hash(s.to_string());
    }
    match scheme(s) {
        None => {
            if is_path_like(s) && Path::new(s).join("oci-layout").is_file() {
                ImageRef::OciLayout {
                    dir: PathBuf::from(s),
                    tag: None,
                }
            } else if is_path_like(s) {
                ImageRef::Path(PathBuf::from(s))
            } else {
                parse_name(s)
            }
        }
        Some("file") => {
            let rest = &s["file://".len().min(s.len())..];
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            ImageRef::Path(PathBuf::from(if path.is_empty() { rest } else { path }))
        }
        Some("http" | "https") => ImageRef::Url(s.to_string()),
        Some("docker") => ImageRef::Docker(s.to_string()),
        Some("oci") => parse_oci_layout(&s["oci:".len()..]),
        Some(_) => parse_name(s),
    }
}

/// A URL scheme as Go's `url.Parse` finds it: letters first, then letters,
/// digits, `+-.`, ended by `:`; `docker:` counts too.
fn scheme(s: &str) -> Option<&str> {
    let (head, _) = s.split_once(':')?;
    let mut chars = head.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return None;
    }
    // `file:`, `http:` … only count as schemes with `//`, except `docker:`.
    match head.to_ascii_lowercase().as_str() {
        "file" | "http" | "https" if !s[head.len()..].starts_with("://") => None,
        _ => Some(head),
    }
}

fn is_path_like(s: &str) -> bool {
    if s.starts_with('/') {
        return true;
    }
    if std::fs::metadata(s).is_ok_and(|m| m.is_file()) {
        return true;
    }
    if s.contains(':') {
        return false;
    }
    s.contains("./") || Path::new(s).extension().is_some_and(|e| e == "aci")
}

/// `DIR[:TAG]` of `oci:DIR[:TAG]` (skopeo's syntax): a tag follows the
/// last `:` after the last `/`.
fn parse_oci_layout(rest: &str) -> ImageRef {
    let last = rest.rsplit('/').next().unwrap_or(rest);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => ImageRef::OciLayout {
            dir: PathBuf::from(&rest[..rest.len() - tag.len() - 1]),
            tag: Some(tag.to_string()),
        },
        _ => ImageRef::OciLayout {
            dir: PathBuf::from(rest.trim_end_matches(':')),
            tag: None,
        },
    }
}

/// `name[:version][,label=value…]` (appc `NewAppFromString`).
fn parse_name(s: &str) -> ImageRef {
    let mut parts = s.split(',');
    let head = parts.next().unwrap_or_default();
    let (name, version) = match head.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (head, None),
    };
    let mut labels = Vec::new();
    if let Some(v) = version {
        labels.push(("version".to_string(), v.to_string()));
    }
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            labels.retain(|(existing, _)| existing != k);
            labels.push((k.to_string(), v.to_string()));
        }
    }
    ImageRef::Name {
        name: name.to_string(),
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str, l: &[(&str, &str)]) -> ImageRef {
        ImageRef::Name {
            name: n.into(),
            labels: l
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn classification() {
        assert_eq!(
            parse_image_ref("sha512-ab"),
            ImageRef::Hash("sha512-ab".into())
        );
        assert_eq!(
            parse_image_ref("/x/y.aci"),
            ImageRef::Path("/x/y.aci".into())
        );
        assert_eq!(parse_image_ref("./y"), ImageRef::Path("./y".into()));
        assert_eq!(parse_image_ref("y.aci"), ImageRef::Path("y.aci".into()));
        assert_eq!(
            parse_image_ref("file:///x/y.aci"),
            ImageRef::Path("/x/y.aci".into())
        );
        assert_eq!(
            parse_image_ref("example.com/app"),
            name("example.com/app", &[])
        );
        assert_eq!(
            parse_image_ref("example.com/app:v1.2"),
            name("example.com/app", &[("version", "v1.2")])
        );
        assert_eq!(parse_image_ref("app:v1"), name("app", &[("version", "v1")]));
        assert_eq!(
            parse_image_ref("example.com/app:1,os=linux"),
            name("example.com/app", &[("version", "1"), ("os", "linux")])
        );
        assert_eq!(
            parse_image_ref("https://h/x.aci"),
            ImageRef::Url("https://h/x.aci".into())
        );
        assert_eq!(
            parse_image_ref("docker://busybox"),
            ImageRef::Docker("docker://busybox".into())
        );
        assert_eq!(
            parse_image_ref("docker:busybox"),
            ImageRef::Docker("docker:busybox".into())
        );
        assert_eq!(
            parse_image_ref("oci:/srv/img:v1"),
            ImageRef::OciLayout {
                dir: "/srv/img".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            parse_image_ref("oci:rel/img"),
            ImageRef::OciLayout {
                dir: "rel/img".into(),
                tag: None
            }
        );
    }
}
