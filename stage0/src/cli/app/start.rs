//! `rkt app start UUID --app=NAME`: start an added app (stage1 `app/start`).

use abi::stage1::Entrypoint;
use anyhow::{bail, Result};
use clap::Args;

use super::mutable_pod::MutablePod;
use crate::cli::Context;

#[derive(Args, Debug)]
pub struct StartArgs {
    /// the pod UUID (or a unique prefix)
    uuid: String,
    /// name of the app to start
    #[arg(long, value_name = "NAME", required = true)]
    app: String,
}

pub fn run(ctx: &Context, args: StartArgs) -> Result<i32> {
    let mp = MutablePod::load(ctx, &args.uuid, true)?;
    mp.app(&args.app)?;
    let outcome = mp.crossing(ctx.debug, Entrypoint::AppStart, &args.app)?;
    if outcome.code != 0 {
        let detail = MutablePod::failure_detail(&outcome, ctx.debug);
        bail!(
            "the stage1 could not start app {:?} (app/start exited with status {}){detail}",
            args.app,
            outcome.code,
        );
    }
    Ok(0)
}
