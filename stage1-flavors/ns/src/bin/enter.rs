//! ns `enter` entrypoint: runs a command in a running app, in all of its
//! namespaces (IPC, UTS, network, PID, mount: the mount namespace brings its
//! root), with its environment and credentials. The command runs as a
//! child (joining a PID namespace applies only to children); its exit code
//! is `rkt enter`'s.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use abi::pod_dir;
use abi::stage1::EnterArgs;
use anyhow::{bail, Context, Result};
use nix::sched::{setns, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{chdir, ForkResult, Pid};
use stage1_common::cgroups::{Cgroups, Parent, PodCgroup};
use stage1_common::enter::{prepare_in_root, EnterCommand};
use stage1_common::env;
use stage1_common::pod::Pod;
use stage1_common::status::read_number_file;
use stage1_common::user;
use stage1_ns::signals::exit_code;
use stage1_ns::{exec, fail, fork, procfs, APP_PIDS_DIR};

/// How long to wait for an app that is still starting.
const START_WAIT: Duration = Duration::from_secs(5);

/// The namespaces joined, mount last (it changes our root).
const NAMESPACES: [(&str, CloneFlags); 5] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(format!("{e:#}")),
    }
}

fn run() -> Result<i32> {
    let args = EnterArgs::parse(std::env::args().skip(1)).context("invalid enter arguments")?;
    if args.pid <= 1 {
        bail!(
            "invalid --pid={}; pass the pid of the pod's PID 1",
            args.pid
        );
    }
    let cwd = std::env::current_dir().context("cannot determine the pod directory (cwd)")?;
    let pod = Pod::load(&cwd)?;
    let app = match (args.app_name.as_str(), pod.apps.as_slice()) {
        ("", [only]) => only,
        ("", _) => bail!("the pod has several apps; pass --app"),
        (name, _) => pod.app(name)?,
    };
    // The pod's PID 1 has the stage1 rootfs as its root (for overlay pods
    // it is mounted only in the pod's mount namespace).
    let s1 = PathBuf::from(format!("/proc/{}/root", args.pid));
    let host_pid = app_pid(&s1, args.pid, &app.name)?;
    let environment = env::enter_environment(&s1, &app.name, &app.app)?;

    // Opened first: once in the app's mount namespace the host's /proc is
    // out of reach.
    // A `--private-users` pod: its user namespace first, which owns the
    // others (joining one's own is an error, hence only when it differs).
    let user_ns = format!("/proc/{host_pid}/ns/user");
    let join_user =
        std::fs::read_link(&user_ns).ok() != std::fs::read_link("/proc/self/ns/user").ok();
    let user = [("user", CloneFlags::CLONE_NEWUSER)];
    let ns_files = user
        .iter()
        .filter(|_| join_user)
        .chain(NAMESPACES.iter())
        .map(|(kind, flag)| {
            let path = format!("/proc/{host_pid}/ns/{kind}");
            File::open(&path)
                .map(|f| (f, *flag, *kind))
                .with_context(|| format!("cannot open {path}; did the app exit?"))
        })
        .collect::<Result<Vec<_>>>()?;
    // Its cgroup too (limits and accounting apply to what runs in it),
    // while the host's /sys/fs/cgroup is in reach.
    join_app_cgroup(&app.name)?;
    for (file, flag, kind) in &ns_files {
        setns(file.as_fd(), *flag)
            .with_context(|| format!("cannot join the app's {kind} namespace"))?;
    }
    chdir("/").context("cannot chdir to the app's root")?;

    let EnterCommand {
        creds,
        path,
        argv: command,
    } = prepare_in_root(app, &args.command, environment.search_path())?;
    match fork()? {
        ForkResult::Child => {
            let err = user::apply_credentials(&creds)
                .map_err(anyhow::Error::from)
                .and_then(|()| Ok(exec(&path, &command, &environment.to_strings())?));
            match err {
                Ok(never) => match never {},
                Err(e) => fail(format!("{e:#}")),
            }
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(st) => {
                    if let Some(code) = exit_code(st) {
                        return Ok(code);
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => bail!("cannot wait for the command: {e}"),
            }
        },
    }
}

/// Moves this process into the app's cgroup, found through the pod's
/// `subcgroup` file (absent when the pod's cgroups could not be created).
fn join_app_cgroup(app: &str) -> Result<()> {
    let subcgroup = match std::fs::read_to_string(pod_dir::SUBCGROUP) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).context("cannot read the pod's subcgroup file"),
    };
    let manager = Cgroups::detect(Parent::Root).context("cannot use the host's cgroups")?;
    PodCgroup::open(manager, Path::new(subcgroup.trim()))
        .and_then(|cg| cg.join_app(app, Pid::from_raw(0)))
        .with_context(|| format!("cannot join the cgroup of app {app:?}"))
}

/// The host pid of the app's first process, waiting a little for an app
/// that is still starting.
fn app_pid(s1: &Path, pod_pid: i32, app: &str) -> Result<i32> {
    let file = s1.join(APP_PIDS_DIR).join(app);
    let deadline = Instant::now() + START_WAIT;
    loop {
        if let Some(inner) = read_number_file(&file)?.and_then(|n| i32::try_from(n).ok()) {
            return procfs::find_child(Path::new("/proc"), pod_pid, inner).with_context(|| {
                format!("app {app:?} is not running (it exited); nothing to enter")
            });
        }
        if Instant::now() >= deadline {
            bail!("app {app:?} has not started; is the pod running?");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
