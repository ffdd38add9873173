//! `rkt run-prepared`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct RunPreparedArgs {}

pub fn run(_ctx: &Context, _args: RunPreparedArgs) -> Result<i32> {
    bail!("not implemented yet")
}
