//! Deleting a garbage pod: the stage1 `gc` entrypoint for pods that ran,
//! then every leftover mount under the pod directory, then the directory.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use abi::pod_dir;
use abi::stage1::{Entrypoint, GcArgs};
use nix::mount::{umount2, MntFlags};

use crate::pod::overlay::OverlayLayers;

use super::{Pod, PodError, PodState, StateDir};
use crate::pod::mounts::{remove_pod_dir_safely, MountTable};
use crate::pod::stage1::Stage1Image;

/// Options for the stage1 `gc` entrypoint.
#[derive(Debug, Clone)]
pub struct DeleteOptions {
    /// `--local-config`, passed on to stage1 gc (interface version ≥ 5).
    pub local_config: PathBuf,
    pub debug: bool,
}

impl Pod {
    /// When the pod directory last changed state (its ctime, which a rename
    /// updates): what gc's grace period and prepared expiry count from.
    pub fn marked_at(&self) -> Option<SystemTime> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(&self.path).ok()?;
        Some(UNIX_EPOCH + Duration::new(m.ctime().max(0) as u64, m.ctime_nsec() as u32))
    }

    /// Whether `period` has passed since [`Pod::marked_at`].
    pub fn marked_before(&self, period: Duration, now: SystemTime) -> bool {
        match self.marked_at() {
            Some(t) => t + period <= now,
            None => false,
        }
    }

    /// Deletes a pod in `exited-garbage` or `garbage` whose exclusive lock
    /// this process holds. For pods that ran, the stage1 `gc` entrypoint runs
    /// first (its problems are returned as warnings, as rkt only logs them);
    /// then every mount under the pod is removed, verified gone, and the
    /// directory deleted without crossing mounts. `mounts` may be a snapshot
    /// taken once for many pods.
    pub fn delete(
        self,
        opts: &DeleteOptions,
        mounts: &MountTable,
    ) -> Result<Vec<String>, PodError> {
        let ok_state = matches!(self.state, PodState::ExitedDeleting | PodState::Deleting)
            && self.lock.is_some();
        if !ok_state {
            return Err(self.wrong_state("exited garbage or garbage, locked by this process"));
        }
        let mut warnings = Vec::new();
        if self.dir == StateDir::ExitedGarbage {
            match self.mount_stage1_for_gc(mounts) {
                Ok(mounted) => {
                    if let Err(e) = self.run_stage1_gc(opts) {
                        warnings.push(format!(
                            "problem performing stage1 GC on {:?}: {e}",
                            self.uuid
                        ));
                    }
                    if let Some(mp) = mounted {
                        let _ = umount2(&mp, MntFlags::MNT_DETACH);
                    }
                }
                Err(e) => warnings.push(format!("skipping stage1 GC: {e}")),
            }
        }
        if self.path.join(pod_dir::MDS_REGISTERED).exists() {
            warnings.extend(self.unregister_from_metadata_service());
        }
        remove_pod_dir_safely(&self.path, mounts)?;
        Ok(warnings)
    }

    /// Removes a pod run with `--mds-register` from the metadata service; a
    /// service that no longer knows it (restarted since) is fine.
    fn unregister_from_metadata_service(&self) -> Option<String> {
        let socket = std::path::Path::new(abi::metadata::REGISTRATION_SOCKET);
        match crate::services::metadata::client::unregister_pod(socket, &self.uuid) {
            Ok(()) => None,
            Err(crate::services::metadata::MetadataError::Refused { status: 404, .. }) => None,
            Err(e) => Some(format!("pod {}: {e}", self.uuid)),
        }
    }

    /// Removes a pod this process failed to prepare (still locked by us), so
    /// a failed `run` or `prepare` leaves no half-made pod behind.
    pub fn abandon(mut self) -> Result<(), PodError> {
        if self.state != PodState::Preparing || self.lock.is_none() {
            return Err(self.wrong_state("preparing, locked by this process"));
        }
        self.rename_to(StateDir::Garbage)?;
        let mounts = MountTable::read()?;
        remove_pod_dir_safely(&self.path, &mounts)?;
        Ok(())
    }

    /// Overlay pods whose stage1 rootfs is no longer mounted get it mounted
    /// again so the gc entrypoint exists; returns the mount point if this
    /// call mounted it.
    fn mount_stage1_for_gc(&self, mounts: &MountTable) -> Result<Option<PathBuf>, String> {
        let rootfs = self.path.join(pod_dir::STAGE1_ROOTFS);
        if !self.uses_overlay() || mounts.is_mount_point(&rootfs) {
            return Ok(None);
        }
        let id_path = self.path.join(pod_dir::STAGE1_TREE_STORE_ID);
        let id = std::fs::read_to_string(&id_path)
            .map_err(|e| format!("cannot read {}: {e}", id_path.display()))?;
        let id = id.trim();
        OverlayLayers::of(&self.data_dir, &self.path, id, "")
            .mount(&rootfs)
            .map_err(|e| e.to_string())?;
        Ok(Some(rootfs))
    }

    fn run_stage1_gc(&self, opts: &DeleteOptions) -> Result<(), String> {
        let s1 = Stage1Image::load(&self.path).map_err(|e| e.to_string())?;
        let ep = s1
            .entrypoint_path(&self.path, Entrypoint::Gc)
            .map_err(|e| e.to_string())?;
        let argv = GcArgs {
            debug: opts.debug,
            local_config: Some(opts.local_config.display().to_string()),
            uuid: self.uuid.clone(),
        }
        .to_argv(s1.version);
        let status = Command::new(&ep)
            .args(&argv)
            .current_dir(&self.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", ep.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{} exited with {status}", ep.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> DeleteOptions {
        DeleteOptions {
            local_config: PathBuf::from("/etc/rkt"),
            debug: false,
        }
    }

    #[test]
    fn delete_requires_the_lock_and_a_garbage_state() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let mut p = Pod::create(d).unwrap();
        p.to_prepared().unwrap();
        let table = MountTable::default();
        let p = Pod::load(d, p.uuid()).unwrap();
        assert!(p.delete(&opts(), &table).is_err());
    }

    #[test]
    fn deletes_an_exited_pod_without_stage1() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let mut p = Pod::create(d).unwrap();
        p.to_run().unwrap();
        std::fs::create_dir_all(p.path().join("stage1/rootfs/opt")).unwrap();
        let uuid = p.uuid().to_string();
        drop(p);
        let mut p = super::super::load_unlocked(d, &uuid);
        p.to_exited_garbage().unwrap();
        p.take_exclusive_lock().unwrap();
        let path = p.path().to_path_buf();
        let warnings = p.delete(&opts(), &MountTable::read().unwrap()).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("stage1"), "{warnings:?}");
        assert!(!path.exists());
    }
}
