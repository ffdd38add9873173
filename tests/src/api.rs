//! A real `rkt api-service` and an independent client for it: Python's
//! grpcio (installed by `make test-setup` into target/grpc-venv) with stubs
//! that grpcio-tools generates from the shipped .proto.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::pods::{free_port, wait_until};
use crate::Rkt;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The venv's python; missing is a setup failure, said loudly.
pub fn python() -> PathBuf {
    let python = repo().join("target/grpc-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make test-setup` (installs grpcio-tools from PyPI)",
        python.display()
    );
    python
}

/// Stubs generated from stage0/proto/v1alpha/api.proto, kept under
/// `target/` per version of the file (so nothing piles up in /tmp) and
/// shared by every test process.
pub fn stubs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let proto = repo().join("stage0/proto");
        let version = &crate::sha512_file(&proto.join("v1alpha/api.proto"))[..16];
        let dir = repo().join(format!("target/grpc-stubs-{version}"));
        if dir.join("v1alpha/api_pb2_grpc.py").exists() {
            return dir;
        }
        let tmp = repo().join(format!("target/grpc-stubs-tmp-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let out = Command::new(python())
            .args(["-m", "grpc_tools.protoc"])
            .arg(format!("-I{}", proto.display()))
            .arg(format!("--python_out={}", tmp.display()))
            .arg(format!("--grpc_python_out={}", tmp.display()))
            .arg("v1alpha/api.proto")
            .output()
            .expect("running grpc_tools.protoc");
        assert!(
            out.status.success(),
            "protoc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Another test process may have put its copy there first.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        dir
    })
}

fn client_script() -> PathBuf {
    repo().join("tests/grpc/client.py")
}

/// A running `rkt api-service` on a free loopback port.
pub struct ApiService {
    child: Child,
    pub addr: String,
}

impl ApiService {
    /// The service as systemd starts it: `systemd-socket-activate` owns the
    /// listening socket and starts `rkt api-service` on the first
    /// connection, passing the socket (no `--listen`).
    pub fn start_socket_activated(rkt: &Rkt) -> ApiService {
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new("systemd-socket-activate")
            .args(["-l", &addr, "--"])
            .arg(crate::rkt_bin())
            .args(rkt.global_args())
            .arg("api-service")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("systemd-socket-activate (Debian's systemd package)");
        ApiService::listening(child, addr)
    }

    pub fn start(rkt: &Rkt) -> ApiService {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = rkt
            .command()
            .args(["api-service", &format!("--listen={addr}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting rkt api-service");
        ApiService::listening(child, addr)
    }

    /// The service run by `uid`:`gid` (no supplementary groups), as rkt's
    /// unit file ran it: an unprivileged member of the data dir's group.
    pub fn start_as(rkt: &Rkt, uid: u32, gid: u32) -> ApiService {
        let addr = format!("127.0.0.1:{}", free_port());
        let child = crate::as_user(uid, gid)
            .args(rkt.global_args())
            .args(["api-service", &format!("--listen={addr}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting rkt api-service through setpriv");
        ApiService::listening(child, addr)
    }

    /// `child` (the service, or what starts it), once `addr` accepts.
    fn listening(child: Child, addr: String) -> ApiService {
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
        let service = ApiService { child, addr };
        assert!(up, "the api service did not listen on {}", service.addr);
        service
    }

    /// The Python client asked for `method` with `request`.
    fn client(&self, method: &str, request: &Value) -> Command {
        let mut cmd = Command::new(python());
        cmd.arg(client_script())
            .arg(stubs())
            .arg(&self.addr)
            .arg(method)
            .arg(request.to_string());
        cmd
    }

    /// A unary call, or a stream that fails at once: the response (or
    /// `{"error", "details"}`) as JSON.
    pub fn call(&self, method: &str, request: &Value) -> Value {
        let out = self
            .client(method, request)
            .output()
            .expect("running the Python client");
        let stdout = String::from_utf8_lossy(&out.stdout);
        // A stream that failed at once printed READY before its error.
        let answer = stdout.trim().lines().last().unwrap_or("");
        serde_json::from_str(answer).unwrap_or_else(|_| {
            panic!(
                "{method} {request}: no JSON answer: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// A stream, read in the background; returns once the call is
    /// established on the server.
    pub fn stream(&self, method: &str, request: &Value, until: Option<&str>) -> Stream {
        let mut cmd = self.client(method, request);
        cmd.args(["--timeout", "60"]);
        if let Some(t) = until {
            cmd.args(["--stream-until", t]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("running the Python client");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let ready = first.trim() == "READY";
        let stream = Stream { child, stdout };
        assert!(ready, "{method}: the stream did not start: {first}");
        stream
    }
}

impl Drop for ApiService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A streaming call's client process.
pub struct Stream {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Stream {
    /// The responses up to and including the first `done` accepts (or
    /// until the stream ends).
    pub fn read_until(&mut self, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        let mut line = String::new();
        while self.stdout.read_line(&mut line).unwrap_or(0) > 0 {
            let v = serde_json::from_str(line.trim()).unwrap_or(Value::String(line.clone()));
            line.clear();
            let stop = done(&v);
            out.push(v);
            if stop {
                break;
            }
        }
        out
    }

    /// Every response until the stream ends (the client stops at its
    /// `until` event type, or the server closes the stream).
    pub fn responses(mut self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut line = String::new();
        while self.stdout.read_line(&mut line).unwrap_or(0) > 0 {
            out.push(serde_json::from_str(line.trim()).unwrap_or(Value::String(line.clone())));
            line.clear();
        }
        let _ = self.child.wait();
        out
    }
}
