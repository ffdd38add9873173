//! The pod's PID 1: starts every app in its own mount namespace and root,
//! reaps every process of the pod (orphans too), records each app's exit
//! code in `rkt/status/<app>`, forwards termination signals, stops the
//! other apps when one fails, and returns the failing app's code (0 when
//! all succeed), which becomes `rkt run`'s (rkt semantics).

use std::convert::Infallible;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use abi::pod_dir;
use abi::schema::{ImageManifest, RuntimeApp, Volume};
use abi::stage1::RunArgs;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{alarm, chdir, dup2, pipe2, read, setsid, write, ForkResult, Pid};
use thiserror::Error;

use stage1_common::cgroups::{CgroupError, PodCgroup, Resources};
use stage1_common::isolators::{AppSecurity, IsolatorError};
use stage1_common::journal::Journal;

use crate::applog::AppLogs;
use abi::app_log::LOGS_DIR;
use stage1_common::mount::{self as mnt, MountError};
use stage1_common::pod::{PodApp, PodError};
use stage1_common::status::{self, StatusError};
use stage1_common::user::{self, Credentials, UserError};

use crate::control::{self, Request, Response, CONTROL_SOCKET};
use crate::events::{self, EventError, Handlers};
use crate::output::{AppOutput, OutputError, OutputMux};
use crate::plan::{plan_app, PodPaths};
use crate::podroot::{self, PodRootError};
use crate::rootfs::{AppRoot, RootfsError};
use crate::signals::{self, BlockedSignals, SignalError, FORWARDED};
use crate::{debug, exec, fail, fork, EntryError, APP_PIDS_DIR, STAGE1_ERROR_EXIT};

/// How long apps get between SIGTERM and SIGKILL when the pod (or, in a
/// mutable pod, the app) stops.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long PID 1 waits without events before it unmaps its setup code.
const IDLE_BEFORE_TRIM: Duration = Duration::from_secs(1);

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
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("cannot detach the app from the caller's terminal: {0}")]
    Terminal(Errno),
    #[error("cannot give the app its output pipes: {0}")]
    Redirect(Errno),
    #[error("cannot listen on the control socket {path:?}: {source}")]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    pub handlers: Handlers,
    /// Keeps stdin (`--interactive`) and takes the pod's terminal, if any,
    /// as its controlling one.
    pub interactive: bool,
}

#[derive(Debug)]
pub struct Supervisor {
    pub stage1_rootfs: PathBuf,
    pub apps: Vec<AppLaunch>,
    pub signals: BlockedSignals,
    pub debug: bool,
    /// The pod's cgroup; each app joins its leaf `<pod>/<app>` before exec.
    pub cgroup: Option<PodCgroup>,
    /// For a mutable pod (`rkt app sandbox`), the pod's run options, used
    /// to plan the apps added later. A mutable pod runs until stopped, and
    /// an app's failure does not stop the others.
    pub mutable: Option<RunArgs>,
    /// Written to (then closed) once the supervisor is in the pod's root,
    /// so `run` publishes the pod's pid only then.
    pub rooted: Option<OwnedFd>,
    /// The host's journald, when it runs one: every app's output lines
    /// also go there.
    pub journal: Option<Journal>,
    /// No journal and no terminal: every app's output also goes to its
    /// log file (`abi::app_log`), which `rkt logs` reads.
    pub keep_logs: bool,
}

struct Running {
    pid: Pid,
    name: String,
    /// The app's mount namespace, kept for its post-stop handler (a
    /// namespace lives as long as an fd refers to it).
    mnt_ns: Option<OwnedFd>,
    /// OOM kills in the app's cgroup before it started, for apps with a
    /// memory limit (a SIGKILL is the OOM killer's only if the count rose).
    oom_kills_before: Option<u64>,
}

/// Where the app child is when `launch` returns.
struct Launched {
    pid: Pid,
    /// Why the child failed before exec, if it did.
    error: Option<String>,
    mnt_ns: Option<OwnedFd>,
}

