//! cgroup v2: one tree. Controllers must be enabled top-down through
//! `cgroup.subtree_control`, and a cgroup with controllers enabled for its
//! children may hold no processes, so apps (and the supervisor) live in
//! leaves.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::fs::{self as cgfs, parse_error};
use super::{
    check_rel, collect, cpu_quota_us, read_self_cgroup, relative, CgroupError, CgroupManager,
    Limits, Parent, Resources, CPU_PERIOD_US, PROC_SELF_CGROUP,
};

/// Controllers enabled for the pod's subtree when the host offers them.
const WANTED: [&str; 5] = ["cpuset", "cpu", "io", "memory", "pids"];
const FREEZE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct V2Manager {
    root: PathBuf,
    base: PathBuf,
}

/// A v2 limit file value: `max` is no limit.
pub(crate) fn parse_max(path: &Path, s: &str) -> Result<Option<u64>, CgroupError> {
    if s == "max" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| parse_error(path, s, "expected \"max\" or an unsigned integer"))
}

/// `cpu.max` content: `<quota|max> <period>`.
pub(crate) fn parse_cpu_max(path: &Path, s: &str) -> Result<(Option<u64>, u64), CgroupError> {
    let mut parts = s.split_whitespace();
    let (Some(quota), period) = (parts.next(), parts.next()) else {
        return Err(parse_error(path, s, "expected \"<quota|max> <period>\""));
    };
    let quota = parse_max(path, quota)?;
    let period = match period {
        Some(p) => p
            .parse()
            .map_err(|_| parse_error(path, s, "period is not an integer"))?,
        None => CPU_PERIOD_US,
    };
    Ok((quota, period))
}

