//! kvm `run` entrypoint (the image's `/init`): sets up the pod's networks
//! on the host as the ns flavor does, gives each interface to the VM
//! through a tap, writes the guest's configuration, boots the VM and waits
//! for it. It holds the pod lock, is the pod's `pid` (so `stop` signals
//! it and it asks the guest to stop), and returns the pod's exit code,
//! which the guest left in `$pod/kvm/exit-code`.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use abi::schema::VolumeKind;
use abi::stage1::RunArgs;
use anyhow::{bail, Context, Result};
use networking::pod as podnet;
use networking::request::NetRequest;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{mkfifo, pipe2, Pid};
use stage1_common::pod::Pod;
use stage1_common::{lockfd, status, volumes};
use stage1_kvm::config::{self, GuestConfig, SharedDir};
use stage1_kvm::qemu::{Nic, VmSpec, QEMU_BINARY, VIRTIO_TRANSPORTS};
use stage1_kvm::{debug, fail, signal_request, tap};
use stage1_ns::launch::{self, NetSetup};
use stage1_ns::namespaces::{self, NetMode};
use stage1_ns::plan;
use stage1_ns::signals::{self, BlockedSignals, FORWARDED};

/// What the guest kernel and its init need besides the apps.
const BASE_MEMORY_MIB: u64 = 256;
/// A pod without memory limits gets this much.
const DEFAULT_MEMORY_MIB: u64 = 512;

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(format!("{e:#}")),
    }
}

fn run() -> Result<i32> {
    let raw_args: Vec<String> = std::env::args().skip(1).collect();
    let args = RunArgs::parse(raw_args.clone()).context("invalid run arguments")?;
    let request = NetRequest::parse(&args.net)?;
    let net = NetMode::of(&request);
    refuse_unsupported(&args, net)?;
    let lock_fd = lockfd::lock_fd_from_env()?;
    let host_mounts = launch::host_mounts_from_env()?;
    launch::close_inherited_fds(&[Some(lock_fd), host_mounts.as_ref().map(AsRawFd::as_raw_fd)]);
    lockfd::set_cloexec(lock_fd, true)?;
    let cwd = std::env::current_dir().context("cannot determine the pod directory (cwd)")?;
    let pod = Pod::load(&cwd)?;
    if pod.apps.is_empty() {
        bail!("the pod has no apps; add at least one image to run");
    }
    let qemu = find_qemu()?;
    let stage1_rootfs = pod.stage1_rootfs();
    let kernel = stage1_rootfs.join(config::KERNEL);
    let initramfs = stage1_rootfs.join(config::INITRAMFS);
    for file in [&kernel, &initramfs] {
        if !file.is_file() {
            bail!("the stage1 image has no {file:?}; rebuild it with `make images`");
        }
    }
    let writable = writable_dirs(&pod)?;
    let volumes = host_volumes(&pod)?;
    // Refused before any network is set up (each network adds one more).
    let needed = VmSpec::transports(writable.len() + volumes.len(), 0);
    if needed > VIRTIO_TRANSPORTS {
        bail!(
            "the pod needs {needed} virtio devices ({} host volumes) and the VM has {VIRTIO_TRANSPORTS}; share fewer host directories",
            volumes.len()
        );
    }
    let memory_mib = memory_mib(&pod)?;
    let kvm_dir = pod.dir.join(config::KVM_DIR);
    std::fs::create_dir_all(&kvm_dir).with_context(|| format!("cannot create {kvm_dir:?}"))?;
    // Written here: the guest cannot write the stage1's /etc.
    launch::write_hostname_file(&stage1_rootfs, &namespaces::pod_hostname(&args))?;

    let setup = match net {
        NetMode::Cni => Some(launch::setup_network(
            &pod,
            &args,
            &request,
            host_mounts.as_ref(),
        )?),
        NetMode::Host | NetMode::None => None,
    };
    drop(host_mounts);
    let booted = boot(
        &pod,
        &args,
        &raw_args,
        setup.as_ref(),
        (&qemu, &kernel, &initramfs),
        (&writable, &volumes),
        memory_mib,
    );
    if setup.is_some() {
        // Forwarded host ports must not outlive the pod; gc removes the
        // rest of its networks.
        if let Err(e) = podnet::stop_forwarding(&pod.dir, &args.uuid) {
            eprintln!("stage1: {e}");
        }
    }
    booted
}

