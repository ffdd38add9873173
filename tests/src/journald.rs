//! A real systemd-journald for the tests that need the host's journal,
//! started standalone (PID 1 here is not systemd) in a mount namespace of
//! its own whose `/run` is a fresh tmpfs: the host's `/run` is untouched,
//! and rkt run through [`Journald::command`] sees this journald as the
//! host's. Killed on drop; its tmpfs goes with its namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::pods::wait_until;
use crate::{Out, Rkt};

const JOURNALD: &str = "/lib/systemd/systemd-journald";

pub struct Journald {
    child: Child,
}

impl Journald {
    /// Starts journald and waits for its socket.
    pub fn start() -> Journald {
        assert!(
            Path::new(JOURNALD).exists(),
            "{JOURNALD} is missing: install Debian's systemd package"
        );
        let script = format!(
            "mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/systemd/journal && exec {JOURNALD}"
        );
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn unshare for journald");
        let journald = Journald { child };
        let socket = journald.path("/run/systemd/journal/socket");
        assert!(
            wait_until(Duration::from_secs(10), || socket.exists()),
            "journald did not create its socket"
        );
        journald
    }

    /// `path` as journald's mount namespace sees it.
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

    /// The journal's entries matching `matches`, as JSON objects.
    pub fn entries(&self, matches: &[&str]) -> Vec<serde_json::Value> {
        let out = self
            .command("journalctl")
            .args(["--no-pager", "--output=json"])
            .args(matches)
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
