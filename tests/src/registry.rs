//! A real registry for the tests: Debian's `docker-registry` (distribution
//! 2.8) on 127.0.0.1, optionally behind token authentication served by
//! `oci/token_server.py`; images are built with umoci and pushed with
//! skopeo, as a user without docker would.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::announced_port;
use crate::pods::free_port;

const USER: &str = "puller";
const PASSWORD: &str = "s3cret";

/// The registry process (and its token service); killed on drop.
pub struct Registry {
    child: Child,
    token: Option<Child>,
    dir: PathBuf,
    pub port: u16,
}

impl Registry {
    /// An open registry storing under `dir`.
    pub fn start(dir: &Path) -> Registry {
        Registry::spawn(dir, None)
    }

    /// A registry that wants a token from its token service, which gives
    /// one to [`Registry::credentials`] only.
    pub fn start_with_token_auth(dir: &Path) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let key = dir.join("signer.key");
        let cert = dir.join("signer.crt");
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=token-signer", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(made.success(), "openssl req failed");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("oci/token_server.py");
        let mut token = Command::new("python3")
            .arg(script)
            .args(["test-registry", "test-issuer"])
            .arg(&key)
            .arg(&cert)
            .args([USER, PASSWORD])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let token_port = announced_port(&mut token);
        let auth = format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
            cert.display()
        );
        let mut registry = Registry::spawn(dir, Some(auth));
        registry.token = Some(token);
        registry
    }

    fn spawn(dir: &Path, auth: Option<String>) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let port = free_port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: functional-tests\n{}",
                dir.join("data").display(),
                auth.unwrap_or_default()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (Debian's docker-registry package)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            token: None,
            dir,
            port,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `docker://127.0.0.1:PORT/<name>`.
    pub fn reference(&self, name: &str) -> String {
        format!("docker://{}/{name}", self.host())
    }

    /// The user and password its token service accepts.
    pub fn credentials() -> (&'static str, &'static str) {
        (USER, PASSWORD)
    }

    /// Pushes `oci:<layout>:<tag>` as `<name>` with skopeo (with the
    /// credentials when the registry wants them). `all` keeps an index
    /// whole instead of picking this machine's image.
    pub fn push(&self, layout: &Path, tag: &str, name: &str, all: bool) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if self.token.is_some() {
            cmd.arg(format!("--dest-creds={USER}:{PASSWORD}"));
        }
        if all {
            cmd.arg("--all");
        }
        let out = cmd
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{name}", self.host()))
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Where the registry keeps blob `digest` (`sha256:…`).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The token service's requests: `<path> basic|anonymous`.
    pub fn token_requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.child).chain(self.token.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An OCI layout at `dir` holding the five-layer test image as `tag`
/// (`oci/five-layers.sh`: whiteout, opaque directory, user, ports, volume).
pub fn build_five_layers(dir: &Path, tag: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("oci/five-layers.sh");
    let out = Command::new(script)
        .arg(dir)
        .arg(tag)
        .output()
        .expect("five-layers.sh");
    assert!(
        out.status.success(),
        "five-layers.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The descriptors of an image manifest in a layout, by tag: (manifest
/// digest, config digest, layer digests).
pub fn layout_image(dir: &Path, tag: &str) -> (String, String, Vec<String>) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .expect("the tag");
    let digest = entry["digest"].as_str().unwrap().to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout_blob(dir, &digest)).unwrap()).unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    (digest, config, layers)
}

/// A blob's file in a layout.
pub fn layout_blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}
