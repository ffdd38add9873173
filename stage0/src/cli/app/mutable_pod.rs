//! What the `app` subcommands share: loading a mutable pod, its `pod.lck`,
//! the manifest rewrite, the crossing entrypoints (rkt's
//! `CrossingEntrypoint`) and the apps' states from the stage1 status files.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use abi::pod_dir;
use abi::schema::{PodManifest, RuntimeApp};
use abi::stage1::{AppArgs, Entrypoint, ENTER_CMD_ENV, ENTER_PID_ENV};
use anyhow::{anyhow, bail, Context as _, Result};
use nix::fcntl::{Flock, FlockArg};
use stage0::pod::lifecycle::{ensure_superuser, Pod, PodState};
use stage0::pod::manifest::MUTABLE_ANNOTATION;
use stage0::pod::render::write_file;
use stage0::pod::stage1::Stage1Image;

use crate::cli::Context;

/// PATH for the crossing entrypoints when the caller has none (rkt's).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long to wait for a running pod's pid file.
const PID_WAIT: Duration = Duration::from_secs(10);

/// A mutable pod loaded for an `app` subcommand.
pub struct MutablePod {
    pub pod: Pod,
    pub stage1: Stage1Image,
    pub manifest: PodManifest,
    /// The host pid of the pod's PID 1, while the pod runs.
    pub pid: Option<i32>,
}

/// The outcome of a crossing entrypoint: exit code and combined output.
pub struct Crossing {
    pub code: i32,
    pub output: String,
}

/// An app's state from the stage1's status files.
#[derive(Debug, Clone, PartialEq)]
pub struct AppRuntime {
    /// rkt's app states: `unknown`, `created`, `running`, `exited`.
    pub state: &'static str,
    pub created: Option<SystemTime>,
    pub started: Option<SystemTime>,
    pub finished: Option<SystemTime>,
    pub exit_code: Option<i32>,
}

impl MutablePod {
    /// Loads pod `uuid` (or a unique prefix), which must be a mutable pod;
    /// with `running`, it must also be running (its pid is then known).
    pub fn load(ctx: &Context, uuid: &str, running: bool) -> Result<MutablePod> {
        ensure_superuser()?;
        let mut pod = Pod::load_prefix(&ctx.data_dir, uuid)
            .map_err(|e| anyhow!("problem retrieving pod: {e}"))?;
        let uuid = pod.uuid().to_string();
        if running && pod.state() != PodState::Running {
            bail!(
                "pod {uuid} is {}, not running; apps can only be changed in a running pod started with `rkt app sandbox`",
                pod.state()
            );
        }
        if !pod.has_manifest() {
            bail!("pod {uuid} has no manifest yet; wait until it is prepared");
        }
        let manifest = pod.manifest()?;
        let mutable = manifest
            .annotations
            .iter()
            .any(|a| a.name.as_str() == MUTABLE_ANNOTATION && a.value == "true");
        if !mutable {
            bail!("pod {uuid} is not a mutable pod; start one with `rkt app sandbox`");
        }
        let stage1 = Stage1Image::load(pod.path())?;
        if !stage1.supports_mutable() {
            bail!(
                "the {} stage1 of pod {uuid} does not support mutable pods",
                stage1.flavor()
            );
        }
        let pid = if pod.state() == PodState::Running {
            Some(
                pod.wait_pid(Some(PID_WAIT))
                    .map_err(|e| anyhow!("cannot find the pid of pod {uuid}: {e}"))?,
            )
        } else {
            None
        };
        Ok(MutablePod {
            pod,
            stage1,
            manifest,
            pid,
        })
    }

    pub fn uuid(&self) -> &str {
        self.pod.uuid()
    }

    pub fn path(&self) -> &Path {
        self.pod.path()
    }

    /// The pod's PID 1; an error when the pod is not running.
    pub fn running_pid(&self) -> Result<i32> {
        self.pid
            .ok_or_else(|| anyhow!("pod {} is not running", self.uuid()))
    }

