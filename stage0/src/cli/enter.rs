//! `rkt enter`: run a command inside a running pod's app, by exec'ing the
//! stage1 `enter` entrypoint.

use std::os::unix::process::CommandExt;
use std::process::Command;

use abi::stage1::{EnterArgs as Stage1EnterArgs, Entrypoint, Feature};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use stage0::pod::lifecycle::{ensure_superuser, Pod, PodState};
use stage0::pod::stage1::Stage1Image;

use super::Context;

const DEFAULT_CMD: &str = "/bin/bash";

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct EnterArgs {
    /// name of the app to enter within the specified pod
    #[arg(long, value_name = "NAME")]
    app: Option<String>,
    /// the pod UUID (or a unique prefix)
    uuid: String,
    /// command and arguments to run (default /bin/bash)
    #[arg(allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(ctx: &Context, args: EnterArgs) -> Result<i32> {
    ensure_superuser()?;
    let mut pod = Pod::load_prefix(&ctx.data_dir, &args.uuid)
        .map_err(|e| anyhow!("problem retrieving pod: {e}"))?;
    if pod.state() != PodState::Running {
        bail!("pod {:?} isn't currently running", pod.uuid());
    }
    let s1 = Stage1Image::load(pod.path())?;
    if !s1.supports(Feature::Enter) {
        bail!(
            "the {} stage1 does not support {}; use a flavor that does (e.g. --stage1-name for ns)",
            s1.flavor(),
            Feature::Enter.describe()
        );
    }
    let pid = pod
        .wait_pid(None)
        .map_err(|e| anyhow!("unable to determine the pid for pod {:?}: {e}", pod.uuid()))?;
    let app = app_name(&pod, args.app.as_deref())
        .map_err(|e| anyhow!("unable to determine app name: {e}"))?;
    let mut command = args.command;
    if command.is_empty() {
        eprintln!("enter: no command specified, assuming {DEFAULT_CMD:?}");
        command.push(DEFAULT_CMD.to_string());
    }
    let ep = s1.entrypoint_path(pod.path(), Entrypoint::Enter)?;
    let argv = Stage1EnterArgs {
        pid,
        app_name: app,
        command,
    }
    .to_argv();
    let err = Command::new(&ep).args(&argv).current_dir(pod.path()).exec();
    bail!("cannot exec {}: {err}", ep.display())
}

fn app_name(pod: &Pod, wanted: Option<&str>) -> Result<String> {
    let names = pod.app_names()?;
    if let Some(w) = wanted {
        if names.iter().any(|n| n == w) {
            return Ok(w.to_string());
        }
        bail!("pod has no app {w:?}; its apps are: {}", names.join(", "));
    }
    match names.as_slice() {
        [] => bail!("pod contains zero apps"),
        [one] => Ok(one.clone()),
        many => bail!(
            "pod contains multiple apps ({}); specify one with --app=NAME",
            many.join(", ")
        ),
    }
}
