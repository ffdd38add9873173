//! The pod's PID 1: starts every app in its own mount namespace and root,
//! reaps every process of the pod (orphans too), records each app's exit
//! code in `rkt/status/<app>`, forwards termination signals, stops the
//! other apps when one fails, and returns the failing app's code (0 when
//! all succeed), which becomes `rkt run`'s (rkt semantics).

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{alarm, chdir, pipe2, read, write, ForkResult, Pid};
use thiserror::Error;

use stage1_common::cgroups::{CgroupError, PodCgroup, Resources};
use stage1_common::isolators::{AppSecurity, IsolatorError};
use stage1_common::mount::MountError;
use stage1_common::pod::{Pod, PodError};
use stage1_common::status::{self, StatusError};
use stage1_common::user::{self, Credentials, UserError};

use crate::events::{self, EventError, Handlers};
use crate::podroot::{self, PodRootError};
use crate::rootfs::{AppRoot, RootfsError};
use crate::signals::{self, BlockedSignals, SignalError, FORWARDED};
use crate::{debug, exec, fail, fork, EntryError, APP_PIDS_DIR, STAGE1_ERROR_EXIT};

/// How long apps get between SIGTERM and SIGKILL when the pod stops.
pub const STOP_GRACE_SECS: u32 = 10;

