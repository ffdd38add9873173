//! Pod and app cgroups on cgroup v1, hybrid and v2 hosts.
//!
//! Layout detection looks at the filesystem magic of `/sys/fs/cgroup`:
//! cgroup2 there means unified v2; a tmpfs holding v1 hierarchies means
//! legacy v1, or hybrid when `/sys/fs/cgroup/unified` is also cgroup2. Hybrid
//! hosts keep their controllers on the v1 side, so hybrid is driven as v1.
//!
//! Naming: the pod cgroup is `machine.slice/machine-rkt-<uuid>.scope` below
//! the base (rkt's name, minus systemd's `\x2d` escaping), and every app gets
//! a leaf child `<pod>/<app>`. On v2 no process may live in an inner cgroup
//! that has controllers enabled, so the pod's own processes (the supervisor)
//! go into the leaf [`SUPERVISOR_LEAF`], a name no appc app can have.
//!
//! The base is the root of each hierarchy ([`Parent::Root`]) or the calling
//! process's own cgroup in each hierarchy ([`Parent::Current`], for runs
//! nested inside someone else's cgroup). Whoever reopens a pod's cgroups
//! later (`gc`, `enter`) must use the same base; the `subcgroup` file holds
//! the path below it.

mod fs;
mod v1;
mod v2;

use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::statfs::{statfs, FsType, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC};
use nix::unistd::Pid;
use thiserror::Error;

pub use v1::{V1Hierarchy, V1Manager};
pub use v2::V2Manager;

/// Where cgroup filesystems are mounted on every host we support.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Leaf for the pod's own processes (supervisor); `_` is not valid in an
/// appc app name, so it cannot clash with an app.
pub const SUPERVISOR_LEAF: &str = "_stage1";
/// CFS period used for CPU limits (the kernel's default, as rkt/systemd use).
pub const CPU_PERIOD_US: u64 = 100_000;
/// Smallest CFS quota the kernel accepts.
pub const CPU_MIN_QUOTA_US: u64 = 1_000;

#[derive(Debug, Error)]
pub enum CgroupError {
    #[error("cannot stat {path:?} to detect the cgroup layout: {errno}")]
    Statfs { path: PathBuf, errno: Errno },
    #[error(
        "no cgroup filesystem at {path:?} (found filesystem magic {magic}); \
         mount cgroup2 there, or a tmpfs with v1 hierarchies"
    )]
    NoCgroupFs { path: PathBuf, magic: String },
    #[error("cannot create cgroup {path:?}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {value:?} to {path:?}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path:?}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unexpected content {content:?} in {path:?}: {reason}")]
    Parse {
        path: PathBuf,
        content: String,
        reason: String,
    },
    #[error("cannot hand {path:?} to the pod's user namespace: {source}")]
    Delegate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove cgroup {path:?}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot SIGKILL pid {pid} of cgroup {path:?}: {errno}")]
    Kill {
        pid: i32,
        path: PathBuf,
        errno: Errno,
    },
    #[error("processes {pids:?} still in cgroup {path:?} {secs}s after SIGKILL")]
    NotEmpty {
        path: PathBuf,
        pids: Vec<i32>,
        secs: u64,
    },
    #[error(
        "the {controller} cgroup controller is not available (looked in {path:?}); \
         enable it on the host or drop the limit that needs it"
    )]
    MissingController {
        controller: &'static str,
        path: PathBuf,
    },
    #[error("no entry for the {hierarchy} hierarchy in {path:?}")]
    NoSelfCgroup { hierarchy: String, path: PathBuf },
    #[error("invalid cgroup name {0:?}: it must be one non-empty path component")]
    InvalidName(String),
    #[error("{} cgroup errors: {}", .0.len(), join_errors(.0))]
    Multiple(Vec<CgroupError>),
}

fn join_errors(errors: &[CgroupError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Turns collected cleanup errors into one result.
fn collect(mut errors: Vec<CgroupError>) -> Result<(), CgroupError> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(CgroupError::Multiple(errors)),
    }
}

