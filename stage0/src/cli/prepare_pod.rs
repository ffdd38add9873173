//! The pipeline `run` and `prepare` share: validate flags, choose stage1,
//! fetch images, generate the pod manifest, create the pod and lay it out.

use std::collections::BTreeMap;
use std::path::Path;

use abi::schema::{valid_os_arch, ExposedPort, ImageManifest, PodManifest, VolumeKind};
use anyhow::{bail, Context as _, Result};
use stage0::fetch::{Fetcher, PullPolicy};
use stage0::pod::lifecycle::Pod;
use stage0::pod::manifest::{generate, AppRequest, PodRequest};
use stage0::pod::options::{
    check_volume_sources, parse_env_pair, parse_mount, parse_port, parse_volume, read_env_file,
};
use stage0::pod::render::{render_pod, AppImage};
use stage0::pod::select::{select_stage1, Stage1Request};
use stage0::pod::stage1::Stage1Image;
use stage0::pod::userns;
use stage0::store::Store;

use super::apps::{parse_apps, AppSpec};
use super::isolator_flags::isolators_from_flags;
use super::launch::overlay_choice;
use super::pod_flags::{check_features, Demands, PrepareFlags, RuntimeFlags};
use super::Context;

/// A pod that has been prepared (still locked, in `prepare/`).
pub struct PreparedPod {
    pub pod: Pod,
    pub stage1: Stage1Image,
    pub manifest: PodManifest,
}

pub fn pull_policy(flags: &PrepareFlags) -> Result<PullPolicy> {
    if flags.store_only && flags.no_store {
        bail!("--store-only and --no-store cannot be used together; use --pull-policy");
    }
    if flags.store_only {
        return Ok(PullPolicy::Never);
    }
    if flags.no_store {
        return Ok(PullPolicy::Update);
    }
    PullPolicy::parse(&flags.pull_policy).map_err(anyhow::Error::msg)
}

/// What sets `app sandbox`'s pod apart: no apps, the mutable annotation, and
/// pod-level annotations and labels.
#[derive(Debug, Default)]
pub struct SandboxOptions {
    /// `--port` of a sandbox, with the protocol and pod port it names.
    pub ports: Vec<ExposedPort>,
    pub annotations: Vec<(String, String)>,
    pub user_annotations: BTreeMap<String, String>,
    pub user_labels: BTreeMap<String, String>,
}

pub fn prepare_pod(
    ctx: &Context,
    flags: &PrepareFlags,
    runtime: Option<&RuntimeFlags>,
    uuid_file_save: Option<&Path>,
) -> Result<PreparedPod> {
    prepare(ctx, flags, runtime, uuid_file_save, None)
}

/// Prepares a mutable pod with no apps (`app sandbox`); the stage1 must
/// support mutable pods.
pub fn prepare_sandbox(
    ctx: &Context,
    flags: &PrepareFlags,
    runtime: &RuntimeFlags,
    uuid_file_save: Option<&Path>,
    sandbox: &SandboxOptions,
) -> Result<PreparedPod> {
    prepare(ctx, flags, Some(runtime), uuid_file_save, Some(sandbox))
}

