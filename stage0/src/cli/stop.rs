//! `rkt stop`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct StopArgs {}

pub fn run(_ctx: &Context, _args: StopArgs) -> Result<i32> {
    bail!("not implemented yet")
}
