//! `rkt app add UUID IMAGE [app flags] [--mnt-volume=...] [-- args]`: render
//! the image, put its rootfs where the running pod sees it, append the app
//! to the pod manifest and let the stage1 (`app/add`) prepare it. Any
//! failure after the first change undoes everything.

use std::path::{Path, PathBuf};

use abi::pod_dir;
use abi::schema::{AcName, Mount, PodManifest};
use abi::stage1::Entrypoint;
use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use stage0::fetch::PullPolicy;
use stage0::pod::attach::{attach, detach, mounts_at_or_below, overlay_mount};
use stage0::pod::launch::ensure_mtab;
use stage0::pod::manifest::{generate, AppRequest, PodRequest};
use stage0::pod::options::{check_volume_sources, parse_volume};
use stage0::pod::overlay::OverlayLayers;
use stage0::pod::render::{render_app, AppImage};
use stage0::store::{Store, TreeId};

use super::mutable_pod::{remove_dir_if_present, MutablePod};
use crate::cli::apps::parse_apps;
use crate::cli::pod_flags::{check_features, Demands};
use crate::cli::prepare_pod::{apply_app_flags, check_os_arch};
use crate::cli::Context;

#[derive(Args, Debug)]
pub struct AddArgs {
    /// the pod UUID (or a unique prefix)
    uuid: String,
    /// IMAGE [per-app flags] [--mnt-volume=name=N,kind=host|empty,target=PATH,source=...,readOnly=BOOL] [-- args]
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "IMAGE"
    )]
    image: Vec<String>,
}

pub fn run(ctx: &Context, args: AddArgs) -> Result<i32> {
    let (mnt_volumes, rest) = split_mnt_volumes(&args.image)?;
    let mut specs = parse_apps(&rest)?;
    if specs.len() != 1 {
        bail!(
            "pass exactly one image ({} given); add apps one at a time",
            specs.len()
        );
    }
    let spec = specs.remove(0);
    let mut mp = MutablePod::load(ctx, &args.uuid, true)?;
    let mut demands = Demands {
        apps: mp.manifest.apps.len() + 1,
        volumes: !mnt_volumes.is_empty() || !spec.flags.mount.is_empty(),
        ..Default::default()
    };
    demands.add_app_flags(&spec.flags);
    check_features(&mp.stage1, &demands, None)?;
    let pid = mp.running_pid()?;
    let _lock = mp.lock()?;

    let store = Store::open(&ctx.data_dir)?;
    let fetcher = ctx.fetcher(&store, PullPolicy::New)?;
    let signature = spec.flags.signature.as_deref().map(Path::new);
    let key = fetcher.fetch_with_deps(&spec.image, signature)?;
    let image = store.manifest(&key)?;
    check_os_arch(&image)?;
    let mut req = AppRequest::new(key.to_string(), image.clone());
    apply_app_flags(&mut req, &spec)?;
    req.mounts.extend(mnt_volumes);
    let generated = generate(&PodRequest {
        apps: vec![req],
        ..Default::default()
    })?;
    let ra = generated
        .apps
        .into_iter()
        .next()
        .context("internal error: no app generated")?;
    let name = ra.name.as_str().to_string();
    if mp.manifest.apps.iter().any(|a| a.name == ra.name) {
        bail!(
            "pod {} already has an app named {name:?}; give this one another name with --name",
            mp.uuid()
        );
    }
    let mut app_volumes = Vec::new();
    for m in &ra.mounts {
        match &m.app_volume {
            Some(v) => app_volumes.push(v.clone()),
            None if mp.manifest.volume(m.volume.as_str()).is_some() => {}
            None => bail!(
                "--mount names volume {:?}, which pod {} does not have; use --mnt-volume=name={},kind=host,source=PATH,target={}",
                m.volume.as_str(),
                mp.uuid(),
                m.volume.as_str(),
                m.path
            ),
        }
    }
    check_volume_sources(&app_volumes).map_err(anyhow::Error::msg)?;

    let app = AppImage {
        name: name.clone(),
        key: key.clone(),
        manifest: image,
    };
    let mut tx = AddTx::new(&mp, pid, &name);
    if let Err(e) = tx.lay_out(&store, &app) {
        tx.roll_back(&mut mp);
        return Err(e);
    }
    let previous = mp.manifest.clone();
    let mut next = previous.clone();
    next.apps.push(ra);
    tx.previous_manifest = Some(previous);
    if let Err(e) = mp.write_manifest(next) {
        tx.roll_back(&mut mp);
        return Err(e);
    }
    let outcome = match mp.crossing(ctx.debug, Entrypoint::AppAdd, &name) {
        Ok(c) => c,
        Err(e) => {
            tx.roll_back(&mut mp);
            return Err(e);
        }
    };
    if outcome.code != 0 {
        let detail = MutablePod::failure_detail(&outcome, ctx.debug);
        tx.roll_back(&mut mp);
        bail!(
            "the stage1 could not add app {name:?} (app/add exited with status {}){detail}; the pod is unchanged",
            outcome.code
        );
    }
    let _ = store.touch(&key);
    Ok(0)
}

