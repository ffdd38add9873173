//! `rkt image`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct ImageArgs {}

pub fn run(_ctx: &Context, _args: ImageArgs) -> Result<i32> {
    bail!("not implemented yet")
}
