//! An OCI / Docker image configuration as an ACI image manifest, the way
//! docker2aci mapped it (so images keep the names, labels and
//! `appc.io/docker/*` annotations rkt users and tools knew).

use std::collections::BTreeMap;

use abi::schema::{
    is_env_name, is_rfc3339, AcIdentifier, AcName, Annotation, App, EnvironmentVariable,
    ImageManifest, Label, MountPoint, Port,
};
use oci_spec::image::{Arch, ImageConfiguration};

use super::OciError;

/// Where an image came from, for its name and annotations.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The ACI name (`registry-1.docker.io/library/busybox`).
    pub name: String,
    /// The tag, as the `version` label.
    pub version: Option<String>,
    /// Source-specific annotations (`appc.io/docker/registryurl`, ...).
    pub annotations: Vec<(String, String)>,
    /// Digest of the image manifest.
    pub manifest_digest: String,
}

/// The ACI manifest of an image with `config` (of digest `config_digest`,
/// Docker's image ID), whose /etc/passwd is `passwd` (for the group of a
/// user given without one).
pub fn aci_manifest(
    origin: &Origin,
    config_digest: &str,
    config: &ImageConfiguration,
    passwd: Option<&[u8]>,
) -> Result<ImageManifest, OciError> {
    let name = AcIdentifier::sanitize(&origin.name).map_err(|e| {
        OciError::Convert(format!(
            "cannot name the image after {:?}: {e}",
            origin.name
        ))
    })?;
    let mut m = ImageManifest::new(name);
    let mut labels = Vec::new();
    if let Some(v) = origin.version.as_deref().filter(|v| !v.is_empty()) {
        labels.push(("version", v.to_string()));
    }
    labels.push(("os", config.os().to_string()));
    labels.push(("arch", appc_arch(config.architecture())));
    m.labels = labels
        .into_iter()
        .map(|(n, value)| Label {
            name: AcIdentifier::new(n).expect("a valid label name"),
            value,
        })
        .collect();

    let c = config.config().clone().unwrap_or_default();
    let entrypoint = c.entrypoint().clone().unwrap_or_default();
    let cmd = c.cmd().clone().unwrap_or_default();
    let mut annotations: Vec<(String, String)> = origin.annotations.clone();
    annotations.push(("appc.io/docker/imageid".into(), config_digest.to_string()));
    annotations.push((
        "appc.io/docker/manifesthash".into(),
        origin.manifest_digest.clone(),
    ));
    if !entrypoint.is_empty() {
        annotations.push((
            "appc.io/docker/entrypoint".into(),
            serde_json::to_string(&entrypoint).expect("strings serialize"),
        ));
    }
    if !cmd.is_empty() {
        annotations.push((
            "appc.io/docker/cmd".into(),
            serde_json::to_string(&cmd).expect("strings serialize"),
        ));
    }
    if let Some(author) = config.author().as_deref().filter(|a| !a.is_empty()) {
        annotations.push(("author".into(), author.to_string()));
    }
    if let Some(created) = config.created().as_deref().filter(|c| is_rfc3339(c)) {
        annotations.push(("created".into(), created.to_string()));
    }
    m.annotations = annotations
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, value)| Annotation {
            name: AcIdentifier::new(n).expect("a valid annotation name"),
            value,
        })
        .collect();

    let exec: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if !exec.is_empty() {
        let (user, group) = user_and_group(c.user().as_deref().unwrap_or(""), passwd);
        let mut app = App {
            exec,
            user,
            group,
            ..App::default()
        };
        app.working_directory = c.working_dir().clone().filter(|wd| wd.starts_with('/'));
        app.environment = environment(c.env().as_deref().unwrap_or_default());
        app.mount_points = mount_points(c.volumes().as_deref().unwrap_or_default());
        app.ports = ports(c.exposed_ports().as_deref().unwrap_or_default())?;
        app.user_labels = c
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>();
        m.app = Some(app);
    }
    m.validate()
        .map_err(|e| OciError::Convert(format!("the converted manifest is invalid: {e}")))?;
    Ok(m)
}

/// appc's arch names (`ToAppcOSArch`).
fn appc_arch(arch: &Arch) -> String {
    match arch {
        Arch::ARM64 => "aarch64".into(),
        Arch::i386 => "i386".into(),
        Arch::ARM => "armv7l".into(),
        other => other.to_string(),
    }
}

/// Docker's `user[:group]`: no user is root; a user without a group gets
/// the group /etc/passwd gives it (0 when it has none there).
fn user_and_group(spec: &str, passwd: Option<&[u8]>) -> (String, String) {
    match spec.split_once(':') {
        _ if spec.is_empty() => ("0".into(), "0".into()),
        Some((u, g)) => (
            if u.is_empty() { "0" } else { u }.to_string(),
            if g.is_empty() { "0" } else { g }.to_string(),
        ),
        None => {
            let gid = passwd
                .and_then(|p| primary_gid(&String::from_utf8_lossy(p), spec))
                .unwrap_or_else(|| "0".into());
            (spec.to_string(), gid)
        }
    }
}

fn primary_gid(passwd: &str, user: &str) -> Option<String> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 4 && (fields[0] == user || fields[2] == user))
            .then(|| fields[3].to_string())
    })
}

fn environment(env: &[String]) -> Vec<EnvironmentVariable> {
    let mut out: Vec<EnvironmentVariable> = Vec::new();
    for entry in env {
        let Some((name, value)) = entry.split_once('=') else {
            continue;
        };
        if !is_env_name(name) {
            continue;
        }
        // A later setting wins, as in Docker.
        out.retain(|e| e.name != name);
        out.push(EnvironmentVariable {
            name: name.to_string(),
            value: value.to_string(),
        });
    }
    out
}

