//! The overlays of a pod: a tree-store rendering as the read-only lower layer
//! and per-pod upper/work directories (`$pod/overlay/<tree>/{upper,work}/<app>`,
//! rkt's layout; stage1 uses the empty app name).

use std::path::{Path, PathBuf};

use abi::pod_dir;
use nix::mount::{mount, MsFlags};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum OverlayError {
    #[error("overlay {what} directory {path} is missing")]
    Missing { what: &'static str, path: PathBuf },
    #[error("cannot mount overlay on {target}: {source}")]
    Mount { target: PathBuf, source: nix::Error },
}

/// `$dir/cas/tree/<id>/rootfs`: a rendered tree in the tree store.
pub fn tree_rootfs(data_dir: &Path, tree_id: &str) -> PathBuf {
    data_dir.join("cas/tree").join(tree_id).join("rootfs")
}

/// The three directories of one overlay.
#[derive(Debug, Clone)]
pub struct OverlayLayers {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl OverlayLayers {
    /// The layers of `app` (empty for stage1) rendered from tree `tree_id`
    /// of the store in `data_dir`.
    pub fn of(data_dir: &Path, pod: &Path, tree_id: &str, app: &str) -> Self {
        Self::with_lower(tree_rootfs(data_dir, tree_id), pod, tree_id, app)
    }

    /// Same, with the lower layer given.
    pub fn with_lower(lower: PathBuf, pod: &Path, tree_id: &str, app: &str) -> Self {
        let base = pod.join(pod_dir::OVERLAY_DIR).join(tree_id);
        let (upper, work) = if app.is_empty() {
            (base.join("upper"), base.join("work"))
        } else {
            (base.join("upper").join(app), base.join("work").join(app))
        };
        OverlayLayers { lower, upper, work }
    }

    /// Mounts the overlay on `target` and makes it private, so it never
    /// propagates to another mount namespace.
    pub fn mount(&self, target: &Path) -> Result<(), OverlayError> {
        for (what, path) in [
            ("lower", &self.lower),
            ("upper", &self.upper),
            ("work", &self.work),
        ] {
            if !path.is_dir() {
                return Err(OverlayError::Missing {
                    what,
                    path: path.clone(),
                });
            }
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            self.lower.display(),
            self.upper.display(),
            self.work.display()
        );
        let err = |source| OverlayError::Mount {
            target: target.to_path_buf(),
            source,
        };
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(err)?;
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(err)
    }
}
