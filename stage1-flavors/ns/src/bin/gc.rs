//! ns `gc` entrypoint. Every mount the pod made lives in its own mount
//! namespaces and went with them; defensively unmount anything found below
//! the app rootfses (or the shared volumes) in this namespace so removing
//! the pod directory can never reach into the host. The app rootfses
//! themselves may be stage0's overlays: stage0 unmounts those.
//!
//! Before that, the pod's networks are torn down from the record `run`
//! left (`net-info.json`, the cached results, `netns`), and its networks
//! that speak CNI 1.1.0 get a GC with the attachments of the pods still
//! in `run/` (see `networking::pod::collect_garbage`).
//!
//! Then the pod's cgroups (found through `$pod/subcgroup`) are killed and
//! removed, and the pod is unregistered from systemd-machined; `run`
//! normally did both already, so this only matters when `run` was killed.

use std::path::Path;

use abi::pod_dir;
use abi::stage1::GcArgs;
use anyhow::{bail, Context, Result};
use networking::pod as podnet;
use stage1_common::cgroups::{Cgroups, Parent, PodCgroup};
use stage1_common::mount::unmount_all_below;
use stage1_common::pod::mount_roots;
use stage1_ns::{debug, fail};
use stage1_ns::{machine, podjournal};

fn main() {
    if let Err(e) = run() {
        fail(format!("{e:#}"));
    }
}

fn run() -> Result<()> {
    let args = GcArgs::parse(std::env::args().skip(1)).context("invalid gc arguments")?;
    let mut errors = Vec::new();
    // Networks first: DEL in reverse, then the network namespace, whatever
    // state `run` left them in.
    let pod_dir = std::env::current_dir().context("cannot determine the pod directory (cwd)")?;
    let local_config = args.local_config.as_deref().unwrap_or("/etc/rkt");
    let runner = podnet::plugin_runner(
        &pod_dir.join(pod_dir::STAGE1_ROOTFS),
        Path::new(local_config),
    );
    debug(args.debug, "tearing down the pod's networks");
    if let Err(e) = podnet::teardown(&pod_dir, &args.uuid, &runner, None) {
        errors.push(e.to_string());
    }
    // Then what other pods of its (1.1.0) networks leaked.
    match podnet::collect_garbage(&pod_dir, &runner) {
        Ok(nets) if !nets.is_empty() => debug(args.debug, format!("CNI GC of {nets:?}")),
        Ok(_) => {}
        Err(e) => errors.push(e.to_string()),
    }
    for root in mount_roots(Path::new("")) {
        debug(args.debug, format!("unmounting anything below {root:?}"));
        if let Err(e) = unmount_all_below(&root) {
            errors.push(format!("{e:#}"));
        }
    }
    if let Err(e) = remove_cgroups(args.debug) {
        errors.push(format!("{e:#}"));
    }
    if let Err(e) = podjournal::unlink_from_host(&args.uuid) {
        errors.push(e.to_string());
    }
    // `run` unregisters the pod when it ends; not when it was killed.
    if let Err(e) = machine::unregister(&args.uuid) {
        errors.push(e.to_string());
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }
    Ok(())
}

fn remove_cgroups(dbg: bool) -> Result<()> {
    let file = Path::new(pod_dir::SUBCGROUP);
    let subcgroup = match std::fs::read_to_string(file) {
        Ok(s) => s,
        // The pod never got as far as creating its cgroups.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {file:?}")),
    };
    let subcgroup = Path::new(subcgroup.trim());
    debug(dbg, format!("removing the pod's cgroups {subcgroup:?}"));
    let manager = Cgroups::detect(Parent::Root).context("cannot use the host's cgroups")?;
    PodCgroup::open(manager, subcgroup)
        .and_then(|cg| cg.destroy())
        .with_context(|| format!("cannot remove the pod's cgroups {subcgroup:?}"))
}
