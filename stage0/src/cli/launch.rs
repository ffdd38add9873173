//! The common tail of `run` and `run-prepared`: turn runtime flags into the
//! stage1 `run` arguments, mount the pod and exec stage1.

use abi::pod_dir;
use abi::schema::PodManifest;
use abi::stage1::{Feature, RunArgs};
use anyhow::{Context as _, Result};
use stage0::pod::launch::{
    exec_stage1, mount_pod, overlay_supported, write_stage0_files, StageZeroFiles,
};
use stage0::pod::lifecycle::Pod;
use stage0::pod::manifest::MUTABLE_ANNOTATION;
use stage0::pod::stage1::Stage1Image;
use stage0::pod::userns;
use stage0::services::metadata::client;
use std::os::fd::AsFd;
use std::path::Path;

use super::pod_flags::{effective_net, RuntimeFlags};
use super::Context;

/// Whether to use overlayfs: not with `--no-overlay`, and not where the data
/// dir cannot host it (with rkt's message).
pub fn overlay_choice(ctx: &Context, no_overlay: bool) -> bool {
    if no_overlay {
        return false;
    }
    match overlay_supported(&ctx.data_dir) {
        Ok(()) => true,
        Err(reason) => {
            eprintln!("disabling overlay support: {reason:?}");
            false
        }
    }
}

/// Registers the pod and its apps' image manifests with the metadata
/// service under a new token, which stage1 puts in the apps' URL. The
/// marker is written first, so gc unregisters even a half-done
/// registration.
fn register_with_metadata_service(pod: &Pod, manifest: &PodManifest) -> Result<String> {
    std::fs::write(pod.path().join(pod_dir::MDS_REGISTERED), b"")
        .context("cannot mark the pod as registered with the metadata service")?;
    let mut apps = Vec::new();
    for app in &manifest.apps {
        let name = app.name.as_str();
        let path = pod
            .path()
            .join(pod_dir::APPS_INFO_DIR)
            .join(name)
            .join("manifest");
        let image = std::fs::read(&path)
            .with_context(|| format!("cannot read the image manifest of app {name:?}"))?;
        apps.push((name.to_string(), image));
    }
    let token = client::new_token();
    let body = std::fs::read(pod.path().join(pod_dir::POD_MANIFEST))
        .context("cannot read the pod manifest")?;
    client::register_pod(
        Path::new(abi::metadata::REGISTRATION_SOCKET),
        pod.uuid(),
        &token,
        &body,
        &apps,
    )?;
    Ok(token)
}

/// Mounts the pod, writes stage0's files and execs stage1. Returns only on error.
pub fn launch(
    ctx: &Context,
    pod: &Pod,
    stage1: &Stage1Image,
    manifest: &PodManifest,
    rt: &RuntimeFlags,
) -> Result<i32> {
    let plan = rt.dns_flags().plan()?;
    let host_mounts = mount_pod(&ctx.data_dir, pod.path(), manifest)?;
    write_stage0_files(
        pod.path(),
        manifest,
        &StageZeroFiles {
            resolv_conf: plan.resolv_conf.clone(),
            hosts: plan.hosts.clone(),
        },
    )?;
    let args = RunArgs {
        debug: ctx.debug,
        net: effective_net(stage1, rt),
        interactive: rt.interactive,
        private_users: userns::read(pod.path())?.map(|r| r.to_string()),
        mds_token: match rt.mds_register {
            true => Some(register_with_metadata_service(pod, manifest)?),
            false => None,
        },
        local_config: ctx.local_config.display().to_string(),
        hostname: rt.hostname.clone(),
        dns_conf_mode: plan.mode,
        disable_capabilities: ctx.insecure.capabilities,
        disable_paths: ctx.insecure.paths,
        disable_seccomp: ctx.insecure.seccomp,
        // `rkt app sandbox` pods: the stage1 keeps them running for `rkt app`.
        mutable: manifest
            .annotations
            .iter()
            .any(|a| a.name.as_str() == MUTABLE_ANNOTATION && a.value == "true"),
        ipc: rt.ipc_mode()?,
        uuid: pod.uuid().to_string(),
    };
    let lock_fd = pod
        .lock_fd()
        .context("internal error: the pod is not locked before exec")?;
    super::profile::finish();
    let err = exec_stage1(
        pod.path(),
        stage1,
        &args,
        lock_fd,
        // Only a stage1 with contained networking needs it (for the netns
        // bind); no other gets a way back into rkt's mount namespace.
        host_mounts
            .as_ref()
            .filter(|_| stage1.supports(Feature::NetContained))
            .map(AsFd::as_fd),
        &mut |w| eprintln!("{w}"),
    );
    Err(err.into())
}
