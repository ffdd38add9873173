//! `rkt gc`: mark exited and aborted pods as garbage, expire old prepared
//! pods, then delete garbage past its grace period.

use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Result};
use clap::Args;
use stage0::pod::lifecycle::{
    ensure_superuser, parse_go_duration, DeleteOptions, Pod, PodError, PodState, StateDir,
};
use stage0::pod::mounts::MountTable;

use super::Context;

#[derive(Args, Debug)]
pub struct GcArgs {
    /// duration to wait before discarding inactive pods from garbage
    #[arg(long, default_value = "30m", value_name = "DURATION", value_parser = parse_go_duration)]
    grace_period: Duration,
    /// duration to wait before expiring prepared pods
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = parse_go_duration)]
    expire_prepared: Duration,
    /// if set to true, only mark pods as garbage and stop
    #[arg(long)]
    mark_only: bool,
}

pub fn run(ctx: &Context, args: GcArgs) -> Result<i32> {
    ensure_superuser()?;
    let dir = &ctx.data_dir;
    let list = |d: StateDir| {
        Pod::list_in(dir, &[d]).map_err(|e| anyhow!("failed to get pod handles: {e}"))
    };

    for mut p in list(StateDir::Run)? {
        if p.state() == PodState::Exited {
            eprintln!("gc: moving pod {:?} to garbage", p.uuid());
            ignore_gone(p.to_exited_garbage(), "rename error");
        }
    }
    for mut p in list(StateDir::Prepare)? {
        if p.state() == PodState::AbortedPrepare {
            eprintln!("gc: moving failed prepare {:?} to garbage", p.uuid());
            ignore_gone(p.to_garbage(), "rename error");
        }
    }
    if args.mark_only {
        return Ok(0);
    }
    let now = SystemTime::now();
    for mut p in list(StateDir::Prepared)? {
        if p.marked_before(args.expire_prepared, now) {
            eprintln!("gc: moving expired prepared pod {:?} to garbage", p.uuid());
            ignore_gone(p.to_garbage(), "rename error");
        }
    }

    // One mount table for the whole sweep: deletion re-reads it only for
    // pods that had mounts.
    let mounts = MountTable::read()?;
    let opts = DeleteOptions {
        local_config: ctx.local_config.clone(),
        debug: ctx.debug,
    };
    let mut failed = false;
    for mut p in list(StateDir::ExitedGarbage)? {
        if !p.marked_before(args.grace_period, now) {
            eprintln!(
                "gc: pod {:?} not removed: still within grace period ({})",
                p.uuid(),
                go_duration(args.grace_period)
            );
            continue;
        }
        if p.take_exclusive_lock().is_err() {
            continue;
        }
        failed |= !delete(p, &opts, &mounts);
    }
    for mut p in list(StateDir::Garbage)? {
        if p.take_exclusive_lock().is_err() {
            continue;
        }
        failed |= !delete(p, &opts, &mounts);
    }
    Ok(if failed { super::EXIT_FAILURE } else { 0 })
}

/// Deletes a locked garbage pod, printing as rkt does; false on failure.
pub fn delete(p: Pod, opts: &DeleteOptions, mounts: &MountTable) -> bool {
    let uuid = p.uuid().to_string();
    println!("Garbage collecting pod {uuid:?}");
    match p.delete(opts, mounts) {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("gc: {w}");
            }
            true
        }
        Err(e) => {
            eprintln!("gc: unable to remove pod {uuid:?}: {e}");
            false
        }
    }
}

fn ignore_gone(r: Result<(), PodError>, what: &str) {
    match r {
        Ok(()) | Err(PodError::Gone(_)) => {}
        Err(e) => eprintln!("gc: {what}: {e}"),
    }
}

/// Go's `Duration.String()` for whole-second values ("30m0s", "24h0m0s").
fn go_duration(d: Duration) -> String {
    let total = d.as_secs();
    let sub = d.subsec_nanos();
    if total == 0 && sub == 0 {
        return "0s".to_string();
    }
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let secs = if sub == 0 {
        format!("{s}s")
    } else {
        let frac = format!("{sub:09}");
        format!("{s}.{}s", frac.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_strings() {
        assert_eq!(go_duration(Duration::from_secs(1800)), "30m0s");
        assert_eq!(go_duration(Duration::from_secs(86400)), "24h0m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }
}
