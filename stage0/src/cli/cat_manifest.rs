//! `rkt cat-manifest`: print a pod's manifest.

use anyhow::{anyhow, Result};
use clap::{ArgAction, Args};

use super::status::{pod_from_args, to_go_pretty_json};
use super::Context;

#[derive(Args, Debug)]
pub struct CatManifestArgs {
    /// apply indent to format the output
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pretty_print: bool,
    /// read pod UUID from file instead of argument
    #[arg(long, value_name = "FILE")]
    uuid_file: Option<std::path::PathBuf>,
    /// the pod UUID (or a unique prefix)
    uuid: Option<String>,
}

pub fn run(ctx: &Context, args: CatManifestArgs) -> Result<i32> {
    let pod = pod_from_args(ctx, args.uuid_file.as_deref(), args.uuid.as_deref())?;
    let manifest = pod
        .manifest()
        .map_err(|e| anyhow!("cannot get pod manifest: {e}"))?;
    let text = if args.pretty_print {
        to_go_pretty_json(&manifest)?
    } else {
        serde_json::to_string(&manifest)?
    };
    println!("{text}");
    Ok(0)
}
