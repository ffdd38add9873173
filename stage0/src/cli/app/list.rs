//! `rkt app list UUID [--no-legend]`: the apps of a mutable pod and their
//! states.

use anyhow::Result;
use clap::Args;

use super::mutable_pod::MutablePod;
use crate::cli::output::Table;
use crate::cli::Context;

#[derive(Args, Debug)]
pub struct ListArgs {
    /// the pod UUID (or a unique prefix)
    uuid: String,
    /// suppress a legend with the list
    #[arg(long)]
    no_legend: bool,
}

pub fn run(ctx: &Context, args: ListArgs) -> Result<i32> {
    let mp = MutablePod::load(ctx, &args.uuid, false)?;
    let mut table = Table::new();
    if !args.no_legend {
        table.row(["NAME", "STATE"]);
    }
    for app in &mp.manifest.apps {
        let name = app.name.as_str();
        table.row([name, mp.app_runtime(name).state]);
    }
    print!("{}", table.render());
    Ok(0)
}