/// What stage0 also refuses through the image's features, said here for a
/// caller that did not check them.
fn refuse_unsupported(args: &RunArgs, net: NetMode) -> Result<()> {
    if net == NetMode::Host {
        bail!("the kvm stage1 gives each pod a VM with a network of its own; --net=host is not possible, use --net=default or a named network");
    }
    if args.interactive {
        bail!("the kvm stage1 has no terminal for --interactive; use the ns stage1");
    }
    if args.private_users.is_some() {
        bail!("--private-users is not possible with the kvm stage1; the VM already isolates the pod's users");
    }
    if args.mds_token.is_some() {
        bail!("the kvm stage1 does not register pods with the metadata service; use the ns stage1");
    }
    if args.mutable {
        bail!("the kvm stage1 runs no mutable pods (rkt app sandbox); use the ns stage1");
    }
    Ok(())
}

fn find_qemu() -> Result<PathBuf> {
    cni_plugins::tool::find_bin(QEMU_BINARY).map_err(|_| {
        anyhow::anyhow!("the kvm stage1 needs QEMU's {QEMU_BINARY}, found in no PATH directory; install it (Debian: apt-get install qemu-system-x86)")
    })
}

/// The parts of the pod directory the guest writes ([`config::WRITABLE`]),
/// made before the VM starts: the runtime directory, and the `empty`
/// volumes the guest's stage1 would otherwise create.
fn writable_dirs(pod: &Pod) -> Result<Vec<SharedDir>> {
    for volume in &pod.manifest.volumes {
        if volume.kind == VolumeKind::Empty {
            volumes::prepare_empty_volume(&pod.dir, volume)?;
        }
    }
    let mut dirs = Vec::new();
    for (tag, rel) in config::WRITABLE {
        let path = pod.dir.join(rel);
        if rel == config::WRITABLE[0].1 {
            std::fs::create_dir_all(&path).with_context(|| format!("cannot create {path:?}"))?;
        }
        if path.is_dir() {
            dirs.push(SharedDir {
                tag: tag.to_string(),
                host: path.clone(),
                path,
                read_only: false,
            });
        }
    }
    Ok(dirs)
}

/// Host directories the guest must not get as volumes: they would cover
/// its own root or kernel file systems.
const UNSHAREABLE: [&str; 4] = ["/", "/proc", "/sys", "/dev"];

/// The host volumes the pod's apps use, each a directory shared into the
/// guest at its own path (read-only when the volume is), parents first.
fn host_volumes(pod: &Pod) -> Result<Vec<SharedDir>> {
    let mut dirs: Vec<SharedDir> = Vec::new();
    for volume in &pod.manifest.volumes {
        if volume.kind != VolumeKind::Host {
            continue;
        }
        let Some(source) = volume.source.as_deref() else {
            continue;
        };
        let name = volume.name.as_str();
        let guest_path = Path::new(source);
        if !guest_path.is_absolute() {
            bail!("volume {name:?}: its source {source:?} is not an absolute path");
        }
        let path = std::fs::canonicalize(source)
            .with_context(|| format!("volume {name:?}: cannot use {source:?}"))?;
        if UNSHAREABLE
            .iter()
            .any(|u| path == Path::new(u) || (*u != "/" && path.starts_with(u)))
        {
            bail!("volume {name:?}: the kvm stage1 cannot share {path:?} with the VM (it would cover the guest's own); use a directory below it, or the ns stage1");
        }
        if !path.is_dir() {
            bail!(
                "volume {name:?}: the kvm stage1 shares directories with the VM and {path:?} is not one; share its directory instead, or use the ns stage1"
            );
        }
        let read_only = volume.read_only == Some(true);
        match dirs.iter_mut().find(|d| d.path == guest_path) {
            // Shared once; writable if any volume of it is.
            Some(d) => d.read_only &= read_only,
            // Mounted in the guest where the pod's stage1 looks for it,
            // the path as the manifest gives it.
            None => dirs.push(SharedDir {
                tag: String::new(),
                path: guest_path.to_path_buf(),
                host: path,
                read_only,
            }),
        }
    }
    // A parent is mounted before what lies below it.
    dirs.sort_by_key(|d| d.path.components().count());
    for (i, d) in dirs.iter_mut().enumerate() {
        d.tag = format!("rkt-vol{i}");
    }
    Ok(dirs)
}