/// An `app stop` request waiting for its app to exit.
struct PendingStop {
    app: String,
    conn: UnixStream,
    /// When the app gets SIGKILL; `None` once it did.
    kill_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    running: Vec<Running>,
    /// Running post-stop handlers.
    hooks: Vec<Pid>,
    /// The first failing app's code (immutable pods).
    failure: Option<i32>,
    /// The pod is stopping: the kill timer runs.
    stopping: bool,
    /// The kill timer went off: handlers started from now on get one more
    /// grace period before they are killed too.
    killed: bool,
    pending_stops: Vec<PendingStop>,
    /// Line-by-line forwarding of the apps' output, when several apps
    /// share the pod's stdout/stderr.
    output: Option<OutputMux>,
}

impl Supervisor {
    /// Runs the pod; the exit code for `rkt run`.
    pub fn run(&mut self) -> Result<i32, SupervisorError> {
        podroot::enter(&self.stage1_rootfs, &mut self.apps)?;
        self.stage1_rootfs = PathBuf::from("/");
        // The control socket exists before the pod's pid is published.
        let listener = match self.mutable {
            Some(_) => Some(self.listen()?),
            None => None,
        };
        if let Some(fd) = self.rooted.take() {
            let _ = write(&fd, b"r");
        }
        let sfd = self.signals.signalfd()?;
        let pids_dir = self.stage1_rootfs.join(APP_PIDS_DIR);
        std::fs::create_dir_all(&pids_dir).map_err(|source| StatusError::Write {
            path: pids_dir.clone(),
            source,
        })?;

        let mut st = State::default();
        if self.apps.len() > 1 || self.mutable.is_some() || self.journal.is_some() || self.keep_logs
        {
            let logs = self
                .keep_logs
                .then(|| AppLogs::new(self.stage1_rootfs.join(LOGS_DIR)));
            st.output = Some(OutputMux::start(self.journal.take(), logs)?);
        }
        for idx in 0..self.apps.len() {
            if let Err(e) = self.start(idx, &mut st)? {
                debug(self.debug, e);
                // The child said why and exits 254; reaped below.
                st.failure = Some(STAGE1_ERROR_EXIT);
                break;
            }
        }
        if st.failure.is_some() {
            begin_stop(&mut st, Signal::SIGTERM);
        } else if let Err(e) = status::mark_ready(&self.stage1_rootfs) {
            eprintln!("stage1: {e}");
        }
        let mut trimmed = false;

        loop {
            for app in self.reap(&mut st)? {
                self.after_exit(app, &mut st);
            }
            let done = st.running.is_empty() && st.hooks.is_empty();
            if done && (self.mutable.is_none() || st.stopping) {
                if let Some(output) = st.output.take() {
                    // Orphans still writing would keep the pipes busy
                    // forever; they die with the pod anyway.
                    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                    output.finish();
                }
                return Ok(st.failure.unwrap_or(0));
            }
            // The forwarding thread starts only when the supervisor is
            // about to wait: apps that are already done (a short command)
            // have their output forwarded on this thread by `finish`.
            if let Some(output) = st.output.as_mut() {
                output.spawn()?;
            }
            let (signalled, requested) = wait_events(&sfd, listener.as_ref(), &st, &mut trimmed)?;
            if signalled {
                if let Some(sig) = signals::next(&sfd)? {
                    on_signal(sig, &mut st);
                }
            }
            if let (true, Some(listener)) = (requested, &listener) {
                self.serve(listener, &mut st);
            }
            kill_overdue(&mut st, self.cgroup.as_ref());
        }
    }

    /// Launches `apps[idx]` and records it as running; `Err(why)` inside
    /// `Ok` when it failed before exec (it is still reaped like any app).
    fn start(&self, idx: usize, st: &mut State) -> Result<Result<(), String>, SupervisorError> {
        let app = &self.apps[idx];
        // Read only for apps with a memory limit: the explanation is about
        // that limit, and each start would otherwise pay the cgroup reads.
        let oom_kills_before = match (&self.cgroup, app.resources.memory_bytes) {
            (Some(c), Some(_)) => Some(c.app_oom_kills(&app.name)),
            _ => None,
        };
        let Launched { pid, error, mnt_ns } = self.launch(app, st.output.as_ref())?;
        st.running.push(Running {
            pid,
            name: app.name.clone(),
            mnt_ns,
            oom_kills_before,
        });
        if let Some(e) = error {
            return Ok(Err(e));
        }
        let pid_file = self.stage1_rootfs.join(APP_PIDS_DIR).join(&app.name);
        status::write_number_file(&pid_file, pid.as_raw().into())?;
        status::mark_started(&self.stage1_rootfs, &app.name)?;
        debug(self.debug, format!("app {:?} runs as pid {pid}", app.name));
        Ok(Ok(()))
    }

