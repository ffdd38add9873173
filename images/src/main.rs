//! `build-aci`: writes the images this project ships and tests with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use abi::schema::ImageManifest;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use images::recipes::{self, RecipeError, Stage1Flavor};
use images::AciBuilder;

#[derive(Parser)]
#[command(name = "build-aci", about = "Build ACI images")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct Output {
    /// gzip-compress the ACI
    #[arg(long)]
    gzip: bool,
    /// keep the sources' mtimes instead of a fixed one (builds are then not
    /// reproducible: the image ID changes every time)
    #[arg(long)]
    keep_mtime: bool,
    /// where to write the ACI
    out: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// example.com/busybox: a shell and coreutils from a static busybox
    Busybox {
        /// the static busybox to copy (Debian's busybox-static)
        #[arg(long, default_value = "/bin/busybox")]
        busybox: PathBuf,
        /// version label (default: what the busybox binary reports)
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// example.com/inspect: the checker app run by the functional tests
    Inspect {
        /// the static inspect binary
        #[arg(long)]
        binary: PathBuf,
        /// version label
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        version: String,
        #[command(flatten)]
        output: Output,
    },
    /// coreos.com/rkt/stage1-<flavor>: a stage1 image from built entrypoints
    Stage1 {
        /// stage1 flavor (fly)
        #[arg(long)]
        flavor: String,
        /// directory holding <flavor>-run, <flavor>-enter, ...
        #[arg(long)]
        bin_dir: PathBuf,
        /// version label
        #[arg(long)]
        version: String,
        /// the guest kernel of a VM flavor (kvm): a directory with
        /// `vmlinuz` and `modules/`, as scripts/guest-kernel.sh makes it
        #[arg(long)]
        guest_kernel: Option<PathBuf>,
        #[command(flatten)]
        output: Output,
    },
    /// any image from a manifest file and a rootfs directory
    Dir {
        /// image manifest (JSON)
        #[arg(long)]
        manifest: PathBuf,
        /// rootfs directory
        #[arg(long)]
        rootfs: PathBuf,
        #[command(flatten)]
        output: Output,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("build-aci: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Busybox {
            busybox,
            version,
            output,
        } => {
            let version = match version {
                Some(v) => v,
                None => recipes::busybox_version(&busybox)?,
            };
            let manifest = recipes::busybox_manifest(&version)?;
            staged(manifest, &output, |root| {
                recipes::populate_busybox_rootfs(root, &busybox)
            })
        }
        Cmd::Inspect {
            binary,
            version,
            output,
        } => {
            let manifest = recipes::inspect_manifest(&version)?;
            staged(manifest, &output, |root| {
                recipes::populate_inspect_rootfs(root, &binary)
            })
        }
        Cmd::Stage1 {
            flavor,
            bin_dir,
            version,
            guest_kernel,
            output,
        } => {
            let flavor = Stage1Flavor::find(&flavor)?;
            let manifest = recipes::stage1_manifest(flavor, &version)?;
            staged(manifest, &output, |root| {
                recipes::populate_stage1_rootfs(root, flavor, &bin_dir, guest_kernel.as_deref())
            })
        }
        Cmd::Dir {
            manifest,
            rootfs,
            output,
        } => {
            let text = std::fs::read(&manifest)
                .with_context(|| format!("reading manifest {}", manifest.display()))?;
            let parsed: ImageManifest = serde_json::from_slice(&text)
                .with_context(|| format!("parsing image manifest {}", manifest.display()))?;
            write(parsed, &rootfs, &output)
        }
    }
}

/// Fills a temporary rootfs with `populate`, then writes the image.
fn staged(
    manifest: ImageManifest,
    output: &Output,
    populate: impl FnOnce(&Path) -> Result<(), RecipeError>,
) -> Result<()> {
    let staging = tempfile::Builder::new()
        .prefix("build-aci-")
        .tempdir()
        .context("creating a staging directory")?;
    let root = staging.path().join("rootfs");
    std::fs::create_dir(&root).context("creating the staging rootfs")?;
    populate(&root)?;
    write(manifest, &root, output)
}

fn write(manifest: ImageManifest, rootfs: &Path, output: &Output) -> Result<()> {
    AciBuilder::new(manifest, rootfs)
        .gzip(output.gzip)
        .deterministic(!output.keep_mtime)
        .write_file(&output.out)?;
    Ok(())
}
