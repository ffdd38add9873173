//! Label and annotation list rules (appc `schema/types/labels.go`,
//! `annotations.go`) and the os/arch whitelist.

use std::collections::BTreeSet;

use super::validate::{is_http_url, is_rfc3339};
use super::{Annotation, Label, SchemaError};

/// appc's `ValidOSArch`: every os with its allowed arch values.
pub const VALID_OS_ARCH: &[(&str, &[&str])] = &[
    (
        "linux",
        &[
            "amd64",
            "i386",
            "aarch64",
            "aarch64_be",
            "armv6l",
            "armv7l",
            "armv7b",
            "ppc64",
            "ppc64le",
            "s390x",
        ],
    ),
    ("freebsd", &["amd64", "i386", "arm"]),
    ("darwin", &["x86_64", "i386"]),
];

/// Checks an `os` label value against the appc whitelist.
pub fn valid_os(os: &str) -> Result<&'static [&'static str], SchemaError> {
    VALID_OS_ARCH
        .iter()
        .find(|(o, _)| *o == os)
        .map(|(_, archs)| *archs)
        .ok_or_else(|| {
            let oses: Vec<&str> = VALID_OS_ARCH.iter().map(|(o, _)| *o).collect();
            SchemaError::Invalid(format!(
                "bad os label {os:?}: use one of {}",
                oses.join(", ")
            ))
        })
}

/// Checks an `os` / `arch` label pair against the appc whitelist.
pub fn valid_os_arch(os: &str, arch: &str) -> Result<(), SchemaError> {
    let archs = valid_os(os)?;
    if archs.contains(&arch) {
        Ok(())
    } else {
        Err(SchemaError::Invalid(format!(
            "bad arch label {arch:?} for os {os:?}: use one of {}",
            archs.join(", ")
        )))
    }
}

/// This host's `(os, arch)` in appc terms (Rust `x86_64` → `amd64`,
/// `x86` → `i386`, `arm` → `armv7l`).
pub fn host_os_arch() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        "arm" => "armv7l",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    };
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    // appc names 64-bit Intel `x86_64` on darwin only.
    let arch = if os == "darwin" && arch == "amd64" {
        "x86_64"
    } else {
        arch
    };
    (os, arch)
}

/// Labels: unique names, none called `name`, os/arch whitelisted. `field`
/// names the list in error messages (e.g. `labels`, `dependencies[0].labels`).
pub fn validate_labels(labels: &[Label], field: &str) -> Result<(), SchemaError> {
    let mut seen = BTreeSet::new();
    for l in labels {
        let name = l.name.as_str();
        if name == "name" {
            return Err(SchemaError::Invalid(format!(
                "{field}: a label may not be called \"name\"; the image name is the manifest's top-level \"name\""
            )));
        }
        if !seen.insert(name) {
            return Err(SchemaError::Invalid(format!(
                "{field}: duplicate label {name:?}; keep one"
            )));
        }
    }
    let find = |n: &str| labels.iter().find(|l| l.name.as_str() == n);
    if let Some(os) = find("os") {
        // arch only means something together with os (as in Go).
        let checked = match find("arch") {
            Some(arch) => valid_os_arch(&os.value, &arch.value),
            None => valid_os(&os.value).map(|_| ()),
        };
        checked.map_err(|e| SchemaError::Invalid(format!("{field}: {e}")))?;
    }
    Ok(())
}

/// Annotations: unique names; `created` RFC 3339; `homepage` and
/// `documentation` http(s) URLs.
pub fn validate_annotations(annotations: &[Annotation], field: &str) -> Result<(), SchemaError> {
    let mut seen = BTreeSet::new();
    for a in annotations {
        let name = a.name.as_str();
        if !seen.insert(name) {
            return Err(SchemaError::Invalid(format!(
                "{field}: duplicate annotation {name:?}; keep one"
            )));
        }
        match name {
            "created" if !is_rfc3339(&a.value) => {
                return Err(SchemaError::Invalid(format!(
                    "{field}: \"created\" value {:?} is not an RFC 3339 time; use e.g. 2016-01-02T15:04:05Z",
                    a.value
                )))
            }
            "homepage" | "documentation" if !is_http_url(&a.value) => {
                return Err(SchemaError::Invalid(format!(
                    "{field}: {name:?} value {:?} must be an http:// or https:// URL",
                    a.value
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::AcIdentifier;

    fn label(n: &str, v: &str) -> Label {
        Label {
            name: AcIdentifier::new(n).unwrap(),
            value: v.into(),
        }
    }

    #[test]
    fn os_arch() {
        assert!(valid_os_arch("linux", "amd64").is_ok());
        assert!(valid_os("linux").is_ok());
        assert!(valid_os_arch("darwin", "x86_64").is_ok());
        let e = valid_os_arch("linux", "x86_64").unwrap_err();
        assert!(e.to_string().contains("amd64"), "{e}");
        let e = valid_os("plan9").unwrap_err();
        assert!(e.to_string().contains("bad os"), "{e}");
        let (os, arch) = host_os_arch();
        assert!(valid_os_arch(os, arch).is_ok(), "{os}/{arch}");
    }

    #[test]
    fn labels() {
        assert!(validate_labels(
            &[
                label("version", "1"),
                label("os", "linux"),
                label("arch", "aarch64")
            ],
            "labels"
        )
        .is_ok());
        // arch alone is not checked (Go checks it only with os).
        assert!(validate_labels(&[label("arch", "weird")], "labels").is_ok());
        assert!(
            validate_labels(&[label("os", "linux"), label("arch", "weird")], "labels").is_err()
        );
        assert!(validate_labels(&[label("name", "x")], "labels").is_err());
        let e =
            validate_labels(&[label("version", "1"), label("version", "2")], "labels").unwrap_err();
        assert!(e.to_string().contains("duplicate label \"version\""), "{e}");
    }

    #[test]
    fn annotations() {
        let a = |n: &str, v: &str| Annotation {
            name: AcIdentifier::new(n).unwrap(),
            value: v.into(),
        };
        assert!(validate_annotations(
            &[
                a("created", "2016-03-04T10:01:02.5+01:00"),
                a("homepage", "https://example.com/x"),
                a("documentation", "http://example.com"),
                a("authors", "me")
            ],
            "annotations"
        )
        .is_ok());
        assert!(validate_annotations(&[a("created", "yesterday")], "annotations").is_err());
        assert!(validate_annotations(&[a("homepage", "ftp://x")], "annotations").is_err());
        assert!(validate_annotations(&[a("x", "1"), a("x", "2")], "annotations").is_err());
    }
}
