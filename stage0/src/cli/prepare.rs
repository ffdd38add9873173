//! `rkt prepare`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct PrepareArgs {}

pub fn run(_ctx: &Context, _args: PrepareArgs) -> Result<i32> {
    bail!("not implemented yet")
}
