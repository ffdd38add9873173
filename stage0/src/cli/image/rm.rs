//! `rkt image rm IMAGE…`.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use clap::Args;
use stage0::store::{is_key_prefix, Store, StoreError};

use crate::cli::Context;

#[derive(Args, Debug)]
pub struct RmArgs {
    /// image IDs or names; a name removes every image with that name
    #[arg(value_name = "IMAGE")]
    images: Vec<String>,
}

pub fn run(ctx: &Context, args: RmArgs) -> Result<i32> {
    if args.images.is_empty() {
        bail!("must provide at least one image ID");
    }
    let store = Store::open(&ctx.data_dir)?;
    // Like rkt: one error per distinct image; duplicates collapse.
    let mut to_remove = BTreeMap::new();
    let mut errors = 0usize;
    for arg in &args.images {
        if is_key_prefix(arg) {
            match store.resolve_key(arg) {
                Ok(key) => {
                    let name = store.info(&key).map(|i| i.name).unwrap_or_default();
                    to_remove.insert(key, name);
                }
                Err(StoreError::NotFound(_)) => {
                    eprintln!("rm: image ID {arg:?} doesn't exist");
                    errors += 1;
                }
                Err(e) => {
                    eprintln!("rm: image ID {arg:?} not valid: {e}");
                    errors += 1;
                }
            }
        } else {
            let keys = store.keys_by_name(arg)?;
            if keys.is_empty() {
                eprintln!("rm: image name {arg:?} not found");
                errors += 1;
            }
            for k in keys {
                to_remove.insert(k, arg.clone());
            }
        }
    }
    let mut done = 0usize;
    for (key, name) in &to_remove {
        match store.remove(key) {
            Ok(()) => {
                println!("rm: successfully removed aci for image: {:?}", key.as_str());
                done += 1;
            }
            Err(e) => {
                eprintln!(
                    "rm: error removing aci for image {:?} ({name:?}): {e}",
                    key.as_str()
                );
                errors += 1;
            }
        }
    }
    if done > 0 {
        eprintln!("rm: {done} image(s) successfully removed");
    }
    if errors > 0 {
        bail!("{errors} image(s) cannot be removed; see the lines above");
    }
    Ok(0)
}