    /// Reaps every exited process; for apps, records the exit code and (in
    /// an immutable pod) on the first failure stops the others; returns
    /// the apps that exited. Finished handlers leave `hooks`.
    fn reap(&self, st: &mut State) -> Result<Vec<Running>, SupervisorError> {
        let mut exited = Vec::new();
        loop {
            let ws = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(exited),
                Ok(ws) => ws,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(SupervisorError::Wait(errno)),
            };
            let (Some(pid), Some(code)) = (ws.pid(), signals::exit_code(ws)) else {
                continue;
            };
            if let Some(idx) = st.hooks.iter().position(|h| *h == pid) {
                st.hooks.remove(idx);
                debug(self.debug, format!("post-stop handler exited with {code}"));
                continue;
            }
            let Some(idx) = st.running.iter().position(|r| r.pid == pid) else {
                // An orphan of some app: reaped, nothing to record.
                continue;
            };
            let app = st.running.remove(idx);
            debug(self.debug, format!("app {:?} exited with {code}", app.name));
            // Not when the supervisor itself sent SIGKILL (stop, app stop).
            let own_kill = st.stopping || st.pending_stops.iter().any(|p| p.app == app.name);
            if matches!(ws, WaitStatus::Signaled(_, Signal::SIGKILL, _)) && !own_kill {
                self.explain_kill(&app);
            }
            if let Err(e) = status::write_exit_status(&self.stage1_rootfs, &app.name, code) {
                eprintln!("stage1: {e}");
            }
            if code != 0 && st.failure.is_none() && self.mutable.is_none() {
                st.failure = Some(code);
                begin_stop(st, Signal::SIGTERM);
            }
            exited.push(app);
        }
    }

    /// Says so when the OOM killer ended the app (otherwise a bare 137).
    fn explain_kill(&self, app: &Running) {
        let Some(cgroup) = &self.cgroup else {
            return;
        };
        let Some(before) = app.oom_kills_before else {
            return;
        };
        let name = app.name.as_str();
        if cgroup.app_oom_kills(name) <= before {
            return;
        }
        let limit = self
            .apps
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.resources.memory_bytes)
            .unwrap_or_default();
        eprintln!(
            "stage1: app {name:?} was killed by the kernel's OOM killer: it needs more than its {limit}-byte memory limit; raise --memory"
        );
    }

    /// Runs the app's post-stop handler and answers `app stop` requests
    /// waiting for it.
    fn after_exit(&self, app: Running, st: &mut State) {
        let name = app.name.clone();
        let hook = self.spawn_post_stop(app);
        if hook.is_some() && st.killed {
            // Started after the kill timer: a handler that hangs must not
            // hold the pod forever, so the timer runs once more for it.
            alarm::set(STOP_GRACE.as_secs() as u32);
        }
        st.hooks.extend(hook);
        let (done, waiting) = std::mem::take(&mut st.pending_stops)
            .into_iter()
            .partition(|p| p.app == name);
        st.pending_stops = waiting;
        for p in done {
            control::reply(p.conn, &Response::ok());
        }
    }

    /// The control socket of a mutable pod, in the stage1 rootfs.
    fn listen(&self) -> Result<UnixListener, SupervisorError> {
        let path = self.stage1_rootfs.join(CONTROL_SOCKET);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| SupervisorError::Listen {
                path: path.clone(),
                source,
            })?;
        // Root only: it controls the pod.
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        Ok(listener)
    }

    /// Answers every waiting connection.
    fn serve(&mut self, listener: &UnixListener, st: &mut State) {
        while let Ok((mut conn, _)) = listener.accept() {
            let request = match control::read_request(&mut conn) {
                Ok(r) => r,
                Err(e) => {
                    control::reply(conn, &Response::error(1, e.to_string()));
                    continue;
                }
            };
            debug(self.debug, format!("control request {request:?}"));
            let answer = match request {
                Request::Add { app, .. } | Request::Start { app } if st.stopping => Err(
                    Response::error(1, format!("the pod is stopping; app {app:?} cannot start")),
                ),
                Request::Add {
                    app,
                    runtime,
                    image,
                    volumes,
                } => self.add(app, *runtime, *image, &volumes),
                Request::Start { app } => self.start_added(&app, st),
                Request::Rm { app } => self.remove(&app, st),
                Request::Stop { app } => match st.running.iter().find(|r| r.name == app) {
                    Some(r) => {
                        signal_app(self.cgroup.as_ref(), r, Signal::SIGTERM);
                        st.pending_stops.push(PendingStop {
                            app,
                            conn,
                            kill_at: Some(Instant::now() + STOP_GRACE),
                        });
                        continue;
                    }
                    None => Err(Response::error(
                        control::NOT_RUNNING,
                        format!("app {app:?} is not running"),
                    )),
                },
            };
            control::reply(conn, &answer.err().unwrap_or_else(Response::ok));
        }
    }

    /// Plans an app whose rootfs and staged volumes the `app add`
    /// entrypoint put in the pod, and creates its cgroup.
    fn add(
        &mut self,
        name: String,
        runtime: RuntimeApp,
        image: ImageManifest,
        volumes: &[Volume],
    ) -> Result<(), Response> {
        let fail = |m: String| Response::error(1, m);
        let Some(args) = &self.mutable else {
            return Err(fail("the pod is not mutable".into()));
        };
        if self.apps.iter().any(|a| a.name == name) {
            return Err(fail(format!("the pod already has an app named {name:?}")));
        }
        let app = runtime
            .app
            .clone()
            .or_else(|| image.app.clone())
            .ok_or_else(|| fail(PodError::NoApp(name.clone()).to_string()))?;
        let pod_app = PodApp {
            rootfs: self.stage1_rootfs.join(pod_dir::app_rootfs(&name)),
            name: name.clone(),
            runtime,
            image,
            app,
        };
        let paths = PodPaths {
            pod_dir: self.stage1_rootfs.clone(),
            stage1_rootfs: self.stage1_rootfs.clone(),
        };
        let mut launch =
            plan_app(&paths, volumes, &pod_app, args, None).map_err(|e| fail(e.to_string()))?;
        podroot::use_staged_volumes(&mut launch);
        if let Some(cgroup) = &self.cgroup {
            cgroup
                .create_app(&name, &launch.resources)
                .map_err(|e| fail(format!("cannot create the cgroup of app {name:?}: {e}")))?;
        }
        status::mark_created(&self.stage1_rootfs, &name).map_err(|e| fail(e.to_string()))?;
        self.apps.push(launch);
        Ok(())
    }

    /// Starts an added app (again, after it exited).
    fn start_added(&self, name: &str, st: &mut State) -> Result<(), Response> {
        let fail = |m: String| Response::error(1, m);
        let idx = self.app_index(name)?;
        if st.running.iter().any(|r| r.name == name) {
            return Err(fail(format!("app {name:?} is already running")));
        }
        // A fresh run: the previous exit code no longer applies.
        let _ = std::fs::remove_file(status::status_dir(&self.stage1_rootfs).join(name));
        match self.start(idx, st) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(fail(why)),
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// Forgets a stopped app: unmounts its rootfs and volumes in the pod and
    /// removes its cgroup.
    fn remove(&mut self, name: &str, st: &State) -> Result<(), Response> {
        let fail = |m: String| Response::error(1, m);
        let idx = self.app_index(name)?;
        if st.running.iter().any(|r| r.name == name) {
            return Err(fail(format!(
                "app {name:?} is running; stop it first (rkt app stop)"
            )));
        }
        for dir in [
            self.stage1_rootfs.join(pod_dir::app_rootfs(name)),
            podroot::staged_volumes_dir(&self.stage1_rootfs, name),
        ] {
            mnt::unmount_all_under(&dir).map_err(|e| fail(e.to_string()))?;
        }
        if let Some(cgroup) = &self.cgroup {
            cgroup
                .remove_app(name)
                .map_err(|e| fail(format!("cannot remove the cgroup of app {name:?}: {e}")))?;
        }
        let _ = std::fs::remove_file(self.stage1_rootfs.join(APP_PIDS_DIR).join(name));
        self.apps.remove(idx);
        Ok(())
    }

    fn app_index(&self, name: &str) -> Result<usize, Response> {
        self.apps
            .iter()
            .position(|a| a.name == name)
            .ok_or_else(|| Response::error(1, format!("the pod has no app named {name:?}")))
    }

    /// Starts the app's post-stop handler in its mount namespace, when it
    /// has one; best effort: a failure is only reported.
    fn spawn_post_stop(&self, exited: Running) -> Option<Pid> {
        let app = self.apps.iter().find(|a| a.name == exited.name)?;
        let argv = app.handlers.post_stop.as_ref()?;
        let ns = exited.mnt_ns?;
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

    /// Forks the app; why it failed before exec, if it did (a failing
    /// pre-start handler counts as started: the app exits with its code),
    /// and its mount namespace when it has a post-stop handler.
    fn launch(
        &self,
        app: &AppLaunch,
        output: Option<&OutputMux>,
    ) -> Result<Launched, SupervisorError> {
        let (failed_r, failed_w) = pipe2(OFlag::O_CLOEXEC).map_err(SupervisorError::Pipe)?;
        let handoff = if app.handlers.post_stop.is_some() {
            Some(NsHandoff::new()?)
        } else {
            None
        };
        let pipes = output.map(|o| o.app_output(&app.name)).transpose()?;
        match fork()? {
            ForkResult::Child => {
                drop(failed_r);
                let err = match redirect_output(pipes).and_then(|()| self.become_app(app, handoff))
                {
                    Ok(never) => match never {},
                    Err(e) => e,
                };
                let message = format!("app {:?}: {err}", app.name);
                let _ = write(&failed_w, message.as_bytes());
                fail(message)
            }
            ForkResult::Parent { child } => {
                drop(failed_w);
                drop(pipes);
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
                    error: failure_before_exec(failed_r),
                    mnt_ns,
                })
            }
        }
    }

    fn become_app(
        &self,
        app: &AppLaunch,
        handoff: Option<NsHandoff>,
    ) -> Result<Infallible, SupervisorError> {
        // Before pivot_root, while the host's /sys/fs/cgroup is visible;
        // pid 0 means "the writer", whatever PID namespace it is in.
        if let Some(cgroup) = &self.cgroup {
            cgroup.join_app(&app.name, Pid::from_raw(0))?;
        }
        app.root.enter()?;
        match app.interactive {
            true => take_terminal()?,
            false => detach_from_terminal()?,
        }
        if let Some(h) = handoff {
            h.give();
        }
        chdir(&app.workdir).map_err(|errno| SupervisorError::Workdir {
            path: app.workdir.clone(),
            errno,
        })?;
        if let Some(argv) = &app.handlers.pre_start {
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

/// Sends `sig` to every app and starts the kill timer once.
fn begin_stop(st: &mut State, sig: Signal) {
    stop_all(&st.running, sig);
    if !st.stopping {
        st.stopping = true;
        alarm::set(STOP_GRACE.as_secs() as u32);
    }
}

fn on_signal(sig: Signal, st: &mut State) {
    match sig {
        Signal::SIGALRM => {
            st.killed = true;
            stop_all(&st.running, Signal::SIGKILL);
            for pid in &st.hooks {
                let _ = kill(*pid, Signal::SIGKILL);
            }
        }
        Signal::SIGTERM | Signal::SIGINT => begin_stop(st, sig),
        sig if FORWARDED.contains(&sig) => stop_all(&st.running, sig),
        _ => {}
    }
}

/// SIGKILL for apps whose `app stop` grace period is over.
fn kill_overdue(st: &mut State, cgroup: Option<&PodCgroup>) {
    let now = Instant::now();
    for p in &mut st.pending_stops {
        if p.kill_at.is_some_and(|at| at <= now) {
            p.kill_at = None;
            if let Some(r) = st.running.iter().find(|r| r.name == p.app) {
                signal_app(cgroup, r, Signal::SIGKILL);
            }
        }
    }
}

/// Signals app `r`: its first process and everything else in its cgroup
/// (what it forked, what `rkt enter` started in it), as stopping rkt's
/// app unit did.
fn signal_app(cgroup: Option<&PodCgroup>, r: &Running, sig: Signal) {
    let _ = kill(r.pid, sig);
    // Read in the pod's PID namespace: processes outside it read as 0.
    let others = cgroup
        .and_then(|c| c.app_pids(&r.name).ok())
        .unwrap_or_default();
    for pid in others.into_iter().filter(|&p| p > 0 && p != r.pid.as_raw()) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// Waits until a signal or a control connection arrives, or the next
/// `app stop` deadline; which of the two are ready.
fn wait_events(
    sfd: &SignalFd,
    listener: Option<&UnixListener>,
    st: &State,
    trimmed: &mut bool,
) -> Result<(bool, bool), SupervisorError> {
    // On the stack: nothing to allocate between the trim and the wait.
    let mut fds = [
        PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        PollFd::new(
            listener.map_or(sfd.as_fd(), |l| l.as_fd()),
            PollFlags::POLLIN,
        ),
    ];
    let fds = &mut fds[..1 + usize::from(listener.is_some())];
    let deadline = st.pending_stops.iter().filter_map(|p| p.kill_at).min();
    let as_timeout = |wait: Option<Duration>| {
        wait.map_or(PollTimeout::NONE, |w| {
            PollTimeout::try_from(w.as_millis().min(60_000) as i32 + 1).unwrap_or(PollTimeout::MAX)
        })
    };
    let wait = deadline.map(|at| at.saturating_duration_since(Instant::now()));
    let mut timeout = match *trimmed {
        true => as_timeout(wait),
        false => as_timeout(Some(
            wait.map_or(IDLE_BEFORE_TRIM, |w| w.min(IDLE_BEFORE_TRIM)),
        )),
    };
    loop {
        match poll(fds, timeout) {
            Ok(0) if !*trimmed => {
                // A second without events: from here on PID 1 mostly
                // waits, and its setup code need not stay resident in
                // every pod (not earlier: a short-lived pod should not pay
                // for it). Straight back to the wait, so little code runs
                // (and is mapped back in) in between.
                crate::residency::drop_clean_file_pages();
                *trimmed = true;
                timeout = as_timeout(wait.map(|w| w.saturating_sub(IDLE_BEFORE_TRIM)));
            }
            Ok(_) | Err(Errno::EINTR) => break,
            Err(errno) => return Err(SupervisorError::Wait(errno)),
        }
    }
    let ready = |fd: Option<&PollFd>| {
        fd.and_then(|f| f.revents())
            .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR))
    };
    Ok((ready(fds.first()), ready(fds.get(1))))
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

/// Gives a non-interactive app a session of its own and /dev/null as
/// stdin: the caller's terminal is no longer its controlling one, so it
/// can neither read it nor push input into it (TIOCSTI).
fn detach_from_terminal() -> Result<(), SupervisorError> {
    setsid().map_err(SupervisorError::Terminal)?;
    let null = nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(SupervisorError::Terminal)?;
    dup2(null, 0).map_err(SupervisorError::Terminal)?;
    let _ = nix::unistd::close(null);
    Ok(())
}

/// Gives an interactive app a session of its own whose controlling
/// terminal is its stdin when that is one (the pod's terminal): ^C and
/// window-size changes reach it, and nothing else in the pod.
fn take_terminal() -> Result<(), SupervisorError> {
    setsid().map_err(SupervisorError::Terminal)?;
    if nix::unistd::isatty(0).unwrap_or(false) {
        // SAFETY: TIOCSCTTY on stdin with argument 0 (do not steal).
        unsafe { set_controlling_terminal(0, 0) }.map_err(SupervisorError::Terminal)?;
    }
    Ok(())
}

nix::ioctl_write_int_bad!(set_controlling_terminal, libc::TIOCSCTTY);

/// Makes the app's own pipes its stdout and stderr.
fn redirect_output(pipes: Option<AppOutput>) -> Result<(), SupervisorError> {
    let Some(pipes) = pipes else {
        return Ok(());
    };
    for (fd, target) in [(&pipes.stdout, 1), (&pipes.stderr, 2)] {
        dup2(fd.as_raw_fd(), target).map_err(SupervisorError::Redirect)?;
    }
    Ok(())
}

/// What the child reported on the pipe when it failed before exec
/// (`None` once it exec'd: the pipe closes without a word).
fn failure_before_exec(pipe: OwnedFd) -> Option<String> {
    let mut file = File::from(pipe);
    let mut message = Vec::new();
    let _ = file.read_to_end(&mut message);
    (!message.is_empty()).then(|| String::from_utf8_lossy(&message).into_owned())
}
