//! The app's view of its own cgroup at /sys/fs/cgroup, read-only, so tools
//! in the app (like `inspect --print-memorylimit`) can read their limits.
//!
//! Only the app's own leaf is shown, not the host's tree: on v1 a tmpfs at
//! /sys/fs/cgroup holds one directory per hierarchy (named like the host's,
//! with the host's `cpu -> cpu,cpuacct` style links) with the leaf bound
//! on it; on v2 the leaf is bound on /sys/fs/cgroup itself. Everything is
//! read-only: the limits are the pod's to set, not the app's. Since there
//! is no cgroup namespace, /proc/self/cgroup in the app still names the
//! full path; the mount's root in mountinfo is that same path, which is how
//! readers (inspect, systemd, runc's libcontainer) map it onto the mount.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use stage1_common::cgroups::{parse_proc_cgroup, Layout, Parent, V1Manager, CGROUP_ROOT};
use stage1_common::mount as mnt;

use super::RootfsError;

const PROC_SELF_CGROUP: &str = "/proc/self/cgroup";

/// Mounts the cgroups this process is in (the app's, joined before) at
/// `target`, the app's /sys/fs/cgroup as a host path.
pub fn mount_own_cgroups(target: &Path) -> Result<(), RootfsError> {
    let root = Path::new(CGROUP_ROOT);
    let content = std::fs::read_to_string(PROC_SELF_CGROUP).map_err(|source| RootfsError::Io {
        path: PROC_SELF_CGROUP.into(),
        source,
    })?;
    let own = parse_proc_cgroup(&content);
    match Layout::detect_at(root)? {
        Layout::Unified => {
            let Some((_, path)) = own.iter().find(|(cs, _)| cs.is_empty()) else {
                return Ok(());
            };
            bind_read_only(&root.join(relative(path)), target)
        }
        Layout::Legacy | Layout::Hybrid => {
            let hierarchies = V1Manager::discover(root, Parent::Root)?;
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mnt::mount_tmpfs(target, flags, "size=64k,mode=0755")?;
            for h in hierarchies.hierarchies() {
                let Some((_, path)) = own
                    .iter()
                    .find(|(cs, _)| cs.iter().any(|c| h.controllers.contains(c)))
                else {
                    continue;
                };
                let Some(name) = h.mount.file_name() else {
                    continue;
                };
                let dir = target.join(name);
                create_dir(&dir)?;
                mnt::bind(&h.mount.join(relative(path)), &dir, false)?;
                // `cpu` for a co-mounted `cpu,cpuacct`, as on the host.
                for c in &h.controllers {
                    let link = target.join(c);
                    if !c.starts_with("name=") && c.as_str() != name && !link.exists() {
                        symlink(name, &link).map_err(|source| RootfsError::Io {
                            path: link.clone(),
                            source,
                        })?;
                    }
                }
            }
            // The tmpfs and every leaf on it, in one go where the kernel can.
            mnt::remount_readonly(target, true)?;
            Ok(())
        }
    }
}

fn bind_read_only(source: &Path, target: &Path) -> Result<(), RootfsError> {
    mnt::bind(source, target, false)?;
    mnt::remount_readonly(target, false)?;
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), RootfsError> {
    std::fs::create_dir_all(dir).map_err(|source| RootfsError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// `/a/b` as `a/b`, to join below a hierarchy's mount point.
fn relative(path: &Path) -> PathBuf {
    path.strip_prefix("/").unwrap_or(path).to_path_buf()
}