/// Limits to apply to a cgroup; `None` leaves the kernel's value alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// `resource/memory` limit in bytes.
    pub memory_bytes: Option<u64>,
    /// `resource/cpu` limit in millicores (1000 = one CPU).
    pub cpu_millis: Option<u64>,
    /// `os/linux/cpu-shares` (v1 scale, 2..=262144).
    pub cpu_shares: Option<u64>,
    /// Maximum number of tasks.
    pub pids_max: Option<u64>,
}

/// Limits read back from a cgroup's files; `None` means unlimited / unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub cpu_quota_us: Option<u64>,
    pub cpu_period_us: u64,
    /// v1 `cpu.shares` (None on v2, which only has weights).
    pub cpu_shares: Option<u64>,
    /// v2 `cpu.weight`, or the v1 shares converted to a weight.
    pub cpu_weight: Option<u64>,
    pub pids_max: Option<u64>,
}

impl Limits {
    /// The CPU limit in millicores, as `--cpu` takes it.
    pub fn cpu_millis(&self) -> Option<u64> {
        let quota = self.cpu_quota_us?;
        (self.cpu_period_us > 0).then(|| quota * 1000 / self.cpu_period_us)
    }
}

/// CFS quota for a millicore limit with [`CPU_PERIOD_US`], raised to the
/// kernel's minimum (anything below 10m would be rejected with EINVAL).
pub fn cpu_quota_us(millis: u64) -> u64 {
    (millis.saturating_mul(CPU_PERIOD_US) / 1000).max(CPU_MIN_QUOTA_US)
}

/// v1 `cpu.shares` to v2 `cpu.weight`, the conversion runc and crun use:
/// maps 2..=262144 linearly onto 1..=10000.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies under a tmpfs.
    Legacy,
    /// v1 hierarchies plus cgroup2 at `unified`; controllers live on v1.
    Hybrid,
    /// cgroup2 mounted at the root.
    Unified,
}

fn fs_type(path: &Path) -> Result<FsType, CgroupError> {
    statfs(path)
        .map(|s| s.filesystem_type())
        .map_err(|errno| CgroupError::Statfs {
            path: path.to_path_buf(),
            errno,
        })
}

impl Layout {
    /// Detects the layout under [`CGROUP_ROOT`].
    pub fn detect() -> Result<Self, CgroupError> {
        Self::detect_at(Path::new(CGROUP_ROOT))
    }

    pub fn detect_at(root: &Path) -> Result<Self, CgroupError> {
        let magic = fs_type(root)?;
        if magic == CGROUP2_SUPER_MAGIC {
            return Ok(Layout::Unified);
        }
        if magic != TMPFS_MAGIC {
            return Err(CgroupError::NoCgroupFs {
                path: root.to_path_buf(),
                magic: format!("{:#x}", magic.0),
            });
        }
        let unified = root.join("unified");
        if unified.is_dir() && fs_type(&unified)? == CGROUP2_SUPER_MAGIC {
            return Ok(Layout::Hybrid);
        }
        Ok(Layout::Legacy)
    }
}

/// True if `path` is a cgroup v1 mount.
fn is_v1_mount(path: &Path) -> bool {
    fs_type(path).is_ok_and(|t| t == CGROUP_SUPER_MAGIC)
}

/// Which cgroup the pod cgroup is created under, in every hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// The root of each hierarchy.
    Root,
    /// The calling process's cgroup in each hierarchy (`/proc/self/cgroup`).
    Current,
}

/// Entries of a `/proc/<pid>/cgroup` file: (controllers, path). The v2 entry
/// has an empty controller list.
pub fn parse_proc_cgroup(content: &str) -> Vec<(Vec<String>, PathBuf)> {
    content
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some((controllers, PathBuf::from(path)))
        })
        .collect()
}

const PROC_SELF_CGROUP: &str = "/proc/self/cgroup";