/// The VM's memory: what the apps' memory limits add up to, and the
/// guest's own; a pod without limits gets [`DEFAULT_MEMORY_MIB`].
fn memory_mib(pod: &Pod) -> Result<u64> {
    let mut limited = 0u64;
    for app in &pod.apps {
        match plan::app_resources(app)?.memory_bytes {
            Some(bytes) => limited += bytes.div_ceil(1 << 20),
            None => return Ok(DEFAULT_MEMORY_MIB.max(limited + BASE_MEMORY_MIB)),
        }
    }
    Ok(DEFAULT_MEMORY_MIB.max(limited + BASE_MEMORY_MIB))
}

fn boot(
    pod: &Pod,
    args: &RunArgs,
    raw_args: &[String],
    setup: Option<&NetSetup>,
    (qemu, kernel, initramfs): (&Path, &Path, &Path),
    (writable, volumes): (&[SharedDir], &[SharedDir]),
    memory_mib: u64,
) -> Result<i32> {
    let taps = match setup {
        Some(setup) => {
            let ifnames: Vec<String> = setup
                .network
                .nets
                .iter()
                .map(|n| n.if_name.clone())
                .collect();
            tap::attach(setup.network.netns.as_fd(), &ifnames)?
        }
        None => Vec::new(),
    };
    let shared_dirs: Vec<SharedDir> = writable.iter().chain(volumes).cloned().collect();
    let needed = VmSpec::transports(shared_dirs.len(), taps.len());
    if needed > VIRTIO_TRANSPORTS {
        bail!(
            "the pod needs {needed} virtio devices ({} host volumes, {} networks) and the VM has {VIRTIO_TRANSPORTS}; share fewer host directories or join fewer networks",
            volumes.len(),
            taps.len()
        );
    }
    let guest = GuestConfig {
        pod_dir: pod.dir.clone(),
        run_args: raw_args.to_vec(),
        wrote_resolv_conf: setup.is_some_and(|s| s.wrote_resolv_conf),
        interfaces: taps.iter().map(|t| t.interface.clone()).collect(),
        writable: writable.to_vec(),
        shared_dirs: volumes.to_vec(),
    };
    guest
        .write(&pod.dir)
        .with_context(|| format!("cannot write {:?}", pod.dir.join(config::GUEST_CONFIG)))?;
    let exit_file = pod.dir.join(config::EXIT_CODE);
    let _ = std::fs::remove_file(&exit_file);
    let control = open_control_fifo(&pod.dir.join(config::CONTROL_FIFO))?;
    let nics: Vec<Nic> = taps
        .iter()
        .map(|t| Nic {
            fd: t.fd.as_raw_fd(),
            mac: t.interface.mac.clone(),
        })
        .collect();
    let (stdout_r, stdout_w) = pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let (stderr_r, stderr_w) = pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let kvm = hardware_virtualization();
    let spec = VmSpec {
        kernel: kernel.to_path_buf(),
        initramfs: initramfs.to_path_buf(),
        pod_dir: &pod.dir,
        console_log: pod.dir.join(config::CONSOLE_LOG),
        control_fifo: pod.dir.join(config::CONTROL_FIFO),
        memory_mib,
        cpus: 1,
        kvm,
        tsc_khz: (!kvm).then(host_tsc_khz).flatten(),
        shared_dirs: &shared_dirs,
        nics: &nics,
        stdout: stdout_w.as_raw_fd(),
        stderr: stderr_w.as_raw_fd(),
    };
    let signals = BlockedSignals::block()?;
    let vm_args = spec.args();
    debug(args.debug, format!("starting {qemu:?} {vm_args:?}"));
    let inherited: Vec<RawFd> = nics
        .iter()
        .map(|n| n.fd)
        .chain([stdout_w.as_raw_fd(), stderr_w.as_raw_fd()])
        .collect();
    let mut command = Command::new(qemu);
    command.args(&vm_args).stdin(Stdio::null());
    let restore = signals.clone();
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the closure only makes async-signal-
    // safe calls (prctl, getppid, fcntl, sigprocmask).
    unsafe {
        command.pre_exec(move || {
            // The VM dies with `run`: a killed `run` leaves no VM behind,
            // even one killed before the prctl took effect.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            for &fd in &inherited {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            restore.restore().map_err(std::io::Error::other)
        });
    }
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {qemu:?}"))?;
    drop((taps, stdout_w, stderr_w));
    let relays = [
        relay(stdout_r, std::io::stdout()),
        relay(stderr_r, std::io::stderr()),
    ];
    let qemu_pid = Pid::from_raw(child.id() as i32);
    let vm = status::write_pid(&pod.dir, std::process::id() as i32)
        .map_err(anyhow::Error::from)
        .and_then(|()| wait_for(child, &signals, &control));
    if vm.is_err() {
        // The relays end when QEMU does.
        let _ = nix::sys::signal::kill(qemu_pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(qemu_pid, None);
    }
    // All the apps wrote is out before `run` returns.
    for r in relays {
        let _ = r.join();
    }
    let vm = vm?;
    if let Some(code) = vm {
        let log = pod.dir.join(config::CONSOLE_LOG);
        bail!(
            "the pod's VM ({QEMU_BINARY}) ended with code {code} before the pod did; QEMU's messages are above, the guest's console is in {log:?}"
        );
    }
    match status::read_number_file(&exit_file) {
        Ok(Some(code)) => Ok(code as i32),
        Ok(None) => {
            let log = pod.dir.join(config::CONSOLE_LOG);
            bail!("the pod's VM stopped without leaving its exit code ({exit_file:?}); its console is in {log:?}")
        }
        Err(e) => bail!("the pod's VM left no usable exit code: {e}"),
    }
}

/// Copies what the VM writes to `from` until QEMU closes it. Once `to`
/// fails (`rkt run … | head`), the rest is read and dropped: the apps
/// must not block on a port nobody drains.
fn relay(
    from: OwnedFd,
    mut to: impl std::io::Write + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut from = File::from(from);
        if std::io::copy(&mut from, &mut to).is_err() {
            let _ = std::io::copy(&mut from, &mut std::io::sink());
        }
    })
}

