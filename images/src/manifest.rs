//! Helpers to make image manifests for the builders and the tests.

use abi::schema::{
    host_os_arch, AcIdentifier, AcName, Annotation, App, EnvironmentVariable, ImageManifest, Label,
    Port, SchemaError, AC_VERSION,
};

/// An image manifest with a name, labels and nothing else.
pub fn image_manifest(name: &str, labels: &[(&str, &str)]) -> Result<ImageManifest, SchemaError> {
    Ok(ImageManifest {
        ac_kind: "ImageManifest".to_string(),
        ac_version: AC_VERSION.to_string(),
        name: AcIdentifier::new(name)?,
        labels: labels
            .iter()
            .map(|(n, v)| {
                Ok(Label {
                    name: AcIdentifier::new(*n)?,
                    value: v.to_string(),
                })
            })
            .collect::<Result<_, SchemaError>>()?,
        app: None,
        dependencies: Vec::new(),
        path_whitelist: Vec::new(),
        annotations: Vec::new(),
    })
}

/// `version`, `os` and `arch` labels for an image built on this machine.
pub fn standard_labels(version: &str) -> [(&str, &str); 3] {
    let (os, arch) = host_os_arch();
    [("version", version), ("os", os), ("arch", arch)]
}

/// An `app` section running `exec` as root with the given environment.
pub fn root_app(exec: &[&str], env: &[(&str, &str)]) -> App {
    App {
        exec: exec.iter().map(|s| s.to_string()).collect(),
        user: "0".to_string(),
        group: "0".to_string(),
        environment: env
            .iter()
            .map(|(n, v)| EnvironmentVariable {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        ..App::default()
    }
}

/// An annotation; `name` must be an AC Identifier.
pub fn annotation(name: &str, value: &str) -> Result<Annotation, SchemaError> {
    Ok(Annotation {
        name: AcIdentifier::new(name)?,
        value: value.to_string(),
    })
}

/// A port declaration with count 1.
pub fn port(name: &str, protocol: &str, port: u16) -> Result<Port, SchemaError> {
    Ok(Port {
        name: AcName::new(name)?,
        protocol: protocol.to_string(),
        port,
        count: 1,
        socket_activated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_serialises_like_appc() {
        let mut m = image_manifest("example.com/x", &standard_labels("1.0")).unwrap();
        m.app = Some(root_app(&["/bin/sh"], &[("PATH", "/bin")]));
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["acKind"], "ImageManifest");
        assert_eq!(v["labels"][1]["value"], "linux");
        assert_eq!(v["app"]["exec"][0], "/bin/sh");
        assert_eq!(v["app"]["environment"][0]["name"], "PATH");
        assert!(image_manifest("Bad Name", &[]).is_err());
    }
}