fn words(path: &Path) -> Result<Vec<String>, CgroupError> {
    Ok(cgfs::read(path)?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

impl V2Manager {
    /// A manager for the tree mounted at `root`.
    pub fn new(root: &Path, parent: Parent) -> Result<Self, CgroupError> {
        let base = match parent {
            Parent::Root => PathBuf::new(),
            Parent::Current => read_self_cgroup()?
                .into_iter()
                .find(|(cs, _)| cs.is_empty())
                .map(|(_, p)| relative(&p))
                .ok_or_else(|| CgroupError::NoSelfCgroup {
                    hierarchy: "unified (0::)".into(),
                    path: PROC_SELF_CGROUP.into(),
                })?,
        };
        Ok(Self::with_base(root, &base))
    }

    /// A manager with an explicit base below `root` (tests, delegation).
    pub fn with_base(root: &Path, base: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            base: base.to_path_buf(),
        }
    }

    fn dir(&self, rel: &Path) -> PathBuf {
        self.root.join(&self.base).join(rel)
    }

    /// Enables the wanted controllers the host has in `dir`'s children.
    fn enable_subtree(&self, dir: &Path) -> Result<(), CgroupError> {
        let available = words(&dir.join("cgroup.controllers"))?;
        let subtree_file = dir.join("cgroup.subtree_control");
        let enabled = words(&subtree_file)?;
        let missing: Vec<String> = WANTED
            .iter()
            .filter(|c| available.iter().any(|a| a == *c) && !enabled.iter().any(|e| e == *c))
            .map(|c| format!("+{c}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        // EBUSY here means `dir` holds processes (v2's no-internal-process
        // rule): with Parent::Current, run from an empty delegated cgroup.
        cgfs::write(&subtree_file, &missing.join(" "))
    }

    fn require(&self, dir: &Path, controller: &'static str) -> Result<(), CgroupError> {
        let file = dir.join("cgroup.controllers");
        if words(&file)?.iter().any(|c| c == controller) {
            Ok(())
        } else {
            Err(CgroupError::MissingController {
                controller,
                path: file,
            })
        }
    }

    fn freeze(&self, dir: &Path, frozen: bool) -> Result<(), CgroupError> {
        let file = dir.join("cgroup.freeze");
        if !file.exists() {
            return Ok(());
        }
        cgfs::write(&file, if frozen { "1" } else { "0" })?;
        if !frozen {
            return Ok(());
        }
        let events = dir.join("cgroup.events");
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        while Instant::now() < deadline {
            if cgfs::read(&events)?.lines().any(|l| l == "frozen 1") {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }
}

impl CgroupManager for V2Manager {
    fn create(&self, rel: &Path) -> Result<(), CgroupError> {
        check_rel(rel)?;
        let base = self.root.join(&self.base);
        cgfs::create_dirs(&base, rel, |_| Ok(()))?;
        // Top-down: base, then every inner level, never the leaf itself.
        let mut dir = base;
        let parts: Vec<_> = rel.components().collect();
        for (i, part) in parts.iter().enumerate() {
            self.enable_subtree(&dir)?;
            if i + 1 < parts.len() {
                dir.push(part);
            }
        }
        Ok(())
    }

    fn apply(&self, rel: &Path, r: &Resources) -> Result<(), CgroupError> {
        check_rel(rel)?;
        let dir = self.dir(rel);
        if let Some(bytes) = r.memory_bytes {
            self.require(&dir, "memory")?;
            cgfs::write(&dir.join("memory.max"), &bytes.to_string())?;
        }
        if r.cpu_millis.is_some() || r.cpu_shares.is_some() {
            self.require(&dir, "cpu")?;
        }
        if let Some(millis) = r.cpu_millis {
            let value = format!("{} {CPU_PERIOD_US}", cpu_quota_us(millis));
            cgfs::write(&dir.join("cpu.max"), &value)?;
        }
        if let Some(shares) = r.cpu_shares {
            let weight = super::shares_to_weight(shares);
            cgfs::write(&dir.join("cpu.weight"), &weight.to_string())?;
        }
        if let Some(max) = r.pids_max {
            self.require(&dir, "pids")?;
            cgfs::write(&dir.join("pids.max"), &max.to_string())?;
        }
        Ok(())
    }

    fn add_pid(&self, rel: &Path, pid: Pid) -> Result<(), CgroupError> {
        check_rel(rel)?;
        cgfs::write(&self.dir(rel).join("cgroup.procs"), &pid.to_string())
    }

    fn pids(&self, rel: &Path) -> Result<Vec<i32>, CgroupError> {
        check_rel(rel)?;
        cgfs::subtree_procs(&[self.dir(rel)])
    }

    fn limits(&self, rel: &Path) -> Result<Limits, CgroupError> {
        check_rel(rel)?;
        let dir = self.dir(rel);
        let mut limits = Limits {
            cpu_period_us: CPU_PERIOD_US,
            ..Default::default()
        };
        let file = dir.join("memory.max");
        if file.exists() {
            limits.memory_bytes = parse_max(&file, &cgfs::read(&file)?)?;
        }
        let file = dir.join("cpu.max");
        if file.exists() {
            (limits.cpu_quota_us, limits.cpu_period_us) =
                parse_cpu_max(&file, &cgfs::read(&file)?)?;
        }
        let file = dir.join("cpu.weight");
        if file.exists() {
            limits.cpu_weight = Some(cgfs::read_u64(&file)?);
        }
        let file = dir.join("pids.max");
        if file.exists() {
            limits.pids_max = parse_max(&file, &cgfs::read(&file)?)?;
        }
        Ok(limits)
    }

    fn remove(&self, rel: &Path) -> Result<(), CgroupError> {
        check_rel(rel)?;
        let dir = self.dir(rel);
        if !dir.exists() {
            return Ok(());
        }
        let dirs = [dir.clone()];
        if cgfs::remove_if_empty(&dirs) {
            return Ok(());
        }
        let mut errors = Vec::new();
        let mut emptied = true;
        match cgfs::subtree_procs(&dirs) {
            Ok(pids) if !pids.is_empty() => {
                let kill_file = dir.join("cgroup.kill");
                if kill_file.exists() {
                    // Kills the whole subtree atomically, forks included.
                    if let Err(e) = cgfs::write(&kill_file, "1") {
                        errors.push(e);
                    }
                } else {
                    if let Err(e) = self.freeze(&dir, true) {
                        errors.push(e);
                    }
                    if let Err(e) = cgfs::sigkill_all(&pids, &dir) {
                        errors.push(e);
                    }
                    if let Err(e) = self.freeze(&dir, false) {
                        errors.push(e);
                    }
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
            cgfs::remove_tree(&dir, &mut errors);
        }
        collect(errors)
    }

    fn dirs(&self, rel: &Path) -> Vec<PathBuf> {
        vec![self.dir(rel)]
    }

    fn has_controller(&self, controller: &str) -> bool {
        words(&self.root.join(&self.base).join("cgroup.controllers"))
            .is_ok_and(|cs| cs.iter().any(|c| c == controller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn parses_max_files() {
        let p = Path::new("cpu.max");
        assert_eq!(parse_cpu_max(p, "max 100000").unwrap(), (None, 100_000));
        assert_eq!(
            parse_cpu_max(p, "25000 100000").unwrap(),
            (Some(25_000), 100_000)
        );
        assert_eq!(
            parse_cpu_max(p, "25000").unwrap(),
            (Some(25_000), CPU_PERIOD_US)
        );
        assert!(parse_cpu_max(p, "").is_err());
        assert!(parse_cpu_max(p, "x 1").is_err());
        assert_eq!(parse_max(p, "max").unwrap(), None);
        assert_eq!(parse_max(p, "67108864").unwrap(), Some(64 << 20));
    }

    /// A fake v2 tree: root/p/a with the files cgroupfs would provide.
    fn fake_tree(root: &Path) {
        for dir in ["", "p", "p/a"] {
            let d = root.join(dir);
            fs::create_dir_all(&d).unwrap();
            fs::write(
                d.join("cgroup.controllers"),
                "cpuset cpu io memory hugetlb pids\n",
            )
            .unwrap();
            for f in [
                "cgroup.subtree_control",
                "cgroup.procs",
                "memory.max",
                "cpu.max",
                "cpu.weight",
                "pids.max",
            ] {
                fs::write(d.join(f), "").unwrap();
            }
        }
    }

    #[test]
    fn create_enables_controllers_above_the_leaf_only() {
        let tmp = tempfile::tempdir().unwrap();
        fake_tree(tmp.path());
        let m = V2Manager::with_base(tmp.path(), Path::new(""));
        m.create(Path::new("p/a")).unwrap();
        for dir in ["", "p"] {
            let s = fs::read_to_string(tmp.path().join(dir).join("cgroup.subtree_control"));
            assert_eq!(s.unwrap(), "+cpuset +cpu +io +memory +pids", "{dir}");
        }
        let leaf = fs::read_to_string(tmp.path().join("p/a/cgroup.subtree_control")).unwrap();
        assert_eq!(leaf, "");
    }

    #[test]
    fn apply_and_read_back_on_fake_files() {
        let tmp = tempfile::tempdir().unwrap();
        fake_tree(tmp.path());
        let m = V2Manager::with_base(tmp.path(), Path::new("p"));
        let r = Resources {
            memory_bytes: Some(64 << 20),
            cpu_millis: Some(250),
            cpu_shares: Some(512),
            pids_max: Some(10),
        };
        m.apply(Path::new("a"), &r).unwrap();
        let dir = tmp.path().join("p/a");
        assert_eq!(
            fs::read_to_string(dir.join("cpu.max")).unwrap(),
            "25000 100000"
        );
        assert_eq!(fs::read_to_string(dir.join("cpu.weight")).unwrap(), "20");
        let l = m.limits(Path::new("a")).unwrap();
        assert_eq!(l.memory_bytes, Some(64 << 20));
        assert_eq!(l.cpu_millis(), Some(250));
        assert_eq!(l.cpu_weight, Some(20));
        assert_eq!(l.cpu_shares, None);
        assert_eq!(l.pids_max, Some(10));

        fs::write(dir.join("cgroup.controllers"), "pids\n").unwrap();
        let err = m.apply(Path::new("a"), &r).unwrap_err();
        assert!(matches!(
            err,
            CgroupError::MissingController {
                controller: "memory",
                ..
            }
        ));
    }
}