fn read_self_cgroup() -> Result<Vec<(Vec<String>, PathBuf)>, CgroupError> {
    let content =
        std::fs::read_to_string(PROC_SELF_CGROUP).map_err(|source| CgroupError::Read {
            path: PROC_SELF_CGROUP.into(),
            source,
        })?;
    Ok(parse_proc_cgroup(&content))
}

/// `path` relative to its hierarchy root, as a path that can be joined.
fn relative(path: &Path) -> PathBuf {
    path.strip_prefix("/").unwrap_or(path).to_path_buf()
}

/// A path below the base made of normal components only (no `..`, no root).
fn check_rel(rel: &Path) -> Result<(), CgroupError> {
    use std::path::Component;
    if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(CgroupError::InvalidName(rel.display().to_string()));
    }
    Ok(())
}

/// What both cgroup versions can do with a cgroup named by its path below
/// the manager's base.
pub trait CgroupManager {
    /// Creates the cgroup (and missing parents) everywhere it is needed.
    fn create(&self, rel: &Path) -> Result<(), CgroupError>;
    /// Writes the given limits.
    fn apply(&self, rel: &Path, resources: &Resources) -> Result<(), CgroupError>;
    /// Moves `pid` (the whole process) into the cgroup; pid 0 is the
    /// caller, which must be single-threaded.
    fn add_pid(&self, rel: &Path, pid: Pid) -> Result<(), CgroupError>;
    /// Pids in the cgroup and below.
    fn pids(&self, rel: &Path) -> Result<Vec<i32>, CgroupError>;
    /// Reads the limits back.
    fn limits(&self, rel: &Path) -> Result<Limits, CgroupError>;
    /// Kills every process in the cgroup and below, then removes the
    /// directories (rmdir, children first). Missing cgroups are fine; all
    /// errors are collected.
    fn remove(&self, rel: &Path) -> Result<(), CgroupError>;
    /// The cgroup's directories (one per v1 hierarchy, one on v2).
    fn dirs(&self, rel: &Path) -> Vec<PathBuf>;
    /// Whether a controller (`memory`, `cpu`, `pids`, ...) can be used.
    fn has_controller(&self, controller: &str) -> bool;
}

/// The host's cgroup manager, v1 (also on hybrid hosts) or v2.
#[derive(Debug, Clone)]
pub enum Cgroups {
    V1(V1Manager),
    V2(V2Manager),
}

impl Cgroups {
    /// Detects the host layout and builds the matching manager.
    pub fn detect(parent: Parent) -> Result<Self, CgroupError> {
        let root = Path::new(CGROUP_ROOT);
        Ok(match Layout::detect_at(root)? {
            Layout::Unified => Cgroups::V2(V2Manager::new(root, parent)?),
            Layout::Legacy | Layout::Hybrid => Cgroups::V1(V1Manager::discover(root, parent)?),
        })
    }

    fn inner(&self) -> &dyn CgroupManager {
        match self {
            Cgroups::V1(m) => m,
            Cgroups::V2(m) => m,
        }
    }
}

impl CgroupManager for Cgroups {
    fn create(&self, rel: &Path) -> Result<(), CgroupError> {
        self.inner().create(rel)
    }
    fn apply(&self, rel: &Path, resources: &Resources) -> Result<(), CgroupError> {
        self.inner().apply(rel, resources)
    }
    fn add_pid(&self, rel: &Path, pid: Pid) -> Result<(), CgroupError> {
        self.inner().add_pid(rel, pid)
    }
    fn pids(&self, rel: &Path) -> Result<Vec<i32>, CgroupError> {
        self.inner().pids(rel)
    }
    fn limits(&self, rel: &Path) -> Result<Limits, CgroupError> {
        self.inner().limits(rel)
    }
    fn remove(&self, rel: &Path) -> Result<(), CgroupError> {
        self.inner().remove(rel)
    }
    fn dirs(&self, rel: &Path) -> Vec<PathBuf> {
        self.inner().dirs(rel)
    }
    fn has_controller(&self, controller: &str) -> bool {
        self.inner().has_controller(controller)
    }
}

