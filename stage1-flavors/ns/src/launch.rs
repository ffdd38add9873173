//! The ns `run` entrypoint's work: plans every app, creates the pod's
//! namespaces, forks the supervisor as the pod's PID 1, writes `$pod/pid`
//! and waits for it.
//!
//! On the host ([`Placement::Host`]) stage0 starts it with cwd = the pod
//! directory (in stage0's private mount namespace, where the overlays are)
//! and the pod lock in `RKT_LOCK_FD`. This process and the supervisor hold
//! the lock, and with it the pod "running", until the supervisor exits; the
//! apps never inherit it.
//!
//! Inside a kvm pod's VM ([`Placement::Guest`]) the guest's init runs the
//! same pod the same way, on the pod directory shared from the host: the
//! host's `run` holds the lock, owns `pid` and `subcgroup` and set up the
//! networks, which are the VM's own.

use std::io::stdin;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::console::{PodConsole, Relay};
use crate::machine;
use crate::namespaces::{self, NetMode};
use crate::plan::{self, plan_app, PodPaths};
use crate::podjournal::PodJournal;
use crate::podroot;
use crate::signals::{self, BlockedSignals, FORWARDED};
use crate::supervisor::{AppLaunch, Supervisor};
use crate::{debug, fail};
use abi::pod_dir;
use abi::schema::Port;
use abi::stage1::ResolvMode;
use abi::stage1::{IdRange, RunArgs, HOST_MOUNT_NS_FD_ENV};
use anyhow::{bail, Context, Result};
use networking::dns;
use networking::pod::{self as podnet, PodNetSpec, PodNetwork};
use networking::portfwd;
use networking::request::NetRequest;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::prctl;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{close, isatty, pipe2, read, sethostname, ForkResult, Pid};
use stage1_common::cgroups::{Cgroups, Parent, PodCgroup};
use stage1_common::mount as mnt;
use stage1_common::pod::Pod;
use stage1_common::{lockfd, status};

/// Where the pod runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On the host, started by stage0: networks, lock, `pid`, `subcgroup`.
    Host,
    /// Inside a kvm pod's VM, whose network is the pod's: the host set up
    /// its networks (and, when `wrote_resolv_conf`, the resolv.conf of a
    /// CNI result) and holds the pod's lock and host-side files.
    Guest { wrote_resolv_conf: bool },
}

/// The `run` entrypoint: runs the pod and exits with its code.
pub fn main(placement: Placement) -> ! {
    match run(placement, std::env::args().skip(1)) {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(format!("{e:#}")),
    }
}

