//! `rkt prepare`: create a pod ready for `run-prepared` and print its UUID.

use anyhow::Result;
use clap::Args;

use super::pod_flags::PrepareFlags;
use super::prepare_pod::prepare_pod;
use super::Context;

#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// print only the UUID on stdout
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    prepare: PrepareFlags,
}

pub fn run(ctx: &Context, args: PrepareArgs) -> Result<i32> {
    stage0::pod::lifecycle::ensure_superuser()?;
    let mut prepared = prepare_pod(ctx, &args.prepare, None, None)?;
    prepared.pod.to_prepared()?;
    let _ = args.quiet;
    println!("{}", prepared.pod.uuid());
    Ok(0)
}
