//! Shared helpers for the integration tests: running plugin binaries (ours and
//! the reference ones in /usr/lib/cni), throwaway network namespaces and data
//! directories that clean up after themselves, also when a test fails.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub const REF_DIR: &str = "/usr/lib/cni";

/// Our binary's path.
pub fn ours(name: &str) -> PathBuf {
    let p = match name {
        "host-local" => env!("CARGO_BIN_EXE_host-local"),
        "loopback" => env!("CARGO_BIN_EXE_loopback"),
        "ptp" => env!("CARGO_BIN_EXE_ptp"),
        "bridge" => env!("CARGO_BIN_EXE_bridge"),
        other => panic!("no binary {other}"),
    };
    PathBuf::from(p)
}

/// The directory holding our binaries (a CNI_PATH entry).
pub fn ours_dir() -> PathBuf {
    ours("host-local")
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub fn reference(name: &str) -> PathBuf {
    Path::new(REF_DIR).join(name)
}

/// These tests need root (netns, links) and the reference plugins; without
/// them they fail, naming what is missing (`make test` installs the
/// plugins and runs as root).
pub fn require(plugin: &str) {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
    assert!(
        reference(plugin).exists(),
        "{} is missing: install Debian's containernetworking-plugins",
        reference(plugin).display()
    );
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
}

impl Out {
    pub fn json(&self) -> Value {
        if self.stdout.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("bad JSON {e}: {}", self.stdout))
    }

    /// The error object without "cniVersion", which the reference (1.1.1)
    /// leaves out and we write as the spec asks.
    pub fn error(&self) -> Value {
        let mut v = self.json();
        if let Some(o) = v.as_object_mut() {
            o.remove("cniVersion");
        }
        v
    }
}

/// Runs a plugin binary with the CNI environment and `conf` on stdin.
pub fn run(bin: &Path, cmd: &str, conf: &str, env: &[(&str, &str)]) -> Out {
    let mut c = Command::new(bin);
    c.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(conf.as_bytes());
    }
    let o = child.wait_with_output().expect("wait");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
    }
}

/// A unique name for this process and tag.
pub fn unique(tag: &str) -> String {
    format!("cnit{}{}", tag, std::process::id())
}

/// A network namespace made with `ip netns add`, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(st.success(), "ip netns add {name}");
        Netns { name }
    }

    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// `ip -n NS -j <args>` parsed.
    pub fn ip_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["-n", &self.name, "-j"];
        a.extend_from_slice(args);
        ip_json(&a)
    }

    pub fn delete(&self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.delete();
    }
}

pub fn ip_json(args: &[&str]) -> Value {
    let o = Command::new("ip").args(args).output().expect("ip");
    serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
}

/// A temporary directory (plain files only), removed on drop.
pub struct TmpDir(pub PathBuf);

impl TmpDir {
    pub fn new(tag: &str) -> TmpDir {
        let p = std::env::temp_dir().join(unique(tag));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir");
        TmpDir(p)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// name -> content of every file in a lease directory.
pub fn lease_files(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let c = std::fs::read_to_string(e.path()).unwrap_or_default();
                    (n, c)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The nat table rules mentioning `needle` (`iptables -t nat -S`).
pub fn nat_rules(needle: &str) -> Vec<String> {
    let o = Command::new("iptables")
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .expect("iptables");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}
