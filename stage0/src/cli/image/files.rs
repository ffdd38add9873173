//! `rkt image cat-manifest`, `export`, `extract` and `render`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::{ArgAction, Args};
use stage0::store::Store;

use super::list::pretty_tabs;
use super::resolve_image;
use crate::cli::Context;

#[derive(Args, Debug)]
pub struct CatManifestArgs {
    /// apply indent to format the output
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true")]
    pretty_print: bool,
    /// image ID or name
    #[arg(value_name = "IMAGE")]
    image: String,
}

pub fn cat_manifest(ctx: &Context, args: CatManifestArgs) -> Result<i32> {
    let store = Store::open_for_reading(&ctx.data_dir)?;
    let key = resolve_image(&store, &args.image)?;
    let manifest = store.manifest(&key)?;
    let out = if args.pretty_print {
        pretty_tabs(&manifest)?
    } else {
        serde_json::to_string(&manifest)?
    };
    super::print_out(&format!("{out}\n"));
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// overwrite output ACI
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    overwrite: bool,
    /// image ID or name
    #[arg(value_name = "IMAGE")]
    image: String,
    /// output ACI file
    #[arg(value_name = "OUTPUT_ACI_FILE")]
    output: PathBuf,
}

/// Writes the stored (uncompressed) ACI byte for byte.
pub fn export(ctx: &Context, args: ExportArgs) -> Result<i32> {
    let store = Store::open_for_reading(&ctx.data_dir)?;
    let key = resolve_image(&store, &args.image)?;
    if args.output.exists() && !args.overwrite {
        bail!(
            "output ACI file {} exists (try --overwrite)",
            args.output.display()
        );
    }
    let mut blob = store.open_blob(&key)?;
    let tmp = sibling_tmp(&args.output);
    let result = (|| -> Result<()> {
        let mut out =
            fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        std::io::copy(&mut blob, &mut out)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &args.output)
            .with_context(|| format!("cannot write {}", args.output.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    store.touch(&key)?;
    Ok(0)
}

fn sibling_tmp(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    p.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// overwrite output directory
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    overwrite: bool,
    /// extract rootfs only
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    rootfs_only: bool,
    /// image ID or name
    #[arg(value_name = "IMAGE")]
    image: String,
    /// output directory
    #[arg(value_name = "OUTPUT_DIR")]
    output: PathBuf,
}

/// `extract` writes the image's own ACI; `render` (with `deps`) the image
/// with its dependencies and path whitelists applied.
pub fn extract(ctx: &Context, args: ExtractArgs, deps: bool) -> Result<i32> {
    let store = Store::open(&ctx.data_dir)?;
    let key = resolve_image(&store, &args.image)?;
    let out = std::path::absolute(&args.output)
        .with_context(|| format!("invalid output directory {}", args.output.display()))?;
    let canonical = out.canonicalize().unwrap_or_else(|_| out.clone());
    if canonical == Path::new("/") {
        bail!("refusing to write into /: choose an empty output directory");
    }
    if out.exists() {
        if !args.overwrite {
            bail!(
                "output directory {} exists (try --overwrite)",
                out.display()
            );
        }
        remove_output(&out)?;
    }
    match (deps, args.rootfs_only) {
        (true, true) => store.render_rootfs_to(&key, &out)?,
        (true, false) => store.render_to(&key, &out)?,
        (false, rootfs_only) => store.extract_to(&key, &out, rootfs_only)?,
    }
    store.touch(&key)?;
    Ok(0)
}

/// Removes an old output directory, refusing if anything is mounted below it.
fn remove_output(out: &Path) -> Result<()> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = format!("{}/", out.display());
    let mounted = mountinfo.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| Path::new(m) == out || m.starts_with(&prefix))
    });
    if mounted {
        bail!(
            "output directory {} has mounts under it; unmount them first",
            out.display()
        );
    }
    let md = fs::symlink_metadata(out)?;
    if md.is_dir() {
        fs::remove_dir_all(out)
    } else {
        fs::remove_file(out)
    }
    .with_context(|| format!("cannot remove {}", out.display()))
}
