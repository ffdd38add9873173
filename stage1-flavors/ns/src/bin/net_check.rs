//! ns (and kvm) `net/check` entrypoint, this project's addition to the
//! stage1 ABI: CNI CHECK of a running pod's networks from the record `run`
//! left (`net-info.json`, the cached results, `netns`), in ADD's order,
//! and whether the pod's `--port` rules are still in place.
//! Prints an `abi::stage1::NetCheckOutcome` line per network (`NETWORK ok`,
//! or `NETWORK skipped` for one that does not take CHECK); exits non-zero
//! with every failure on stderr, on one line.

use std::path::{Path, PathBuf};

use abi::stage1::NetCheckArgs;
use anyhow::{Context, Result};
use networking::pod as podnet;
use stage1_ns::{debug, fail};

fn main() {
    if let Err(e) = run() {
        // One line: stage0 shows it as the check's error.
        fail(format!("{e:#}").replace('\n', " "));
    }
}

fn run() -> Result<()> {
    let args =
        NetCheckArgs::parse(std::env::args().skip(1)).context("invalid net/check arguments")?;
    let pod_dir = std::env::current_dir().context("cannot determine the pod directory (cwd)")?;
    let local_config = args.local_config.as_deref().unwrap_or("/etc/rkt");
    let runner = podnet::plugin_runner(&stage1_rootfs()?, Path::new(local_config));
    debug(args.debug, "checking the pod's networks");
    for outcome in podnet::check(&pod_dir, &args.uuid, &runner)? {
        println!("{}", outcome.to_line());
    }
    Ok(())
}

/// The stage1 rootfs this entrypoint runs from (it sits at its root), for
/// the stage1's own plugins. Not the pod's `stage1/rootfs`: for a running
/// pod that is an overlay mounted only in the pod's mount namespace, so
/// stage0 runs the entrypoint from the tree store's copy of the image.
fn stage1_rootfs() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the net/check binary")?;
    exe.parent()
        .map(Path::to_path_buf)
        .with_context(|| format!("{exe:?} has no parent directory"))
}
