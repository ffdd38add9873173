//! ns `stop` entrypoint: SIGTERM (SIGKILL with `--force`) to the pod's PID 1
//! named by `$pod/pid`. The supervisor passes SIGTERM on to the apps and
//! kills them after a grace period; SIGKILL of a PID namespace's init ends
//! every process in it.

use std::path::Path;

use abi::pod_dir;
use abi::stage1::StopArgs;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use stage1_common::status::read_signal_target;
use stage1_ns::fail;

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
    let Some(pid) = read_signal_target(Path::new(pod_dir::PID))? else {
        bail!("{} names no process; is the pod running?", pod_dir::PID);
    };
    match kill(Pid::from_raw(pid), signal) {
        // Already gone: stopping a stopped pod is not an error.
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => bail!("cannot send {signal} to the pod's PID 1 (pid {pid}): {e}"),
    }
}
