//! A real systemd host for the tests that need one: systemd-journald, the
//! system bus (dbus-daemon) and systemd-machined, started standalone (PID 1
//! here is not systemd) in a mount namespace of their own whose `/run` and
//! `/var/log/journal` are fresh tmpfses: the host's are untouched, and rkt
//! run through [`Journald::command`] sees these as the host's. All killed
//! on drop; the tmpfses go with their namespace.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::pods::wait_until;
use crate::{Out, Rkt};

const JOURNALD: &str = "/lib/systemd/systemd-journald";
const MACHINED: &str = "/lib/systemd/systemd-machined";
const DBUS_DAEMON: &str = "/usr/bin/dbus-daemon";

pub struct Journald {
    /// `sh`, the parent of the three daemons, leader of their process group.
    child: Child,
}

impl Journald {
    /// Starts the daemons and waits for journald's and machined's sockets
    /// and names.
    pub fn start() -> Journald {
        for (binary, package) in [
            (JOURNALD, "systemd"),
            (MACHINED, "systemd-container"),
            (DBUS_DAEMON, "dbus"),
        ] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: install Debian's {package} package"
            );
        }
        // machined needs the bus when it starts; `/run/systemd/system` is
        // how machinectl tells that systemd manages the host.
        let script = format!(
            "mount -t tmpfs -o mode=0755 tmpfs /run && \
             mount -t tmpfs -o mode=0755 tmpfs /var/log/journal && \
             mkdir -p /run/systemd/journal /run/systemd/machines /run/systemd/system /run/dbus && \
             {{ {DBUS_DAEMON} --system --nofork --nopidfile & {JOURNALD} & \
             while [ ! -S /run/dbus/system_bus_socket ]; do sleep 0.01; done; \
             {MACHINED} & wait; }}"
        );
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn unshare for journald");
        let host = Journald { child };
        let socket = host.path("/run/systemd/journal/socket");
        assert!(
            wait_until(Duration::from_secs(10), || socket.exists()),
            "journald did not create its socket"
        );
        assert!(
            wait_until(Duration::from_secs(10), || host.machined_answers()),
            "systemd-machined did not come up on the system bus"
        );
        host
    }

    /// The daemons' parent.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn machined_answers(&self) -> bool {
        self.command("busctl")
            .args(["status", "org.freedesktop.machine1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `machinectl list`'s machine names.
    pub fn machines(&self) -> Vec<String> {
        let out = self
            .command("machinectl")
            .args(["list", "--no-legend", "--no-pager"])
            .output()
            .expect("spawn machinectl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    }

    /// `path` as the daemons' mount namespace sees it.
    pub fn path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.child.id()))
    }

    /// A command run in journald's mount namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--mount=/proc/{}/ns/mnt", self.child.id()))
            .arg("--")
            .arg(program)
            .stdin(Stdio::null());
        c
    }

    /// `rkt ARGS` of `rkt`'s environment, run where this journald is the
    /// host's.
    pub fn rkt(&self, rkt: &Rkt, args: &[&str]) -> Out {
        let mut c = self.command(crate::rkt_bin());
        c.args(rkt.global_args()).args(args);
        Out::from_output(c.output().expect("spawn rkt under nsenter"))
    }

    /// `journalctl ARGS`'s entries, as JSON objects.
    pub fn entries(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let out = self
            .command("journalctl")
            .args(["--no-pager", "--output=json"])
            .args(args)
            .output()
            .expect("spawn journalctl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        // SAFETY: kill(2) of our own child's process group.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
