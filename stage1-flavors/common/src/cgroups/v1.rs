//! cgroup v1: one directory per hierarchy (cpu, memory, pids, ...), each
//! mounted under `/sys/fs/cgroup/<name>` (co-mounted ones like `cpu,cpuacct`
//! reached through their symlinks). Also used on hybrid hosts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::fs::{self as cgfs, parse_error};
use super::{
    check_rel, collect, cpu_quota_us, is_v1_mount, read_self_cgroup, relative, shares_to_weight,
    CgroupError, CgroupManager, Limits, Parent, Resources, CPU_PERIOD_US, PROC_SELF_CGROUP,
};

/// Hierarchies a pod cgroup is created in (directory names under
/// `/sys/fs/cgroup`; `systemd` is the named `name=systemd` hierarchy).
pub const V1_HIERARCHIES: [&str; 9] = [
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
];

/// v1 memory.limit_in_bytes reads back as PAGE_COUNTER_MAX pages when
/// unlimited (9223372036854771712 on 4K pages); anything this big is "none".
const V1_UNLIMITED_FLOOR: u64 = 1 << 62;
const FREEZE_TIMEOUT: Duration = Duration::from_secs(1);

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Mount point (canonical: `/sys/fs/cgroup/cpu,cpuacct`, not the link).
    pub mount: PathBuf,
    /// Controllers bound to it (`name=systemd` for the named hierarchy).
    pub controllers: Vec<String>,
    /// The base cgroup below the mount point ("" for the root).
    pub base: PathBuf,
}

impl V1Hierarchy {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    fn dir(&self, rel: &Path) -> PathBuf {
        self.mount.join(&self.base).join(rel)
    }
}

#[derive(Debug, Clone)]
pub struct V1Manager {
    hierarchies: Vec<V1Hierarchy>,
}

/// `/sys/fs/cgroup/cpu` → `/sys/fs/cgroup/cpu,cpuacct`: co-mounted
/// hierarchies are reached through symlinks next to their mount point. One
/// readlink, where canonicalizing would read every component of the path.
fn follow_sibling_link(path: PathBuf) -> PathBuf {
    match std::fs::read_link(&path) {
        Ok(target) if target.is_absolute() => target,
        Ok(target) => match path.parent() {
            Some(dir) => dir.join(target),
            None => target,
        },
        Err(_) => path,
    }
}

/// Controllers of a hierarchy from its mount directory's name.
fn controllers_of(dir_name: &str) -> Vec<String> {
    dir_name
        .split(',')
        .map(|c| match c {
            "systemd" => "name=systemd".to_string(),
            c => c.to_string(),
        })
        .collect()
}

impl V1Manager {
    /// Finds the mounted hierarchies of [`V1_HIERARCHIES`] under `root`.
    pub fn discover(root: &Path, parent: Parent) -> Result<Self, CgroupError> {
        let self_cgroup = match parent {
            Parent::Root => Vec::new(),
            Parent::Current => read_self_cgroup()?,
        };
        let mut hierarchies: Vec<V1Hierarchy> = Vec::new();
        for name in V1_HIERARCHIES {
            let path = root.join(name);
            if !is_v1_mount(&path) {
                continue;
            }
            let mount = follow_sibling_link(path);
            if hierarchies.iter().any(|h| h.mount == mount) {
                continue;
            }
            let dir_name = mount
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let controllers = controllers_of(&dir_name);
            let base = match parent {
                Parent::Root => PathBuf::new(),
                Parent::Current => self_cgroup
                    .iter()
                    .find(|(cs, _)| cs.iter().any(|c| controllers.contains(c)))
                    .map(|(_, p)| relative(p))
                    .ok_or_else(|| CgroupError::NoSelfCgroup {
                        hierarchy: dir_name.clone(),
                        path: PROC_SELF_CGROUP.into(),
                    })?,
            };
            hierarchies.push(V1Hierarchy {
                mount,
                controllers,
                base,
            });
        }
        Ok(Self::with_hierarchies(hierarchies))
    }

    /// A manager over explicit hierarchies (tests, unusual mount points).
    pub fn with_hierarchies(hierarchies: Vec<V1Hierarchy>) -> Self {
        Self { hierarchies }
    }

    pub fn hierarchies(&self) -> &[V1Hierarchy] {
        &self.hierarchies
    }

