//! ns `app/add` entrypoint. stage0 has listed the app in `$pod/pod`, put
//! its image manifest in `appsinfo/` and its rootfs at
//! `/opt/stage2/<app>/rootfs` inside the pod. This stages the app's volume
//! sources into the pod (host paths are out of the pod's reach) and asks
//! the supervisor to plan the app, which refuses a bad exec, user or
//! isolator with a message; nothing is staged then.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

use abi::schema::Volume;
use anyhow::{Context, Result};
use nix::sched::{setns, CloneFlags};
use stage1_common::mount as mnt;
use stage1_common::pod::Pod;
use stage1_common::volumes;
use stage1_ns::control::{self, Request, CONTROL_SOCKET};
use stage1_ns::{crossing, podroot};

/// A volume source, detached from the host's tree, to attach in the pod.
struct StagedSource {
    tree: OwnedFd,
    is_dir: bool,
}

fn main() {
    crossing::main(run)
}

fn run() -> Result<i32> {
    let (args, pid) = crossing::args()?;
    let cwd = std::env::current_dir().context("cannot determine the pod directory (cwd)")?;
    let pod = Pod::load(&cwd)?;
    let app = pod.app(&args.app)?;
    let sources = volumes::plan_mounts(&pod.manifest.volumes, app)?
        .iter()
        .map(|m| detach_source(&pod.dir, &m.volume))
        .collect::<Result<Vec<_>>>()?;

    let ns_path = format!("/proc/{pid}/ns/mnt");
    let ns = File::open(&ns_path)
        .with_context(|| format!("cannot open {ns_path}; is the pod running?"))?;
    // From here on our root is the pod's: the stage1 rootfs.
    setns(&ns, CloneFlags::CLONE_NEWNS).context("cannot join the pod's mount namespace")?;
    let root = Path::new("/");
    let staged_dir = podroot::staged_volumes_dir(root, &app.name);
    let request = Request::Add {
        app: app.name.clone(),
        runtime: Box::new(app.runtime.clone()),
        image: Box::new(app.image.clone()),
        volumes: pod.manifest.volumes.clone(),
    };
    let result = attach_sources(&app.name, &sources)
        .and_then(|()| Ok(control::send(&root.join(CONTROL_SOCKET), &request)?));
    let code = match result {
        Ok(response) => crossing::report(response),
        Err(e) => {
            let _ = mnt::unmount_all_under(&staged_dir);
            return Err(e);
        }
    };
    if code != 0 {
        let _ = mnt::unmount_all_under(&staged_dir);
    }
    Ok(code)
}

fn detach_source(pod_dir: &Path, volume: &Volume) -> Result<StagedSource> {
    let source = volumes::volume_source(pod_dir, volume)?;
    let is_dir = std::fs::metadata(&source)
        .with_context(|| format!("cannot stat volume source {source:?}"))?
        .is_dir();
    let tree = mnt::clone_detached(&source, podroot::staged_recursively(volume))?;
    Ok(StagedSource { tree, is_dir })
}

/// Attaches source `n` at `/rkt/volumes/<app>/<n>`, where the supervisor
/// looks for it.
fn attach_sources(app: &str, sources: &[StagedSource]) -> Result<()> {
    for (n, source) in sources.iter().enumerate() {
        let target = Path::new("/").join(podroot::staged_volume(app, n));
        if source.is_dir {
            std::fs::create_dir_all(&target)
        } else {
            target
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| File::create(&target).map(drop))
        }
        .with_context(|| format!("cannot create {target:?} in the pod"))?;
        mnt::attach_detached(&source.tree, &target)?;
    }
    Ok(())
}
