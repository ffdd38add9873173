//! fly `run` entrypoint: sets up the single app of the pod, forks it off and
//! waits for it, so the exit code of `rkt run` is the app's and
//! `rkt/status/<app>` records it.
//!
//! stage0 starts it with cwd = the pod directory and the pod lock in
//! `RKT_LOCK_FD`; this process (the waiter) keeps the lock, and with it the
//! pod "running", until the app has exited.

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use abi::stage1::RunArgs;
use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{
    chdir, chroot, getpgrp, getpid, getppid, pipe2, read, setpgid, write, ForkResult, Pid,
};
use stage1_common::env::Environment;
use stage1_common::mount::{self, Propagation};
use stage1_common::paths::{path_inside, resolve_exec, resolve_in_root};
use stage1_common::pod::{Pod, PodApp};
use stage1_common::user::Credentials;
use stage1_common::{env, etc, lockfd, status, user, volumes};
use stage1_fly::terminal::Terminal;
use stage1_fly::waiter::{self, BlockedSignals};
use stage1_fly::{check_net, debug, exec, fail, fork, STAGE1_ERROR_EXIT};

/// Host trees bound recursively into the app, as rkt's fly does.
const HOST_BINDS: [&str; 3] = ["/dev", "/proc", "/sys"];

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(format!("{e:#}")),
    }
}

fn run() -> Result<i32> {
    let args = RunArgs::parse(std::env::args().skip(1)).context("invalid run arguments")?;
    let dbg = args.debug;
    check_net(&args.net)?;
    if args.private_users.is_some() {
        bail!("fly does not support --private-users; use the default stage1 for user namespaces");
    }
    if args.hostname.is_some() {
        debug(
            dbg,
            "fly shares the host's UTS namespace; ignoring --hostname",
        );
    }
    let lock_fd = lockfd::lock_fd_from_env()?;
    let cwd = std::env::current_dir().context("cannot determine the pod directory (cwd)")?;
    let pod = Pod::load(&cwd)?;
    let app = single_app(&pod)?;
    let rootfs = &app.rootfs;
    if !rootfs.is_dir() {
        bail!("app rootfs {rootfs:?} is missing; the pod was not prepared correctly");
    }

    let creds = user::resolve_credentials(rootfs, &app.app)
        .with_context(|| format!("cannot resolve the user/group of app {:?}", app.name))?;
    let environment = env::compose(&app.name, &app.app, None);
    let exec_path = resolve_exec(rootfs, &app.app.exec[0], environment.search_path())?;
    let mounts = volumes::plan_mounts(&pod.manifest.volumes, app)?;
    debug(
        dbg,
        format!("app {:?} exec {exec_path:?} as {creds:?}", app.name),
    );

    // A private mount namespace, slave of the host's: host mounts still show
    // up, ours never leak back and vanish when the app exits.
    unshare(CloneFlags::CLONE_NEWNS).context("cannot create a mount namespace")?;
    mount::set_propagation(Path::new("/"), Propagation::Slave, true)?;

    if app.runtime.read_only_root_fs {
        // Make the rootfs a mount point now; it is turned read-only last,
        // after the targets below have been created in it.
        mount::bind(rootfs, rootfs, false)?;
    }
    for host in HOST_BINDS {
        let target = resolve_in_root(rootfs, Path::new(host))?;
        std::fs::create_dir_all(&target).with_context(|| format!("cannot create {target:?}"))?;
        mount::bind(Path::new(host), &target, true)?;
    }
    let tmp = resolve_in_root(rootfs, Path::new("/tmp"))?;
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {tmp:?}"))?;
    mount::mount_tmpfs(&tmp, MsFlags::MS_NOSUID | MsFlags::MS_NODEV, "mode=1777")?;

    volumes::mount_volumes(&pod.dir, rootfs, &mounts, false)?;
    let stage1_rootfs = pod.stage1_rootfs();
    etc::setup_resolv(args.dns_conf_mode.resolv, &stage1_rootfs, rootfs)?;
    etc::setup_hosts(args.dns_conf_mode.hosts, &stage1_rootfs, rootfs)?;
    etc::ensure_mtab(rootfs)?;
    environment.write_file(&env::env_file_path(&stage1_rootfs, &app.name))?;

    let workdir = working_dir(rootfs, app)?;
    if app.runtime.read_only_root_fs {
        mount::remount_readonly(rootfs, false)?;
    }

    status::mark_started(&stage1_rootfs, &app.name)?;

    // Opened now: the app's chroot hides these paths from the child, and
    // the std handles are close-on-exec, so the app inherits neither.
    let pod_fd = File::open(&pod.dir).with_context(|| format!("cannot open {:?}", pod.dir))?;
    let status_dir = status::status_dir(&stage1_rootfs);
    let status_fd =
        File::open(&status_dir).with_context(|| format!("cannot open {status_dir:?}"))?;
    let terminal = Terminal::controlling_stdin();
    let signals = BlockedSignals::block()?;
    // Written to only if the child fails before exec, so that a setup error
    // is not recorded as the app's exit status.
    let (failed_r, failed_w) = pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let app_proc = AppProcess {
        exec_path: &exec_path,
        app,
        environment: &environment,
        rootfs,
        workdir: &workdir,
        creds: &creds,
        pod_fd,
        lock_fd,
        signals: &signals,
        terminal,
    };
    let child = match fork()? {
        ForkResult::Child => {
            drop(failed_r);
            let err = match app_proc.exec() {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = write(&failed_w, b"x");
            fail(format!("{err:#}"))
        }
        ForkResult::Parent { child } => child,
    };
    drop(failed_w);
    drop(app_proc);
    // Blocks until the child has exec'd the app (the close-on-exec pipe
    // closes) or reported a setup failure.
    if failed_before_exec(failed_r) {
        // The child printed why; reap it.
        let _ = waiter::wait_for(child, &signals, terminal);
        return Ok(STAGE1_ERROR_EXIT);
    }
    debug(dbg, format!("app {:?} runs as pid {child}", app.name));
    // `rkt status --wait-ready`: for fly, ready means the app is running.
    if let Err(e) = status::mark_ready(&stage1_rootfs) {
        eprintln!("stage1: {e}");
    }

    let code = waiter::wait_for(child, &signals, terminal)?;
    if let Err(e) = status::write_exit_status_at(status_fd.as_fd(), &app.name, code) {
        // The app's code is still what `rkt run` must return.
        eprintln!("stage1: {e}");
    }
    debug(dbg, format!("app {:?} exited with {code}", app.name));
    Ok(code)
}

/// Everything the forked child needs to become the app.
struct AppProcess<'a> {
    exec_path: &'a str,
    app: &'a PodApp,
    environment: &'a Environment,
    rootfs: &'a Path,
    workdir: &'a Path,
    creds: &'a Credentials,
    pod_fd: File,
    lock_fd: RawFd,
    signals: &'a BlockedSignals,
    terminal: Option<Terminal>,
}