    fn hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.hierarchies.iter().find(|h| h.has(controller))
    }

    fn require(&self, controller: &'static str) -> Result<&V1Hierarchy, CgroupError> {
        self.hierarchy(controller)
            .ok_or_else(|| CgroupError::MissingController {
                controller,
                path: self
                    .hierarchies
                    .first()
                    .and_then(|h| h.mount.parent())
                    .map(|p| p.join(controller))
                    .unwrap_or_else(|| PathBuf::from(super::CGROUP_ROOT).join(controller)),
            })
    }

    /// Freezes the subtree so nothing forks while we kill; best effort.
    fn freeze(&self, rel: &Path, state: &str) -> Result<(), CgroupError> {
        let Some(h) = self.hierarchy("freezer") else {
            return Ok(());
        };
        let file = h.dir(rel).join("freezer.state");
        if !file.exists() {
            return Ok(());
        }
        cgfs::write(&file, state)?;
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        // FREEZING turns into FROZEN once every task has stopped.
        while cgfs::read(&file)? != state && Instant::now() < deadline {
            cgfs::write(&file, state)?;
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }
}

/// Copies `cpuset.cpus`/`cpuset.mems` from the parent: a fresh v1 cpuset is
/// empty and refuses tasks until both are set.
fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let current = cgfs::read(&dir.join(file))?;
        if current.is_empty() {
            cgfs::write(&dir.join(file), &cgfs::read(&parent.join(file))?)?;
        }
    }
    Ok(())
}

fn read_optional_u64(path: &Path) -> Result<Option<u64>, CgroupError> {
    if !path.exists() {
        return Ok(None);
    }
    cgfs::read_u64(path).map(Some)
}

impl CgroupManager for V1Manager {
    fn create(&self, rel: &Path) -> Result<(), CgroupError> {
        check_rel(rel)?;
        for h in &self.hierarchies {
            let base = h.mount.join(&h.base);
            if h.has("cpuset") {
                cgfs::create_dirs(&base, rel, init_cpuset)?;
            } else {
                cgfs::create_dirs(&base, rel, |_| Ok(()))?;
            }
        }
        Ok(())
    }

    fn apply(&self, rel: &Path, r: &Resources) -> Result<(), CgroupError> {
        check_rel(rel)?;
        if let Some(bytes) = r.memory_bytes {
            let dir = self.require("memory")?.dir(rel);
            cgfs::write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
        }
        if r.cpu_millis.is_some() || r.cpu_shares.is_some() {
            let dir = self.require("cpu")?.dir(rel);
            if let Some(millis) = r.cpu_millis {
                cgfs::write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                cgfs::write(
                    &dir.join("cpu.cfs_quota_us"),
                    &cpu_quota_us(millis).to_string(),
                )?;
            }
            if let Some(shares) = r.cpu_shares {
                cgfs::write(&dir.join("cpu.shares"), &shares.to_string())?;
            }
        }
        if let Some(max) = r.pids_max {
            let dir = self.require("pids")?.dir(rel);
            cgfs::write(&dir.join("pids.max"), &max.to_string())?;
        }
        Ok(())
    }

    fn add_pid(&self, rel: &Path, pid: Pid) -> Result<(), CgroupError> {
        check_rel(rel)?;
        // Pid 0 is the calling thread (our callers are single-threaded fresh
        // children): through `tasks` the kernel moves it without the
        // host-wide threadgroup lock `cgroup.procs` takes, whose RCU grace
        // period cost 2-18 ms per pod start.
        let file = if pid.as_raw() == 0 {
            "tasks"
        } else {
            "cgroup.procs"
        };
        for h in &self.hierarchies {
            cgfs::write(&h.dir(rel).join(file), &pid.to_string())?;
        }
        Ok(())
    }

    fn pids(&self, rel: &Path) -> Result<Vec<i32>, CgroupError> {
        check_rel(rel)?;
        cgfs::subtree_procs(&self.dirs(rel))
    }

    fn limits(&self, rel: &Path) -> Result<Limits, CgroupError> {
        check_rel(rel)?;
        let mut limits = Limits {
            cpu_period_us: CPU_PERIOD_US,
            ..Default::default()
        };
        if let Some(h) = self.hierarchy("memory") {
            limits.memory_bytes = read_optional_u64(&h.dir(rel).join("memory.limit_in_bytes"))?
                .filter(|&b| b < V1_UNLIMITED_FLOOR);
        }
        if let Some(h) = self.hierarchy("cpu") {
            let dir = h.dir(rel);
            let quota_file = dir.join("cpu.cfs_quota_us");
            if quota_file.exists() {
                let quota = cgfs::read(&quota_file)?;
                let quota: i64 = quota
                    .parse()
                    .map_err(|_| parse_error(&quota_file, &quota, "expected -1 or microseconds"))?;
                limits.cpu_quota_us = u64::try_from(quota).ok();
            }
            if let Some(period) = read_optional_u64(&dir.join("cpu.cfs_period_us"))? {
                limits.cpu_period_us = period;
            }
            limits.cpu_shares = read_optional_u64(&dir.join("cpu.shares"))?;
            limits.cpu_weight = limits.cpu_shares.map(shares_to_weight);
        }
        if let Some(h) = self.hierarchy("pids") {
            let file = h.dir(rel).join("pids.max");
            if file.exists() {
                limits.pids_max = super::v2::parse_max(&file, &cgfs::read(&file)?)?;
            }
        }
        Ok(limits)
    }