fn prepare(
    ctx: &Context,
    flags: &PrepareFlags,
    runtime: Option<&RuntimeFlags>,
    uuid_file_save: Option<&Path>,
    sandbox: Option<&SandboxOptions>,
) -> Result<PreparedPod> {
    let specs = parse_apps(&flags.images)?;
    if let Some(flag) = flags.app.first_set_flag() {
        bail!("{flag} must follow an image");
    }
    let policy = pull_policy(flags)?;
    if flags.private_users && !flags.no_overlay {
        bail!("--private-users cannot be used with overlay (overlayfs cannot shift file owners); add --no-overlay");
    }
    if let Some(rt) = runtime {
        let ports = flags.port.len() + sandbox.map_or(0, |s| s.ports.len());
        rt.validate(ports, specs.len())?;
    }
    if flags.pod_manifest.is_some() {
        let conflicts = [
            (!specs.is_empty(), "images"),
            (!flags.volume.is_empty(), "--volume"),
            (!flags.app.mount.is_empty(), "--mount"),
            (!flags.port.is_empty(), "--port"),
            (flags.inherit_env, "--inherit-env"),
            (!flags.set_env.is_empty(), "--set-env"),
            (flags.set_env_file.is_some(), "--set-env-file"),
            (policy != PullPolicy::New, "--pull-policy"),
        ];
        if let Some((_, what)) = conflicts.iter().find(|(c, _)| *c) {
            bail!("{what} cannot be used with --pod-manifest; put it in the pod manifest instead");
        }
    } else if specs.is_empty() && sandbox.is_none() {
        bail!("no images given; pass an image file, name or hash (or --pod-manifest)");
    }

    let store = Store::open(&ctx.data_dir)?;
    let config = ctx.config();
    let fetcher = ctx.fetcher(&store, policy)?;
    let stage1_req = Stage1Request {
        url: flags.stage1_url.clone(),
        path: flags.stage1_path.clone(),
        name: flags.stage1_name.clone(),
        hash: flags.stage1_hash.clone(),
        from_dir: flags.stage1_from_dir.clone(),
    };
    let stage1_key = select_stage1(&store, &fetcher, &stage1_req, config)?;
    let stage1_manifest = store.manifest(&stage1_key)?;
    let stage1 = Stage1Image::from_manifest(stage1_manifest.clone())?;
    if sandbox.is_some() && !stage1.supports_mutable() {
        bail!(
            "the {} stage1 ({}) does not support mutable pods (no app add/start/stop/rm entrypoints); choose one that does, e.g. --stage1-name=coreos.com/rkt/stage1-ns",
            stage1.flavor(),
            stage1.name()
        );
    }

    let (manifest, app_images) = match &flags.pod_manifest {
        Some(path) => manifest_from_file(&store, path)?,
        None => manifest_from_flags(&store, &fetcher, flags, &specs, sandbox)?,
    };

    let mut demands = Demands {
        apps: manifest.apps.len(),
        net: runtime.and_then(RuntimeFlags::net_list),
        ports: !manifest.ports.is_empty(),
        volumes: !manifest.volumes.is_empty()
            || manifest.apps.iter().any(|a| {
                !a.mounts.is_empty() || a.app.as_ref().is_some_and(|x| !x.mount_points.is_empty())
            }),
        private_users: flags.private_users,
        ..Default::default()
    };
    for spec in &specs {
        demands.add_app_flags(&spec.flags);
    }
    demands.readonly_rootfs |= manifest.apps.iter().any(|a| a.read_only_root_fs);
    check_features(&stage1, &demands, runtime)?;
    warn_ignored_isolators(&stage1, &manifest);
    check_volume_sources(&manifest.volumes).map_err(anyhow::Error::msg)?;

    let use_overlay = overlay_choice(ctx, flags.no_overlay);
    let pod = Pod::create(&ctx.data_dir)?;
    let laid_out = uuid_file_save
        .map_or(Ok(()), |path| {
            stage0::pod::lifecycle::write_uuid_file(path, pod.uuid()).map_err(anyhow::Error::from)
        })
        .and_then(|()| {
            render_pod(
                &store,
                pod.path(),
                &manifest,
                (&stage1_key, &stage1_manifest),
                &app_images,
                use_overlay,
            )
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                if flags.private_users {
                    userns::prepare(pod.path())?;
                }
                Ok(())
            })
            .with_context(|| format!("cannot prepare pod {}", pod.uuid()))
        });
    if let Err(e) = laid_out {
        let uuid = pod.uuid().to_string();
        if let Err(cleanup) = pod.abandon() {
            tracing::warn!("cannot remove the half-prepared pod {uuid}: {cleanup}");
        }
        return Err(e);
    }
    // Touching marks the images as used for `image gc`.
    for app in &app_images {
        let _ = store.touch(&app.key);
    }
    let _ = store.touch(&stage1_key);
    Ok(PreparedPod {
        pod,
        stage1,
        manifest,
    })
}

fn manifest_from_flags(
    store: &Store,
    fetcher: &Fetcher,
    flags: &PrepareFlags,
    specs: &[AppSpec],
    sandbox: Option<&SandboxOptions>,
) -> Result<(PodManifest, Vec<AppImage>)> {
    let mut requests = Vec::with_capacity(specs.len());
    let mut keys = Vec::with_capacity(specs.len());
    for spec in specs {
        let signature = spec.flags.signature.as_deref().map(Path::new);
        let key = fetcher.fetch_with_deps(&spec.image, signature)?;
        let image = store.manifest(&key)?;
        check_os_arch(&image)?;
        let mut req = AppRequest::new(key.to_string(), image);
        apply_app_flags(&mut req, spec)?;
        keys.push(key);
        requests.push(req);
    }
    let mut set_env = match &flags.set_env_file {
        Some(f) => read_env_file(f)?,
        None => Vec::new(),
    };
    for e in &flags.set_env {
        set_env.push(parse_env_pair(e)?);
    }
    let pod_req = PodRequest {
        volumes: flags
            .volume
            .iter()
            .map(|v| parse_volume(v))
            .collect::<Result<_, _>>()?,
        ports: flags
            .port
            .iter()
            .map(|p| parse_port(p))
            .chain(sandbox.iter().flat_map(|s| s.ports.iter().cloned().map(Ok)))
            .collect::<Result<_, _>>()?,
        global_mounts: flags
            .app
            .mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<_, _>>()?,
        inherited_env: if flags.inherit_env {
            std::env::vars().collect()
        } else {
            Vec::new()
        },
        set_env,
        mutable: sandbox.is_some(),
        annotations: sandbox.map(|s| s.annotations.clone()).unwrap_or_default(),
        user_annotations: sandbox
            .map(|s| s.user_annotations.clone())
            .unwrap_or_default(),
        user_labels: sandbox.map(|s| s.user_labels.clone()).unwrap_or_default(),
        apps: requests,
    };
    let manifest = generate(&pod_req)?;
    let apps = manifest
        .apps
        .iter()
        .zip(keys)
        .zip(&pod_req.apps)
        .map(|((ra, key), req)| AppImage {
            name: ra.name.to_string(),
            key,
            manifest: req.image.clone(),
        })
        .collect();
    Ok((manifest, apps))
}

