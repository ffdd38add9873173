//! `rkt cat-manifest`.

use anyhow::{bail, Result};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct CatManifestArgs {}

pub fn run(_ctx: &Context, _args: CatManifestArgs) -> Result<i32> {
    bail!("not implemented yet")
}
