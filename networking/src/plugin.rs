//! Running one CNI plugin (CNI spec, "Execution protocol"): found by its
//! `type` in the plugin search path, given the operation in `CNI_*`
//! environment variables and its configuration on stdin; its result (or
//! its CNI error object) on stdout. A plugin that hangs is killed after a
//! timeout, so teardown can still run.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use serde_json::{Map, Value};
use thiserror::Error;

use crate::conf::NetConf;

/// Where Debian's and most distributions' reference plugins live.
pub const SYSTEM_PLUGIN_DIRS: [&str; 2] = ["/usr/lib/cni", "/opt/cni/bin"];
/// Longest output read from a plugin.
const MAX_OUTPUT: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum PluginError {
    #[error("CNI plugin {plugin:?} not found in {dirs}; install it there or put it in <local-config>/net.d")]
    NotFound { plugin: String, dirs: String },
    #[error("cannot run CNI plugin {path:?}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CNI plugin {plugin:?} did not finish {command} within {secs} s and was killed; check the plugin")]
    Timeout {
        plugin: String,
        command: &'static str,
        secs: u64,
    },
    #[error("CNI plugin {plugin:?} failed {command} (code {code}): {msg}{details}")]
    Failed {
        plugin: String,
        command: &'static str,
        code: u64,
        msg: String,
        details: String,
    },
    #[error("CNI plugin {plugin:?} failed {command} ({status}) without a CNI error: {output}")]
    Crashed {
        plugin: String,
        command: &'static str,
        status: String,
        output: String,
    },
    #[error(
        "CNI plugin {plugin:?} printed something that is not a CNI result for {command}: {source}"
    )]
    BadResult {
        plugin: String,
        command: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// The CNI operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CniCommand {
    Add,
    Del,
    Check,
    Version,
    Gc,
}

impl CniCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            CniCommand::Add => "ADD",
            CniCommand::Del => "DEL",
            CniCommand::Check => "CHECK",
            CniCommand::Version => "VERSION",
            CniCommand::Gc => "GC",
        }
    }
}

/// What identifies one attachment (the `CNI_*` variables besides the
/// command and the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub container_id: String,
    pub netns: PathBuf,
    pub ifname: String,
    /// `CNI_ARGS`, as `--net=name:ARGS` gave them.
    pub args: Option<String>,
    /// The runtime's capability arguments (`portMappings`, ...): each
    /// plugin gets, as `runtimeConfig`, those its `capabilities` enable.
    pub capability_args: Map<String, Value>,
}

/// Finds and runs plugins.
#[derive(Debug, Clone)]
pub struct PluginRunner {
    pub search_path: Vec<PathBuf>,
    pub timeout: Duration,
}

impl PluginRunner {
    /// `extra` dirs first (the user's and the stage1's), then the system's.
    pub fn new(extra: Vec<PathBuf>, timeout: Duration) -> Self {
        let mut search_path = extra;
        search_path.extend(SYSTEM_PLUGIN_DIRS.iter().map(PathBuf::from));
        PluginRunner {
            search_path,
            timeout,
        }
    }

    /// The executable of plugin `plugin_type`.
    pub fn find(&self, plugin_type: &str) -> Result<PathBuf, PluginError> {
        self.search_path
            .iter()
            .map(|d| d.join(plugin_type))
            .find(|p| is_executable(p))
            .ok_or_else(|| PluginError::NotFound {
                plugin: plugin_type.to_string(),
                dirs: self
                    .search_path
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            })
    }

    /// Runs `command` of plugin `plugin_type` with `config` on stdin; the
    /// parsed stdout (`Value::Null` when the plugin printed nothing, as
    /// DEL may).
    pub fn invoke(
        &self,
        plugin_type: &str,
        command: CniCommand,
        attachment: Option<&Attachment>,
        config: &Value,
    ) -> Result<Value, PluginError> {
        let path = self.find(plugin_type)?;
        let mut cmd = Command::new(&path);
        cmd.env("CNI_COMMAND", command.as_str())
            .env(
                "CNI_PATH",
                std::env::join_paths(&self.search_path).unwrap_or_default(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(a) = attachment {
            cmd.env("CNI_CONTAINERID", &a.container_id)
                .env("CNI_NETNS", &a.netns)
                .env("CNI_IFNAME", &a.ifname)
                .env("CNI_ARGS", a.args.as_deref().unwrap_or(""));
        }
        let mut child = cmd.spawn().map_err(|source| PluginError::Spawn {
            path: path.clone(),
            source,
        })?;
        let input = serde_json::to_vec(config).unwrap_or_default();
        let deadline = Instant::now() + self.timeout;
        let Some(Exited { status, out, err }) = communicate(&mut child, &input, deadline) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(PluginError::Timeout {
                plugin: plugin_type.to_string(),
                command: command.as_str(),
                secs: self.timeout.as_secs(),
            });
        };
        if !status.success() {
            return Err(failure(
                plugin_type,
                command,
                &status.to_string(),
                &out,
                &err,
            ));
        }
        if out.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out).map_err(|source| PluginError::BadResult {
            plugin: plugin_type.to_string(),
            command: command.as_str(),
            source,
        })
    }
}

