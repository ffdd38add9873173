//! The pod lifecycle: pod directories under `$dir/pods/<state>/<uuid>`, their
//! flock-based states and transitions (rkt's `pkg/pod`), and what stage0 reads
//! back from a pod directory (pid, times, exit codes, networks).
//!
//! There is no daemon: a pod's state is the directory it is in and whether an
//! exclusive flock on that directory is held. Transitions are atomic renames
//! followed by an fsync of the parent directories; a rename that loses a race
//! (ENOENT) reports [`PodError::Gone`].

mod duration;
mod export;
mod gc;
mod info;
mod lock;
mod net_check;
mod state;
mod uuid;
pub mod v1;

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use abi::pod_dir;
use abi::schema::PodManifest;
use thiserror::Error;

pub use duration::{parse_go_duration, parse_go_duration_nanos, parse_wait, DurationError, Wait};
pub use export::{export_app, ExportError};
pub use gc::DeleteOptions;
pub use info::NetInfo;
pub use net_check::NetCheckError;
pub use state::{PodState, StateDir};
pub use uuid::{is_uuid, new_uuid, read_uuid_file, write_uuid_file};

use super::mounts::MountError;
use super::stage1::Stage1Error;

#[derive(Debug, Error)]
pub enum PodError {
    #[error("no matches found for {0:?}")]
    NoMatch(String),
    #[error("ambiguous uuid, {0} matches")]
    Ambiguous(usize),
    #[error("pod {0} not found")]
    NotFound(String),
    #[error("pod {0} disappeared (moved or removed by another rkt process)")]
    Gone(String),
    #[error("pod {0} is locked by another process")]
    Locked(String),
    #[error("pod {uuid} is {state}, expected {expected}")]
    WrongState {
        uuid: String,
        state: PodState,
        expected: &'static str,
    },
    #[error("UUID file {0} is empty")]
    EmptyUuidFile(PathBuf),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid pod manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("pod {uuid} is not running anymore")]
    NotRunning { uuid: String },
    #[error("timed out {0}")]
    Timeout(String),
    #[error("{0}")]
    Pid(String),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Stage1(#[from] Stage1Error),
    #[error("cannot run as unprivileged user")]
    NotSuperuser,
    #[error("cannot read the pods directory {path}: {source}; run as root, or as a member of the data directory's group (`rkt`)")]
    PodsUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PodError + 'a {
    move |source| PodError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// rkt's `ensureSuperuser`: root-only commands fail with
/// `cannot run as unprivileged user`.
pub fn ensure_superuser() -> Result<(), PodError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(PodError::NotSuperuser)
    }
}

/// `$dir/pods`.
pub fn pods_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("pods")
}

/// A pod directory, its state when last looked at and, when this process
/// holds it, the fd carrying the exclusive flock.
#[derive(Debug)]
pub struct Pod {
    data_dir: PathBuf,
    uuid: String,
    dir: StateDir,
    path: PathBuf,
    state: PodState,
    lock: Option<OwnedFd>,
}

const DIR_MODE: u32 = 0o750;

fn mkdir_all(path: &Path) -> Result<(), PodError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
        .map_err(io_err("cannot create directory", path))
}

