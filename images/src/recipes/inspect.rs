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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AciBuilder;

    #[test]
    fn inspect_image_has_fixtures() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("inspect-bin");
        std::fs::write(&bin, b"\x7fELF").unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir(&root).unwrap();
        populate_inspect_rootfs(&root, &bin).unwrap();
        let m = inspect_manifest("1.0.0").unwrap();
        let bytes = AciBuilder::new(m, &root)
            .deterministic(true)
            .to_bytes()
            .unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut links = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            if path == "rootfs" {
                assert_eq!(e.header().mode().unwrap(), 0o755);
            }
            if path == "rootfs/inspect" {
                assert_eq!(e.header().mode().unwrap(), 0o755);
            }
            if let Some(l) = e.link_name().unwrap() {
                links.push(format!("{path} -> {}", l.display()));
            }
        }
        assert_eq!(
            links,
            [
                "rootfs/dir1/link_abs_dir2 -> /dir2",
                "rootfs/dir1/link_invalid -> /nonexistent/x",
                "rootfs/dir1/link_rel_dir2 -> ../dir2",
            ]
        );
    }
}