/// What a plugin left when it exited.
struct Exited {
    status: ExitStatus,
    out: Vec<u8>,
    err: Vec<u8>,
}

/// How long output may still come after the plugin exited (from something
/// it started that kept its stdout): then what came is what counts.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// Feeds `input` to the child's stdin, collects its stdout and stderr (at
/// most [`MAX_OUTPUT`] each) and waits for it to exit, all on this thread:
/// one poll over the pipes and a pidfd of the child sees its exit at once
/// (a check every 5 ms cost 2.5 ms a plugin on average) and spawns no
/// thread. `None` when `deadline` passes first; the caller kills it.
fn communicate(child: &mut Child, input: &[u8], deadline: Instant) -> Option<Exited> {
    let mut stdin = child.stdin.take().map(OwnedFd::from);
    let mut pipes = [
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    ];
    for fd in stdin.iter().chain(pipes.iter().flatten()) {
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    }
    // Without pidfds (Linux < 5.3) the exit is checked every millisecond.
    let pidfd = pidfd_open(child.id());
    let mut written = 0;
    let mut output: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut status = None;
    let mut until = deadline;
    loop {
        if status.is_none() {
            match child.try_wait() {
                Ok(Some(s)) => {
                    status = Some(s);
                    until = until.min(Instant::now() + OUTPUT_GRACE);
                }
                Ok(None) => {}
                Err(_) => return None,
            }
        }
        if status.is_some() && pipes.iter().all(Option::is_none) {
            break;
        }
        let now = Instant::now();
        if now >= until {
            if status.is_some() {
                break;
            }
            return None;
        }
        let mut wait = until - now;
        if pidfd.is_none() && status.is_none() {
            wait = wait.min(Duration::from_millis(1));
        }
        let mut fds = Vec::with_capacity(4);
        if let (Some(p), None) = (&pidfd, status) {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        if let Some(w) = &stdin {
            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLOUT));
        }
        for p in pipes.iter().flatten() {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        let timeout = PollTimeout::try_from(wait.as_millis().min(i32::MAX as u128) as i32 + 1)
            .unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
        drop(fds);
        if let Some(w) = &stdin {
            match nix::unistd::write(w, &input[written..]) {
                Ok(n) => written += n,
                Err(Errno::EAGAIN) => {}
                // EPIPE: the plugin does not want (the rest of) it.
                Err(_) => written = input.len(),
            }
            if written >= input.len() {
                stdin = None;
            }
        }
        for (pipe, out) in pipes.iter_mut().zip(output.iter_mut()) {
            if pipe.as_ref().is_some_and(|fd| !read_available(fd, out)) {
                *pipe = None;
            }
        }
    }
    let [out, err] = output;
    Some(Exited {
        status: status?,
        out,
        err,
    })
}

/// Reads what the non-blocking `fd` holds now into `out`, which keeps at
/// most [`MAX_OUTPUT`] bytes; `false` once the pipe is at its end (or
/// broken).
fn read_available(fd: &OwnedFd, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 16384];
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                let room = (MAX_OUTPUT as usize).saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return true,
            Err(_) => return false,
        }
    }
}

/// A pidfd of process `pid` (pidfd_open(2)), readable once it exits.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as nix::libc::pid_t, 0) };
    // SAFETY: a fresh descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The error a failed plugin reported: its CNI error object when it printed
/// one, else what it printed.
fn failure(plugin: &str, command: CniCommand, status: &str, out: &[u8], err: &[u8]) -> PluginError {
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(out) {
        if let Some(msg) = obj.get("msg").and_then(Value::as_str) {
            let details = obj
                .get("details")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            return PluginError::Failed {
                plugin: plugin.to_string(),
                command: command.as_str(),
                code: obj.get("code").and_then(Value::as_u64).unwrap_or(0),
                msg: msg.to_string(),
                details,
            };
        }
    }
    let text = String::from_utf8_lossy(if out.is_empty() { err } else { out });
    PluginError::Crashed {
        plugin: plugin.to_string(),
        command: command.as_str(),
        status: status.to_string(),
        output: text.trim().chars().take(500).collect(),
    }
}

