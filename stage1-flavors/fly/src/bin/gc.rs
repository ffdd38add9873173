//! fly `gc` entrypoint. `run` mounts only inside the app's private mount
//! namespace, so normally nothing is left; defensively unmount anything found
//! below the app rootfs (or the shared volumes) in this namespace so removing
//! the pod directory can never reach into the host.
//!
//! stage0 runs it from the host's mount namespace, where an overlay pod's
//! `stage1/rootfs` is an empty directory (or gone): then there is simply
//! nothing below it to unmount.

use std::path::Path;

use abi::stage1::GcArgs;
use anyhow::{Context, Result};
use stage1_common::mount::unmount_all_below;
use stage1_common::pod::mount_roots;
use stage1_fly::{debug, fail};

fn main() {
    if let Err(e) = run() {
        fail(format!("{e:#}"));
    }
}

fn run() -> Result<()> {
    let args = GcArgs::parse(std::env::args().skip(1)).context("invalid gc arguments")?;
    for root in mount_roots(Path::new("")) {
        debug(args.debug, format!("unmounting anything below {root:?}"));
        // The app rootfs itself may be stage0's overlay: stage0 unmounts it.
        unmount_all_below(&root)?;
    }
    Ok(())
}
