//! `rkt stop`: ask a running pod's stage1 to stop it.

use std::process::Command;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use stage0::pod::lifecycle::{read_uuid_file, Pod, PodState};
use stage0::pod::stage1::Stage1Image;

use abi::stage1::{Entrypoint, Feature, StopArgs as Stage1StopArgs};

use super::Context;

#[derive(Args, Debug)]
pub struct StopArgs {
    /// forced stopping
    #[arg(long)]
    force: bool,
    /// read pod UUID from file instead of argument
    #[arg(long, value_name = "FILE")]
    uuid_file: Option<std::path::PathBuf>,
    /// pod UUIDs (or unique prefixes)
    uuids: Vec<String>,
}

pub fn run(ctx: &Context, args: StopArgs) -> Result<i32> {
    let mut errors = 0;
    let uuids = match (&args.uuid_file, args.uuids.is_empty()) {
        (Some(f), true) => {
            vec![read_uuid_file(f).map_err(|e| anyhow!("unable to resolve UUID from file: {e}"))?]
        }
        (None, false) => args.uuids.clone(),
        _ => bail!("pass --uuid-file=FILE or one or more UUIDs"),
    };
    for u in &uuids {
        let pod = match Pod::load_prefix(&ctx.data_dir, u) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("stop: cannot get pod: {e}");
                errors += 1;
                continue;
            }
        };
        if pod.state().is_after_run() {
            println!("pod {:?} is already stopped", pod.uuid());
            continue;
        }
        if pod.state() != PodState::Running {
            eprintln!("stop: pod {:?} is not running", pod.uuid());
            errors += 1;
            continue;
        }
        match stop_pod(&pod, args.force) {
            Ok(()) => println!("{:?}", pod.uuid()),
            Err(e) => {
                eprintln!("stop: error stopping {:?}: {e:#}", pod.uuid());
                errors += 1;
            }
        }
    }
    if errors > 0 {
        bail!("failed to stop {errors} pod(s)");
    }
    Ok(0)
}

fn stop_pod(pod: &Pod, force: bool) -> Result<()> {
    let s1 = Stage1Image::load(pod.path())?;
    if !s1.supports(Feature::Stop) {
        bail!(
            "the {} stage1 does not support {}",
            s1.flavor(),
            Feature::Stop.describe()
        );
    }
    let ep = s1
        .entrypoint_path(pod.path(), Entrypoint::Stop)
        .map_err(|e| anyhow!("rkt stop not implemented for pod's stage1: {e}"))?;
    let argv = Stage1StopArgs {
        force,
        uuid: pod.uuid().to_string(),
    }
    .to_argv();
    let status = Command::new(&ep)
        .args(&argv)
        .current_dir(pod.path())
        .status()
        .map_err(|e| anyhow!("cannot run {}: {e}", ep.display()))?;
    if !status.success() {
        bail!("{} exited with {status}", ep.display());
    }
    Ok(())
}