/// Whether a plugin's configuration `raw` declares CNI capability `cap`
/// (`"capabilities": {cap: true}`): only then does it get that argument.
pub fn declares_capability(raw: &Map<String, Value>, cap: &str) -> bool {
    raw.get("capabilities")
        .and_then(|c| c.get(cap))
        .and_then(Value::as_bool)
        == Some(true)
}

/// What plugin `index` of `net` gets on stdin: its own object with the
/// network's `name` and `cniVersion`, the previous plugin's result when
/// chained (`prevResult`), and `runtimeConfig` with the capability
/// arguments the plugin declares in `capabilities`.
pub fn plugin_input(
    net: &NetConf,
    index: usize,
    prev_result: Option<&Value>,
    capability_args: &Map<String, Value>,
) -> Value {
    let mut obj: Map<String, Value> = net.plugins[index].raw.clone();
    obj.insert("name".into(), Value::String(net.name.clone()));
    obj.insert("cniVersion".into(), Value::String(net.cni_version.clone()));
    let runtime_config: Map<String, Value> = capability_args
        .iter()
        .filter(|(cap, _)| declares_capability(&obj, cap))
        .map(|(cap, v)| (cap.clone(), v.clone()))
        .collect();
    if runtime_config.is_empty() {
        obj.remove("runtimeConfig");
    } else {
        obj.insert("runtimeConfig".into(), Value::Object(runtime_config));
    }
    match prev_result {
        Some(prev) if !prev.is_null() => {
            obj.insert("prevResult".into(), prev.clone());
        }
        _ => {
            obj.remove("prevResult");
        }
    }
    Value::Object(obj)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(extra: &[&Path]) -> PluginRunner {
        PluginRunner::new(
            extra.iter().map(|p| p.to_path_buf()).collect(),
            Duration::from_secs(5),
        )
    }

    /// Installs an executable script. It is written by `install`, not
    /// here: a plugin another test forks meanwhile would inherit our write
    /// descriptor until its exec, and running the script would then fail
    /// with ETXTBSY.
    fn script(dir: &Path, name: &str, body: &str) {
        let source = dir.join(format!(".{name}.src"));
        std::fs::write(&source, format!("#!/bin/sh\n{body}\n")).unwrap();
        let installed = Command::new("install")
            .args(["-m", "0755"])
            .arg(&source)
            .arg(dir.join(name))
            .status()
            .unwrap();
        assert!(installed.success(), "install {name}");
    }

    use crate::test_netns::TestNetns as Netns;

    #[test]
    fn version_of_a_reference_plugin() {
        let r = runner(&[]);
        let out = r
            .invoke(
                "loopback",
                CniCommand::Version,
                None,
                &serde_json::json!({"cniVersion": "1.0.0"}),
            )
            .unwrap();
        let versions = out["supportedVersions"].as_array().unwrap();
        assert!(versions.iter().any(|v| v == "0.4.0"), "{out}");
        assert!(versions.iter().any(|v| v == "1.0.0"), "{out}");
    }

    #[test]
    fn add_and_del_of_the_reference_loopback_in_a_real_netns() {
        let ns = Netns::new("lo");
        let net = NetConf::parse(
            Path::new("lo.conf"),
            br#"{"cniVersion":"1.0.0","name":"lo","type":"loopback"}"#,
        )
        .unwrap();
        let att = Attachment {
            container_id: "test".into(),
            netns: ns.path(),
            ifname: "lo".into(),
            args: None,
            capability_args: Map::new(),
        };
        let r = runner(&[]);
        let result = r
            .invoke(
                "loopback",
                CniCommand::Add,
                Some(&att),
                &plugin_input(&net, 0, None, &Map::new()),
            )
            .unwrap();
        assert_eq!(result["cniVersion"], "1.0.0");
        assert_eq!(result["ips"][0]["address"], "127.0.0.1/8", "{result}");
        let link = Command::new("ip")
            .args(["-n", &ns.0, "link", "show", "lo"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&link.stdout).contains("UP"),
            "{link:?}"
        );
        let del = r
            .invoke(
                "loopback",
                CniCommand::Del,
                Some(&att),
                &plugin_input(&net, 0, None, &Map::new()),
            )
            .unwrap();
        assert!(del.is_null(), "{del}");
    }

    #[test]
    fn a_cni_error_object_is_shown() {
        let ns = Netns::new("err");
        let att = Attachment {
            container_id: "test".into(),
            netns: ns.path(),
            ifname: "eth0".into(),
            args: None,
            capability_args: Map::new(),
        };
        // The reference ptp without IPAM refuses with a CNI error.
        let e = runner(&[])
            .invoke(
                "ptp",
                CniCommand::Add,
                Some(&att),
                &serde_json::json!({"cniVersion": "1.0.0", "name": "p", "type": "ptp"}),
            )
            .unwrap_err();
        assert!(matches!(e, PluginError::Failed { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("\"ptp\" failed ADD") && text.contains("code"),
            "{text}"
        );
    }

    #[test]
    fn missing_hanging_and_crashing_plugins() {
        let dir = tempfile::tempdir().unwrap();
        let r = PluginRunner::new(vec![dir.path().to_path_buf()], Duration::from_millis(300));
        let e = r
            .invoke("nosuch", CniCommand::Version, None, &Value::Null)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"nosuch\" not found") && e.contains("/usr/lib/cni"),
            "{e}"
        );

        script(dir.path(), "hang", "sleep 30");
        let t0 = Instant::now();
        let e = r
            .invoke("hang", CniCommand::Add, None, &Value::Null)
            .unwrap_err();
        assert!(matches!(e, PluginError::Timeout { .. }), "{e:?}");
        assert!(t0.elapsed() < Duration::from_secs(5));

        script(dir.path(), "crash", "echo boom >&2; exit 3");
        let e = r
            .invoke("crash", CniCommand::Add, None, &Value::Null)
            .unwrap_err()
            .to_string();
        assert!(e.contains("boom"), "{e}");

        script(dir.path(), "garbage", "echo not-json");
        let e = r
            .invoke("garbage", CniCommand::Add, None, &Value::Null)
            .unwrap_err();
        assert!(matches!(e, PluginError::BadResult { .. }), "{e:?}");
    }

    #[test]
    fn big_input_and_output_and_an_exit_seen_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let r = runner(&[dir.path()]);
        // Reads all of a config far bigger than a pipe holds, answers with
        // as much, and then its count of the bytes it read.
        script(
            dir.path(),
            "echo-size",
            "n=$(wc -c); head -c 300000 /dev/zero | tr '\\0' ' '; echo \"{\\\"read\\\": $n}\"",
        );
        let big = Value::String("x".repeat(200_000));
        let t0 = Instant::now();
        let out = r.invoke("echo-size", CniCommand::Add, None, &big).unwrap();
        assert_eq!(out["read"], 200_002, "{out}");
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());

        // A plugin whose child keeps its stdout open: its own exit and
        // output count, after a short grace, not the plugin timeout.
        script(
            dir.path(),
            "leaves-child",
            "sleep 30 & echo '{\"ok\": true}'",
        );
        let t0 = Instant::now();
        let out = r
            .invoke("leaves-child", CniCommand::Add, None, &Value::Null)
            .unwrap();
        assert_eq!(out["ok"], true, "{out}");
        let took = t0.elapsed();
        assert!(
            took >= OUTPUT_GRACE && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[test]
    fn chained_input_carries_name_version_and_prev_result() {
        let net = NetConf::parse(
            Path::new("c.conflist"),
            br#"{"cniVersion":"1.0.0","name":"c","plugins":[{"type":"bridge"},{"type":"portmap"}]}"#,
        )
        .unwrap();
        let first = plugin_input(&net, 0, None, &Map::new());
        assert_eq!(first["name"], "c");
        assert!(first.get("prevResult").is_none());
        let prev = serde_json::json!({"cniVersion": "1.0.0", "ips": []});
        let second = plugin_input(&net, 1, Some(&prev), &Map::new());
        assert_eq!(second["type"], "portmap");
        assert_eq!(second["prevResult"], prev);
    }

    #[test]
    fn runtime_config_only_for_declared_capabilities() {
        let net = NetConf::parse(
            Path::new("p.conflist"),
            br#"{"cniVersion":"1.0.0","name":"p","plugins":[{"type":"ptp"},
                {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]}"#,
        )
        .unwrap();
        let mut caps = Map::new();
        caps.insert(
            "portMappings".into(),
            serde_json::json!([{"hostPort": 8080}]),
        );
        caps.insert("bandwidth".into(), serde_json::json!({"ingressRate": 1}));
        assert!(plugin_input(&net, 0, None, &caps)
            .get("runtimeConfig")
            .is_none());
        let pm = plugin_input(&net, 1, None, &caps);
        assert_eq!(
            pm["runtimeConfig"],
            serde_json::json!({"portMappings": [{"hostPort": 8080}]})
        );
    }
}
