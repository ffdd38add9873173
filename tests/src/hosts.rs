//! Test "hosts" and servers for networking tests: another host as a network
//! namespace joined to ours by a veth pair, and an image that serves TCP
//! and UDP on named ports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::pods::{tcp_read, wait_until};
use crate::Rkt;

/// Asserts that host port `port` serves `reply` from the host's 127.0.0.1
/// (waiting up to `wait` for the pod to listen) and from another host;
/// that host, for more checks.
#[track_caller]
pub fn assert_forwarded(port: u16, reply: &str, wait: Duration) -> OtherHost {
    let local = format!("127.0.0.1:{port}");
    let mut got = String::new();
    assert!(
        wait_until(wait, || {
            got = tcp_read(&local);
            got.contains(reply)
        }),
        "via 127.0.0.1: {got:?}"
    );
    let other = OtherHost::new();
    // The test servers answer one connection at a time (`nc -l` in a
    // loop): the next one may take a moment to listen again.
    let mut remote = String::new();
    assert!(
        wait_until(wait, || {
            remote = other.run(&format!("busybox nc {} {port} </dev/null", other.host_ip));
            remote.contains(reply)
        }),
        "from another host: {remote:?}"
    );
    other
}

/// A busybox image whose app serves `reply` on its tcp port `http` (80)
/// and udp port `echo` (7), and declares both.
pub fn server_aci(rkt: &Rkt, reply: &str) -> PathBuf {
    use images::recipes::{busybox_manifest, busybox_version, populate_busybox_rootfs};
    let busybox = crate::pods::host_busybox();
    let mut m = busybox_manifest(&busybox_version(&busybox).unwrap()).unwrap();
    m.name = "example.com/server".parse().unwrap();
    let app = m.app.as_mut().unwrap();
    app.exec = vec![
        "/bin/sh".into(),
        "-c".into(),
        format!(
            "/inspect --serve-udp-echo=0.0.0.0:7 --serve-http-timeout=600 & \
             while true; do echo {reply} | nc -l -p 80; done"
        ),
    ];
    app.ports = serde_json::from_value(serde_json::json!([
        {"name": "http", "protocol": "tcp", "port": 80},
        {"name": "echo", "protocol": "udp", "port": 7}
    ]))
    .unwrap();
    crate::pods::build_aci(rkt.root(), "server.aci", m, |root| {
        populate_busybox_rootfs(root, &busybox).unwrap();
        std::fs::copy(crate::inspect_bin(), root.join("inspect")).unwrap();
    })
}

/// A "host" elsewhere: a network namespace joined to ours by a veth pair,
/// `192.168.<23x>.1` and `fd31:<23x>::1` on our side (`host_ip`,
/// `host_ip6`) and `.2` / `::2` on its; each one (tests run in parallel)
/// on subnets of its own.
pub struct OtherHost {
    name: String,
    pub host_ip: String,
    pub host_ip6: String,
}

impl OtherHost {
    #[allow(clippy::new_without_default)]
    pub fn new() -> OtherHost {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("rkt-other-{}-{n}", std::process::id());
        let ip = |args: &[&str]| {
            let ok = std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap()
                .success();
            assert!(ok, "ip {args:?}");
        };
        ip(&["netns", "add", &name]);
        let host_end = format!("veo{}x{n}", std::process::id() % 100000);
        let subnet = format!("192.168.{}", 231 + n);
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &name,
        ]);
        ip(&["addr", "add", &format!("{subnet}.1/24"), "dev", &host_end]);
        ip(&["link", "set", &host_end, "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{subnet}.2/24"),
            "dev",
            "eth0",
        ]);
        // Without duplicate address detection: usable at once.
        let subnet6 = format!("fd31:{}:", 231 + n);
        ip(&[
            "addr",
            "add",
            &format!("{subnet6}:1/64"),
            "dev",
            &host_end,
            "nodad",
        ]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{subnet6}:2/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        ip(&["-n", &name, "link", "set", "eth0", "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        OtherHost {
            name,
            host_ip: format!("{subnet}.1"),
            host_ip6: format!("{subnet6}:1"),
        }
    }

    /// What `bash -c script` prints there.
    pub fn run(&self, script: &str) -> String {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.name, "bash", "-c", script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        // Deleting the namespace takes its veth end, and the pair with it.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Runs `ip ARGS`; whether it succeeded.
pub fn ip(args: &[&str]) -> bool {
    std::process::Command::new("ip")
        .args(args)
        .status()
        .unwrap()
        .success()
}

/// A veth pair on the host standing in for a LAN link (these kernels
/// have no dummy links): `name`, up, and its peer `<name>p`; deleted,
/// with the peer, when dropped.
pub struct LanLink {
    pub name: String,
    pub peer: String,
}

impl LanLink {
    #[track_caller]
    pub fn new(name: &str) -> LanLink {
        let peer = format!("{name}p");
        assert!(ip(&[
            "link", "add", name, "type", "veth", "peer", "name", &peer
        ]));
        let link = LanLink {
            name: name.to_string(),
            peer,
        };
        assert!(ip(&["link", "set", name, "up"]));
        link
    }
}

impl Drop for LanLink {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.name]);
    }
}

/// The lease files (named by address) in a host-local directory.
pub fn leases(net_dir: &Path) -> Vec<String> {
    std::fs::read_dir(net_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Lease files of `uuid` in the host-local directory of `net`.
pub fn leases_of(net_dir: &Path, uuid: &str) -> Vec<String> {
    leases(net_dir)
        .into_iter()
        .filter(|ip| {
            std::fs::read_to_string(net_dir.join(ip)).is_ok_and(|owner| owner.contains(uuid))
        })
        .collect()
}
