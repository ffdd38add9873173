//! ns `run` entrypoint: plans every app, creates the pod's namespaces, forks
//! the supervisor as the pod's PID 1, writes `$pod/pid` and waits for it.
//!
//! stage0 starts it with cwd = the pod directory (in stage0's private mount
//! namespace, where the overlays are) and the pod lock in `RKT_LOCK_FD`.
//! This process and the supervisor hold the lock, and with it the pod
//! "running", until the supervisor exits; the apps never inherit it.

use std::io::stdin;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use abi::pod_dir;
use abi::stage1::RunArgs;
use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sched::unshare;
use nix::sys::prctl;
use nix::sys::signal::kill;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, read, sethostname, ttyname, ForkResult, Pid};
use stage1_common::cgroups::{Cgroups, Parent, PodCgroup};
use stage1_common::pod::Pod;
use stage1_common::{lockfd, status};
use stage1_ns::namespaces::{self, NetMode};
use stage1_ns::plan::{plan_app, PodPaths};
use stage1_ns::signals::{self, BlockedSignals, FORWARDED};
use stage1_ns::supervisor::{AppLaunch, Supervisor};
use stage1_ns::{debug, fail, fork};

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(format!("{e:#}")),
    }
}

fn run() -> Result<i32> {
    let args = RunArgs::parse(std::env::args().skip(1)).context("invalid run arguments")?;
    let net = NetMode::parse(&args.net)?;
    if args.private_users.is_some() {
        bail!("the ns stage1 does not support --private-users yet; drop it");
    }
    let lock_fd = lockfd::lock_fd_from_env()?;
    let cwd = std::env::current_dir().context("cannot determine the pod directory (cwd)")?;
    let pod = Pod::load(&cwd)?;
    if pod.apps.is_empty() && !args.mutable {
        bail!("the pod has no apps; add at least one image to run");
    }
    if args.interactive && pod.apps.len() != 1 {
        bail!(
            "--interactive needs exactly one app, this pod has {}",
            pod.apps.len()
        );
    }
    let stage1_rootfs = pod.stage1_rootfs();
    let hostname = args
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| namespaces::default_hostname(&args.uuid));
    write_hostname_file(&stage1_rootfs, &hostname)?;
    let console = if args.interactive {
        ttyname(stdin().as_fd()).ok()
    } else {
        None
    };
    let paths = PodPaths {
        pod_dir: pod.dir.clone(),
        stage1_rootfs: pod.stage1_rootfs(),
    };
    let apps = pod
        .apps
        .iter()
        .map(|app| plan_app(&paths, &pod.manifest.volumes, app, &args, console.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let cgroup = create_cgroups(&pod, &args.uuid, &apps)?;
    let code = run_pod(&pod, &args, lock_fd, hostname, net, apps, cgroup.clone());
    // The pod's processes are gone with its PID namespace; anything left
    // in its cgroups is killed and the directories go.
    if let Err(e) = cgroup.destroy() {
        eprintln!("stage1: cannot remove the pod's cgroups: {e}");
    }
    code
}

/// Creates the pod cgroup and every app's leaf with its limits, and records
/// the pod cgroup in `$pod/subcgroup` for `gc` (before `pid`, as rkt does).
fn create_cgroups(pod: &Pod, uuid: &str, apps: &[AppLaunch]) -> Result<PodCgroup> {
    let manager = Cgroups::detect(Parent::Root).context("cannot use the host's cgroups")?;
    let cgroup = PodCgroup::create(manager, uuid).context("cannot create the pod's cgroup")?;
    let made = apps.iter().try_for_each(|app| {
        cgroup
            .create_app(&app.name, &app.resources)
            .with_context(|| format!("cannot set up the cgroup of app {:?}", app.name))
    });
    let written = made.and_then(|()| {
        let path = pod.dir.join(pod_dir::SUBCGROUP);
        status::write_atomic(&path, cgroup.subcgroup().as_bytes())
            .with_context(|| format!("cannot write {path:?}"))
    });
    if let Err(e) = written {
        let _ = cgroup.destroy();
        return Err(e);
    }
    Ok(cgroup)
}

fn run_pod(
    pod: &Pod,
    args: &RunArgs,
    lock_fd: std::os::fd::RawFd,
    hostname: String,
    net: NetMode,
    apps: Vec<AppLaunch>,
    cgroup: PodCgroup,
) -> Result<i32> {
    let dbg = args.debug;
    let stage1_rootfs = pod.stage1_rootfs();

    // Only this process and the supervisor (by fork) hold the lock.
    lockfd::set_cloexec(lock_fd, true)?;
    let signals = BlockedSignals::block()?;
    unshare(namespaces::pod_namespaces(net, args.ipc))
        .context("cannot create the pod's namespaces")?;
    sethostname(&hostname).with_context(|| format!("cannot set the hostname {hostname:?}"))?;
    if net == NetMode::None {
        namespaces::loopback_up()?;
    }
    let mut supervisor = Supervisor {
        stage1_rootfs,
        apps,
        signals,
        debug: dbg,
        cgroup: Some(cgroup),
        mutable: args.mutable.then(|| args.clone()),
        rooted: None,
    };
    // Open in `run` for its whole life: EOF in the supervisor means `run`
    // is gone.
    let (alive_r, alive_w) =
        pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).context("cannot create a pipe")?;
    let (rooted_r, rooted_w) = pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let child = match fork()? {
        ForkResult::Child => {
            drop(rooted_r);
            supervisor.rooted = Some(rooted_w);
            match die_with(alive_r, alive_w).and_then(|()| Ok(supervisor.run()?)) {
                Ok(code) => std::process::exit(code),
                Err(e) => fail(format!("supervisor: {e}")),
            }
        }
        ForkResult::Parent { child } => child,
    };
    drop(rooted_w);
    debug(dbg, format!("pod PID 1 is pid {child}"));
    if let Some(cgroup) = &supervisor.cgroup {
        if let Err(e) = cgroup.join_supervisor(child) {
            let _ = kill(child, nix::sys::signal::Signal::SIGKILL);
            return Err(
                anyhow::Error::new(e).context("cannot move the pod's PID 1 into its cgroup")
            );
        }
    }
    // `pid` is how stage0 reaches into the pod (enter, app add): only once
    // PID 1 is in its own root. At EOF it failed; its exit says why.
    let _ = read(rooted_r.as_raw_fd(), &mut [0u8; 1]);
    drop(rooted_r);
    if let Err(e) = status::write_pid(&pod.dir, child.as_raw()) {
        let _ = kill(child, nix::sys::signal::Signal::SIGKILL);
        return Err(e.into());
    }
    let code = wait_for(child, &supervisor.signals);
    drop(alive_r);
    code
}

