//! `example.com/inspect`: the checker app and rkt's symlink fixtures.

use std::path::Path;

use abi::schema::ImageManifest;

use super::{etc_accounts, install, link, mkdir, set_mode, RecipeError};
use crate::manifest::{image_manifest, port, root_app, standard_labels};

pub fn inspect_manifest(version: &str) -> Result<ImageManifest, RecipeError> {
    let mut m = image_manifest("example.com/inspect", &standard_labels(version))?;
    let mut app = root_app(
        &["/inspect"],
        &[("VAR_FROM_MANIFEST", "manifest"), ("PATH", "/bin")],
    );
    app.ports = vec![port("http", "tcp", 8080)?];
    m.app = Some(app);
    Ok(m)
}

/// Fills `root` with `/inspect` (a static binary), accounts and the
/// directories and symlinks the path-resolution tests walk through.
pub fn populate_inspect_rootfs(root: &Path, inspect_binary: &Path) -> Result<(), RecipeError> {
    // A temporary staging dir is 0700; the image's / must not be.
    set_mode(root, 0o755)?;
    for (dir, mode) in [
        ("bin", 0o755),
        ("dir1", 0o755),
        ("dir2", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
    ] {
        mkdir(root, dir, mode)?;
    }
    etc_accounts(root)?;
    install(root, "inspect", inspect_binary)?;
    link(root, "dir1/link_abs_dir2", "/dir2")?;
    link(root, "dir1/link_rel_dir2", "../dir2")?;
    link(root, "dir1/link_invalid", "/nonexistent/x")?;
    Ok(())
}