/// Takes the `--mnt-volume` flags out of the app arguments (before `--`):
/// they are `app add`'s own, not part of the shared app grammar.
fn split_mnt_volumes(raw: &[String]) -> Result<(Vec<Mount>, Vec<String>)> {
    let mut mounts = Vec::new();
    let mut rest = Vec::new();
    let mut it = raw.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            rest.push(arg.clone());
            rest.extend(it.by_ref().cloned());
            break;
        }
        let value = if arg == "--mnt-volume" {
            it.next()
                .ok_or_else(|| anyhow!("flag --mnt-volume needs a value"))?
                .clone()
        } else if let Some(v) = arg.strip_prefix("--mnt-volume=") {
            v.to_string()
        } else {
            rest.push(arg.clone());
            continue;
        };
        mounts.push(parse_mnt_volume(&value)?);
    }
    Ok((mounts, rest))
}

/// rkt's `--mnt-volume=[name=NAME,]kind=host|empty,target=PATH[,source=..]
/// [,readOnly=..]...`: an app-private volume and its mount. The name
/// defaults to one derived from the target.
fn parse_mnt_volume(value: &str) -> Result<Mount> {
    let mut name = None;
    let mut target = None;
    let mut volume_parts = Vec::new();
    for part in value.split(',') {
        match part.split_once('=') {
            Some(("name", n)) => name = Some(n.to_string()),
            Some(("target", t)) => target = Some(t.to_string()),
            Some(_) => volume_parts.push(part),
            None => bail!("invalid --mnt-volume {value:?}: {part:?} is not key=value"),
        }
    }
    let target =
        target.ok_or_else(|| anyhow!("invalid --mnt-volume {value:?}: missing target=PATH"))?;
    let name = match name {
        Some(n) => n,
        None => AcName::sanitize(&format!("mnt-{target}"))
            .map_err(|e| anyhow!("invalid --mnt-volume {value:?}: {e}; pass name=NAME"))?
            .to_string(),
    };
    if !volume_parts.iter().any(|p| p.starts_with("kind=")) {
        bail!("invalid --mnt-volume {value:?}: missing kind=host or kind=empty");
    }
    let spec = std::iter::once(name.as_str())
        .chain(volume_parts)
        .collect::<Vec<_>>()
        .join(",");
    let volume = parse_volume(&spec).map_err(|e| anyhow!("invalid --mnt-volume: {e}"))?;
    Ok(Mount {
        volume: volume.name.clone(),
        path: target,
        app_volume: Some(volume),
    })
}

/// What `app add` has changed so far, to undo on failure.
struct AddTx {
    pid: i32,
    name: String,
    overlay: bool,
    /// `/opt/stage2/<app>` as the pod sees it.
    in_pod: PathBuf,
    /// Where that directory is reached from the host.
    via_proc: PathBuf,
    info: PathBuf,
    layers: Option<OverlayLayers>,
    created_in_pod: bool,
    previous_manifest: Option<PodManifest>,
}

impl AddTx {
    fn new(mp: &MutablePod, pid: i32, name: &str) -> Self {
        let rel = pod_dir::app_dir(name);
        AddTx {
            pid,
            name: name.to_string(),
            overlay: mp.pod.uses_overlay(),
            in_pod: Path::new("/").join(&rel),
            via_proc: PathBuf::from(format!("/proc/{pid}/root")).join(&rel),
            info: mp.path().join(pod_dir::APPS_INFO_DIR).join(name),
            layers: None,
            created_in_pod: false,
            previous_manifest: None,
        }
    }