/// The FIFO QEMU reads control requests from, held open here (read and
/// write, so neither side blocks or sees an end while the pod lives).
fn open_control_fifo(path: &Path) -> Result<File> {
    let _ = std::fs::remove_file(path);
    mkfifo(path, Mode::from_bits_truncate(0o600))
        .with_context(|| format!("cannot create the control FIFO {path:?}"))?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the control FIFO {path:?}"))
}

/// Waits for QEMU, passing the signals the ns flavor forwards to its pods
/// on to the guest (SIGTERM from `stop` among them). `None` when it ended as a powered-off VM does (code 0),
/// otherwise its code.
fn wait_for(child: Child, signals: &BlockedSignals, control: &File) -> Result<Option<i32>> {
    let pid = Pid::from_raw(child.id() as i32);
    let fd = signals.signalfd()?;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(WaitStatus::Exited(_, 0)) => return Ok(None),
            Ok(st) => {
                if let Some(code) = signals::exit_code(st) {
                    return Ok(Some(code));
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => bail!("cannot wait for the pod's VM (pid {pid}): {e}"),
        }
        let Some(sig) = signals::next(&fd)? else {
            continue;
        };
        if FORWARDED.contains(&sig) {
            write_control(control, &signal_request(sig))?;
        }
    }
}

fn write_control(mut control: &File, request: &str) -> Result<()> {
    use std::io::Write;
    control
        .write_all(format!("{request}\n").as_bytes())
        .with_context(|| format!("cannot send {request:?} to the pod's VM"))
}

/// Whether KVM can run the guest: /dev/kvm, backed by VT-x or AMD-V. A
/// /dev/kvm without either (PVM, say) runs only kernels built for it.
fn hardware_virtualization() -> bool {
    let cpu_has_it = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines()
            .find(|l| l.starts_with("flags"))
            .is_some_and(|flags| flags.split_whitespace().any(|f| f == "vmx" || f == "svm"))
    });
    cpu_has_it
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok()
}

/// The host's TSC rate, which TCG's guest TSC follows: the kernel's
/// figure where it gives one, else the CPU's nominal MHz.
fn host_tsc_khz() -> Option<u64> {
    if let Some(khz) = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/tsc_freq_khz")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return Some(khz);
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    Some((mhz * 1000.0) as u64)
}