    fn remove(&self, rel: &Path) -> Result<(), CgroupError> {
        check_rel(rel)?;
        let dirs = self.dirs(rel);
        if cgfs::remove_if_empty(&dirs) {
            return Ok(());
        }
        let dirs: Vec<PathBuf> = dirs.into_iter().filter(|d| d.exists()).collect();
        if dirs.is_empty() {
            return Ok(());
        }
        let mut errors = Vec::new();
        let mut emptied = true;
        match cgfs::subtree_procs(&dirs) {
            Ok(pids) if !pids.is_empty() => {
                // Frozen tasks cannot fork away from the kill; they die on thaw.
                if let Err(e) = self.freeze(rel, "FROZEN") {
                    errors.push(e);
                }
                if let Err(e) = cgfs::sigkill_all(&pids, &dirs[0]) {
                    errors.push(e);
                }
                if let Err(e) = self.freeze(rel, "THAWED") {
                    errors.push(e);
                }
                if let Err(e) = cgfs::wait_empty(&dirs, true) {
                    errors.push(e);
                    emptied = false;
                }
            }
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
        if emptied {
            for dir in &dirs {
                cgfs::remove_tree(dir, &mut errors);
            }
        }
        collect(errors)
    }

    fn dirs(&self, rel: &Path) -> Vec<PathBuf> {
        self.hierarchies.iter().map(|h| h.dir(rel)).collect()
    }

    fn has_controller(&self, controller: &str) -> bool {
        self.hierarchy(controller).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn controllers_from_mount_names() {
        assert_eq!(controllers_of("cpu,cpuacct"), ["cpu", "cpuacct"]);
        assert_eq!(controllers_of("systemd"), ["name=systemd"]);
    }

    /// A fake hierarchy in a temp dir with the pod/app directories and
    /// their files already there (cgroupfs would create them).
    fn fake(tmp: &Path, name: &str, files: &[&str]) -> V1Hierarchy {
        let mount = tmp.join(name);
        for dir in ["", "p", "p/a"] {
            fs::create_dir_all(mount.join(dir)).unwrap();
            for f in files.iter().chain(&["cgroup.procs"]) {
                fs::write(mount.join(dir).join(f), "").unwrap();
            }
        }
        V1Hierarchy {
            mount,
            controllers: controllers_of(name),
            base: PathBuf::new(),
        }
    }

    #[test]
    fn apply_and_read_back_on_fake_files() {
        let tmp = tempfile::tempdir().unwrap();
        let m = V1Manager::with_hierarchies(vec![
            fake(tmp.path(), "memory", &["memory.limit_in_bytes"]),
            fake(
                tmp.path(),
                "cpu,cpuacct",
                &["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"],
            ),
            fake(tmp.path(), "pids", &["pids.max"]),
        ]);
        let rel = Path::new("p/a");
        let r = Resources {
            memory_bytes: Some(64 << 20),
            cpu_millis: Some(250),
            cpu_shares: Some(512),
            pids_max: Some(100),
        };
        m.apply(rel, &r).unwrap();
        let l = m.limits(rel).unwrap();
        assert_eq!(l.memory_bytes, Some(64 << 20));
        assert_eq!(l.cpu_quota_us, Some(25_000));
        assert_eq!(l.cpu_millis(), Some(250));
        assert_eq!(l.cpu_shares, Some(512));
        assert_eq!(l.cpu_weight, Some(20));
        assert_eq!(l.pids_max, Some(100));
        let cpu = tmp.path().join("cpu,cpuacct/p/a");
        assert_eq!(
            fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap(),
            "25000"
        );

        fs::write(
            tmp.path().join("memory/p/a/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        fs::write(cpu.join("cpu.cfs_quota_us"), "-1\n").unwrap();
        fs::write(tmp.path().join("pids/p/a/pids.max"), "max\n").unwrap();
        let l = m.limits(rel).unwrap();
        assert_eq!(
            (l.memory_bytes, l.cpu_millis(), l.pids_max),
            (None, None, None)
        );
    }

    #[test]
    fn missing_controller_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let m = V1Manager::with_hierarchies(vec![fake(tmp.path(), "pids", &["pids.max"])]);
        let err = m
            .apply(
                Path::new("p/a"),
                &Resources {
                    memory_bytes: Some(1),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(
            err,
            CgroupError::MissingController {
                controller: "memory",
                ..
            }
        ));
        assert!(!m.has_controller("memory") && m.has_controller("pids"));
    }
}
