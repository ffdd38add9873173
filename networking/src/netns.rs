//! The pod's network namespace, kept alive by a bind mount (as `ip netns`
//! does) so it outlives the pod's processes until gc has run every
//! plugin's DEL in it.
//!
//! The bind mount must live in the mount namespace rkt was started in:
//! stage0 runs `run` in a private one (for its overlays), and a mount made
//! there would vanish with it and never be seen by gc. The caller passes
//! that namespace; the namespace is made and bound from a thread of its
//! own, since network and mount namespaces are per thread.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use thiserror::Error;

/// Where pods' network namespaces are bound (the directory `ip netns` uses,
/// so `ip netns list` shows them).
pub const NETNS_DIR: &str = "/run/netns";

#[derive(Debug, Error)]
pub enum NetnsError {
    #[error("cannot create the pod's network namespace at {path:?} ({step}): {errno}")]
    Create {
        path: PathBuf,
        step: &'static str,
        errno: Errno,
    },
    #[error("cannot remove the pod's network namespace {path:?}: {errno}")]
    Remove { path: PathBuf, errno: Errno },
}

/// The bind-mount path of pod `uuid`'s network namespace.
pub fn pod_netns_path(uuid: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(format!("rkt-{uuid}"))
}

/// Creates a network namespace bound at `path`, in `host_mounts` when
/// given (else in the caller's mount namespace), and in the caller's own
/// mount namespace too, so the path works from both. Returns an fd of it.
pub fn create(path: &Path, host_mounts: Option<BorrowedFd<'_>>) -> Result<OwnedFd, NetnsError> {
    let err = |step, errno| NetnsError::Create {
        path: path.to_path_buf(),
        step,
        errno,
    };
    let host = host_mounts
        .map(|fd| fd.try_clone_to_owned())
        .transpose()
        .map_err(|e| err("duplicate the mount namespace fd", io_errno(e)))?;
    let target = path.to_path_buf();
    let netns = std::thread::scope(|s| {
        s.spawn(move || -> Result<OwnedFd, NetnsError> {
            let err = |step, errno| NetnsError::Create {
                path: target.clone(),
                step,
                errno,
            };
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| err("unshare", e))?;
            let own = File::open("/proc/thread-self/ns/net")
                .map_err(|e| err("open /proc/thread-self/ns/net", io_errno(e)))?;
            if let Some(host) = &host {
                // setns of a mount namespace needs an fs_struct of our own.
                unshare(CloneFlags::CLONE_FS).map_err(|e| err("unshare CLONE_FS", e))?;
                setns(host, CloneFlags::CLONE_NEWNS)
                    .map_err(|e| err("join rkt's mount namespace", e))?;
            }
            bind(&own, &target).map_err(|(step, e)| err(step, e))?;
            Ok(OwnedFd::from(own))
        })
        .join()
        .unwrap_or_else(|_| Err(err("thread", Errno::EINVAL)))
    })?;
    if host_mounts.is_some() {
        // The same path in the caller's namespace (gone with it).
        let file = File::from(netns.try_clone().map_err(|e| err("dup", io_errno(e)))?);
        if let Err((step, errno)) = bind(&file, path) {
            let _ = remove(path, host_mounts);
            return Err(err(step, errno));
        }
    }
    Ok(netns)
}

/// Bind-mounts the namespace file `ns` at `target` (created empty).
fn bind(ns: &File, target: &Path) -> Result<(), (&'static str, Errno)> {
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ("create the directory", io_errno(e)))?;
    }
    // Already there when the other namespace's bind shows through.
    if !target.exists() {
        File::create(target).map_err(|e| ("create the mount point", io_errno(e)))?;
    }
    let source = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&ns.as_fd())
    );
    mount(
        Some(source.as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| ("bind mount", e))
}

/// Unbinds and removes the namespace at `path` in `host_mounts` (when
/// given) and in the caller's mount namespace; the namespace itself goes
/// once nothing uses it. A path already gone is fine (gc may run twice).
pub fn remove(path: &Path, host_mounts: Option<BorrowedFd<'_>>) -> Result<(), NetnsError> {
    if host_mounts.is_some() {
        remove_in(path, host_mounts)?;
    }
    remove_in(path, None)
}

fn remove_in(path: &Path, host_mounts: Option<BorrowedFd<'_>>) -> Result<(), NetnsError> {
    let err = |errno| NetnsError::Remove {
        path: path.to_path_buf(),
        errno,
    };
    let run = || -> Result<(), NetnsError> {
        // The path may carry the bind more than once (rkt's namespace
        // and the caller's are the same one).
        loop {
            match umount2(path, MntFlags::MNT_DETACH) {
                Ok(()) => {}
                Err(Errno::EINVAL | Errno::ENOENT) => break,
                Err(e) => return Err(err(e)),
            }
        }
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(io_errno(e))),
        }
    };
    match host_mounts {
        None => run(),
        Some(host) => std::thread::scope(|s| {
            s.spawn(|| {
                unshare(CloneFlags::CLONE_FS).map_err(err)?;
                setns(host, CloneFlags::CLONE_NEWNS).map_err(err)?;
                run()
            })
            .join()
            .unwrap_or_else(|_| Err(err(Errno::EINVAL)))
        }),
    }
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netns_inode(path: &Path) -> u64 {
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
    }

    #[test]
    fn a_bound_namespace_outlives_its_thread_and_goes_on_remove() {
        let path = pod_netns_path(&format!("unit-test-{}", std::process::id()));
        let fd = create(&path, None).unwrap();
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let bound = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        assert_ne!(std::fs::read_link(&bound).unwrap(), own, "a new namespace");
        // The mount point now shows the namespace file (nsfs inode).
        assert_eq!(netns_inode(&path), netns_inode(Path::new(&bound)));
        drop(fd);
        let listed = std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(String::from_utf8_lossy(&listed.stdout).contains(&name));
        remove(&path, None).unwrap();
        assert!(!path.exists());
        remove(&path, None).unwrap();
    }

    #[test]
    fn a_host_mount_namespace_gets_the_mount_too() {
        // Our own namespace stands in for rkt's: the path must be bound
        // (once from the thread, once for the caller) and removable.
        let path = pod_netns_path(&format!("unit-host-{}", std::process::id()));
        let host = File::open("/proc/self/ns/mnt").unwrap();
        let fd = create(&path, Some(host.as_fd())).unwrap();
        let bound = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        assert_eq!(netns_inode(&path), netns_inode(Path::new(&bound)));
        // Two mounts stacked on the same path: both must go.
        remove(&path, Some(host.as_fd())).unwrap();
        assert!(!path.exists());
    }
}
