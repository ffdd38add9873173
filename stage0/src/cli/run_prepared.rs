//! `rkt run-prepared UUID`: run a pod made by `rkt prepare`.

use anyhow::{bail, Result};
use clap::Args;
use stage0::pod::lifecycle::{Pod, PodState};
use stage0::pod::stage1::Stage1Image;

use super::launch::{launch, overlay_choice};
use super::pod_flags::{check_features, Demands, RuntimeFlags};
use super::Context;

#[derive(Args, Debug)]
pub struct RunPreparedArgs {
    #[command(flatten)]
    runtime: RuntimeFlags,
    /// the prepared pod's UUID (or a unique prefix)
    #[arg(value_name = "UUID")]
    uuid: String,
}

pub fn run(ctx: &Context, args: RunPreparedArgs) -> Result<i32> {
    stage0::pod::lifecycle::ensure_superuser()?;
    let uuid = Pod::resolve_uuid(&ctx.data_dir, &args.uuid)?;
    let mut pod = Pod::load(&ctx.data_dir, &uuid)?;
    if pod.state() != PodState::Prepared {
        bail!("pod {uuid} is not prepared (state: {})", pod.state());
    }
    let manifest = pod.manifest()?;
    args.runtime
        .validate(manifest.ports.len(), manifest.apps.len())?;
    let stage1 = Stage1Image::load(pod.path())?;
    let demands = Demands {
        apps: manifest.apps.len(),
        net: args.runtime.net_list(),
        ..Default::default()
    };
    check_features(&stage1, &demands, Some(&args.runtime))?;
    let overlay_prepared = pod.path().join(abi::pod_dir::OVERLAY_PREPARED).exists();
    if overlay_prepared && !overlay_choice(ctx, false) {
        bail!("pod {uuid} was prepared with overlayfs, which is not available now; prepare it again with --no-overlay");
    }
    pod.to_run()?;
    launch(ctx, &pod, &stage1, &manifest, &args.runtime)
}