/// `volume-<path>` per volume, numbered when two sanitise alike.
fn mount_points(volumes: &[String]) -> Vec<MountPoint> {
    let mut out: Vec<MountPoint> = Vec::new();
    let mut sorted: Vec<&String> = volumes.iter().collect();
    sorted.sort();
    for path in sorted {
        let Ok(base) = AcName::sanitize(&format!("volume/{path}")) else {
            continue;
        };
        let mut name = base.clone();
        let mut n = 1;
        while out.iter().any(|m| m.name == name) {
            name = AcName::new(format!("{}-{n}", base.as_str())).expect("a valid name");
            n += 1;
        }
        out.push(MountPoint {
            name,
            path: path.clone(),
            read_only: false,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `<port>-<proto>` per exposed port (`8080/tcp`, or `8080` for tcp).
fn ports(exposed: &[String]) -> Result<Vec<Port>, OciError> {
    let mut out = Vec::new();
    for key in exposed {
        let (number, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
        let port: u16 = number.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
            OciError::Convert(format!("exposed port {key:?} is not a port number"))
        })?;
        let protocol = protocol.to_ascii_lowercase();
        let name = AcName::sanitize(&format!("{port}-{protocol}"))
            .map_err(|e| OciError::Convert(format!("exposed port {key:?}: {e}")))?;
        out.push(Port {
            name,
            protocol,
            port,
            count: 1,
            socket_activated: false,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> ImageConfiguration {
        serde_json::from_value(json).unwrap()
    }

    fn origin() -> Origin {
        Origin {
            name: "127.0.0.1:5000/test/five".into(),
            version: Some("v1".into()),
            annotations: vec![("appc.io/docker/registryurl".into(), "127.0.0.1:5000".into())],
            manifest_digest: "sha256:m".into(),
        }
    }

    #[test]
    fn docker_config_becomes_the_app() {
        let c = config(serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "created": "2026-12-06T01:02:03.123456789Z",
            "config": {
                "User": "1000:1000", "Entrypoint": ["/bin/app"], "Cmd": ["arg1", "arg2"],
                "Env": ["FOO=bar", "PATH=/bin", "bad name=x", "FOO=baz"],
                "WorkingDir": "/data",
                "Volumes": {"/data/vol": {}, "/data-vol": {}},
                "ExposedPorts": {"8080/tcp": {}, "53/udp": {}, "9000": {}},
                "Labels": {"com.example": "x"}
            },
            "rootfs": {"type": "layers", "diff_ids": []}
        }));
        let m = aci_manifest(&origin(), "sha256:c", &c, None).unwrap();
        assert_eq!(m.name.as_str(), "127.0.0.1_5000/test/five");
        assert_eq!(m.label("version"), Some("v1"));
        assert_eq!(m.label("os"), Some("linux"));
        assert_eq!(m.label("arch"), Some("amd64"));
        let ann = |n: &str| {
            m.annotations
                .iter()
                .find(|a| a.name.as_str() == n)
                .map(|a| a.value.clone())
        };
        assert_eq!(ann("appc.io/docker/entrypoint").unwrap(), r#"["/bin/app"]"#);
        assert_eq!(ann("appc.io/docker/cmd").unwrap(), r#"["arg1","arg2"]"#);
        assert_eq!(ann("appc.io/docker/imageid").unwrap(), "sha256:c");
        assert_eq!(ann("appc.io/docker/registryurl").unwrap(), "127.0.0.1:5000");
        assert!(ann("created").is_some());
        let app = m.app.unwrap();
        assert_eq!(app.exec, ["/bin/app", "arg1", "arg2"]);
        assert_eq!((app.user.as_str(), app.group.as_str()), ("1000", "1000"));
        assert_eq!(app.working_directory.as_deref(), Some("/data"));
        let env: Vec<String> = app
            .environment
            .iter()
            .map(|e| format!("{}={}", e.name, e.value))
            .collect();
        assert_eq!(env, ["PATH=/bin", "FOO=baz"]);
        let mps: Vec<(&str, &str)> = app
            .mount_points
            .iter()
            .map(|m| (m.name.as_str(), m.path.as_str()))
            .collect();
        assert_eq!(
            mps,
            [
                ("volume-data-vol", "/data-vol"),
                ("volume-data-vol-1", "/data/vol")
            ]
        );
        let ports: Vec<(&str, &str, u16)> = app
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.protocol.as_str(), p.port))
            .collect();
        assert_eq!(
            ports,
            [
                ("53-udp", "udp", 53),
                ("8080-tcp", "tcp", 8080),
                ("9000-tcp", "tcp", 9000)
            ]
        );
        assert_eq!(app.user_labels["com.example"], "x");
    }

    #[test]
    fn users_without_a_group_get_their_passwd_group() {
        let passwd = b"root:x:0:0::/:/bin/sh\nweb:x:33:44::/:/bin/sh\n";
        assert_eq!(user_and_group("", None), ("0".into(), "0".into()));
        assert_eq!(
            user_and_group("web", Some(passwd)),
            ("web".into(), "44".into())
        );
        assert_eq!(
            user_and_group("33", Some(passwd)),
            ("33".into(), "44".into())
        );
        assert_eq!(
            user_and_group("nobody", Some(passwd)),
            ("nobody".into(), "0".into())
        );
        assert_eq!(user_and_group("u:g", None), ("u".into(), "g".into()));
    }

    #[test]
    fn images_without_a_command_have_no_app() {
        let c = config(serde_json::json!({
            "architecture": "arm64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}
        }));
        let m = aci_manifest(&origin(), "sha256:c", &c, None).unwrap();
        assert!(m.app.is_none());
        assert_eq!(m.label("arch"), Some("aarch64"));
    }
}
