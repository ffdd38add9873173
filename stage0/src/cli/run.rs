//! `rkt run`: prepare a pod and exec its stage1 in one go.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::launch::launch;
use super::pod_flags::{PrepareFlags, RuntimeFlags};
use super::prepare_pod::prepare_pod;
use super::Context;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// write the pod's UUID to this file as soon as the pod exists
    #[arg(long, value_name = "FILE")]
    uuid_file_save: Option<PathBuf>,
    #[command(flatten)]
    runtime: RuntimeFlags,
    #[command(flatten)]
    prepare: PrepareFlags,
}

pub fn run(ctx: &Context, args: RunArgs) -> Result<i32> {
    stage0::pod::lifecycle::ensure_superuser()?;
    let mut prepared = prepare_pod(
        ctx,
        &args.prepare,
        Some(&args.runtime),
        args.uuid_file_save.as_deref(),
    )?;
    prepared.pod.to_run()?;
    launch(
        ctx,
        &prepared.pod,
        &prepared.stage1,
        &prepared.manifest,
        &args.runtime,
    )
}
