//! `rkt list`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct ListArgs {}

pub fn run(_ctx: &Context, _args: ListArgs) -> Result<i32> {
    bail!("not implemented yet")
}
