//! Generates the pod manifest from the images and the user's overrides,
//! following rkt's `generatePodManifest` rules (names, exec override and
//! appended args, env precedence, mounts merge, isolator replacement).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use abi::schema::{
    AcIdentifier, AcName, Annotation, App, EnvironmentVariable, ExposedPort, ImageId,
    ImageManifest, Isolator, Mount, PodManifest, RuntimeApp, RuntimeImage, Volume, AC_VERSION,
};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ManifestError {
    #[error(
        "image {image} has no app section and no --exec was given; pass --exec=/path/to/binary"
    )]
    NoApp { image: String },
    #[error("image {image}: cannot derive an app name from it; pass --name")]
    NoName { image: String },
    #[error("invalid app name {0:?}: {1}")]
    InvalidName(String, String),
    #[error("two apps are named {0:?}; give one of them another name with --name")]
    DuplicateApp(String),
    #[error("app {app}: exec is empty; pass --exec=/path/to/binary")]
    EmptyExec { app: String },
    #[error("port {name:?} given to --port is not declared by any app of the pod")]
    UnknownPort { name: String },
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
}

/// Overrides for one app, as given on the command line.
#[derive(Debug, Clone)]
pub struct AppRequest {
    pub image_id: String,
    pub image: ImageManifest,
    pub name: Option<String>,
    pub exec: Option<String>,
    pub args: Vec<String>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub supplementary_gids: Option<Vec<u32>>,
    pub working_dir: Option<String>,
    pub readonly_rootfs: bool,
    pub mounts: Vec<Mount>,
    pub annotations: Vec<(String, String)>,
    pub user_annotations: Vec<(String, String)>,
    pub user_labels: Vec<(String, String)>,
    pub environment: Vec<(String, String)>,
    /// Isolators from CLI flags; each replaces the image's of the same name.
    pub isolators: Vec<Isolator>,
}

impl AppRequest {
    /// An app running `image` with no overrides.
    pub fn new(image_id: String, image: ImageManifest) -> Self {
        AppRequest {
            image_id,
            image,
            name: None,
            exec: None,
            args: Vec::new(),
            user: None,
            group: None,
            supplementary_gids: None,
            working_dir: None,
            readonly_rootfs: false,
            mounts: Vec::new(),
            annotations: Vec::new(),
            user_annotations: Vec::new(),
            user_labels: Vec::new(),
            environment: Vec::new(),
            isolators: Vec::new(),
        }
    }
}

/// Pod-wide inputs.
#[derive(Debug, Clone, Default)]
pub struct PodRequest {
    pub apps: Vec<AppRequest>,
    pub volumes: Vec<Volume>,
    pub ports: Vec<ExposedPort>,
    /// `--mount` given before any image: applied to every app (per-app wins).
    pub global_mounts: Vec<Mount>,
    /// rkt's environment for `--inherit-env` (never overrides image values).
    pub inherited_env: Vec<(String, String)>,
    /// `--set-env-file` then `--set-env`, in precedence order.
    pub set_env: Vec<(String, String)>,
    pub mutable: bool,
    /// Pod-level annotations (`app sandbox --annotation`), after rkt's own.
    pub annotations: Vec<(String, String)>,
    /// Pod-level user annotations and labels (`app sandbox`).
    pub user_annotations: BTreeMap<String, String>,
    pub user_labels: BTreeMap<String, String>,
}

/// rkt's pod annotation marking mutable pods.
pub const MUTABLE_ANNOTATION: &str = "coreos.com/rkt/stage1/mutable";

pub fn generate(req: &PodRequest) -> Result<PodManifest, ManifestError> {
    let mut apps: Vec<RuntimeApp> = Vec::with_capacity(req.apps.len());
    for a in &req.apps {
        let ra = runtime_app(req, a)?;
        if apps.iter().any(|x| x.name == ra.name) {
            return Err(ManifestError::DuplicateApp(ra.name.to_string()));
        }
        apps.push(ra);
    }
    for port in &req.ports {
        let declared = apps.iter().any(|ra| {
            ra.app
                .as_ref()
                .is_some_and(|app| app.ports.iter().any(|p| p.name == port.name))
        });
        if !declared && port.pod_port.is_none() {
            return Err(ManifestError::UnknownPort {
                name: port.name.to_string(),
            });
        }
    }
    let mut annotations = vec![Annotation {
        name: AcIdentifier::new(MUTABLE_ANNOTATION).expect("valid identifier"),
        value: req.mutable.to_string(),
    }];
    // rkt's own annotations cannot be overridden.
    add_annotations(&mut annotations, &req.annotations)?;
    Ok(PodManifest {
        ac_version: AC_VERSION.to_string(),
        ac_kind: "PodManifest".to_string(),
        apps,
        volumes: req.volumes.clone(),
        isolators: Vec::new(),
        annotations,
        ports: req.ports.clone(),
        user_annotations: req.user_annotations.clone(),
        user_labels: req.user_labels.clone(),
    })
}

