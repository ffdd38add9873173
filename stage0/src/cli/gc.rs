//! `rkt gc`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct GcArgs {}

pub fn run(_ctx: &Context, _args: GcArgs) -> Result<i32> {
    bail!("not implemented yet")
}
