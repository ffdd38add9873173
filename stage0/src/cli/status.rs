//! `rkt status`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct StatusArgs {}

pub fn run(_ctx: &Context, _args: StatusArgs) -> Result<i32> {
    bail!("not implemented yet")
}