pub fn apply_app_flags(req: &mut AppRequest, spec: &AppSpec) -> Result<()> {
    let f = &spec.flags;
    req.name = f.name.clone();
    req.exec = f.exec.clone();
    req.args = spec.args.clone();
    req.user = f.user.clone();
    req.group = f.group.clone();
    req.supplementary_gids = match &f.supplementary_gids {
        None => None,
        Some(s) => Some(
            s.split(',')
                .filter(|g| !g.is_empty())
                .map(|g| {
                    g.trim()
                        .parse::<u32>()
                        .with_context(|| format!("invalid --supplementary-gids entry {g:?}"))
                })
                .collect::<Result<_>>()?,
        ),
    };
    req.working_dir = f.working_dir.clone();
    if let Some(wd) = &req.working_dir {
        if !wd.starts_with('/') {
            bail!("--working-dir {wd:?} must be an absolute path");
        }
    }
    req.readonly_rootfs = f.readonly_rootfs.unwrap_or(false);
    req.mounts = f
        .mount
        .iter()
        .map(|m| parse_mount(m))
        .collect::<Result<_, _>>()?;
    let pairs = |list: &[String]| -> Result<Vec<(String, String)>> {
        list.iter()
            .map(|p| parse_env_pair(p).map_err(anyhow::Error::from))
            .collect()
    };
    req.annotations = pairs(&f.annotation)?;
    req.user_annotations = pairs(&f.user_annotation)?;
    req.user_labels = pairs(&f.user_label)?;
    req.environment = pairs(&f.environment)?;
    req.isolators = isolators_from_flags(f)?;
    Ok(())
}

/// Images must be for this host's os/arch (rkt: `prepareAppImage`).
pub fn check_os_arch(image: &ImageManifest) -> Result<()> {
    let (host_os, host_arch) = abi::schema::host_os_arch();
    let os = image.label("os");
    let arch = image.label("arch");
    match (os, arch) {
        (Some(os), Some(arch)) => {
            valid_os_arch(os, arch)?;
            if os != host_os || arch != host_arch {
                bail!(
                    "image {} is for {os}/{arch}, this host is {host_os}/{host_arch}",
                    image.name
                );
            }
            Ok(())
        }
        _ => bail!(
            "image {} has no os and arch labels; add os={host_os} and arch={host_arch} labels to its manifest",
            image.name
        ),
    }
}

fn manifest_from_file(store: &Store, path: &Path) -> Result<(PodManifest, Vec<AppImage>)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read --pod-manifest {}", path.display()))?;
    let manifest = PodManifest::from_json(&bytes)
        .with_context(|| format!("invalid pod manifest {}", path.display()))?;
    if manifest.apps.is_empty() {
        bail!("pod manifest {} has no apps", path.display());
    }
    let mut apps = Vec::new();
    for ra in &manifest.apps {
        let key = store.resolve_key(ra.image.id.as_str()).with_context(|| {
            format!(
                "app {}: image {} is not in the store; fetch it first",
                ra.name, ra.image.id
            )
        })?;
        let image = store.manifest(&key)?;
        if ra.app.is_none() && image.app.is_none() {
            bail!(
                "app {}: neither the pod manifest nor image {} has an app section",
                ra.name,
                image.name
            );
        }
        for v in &manifest.volumes {
            if v.kind == VolumeKind::Host && v.source.is_none() {
                bail!("volume {} has no source", v.name);
            }
        }
        apps.push(AppImage {
            name: ra.name.to_string(),
            key,
            manifest: image,
        });
    }
    Ok((manifest, apps))
}

/// appc: executors must tell the user which isolators they ignore.
fn warn_ignored_isolators(stage1: &Stage1Image, manifest: &PodManifest) {
    use abi::stage1::Feature;
    for ra in &manifest.apps {
        let Some(app) = &ra.app else { continue };
        for iso in &app.isolators {
            let name = iso.name.as_str();
            let feature = if name.starts_with("resource/") || name == "os/linux/cpu-shares" {
                Feature::ResourceIsolators
            } else if name.starts_with("os/linux/capabilities-") {
                Feature::Capabilities
            } else if name.starts_with("os/linux/seccomp-") {
                Feature::Seccomp
            } else if name == "os/linux/oom-score-adj" {
                Feature::OomScoreAdj
            } else if name == "os/linux/no-new-privileges" {
                Feature::NoNewPrivileges
            } else {
                continue;
            };
            if !stage1.supports(feature) {
                eprintln!(
                    "warning: the {} stage1 ignores the {name} isolator of app {}",
                    stage1.flavor(),
                    ra.name
                );
            }
        }
        if !app.event_handlers.is_empty() && !stage1.supports(Feature::EventHandlers) {
            eprintln!(
                "warning: the {} stage1 does not run the event handlers of app {}",
                stage1.flavor(),
                ra.name
            );
        }
    }
}
