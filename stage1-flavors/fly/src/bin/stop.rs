//! fly `stop` entrypoint: SIGTERM (SIGKILL with `--force`) to the app in
//! `$pod/pid`, falling back to its process group from `$pod/pgid`.

use std::path::Path;

use abi::pod_dir;
use abi::stage1::StopArgs;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpgrp, Pid};
use stage1_common::status::read_signal_target;
use stage1_fly::fail;

fn main() {
    if let Err(e) = run() {
        fail(format!("{e:#}"));
    }
}

fn run() -> Result<()> {
    let args = StopArgs::parse(std::env::args().skip(1)).context("invalid stop arguments")?;
    let signal = if args.force {
        Signal::SIGKILL
    } else {
        Signal::SIGTERM
    };
    let pid = read_signal_target(Path::new(pod_dir::PID))?;
    let pgid = read_signal_target(Path::new(pod_dir::PGID))?.filter(|g| *g != getpgrp().as_raw());
    if pid.is_none() && pgid.is_none() {
        bail!(
            "neither {} nor {} names a process; is the pod running?",
            pod_dir::PID,
            pod_dir::PGID
        );
    }

    let by_pid = pid.map(|p| kill(Pid::from_raw(p), signal));
    // With --force the whole group goes, so no child outlives the app.
    if matches!(by_pid, Some(Ok(()))) && !args.force {
        return Ok(());
    }
    let by_group = pgid.map(|g| killpg(Pid::from_raw(g), signal));
    match (by_pid, by_group) {
        (Some(Ok(())), _) | (_, Some(Ok(()))) => Ok(()),
        // Already gone: stopping a stopped pod is not an error.
        (Some(Err(Errno::ESRCH)) | None, Some(Err(Errno::ESRCH)) | None) => Ok(()),
        (Some(Err(e)), _) | (_, Some(Err(e))) => {
            bail!("cannot send {signal} to the pod (pid {pid:?}, pgid {pgid:?}): {e}")
        }
    }
}
