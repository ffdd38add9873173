//! Real cgroups on this host (root only): a pod and an app cgroup below the
//! test's own cgroup, limits read back from the kernel's files, a process
//! joined, a memory limit that OOM-kills, and cleanup that leaves nothing.

use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::unistd::{geteuid, Pid};
use stage1_common::cgroups::{
    CgroupManager, Cgroups, Layout, Parent, PodCgroup, Resources, SUPERVISOR_LEAF,
};

/// These tests need root; without it they fail loudly rather than skip.
fn root() -> bool {
    assert!(geteuid().is_root(), "cgroup tests need root");
    true
}

/// Destroys the pod cgroup however the test ends.
struct PodGuard(PodCgroup);

impl Drop for PodGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.destroy() {
            eprintln!("cleanup of {}: {e}", self.0.subcgroup());
        }
    }
}

/// Kills and reaps a child however the test ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ChildGuard {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.0.id() as i32)
    }

    fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

fn new_pod() -> PodGuard {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "rkt-cgtest-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let cgroups = Cgroups::detect(Parent::Current).expect("detect cgroups");
    PodGuard(PodCgroup::create_at(cgroups, Path::new(&name)).expect("create pod cgroup"))
}

fn procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn host_layout_is_detected() {
    let layout = Layout::detect().unwrap();
    let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
    let expected = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        Layout::Unified
    } else if unified {
        Layout::Hybrid
    } else {
        Layout::Legacy
    };
    assert_eq!(layout, expected);
}

#[test]
fn pod_and_app_cgroups_with_limits_join_and_cleanup() {
    if !root() {
        return;
    }
    let pod = new_pod();
    let resources = Resources {
        memory_bytes: Some(64 << 20),
        cpu_millis: Some(250),
        cpu_shares: Some(512),
        pids_max: Some(64),
    };
    pod.0.create_app("app", &resources).unwrap();
    let app_dirs: Vec<PathBuf> = pod.0.manager().dirs(&pod.0.app_path("app").unwrap());
    let pod_dirs: Vec<PathBuf> = pod.0.manager().dirs(Path::new(&pod.0.subcgroup()));
    assert!(app_dirs.iter().all(|d| d.is_dir()), "{app_dirs:?}");

    let limits = pod.0.app_limits("app").unwrap();
    assert_eq!(limits.memory_bytes, Some(64 << 20));
    assert_eq!(limits.cpu_millis(), Some(250));
    assert_eq!(limits.pids_max, Some(64));
    match pod.0.manager() {
        Cgroups::V1(m) => {
            assert_eq!(limits.cpu_quota_us, Some(25_000));
            assert_eq!(limits.cpu_period_us, 100_000);
            assert_eq!(limits.cpu_shares, Some(512));
            // Straight from the kernel's files too.
            let file = |ctrl: &str, name: &str| {
                let h = m
                    .hierarchies()
                    .iter()
                    .find(|h| h.controllers.iter().any(|c| c == ctrl));
                let dir = h
                    .unwrap()
                    .mount
                    .join(&h.unwrap().base)
                    .join(pod.0.subcgroup());
                fs::read_to_string(dir.join("app").join(name))
                    .unwrap()
                    .trim()
                    .to_string()
            };
            assert_eq!(file("memory", "memory.limit_in_bytes"), "67108864");
            assert_eq!(file("cpu", "cpu.cfs_quota_us"), "25000");
            assert_eq!(file("cpu", "cpu.shares"), "512");
            assert!(!file("cpuset", "cpuset.cpus").is_empty());
            assert!(!file("cpuset", "cpuset.mems").is_empty());
        }
        Cgroups::V2(_) => {
            assert_eq!(limits.cpu_weight, Some(20));
            let dir = &app_dirs[0];
            assert_eq!(
                fs::read_to_string(dir.join("cpu.max")).unwrap().trim(),
                "25000 100000"
            );
            assert_eq!(
                fs::read_to_string(dir.join("memory.max")).unwrap().trim(),
                "67108864"
            );
        }
    }

    let mut child = ChildGuard(Command::new("sleep").arg("100").spawn().unwrap());
    pod.0.join_app("app", child.pid()).unwrap();
    let pid = child.pid().as_raw();
    assert_eq!(pod.0.app_pids("app").unwrap(), [pid]);
    for dir in &app_dirs {
        assert_eq!(procs(dir), [pid], "{dir:?}");
    }

    // A process that forks: the kill must get the whole tree.
    let forker = ChildGuard(
        Command::new("sh")
            .args(["-c", "sleep 100 & sleep 100 & wait"])
            .spawn()
            .unwrap(),
    );
    pod.0.create_app("forker", &Resources::default()).unwrap();
    pod.0.join_app("forker", forker.pid()).unwrap();

    pod.0.destroy().unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(5))
        .expect("sleep killed");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    for dir in app_dirs.iter().chain(&pod_dirs) {
        assert!(!dir.exists(), "{dir:?} left behind");
    }
    // Idempotent.
    pod.0.destroy().unwrap();
    pod.0.remove_app("app").unwrap();
    drop(forker);
}

