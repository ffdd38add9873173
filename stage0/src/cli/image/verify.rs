//! `rkt image verify IMAGE…`: re-hash rendered trees, rebuild broken ones.

use anyhow::{bail, Result};
use clap::Args;
use stage0::store::Store;

use super::resolve_image;
use crate::cli::Context;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// image IDs or names
    #[arg(value_name = "IMAGE")]
    images: Vec<String>,
}

pub fn run(ctx: &Context, args: VerifyArgs) -> Result<i32> {
    if args.images.is_empty() {
        bail!("must provide at least one image ID");
    }
    let store = Store::open(&ctx.data_dir)?;
    for img in &args.images {
        let key = resolve_image(&store, img)
            .map_err(|e| anyhow::anyhow!("unable to resolve store key for image {img}: {e}"))?;
        let id = store.tree_id(&key)?;
        if !store.tree_rendered(&id) {
            println!("verify: image {img:?} not rendered; no verification needed");
            continue;
        }
        match store.verify_tree(&id) {
            Ok(()) => println!(
                "verify: successfully verified checksum for image: {img:?} ({:?})",
                key.as_str()
            ),
            Err(e) => {
                println!(
                    "verify: tree cache verification failed for image {img}: {e};  rebuilding..."
                );
                store.remove_tree(&id)?;
                store
                    .render_tree(&key)
                    .map_err(|e| anyhow::anyhow!("unable to repair cache for image {img}: {e}"))?;
            }
        }
    }
    Ok(0)
}
