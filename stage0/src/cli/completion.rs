//! `rkt completion bash`: shell completion code (bash only, as rkt).

use anyhow::{bail, Result};
use clap::{Args, CommandFactory};

use super::Context;

#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// the shell: bash
    #[arg(value_name = "SHELL")]
    shell: String,
}

pub fn run(_ctx: &Context, args: CompletionArgs) -> Result<i32> {
    if args.shell != "bash" {
        bail!("unsupported shell {:?}; only bash is supported", args.shell);
    }
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "rkt", &mut script);
    std::io::Write::write_all(&mut std::io::stdout(), &script)?;
    Ok(0)
}
