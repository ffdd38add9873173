//! `rkt export`: write an exited pod's app as an ACI.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use stage0::pod::lifecycle::{export_app, Pod, PodState};
use stage0::pod::mounts::MountTable;

use super::Context;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// name of the app to export within the specified pod
    #[arg(long, value_name = "NAME")]
    app: Option<String>,
    /// overwrite output ACI
    #[arg(long)]
    overwrite: bool,
    /// the pod UUID (or a unique prefix)
    uuid: String,
    /// the output file (must end with .aci)
    output: PathBuf,
}

pub fn run(ctx: &Context, args: ExportArgs) -> Result<i32> {
    if args.output.extension().and_then(|e| e.to_str()) != Some("aci") {
        bail!(
            "output file {} must have the .aci extension",
            args.output.display()
        );
    }
    if !args.overwrite && args.output.exists() {
        bail!(
            "output ACI file {} exists; pass --overwrite to replace it",
            args.output.display()
        );
    }
    let pod = Pod::load_prefix(&ctx.data_dir, &args.uuid)
        .map_err(|e| anyhow!("problem retrieving pod: {e}"))?;
    if !matches!(pod.state(), PodState::Exited | PodState::ExitedGarbage) {
        bail!(
            "pod {:?} is {}; only exited pods can be exported (stop it first)",
            pod.uuid(),
            pod.state()
        );
    }
    let names = pod.app_names()?;
    let app = match (args.app, names.as_slice()) {
        (Some(a), _) if names.contains(&a) => a,
        (Some(a), _) => bail!("pod has no app {a:?}; its apps are: {}", names.join(", ")),
        (None, [one]) => one.clone(),
        (None, []) => bail!("pod contains zero apps"),
        (None, many) => bail!(
            "pod contains multiple apps ({}); specify one with --app=NAME",
            many.join(", ")
        ),
    };
    let mounts = MountTable::read()?;
    export_app(&pod, &app, &args.output, &mounts)?;
    Ok(0)
}
