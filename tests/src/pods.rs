//! Helpers for the pod tests: the fetched test images, pod directories by
//! state, `rkt status` parsing, pods running in the background and small
//! ACIs built on the fly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use abi::schema::ImageManifest;

use crate::{image, Out, Rkt};

/// The pod state directories under `$dir/pods`.
pub const STATE_DIRS: &[&str] = &[
    "embryo",
    "prepare",
    "prepared",
    "run",
    "exited-garbage",
    "garbage",
];

/// Fetches `busybox.aci` and `inspect.aci`; returns their full keys.
pub fn fetch_test_images(rkt: &Rkt) -> (String, String) {
    (
        rkt.fetch(&image("busybox.aci")),
        rkt.fetch(&image("inspect.aci")),
    )
}

/// The UUIDs in `$dir/pods/<state>`, sorted.
pub fn pods_in(rkt: &Rkt, state: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(rkt.dir.join("pods").join(state))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every pod directory as `state/uuid`, sorted.
pub fn all_pods(rkt: &Rkt) -> Vec<String> {
    let mut v = Vec::new();
    for s in STATE_DIRS {
        v.extend(pods_in(rkt, s).into_iter().map(|u| format!("{s}/{u}")));
    }
    v.sort();
    v
}

/// The directory of pod `uuid` in state directory `state`.
pub fn pod_dir(rkt: &Rkt, state: &str, uuid: &str) -> PathBuf {
    rkt.dir.join("pods").join(state).join(uuid)
}

/// Whether `s` looks like a lowercase UUIDv4 string.
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .map(|p| p.len())
            .eq([8usize, 4, 4, 4, 12].iter().copied())
        && s.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// `key=value` lines of `rkt status` as a map.
pub fn status_map(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `rkt status UUID` parsed; panics if status fails.
#[track_caller]
pub fn status(rkt: &Rkt, uuid: &str) -> BTreeMap<String, String> {
    status_map(&rkt.ok(&["status", uuid]).stdout)
}

/// Runs a pod to completion with `--uuid-file-save` and returns its output
/// and UUID.
pub fn run_pod(rkt: &Rkt, args: &[&str]) -> (Out, String) {
    let uf = rkt.root().join(format!("uuid-{}", unique()));
    let save = format!("--uuid-file-save={}", uf.display());
    let mut all = vec!["run", save.as_str()];
    all.extend_from_slice(args);
    let out = rkt.run(&all);
    let uuid = std::fs::read_to_string(&uf).unwrap_or_default();
    (out, uuid)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A `rkt run` started in the background; killed (by its own pid) and
/// reaped on drop if still alive.
pub struct BgPod {
    child: Option<Child>,
    pub uuid: String,
}

impl BgPod {
    /// Starts `rkt run --uuid-file-save=... ARGS` and waits until the pod is
    /// `running` according to `rkt status`.
    #[track_caller]
    pub fn start(rkt: &Rkt, args: &[&str]) -> BgPod {
        Self::start_with_env(rkt, &[], args)
    }

    /// [`BgPod::start`] with extra environment variables for rkt (which
    /// passes its environment on to the stage1).
    #[track_caller]
    pub fn start_with_env(rkt: &Rkt, env: &[(&str, &str)], args: &[&str]) -> BgPod {
        let uf = rkt.root().join(format!("bg-uuid-{}", unique()));
        let mut cmd = rkt.command();
        cmd.arg("run")
            .arg(format!("--uuid-file-save={}", uf.display()))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn rkt run");
        let mut pod = BgPod {
            child: Some(child),
            uuid: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(o) = pod.wait(Duration::ZERO) {
                panic!("background rkt run exited early:\n{o}");
            }
            if pod.uuid.is_empty() {
                pod.uuid = std::fs::read_to_string(&uf).unwrap_or_default();
            }
            if !pod.uuid.is_empty() {
                let o = rkt.run(&["status", &pod.uuid]);
                if o.code == 0
                    && status_map(&o.stdout).get("state").map(String::as_str) == Some("running")
                    && status_map(&o.stdout).contains_key("pid")
                {
                    return pod;
                }
            }
            assert!(Instant::now() < deadline, "pod never became running");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Waits up to `timeout` for the background rkt to exit; its exit code
    /// (128+signal when killed) and its output.
    pub fn wait(&mut self, timeout: Duration) -> Option<Out> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return None,
            }
        }
        let o = self
            .child
            .take()?
            .wait_with_output()
            .expect("collect output");
        Some(Out::from_output(o))
    }

    /// The pid of the background process (rkt, then the stage1 and the app
    /// it became through exec).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for BgPod {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Only our own child: with fly it has become the app by exec.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Writes an ACI from `manifest` and a rootfs filled by `fill`; returns its
/// path under `dir`.
pub fn build_aci(
    dir: &Path,
    file: &str,
    manifest: ImageManifest,
    fill: impl FnOnce(&Path),
) -> PathBuf {
    let staging = dir.join(format!("{file}.rootfs"));
    std::fs::create_dir_all(&staging).unwrap();
    fill(&staging);
    let out = dir.join(file);
    images::AciBuilder::new(manifest, &staging)
        .write_file(&out)
        .expect("write aci");
    out
}

/// The host busybox the third-party stage1s and images are built from.
pub fn host_busybox() -> PathBuf {
    let p = PathBuf::from("/bin/busybox");
    assert!(
        p.exists(),
        "/bin/busybox is missing: apt-get install busybox-static"
    );
    p
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh `Rkt` whose store holds the test images (busybox, inspect).
pub fn rkt_with_test_images() -> Rkt {
    let rkt = Rkt::new();
    fetch_test_images(&rkt);
    rkt
}

/// `rkt run --stage1-path=NS ARGS...` (the ns stage1): its output and the
/// pod's UUID.
pub fn ns_run(rkt: &Rkt, args: &[&str]) -> (Out, String) {
    let s1 = ns_stage1_flag();
    let mut all = vec![s1.as_str()];
    all.extend_from_slice(args);
    run_pod(rkt, &all)
}

/// [`ns_run`] of one busybox app running `sh -c script`, with `pod_args`
/// before the image.
pub fn ns_sh(rkt: &Rkt, pod_args: &[&str], script: &str) -> (Out, String) {
    let mut all = pod_args.to_vec();
    all.extend_from_slice(&["example.com/busybox", "--exec=/bin/sh", "--", "-c", script]);
    ns_run(rkt, &all)
}

/// `--stage1-path=` the ns stage1 image beside the rkt binary (trusted
/// there without a signature).
pub fn ns_stage1_flag() -> String {
    let ns = crate::stage1_image("ns").canonicalize().unwrap();
    format!("--stage1-path={}", ns.display())
}

/// Host pids that belong to pod `uuid`: in one of its cgroups, or with a
/// root directory inside this test's directory.
pub fn pod_processes(rkt: &Rkt, uuid: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let root = rkt.root().to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let in_cgroup = !uuid.is_empty()
            && std::fs::read_to_string(e.path().join("cgroup")).is_ok_and(|c| c.contains(uuid));
        let rooted = std::fs::read_link(e.path().join("root"))
            .is_ok_and(|r| r.to_string_lossy().starts_with(&root));
        if in_cgroup || rooted {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            found.push(format!("{pid} ({})", comm.trim()));
        }
    }
    found
}

/// Cgroup directories of pod `uuid` on v1 (one per hierarchy) and v2 hosts.
pub fn pod_cgroups(uuid: &str) -> Vec<PathBuf> {
    let scope = format!("machine.slice/machine-rkt-{uuid}.scope");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path().join(&scope))
        .collect();
    dirs.push(Path::new("/sys/fs/cgroup").join(&scope));
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// A free TCP+UDP port on the host.
pub fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// What a TCP server at `addr` sends before closing (or why not).
pub fn tcp_read(addr: &str) -> String {
    use std::io::Read;
    let mut s = match std::net::TcpStream::connect_timeout(
        &addr.parse().unwrap(),
        Duration::from_secs(2),
    ) {
        Ok(s) => s,
        Err(e) => return format!("connect: {e}"),
    };
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
