//! The guest's init (`/init` of the kvm flavor's initramfs): prepares the
//! VM (see [`stage1_kvm::guest`]), runs the pod as the ns flavor's `run`
//! would on a host, stops it when the host asks on the control port,
//! leaves its exit code in the shared pod directory and powers off.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::signal::kill;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2, sync, ForkResult, Pid};
use stage1_kvm::config::{GuestConfig, EXIT_CODE};
use stage1_kvm::guest::{modules, mounts, net};
use stage1_kvm::{parse_signal_request, CONTROL_PORT, STDERR_PORT, STDOUT_PORT};
use stage1_ns::launch::{self, Placement};

/// How long the guest waits for its virtio serial ports to appear.
const PORT_WAIT: Duration = Duration::from_secs(10);

/// Where the exit code goes, once the configuration says.
static EXIT_FILE: OnceLock<PathBuf> = OnceLock::new();

fn main() {
    let code = match boot() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stage1: kvm guest: {e:#}");
            stage1_ns::STAGE1_ERROR_EXIT
        }
    };
    if let Err(e) = leave_exit_code(code) {
        eprintln!("stage1: kvm guest: {e:#}");
    }
    sync();
    let _ = reboot(RebootMode::RB_POWER_OFF);
    // PID 1 must not return; the kernel would panic (and QEMU stop anyway).
    loop {
        std::thread::park();
    }
}

fn boot() -> Result<i32> {
    mounts::mount_kernel_filesystems()?;
    modules::load_all(Path::new(modules::MODULES_DIR))?;
    // From here on, errors reach the user's stderr, not only the console.
    attach_stdio()?;
    let control = virtio_port(CONTROL_PORT)?;
    let control = File::open(&control).with_context(|| format!("cannot open {control:?}"))?;
    mounts::switch_to_tmpfs_root()?;
    mounts::mount_pod()?;
    let config = GuestConfig::read(Path::new(mounts::POD_MOUNT))
        .context("cannot read the guest's configuration from the pod directory")?;
    mounts::mount_shared(&config.pod_dir, &config.shared_dirs, &config.writable)?;
    EXIT_FILE
        .set(config.pod_dir.join(EXIT_CODE))
        .expect("set once");
    mounts::mount_cgroups()?;
    net::configure(&config.interfaces)?;
    let pod = match stage1_common::entry::fork()? {
        ForkResult::Child => {
            let code = std::env::set_current_dir(&config.pod_dir)
                .with_context(|| format!("cannot enter {:?}", config.pod_dir))
                .and_then(|()| {
                    launch::run(
                        Placement::Guest {
                            wrote_resolv_conf: config.wrote_resolv_conf,
                        },
                        config.run_args.clone(),
                    )
                });
            match code {
                Ok(code) => std::process::exit(code),
                Err(e) => stage1_ns::fail(format!("{e:#}")),
            }
        }
        ForkResult::Parent { child } => child,
    };
    std::thread::spawn(move || serve_control(control, pod));
    Ok(reap_until(pod))
}

/// stdin from /dev/null, stdout and stderr to the host's `run`.
fn attach_stdio() -> Result<()> {
    let null = File::open("/dev/null").context("cannot open /dev/null")?;
    dup2(null.as_raw_fd(), 0).context("cannot set stdin")?;
    for (name, fd) in [(STDOUT_PORT, 1), (STDERR_PORT, 2)] {
        let dev = virtio_port(name)?;
        let port = OpenOptions::new()
            .write(true)
            .open(&dev)
            .with_context(|| format!("cannot open {dev:?}"))?;
        dup2(port.as_raw_fd(), fd).with_context(|| format!("cannot attach {dev:?}"))?;
    }
    Ok(())
}

/// The device of the virtio serial port called `name`. The driver adds
/// ports, and learns their names, as the host announces them: wait a
/// little for it.
fn virtio_port(name: &str) -> Result<PathBuf> {
    let deadline = Instant::now() + PORT_WAIT;
    loop {
        let found = std::fs::read_dir("/sys/class/virtio-ports")
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|port| {
                let named = std::fs::read_to_string(port.path().join("name")).unwrap_or_default();
                (named.trim() == name).then(|| PathBuf::from("/dev").join(port.file_name()))
            });
        match found {
            Some(dev) if dev.exists() => return Ok(dev),
            _ if Instant::now() >= deadline => {
                bail!("the VM has no virtio serial port {name} after {PORT_WAIT:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Sends the pod's `run` the signals the host passes on (it forwards them
/// to the supervisor, which stops the apps on SIGTERM).
fn serve_control(control: File, pod: Pid) {
    for line in BufReader::new(control).lines() {
        let Ok(line) = line else { return };
        if let Some(signal) = parse_signal_request(&line) {
            let _ = kill(pod, signal);
        }
    }
}

/// Reaps every process (PID 1's duty) until `pod` ends; its exit code.
fn reap_until(pod: Pid) -> i32 {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == pod => return code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == pod => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return stage1_ns::STAGE1_ERROR_EXIT,
        }
    }
}

/// The exit code for the host, in the pod's writable runtime directory
/// (known once the configuration is read; before that, the host finds
/// none and says so).
fn leave_exit_code(code: i32) -> Result<()> {
    let Some(path) = EXIT_FILE.get() else {
        return Ok(());
    };
    stage1_common::status::write_atomic(path, format!("{code}\n").as_bytes())
        .with_context(|| format!("cannot write {path:?}"))
}