    /// The app named `name`, or an error listing the pod's apps.
    pub fn app(&self, name: &str) -> Result<&RuntimeApp> {
        self.manifest
            .apps
            .iter()
            .find(|a| a.name.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.manifest.apps.iter().map(|a| a.name.as_str()).collect();
                if names.is_empty() {
                    anyhow!("pod {} has no app {name:?}: it has no apps yet; add one with `rkt app add`", self.uuid())
                } else {
                    anyhow!(
                        "pod {} has no app {name:?}; its apps are: {}",
                        self.uuid(),
                        names.join(", ")
                    )
                }
            })
    }

    /// Takes the exclusive lock on `$pod/pod.lck` (waiting for another
    /// `app add`/`app rm` to finish) and re-reads the manifest it guards.
    /// The lock lasts as long as the returned value lives.
    pub fn lock(&mut self) -> Result<Flock<File>> {
        let path = self.path().join(pod_dir::POD_LOCK);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let locked = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow!("cannot lock {}: {e}", path.display()))?;
        self.manifest = self.pod.manifest()?;
        Ok(locked)
    }

    /// Rewrites `$pod/pod` atomically (temporary file and rename, 0640).
    pub fn write_manifest(&mut self, manifest: PodManifest) -> Result<()> {
        let json = serde_json::to_vec(&manifest).context("cannot serialise the pod manifest")?;
        write_file(&self.path().join(pod_dir::POD_MANIFEST), &json, 0o640)?;
        self.manifest = manifest;
        Ok(())
    }

    /// Where a file the stage1 writes at run time (`rel` inside its rootfs)
    /// is read and removed: through the pod's own root while it runs
    /// (overlay pods mount their stage1 rootfs only there), else where
    /// stage0 finds it on the host.
    pub fn runtime_path(&self, rel: &str) -> PathBuf {
        let rel = rel.trim_start_matches('/');
        match self.pid {
            Some(pid) => PathBuf::from(format!("/proc/{pid}/root")).join(rel),
            None => self.pod.stage1_runtime_path(rel),
        }
    }

    /// Runs a crossing entrypoint (`app/add` with the pod's UUID, the others
    /// without) with cwd = the pod directory and the environment replaced by
    /// exactly the enter command, the pod's pid and PATH. Its stdout and
    /// stderr are captured together; `--debug` shows them.
    pub fn crossing(&self, debug: bool, ep: Entrypoint, app: &str) -> Result<Crossing> {
        let pid = self.running_pid()?;
        let path = self.stage1.entrypoint_path(self.path(), ep)?;
        let enter = std::path::absolute(
            self.stage1
                .entrypoint_path(self.path(), Entrypoint::Enter)?,
        )
        .context("cannot resolve the enter entrypoint")?;
        let args = AppArgs {
            debug,
            uuid: (ep == Entrypoint::AppAdd).then(|| self.uuid().to_string()),
            app: app.to_string(),
        };
        let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("cannot create a pipe for the stage1 output")?;
        let writer2: OwnedFd = writer.try_clone().context("cannot duplicate a pipe")?;
        let path_env = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
        let mut cmd = Command::new(&path);
        cmd.args(args.to_argv())
            .current_dir(self.path())
            .env_clear()
            .env(ENTER_CMD_ENV, &enter)
            .env(ENTER_PID_ENV, pid.to_string())
            .env("PATH", path_env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(writer2));
        tracing::debug!(
            "running stage1 {} {}",
            path.display(),
            args.to_argv().join(" ")
        );
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run stage1 entrypoint {}", path.display()))?;
        // Our copies of the write end must go, or the read never ends.
        drop(cmd);
        let mut bytes = Vec::new();
        File::from(reader)
            .read_to_end(&mut bytes)
            .context("cannot read the stage1 output")?;
        let status = child.wait().context("cannot wait for the stage1")?;
        let code = {
            use std::os::unix::process::ExitStatusExt;
            status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
        };
        let output = String::from_utf8_lossy(&bytes).into_owned();
        if debug {
            eprint!("{output}");
        }
        Ok(Crossing { code, output })
    }

    /// For the error line of a failed entrypoint: `: <its last output
    /// line>`. Longer output is shown on stderr first (with `--debug` it
    /// already was).
    pub fn failure_detail(c: &Crossing, debug: bool) -> String {
        let lines: Vec<&str> = c
            .output
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
            .collect();
        if !debug && lines.len() > 1 {
            for l in &lines {
                eprintln!("{l}");
            }
        }
        lines
            .last()
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default()
    }

    /// The app's state from `rkt/status/<app>` (exit code), `<app>-started`
    /// and `<app>-created` (their mtimes are the times).
    pub fn app_runtime(&self, name: &str) -> AppRuntime {
        let status = |suffix: &str| {
            let path = self.runtime_path(&format!("{}/{name}{suffix}", pod_dir::STATUS_DIR));
            // A removed file of an overlay seen from the host is a whiteout
            // (a character device): only regular files count.
            std::fs::symlink_metadata(&path)
                .ok()
                .filter(|m| m.file_type().is_file())
                .map(|m| (path, m.modified().ok()))
        };
        let created = status("-created");
        let started = status("-started");
        let exited = status("");
        let exit_code = exited
            .as_ref()
            .and_then(|(p, _)| std::fs::read_to_string(p).ok())
            .and_then(|s| s.trim().parse().ok());
        let state = if exit_code.is_some() {
            "exited"
        } else if started.is_some() {
            // Started but the pod is gone: the app went with it.
            if self.pid.is_some() {
                "running"
            } else {
                "exited"
            }
        } else if created.is_some() {
            "created"
        } else {
            "unknown"
        };
        AppRuntime {
            state,
            created: created.and_then(|(_, t)| t),
            started: started.and_then(|(_, t)| t),
            finished: exited.filter(|_| exit_code.is_some()).and_then(|(_, t)| t),
            exit_code,
        }
    }

    /// Removes what the stage1 recorded about app `name` at run time:
    /// `rkt/status/<app>`, `<app>-created`, `<app>-started` and
    /// `rkt/env/<app>`. Returns the problems met (a missing file is none).
    pub fn remove_runtime_files(&self, name: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let files = ["-created", "-started", ""]
            .iter()
            .map(|suffix| format!("{}/{name}{suffix}", pod_dir::STATUS_DIR))
            .chain(std::iter::once(format!("{}/{name}", pod_dir::ENV_DIR)));
        for rel in files {
            let path = self.runtime_path(&rel);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    problems.push(format!("cannot remove /{rel}: {e}"))
                }
                _ => {}
            }
        }
        problems
    }
}

/// `remove_dir_all` that accepts a directory already gone. Callers check
/// that nothing is mounted at or below it first.
pub fn remove_dir_if_present(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
