//! `rkt completion`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct CompletionArgs {}

pub fn run(_ctx: &Context, _args: CompletionArgs) -> Result<i32> {
    bail!("not implemented yet")
}
