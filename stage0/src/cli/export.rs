//! `rkt export`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct ExportArgs {}

pub fn run(_ctx: &Context, _args: ExportArgs) -> Result<i32> {
    bail!("not implemented yet")
}
