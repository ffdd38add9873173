//! `rkt version`.

use anyhow::Result;
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct VersionArgs {}

pub fn run(_ctx: &Context, _args: VersionArgs) -> Result<i32> {
    println!("rkt Version: {}", env!("CARGO_PKG_VERSION"));
    println!("appc Version: {}", abi::schema::AC_VERSION);
    println!(
        "Rust Version: {}",
        option_env!("RKT_RUSTC_VERSION").unwrap_or("unknown")
    );
    println!(
        "Rust OS/Arch: {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!("Features: -TPM -SDJOURNAL");
    Ok(0)
}