impl AppProcess<'_> {
    fn exec(self) -> Result<Infallible> {
        let waiter = getppid();
        let parent_group = getpgrp();
        // Own process group so `stop` can signal the app and its children
        // without reaching the waiter.
        setpgid(Pid::from_raw(0), Pid::from_raw(0)).context("setpgid failed")?;
        let own = getpgrp();
        if let Some(t) = self.terminal {
            // Keep an interactive app in the foreground, as it was before
            // the new group; SIGTTOU is still blocked here.
            t.pass_on(parent_group, own)?;
        }
        let rootfs = self.rootfs;
        chroot(rootfs).with_context(|| format!("cannot chroot into {rootfs:?}"))?;
        let workdir = self.workdir;
        chdir(workdir).with_context(|| format!("cannot enter working directory {workdir:?}"))?;
        // Only now: once `pid` exists, `enter` may join us and must find the
        // app's root, not the host's.
        status::write_pid_files_at(self.pod_fd.as_fd(), getpid().as_raw(), Some(own.as_raw()))?;
        drop(self.pod_fd);
        user::apply_credentials(self.creds)?;
        // The app dies with its waiter: the pod runs exactly while the waiter
        // holds the lock. Set after the credential change, which clears it.
        // SAFETY: prctl with an integer argument; no memory is passed.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
            bail!(
                "cannot set the parent-death signal: {}",
                std::io::Error::last_os_error()
            );
        }
        if getppid() != waiter {
            bail!("the waiter exited before the app started");
        }
        // The waiter holds the pod lock for as long as the app runs.
        lockfd::set_cloexec(self.lock_fd, true)?;
        self.signals.restore()?;
        let argv = &self.app.app.exec;
        Ok(exec(self.exec_path, argv, &self.environment.to_strings())?)
    }
}

/// Whether the child reported a failure before exec on the pipe (it has
/// exited, so the read cannot block).
fn failed_before_exec(pipe: OwnedFd) -> bool {
    let mut byte = [0u8; 1];
    matches!(read(pipe.as_raw_fd(), &mut byte), Ok(1))
}

fn single_app(pod: &Pod) -> Result<&PodApp> {
    let [app] = pod.apps.as_slice() else {
        bail!(
            "fly runs exactly one app per pod, this pod has {}; use the default stage1 for several apps",
            pod.apps.len()
        );
    };
    if app.app.exec.first().is_none_or(String::is_empty) {
        bail!(
            "app {:?} has no exec; pass --exec or use an image whose app has one",
            app.name
        );
    }
    Ok(app)
}

/// The working directory as the app sees it, resolved inside its rootfs
/// (after volumes are mounted, since it may be one).
fn working_dir(rootfs: &Path, app: &PodApp) -> Result<PathBuf> {
    let wd = app.working_directory();
    let host = resolve_in_root(rootfs, Path::new(wd))?;
    if !host.is_dir() {
        bail!(
            "working directory {wd:?} of app {:?} does not exist in its rootfs; create it in the image or change --working-dir",
            app.name
        );
    }
    Ok(path_inside(rootfs, &host))
}
