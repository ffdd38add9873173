//! What stage0 reads back from a pod directory: the pod's PID 1, creation and
//! start times, per-app exit codes, networks and supervisor readiness.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use abi::pod_dir;

use crate::pod::overlay::OverlayLayers;
use serde::{Deserialize, Serialize};

use super::{Pod, PodError, PodState, Wait};

/// One entry of `net-info.json` (rkt's `netinfo.NetInfo`), passed through
/// to `list`/`status` JSON as is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetInfo {
    #[serde(rename = "netName", default)]
    pub net_name: String,
    #[serde(rename = "netConf", default)]
    pub net_conf: String,
    #[serde(rename = "pluginPath", default)]
    pub plugin_path: String,
    #[serde(rename = "ifName", default)]
    pub if_name: String,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub args: String,
    #[serde(default)]
    pub mask: serde_json::Value,
}

const POLL: Duration = Duration::from_millis(100);

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read_int(path: &Path) -> Option<i32> {
    abi::pod_file::read_small(path, 32)
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl Pod {
    /// The mtime of `pod-created` (else of `pod`, as pods from old rkt have
    /// no `pod-created`); like rkt, only once the pod is prepared.
    pub fn created(&self) -> Option<SystemTime> {
        if !(matches!(self.state, PodState::Prepared | PodState::Running)
            || self.state.is_after_run())
        {
            return None;
        }
        mtime(&self.path.join(pod_dir::POD_CREATED))
            .or_else(|| mtime(&self.path.join(pod_dir::POD_MANIFEST)))
    }

    /// The mtime of `pid` or `ppid` (written by stage1 when the pod starts),
    /// only for pods that have been started.
    pub fn started(&self) -> Option<SystemTime> {
        if !(self.state == PodState::Running || self.state.is_after_run()) {
            return None;
        }
        mtime(&self.path.join(pod_dir::PID)).or_else(|| mtime(&self.path.join(pod_dir::PPID)))
    }

    /// When gc moved the pod to a garbage directory (its ctime).
    pub fn gc_marked(&self) -> Option<SystemTime> {
        if !matches!(
            self.state,
            PodState::ExitedGarbage
                | PodState::ExitedDeleting
                | PodState::Garbage
                | PodState::Deleting
        ) {
            return None;
        }
        let m = std::fs::symlink_metadata(&self.path).ok()?;
        Some(UNIX_EPOCH + Duration::new(m.ctime().max(0) as u64, m.ctime_nsec() as u32))
    }

    /// The value of the `pid` or `ppid` file (rkt's `Pod.Pid`, used by
    /// `status`): `None` while neither has been written.
    pub fn pid_file(&self) -> Option<i32> {
        read_int(&self.path.join(pod_dir::PID)).or_else(|| read_int(&self.path.join(pod_dir::PPID)))
    }

    /// The pod's PID 1: the `pid` file, else the single child of the `ppid`
    /// process. `None` while not written yet / the child not forked yet.
    pub fn pid(&self) -> Result<Option<i32>, PodError> {
        if let Some(pid) = read_int(&self.path.join(pod_dir::PID)) {
            return Ok(Some(pid));
        }
        match read_int(&self.path.join(pod_dir::PPID)) {
            Some(ppid) => child_of(ppid),
            None => Ok(None),
        }
    }

    /// Polls [`Pod::pid`] every 100ms while the pod is running (for
    /// `enter`); fails when the pod stops running or `timeout` passes.
    pub fn wait_pid(&mut self, timeout: Option<Duration>) -> Result<i32, PodError> {
        let start = Instant::now();
        loop {
            if let Some(pid) = self.pid()? {
                return Ok(pid);
            }
            std::thread::sleep(POLL);
            self.refresh()?;
            if self.state != PodState::Running {
                return Err(PodError::NotRunning {
                    uuid: self.uuid.clone(),
                });
            }
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                return Err(PodError::Timeout(format!(
                    "waiting for the pid of pod {}",
                    self.uuid
                )));
            }
        }
    }

    /// Exit codes from `stage1/rootfs/rkt/status/<app>` for the manifest's
    /// apps that have one, in manifest order.
    pub fn app_exit_codes(&self) -> Vec<(String, i32)> {
        let names = self.app_names().unwrap_or_default();
        names
            .into_iter()
            .filter_map(|name| self.app_exit_code(&name).map(|c| (name, c)))
            .collect()
    }

    /// One app's exit code, if recorded.
    pub fn app_exit_code(&self, app: &str) -> Option<i32> {
        read_int(&self.app_status_path(app))
    }

    /// Whether stage1 marked the app started (`rkt/status/<app>-started`).
    pub fn app_started(&self, app: &str) -> bool {
        self.stage1_runtime_path(&format!("{}/{app}-started", pod_dir::STATUS_DIR))
            .exists()
    }

    pub(crate) fn app_status_path(&self, app: &str) -> std::path::PathBuf {
        self.stage1_runtime_path(&format!("{}/{app}", pod_dir::STATUS_DIR))
    }

    /// Where a file stage1 writes at run time (`rel` inside its rootfs) can be
    /// read from the host. Overlay pods mount their stage1 rootfs only in the
    /// pod's own mount namespace, so what stage1 wrote lives in the overlay's
    /// upper directory; copied pods have it in place.
    pub fn stage1_runtime_path(&self, rel: &str) -> std::path::PathBuf {
        let rel = rel.trim_start_matches('/');
        let in_place = self.path.join(pod_dir::STAGE1_ROOTFS).join(rel);
        if !self.uses_overlay() {
            return in_place;
        }
        match std::fs::read_to_string(self.path.join(pod_dir::STAGE1_TREE_STORE_ID)) {
            Ok(id) => OverlayLayers::of(&self.data_dir, &self.path, id.trim(), "")
                .upper
                .join(rel),
            Err(_) => in_place,
        }
    }

    /// The networks from `net-info.json`; empty when absent or unreadable.
    pub fn networks(&self) -> Vec<NetInfo> {
        std::fs::read(self.path.join(pod_dir::NET_INFO))
            .ok()
            .and_then(|b| serde_json::from_slice::<Option<Vec<NetInfo>>>(&b).ok())
            .flatten()
            .unwrap_or_default()
    }

    /// Whether `stage1/rootfs/rkt/supervisor-status` is a symlink to `ready`.
    pub fn is_supervisor_ready(&self) -> bool {
        let link = self.stage1_runtime_path(pod_dir::SUPERVISOR_STATUS);
        std::fs::read_link(link).is_ok_and(|t| t.as_os_str() == "ready")
    }

    /// `status --wait-ready`: polls readiness every 100ms.
    pub fn wait_ready(&mut self, wait: Wait) -> Result<(), PodError> {
        self.wait_until(wait, "waiting for the pod to be ready", |p| {
            p.refresh()?;
            Ok(p.is_supervisor_ready())
        })
    }

    /// `status --wait`: polls every 100ms until the pod has finished.
    pub fn wait_finished(&mut self, wait: Wait) -> Result<(), PodError> {
        self.wait_until(wait, "waiting for the pod to finish", |p| {
            p.refresh()?;
            Ok(p.state.is_finished())
        })
    }

    fn wait_until(
        &mut self,
        wait: Wait,
        what: &str,
        mut done: impl FnMut(&mut Pod) -> Result<bool, PodError>,
    ) -> Result<(), PodError> {
        let deadline = match wait {
            Wait::No => return Ok(()),
            Wait::Forever => None,
            Wait::For(d) => Some(Instant::now() + d),
        };
        loop {
            if done(self)? {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PodError::Timeout(what.to_string()));
            }
            std::thread::sleep(POLL);
        }
    }
}