/// Ends the supervisor (and with it the pod's PID namespace) when `run`
/// dies: killing `rkt run` must not leave an unreachable pod behind.
fn die_with(alive_r: OwnedFd, alive_w: OwnedFd) -> Result<()> {
    drop(alive_w);
    // What `ps` in the pod shows as PID 1.
    let _ = prctl::set_name(c"supervisor");
    prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .context("cannot set the supervisor's parent-death signal")?;
    // `run` may have died before the prctl (EAGAIN: it is alive).
    if let Ok(0) = read(alive_r.as_raw_fd(), &mut [0u8; 1]) {
        std::process::exit(stage1_ns::STAGE1_ERROR_EXIT);
    }
    Ok(())
}

/// Waits for the supervisor, passing on termination signals; its exit code.
fn wait_for(child: Pid, signals: &BlockedSignals) -> Result<i32> {
    let fd = signals.signalfd()?;
    loop {
        loop {
            match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(st) => {
                    if let Some(code) = signals::exit_code(st) {
                        return Ok(code);
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => bail!("cannot wait for the pod's PID 1 (pid {child}): {e}"),
            }
        }
        if let Some(sig) = signals::next(&fd)? {
            if FORWARDED.contains(&sig) {
                let _ = kill(child, sig);
            }
        }
    }
}

fn write_hostname_file(stage1_rootfs: &Path, hostname: &str) -> Result<()> {
    let etc = stage1_rootfs.join("etc");
    std::fs::create_dir_all(&etc).with_context(|| format!("cannot create {etc:?}"))?;
    let path = etc.join("hostname");
    status::write_atomic(&path, format!("{hostname}\n").as_bytes())
        .with_context(|| format!("cannot write {path:?}"))
}
