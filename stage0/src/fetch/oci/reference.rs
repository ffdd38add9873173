//! `docker://[REGISTRY/]NAME[:TAG|@DIGEST]` references, normalised as
//! Docker does (`busybox` is `docker.io/library/busybox:latest`).

use super::OciError;

/// Docker Hub, as names without a registry mean it.
const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API answers.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRef {
    /// What the user typed.
    pub original: String,
    /// `host[:port]` of the registry's API (`registry-1.docker.io` for Hub).
    pub registry: String,
    /// The repository in that registry (`library/busybox`).
    pub repository: String,
    /// The tag; `latest` unless a digest was given.
    pub tag: Option<String>,
    /// `sha256:…` when pinned by digest.
    pub digest: Option<String>,
}

impl DockerRef {
    /// Parses `docker://…` or `docker:…`.
    pub fn parse(original: &str) -> Result<Self, OciError> {
        let bad = |why: &str| OciError::BadReference {
            reference: original.to_string(),
            why: why.to_string(),
        };
        let rest = original
            .strip_prefix("docker://")
            .or_else(|| original.strip_prefix("docker:"))
            .ok_or_else(|| bad("it does not start with docker://"))?;
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (rest, None),
        };
        if let Some(d) = &digest {
            super::sha256_hex(d)
                .map_err(|_| bad("the digest must be sha256:<64 lowercase hex digits>"))?;
        }
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path)
            }
            _ => (DOCKER_HUB.to_string(), rest),
        };
        // A tag is after the last ':' of the last path element.
        let last = path.rsplit('/').next().unwrap_or(path);
        let (repository, tag) = match last.rsplit_once(':') {
            Some((_, tag)) => (&path[..path.len() - tag.len() - 1], Some(tag.to_string())),
            None => (path, None),
        };
        if repository.is_empty() {
            return Err(bad("no image name"));
        }
        let valid_component = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(valid_component) {
            return Err(bad(
                "image names are lowercase letters, digits and . _ - between slashes",
            ));
        }
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(bad("a tag is up to 128 letters, digits and . _ -"));
            }
        }
        let hub = registry == DOCKER_HUB || registry == "index.docker.io";
        let repository = if hub && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        let tag = match (&digest, tag) {
            (None, None) => Some("latest".to_string()),
            (_, tag) => tag,
        };
        Ok(DockerRef {
            original: original.to_string(),
            registry: if hub {
                DOCKER_HUB_API.to_string()
            } else {
                registry
            },
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry's manifest endpoint for.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The canonical form, the key of the remote cache.
    pub fn canonical(&self) -> String {
        let mut s = format!("docker://{}/{}", self.registry, self.repository);
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names_are_normalised() {
        let r = DockerRef::parse("docker://busybox").unwrap();
        assert_eq!(r.registry, "registry-1.docker.io");
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(
            r.canonical(),
            "docker://registry-1.docker.io/library/busybox:latest"
        );
        let r = DockerRef::parse("docker:someone/app:1.2").unwrap();
        assert_eq!(r.repository, "someone/app");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
    }

    #[test]
    fn registries_ports_and_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = DockerRef::parse(&format!("docker://127.0.0.1:5000/test/five@{d}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "test/five");
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), d);
        let r = DockerRef::parse("docker://localhost/x:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost", "x")
        );
        assert_eq!(r.tag.as_deref(), Some("v1"));
    }

    #[test]
    fn bad_references_say_why() {
        for bad in [
            "docker://",
            "docker://Busybox",
            "docker://busybox@sha256:abc",
            "docker://busybox:",
            "docker://quay.io/",
        ] {
            assert!(DockerRef::parse(bad).is_err(), "{bad}");
        }
    }
}