    /// Renders the app and makes its rootfs appear at
    /// `/opt/stage2/<app>/rootfs` inside the pod.
    fn lay_out(&mut self, store: &Store, app: &AppImage) -> Result<()> {
        if self.info.exists() || self.via_proc.exists() {
            bail!(
                "leftovers of an earlier app {:?} are in the pod ({} or /opt/stage2/{}); remove them with `rkt app rm --app={}`",
                self.name,
                self.info.display(),
                self.name,
                self.name
            );
        }
        let pod = self
            .info
            .parent()
            .and_then(Path::parent)
            .context("internal error: appsinfo outside a pod")?
            .to_path_buf();
        self.created_in_pod = true;
        render_app(store, &pod, app, self.overlay)?;
        if self.overlay {
            let id_path = self.info.join("treeStoreID");
            let id = std::fs::read_to_string(&id_path)
                .with_context(|| format!("cannot read {}", id_path.display()))?;
            let tree = TreeId::parse(id.trim())
                .with_context(|| format!("{} holds no tree id", id_path.display()))?;
            let layers = OverlayLayers::with_lower(
                store.tree_rootfs(&tree),
                &pod,
                tree.as_str(),
                &self.name,
            );
            self.layers = Some(layers.clone());
            let mnt = overlay_mount(&layers)?;
            attach(self.pid, mnt, &self.in_pod.join("rootfs"))?;
            let manifest = std::fs::read(self.info.join("manifest"))
                .context("cannot read the app's image manifest")?;
            std::fs::write(self.via_proc.join("manifest"), manifest)
                .context("cannot write the app's manifest into the pod")?;
        }
        ensure_mtab(&self.via_proc.join("rootfs"));
        Ok(())
    }

    /// Undoes every change, best effort, warning about what stays.
    fn roll_back(&self, mp: &mut MutablePod) {
        let warn = |what: &str, e: &dyn std::fmt::Display| {
            eprintln!("app add: warning: while undoing: {what}: {e}");
        };
        if let Some(previous) = &self.previous_manifest {
            if let Err(e) = mp.write_manifest(previous.clone()) {
                warn("cannot restore the pod manifest", &e);
            }
        }
        if !self.created_in_pod {
            return;
        }
        if let Err(e) = detach(self.pid, &self.in_pod) {
            warn("cannot unmount the app's rootfs", &e);
        }
        match mounts_at_or_below(self.pid, &self.in_pod) {
            Ok(m) if m.is_empty() => {
                if let Err(e) = remove_dir_if_present(&self.via_proc) {
                    warn(&format!("cannot remove {}", self.in_pod.display()), &e);
                }
            }
            Ok(m) => warn(
                &format!("not removing {}", self.in_pod.display()),
                &format!("still mounted: {m:?}"),
            ),
            Err(e) => warn(&format!("not removing {}", self.in_pod.display()), &e),
        }
        for dir in [
            Some(&self.info),
            self.layers.as_ref().map(|l| &l.upper),
            self.layers.as_ref().map(|l| &l.work),
        ]
        .into_iter()
        .flatten()
        {
            if let Err(e) = remove_dir_if_present(dir) {
                warn(&format!("cannot remove {}", dir.display()), &e);
            }
        }
        for e in mp.remove_runtime_files(&self.name) {
            warn("cannot remove a status file", &e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn mnt_volumes_are_taken_out_before_the_args() {
        let (mounts, rest) = split_mnt_volumes(&v(
            "img --name=x --mnt-volume=name=data,kind=host,source=/tmp,target=/data,readOnly=true \
             --mnt-volume kind=empty,target=/scratch -- --mnt-volume=kept",
        ))
        .unwrap();
        assert_eq!(rest, v("img --name=x -- --mnt-volume=kept"));
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].volume.as_str(), "data");
        assert_eq!(mounts[0].path, "/data");
        let vol = mounts[0].app_volume.as_ref().unwrap();
        assert_eq!(vol.source.as_deref(), Some("/tmp"));
        assert_eq!(vol.read_only, Some(true));
        assert_eq!(mounts[1].volume.as_str(), "mnt-scratch");
    }

    #[test]
    fn bad_mnt_volumes_are_refused() {
        for bad in [
            "kind=host,source=/tmp",
            "name=a,target=/a",
            "name=a,kind=bogus,target=/a",
            "name=a,kind=host,target=/a,junk",
        ] {
            assert!(parse_mnt_volume(bad).is_err(), "{bad}");
        }
    }
}
