//! fly `enter` entrypoint: runs a command inside the running app, in its
//! mount namespace and chroot, with its environment and credentials.
//! The command's exit code is `rkt enter`'s (we exec it).

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::AsFd;

use abi::stage1::EnterArgs;
use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir};
use stage1_common::enter::{prepare_in_root, EnterCommand};
use stage1_common::env;
use stage1_common::pod::Pod;
use stage1_common::user;
use stage1_fly::{exec, fail};

fn main() {
    match run() {
        Ok(never) => match never {},
        Err(e) => fail(format!("{e:#}")),
    }
}

fn run() -> Result<Infallible> {
    let args = EnterArgs::parse(std::env::args().skip(1)).context("invalid enter arguments")?;
    if args.pid <= 1 {
        bail!("invalid --pid={}; pass the pid of the pod's app", args.pid);
    }
    let cwd = std::env::current_dir().context("cannot determine the pod directory (cwd)")?;
    let pod = Pod::load(&cwd)?;
    let app = match (args.app_name.as_str(), pod.apps.as_slice()) {
        ("", [only]) => only,
        ("", _) => bail!("the pod has several apps; pass --appname"),
        (name, _) => pod.app(name)?,
    };
    // `run` wrote it in the stage1 rootfs, which for overlay pods is mounted
    // only in the pod's mount namespace: read it there, by absolute path
    // (setns resets cwd and root to the namespace's).
    let stage1_rootfs = pod.stage1_rootfs();

    // Everything under /proc/<pid> must be opened before switching
    // namespaces: the app's root is reachable only through this handle.
    let proc_dir = format!("/proc/{}", args.pid);
    let mnt_ns = File::open(format!("{proc_dir}/ns/mnt")).with_context(|| {
        format!(
            "cannot open the mount namespace of pid {}; is the pod running?",
            args.pid
        )
    })?;
    let root = open(
        format!("{proc_dir}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("cannot open the root of pid {}", args.pid))?;
    setns(mnt_ns.as_fd(), CloneFlags::CLONE_NEWNS)
        .context("cannot join the app's mount namespace")?;
    let environment = env::enter_environment(&stage1_rootfs, &app.name, &app.app)?;
    fchdir(root).context("cannot enter the app's root")?;
    chroot(".").context("cannot chroot into the app's root")?;
    chdir("/").context("cannot chdir to /")?;

    let EnterCommand {
        creds,
        path,
        argv: command,
    } = prepare_in_root(app, &args.command, environment.search_path())?;
    user::apply_credentials(&creds)?;
    Ok(exec(&path, &command, &environment.to_strings())?)
}
