//! ns `gc` entrypoint. Every mount the pod made lives in its own mount
//! namespaces and went with them; defensively unmount anything found below
//! the app rootfses (or the shared volumes) in this namespace so removing
//! the pod directory can never reach into the host. The app rootfses
//! themselves may be stage0's overlays: stage0 unmounts those.

use std::path::Path;

use abi::pod_dir;
use abi::stage1::GcArgs;
use anyhow::{Context, Result};
use stage1_common::mount::unmount_all_below;
use stage1_ns::{debug, fail};

fn main() {
    if let Err(e) = run() {
        fail(format!("{e:#}"));
    }
}

fn run() -> Result<()> {
    let args = GcArgs::parse(std::env::args().skip(1)).context("invalid gc arguments")?;
    let stage2 = Path::new(pod_dir::STAGE1_ROOTFS).join("opt/stage2");
    let mut roots = vec![Path::new(pod_dir::SHARED_VOLUMES).to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(&stage2) {
        roots.extend(entries.flatten().map(|e| e.path().join("rootfs")));
    }
    for root in roots {
        debug(args.debug, format!("unmounting anything below {root:?}"));
        unmount_all_below(&root)?;
    }
    Ok(())
}
