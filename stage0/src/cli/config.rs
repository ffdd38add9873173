//! `rkt config`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct ConfigArgs {}

pub fn run(_ctx: &Context, _args: ConfigArgs) -> Result<i32> {
    bail!("not implemented yet")
}