/// A pod's cgroup and its apps' leaf cgroups.
#[derive(Debug, Clone)]
pub struct PodCgroup<M: CgroupManager = Cgroups> {
    manager: M,
    rel: PathBuf,
}

/// The pod cgroup's path below the base for a pod UUID.
pub fn pod_cgroup_path(uuid: &str) -> PathBuf {
    PathBuf::from(format!("machine.slice/machine-rkt-{uuid}.scope"))
}

fn check_name(name: &str) -> Result<(), CgroupError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(CgroupError::InvalidName(name.to_string()));
    }
    Ok(())
}

impl<M: CgroupManager> PodCgroup<M> {
    /// Creates the pod cgroup for `uuid`.
    pub fn create(manager: M, uuid: &str) -> Result<Self, CgroupError> {
        check_name(uuid)?;
        Self::create_at(manager, &pod_cgroup_path(uuid))
    }

    /// Creates a pod cgroup at an explicit path below the base.
    pub fn create_at(manager: M, rel: &Path) -> Result<Self, CgroupError> {
        let pod = Self::open(manager, rel)?;
        pod.manager.create(&pod.rel)?;
        Ok(pod)
    }

    /// Reopens a pod cgroup from its `subcgroup` path (for gc, enter).
    pub fn open(manager: M, subcgroup: &Path) -> Result<Self, CgroupError> {
        check_rel(subcgroup)?;
        Ok(Self {
            manager,
            rel: subcgroup.to_path_buf(),
        })
    }

    /// Content of the pod's `subcgroup` file: the pod cgroup below the base.
    pub fn subcgroup(&self) -> String {
        self.rel.display().to_string()
    }

    pub fn manager(&self) -> &M {
        &self.manager
    }

    /// The app's cgroup below the base.
    pub fn app_path(&self, app: &str) -> Result<PathBuf, CgroupError> {
        check_name(app)?;
        Ok(self.rel.join(app))
    }

    /// Limits for the whole pod (all apps together).
    pub fn set_limits(&self, resources: &Resources) -> Result<(), CgroupError> {
        self.manager.apply(&self.rel, resources)
    }

    pub fn limits(&self) -> Result<Limits, CgroupError> {
        self.manager.limits(&self.rel)
    }

    /// Creates the app's leaf cgroup with its limits.
    pub fn create_app(&self, app: &str, resources: &Resources) -> Result<(), CgroupError> {
        let rel = self.app_path(app)?;
        self.manager.create(&rel)?;
        self.manager.apply(&rel, resources)
    }

    /// Moves `pid` into the app's cgroup.
    pub fn join_app(&self, app: &str, pid: Pid) -> Result<(), CgroupError> {
        self.manager.add_pid(&self.app_path(app)?, pid)
    }

    /// Moves `pid` (the pod's supervisor) into [`SUPERVISOR_LEAF`].
    pub fn join_supervisor(&self, pid: Pid) -> Result<(), CgroupError> {
        self.create_app(SUPERVISOR_LEAF, &Resources::default())?;
        self.join_app(SUPERVISOR_LEAF, pid)
    }

    pub fn app_limits(&self, app: &str) -> Result<Limits, CgroupError> {
        self.manager.limits(&self.app_path(app)?)
    }

    pub fn app_pids(&self, app: &str) -> Result<Vec<i32>, CgroupError> {
        self.manager.pids(&self.app_path(app)?)
    }

