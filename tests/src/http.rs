//! A local HTTP(S) server for the fetch tests (`tests/http/server.py`, on
//! Python's standard library) and a CA of the test's own, made with the
//! openssl CLI, that rkt is told to trust through `SSL_CERT_FILE`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A CA and a server certificate it issued for 127.0.0.1 and localhost.
pub struct TestCa {
    pub ca_pem: PathBuf,
    pub server_pem: PathBuf,
    pub server_key: PathBuf,
}

impl TestCa {
    /// Makes the CA and the server certificate in `dir`.
    pub fn new(dir: &Path) -> TestCa {
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = dir.join("ca.key");
        let ca_pem = dir.join("ca.pem");
        let server_key = dir.join("server.key");
        let csr = dir.join("server.csr");
        let server_pem = dir.join("server.pem");
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:example.com\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let p = |p: &Path| p.to_str().unwrap().to_string();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &p(&ca_key),
            "-out",
            &p(&ca_pem),
            "-subj",
            "/CN=rkt test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &p(&server_key),
            "-out",
            &p(&csr),
            "-subj",
            "/CN=localhost",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p(&csr),
            "-CA",
            &p(&ca_pem),
            "-CAkey",
            &p(&ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &p(&server_pem),
            "-extfile",
            &p(&ext),
        ]);
        TestCa {
            ca_pem,
            server_pem,
            server_key,
        }
    }
}

#[track_caller]
fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The port a test server started with a piped stdout prints as its
/// first line once it listens.
pub fn announced_port(child: &mut Child) -> u16 {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("a piped stdout"))
        .read_line(&mut line)
        .expect("the server's first line");
    line.trim().parse().expect("the server's port")
}

/// The server; killed on drop.
pub struct HttpServer {
    child: Child,
    root: PathBuf,
    pub port: u16,
    tls: bool,
}

impl HttpServer {
    /// Serves `root` over TLS with `ca`'s server certificate, or plain
    /// http without one.
    pub fn start(root: &Path, ca: Option<&TestCa>) -> HttpServer {
        HttpServer::spawn(Command::new("python3"), root, ca)
    }

    fn spawn(mut cmd: Command, root: &Path, ca: Option<&TestCa>) -> HttpServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("http/server.py");
        let root = root.canonicalize().unwrap();
        cmd.arg(script).arg(&root);
        if let Some(ca) = ca {
            cmd.arg(&ca.server_pem).arg(&ca.server_key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let port = announced_port(&mut child);
        HttpServer {
            child,
            root,
            port,
            tls: ca.is_some(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!(
            "{scheme}://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// The requests served so far: `METHOD PATH STATUS`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Forgets the requests served so far.
    pub fn clear_requests(&self) {
        let _ = std::fs::remove_file(self.root.join("requests.log"));
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test "internet host": a network namespace of its own where
/// `example.com` is 127.0.0.1 (`ip netns exec` mounts
/// `/etc/netns/<ns>/hosts` over `/etc/hosts`) and the server listens on
/// port 443, so appc discovery's `https://example.com/...` reaches it.
/// rkt runs inside the namespace through [`Host::rkt`].
pub struct Host {
    pub netns: String,
    server: Option<HttpServer>,
}

impl Host {
    pub fn start(root: &Path, ca: &TestCa) -> Host {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let netns = format!(
            "rkt-host-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let ip = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().unwrap().success();
            assert!(ok, "ip {args:?}");
        };
        ip(&["netns", "add", &netns]);
        let mut host = Host {
            netns,
            server: None,
        };
        ip(&["-n", &host.netns, "link", "set", "lo", "up"]);
        let etc = host.etc_dir();
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("hosts"), "127.0.0.1 localhost example.com\n").unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.netns, "python3"])
            .env("PORT", "443");
        host.server = Some(HttpServer::spawn(cmd, root, Some(ca)));
        host
    }

    fn etc_dir(&self) -> PathBuf {
        Path::new("/etc/netns").join(&self.netns)
    }

    pub fn server(&self) -> &HttpServer {
        self.server.as_ref().unwrap()
    }

    /// rkt with `args`, run in the namespace, trusting `ca`.
    pub fn rkt(&self, rkt: &crate::Rkt, ca: &TestCa, args: &[&str]) -> crate::Out {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(crate::rkt_bin())
            .args(rkt.global_args())
            .args(args)
            .env("SSL_CERT_FILE", &ca.ca_pem)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        crate::Out::from_output(out)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.server = None;
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(self.etc_dir());
    }
}

/// A test environment, a GnuPG home with one signing key
/// (`signer@example.com`), and a CA of its own: what the fetch and
/// discovery tests start from.
pub fn signer_and_ca() -> (crate::Rkt, crate::gpg::Gpg, crate::gpg::Key, TestCa) {
    let rkt = crate::Rkt::new();
    let gpg = crate::gpg::Gpg::new();
    let key = gpg.new_key("Test Signer", "signer@example.com", "ed25519", "1y", None);
    let ca = TestCa::new(&rkt.root().join("ca"));
    (rkt, gpg, key, ca)
}
