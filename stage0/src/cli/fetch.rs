//! `rkt fetch`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct FetchArgs {}

pub fn run(_ctx: &Context, _args: FetchArgs) -> Result<i32> {
    bail!("not implemented yet")
}
