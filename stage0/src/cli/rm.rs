//! `rkt rm`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct RmArgs {}

pub fn run(_ctx: &Context, _args: RmArgs) -> Result<i32> {
    bail!("not implemented yet")
}
