//! `rkt app stop UUID --app=NAME`: stop a running app (stage1 `app/stop`).

use abi::stage1::{Entrypoint, APP_STOP_NOT_RUNNING};
use anyhow::{bail, Result};
use clap::Args;

use super::mutable_pod::MutablePod;
use crate::cli::Context;

#[derive(Args, Debug)]
pub struct StopArgs {
    /// the pod UUID (or a unique prefix)
    uuid: String,
    /// name of the app to stop
    #[arg(long, value_name = "NAME", required = true)]
    app: String,
}

pub fn run(ctx: &Context, args: StopArgs) -> Result<i32> {
    let mp = MutablePod::load(ctx, &args.uuid, true)?;
    mp.app(&args.app)?;
    let outcome = mp.crossing(ctx.debug, Entrypoint::AppStop, &args.app)?;
    match outcome.code {
        0 => Ok(0),
        APP_STOP_NOT_RUNNING => bail!(
            "app {:?} is not running (it is {}); nothing to stop",
            args.app,
            mp.app_runtime(&args.app).state
        ),
        code => {
            let detail = MutablePod::failure_detail(&outcome, ctx.debug);
            bail!(
                "the stage1 could not stop app {:?} (app/stop exited with status {code}){detail}",
                args.app
            )
        }
    }
}