#[test]
fn supervisor_leaf_and_app_removal() {
    if !root() {
        return;
    }
    let pod = new_pod();
    let supervisor = ChildGuard(Command::new("sleep").arg("100").spawn().unwrap());
    pod.0.join_supervisor(supervisor.pid()).unwrap();
    assert_eq!(
        pod.0.app_pids(SUPERVISOR_LEAF).unwrap(),
        [supervisor.pid().as_raw()]
    );
    pod.0.create_app("a", &Resources::default()).unwrap();
    let mut app = ChildGuard(Command::new("sleep").arg("100").spawn().unwrap());
    pod.0.join_app("a", app.pid()).unwrap();
    pod.0.remove_app("a").unwrap();
    assert!(app.wait_timeout(Duration::from_secs(5)).is_some());
    let app_dirs = pod.0.manager().dirs(&pod.0.app_path("a").unwrap());
    assert!(app_dirs.iter().all(|d| !d.exists()));
    // The supervisor is untouched by an app's removal.
    assert_eq!(
        pod.0.app_pids(SUPERVISOR_LEAF).unwrap(),
        [supervisor.pid().as_raw()]
    );
}

#[test]
fn memory_limit_oom_kills() {
    if !root() {
        return;
    }
    let pod = new_pod();
    if !pod.0.manager().has_controller("memory") {
        eprintln!("skipped: no memory controller");
        return;
    }
    let limits = Resources {
        memory_bytes: Some(32 << 20),
        ..Default::default()
    };
    pod.0.create_app("hog", &limits).unwrap();
    // The shell waits for a line on stdin so it is inside the cgroup before
    // tail starts buffering /dev/zero (a single endless line) in memory.
    let mut hog = ChildGuard(
        Command::new("sh")
            .args(["-c", "read x; exec tail /dev/zero"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    pod.0.join_app("hog", hog.pid()).unwrap();
    hog.0.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = hog
        .wait_timeout(Duration::from_secs(20))
        .expect("the hog must die within 20s");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}

/// The v2 code path on the host's real cgroup2 tree: on hybrid hosts that is
/// `/sys/fs/cgroup/unified` (no resource controllers, but create, join,
/// cgroup.kill and rmdir are the real thing).
#[test]
fn v2_tree_create_join_kill_remove() {
    if !root() {
        return;
    }
    let root = match Layout::detect().unwrap() {
        Layout::Unified => PathBuf::from("/sys/fs/cgroup"),
        Layout::Hybrid => PathBuf::from("/sys/fs/cgroup/unified"),
        Layout::Legacy => return,
    };
    let manager =
        Cgroups::V2(stage1_common::cgroups::V2Manager::new(&root, Parent::Current).unwrap());
    let name = format!("rkt-cgtest-v2-{}", std::process::id());
    let pod = PodGuard(PodCgroup::create_at(manager, Path::new(&name)).unwrap());
    pod.0.create_app("app", &Resources::default()).unwrap();
    let mut child = ChildGuard(Command::new("sleep").arg("100").spawn().unwrap());
    pod.0.join_app("app", child.pid()).unwrap();
    let dir = pod
        .0
        .manager()
        .dirs(&pod.0.app_path("app").unwrap())
        .remove(0);
    assert_eq!(procs(&dir), [child.pid().as_raw()]);
    pod.0.destroy().unwrap();
    let status = child.wait_timeout(Duration::from_secs(5)).expect("killed");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(!dir.exists() && !dir.parent().unwrap().exists());
}
