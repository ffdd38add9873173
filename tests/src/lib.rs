//! Harness for the functional tests: each test gets its own data and config
//! directories and drives the built `rkt` exactly as a user would.
//!
//! The artifacts come from `make` (`target/release/rkt`, the stage1 images
//! beside it, the test images in `target/images/`); a missing one fails the
//! test loudly rather than skipping it.

pub mod api;
pub mod fixtures;
pub mod gpg;
pub mod hosts;
pub mod http;
pub mod journald;
pub mod metadata;
pub mod pods;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// The workspace's `target/` directory.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

fn artifact(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `make` before the functional tests",
        path.display()
    );
    path
}

/// The `rkt` binary under test (`$RKT` overrides).
pub fn rkt_bin() -> PathBuf {
    match std::env::var_os("RKT") {
        Some(p) => artifact(PathBuf::from(p)),
        None => artifact(target_dir().join("release/rkt")),
    }
}

/// A test image from `target/images/`, e.g. `busybox.aci`.
pub fn image(name: &str) -> PathBuf {
    artifact(target_dir().join("images").join(name))
}

/// A stage1 image built beside the binary, e.g. `fly`.
pub fn stage1_image(flavor: &str) -> PathBuf {
    artifact(target_dir().join(format!("release/stage1-{flavor}.aci")))
}

/// The static `inspect` binary.
pub fn inspect_bin() -> PathBuf {
    artifact(target_dir().join("x86_64-unknown-linux-gnu/release/inspect"))
}

/// The outcome of one rkt invocation.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn from_output(o: Output) -> Out {
        use std::os::unix::process::ExitStatusExt;
        let code = o
            .status
            .code()
            .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0));
        Out {
            code,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Out {
        assert_eq!(self.code, code, "unexpected exit code; output:\n{self}");
        self
    }

    #[track_caller]
    pub fn expect_stderr(self, needle: &str) -> Out {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}; output:\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn expect_stdout(self, needle: &str) -> Out {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}; output:\n{self}"
        );
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code: {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// One test's rkt environment: its own `--dir` and config directories.
/// The rkt binary run as `uid`:`gid` with no supplementary groups
/// (util-linux `setpriv`); add the global flags and arguments.
pub fn as_user(uid: u32, gid: u32) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".to_string(),
    ])
    .arg(rkt_bin())
    .stdin(Stdio::null());
    c
}

pub struct Rkt {
    root: Option<TempDir>,
    pub dir: PathBuf,
    pub local_config: PathBuf,
    pub system_config: PathBuf,
    pub user_config: PathBuf,
}

impl Default for Rkt {
    fn default() -> Self {
        Self::new()
    }
}

impl Rkt {
    pub fn new() -> Rkt {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the functional tests need root (namespaces, mounts, chroot)"
        );
        let root = tempfile::Builder::new()
            .prefix("rkt-test-")
            .tempdir()
            .expect("tempdir");
        let base = root.path().to_path_buf();
        let mk = |n: &str| {
            let p = base.join(n);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        Rkt {
            dir: mk("data"),
            local_config: mk("local"),
            system_config: mk("system"),
            user_config: mk("user"),
            root: Some(root),
        }
    }

    /// The temporary directory holding everything of this test.
    pub fn root(&self) -> &Path {
        self.root.as_ref().expect("root").path()
    }

    /// This environment's global flags.
    pub fn global_args(&self) -> [String; 4] {
        [
            format!("--dir={}", self.dir.display()),
            format!("--local-config={}", self.local_config.display()),
            format!("--system-config={}", self.system_config.display()),
            format!("--user-config={}", self.user_config.display()),
        ]
    }

    /// A command with this environment's global flags.
    pub fn command(&self) -> Command {
        let mut c = Command::new(rkt_bin());
        c.args(self.global_args()).stdin(Stdio::null());
        c
    }

    /// Runs rkt with `args` and collects its output.
    pub fn run(&self, args: &[&str]) -> Out {
        let out = self.command().args(args).output().expect("spawn rkt");
        Out::from_output(out)
    }

    /// Runs rkt in a network namespace of its own with no interface up
    /// (`unshare --net`): whatever it tries to reach (appc discovery of a
    /// name the store lacks) fails here and never leaves the machine.
    pub fn run_offline(&self, args: &[&str]) -> Out {
        let out = Command::new("unshare")
            .arg("--net")
            .arg(rkt_bin())
            .args(self.global_args())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn unshare");
        Out::from_output(out)
    }

    /// Runs rkt and requires exit code 0.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Out {
        self.run(args).expect_code(0)
    }

    /// Runs rkt with `args` as `uid`:`gid` (see [`as_user`]).
    pub fn run_as(&self, uid: u32, gid: u32, args: &[&str]) -> Out {
        let out = as_user(uid, gid)
            .args(self.global_args())
            .args(args)
            .output()
            .expect("spawn setpriv");
        Out::from_output(out)
    }

    /// Imports an unsigned image file and returns its full key.
    #[track_caller]
    pub fn fetch(&self, path: &Path) -> String {
        let p = path.to_str().unwrap();
        let out = self.ok(&["--insecure-options=image", "fetch", "--full", p]);
        out.stdout.trim().to_string()
    }

    /// Mount points at or below this test's directory, from the host's view.
    pub fn mounts_under_root(&self) -> Vec<String> {
        mounts_under(self.root())
    }
}

/// Mount points at or below `path` in this process's mount namespace.
pub fn mounts_under(path: &Path) -> Vec<String> {
    let prefix = path.to_string_lossy().to_string();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect()
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Drop for Rkt {
    /// Cleans up the way users must: gc the pods, unmount what is left, and
    /// never delete through a mount.
    fn drop(&mut self) {
        let _ = self.run(&["gc", "--grace-period=0s"]);
        let mut left = mounts_under(self.root());
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &left {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let still = mounts_under(self.root());
        if !still.is_empty() {
            // Keep the directory: removing it could reach into the host.
            let root = self.root.take().expect("root").keep();
            eprintln!(
                "mounts remain under {}; not removing it: {still:?}",
                root.display()
            );
            if !std::thread::panicking() {
                panic!("mounts left behind under {}: {still:?}", root.display());
            }
        }
    }
}

/// SHA-512 of a file, lowercase hex.
pub fn sha512_file(path: &Path) -> String {
    use sha2::{Digest, Sha512};
    let data = std::fs::read(path).expect("read file");
    Sha512::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
