//! `rkt fetch IMAGE…` (also the hidden `rkt image fetch`).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{ArgAction, Args};
use stage0::fetch::PullPolicy;
use stage0::store::Store;

use super::Context;

#[derive(Args, Debug, Clone)]
pub struct FetchArgs {
    /// print the full image hash after fetching
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub full: bool,
    /// local signature file to use in validating the image (the Nth --signature
    /// belongs to the Nth image)
    #[arg(long, value_name = "FILE")]
    pub signature: Vec<PathBuf>,
    /// when to pull an image: new, update or never
    #[arg(long, default_value = "update", value_name = "POLICY")]
    pub pull_policy: String,
    /// deprecated: same as --pull-policy=never
    #[arg(long, hide = true)]
    pub store_only: bool,
    /// deprecated: same as --pull-policy=update
    #[arg(long, hide = true)]
    pub no_store: bool,
    /// images to fetch: files, hashes or names
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub fn run(ctx: &Context, args: FetchArgs) -> Result<i32> {
    if args.images.is_empty() {
        bail!("must provide at least one image");
    }
    if args.signature.len() > args.images.len() {
        bail!("too many --signature flags: give at most one per image");
    }
    let policy = if args.store_only {
        PullPolicy::Never
    } else if args.no_store {
        PullPolicy::Update
    } else {
        PullPolicy::parse(&args.pull_policy).map_err(anyhow::Error::msg)?
    };
    let store = Store::open(&ctx.data_dir)?;
    let fetcher = ctx.fetcher(&store, policy)?;
    let prerender = nix::unistd::geteuid().is_root() && overlay_supported();
    for (i, image) in args.images.iter().enumerate() {
        let sig = args.signature.get(i).map(PathBuf::as_path);
        let key = fetcher.fetch_with_deps(image, sig)?;
        if prerender {
            // Like rkt: render now so the first run of the image is fast.
            store.render_tree(&key)?;
        }
        if args.full {
            println!("{key}");
        } else {
            println!("{}", key.fetch_short());
        }
    }
    Ok(0)
}

/// True if the kernel knows overlayfs, which pods use over tree-store trees.
fn overlay_supported() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| {
        f.lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"))
    })
}
