//! `example.com/busybox`: Debian's static busybox with a symlink per applet.

use std::path::Path;
use std::process::Command;

use abi::schema::ImageManifest;

use super::{etc_accounts, install, link, mkdir, set_mode, set_owner, RecipeError};
use crate::manifest::{image_manifest, root_app, standard_labels};

pub fn busybox_manifest(version: &str) -> Result<ImageManifest, RecipeError> {
    let mut m = image_manifest("example.com/busybox", &standard_labels(version))?;
    m.app = Some(root_app(&["/bin/sh"], &[("PATH", "/bin")]));
    Ok(m)
}

/// The version busybox reports on its banner line (`BusyBox v1.35.0 (...)`).
pub fn busybox_version(busybox: &Path) -> Result<String, RecipeError> {
    let out = run(busybox, &[])?;
    out.split_whitespace()
        .nth(1)
        .and_then(|v| v.strip_prefix('v'))
        .map(str::to_string)
        .ok_or_else(|| RecipeError::Command {
            program: busybox.to_path_buf(),
            detail: "no `BusyBox vX.Y.Z` banner; is this busybox?".to_string(),
        })
}

/// Fills `root` with `/bin/busybox`, applet symlinks, accounts and the usual
/// empty directories.
pub fn populate_busybox_rootfs(root: &Path, busybox: &Path) -> Result<(), RecipeError> {
    // A temporary staging dir is 0700; the image's / must not be.
    set_mode(root, 0o755)?;
    for (dir, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("home/user", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
    ] {
        mkdir(root, dir, mode)?;
    }
    set_owner(root, "home/user", 1000, 1000)?;
    etc_accounts(root)?;
    install(root, "bin/busybox", busybox)?;
    let list = run(busybox, &["--list"])?;
    for applet in list.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        link(root, &format!("bin/{applet}"), "busybox")?;
    }
    Ok(())
}

fn run(program: &Path, args: &[&str]) -> Result<String, RecipeError> {
    let cmd_err = |detail: String| RecipeError::Command {
        program: program.to_path_buf(),
        detail,
    };
    let out = Command::new(program).args(args).output().map_err(|e| {
        cmd_err(format!(
            "{e} (install busybox-static: apt-get install busybox-static)"
        ))
    })?;
    // busybox without arguments prints its banner to stdout and exits 1.
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if text.is_empty() {
        text = String::from_utf8_lossy(&out.stderr).into_owned();
    }
    if text.is_empty() {
        return Err(cmd_err(format!("no output ({})", out.status)));
    }
    Ok(text)
}
