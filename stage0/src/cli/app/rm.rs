//! `rkt app rm UUID --app=NAME`: stop the app, let the stage1 forget it
//! (`app/rm`), then remove everything stage0 laid out for it.

use std::path::{Path, PathBuf};

use abi::pod_dir;
use abi::stage1::{Entrypoint, APP_STOP_NOT_RUNNING};
use anyhow::{bail, Result};
use clap::Args;
use stage0::pod::attach::{detach, mounts_at_or_below};
use stage0::pod::overlay::OverlayLayers;

use super::mutable_pod::{remove_dir_if_present, MutablePod};
use crate::cli::Context;

#[derive(Args, Debug)]
pub struct RmArgs {
    /// the pod UUID (or a unique prefix)
    uuid: String,
    /// name of the app to remove
    #[arg(long, value_name = "NAME", required = true)]
    app: String,
}

pub fn run(ctx: &Context, args: RmArgs) -> Result<i32> {
    let mut mp = MutablePod::load(ctx, &args.uuid, true)?;
    let pid = mp.running_pid()?;
    let _lock = mp.lock()?;
    let name = args.app.as_str();
    mp.app(name)?;

    let stop = mp.crossing(ctx.debug, Entrypoint::AppStop, name)?;
    if stop.code != 0 && stop.code != APP_STOP_NOT_RUNNING {
        let detail = MutablePod::failure_detail(&stop, ctx.debug);
        bail!(
            "the stage1 could not stop app {name:?} (app/stop exited with status {}){detail}; it was not removed",
            stop.code
        );
    }
    let rm = mp.crossing(ctx.debug, Entrypoint::AppRm, name)?;
    if rm.code != 0 {
        let detail = MutablePod::failure_detail(&rm, ctx.debug);
        bail!(
            "the stage1 could not remove app {name:?} (app/rm exited with status {}){detail}; it is still in the pod",
            rm.code
        );
    }

    // The stage1 has forgotten the app: the manifest follows first, so a
    // failure below leaves files behind, never a half-known app.
    let info = mp.path().join(pod_dir::APPS_INFO_DIR).join(name);
    let tree = std::fs::read_to_string(info.join("treeStoreID")).ok();
    let mut next = mp.manifest.clone();
    next.apps.retain(|a| a.name.as_str() != name);
    mp.write_manifest(next)?;

    let mut problems = Vec::new();
    let in_pod = Path::new("/").join(pod_dir::app_dir(name));
    if let Err(e) = detach(pid, &in_pod) {
        problems.push(e.to_string());
    }
    let via_proc = PathBuf::from(format!("/proc/{pid}/root")).join(pod_dir::app_dir(name));
    // Copied apps live in the host's view of the stage1 rootfs as well.
    let on_host = mp
        .path()
        .join(pod_dir::STAGE1_ROOTFS)
        .join(pod_dir::app_dir(name));
    let mounted = mounts_at_or_below(pid, &in_pod).and_then(|mut m| {
        m.extend(mounts_at_or_below(std::process::id() as i32, &on_host)?);
        Ok(m)
    });
    match mounted {
        Ok(m) if m.is_empty() => {
            if let Err(e) = remove_dir_if_present(&via_proc) {
                problems.push(format!("cannot remove {}: {e}", in_pod.display()));
            }
        }
        Ok(m) => problems.push(format!(
            "not removing {}: still mounted at {m:?}",
            in_pod.display()
        )),
        Err(e) => problems.push(format!("not removing {}: {e}", in_pod.display())),
    }
    let mut dirs = vec![info];
    if let Some(tree) = tree {
        let layers = OverlayLayers::of(&ctx.data_dir, mp.path(), tree.trim(), name);
        dirs.push(layers.upper);
        dirs.push(layers.work);
    }
    for dir in &dirs {
        if let Err(e) = remove_dir_if_present(dir) {
            problems.push(format!("cannot remove {}: {e}", dir.display()));
        }
    }
    // The tree's upper/, work/ and its own directory go once no app uses
    // them (remove_dir leaves non-empty ones alone).
    for dir in dirs.iter().skip(1) {
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
            if let Some(tree_dir) = parent.parent() {
                let _ = std::fs::remove_dir(tree_dir);
            }
        }
    }
    problems.extend(mp.remove_runtime_files(name));
    if !problems.is_empty() {
        bail!(
            "app {name:?} was removed from pod {}, but some of its files remain ({}); `rkt gc` removes them with the pod",
            mp.uuid(),
            problems.join("; ")
        );
    }
    Ok(0)
}
