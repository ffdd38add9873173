//! The pod's PID 1: starts every app in its own mount namespace and root,
//! reaps every process of the pod (orphans too), records each app's exit
//! code in `rkt/status/<app>`, forwards termination signals, stops the
//! other apps when one fails, and returns the failing app's code (0 when
//! all succeed), which becomes `rkt run`'s (rkt semantics).

use std::convert::Infallible;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{alarm, chdir, pipe2, read, write, ForkResult, Pid};
use thiserror::Error;

use stage1_common::cgroups::{CgroupError, PodCgroup, Resources};
use stage1_common::isolators::{AppSecurity, IsolatorError};
use stage1_common::mount::{self as mnt, MountError, Propagation};
use stage1_common::status::{self, StatusError};
use stage1_common::user::{self, Credentials, UserError};

use crate::rootfs::{AppRoot, RootfsError};
use crate::signals::{self, BlockedSignals, SignalError, FORWARDED};
use crate::{debug, exec, fail, fork, NsError, APP_PIDS_DIR, STAGE1_ERROR_EXIT};

/// How long apps get between SIGTERM and SIGKILL when the pod stops.
pub const STOP_GRACE_SECS: u32 = 10;

#[derive(Debug, Error)]
pub enum SupervisorError {
    #[error("cannot mount the pod's /proc: {0}")]
    Proc(Errno),
    #[error("cannot create a pipe: {0}")]
    Pipe(Errno),
    #[error("cannot enter the working directory {path:?}: {errno}")]
    Workdir { path: PathBuf, errno: Errno },
    #[error("cannot wait for the pod's processes: {0}")]
    Wait(Errno),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error(transparent)]
    Signal(#[from] SignalError),
    #[error(transparent)]
    Ns(#[from] NsError),
    #[error("cannot join the app's cgroup: {0}")]
    Cgroup(#[from] CgroupError),
    #[error("cannot apply the app's isolators: {0}")]
    Isolator(#[from] IsolatorError),
}

/// Everything needed to start one app, prepared before the pod starts.
#[derive(Debug, Clone)]
pub struct AppLaunch {
    pub name: String,
    pub root: AppRoot,
    /// Path of the executable as the app sees it.
    pub exec_path: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub creds: Credentials,
    /// Working directory as the app sees it.
    pub workdir: PathBuf,
    /// Capabilities, seccomp, no_new_privs and OOM score for the process.
    pub security: AppSecurity,
    /// Limits of the app's cgroup, set up by `run`.
    pub resources: Resources,
}

#[derive(Debug)]
pub struct Supervisor {
    pub stage1_rootfs: PathBuf,
    pub apps: Vec<AppLaunch>,
    pub signals: BlockedSignals,
    pub debug: bool,
    /// The pod's cgroup; each app joins its leaf `<pod>/<app>` before exec.
    pub cgroup: Option<PodCgroup>,
}

struct Running {
    pid: Pid,
    name: String,
}

impl Supervisor {
    /// Runs the pod; the exit code for `rkt run`.
    pub fn run(&self) -> Result<i32, SupervisorError> {
        mount_pod_proc()?;
        let sfd = self.signals.signalfd()?;
        let pids_dir = self.stage1_rootfs.join(APP_PIDS_DIR);
        std::fs::create_dir_all(&pids_dir).map_err(|source| StatusError::Write {
            path: pids_dir.clone(),
            source,
        })?;

        let mut running = Vec::new();
        let mut failure = None;
        for app in &self.apps {
            let (pid, started) = self.launch(app)?;
            running.push(Running {
                pid,
                name: app.name.clone(),
            });
            if !started {
                // The child said why and exits 254; reaped below.
                failure = Some(STAGE1_ERROR_EXIT);
                break;
            }
            status::write_number_file(&pids_dir.join(&app.name), pid.as_raw().into())?;
            status::mark_started(&self.stage1_rootfs, &app.name)?;
            debug(self.debug, format!("app {:?} runs as pid {pid}", app.name));
        }
        if failure.is_some() {
            stop_all(&running, Signal::SIGTERM);
            alarm::set(STOP_GRACE_SECS);
        } else if let Err(e) = status::mark_ready(&self.stage1_rootfs) {
            eprintln!("stage1: {e}");
        }

        let mut grace_started = failure.is_some();
        loop {
            self.reap(&mut running, &mut failure, &mut grace_started)?;
            if running.is_empty() {
                return Ok(failure.unwrap_or(0));
            }
            match signals::next(&sfd)? {
                Some(Signal::SIGCHLD) | None => {}
                Some(Signal::SIGALRM) => stop_all(&running, Signal::SIGKILL),
                Some(sig) if FORWARDED.contains(&sig) => {
                    stop_all(&running, sig);
                    if matches!(sig, Signal::SIGTERM | Signal::SIGINT) && !grace_started {
                        grace_started = true;
                        alarm::set(STOP_GRACE_SECS);
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Reaps every exited process; for apps, records the exit code and on
    /// the first failure stops the others.
    fn reap(
        &self,
        running: &mut Vec<Running>,
        failure: &mut Option<i32>,
        grace_started: &mut bool,
    ) -> Result<(), SupervisorError> {
        loop {
            let st = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(()),
                Ok(st) => st,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(SupervisorError::Wait(errno)),
            };
            let (Some(pid), Some(code)) = (st.pid(), signals::exit_code(st)) else {
                continue;
            };
            let Some(idx) = running.iter().position(|r| r.pid == pid) else {
                // An orphan of some app: reaped, nothing to record.
                continue;
            };
            let app = running.remove(idx);
            debug(self.debug, format!("app {:?} exited with {code}", app.name));
            if let Err(e) = status::write_exit_status(&self.stage1_rootfs, &app.name, code) {
                eprintln!("stage1: {e}");
            }
            if code != 0 && failure.is_none() {
                *failure = Some(code);
                stop_all(running, Signal::SIGTERM);
                if !*grace_started {
                    *grace_started = true;
                    alarm::set(STOP_GRACE_SECS);
                }
            }
        }
    }

    /// Forks the app; whether it got as far as exec.
    fn launch(&self, app: &AppLaunch) -> Result<(Pid, bool), SupervisorError> {
        let (failed_r, failed_w) = pipe2(OFlag::O_CLOEXEC).map_err(SupervisorError::Pipe)?;
        match fork()? {
            ForkResult::Child => {
                drop(failed_r);
                let err = match self.become_app(app) {
                    Ok(never) => match never {},
                    Err(e) => e,
                };
                let _ = write(&failed_w, b"x");
                fail(format!("app {:?}: {err}", app.name))
            }
            ForkResult::Parent { child } => {
                drop(failed_w);
                Ok((child, !failed_before_exec(failed_r)))
            }
        }
    }

    fn become_app(&self, app: &AppLaunch) -> Result<Infallible, SupervisorError> {
        // Before pivot_root, while the host's /sys/fs/cgroup is visible;
        // pid 0 means "the writer", whatever PID namespace it is in.
        if let Some(cgroup) = &self.cgroup {
            cgroup.join_app(&app.name, Pid::from_raw(0))?;
        }
        app.root.enter()?;
        chdir(&app.workdir).map_err(|errno| SupervisorError::Workdir {
            path: app.workdir.clone(),
            errno,
        })?;
        app.security.apply_before_credentials()?;
        user::apply_credentials(&app.creds)?;
        self.signals.restore()?;
        // Last: the seccomp filter need not allow the setup's own calls.
        app.security.apply_after_credentials()?;
        Ok(exec(&app.exec_path, &app.argv, &app.env)?)
    }
}

fn stop_all(running: &[Running], sig: Signal) {
    for r in running {
        // ESRCH: it exited meanwhile; its SIGCHLD is queued.
        let _ = kill(r.pid, sig);
    }
}

/// A procfs of the pod's PID namespace on /proc of the pod's mount
/// namespace, kept from propagating anywhere else.
fn mount_pod_proc() -> Result<(), SupervisorError> {
    mnt::set_propagation(Path::new("/"), Propagation::Slave, true)?;
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(SupervisorError::Proc)
}

/// Whether the child reported a failure before exec on the pipe (the read
/// returns once it exec'd or exited).
fn failed_before_exec(pipe: OwnedFd) -> bool {
    let mut byte = [0u8; 1];
    loop {
        match read(pipe.as_raw_fd(), &mut byte) {
            Err(Errno::EINTR) => continue,
            r => return matches!(r, Ok(1)),
        }
    }
}