/// The default app name: the sanitized last component of the image name.
pub fn default_app_name(image_name: &str) -> Result<AcName, ManifestError> {
    let last = image_name.rsplit('/').next().unwrap_or(image_name);
    AcName::sanitize(last).map_err(|_| ManifestError::NoName {
        image: image_name.to_string(),
    })
}

fn runtime_app(req: &PodRequest, a: &AppRequest) -> Result<RuntimeApp, ManifestError> {
    let image_name = a.image.name.as_str();
    let name = match &a.name {
        Some(n) => AcName::new(n.clone())
            .map_err(|e| ManifestError::InvalidName(n.clone(), e.to_string()))?,
        None => default_app_name(image_name)?,
    };
    let mut app = match (&a.image.app, &a.exec) {
        (Some(app), _) => app.clone(),
        // rkt: --exec on an image without an app section makes a minimal one
        // running as the caller.
        (None, Some(_)) => App {
            user: nix::unistd::getuid().to_string(),
            group: nix::unistd::getgid().to_string(),
            ..App::default()
        },
        (None, None) => {
            return Err(ManifestError::NoApp {
                image: image_name.to_string(),
            })
        }
    };
    if let Some(exec) = &a.exec {
        app.exec = vec![exec.clone()];
    }
    app.exec.extend(a.args.iter().cloned());
    if app.exec.is_empty() {
        return Err(ManifestError::EmptyExec {
            app: name.to_string(),
        });
    }
    if let Some(u) = &a.user {
        app.user = u.clone();
    }
    if let Some(g) = &a.group {
        app.group = g.clone();
    }
    if let Some(gids) = &a.supplementary_gids {
        app.supplementary_gids = gids.clone();
    }
    if let Some(wd) = &a.working_dir {
        app.working_directory = Some(wd.clone());
    }
    compose_env(&mut app.environment, req, a);
    for iso in &a.isolators {
        app.isolators
            .retain(|i| !same_isolator_kind(&i.name, &iso.name));
        app.isolators.push(iso.clone());
    }
    for (k, v) in &a.user_annotations {
        app.user_annotations.insert(k.clone(), v.clone());
    }
    for (k, v) in &a.user_labels {
        app.user_labels.insert(k.clone(), v.clone());
    }
    let mut annotations: Vec<Annotation> = Vec::new();
    add_annotations(&mut annotations, &a.annotations)?;
    Ok(RuntimeApp {
        name,
        image: RuntimeImage {
            name: Some(a.image.name.clone()),
            id: ImageId::new(a.image_id.clone()).map_err(|e| ManifestError::Invalid {
                what: "image id",
                value: a.image_id.clone(),
                reason: e.to_string(),
            })?,
            labels: a.image.labels.clone(),
        },
        app: Some(app),
        read_only_root_fs: a.readonly_rootfs,
        mounts: merge_mounts(&req.global_mounts, &a.mounts),
        annotations,
    })
}

/// Precedence, low to high: inherited env (never overrides the image), image
/// env, `--set-env-file`, `--set-env`, per-app `--environment`.
fn compose_env(env: &mut Vec<EnvironmentVariable>, req: &PodRequest, a: &AppRequest) {
    let set = |env: &mut Vec<EnvironmentVariable>, k: &str, v: &str| match env
        .iter_mut()
        .find(|e| e.name == k)
    {
        Some(e) => e.value = v.to_string(),
        None => env.push(EnvironmentVariable {
            name: k.to_string(),
            value: v.to_string(),
        }),
    };
    for (k, v) in &req.inherited_env {
        if !env.iter().any(|e| &e.name == k) {
            env.push(EnvironmentVariable {
                name: k.clone(),
                value: v.clone(),
            });
        }
    }
    for (k, v) in req.set_env.iter().chain(&a.environment) {
        set(env, k, v);
    }
}

/// Isolators of the same family replace each other: a CLI capability set
/// replaces both retain and remove sets of the image, likewise for seccomp.
fn same_isolator_kind(a: &AcIdentifier, b: &AcIdentifier) -> bool {
    let family = |n: &str| -> String {
        if n.starts_with("os/linux/capabilities-") {
            "caps".into()
        } else if n.starts_with("os/linux/seccomp-") {
            "seccomp".into()
        } else {
            n.to_string()
        }
    };
    family(a.as_str()) == family(b.as_str())
}

