//! fly `run` entrypoint: sets up the single app of the pod and execs it, so
//! the exit code of `rkt run` is the app's.
//!
//! stage0 starts it with cwd = the pod directory and the pod lock in
//! `RKT_LOCK_FD`; the lock fd is inherited by the app and keeps the pod
//! "running" until it exits.

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use abi::stage1::RunArgs;
use anyhow::{bail, Context, Result};
use nix::mount::MsFlags;
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{chdir, chroot, getpgrp, getpid, setpgid, Pid};
use stage1_common::mount::{self, Propagation};
use stage1_common::paths::{path_inside, resolve_exec, resolve_in_root};
use stage1_common::pod::{Pod, PodApp};
use stage1_common::{env, etc, lockfd, status, user, volumes};
use stage1_fly::{check_net, debug, exec, fail};

/// Host trees bound recursively into the app, as rkt's fly does.
const HOST_BINDS: [&str; 3] = ["/dev", "/proc", "/sys"];

fn main() {
    match run() {
        Ok(never) => match never {},
        Err(e) => fail(format!("{e:#}")),
    }
}

fn run() -> Result<Infallible> {
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

    // Own process group so `stop` can signal the app and its children.
    setpgid(Pid::from_raw(0), Pid::from_raw(0)).context("setpgid failed")?;

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

    let pod_fd = File::open(&pod.dir).with_context(|| format!("cannot open {:?}", pod.dir))?;
    chroot(rootfs).with_context(|| format!("cannot chroot into {rootfs:?}"))?;
    chdir(&workdir).with_context(|| format!("cannot enter working directory {workdir:?}"))?;
    // Only now: once `pid` exists, `enter` may join us and must find the
    // app's root, not the host's.
    status::write_pid_files_at(pod_fd.as_fd(), getpid().as_raw(), Some(getpgrp().as_raw()))?;
    drop(pod_fd);
    user::apply_credentials(&creds)?;
    lockfd::keep_lock_across_exec(lock_fd)?;
    Ok(exec(&exec_path, &app.app.exec, &environment.to_strings())?)
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
    let wd = app
        .app
        .working_directory
        .as_deref()
        .filter(|w| !w.is_empty())
        .unwrap_or("/");
    let host = resolve_in_root(rootfs, Path::new(wd))?;
    if !host.is_dir() {
        bail!(
            "working directory {wd:?} of app {:?} does not exist in its rootfs; create it in the image or change --working-dir",
            app.name
        );
    }
    Ok(path_inside(rootfs, &host))
}
