//! `rkt image gc`: remove tree stores no pod references, then images not
//! used within the grace period.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context as _, Result};
use clap::Args;
use nix::fcntl::{Flock, FlockArg};
use stage0::store::{ImageKey, Store, TreeId};

use super::parse_go_duration;
use crate::cli::Context;

#[derive(Args, Debug)]
pub struct GcArgs {
    /// duration to wait since an image was last used before removing it
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    grace_period: String,
}

pub fn run(ctx: &Context, args: GcArgs) -> Result<i32> {
    let grace = parse_go_duration(&args.grace_period)?;
    let store = Store::open(&ctx.data_dir)?;

    let referenced = {
        // No pod may be prepared (and start using a tree) while we decide.
        let _lock = prepare_lock(&ctx.data_dir)?;
        let referenced = referenced_trees(&ctx.data_dir.join("pods"));
        for id in store.list_trees()? {
            if referenced.contains(id.as_str()) {
                continue;
            }
            match store.remove_tree(&id) {
                Ok(()) => println!("gc: removed treestore {:?}", id.as_str()),
                Err(e) => eprintln!("gc: cannot remove treestore {:?}: {e}", id.as_str()),
            }
        }
        referenced
    };
    // Images whose trees pods still use stay, whatever their age.
    let in_use: HashSet<ImageKey> = referenced
        .iter()
        .filter_map(|id| TreeId::parse(id))
        .filter_map(|id| store.tree_image(&id))
        .collect();

    let mut images = store.list()?;
    images.sort_by_key(|i| i.last_used);
    let now = SystemTime::now();
    let mut done = 0;
    for img in images {
        let idle = now.duration_since(img.last_used).unwrap_or_default();
        if idle < grace {
            break;
        }
        if in_use.contains(&img.key) {
            continue;
        }
        match store.remove(&img.key) {
            Ok(()) => {
                println!(
                    "gc: successfully removed aci for image: {:?}",
                    img.key.as_str()
                );
                done += 1;
            }
            Err(e) => eprintln!(
                "gc: error removing aci for image {:?} ({:?}): {e}",
                img.key.as_str(),
                img.name
            ),
        }
    }
    if done > 0 {
        println!("gc: {done} image(s) successfully removed");
    }
    Ok(0)
}

fn prepare_lock(data_dir: &Path) -> Result<Flock<fs::File>> {
    let dir = data_dir.join("locks");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("prepareLock");
    let f = fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", path.display()))
}

/// Tree ids named by `pods/<state>/<uuid>/stage1TreeStoreID` and
/// `pods/<state>/<uuid>/appsinfo/<app>/treeStoreID`.
fn referenced_trees(pods: &Path) -> HashSet<String> {
    let mut ids = HashSet::new();
    let read_id = |p: &Path, ids: &mut HashSet<String>| {
        if let Ok(s) = fs::read_to_string(p) {
            ids.insert(s.trim().to_string());
        }
    };
    for state in dir_entries(pods) {
        for pod in dir_entries(&state) {
            read_id(&pod.join(abi::pod_dir::STAGE1_TREE_STORE_ID), &mut ids);
            for app in dir_entries(&pod.join(abi::pod_dir::APPS_INFO_DIR)) {
                read_id(&app.join("treeStoreID"), &mut ids);
            }
        }
    }
    ids
}

fn dir_entries(p: &Path) -> Vec<std::path::PathBuf> {
    fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tree_ids_of_every_pod() {
        let d = tempfile::tempdir().unwrap();
        let pod = d.path().join("run/0123");
        fs::create_dir_all(pod.join("appsinfo/app1")).unwrap();
        fs::write(pod.join("stage1TreeStoreID"), "deps-sha512-aa\n").unwrap();
        fs::write(pod.join("appsinfo/app1/treeStoreID"), "deps-sha512-bb").unwrap();
        let other = d.path().join("exited-garbage/4567/appsinfo/x");
        fs::create_dir_all(&other).unwrap();
        fs::write(other.join("treeStoreID"), "deps-sha512-cc").unwrap();
        let ids = referenced_trees(d.path());
        for id in ["deps-sha512-aa", "deps-sha512-bb", "deps-sha512-cc"] {
            assert!(ids.contains(id), "{id} missing from {ids:?}");
        }
    }
}