/// Global mounts apply to every app; per-app mounts win on the same path.
/// Duplicates are removed by cleaned target path.
fn merge_mounts(global: &[Mount], per_app: &[Mount]) -> Vec<Mount> {
    let mut out: Vec<Mount> = Vec::new();
    for m in per_app.iter().chain(global) {
        let cleaned = clean_path(&m.path);
        if !out.iter().any(|x| clean_path(&x.path) == cleaned) {
            out.push(m.clone());
        }
    }
    out
}

/// Lexical path cleaning (Go's `filepath.Clean` for absolute paths).
pub fn clean_path(p: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Appends `pairs` as annotations; an annotation already present (or given
/// earlier) keeps its first value, as rkt did for command-line annotations.
fn add_annotations(
    annotations: &mut Vec<Annotation>,
    pairs: &[(String, String)],
) -> Result<(), ManifestError> {
    for (k, v) in pairs {
        let name = AcIdentifier::new(k.clone()).map_err(|e| ManifestError::Invalid {
            what: "annotation name",
            value: k.clone(),
            reason: e.to_string(),
        })?;
        if !annotations.iter().any(|x| x.name == name) {
            annotations.push(Annotation {
                name,
                value: v.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(json: &str) -> ImageManifest {
        serde_json::from_str(json).unwrap()
    }

    fn busybox() -> ImageManifest {
        image(
            r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/some-app",
            "app":{"exec":["/bin/sh"],"user":"0","group":"0",
                   "environment":[{"name":"A","value":"image"},{"name":"B","value":"image"}],
                   "ports":[{"name":"http","protocol":"tcp","port":80}]}}"#,
        )
    }

    fn app_req() -> AppRequest {
        AppRequest::new("sha512-0123".into(), busybox())
    }

    #[test]
    fn name_exec_args_and_env_precedence() {
        let req = PodRequest {
            apps: vec![AppRequest {
                exec: Some("/bin/echo".into()),
                args: vec!["hi".into()],
                environment: vec![("C".into(), "app".into())],
                ..app_req()
            }],
            inherited_env: vec![("A".into(), "inherited".into()), ("I".into(), "inh".into())],
            set_env: vec![("B".into(), "set".into()), ("C".into(), "set".into())],
            ..Default::default()
        };
        let pm = generate(&req).unwrap();
        let ra = &pm.apps[0];
        assert_eq!(ra.name.as_str(), "some-app");
        let app = ra.app.as_ref().unwrap();
        assert_eq!(app.exec, vec!["/bin/echo", "hi"]);
        let env: Vec<(String, String)> = app
            .environment
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("image"));
        assert_eq!(get("B"), Some("set"));
        assert_eq!(get("C"), Some("app"));
        assert_eq!(get("I"), Some("inh"));
        assert_eq!(pm.annotations[0].value, "false");
    }

    #[test]
    fn duplicate_names_and_missing_app_are_errors() {
        let req = PodRequest {
            apps: vec![app_req(), app_req()],
            ..Default::default()
        };
        assert!(matches!(
            generate(&req),
            Err(ManifestError::DuplicateApp(_))
        ));
        let mut no_app = app_req();
        no_app.image.app = None;
        let req = PodRequest {
            apps: vec![no_app],
            ..Default::default()
        };
        assert!(matches!(generate(&req), Err(ManifestError::NoApp { .. })));
    }

    #[test]
    fn per_app_mounts_win_and_ports_must_exist() {
        let m = |v: &str, p: &str| Mount {
            volume: AcName::new(v).unwrap(),
            path: p.into(),
            app_volume: None,
        };
        let merged = merge_mounts(&[m("g", "/data"), m("g2", "/other")], &[m("a", "/data/")]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].volume.as_str(), "a");
        let req = PodRequest {
            apps: vec![app_req()],
            ports: vec![ExposedPort {
                name: AcName::new("nope").unwrap(),
                host_port: 8080,
                host_ip: None,
                pod_port: None,
            }],
            ..Default::default()
        };
        assert!(matches!(
            generate(&req),
            Err(ManifestError::UnknownPort { .. })
        ));
    }

    #[test]
    fn sandbox_manifest_is_mutable_with_pod_annotations() {
        let req = PodRequest {
            mutable: true,
            annotations: vec![
                ("example.com/a".into(), "1".into()),
                (MUTABLE_ANNOTATION.into(), "false".into()),
            ],
            user_labels: BTreeMap::from([("team".into(), "x".into())]),
            ..Default::default()
        };
        let pm = generate(&req).unwrap();
        assert!(pm.apps.is_empty());
        let ann: Vec<(&str, &str)> = pm
            .annotations
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            ann,
            vec![(MUTABLE_ANNOTATION, "true"), ("example.com/a", "1")]
        );
        assert_eq!(pm.user_labels.get("team").map(String::as_str), Some("x"));
        let bad = PodRequest {
            annotations: vec![("Not Valid".into(), "1".into())],
            ..Default::default()
        };
        assert!(generate(&bad).is_err());
    }
}