    /// Hands the pod's cgroup directories, and the files that move
    /// processes, to `uid` and `gid`, so the pod's root in its user
    /// namespace can put processes into its apps' cgroups and make new ones
    /// (systemd's delegation). The limit files stay the host's: the pod
    /// must not raise its own limits.
    pub fn delegate(&self, uid: u32, gid: u32) -> Result<(), CgroupError> {
        const DELEGATED: [&str; 4] = [
            "cgroup.procs",
            "tasks",
            "cgroup.threads",
            "cgroup.subtree_control",
        ];
        for dir in self.manager.dirs(&self.rel) {
            let mut pending = vec![dir];
            while let Some(path) = pending.pop() {
                let err = |source| CgroupError::Delegate {
                    path: path.clone(),
                    source,
                };
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(err)?;
                for entry in std::fs::read_dir(&path).map_err(err)? {
                    let entry = entry.map_err(err)?;
                    let child = entry.path();
                    if entry.file_type().map_err(err)?.is_dir() {
                        pending.push(child);
                    } else if DELEGATED.iter().any(|f| entry.file_name() == *f) {
                        std::os::unix::fs::chown(&child, Some(uid), Some(gid)).map_err(err)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// How many times the kernel's OOM killer killed a process of the app
    /// for its memory limit (`oom_kill` of memory.events on v2,
    /// memory.oom_control on v1); 0 when the kernel does not say.
    pub fn app_oom_kills(&self, app: &str) -> u64 {
        let Ok(rel) = self.app_path(app) else {
            return 0;
        };
        self.manager
            .dirs(&rel)
            .iter()
            .flat_map(|d| [d.join("memory.events"), d.join("memory.oom_control")])
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.strip_prefix("oom_kill "))
                    .filter_map(|n| n.trim().parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .max()
            .unwrap_or(0)
    }

    /// Kills the app's processes and removes its cgroup; idempotent.
    pub fn remove_app(&self, app: &str) -> Result<(), CgroupError> {
        self.manager.remove(&self.app_path(app)?)
    }

    /// Kills everything in the pod and removes the app and pod cgroups
    /// (the shared `machine.slice` stays); idempotent.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        self.manager.remove(&self.rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_conversions() {
        assert_eq!(cpu_quota_us(250), 25_000);
        assert_eq!(cpu_quota_us(1000), 100_000);
        assert_eq!(cpu_quota_us(2500), 250_000);
        assert_eq!(cpu_quota_us(1), CPU_MIN_QUOTA_US);
        let l = Limits {
            cpu_quota_us: Some(25_000),
            cpu_period_us: 100_000,
            ..Default::default()
        };
        assert_eq!(l.cpu_millis(), Some(250));
        assert_eq!(Limits::default().cpu_millis(), None);
    }

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1);
        assert_eq!(shares_to_weight(u64::MAX), 10_000);
    }

    #[test]
    fn parses_proc_cgroup() {
        let entries = parse_proc_cgroup(
            "9:name=systemd:/\n4:memory:/process_api/x\n2:cpu,cpuacct:/a:b\n0::/init.scope\n",
        );
        assert_eq!(entries[0], (vec!["name=systemd".into()], "/".into()));
        assert_eq!(entries[1], (vec!["memory".into()], "/process_api/x".into()));
        assert_eq!(
            entries[2],
            (vec!["cpu".into(), "cpuacct".into()], "/a:b".into())
        );
        assert_eq!(entries[3], (vec![], "/init.scope".into()));
    }

    #[test]
    fn names_are_single_components() {
        assert!(check_name("app-1").is_ok());
        for bad in ["", ".", "..", "a/b"] {
            assert!(matches!(check_name(bad), Err(CgroupError::InvalidName(_))));
        }
        assert!(check_rel(Path::new("machine.slice/x.scope")).is_ok());
        for bad in ["", "/abs", "a/../b", "./a"] {
            assert!(check_rel(Path::new(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            pod_cgroup_path("1234-ab"),
            Path::new("machine.slice/machine-rkt-1234-ab.scope")
        );
    }

    #[test]
    fn multiple_errors_are_all_reported() {
        let e = collect(vec![
            CgroupError::InvalidName("a".into()),
            CgroupError::InvalidName("b".into()),
        ])
        .unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("2 cgroup errors") && s.contains("\"a\"") && s.contains("\"b\""));
        assert!(collect(vec![]).is_ok());
    }
}
