//! `rkt image`: operate on images in the local store.

mod files;
mod gc;
mod list;
mod rm;
mod verify;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use stage0::store::{is_key_prefix, ImageKey, Store};

use super::{fetch, Context};

#[derive(Args, Debug)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// List images in the local store
    List(list::ListArgs),
    /// Remove one or more images with the given IDs or names from the local store
    Rm(rm::RmArgs),
    /// Garbage collect tree stores and images in the local store
    Gc(gc::GcArgs),
    /// Inspect and print the image manifest
    CatManifest(files::CatManifestArgs),
    /// Export a stored image to an ACI file
    Export(files::ExportArgs),
    /// Extract a stored image to a directory
    Extract(files::ExtractArgs),
    /// Render a stored image to a directory with all its dependencies
    Render(files::ExtractArgs),
    /// Verify one or more rendered images in the local store
    Verify(verify::VerifyArgs),
    /// Fetch image(s) and store them in the local store
    #[command(hide = true)]
    Fetch(fetch::FetchArgs),
}

pub fn run(ctx: &Context, args: ImageArgs) -> Result<i32> {
    match args.command {
        ImageCommand::List(a) => list::run(ctx, a),
        ImageCommand::Rm(a) => rm::run(ctx, a),
        ImageCommand::Gc(a) => gc::run(ctx, a),
        ImageCommand::CatManifest(a) => files::cat_manifest(ctx, a),
        ImageCommand::Export(a) => files::export(ctx, a),
        ImageCommand::Extract(a) => files::extract(ctx, a, false),
        ImageCommand::Render(a) => files::extract(ctx, a, true),
        ImageCommand::Verify(a) => verify::run(ctx, a),
        ImageCommand::Fetch(a) => fetch::run(ctx, a),
    }
}

/// An image argument: an ID prefix, or `name[:version]` resolved like rkt's
/// `GetACI` (all given labels match; `latest` preferred; newest import).
pub fn resolve_image(store: &Store, arg: &str) -> Result<ImageKey> {
    if is_key_prefix(arg) {
        return Ok(store.resolve_key(arg)?);
    }
    let (name, labels) = split_name(arg);
    store.find_by_name(name, &labels)?.ok_or_else(|| {
        anyhow!("image {arg:?} not found in the store; list stored images with `rkt image list`")
    })
}

/// Writes command output; a closed pipe (`| head`) is not an error.
pub fn print_out(s: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|()| out.flush());
}

/// `name[:version]` → name and labels.
fn split_name(arg: &str) -> (&str, Vec<(String, String)>) {
    match arg.split_once(':') {
        Some((n, v)) => (n, vec![("version".to_string(), v.to_string())]),
        None => (arg, Vec::new()),
    }
}

/// Parses a Go duration such as `24h`, `1h30m`, `90s` or `0`.
pub fn parse_go_duration(s: &str) -> Result<std::time::Duration> {
    let bad = || anyhow!("invalid duration {s:?}: use a Go duration such as 24h, 30m or 1h30m");
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("24h").unwrap().as_secs(), 86_400);
        assert_eq!(parse_go_duration("1h30m").unwrap().as_secs(), 5_400);
        assert_eq!(parse_go_duration("0").unwrap().as_secs(), 0);
        assert_eq!(parse_go_duration("1.5s").unwrap().as_millis(), 1_500);
        assert!(parse_go_duration("1d").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(split_name("a.com/b").1.len(), 0);
        assert_eq!(split_name("a.com/b:1").1[0].1, "1");
    }
}