#[derive(Debug, Error)]
pub enum SupervisorError {
    #[error(transparent)]
    PodRoot(#[from] PodRootError),
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
    Entry(#[from] EntryError),
    #[error("cannot join the app's cgroup: {0}")]
    Cgroup(#[from] CgroupError),
    #[error("cannot apply the app's isolators: {0}")]
    Isolator(#[from] IsolatorError),
    #[error("cannot read the app's event handlers: {0}")]
    Pod(#[from] PodError),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("cannot keep the mount namespace of app {app:?} for its post-stop handler: {source}")]
    KeepNs {
        app: String,
        #[source]
        source: std::io::Error,
    },
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
    /// Index in `Supervisor::apps`.
    app: usize,
    /// The app's mount namespace, kept for its post-stop handler (a
    /// namespace lives as long as an fd refers to it).
    mnt_ns: Option<OwnedFd>,
}

/// Where the app child is when `launch` returns.
struct Launched {
    pid: Pid,
    started: bool,
    mnt_ns: Option<OwnedFd>,
}

impl Supervisor {
    /// Runs the pod; the exit code for `rkt run`.
    pub fn run(&mut self) -> Result<i32, SupervisorError> {
        // Read from the pod directory while it is still in reach.
        let handlers = self.load_handlers()?;
        podroot::enter(&self.stage1_rootfs, &mut self.apps)?;
        self.stage1_rootfs = PathBuf::from("/");
        let sfd = self.signals.signalfd()?;
        let pids_dir = self.stage1_rootfs.join(APP_PIDS_DIR);
        std::fs::create_dir_all(&pids_dir).map_err(|source| StatusError::Write {
            path: pids_dir.clone(),
            source,
        })?;

        let mut running = Vec::new();
        let mut hooks = Vec::new();
        let mut failure = None;
        for (idx, app) in self.apps.iter().enumerate() {
            let Launched {
                pid,
                started,
                mnt_ns,
            } = self.launch(app, &handlers[idx])?;
            running.push(Running {
                pid,
                name: app.name.clone(),
                app: idx,
                mnt_ns,
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
            let mut exited = Vec::new();
            self.reap(
                &mut running,
                &mut hooks,
                &mut exited,
                &mut failure,
                &mut grace_started,
            )?;
            for app in exited {
                hooks.extend(self.spawn_post_stop(app, &handlers));
            }
            if running.is_empty() && hooks.is_empty() {
                return Ok(failure.unwrap_or(0));
            }
            match signals::next(&sfd)? {
                Some(Signal::SIGCHLD) | None => {}
                Some(Signal::SIGALRM) => {
                    stop_all(&running, Signal::SIGKILL);
                    for pid in &hooks {
                        let _ = kill(*pid, Signal::SIGKILL);
                    }
                }
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

    /// Every app's event handlers, from the pod's manifests.
    fn load_handlers(&self) -> Result<Vec<Handlers>, SupervisorError> {
        let Some(first) = self.apps.first() else {
            return Ok(Vec::new());
        };
        let pod = Pod::load(&first.root.pod_dir)?;
        self.apps
            .iter()
            .map(|a| Ok(Handlers::from_app(&pod.app(&a.name)?.app)))
            .collect()
    }

    /// Reaps every exited process; for apps, records the exit code, on the
    /// first failure stops the others, and hands the app back in `exited`
    /// for its post-stop handler; finished handlers leave `hooks`.
    fn reap(
        &self,
        running: &mut Vec<Running>,
        hooks: &mut Vec<Pid>,
        exited: &mut Vec<Running>,
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
            if let Some(idx) = hooks.iter().position(|h| *h == pid) {
                hooks.remove(idx);
                debug(self.debug, format!("post-stop handler exited with {code}"));
                continue;
            }
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
            exited.push(app);
        }
    }

    /// Starts the app's post-stop handler in its mount namespace, when it
    /// has one; best effort: a failure is only reported.
    fn spawn_post_stop(&self, exited: Running, handlers: &[Handlers]) -> Option<Pid> {
        let argv = handlers[exited.app].post_stop.as_ref()?;
        let ns = exited.mnt_ns?;
        let app = &self.apps[exited.app];
        match fork() {
            Ok(ForkResult::Child) => {
                let err = match self.become_post_stop(app, &ns, argv) {
                    Ok(never) => match never {},
                    Err(e) => e,
                };
                fail(format!("app {:?}: post-stop handler: {err}", app.name))
            }
            Ok(ForkResult::Parent { child }) => {
                debug(
                    self.debug,
                    format!("app {:?}: post-stop handler runs as pid {child}", app.name),
                );
                Some(child)
            }
            Err(e) => {
                eprintln!("stage1: app {:?}: cannot run post-stop: {e}", app.name);
                None
            }
        }
    }

    fn become_post_stop(
        &self,
        app: &AppLaunch,
        ns: &OwnedFd,
        argv: &[String],
    ) -> Result<Infallible, SupervisorError> {
        if let Some(cgroup) = &self.cgroup {
            cgroup.join_app(&app.name, Pid::from_raw(0))?;
        }
        // Entering a mount namespace also makes its root (the app's
        // pivoted rootfs) this process's root and cwd.
        setns(ns, CloneFlags::CLONE_NEWNS).map_err(|errno| SupervisorError::KeepNs {
            app: app.name.clone(),
            source: errno.into(),
        })?;
        chdir(&app.workdir).map_err(|errno| SupervisorError::Workdir {
            path: app.workdir.clone(),
            errno,
        })?;
        Ok(events::exec_handler(
            events::POST_STOP,
            argv,
            &app.env,
            &self.signals,
        )?)
    }

    /// Forks the app; whether it got as far as exec (a failing pre-start
    /// handler counts as started: the app exits with its code), and its
    /// mount namespace when it has a post-stop handler.
    fn launch(&self, app: &AppLaunch, handlers: &Handlers) -> Result<Launched, SupervisorError> {
        let (failed_r, failed_w) = pipe2(OFlag::O_CLOEXEC).map_err(SupervisorError::Pipe)?;
        let handoff = if handlers.post_stop.is_some() {
            Some(NsHandoff::new()?)
        } else {
            None
        };
        match fork()? {
            ForkResult::Child => {
                drop(failed_r);
                let err = match self.become_app(app, handlers, handoff) {
                    Ok(never) => match never {},
                    Err(e) => e,
                };
                let _ = write(&failed_w, b"x");
                fail(format!("app {:?}: {err}", app.name))
            }
            ForkResult::Parent { child } => {
                drop(failed_w);
                // Best effort, like the post-stop handler itself.
                let mnt_ns = handoff.and_then(|h| match h.take(child) {
                    Ok(ns) => ns,
                    Err(source) => {
                        let e = SupervisorError::KeepNs {
                            app: app.name.clone(),
                            source,
                        };
                        eprintln!("stage1: {e}");
                        None
                    }
                });
                Ok(Launched {
                    pid: child,
                    started: !failed_before_exec(failed_r),
                    mnt_ns,
                })
            }
        }
    }

    fn become_app(
        &self,
        app: &AppLaunch,
        handlers: &Handlers,
        handoff: Option<NsHandoff>,
    ) -> Result<Infallible, SupervisorError> {
        // Before pivot_root, while the host's /sys/fs/cgroup is visible;
        // pid 0 means "the writer", whatever PID namespace it is in.
        if let Some(cgroup) = &self.cgroup {
            cgroup.join_app(&app.name, Pid::from_raw(0))?;
        }
        app.root.enter()?;
        if let Some(h) = handoff {
            h.give();
        }
        chdir(&app.workdir).map_err(|errno| SupervisorError::Workdir {
            path: app.workdir.clone(),
            errno,
        })?;
        if let Some(argv) = &handlers.pre_start {
            // As root, before the credentials and isolators (rkt's
            // ExecStartPre); the app runs only if it succeeds.
            let code = events::run_handler(events::PRE_START, argv, &app.env, &self.signals)?;
            if code != 0 {
                eprintln!(
                    "stage1: app {:?}: pre-start handler exited with {code}; not starting the app",
                    app.name
                );
                std::process::exit(code);
            }
        }
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

/// Lets the supervisor open an app child's mount namespace once its root is
/// set up and before the app can exit (and take the namespace with it).
struct NsHandoff {
    ready_r: OwnedFd,
    ready_w: OwnedFd,
    ack_r: OwnedFd,
    ack_w: OwnedFd,
}

impl NsHandoff {
    fn new() -> Result<Self, SupervisorError> {
        let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).map_err(SupervisorError::Pipe)?;
        let (ack_r, ack_w) = pipe2(OFlag::O_CLOEXEC).map_err(SupervisorError::Pipe)?;
        Ok(NsHandoff {
            ready_r,
            ready_w,
            ack_r,
            ack_w,
        })
    }

    /// In the child, in its root: tells the supervisor and waits until it
    /// holds the namespace.
    fn give(self) {
        drop(self.ready_r);
        drop(self.ack_w);
        let _ = write(&self.ready_w, b"r");
        drop(self.ready_w);
        read_byte(&self.ack_r);
    }

    /// In the supervisor: the child's mount namespace, or `None` when the
    /// child failed before its root was ready.
    fn take(self, child: Pid) -> std::io::Result<Option<OwnedFd>> {
        drop(self.ready_w);
        drop(self.ack_r);
        if read_byte(&self.ready_r) != Some(b'r') {
            return Ok(None);
        }
        // The child waits for the ack (closing ack_w), so it is alive here.
        let ns = File::open(format!("/proc/{child}/ns/mnt"))?;
        drop(self.ack_w);
        Ok(Some(ns.into()))
    }
}

/// One byte from `fd`, `None` at EOF or on an error.
fn read_byte(fd: &OwnedFd) -> Option<u8> {
    let mut byte = [0u8; 1];
    loop {
        match read(fd.as_raw_fd(), &mut byte) {
            Err(Errno::EINTR) => continue,
            Ok(1) => return Some(byte[0]),
            _ => return None,
        }
    }
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
