//! A real `rkt metadata-service` for the tests. Its socket and port are
//! fixed (rkt's, and the stage1 tells apps that port), so the tests that
//! use one, or need none running, take turns.

use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::pods::wait_until;
use crate::Rkt;

pub const SOCKET: &str = "/run/rkt/metadata-svc.sock";
pub const PORT: u16 = 18112;

static TURN: Mutex<()> = Mutex::new(());

/// This test's turn with the host's metadata-service socket and port.
pub fn exclusive() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether something answers on the registration socket.
pub fn listening() -> bool {
    UnixStream::connect(SOCKET).is_ok()
}

/// A running `rkt metadata-service`, stopped (SIGTERM) when dropped.
pub struct MetadataService {
    child: Child,
    log: PathBuf,
    _turn: MutexGuard<'static, ()>,
}

impl MetadataService {
    /// Starts the service and waits until both listeners answer.
    pub fn start(rkt: &Rkt) -> MetadataService {
        let turn = exclusive();
        assert!(
            !listening(),
            "a metadata service already listens on {SOCKET}; stop it before running the tests"
        );
        let log = rkt.root().join("metadata-service.log");
        let child = rkt
            .command()
            .arg("metadata-service")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting rkt metadata-service");
        let mut service = MetadataService {
            child,
            log,
            _turn: turn,
        };
        let up = wait_until(Duration::from_secs(10), || {
            listening() && TcpStream::connect(("127.0.0.1", PORT)).is_ok()
        });
        assert!(
            up,
            "the metadata service did not come up: {}",
            service.log()
        );
        assert!(service.running(), "{}", service.log());
        service
    }

    /// What it logged so far (one line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it with SIGTERM and waits; returns its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for MetadataService {
    fn drop(&mut self) {
        if self.running() {
            self.stop();
        }
    }
}

/// An HTTP answer as curl saw it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// Runs curl with `args` (plus the options that print the status and the
/// content type) and returns what it got.
pub fn curl(args: &[&str]) -> Answer {
    static N: AtomicU64 = AtomicU64::new(0);
    let body_file = std::env::temp_dir().join(format!(
        "rkt-mds-curl-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "20", "-o"])
        .arg(&body_file)
        .args(["-w", "%{http_code}\n%{content_type}"])
        .args(args)
        .output()
        .expect("running curl");
    let meta = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, content_type) = meta.split_once('\n').unwrap_or((&meta, ""));
    let body = std::fs::read_to_string(&body_file).unwrap_or_default();
    let _ = std::fs::remove_file(&body_file);
    Answer {
        status: status.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {args:?} gave no status: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        }),
        content_type: content_type.to_string(),
        body,
    }
}

/// The registration API, as stage0 uses it, with curl over the socket.
pub fn register(method: &str, path: &str, body: Option<&Path>) -> Answer {
    let url = format!("http://localhost{path}");
    let mut args = vec!["--unix-socket", SOCKET, "-X", method];
    let data;
    if let Some(file) = body {
        data = format!("@{}", file.display());
        args.extend(["--data-binary", data.as_str()]);
    }
    args.push(&url);
    curl(&args)
}