impl Pod {
    /// Creates a new pod: a random UUID, `pods/embryo/<uuid>` locked
    /// exclusively, `pod-created` touched, then renamed to
    /// `pods/prepare/<uuid>`. The returned pod is [`PodState::Preparing`]
    /// and holds the lock.
    pub fn create(data_dir: &Path) -> Result<Pod, PodError> {
        let uuid = new_uuid();
        let embryo = state_path(data_dir, StateDir::Embryo, &uuid);
        let embryos = pods_dir(data_dir).join(StateDir::Embryo.name());
        let mkdir = || {
            use std::os::unix::fs::DirBuilderExt;
            // Each pod in a block group of its own (see set_topdir); the
            // flag is on `embryo` from its first pod, or an older rkt's.
            let _ = crate::data_dir::set_topdir(&embryos);
            std::fs::DirBuilder::new().mode(DIR_MODE).create(&embryo)
        };
        match mkdir() {
            Ok(()) => {}
            // The data directory's first pod.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::data_dir::ensure(data_dir)
                    .map_err(io_err("cannot create directory", data_dir))?;
                for dir in StateDir::ALL {
                    mkdir_all(&pods_dir(data_dir).join(dir.name()))?;
                }
                mkdir().map_err(io_err("cannot create pod directory", &embryo))?;
            }
            Err(e) => return Err(io_err("cannot create pod directory", &embryo)(e)),
        }
        let fd = lock::open_dir(&embryo).map_err(io_err("cannot open pod directory", &embryo))?;
        if !lock::try_exclusive(&fd).map_err(io_err("cannot lock pod directory", &embryo))? {
            return Err(PodError::Locked(uuid));
        }
        let created = embryo.join(pod_dir::POD_CREATED);
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o640)
                .open(&created)
                .map_err(io_err("cannot create", &created))?;
        }
        let mut pod = Pod {
            data_dir: data_dir.to_path_buf(),
            uuid,
            dir: StateDir::Embryo,
            path: embryo,
            state: PodState::Embryo,
            lock: Some(fd),
        };
        pod.rename_to(StateDir::Prepare)?;
        pod.state = PodState::Preparing;
        Ok(pod)
    }

    /// Finds pod `uuid` (a full UUID) in any state directory.
    pub fn load(data_dir: &Path, uuid: &str) -> Result<Pod, PodError> {
        // A pod renamed between our open and our check is retried; renames
        // only move forward through StateDir::ALL, so a scan in that order
        // finds a live pod.
        for _ in 0..5 {
            match Self::probe_dirs(data_dir, uuid, &StateDir::ALL)? {
                Probe::Found(pod) => return Ok(pod),
                Probe::Raced => continue,
                Probe::Missing => return Err(PodError::NotFound(uuid.to_string())),
            }
        }
        Err(PodError::Gone(uuid.to_string()))
    }

    /// Resolves `prefix` (or a full UUID) and loads the pod.
    pub fn load_prefix(data_dir: &Path, prefix: &str) -> Result<Pod, PodError> {
        let uuid = Self::resolve_uuid(data_dir, prefix)?;
        Self::load(data_dir, &uuid)
    }

    /// The unique pod UUID starting with `prefix`, across all state dirs.
    pub fn resolve_uuid(data_dir: &Path, prefix: &str) -> Result<String, PodError> {
        uuid::resolve(data_dir, prefix)
    }

    /// The pods `rkt list` shows (rkt's `IncludeMostDirs`), sorted by UUID.
    pub fn list(data_dir: &Path) -> Result<Vec<Pod>, PodError> {
        Self::list_in(data_dir, &StateDir::MOST)
    }

    /// Pods currently in `dirs`, sorted by UUID: one readdir per directory
    /// and one open + lock probe per pod. Pods that moved out of `dirs`
    /// meanwhile are left out.
    pub fn list_in(data_dir: &Path, dirs: &[StateDir]) -> Result<Vec<Pod>, PodError> {
        let mut pods = Vec::new();
        let mut seen = HashSet::new();
        for &dir in dirs {
            for uuid in uuid::list_uuids(data_dir, &[dir])? {
                if seen.contains(&uuid) {
                    continue;
                }
                let found = match Self::probe_dirs(data_dir, &uuid, &[dir])? {
                    Probe::Found(p) => Some(p),
                    // Moved since the readdir: look everywhere.
                    Probe::Raced | Probe::Missing => match Self::load(data_dir, &uuid) {
                        Ok(p) => Some(p),
                        Err(PodError::NotFound(_)) | Err(PodError::Gone(_)) => None,
                        Err(e) => return Err(e),
                    },
                };
                if let Some(p) = found.filter(|p| dirs.contains(&p.dir)) {
                    seen.insert(uuid);
                    pods.push(p);
                }
            }
        }
        pods.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        Ok(pods)
    }

    fn probe_dirs(data_dir: &Path, uuid: &str, dirs: &[StateDir]) -> Result<Probe, PodError> {
        let mut raced = false;
        for &dir in dirs {
            let path = state_path(data_dir, dir, uuid);
            let fd = match lock::open_dir(&path) {
                Ok(fd) => fd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("cannot open pod directory", &path)(e)),
            };
            let locked = dir.lock_matters()
                && lock::is_locked(&fd).map_err(io_err("cannot probe the lock of", &path))?;
            if !lock::still_at(&fd, &path) {
                raced = true;
                continue;
            }
            return Ok(Probe::Found(Pod {
                data_dir: data_dir.to_path_buf(),
                uuid: uuid.to_string(),
                dir,
                path,
                state: PodState::from_dir(dir, locked),
                lock: None,
            }));
        }
        Ok(if raced { Probe::Raced } else { Probe::Missing })
    }

    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The pod directory as of the last transition or refresh.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn state(&self) -> PodState {
        self.state
    }

    pub fn state_dir(&self) -> StateDir {
        self.dir
    }

    /// The fd of the pod directory holding the exclusive flock, if this
    /// process holds it: stage0 passes it as `RKT_LOCK_FD` (clear
    /// FD_CLOEXEC before exec).
    pub fn lock_fd(&self) -> Option<RawFd> {
        self.lock.as_ref().map(|fd| fd.as_raw_fd())
    }

    /// Re-reads the state (and the directory, which may have been renamed by
    /// another process). A held lock keeps the state as is.
    pub fn refresh(&mut self) -> Result<(), PodError> {
        if self.lock.is_some() {
            return Ok(());
        }
        let fresh = Self::load(&self.data_dir, &self.uuid)?;
        self.dir = fresh.dir;
        self.path = fresh.path;
        self.state = fresh.state;
        Ok(())
    }

    /// `prepare` → `prepared`, releasing the lock (end of `rkt prepare`).
    pub fn to_prepared(&mut self) -> Result<(), PodError> {
        if self.state != PodState::Preparing || self.lock.is_none() {
            return Err(self.wrong_state("preparing (and locked by this process)"));
        }
        self.rename_to(StateDir::Prepared)?;
        self.state = PodState::Prepared;
        self.lock = None;
        Ok(())
    }

    /// `prepare` → `run` keeping the lock (`rkt run`), or `prepared` → `run`
    /// after taking the exclusive lock (`rkt run-prepared`).
    pub fn to_run(&mut self) -> Result<(), PodError> {
        match (self.state, self.lock.is_some()) {
            (PodState::Preparing, true) => {}
            (PodState::Prepared, _) => {
                self.take_exclusive_lock()?;
                if self.dir != StateDir::Prepared {
                    let e = self.wrong_state("prepared");
                    self.lock = None;
                    return Err(e);
                }
            }
            _ => return Err(self.wrong_state("preparing or prepared")),
        }
        self.rename_to(StateDir::Run)?;
        self.state = PodState::Running;
        Ok(())
    }

    /// `run` → `exited-garbage` for an exited pod (gc marking, `rkt rm`).
    pub fn to_exited_garbage(&mut self) -> Result<(), PodError> {
        if self.state != PodState::Exited {
            return Err(self.wrong_state("exited"));
        }
        self.rename_to(StateDir::ExitedGarbage)?;
        self.state = PodState::ExitedGarbage;
        Ok(())
    }

    /// `prepare` (aborted) or `prepared` → `garbage`. The exclusive lock is
    /// taken for the rename so a concurrent `run-prepared` cannot be robbed.
    pub fn to_garbage(&mut self) -> Result<(), PodError> {
        if !matches!(self.state, PodState::AbortedPrepare | PodState::Prepared) {
            return Err(self.wrong_state("aborted prepare or prepared"));
        }
        let had_lock = self.lock.is_some();
        if !had_lock {
            self.take_exclusive_lock()?;
            if !matches!(self.dir, StateDir::Prepare | StateDir::Prepared) {
                let e = self.wrong_state("aborted prepare or prepared");
                self.lock = None;
                return Err(e);
            }
        }
        let result = self.rename_to(StateDir::Garbage);
        if !had_lock {
            self.lock = None;
        }
        result?;
        self.state = if self.lock.is_some() {
            PodState::Deleting
        } else {
            PodState::Garbage
        };
        Ok(())
    }

    /// Takes the exclusive lock without blocking ([`PodError::Locked`] when
    /// held elsewhere) and updates the state: a locked `exited-garbage` pod is
    /// `exited deleting`, a locked `garbage` pod `deleting`.
    pub fn take_exclusive_lock(&mut self) -> Result<(), PodError> {
        if self.lock.is_some() {
            return Ok(());
        }
        for _ in 0..5 {
            let fd = match lock::open_dir(&self.path) {
                Ok(fd) => fd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.refresh()?;
                    continue;
                }
                Err(e) => return Err(io_err("cannot open pod directory", &self.path)(e)),
            };
            if !lock::try_exclusive(&fd).map_err(io_err("cannot lock", &self.path))? {
                return Err(PodError::Locked(self.uuid.clone()));
            }
            if !lock::still_at(&fd, &self.path) {
                drop(fd);
                self.refresh()?;
                continue;
            }
            self.lock = Some(fd);
            self.state = PodState::from_dir(self.dir, true);
            return Ok(());
        }
        Err(PodError::Gone(self.uuid.clone()))
    }

    /// Releases a held lock (closing the fd).
    pub fn unlock(&mut self) {
        if self.lock.take().is_some() && self.dir.lock_matters() {
            self.state = PodState::from_dir(self.dir, false);
        }
    }

    fn wrong_state(&self, expected: &'static str) -> PodError {
        PodError::WrongState {
            uuid: self.uuid.clone(),
            state: self.state,
            expected,
        }
    }

    fn rename_to(&mut self, to: StateDir) -> Result<(), PodError> {
        let dest = state_path(&self.data_dir, to, &self.uuid);
        let mut renamed = std::fs::rename(&self.path, &dest);
        // Data dirs made by other tools may lack some state dirs; a missing
        // one must not look like a lost race.
        if matches!(&renamed, Err(e) if e.kind() == std::io::ErrorKind::NotFound)
            && self.path.exists()
        {
            mkdir_all(&pods_dir(&self.data_dir).join(to.name()))?;
            renamed = std::fs::rename(&self.path, &dest);
        }
        if let Err(e) = renamed {
            return Err(if e.kind() == std::io::ErrorKind::NotFound {
                PodError::Gone(self.uuid.clone())
            } else {
                io_err("cannot move pod directory", &self.path)(e)
            });
        }
        // Only `prepared` is a result the user waits for and expects to
        // survive a crash. Every other transition lost in a crash leaves a
        // state gc already handles (an unlocked `prepare` is an aborted
        // prepare, an unlocked `run` has exited), so it is not worth two
        // directory fsyncs on every `rkt run`.
        if to == StateDir::Prepared {
            for dir in [self.dir, to] {
                let parent = pods_dir(&self.data_dir).join(dir.name());
                lock::sync_dir(&parent).map_err(io_err("cannot sync", &parent))?;
            }
        }
        self.dir = to;
        self.path = dest;
        Ok(())
    }

    /// Whether `$pod/pod` exists.
    pub fn has_manifest(&self) -> bool {
        self.path.join(pod_dir::POD_MANIFEST).exists()
    }

    /// The raw `$pod/pod` bytes.
    pub fn manifest_bytes(&self) -> Result<Vec<u8>, PodError> {
        let path = self.path.join(pod_dir::POD_MANIFEST);
        std::fs::read(&path).map_err(io_err("cannot read pod manifest", &path))
    }

    /// The parsed pod manifest.
    pub fn manifest(&self) -> Result<PodManifest, PodError> {
        let bytes = self.manifest_bytes()?;
        PodManifest::from_json(&bytes).map_err(|e| PodError::Manifest {
            path: self.path.join(pod_dir::POD_MANIFEST),
            reason: e.to_string(),
        })
    }

    /// The app names from the pod manifest, in manifest order.
    pub fn app_names(&self) -> Result<Vec<String>, PodError> {
        Ok(self
            .manifest()?
            .apps
            .iter()
            .map(|a| a.name.as_str().to_string())
            .collect())
    }

    /// Whether the pod was prepared with overlayfs (`overlay-prepared`).
    pub fn uses_overlay(&self) -> bool {
        self.path.join(pod_dir::OVERLAY_PREPARED).exists()
    }
}