/// Runs the pod given `run`'s arguments; its exit code.
pub fn run(placement: Placement, args: impl IntoIterator<Item = String>) -> Result<i32> {
    let args = RunArgs::parse(args).context("invalid run arguments")?;
    let request = NetRequest::parse(&args.net)?;
    let net = match placement {
        Placement::Host => NetMode::of(&request),
        // The VM's network namespace is the pod's.
        Placement::Guest { .. } => NetMode::Host,
    };
    let lock_fd = match placement {
        Placement::Host => Some(lockfd::lock_fd_from_env()?),
        Placement::Guest { .. } => None,
    };
    let host_mounts = host_mounts_from_env()?;
    // Nothing the caller left open (a host directory, say) may reach the
    // pod: everything but stdio, the lock and stage0's namespace goes.
    close_inherited_fds(&[lock_fd, host_mounts.as_ref().map(AsRawFd::as_raw_fd)]);
    // Only this process holds the lock, not the CNI plugins it runs: the
    // supervisor closes it too, since an open directory of the host is a
    // way out of the pod.
    if let Some(lock_fd) = lock_fd {
        lockfd::set_cloexec(lock_fd, true)?;
    }
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
    let hostname = namespaces::pod_hostname(&args);
    // A guest cannot write the stage1's /etc: the host wrote it.
    if placement == Placement::Host {
        write_hostname_file(&stage1_rootfs, &hostname)?;
    }
    // Started first, so that it gets ready while the pod is set up. An
    // interactive app keeps the terminal to itself, as rkt's console did.
    let mut pod_journal = match args.interactive {
        true => None,
        false => PodJournal::start(&pod.dir, &args.uuid, &hostname).unwrap_or_else(|e| {
            eprintln!("stage1: {e}; the pod's output goes to stdout/stderr only");
            None
        }),
    };
    // Without a terminal, an interactive app reads `rkt run`'s stdin.
    let pod_console = match args.interactive && isatty(0).unwrap_or(false) {
        true => Some(PodConsole::open(stdin().as_fd())?),
        false => None,
    };
    let console = pod_console.as_ref().map(|c| c.path().to_path_buf());
    let paths = PodPaths {
        pod_dir: pod.dir.clone(),
        stage1_rootfs: pod.stage1_rootfs(),
    };
    let mut apps = pod
        .apps
        .iter()
        .map(|app| plan_app(&paths, &pod.manifest.volumes, app, &args, console.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let cgroup = create_cgroups(&pod, &args.uuid, &apps, placement)?;
    let setup = match net {
        NetMode::Cni => match setup_network(&pod, &args, &request, host_mounts.as_ref()) {
            Ok(setup) => Some(setup),
            Err(e) => {
                let _ = cgroup.destroy();
                return Err(e);
            }
        },
        NetMode::Host | NetMode::None => None,
    };
    // Held until the pod ends: this process lives exactly as long.
    let (network, _reserved_ports, wrote_resolv_conf) = match setup {
        Some(NetSetup {
            network,
            wrote_resolv_conf,
            reserved_ports,
        }) => (Some(network), reserved_ports, wrote_resolv_conf),
        None => (
            None,
            Vec::new(),
            placement
                == Placement::Guest {
                    wrote_resolv_conf: true,
                },
        ),
    };
    if wrote_resolv_conf {
        // DNS from a CNI result: the apps get it as if stage0 had
        // written it.
        for app in apps
            .iter_mut()
            .filter(|a| a.root.dns.resolv == ResolvMode::Default)
        {
            app.root.dns.resolv = ResolvMode::Stage0;
        }
    }
    drop(host_mounts);
    if let Some(token) = &args.mds_token {
        let told = match net {
            NetMode::None => Err(anyhow::anyhow!(
                "--mds-token with --net=none: the pod could not reach the metadata service; give it a network"
            )),
            _ => tell_metadata_url(&mut apps, &stage1_rootfs, network.as_ref(), token),
        };
        if let Err(e) = told {
            // As at the pod's end: no forward may outlive its reservation.
            if network.is_some() {
                let _ = podnet::stop_forwarding(&pod.dir, &args.uuid);
            }
            let _ = cgroup.destroy();
            return Err(e);
        }
    }
    let code = run_pod(
        &pod,
        &args,
        (lock_fd, placement),
        hostname,
        (net, network.as_ref()),
        apps,
        (cgroup.clone(), pod_journal.as_mut()),
        pod_console,
    );
    // Flushed once every app is gone, before `rkt run` returns.
    drop(pod_journal);
    if let Err(e) = machine::unregister(&args.uuid) {
        eprintln!("stage1: {e}");
    }
    if network.is_some() {
        // A host port forwarded to a pod that is gone would still take
        // the port's traffic (and its reservation ends with this process):
        // the rules go now; gc finds nothing left to remove.
        if let Err(e) = podnet::stop_forwarding(&pod.dir, &args.uuid) {
            eprintln!("stage1: {e}");
        }
    }
    // The pod's processes are gone with its PID namespace; anything left
    // in its cgroups is killed and the directories go.
    if let Err(e) = cgroup.destroy() {
        eprintln!("stage1: cannot remove the pod's cgroups: {e}");
    }
    code
}

/// Gives every app `AC_METADATA_URL`: the metadata service's port on the
/// host as the pod reaches it (the forwardable network's gateway; the
/// loopback address on the host's network), with the pod's token.
fn tell_metadata_url(
    apps: &mut [AppLaunch],
    stage1_rootfs: &Path,
    network: Option<&PodNetwork>,
    token: &str,
) -> Result<()> {
    let host = match network {
        Some(network) => network.forwardable_gateway().context(
            "--mds-register: the pod's network gives it no gateway to reach the metadata service on the host; use a network with a gateway (such as default)",
        )?,
        // The host's network (--net=none is refused by the caller).
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    if host.is_ipv6() {
        bail!("--mds-register: the pod's network has only an IPv6 gateway ({host}) and the metadata service listens on IPv4; use a network with IPv4");
    }
    let url = abi::metadata::app_url(host, token);
    for app in apps {
        plan::set_metadata_url(app, stage1_rootfs, &url)?;
    }
    Ok(())
}

/// Creates the pod cgroup and every app's leaf with its limits, and records
/// the pod cgroup in `$pod/subcgroup` for `gc` (before `pid`, as rkt does)
/// when the cgroups are the host's.
fn create_cgroups(
    pod: &Pod,
    uuid: &str,
    apps: &[AppLaunch],
    placement: Placement,
) -> Result<PodCgroup> {
    let manager = Cgroups::detect(Parent::Root).context("cannot use the host's cgroups")?;
    let cgroup = PodCgroup::create(manager, uuid).context("cannot create the pod's cgroup")?;
    let made = apps.iter().try_for_each(|app| {
        cgroup
            .create_app(&app.name, &app.resources)
            .with_context(|| format!("cannot set up the cgroup of app {:?}", app.name))
    });
    let written = made.and_then(|()| {
        if placement != Placement::Host {
            return Ok(());
        }
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

#[allow(clippy::too_many_arguments)]
fn run_pod(
    pod: &Pod,
    args: &RunArgs,
    (lock_fd, placement): (Option<RawFd>, Placement),
    hostname: String,
    (net, network): (NetMode, Option<&PodNetwork>),
    mut apps: Vec<AppLaunch>,
    (cgroup, pod_journal): (PodCgroup, Option<&mut PodJournal>),
    console: Option<PodConsole>,
) -> Result<i32> {
    let dbg = args.debug;
    let stage1_rootfs = pod.stage1_rootfs();
    let users =
        match args.private_users.as_deref() {
            Some(s) => Some(IdRange::parse(s).with_context(|| {
                format!("invalid --private-users={s:?}; expected <shift>:<count>")
            })?),
            None => None,
        };
    if users.is_some() && net == NetMode::Host {
        bail!("--private-users needs the pod's own network namespace (its root cannot use the host's); use --net=none");
    }

    // Whatever `run` mounts stays in a mount namespace of its own, gone with
    // it, whatever namespace it was started in.
    unshare(CloneFlags::CLONE_NEWNS).context("cannot create a mount namespace")?;
    mnt::set_propagation(Path::new("/"), mnt::Propagation::Slave, true)?;
    // Mount points of the pod's root, made by the host's root: with
    // `--private-users` the pod's root may not write the stage1 rootfs.
    for dir in ["proc", "dev", "sys"] {
        let path = stage1_rootfs.join(dir);
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {path:?}"))?;
    }
    // The pod's root must be a mount point (pivot_root). The supervisor
    // starts in it, as its cwd: a user namespace's root may not be able to
    // walk the pod directory's path.
    mnt::bind(&stage1_rootfs, &stage1_rootfs, true)?;
    // Connected here, on the host, where the socket's path is; once it is
    // there, the journal and its syslog socket go into the pod's root.
    let journal = pod_journal.and_then(|j| {
        let ready = j
            .connect(&args.uuid)
            .and_then(|journal| j.bind_into(&stage1_rootfs).map(|()| journal));
        ready
            .map_err(|e| eprintln!("stage1: {e}; the pod's output goes to stdout/stderr only"))
            .ok()
    });
    if let Some(users) = users {
        // Before any volume is bound below it: chown must not follow one.
        let runtime_dir = stage1_rootfs.join("rkt");
        shift_owner(&runtime_dir, users)?;
        cgroup
            .delegate(users.shift, users.shift)
            .context("cannot hand the pod's cgroups to its user namespace")?;
    }
    for app in &mut apps {
        podroot::stage_volumes(&stage1_rootfs, app)?;
    }
    std::env::set_current_dir(&stage1_rootfs)
        .with_context(|| format!("cannot enter {stage1_rootfs:?}"))?;

    let signals = BlockedSignals::block()?;
    let mut supervisor = Supervisor {
        stage1_rootfs,
        apps,
        signals,
        debug: dbg,
        cgroup: Some(cgroup),
        mutable: args.mutable.then(|| args.clone()),
        rooted: None,
        keep_logs: journal.is_none() && !args.interactive,
        journal,
    };
    // Open in `run` for its whole life: EOF in the supervisor means `run`
    // is gone.
    let (alive_r, alive_w) =
        pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).context("cannot create a pipe")?;
    let (rooted_r, rooted_w) = pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let (mapped_r, mapped_w) = pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let mut flags = namespaces::pod_namespaces(net, args.ipc);
    if users.is_some() {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    // A pod root in a user namespace cannot join a network namespace the
    // host's root owns, nor mount a sysfs for it or bring its loopback up:
    // `run` does all three in it, and the clone inherits it.
    let host_netns = match (users, network) {
        (Some(_), Some(network)) => Some(enter_for_user_namespace(
            network,
            &supervisor.stage1_rootfs,
        )?),
        _ => None,
    };
    let registering = machine::machined_may_run();
    let cloned = namespaces::clone_into(flags);
    if let (Err(_), Some(host)) = (&cloned, &host_netns) {
        let _ = setns(host, CloneFlags::CLONE_NEWNET);
    }
    let child = match cloned? {
        ForkResult::Child => {
            // The host's network namespace is `run`'s to return to only.
            drop((rooted_r, mapped_w, host_netns));
            if let Some(lock_fd) = lock_fd {
                let _ = close(lock_fd);
            }
            supervisor.rooted = Some(rooted_w);
            if let Some(console) = console {
                if let Err(e) = console.attach_stdio() {
                    fail(format!("supervisor: {e}"));
                }
            }
            // Credentials first: changing them clears the parent-death
            // signal that die_with sets.
            let started = (|| -> Result<()> {
                if let (Some(network), None) = (network, users) {
                    // Made before the pod: PID 1 joins it first (`run`
                    // stays in the host's, where its rules are removed).
                    setns(&network.netns, CloneFlags::CLONE_NEWNET)
                        .context("cannot join the pod's network namespace")?;
                }
                if users.is_some() || registering {
                    // The maps are written (and PID 1 is in the scope
                    // machined reads) once this returns, or `run` died.
                    let _ = read(mapped_r.as_raw_fd(), &mut [0u8; 1]);
                }
                if users.is_some() {
                    namespaces::become_root()
                        .context("cannot become root in the pod's user namespace")?;
                }
                Ok(())
            })()
            .and_then(|()| die_with(alive_r, alive_w))
            .and_then(|()| pod_identity(&hostname, net))
            .and_then(|()| Ok(supervisor.run()?));
            match started {
                Ok(code) => std::process::exit(code),
                Err(e) => fail(format!("supervisor: {e:#}")),
            }
        }
        ForkResult::Parent { child } => child,
    };
    if let Some(host) = &host_netns {
        if let Err(e) = setns(host, CloneFlags::CLONE_NEWNET) {
            let _ = kill(child, Signal::SIGKILL);
            bail!("cannot return to the host's network namespace: {e}");
        }
    }
    drop((rooted_w, mapped_r));
    debug(dbg, format!("pod PID 1 is pid {child}"));
    if let Some(users) = users {
        // Inside the pod's cgroup, moving its apps into their cgroups needs
        // no access to anything above the (delegated) pod cgroup (v2's
        // rule). Elsewhere the supervisor stays where `rkt run` runs: each
        // migration blocks every fork on the host for an RCU grace period.
        let joined = match &supervisor.cgroup {
            Some(cgroup) => cgroup
                .join_supervisor(child)
                .context("cannot move the pod's PID 1 into its cgroup"),
            None => Ok(()),
        };
        let mapped = joined.and_then(|()| Ok(namespaces::write_id_maps(child, users)?));
        if let Err(e) = mapped {
            let _ = kill(child, Signal::SIGKILL);
            return Err(e);
        }
    }
    if registering {
        // Before PID 1 (waiting for `mapped`) forks its apps, which then
        // follow it.
        if let Some(cgroup) = &supervisor.cgroup {
            if let Err(e) = machine::join_scope(&args.uuid, child, cgroup) {
                eprintln!("stage1: {e}");
            }
        }
    }
    drop(mapped_w);
    // `pid` is how stage0 reaches into the pod (enter, app add): only once
    // PID 1 is in its own root. At EOF it failed; its exit says why.
    let _ = read(rooted_r.as_raw_fd(), &mut [0u8; 1]);
    drop(rooted_r);
    if placement == Placement::Host {
        if let Err(e) = status::write_pid(&pod.dir, child.as_raw()) {
            let _ = kill(child, Signal::SIGKILL);
            return Err(e.into());
        }
    }
    if registering {
        // Once PID 1 is in the pod's root: machined opens the pod's files
        // (its journal) through it.
        match machine::register(&args.uuid, child, &supervisor.stage1_rootfs) {
            Ok(true) => debug(dbg, format!("registered as machine rkt-{}", args.uuid)),
            Ok(false) => {}
            Err(e) => eprintln!("stage1: {e}"),
        }
    }
    let relay = match console.map(PodConsole::relay).transpose() {
        Ok(relay) => relay,
        Err(e) => {
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            return Err(e.into());
        }
    };
    let code = wait_for(child, &supervisor.signals, relay.as_ref());
    if let Some(relay) = relay {
        relay.finish();
    }
    drop(alive_r);
    code
}

/// Closes every descriptor from 3 up except those in `keep`.
pub fn close_inherited_fds(keep: &[Option<RawFd>]) {
    let close_range = |first: libc::c_uint, last: libc::c_uint| {
        if first <= last {
            // SAFETY: close_range(2) on descriptors this process owns and
            // does not use (none is open yet besides stdio and `keep`).
            unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
        }
    };
    let mut keep: Vec<libc::c_uint> = keep
        .iter()
        .flatten()
        .map(|&fd| fd as libc::c_uint)
        .collect();
    keep.sort_unstable();
    let mut first = 3;
    for fd in keep {
        close_range(first, fd.saturating_sub(1));
        first = first.max(fd + 1);
    }
    close_range(first, libc::c_uint::MAX);
}

/// The mount namespace stage0 left for its private one, if it did.
pub fn host_mounts_from_env() -> Result<Option<OwnedFd>> {
    let Ok(value) = std::env::var(HOST_MOUNT_NS_FD_ENV) else {
        return Ok(None);
    };
    std::env::remove_var(HOST_MOUNT_NS_FD_ENV);
    let fd: RawFd = value
        .parse()
        .with_context(|| format!("invalid {HOST_MOUNT_NS_FD_ENV}={value:?}"))?;
    if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
        bail!("{HOST_MOUNT_NS_FD_ENV}={fd} is not an open descriptor");
    }
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .context("cannot set close-on-exec on the mount namespace fd")?;
    // SAFETY: stage0 passed this descriptor for this process to own.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// What CNI networking set up for the pod.
pub struct NetSetup {
    pub network: PodNetwork,
    /// rkt's default DNS mode took a CNI result's name servers.
    pub wrote_resolv_conf: bool,
    /// The forwarded host ports, bound so nothing else takes them.
    pub reserved_ports: Vec<portfwd::Reservation>,
}

/// CNI networking: the pod's network namespace and its networks, its
/// forwarded ports and, in rkt's default DNS mode, the resolv.conf of the
/// first network that returned name servers.
pub fn setup_network(
    pod: &Pod,
    args: &RunArgs,
    request: &NetRequest,
    host_mounts: Option<&OwnedFd>,
) -> Result<NetSetup> {
    // Before anything is set up: a port problem leaves nothing to undo.
    let declared: Vec<&[Port]> = pod.apps.iter().map(|a| a.app.ports.as_slice()).collect();
    let forwards = portfwd::resolve(&pod.manifest.ports, &declared)?;
    let reserved_ports = portfwd::reserve(&forwards)?;
    let stage1_rootfs = pod.stage1_rootfs();
    let local_config = Path::new(&args.local_config);
    let spec = PodNetSpec {
        uuid: args.uuid.clone(),
        pod_dir: pod.dir.clone(),
        request: request.clone(),
        builtin_conf_dir: stage1_rootfs.join(podnet::STAGE1_NET_CONF_DIR),
        user_conf_dir: local_config.join("net.d"),
        runner: podnet::plugin_runner(&stage1_rootfs, local_config),
        forwards: forwards.clone(),
    };
    let network = podnet::setup(&spec, host_mounts.map(AsFd::as_fd))?;
    for warning in &network.warnings {
        eprintln!("stage1: warning: {warning}");
    }
    let undo = |e: anyhow::Error| {
        if let Err(t) = podnet::teardown(
            &pod.dir,
            &args.uuid,
            &spec.runner,
            host_mounts.map(AsFd::as_fd),
        ) {
            eprintln!("stage1: {t}");
        }
        e
    };
    if !network.ports_in_chain {
        network
            .forward_ports(&pod.dir, &args.uuid, &forwards)
            .map_err(|e| undo(e.into()))?;
    }
    let mut wrote_resolv_conf = false;
    if args.dns_conf_mode.resolv == ResolvMode::Default {
        let named: Vec<(String, serde_json::Value)> = network
            .nets
            .iter()
            .map(|n| n.net_name.clone())
            .zip(network.results.iter().cloned())
            .collect();
        let (conf, warnings) = dns::resolv_conf(&named);
        for warning in warnings {
            eprintln!("stage1: warning: {warning}");
        }
        if let Some(conf) = conf {
            let path = stage1_rootfs.join(pod_dir::RKT_RESOLV_CONF);
            status::write_atomic(&path, conf.as_bytes())
                .with_context(|| format!("cannot write {path:?}"))
                .map_err(undo)?;
            wrote_resolv_conf = true;
        }
    }
    Ok(NetSetup {
        network,
        wrote_resolv_conf,
        reserved_ports,
    })
}

/// The pod's hostname, and its loopback up when it has its own network.
/// Moves `run` into the pod's network namespace for a clone into a user
/// namespace: mounts the pod's sysfs there (sysfs shows its mounter's
/// network namespace) and brings its loopback up. Returns the host's.
fn enter_for_user_namespace(network: &PodNetwork, stage1_rootfs: &Path) -> Result<OwnedFd> {
    let host: OwnedFd = std::fs::File::open("/proc/self/ns/net")
        .context("cannot open the host's network namespace")?
        .into();
    setns(&network.netns, CloneFlags::CLONE_NEWNET)
        .context("cannot join the pod's network namespace")?;
    let entered = (|| -> Result<()> {
        let sys = stage1_rootfs.join("sys");
        nix::mount::mount(
            Some("sysfs"),
            &sys,
            Some("sysfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .with_context(|| format!("cannot mount the pod's sysfs on {sys:?}"))?;
        Ok(namespaces::loopback_up()?)
    })();
    if let Err(e) = entered {
        let _ = setns(&host, CloneFlags::CLONE_NEWNET);
        return Err(e);
    }
    Ok(host)
}

fn pod_identity(hostname: &str, net: NetMode) -> Result<()> {
    sethostname(hostname).with_context(|| format!("cannot set the hostname {hostname:?}"))?;
    if net != NetMode::Host {
        namespaces::loopback_up()?;
    }
    Ok(())
}

/// Chowns `dir` and everything below it (nothing is mounted there yet)
/// into the pod's id range: the supervisor writes its runtime files there.
fn shift_owner(dir: &Path, users: IdRange) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir:?}"))?;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta =
            std::fs::symlink_metadata(&path).with_context(|| format!("cannot stat {path:?}"))?;
        std::os::unix::fs::lchown(
            &path,
            Some(users.shifted(meta.uid())),
            Some(users.shifted(meta.gid())),
        )
        .with_context(|| format!("cannot chown {path:?}"))?;
        if meta.is_dir() {
            for entry in
                std::fs::read_dir(&path).with_context(|| format!("cannot read {path:?}"))?
            {
                pending.push(entry?.path());
            }
        }
    }
    Ok(())
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
        std::process::exit(crate::STAGE1_ERROR_EXIT);
    }
    Ok(())
}

/// Waits for the supervisor, passing on termination signals; its exit code.
fn wait_for(child: Pid, signals: &BlockedSignals, console: Option<&Relay>) -> Result<i32> {
    let fd = signals.signalfd()?;
    let mut trimmed = false;
    loop {
        loop {
            match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(st) => {
                    if let WaitStatus::Signaled(_, sig, _) = st {
                        eprintln!("stage1: the pod's supervisor (pid {child}) was killed by {sig}; its apps went with it");
                    }
                    if let Some(code) = signals::exit_code(st) {
                        return Ok(code);
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => bail!("cannot wait for the pod's PID 1 (pid {child}): {e}"),
            }
        }
        if !trimmed {
            trimmed = true;
            // `run` only waits for the pod's whole life: after a quiet
            // second its setup code need not stay resident.
            let mut events = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            if let Ok(0) = poll(&mut events, PollTimeout::from(1000u16)) {
                crate::residency::drop_clean_file_pages();
                continue;
            }
        }
        if let Some(sig) = signals::next(&fd)? {
            if FORWARDED.contains(&sig) {
                let _ = kill(child, sig);
            } else if let (Signal::SIGWINCH, Some(console)) = (sig, console) {
                console.resize();
            }
        }
    }
}

/// The stage1's `/etc/hostname`, which the apps' own are made from.
pub fn write_hostname_file(stage1_rootfs: &Path, hostname: &str) -> Result<()> {
    let etc = stage1_rootfs.join("etc");
    std::fs::create_dir_all(&etc).with_context(|| format!("cannot create {etc:?}"))?;
    let path = etc.join("hostname");
    status::write_atomic(&path, format!("{hostname}\n").as_bytes())
        .with_context(|| format!("cannot write {path:?}"))
}
