//! `rkt enter`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct EnterArgs {}

pub fn run(_ctx: &Context, _args: EnterArgs) -> Result<i32> {
    bail!("not implemented yet")
}