enum Probe {
    Found(Pod),
    Raced,
    Missing,
}

/// Tests: loads a pod whose lock was just dropped. A child forked by a
/// concurrent test may briefly hold an inherited copy of the lock fd (until
/// its exec closes it), so the lock is given a moment to go.
#[cfg(test)]
pub(crate) fn load_unlocked(data_dir: &Path, uuid: &str) -> Pod {
    for _ in 0..100 {
        let p = Pod::load(data_dir, uuid).unwrap();
        if !matches!(p.state, PodState::Running | PodState::Preparing) {
            return p;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("pod {uuid} stayed locked");
}

fn state_path(data_dir: &Path, dir: StateDir, uuid: &str) -> PathBuf {
    pods_dir(data_dir).join(dir.name()).join(uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_state(data: &Path, uuid: &str) -> PodState {
        Pod::load(data, uuid).unwrap().state()
    }

    /// On ext4 pods are placed like top-level directories, each in a
    /// block group of ext4's choosing. The test machines' /tmp is ext4;
    /// elsewhere the test fails rather than pass without looking.
    #[test]
    fn pods_are_spread_over_block_groups_on_ext4() {
        const EXT4_SUPER_MAGIC: i64 = 0xEF53;
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        Pod::create(d).unwrap();
        let embryos = d.join("pods/embryo");
        let fs = nix::sys::statfs::statfs(&embryos).unwrap();
        assert_eq!(
            fs.filesystem_type().0 as i64,
            EXT4_SUPER_MAGIC,
            "this test needs the temporary directory ({}) on ext4, as on the test machines",
            d.display()
        );
        assert!(
            crate::data_dir::is_topdir(&embryos).unwrap(),
            "pods/embryo is not a top directory"
        );
    }

    #[test]
    fn create_prepare_prepared_run() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let mut pod = Pod::create(d).unwrap();
        assert_eq!(pod.state(), PodState::Preparing);
        assert!(pod.path().starts_with(d.join("pods/prepare")));
        assert!(pod.path().join("pod-created").exists());
        assert!(pod.lock_fd().is_some());
        // A second fd sees the lock.
        assert_eq!(probe_state(d, pod.uuid()), PodState::Preparing);

        pod.to_prepared().unwrap();
        assert_eq!(pod.state(), PodState::Prepared);
        assert!(pod.lock_fd().is_none());
        assert_eq!(probe_state(d, pod.uuid()), PodState::Prepared);

        let mut again = Pod::load(d, pod.uuid()).unwrap();
        again.to_run().unwrap();
        assert_eq!(again.state(), PodState::Running);
        assert!(again.path().starts_with(d.join("pods/run")));
        assert_eq!(probe_state(d, pod.uuid()), PodState::Running);

        // Another run-prepared on the stale handle fails: the pod moved.
        assert!(pod.to_run().is_err());

        drop(again);
        assert_eq!(load_unlocked(d, pod.uuid()).state(), PodState::Exited);
    }

    #[test]
    fn run_directly_keeps_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let mut pod = Pod::create(d).unwrap();
        let fd = pod.lock_fd().unwrap();
        pod.to_run().unwrap();
        assert_eq!(pod.lock_fd(), Some(fd));
        assert_eq!(probe_state(d, pod.uuid()), PodState::Running);
        // A second locker is refused.
        let mut other = Pod::load(d, pod.uuid()).unwrap();
        assert!(matches!(
            other.take_exclusive_lock(),
            Err(PodError::Locked(_))
        ));
        let uuid = pod.uuid().to_string();
        drop(pod);
        let mut exited = load_unlocked(d, &uuid);
        assert_eq!(exited.state(), PodState::Exited);
        exited.to_exited_garbage().unwrap();
        assert_eq!(probe_state(d, &uuid), PodState::ExitedGarbage);
        exited.take_exclusive_lock().unwrap();
        assert_eq!(exited.state(), PodState::ExitedDeleting);
        assert_eq!(probe_state(d, &uuid), PodState::ExitedDeleting);
    }

    #[test]
    fn aborted_prepare_and_garbage() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let pod = Pod::create(d).unwrap();
        let uuid = pod.uuid().to_string();
        drop(pod);
        let mut p = load_unlocked(d, &uuid);
        assert_eq!(p.state(), PodState::AbortedPrepare);
        p.to_garbage().unwrap();
        assert_eq!(p.state(), PodState::Garbage);
        assert_eq!(probe_state(d, &uuid), PodState::Garbage);
        assert!(p.to_run().is_err());
    }

    #[test]
    fn run_prepared_refuses_a_locked_pod() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let mut pod = Pod::create(d).unwrap();
        pod.to_prepared().unwrap();
        let mut first = Pod::load(d, pod.uuid()).unwrap();
        first.take_exclusive_lock().unwrap();
        let mut second = Pod::load(d, pod.uuid()).unwrap();
        assert!(matches!(second.to_run(), Err(PodError::Locked(_))));
        first.to_run().unwrap();
    }

    #[test]
    fn stale_handles_lose_rename_races() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let pod = Pod::create(d).unwrap();
        let uuid = pod.uuid().to_string();
        drop(pod);
        let mut a = load_unlocked(d, &uuid);
        let mut b = load_unlocked(d, &uuid);
        a.to_garbage().unwrap();
        // b still believes the pod is in prepare/: it must not resurrect it.
        let e = b.to_garbage().unwrap_err();
        assert!(
            matches!(e, PodError::WrongState { .. } | PodError::Gone(_)),
            "{e}"
        );
        assert_eq!(probe_state(d, &uuid), PodState::Garbage);
    }

    #[test]
    fn list_is_sorted_and_filters_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let mut uuids = Vec::new();
        for i in 0..5 {
            let mut p = Pod::create(d).unwrap();
            if i % 2 == 0 {
                p.to_prepared().unwrap();
            } else {
                p.to_run().unwrap();
                p.unlock();
            }
            uuids.push(p.uuid().to_string());
        }
        let mut g = Pod::create(d).unwrap();
        drop(g.lock.take());
        g.state = PodState::AbortedPrepare;
        g.to_garbage().unwrap();
        uuids.sort();
        let listed: Vec<String> = Pod::list(d)
            .unwrap()
            .iter()
            .map(|p| p.uuid().to_string())
            .collect();
        assert_eq!(listed, uuids);
        assert_eq!(Pod::list_in(d, &StateDir::ALL).unwrap().len(), 6);
    }

    #[test]
    fn missing_pod() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            Pod::load(tmp.path(), "11111111-2222-4333-8444-555555555555"),
            Err(PodError::NotFound(_))
        ));
        assert!(matches!(
            Pod::load_prefix(tmp.path(), "1111"),
            Err(PodError::NoMatch(_))
        ));
    }
}
