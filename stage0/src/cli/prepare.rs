//! `rkt prepare`: create a pod ready for `run-prepared` and print its UUID.

use std::os::fd::{AsRawFd, OwnedFd};

use anyhow::{Context as _, Result};
use clap::Args;

use super::pod_flags::PrepareFlags;
use super::prepare_pod::prepare_pod;
use super::Context;

#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// suppress superfluous output on stderr; print only the UUID on stdout
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    prepare: PrepareFlags,
}

pub fn run(ctx: &Context, args: PrepareArgs) -> Result<i32> {
    stage0::pod::lifecycle::ensure_superuser()?;
    let muted = if args.quiet {
        Some(mute_stderr()?)
    } else {
        None
    };
    let prepared = prepare_pod(ctx, &args.prepare, None, None);
    if let Some(saved) = muted {
        restore_stderr(saved);
    }
    let mut prepared = prepared?;
    prepared.pod.to_prepared()?;
    println!("{}", prepared.pod.uuid());
    Ok(0)
}

/// Points stderr at /dev/null (warnings and notices), returning the real one.
/// Errors are printed after it is restored.
fn mute_stderr() -> Result<OwnedFd> {
    let saved = nix::unistd::dup(std::io::stderr().as_raw_fd()).context("cannot save stderr")?;
    // SAFETY: dup returned a fresh descriptor we now own.
    let saved = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(saved) };
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("cannot open /dev/null")?;
    nix::unistd::dup2(null.as_raw_fd(), 2).context("cannot redirect stderr")?;
    Ok(saved)
}

fn restore_stderr(saved: OwnedFd) {
    let _ = nix::unistd::dup2(saved.as_raw_fd(), 2);
}