/// The only child of `ppid`: `/proc/<ppid>/task/<ppid>/children` when the
/// kernel has it, else a scan of `/proc/*/stat`.
fn child_of(ppid: i32) -> Result<Option<i32>, PodError> {
    let children = format!("/proc/{ppid}/task/{ppid}/children");
    if Path::new("/proc/self/task").exists() && Path::new("/proc/1/task/1/children").exists() {
        let Ok(text) = std::fs::read_to_string(&children) else {
            return Ok(None);
        };
        let kids: Vec<&str> = text.split_whitespace().collect();
        return match kids.as_slice() {
            [] => Ok(None),
            [one] => Ok(one.parse().ok()),
            _ => Err(PodError::Pid(format!("too many children of pid {ppid}"))),
        };
    }
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Ok(None);
    };
    for entry in rd.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may contain spaces; fields resume after its ')'.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<i32>().ok());
        if parent == Some(ppid) {
            return Ok(Some(pid));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pid_codes_and_nets() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let mut pod = Pod::create(d).unwrap();
        pod.to_run().unwrap();
        assert_eq!(pod.pid().unwrap(), None);
        assert!(pod.started().is_none());
        assert!(pod.created().is_some());

        // ppid = a shell whose only child is a sleep.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .spawn()
            .unwrap();
        std::fs::write(pod.path().join("ppid"), sh.id().to_string()).unwrap();
        let mut found = Ok(None);
        for _ in 0..50 {
            found = pod.pid();
            if !matches!(found, Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let child = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", sh.id()));
        let child: i32 = child.unwrap().trim().parse().unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child),
            nix::sys::signal::Signal::SIGKILL,
        );
        sh.kill().unwrap();
        sh.wait().unwrap();
        assert_eq!(found.unwrap(), Some(child));
        assert!(pod.started().is_some());

        std::fs::write(pod.path().join("pid"), "1234\n").unwrap();
        assert_eq!(pod.pid().unwrap(), Some(1234));
        assert_eq!(pod.wait_pid(None).unwrap(), 1234);

        std::fs::write(
            pod.path().join("pod"),
            r#"{"acVersion":"0.8.11","acKind":"PodManifest","apps":[
                {"name":"a","image":{"id":"sha512-aa"}},
                {"name":"b","image":{"id":"sha512-bb"}}]}"#,
        )
        .unwrap();
        let status = pod.path().join("stage1/rootfs/rkt/status");
        std::fs::create_dir_all(&status).unwrap();
        std::fs::write(status.join("b"), "7").unwrap();
        assert_eq!(pod.app_exit_codes(), vec![("b".to_string(), 7)]);

        assert!(pod.networks().is_empty());
        std::fs::write(
            pod.path().join("net-info.json"),
            r#"[{"netName":"default","netConf":"net/99-default.conf","pluginPath":"p",
                "ifName":"eth0","ip":"172.16.28.2","args":"","mask":"//8AAA=="}]"#,
        )
        .unwrap();
        let nets = pod.networks();
        assert_eq!(nets[0].net_name, "default");
        assert_eq!(nets[0].ip.as_deref(), Some("172.16.28.2"));

        assert!(!pod.is_supervisor_ready());
        std::os::unix::fs::symlink("ready", status.parent().unwrap().join("supervisor-status"))
            .unwrap();
        assert!(pod.is_supervisor_ready());
    }

    #[test]
    fn wait_pid_fails_when_the_pod_exits() {
        let tmp = tempfile::tempdir().unwrap();
        let mut pod = Pod::create(tmp.path()).unwrap();
        pod.to_run().unwrap();
        let uuid = pod.uuid().to_string();
        drop(pod);
        let mut p = super::super::load_unlocked(tmp.path(), &uuid);
        p.state = PodState::Running;
        assert!(matches!(
            p.wait_pid(Some(Duration::from_secs(2))),
            Err(PodError::NotRunning { .. })
        ));
    }
}
