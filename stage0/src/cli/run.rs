//! `rkt run`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct RunArgs {}

pub fn run(_ctx: &Context, _args: RunArgs) -> Result<i32> {
    bail!("not implemented yet")
}
