//! ptp against the reference ptp in real namespaces: same result shape, same
//! addresses and routes inside and outside, same masquerade rules, same
//! leases, and DEL leaves nothing behind (also when the netns is gone).

mod common;
use common::*;

use serde_json::Value;
use std::path::Path;

/// One side of a comparison: a namespace, a subnet, a network name.
struct Side {
    ns: Netns,
    third: u8,
    net: String,
    data: TmpDir,
    cni_path: String,
    bin: std::path::PathBuf,
}

impl Side {
    fn new(tag: &str, third: u8, ours_ptp: bool, ours_ipam: bool) -> Side {
        let cni_path = if ours_ipam {
            ours_dir().display().to_string()
        } else {
            REF_DIR.to_string()
        };
        Side {
            ns: Netns::new(tag),
            third,
            net: unique(tag),
            data: TmpDir::new(tag),
            cni_path,
            bin: if ours_ptp {
                ours("ptp")
            } else {
                reference("ptp")
            },
        }
    }

    fn conf(&self, version: &str, masq: bool, extra: &str) -> String {
        format!(
            r#"{{"cniVersion":"{version}","name":"{}","type":"ptp","ipMasq":{masq},"mtu":1400{extra},
            "ipam":{{"type":"host-local","subnet":"172.30.{}.0/24","dataDir":"{}",
            "routes":[{{"dst":"0.0.0.0/0"}},{{"dst":"10.{}.0.0/16"}}]}},
            "dns":{{"nameservers":["10.0.0.53"],"search":["example.test"]}}}}"#,
            self.net,
            self.third,
            self.data.path(),
            self.third
        )
    }

    fn run(&self, cmd: &str, conf: &str, extra: &[(&str, &str)]) -> Out {
        let ns = self.ns.path();
        let mut env = vec![
            ("CNI_CONTAINERID", "ctr1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", ns.as_str()),
            ("CNI_PATH", self.cni_path.as_str()),
        ];
        env.extend_from_slice(extra);
        run(&self.bin, cmd, conf, &env)
    }

    /// Replaces what differs by construction (subnet, names, MACs) so two
    /// sides can be compared.
    fn normalize(&self, v: &Value, host_veth: &str) -> Value {
        let s = v
            .to_string()
            .replace(&format!("172.30.{}.", self.third), "172.30.X.")
            .replace(&format!("10.{}.0.0", self.third), "10.X.0.0")
            .replace(&self.net, "NET")
            .replace(&self.ns.path(), "NETNS")
            .replace(host_veth, "HOSTVETH");
        serde_json::from_str(&s).unwrap_or(Value::Null)
    }

    fn leases(&self) -> Vec<(String, String)> {
        lease_files(&Path::new(self.data.path()).join(&self.net))
    }
}

impl Drop for Side {
    /// Also on test failure: our DEL removes the lease, the veth and any
    /// masquerade rules of this network (the chain name is the same for the
    /// reference's rules).
    fn drop(&mut self) {
        let conf = self.conf("1.0.0", true, "");
        let ns = self.ns.path();
        let path = ours_dir().display().to_string();
        let env = [
            ("CNI_CONTAINERID", "ctr1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", ns.as_str()),
            ("CNI_PATH", path.as_str()),
        ];
        let _ = run(&ours("ptp"), "DEL", &conf, &env);
    }
}

/// Interfaces without what the kernel makes up per link (index, MAC,
/// IPv6 link-local addresses).
fn link_view(addr_json: &Value) -> Value {
    let list = addr_json.as_array().cloned().unwrap_or_default();
    Value::Array(
        list.iter()
            .map(|l| {
                let inet: Vec<Value> = l["addr_info"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|a| a["family"] == "inet")
                    .map(|a| {
                        serde_json::json!({"local": a["local"], "prefixlen": a["prefixlen"],
                        "broadcast": a["broadcast"], "scope": a["scope"]})
                    })
                    .collect();
                serde_json::json!({"ifname": l["ifname"], "flags": l["flags"], "mtu": l["mtu"],
                    "txqlen": l["txqlen"], "link_type": l["link_type"], "inet": inet})
            })
            .collect(),
    )
}

fn host_link(name: &str) -> Value {
    ip_json(&["-j", "addr", "show", "dev", name])
}

fn host_routes(third: u8) -> Value {
    ip_json(&["-j", "route", "show", &format!("172.30.{third}.0/24")])
}

fn host_link_exists(name: &str) -> bool {
    std::process::Command::new("ip")
        .args(["link", "show", name])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn compare_add(version: &str, t_ours: u8, t_ref: u8) {
    require("ptp");
    let a = Side::new(&format!("pa{t_ours}"), t_ours, true, true);
    let b = Side::new(&format!("pb{t_ref}"), t_ref, false, false);
    let ra = a.run("ADD", &a.conf(version, true, ""), &[]);
    let rb = b.run("ADD", &b.conf(version, true, ""), &[]);
    assert_eq!(ra.code, 0, "ours: {}", ra.stdout);
    assert_eq!(rb.code, 0, "ref: {}", rb.stdout);
    let (ja, jb) = (ra.json(), rb.json());
    let veth_a = ja["interfaces"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let veth_b = jb["interfaces"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(veth_a.starts_with("veth") && veth_a.len() == 12, "{veth_a}");

    // The result: same shape and values once names and MACs are masked.
    let mask_macs = |mut v: Value| {
        for i in v["interfaces"].as_array_mut().into_iter().flatten() {
            assert_eq!(i["mac"].as_str().map(str::len), Some(17), "mac {i}");
            i["mac"] = "MAC".into();
        }
        v
    };
    assert_eq!(
        mask_macs(a.normalize(&ja, &veth_a)),
        mask_macs(b.normalize(&jb, &veth_b)),
        "results differ:\n{}\n{}",
        ra.stdout,
        rb.stdout
    );

    // Inside the namespace: links, addresses, routes.
    let la = a.normalize(&link_view(&a.ns.ip_json(&["addr"])), &veth_a);
    let lb = b.normalize(&link_view(&b.ns.ip_json(&["addr"])), &veth_b);
    assert_eq!(la, lb);
    assert_eq!(
        a.normalize(&a.ns.ip_json(&["route"]), &veth_a),
        b.normalize(&b.ns.ip_json(&["route"]), &veth_b)
    );
    // On the host: the veth's address and the route to the container.
    assert_eq!(
        a.normalize(&link_view(&host_link(&veth_a)), &veth_a),
        b.normalize(&link_view(&host_link(&veth_b)), &veth_b)
    );
    assert_eq!(
        a.normalize(&host_routes(a.third), &veth_a),
        b.normalize(&host_routes(b.third), &veth_b)
    );
    let routes_a = ip_json(&[
        "-j",
        "route",
        "show",
        "172.30.{}.2".replace("{}", &a.third.to_string()).as_str(),
    ]);
    assert_eq!(routes_a[0]["dev"], veth_a.as_str());
    assert_eq!(routes_a[0]["scope"], "host");

    // Masquerading: same rules modulo chain hash and names.
    let chain = |net: &str| {
        let r = nat_rules(&format!("name: \\\"{net}\\\""));
        r.iter()
            .map(|l| {
                let mut s = l.replace(net, "NET");
                if let Some(p) = s.find("CNI-") {
                    s.replace_range(p..p + 28, "CNI-HASH");
                }
                s.replace(
                    &format!("172.30.{}.", if net == a.net { a.third } else { b.third }),
                    "172.30.X.",
                )
            })
            .collect::<Vec<_>>()
    };
    let (ca, cb) = (chain(&a.net), chain(&b.net));
    assert_eq!(ca.len(), 3, "{ca:?}");
    assert_eq!(ca, cb);

    // Leases.
    let mask = |v: Vec<(String, String)>, third: u8| -> Vec<(String, String)> {
        v.into_iter()
            .map(|(n, c)| {
                (
                    n.replace(&format!("172.30.{third}."), "X."),
                    c.replace(&format!("172.30.{third}."), "X."),
                )
            })
            .collect()
    };
    assert_eq!(mask(a.leases(), a.third), mask(b.leases(), b.third));

    // CHECK with the ADD result as prevResult, by both implementations.
    let with_prev = |side: &Side, res: &Value| {
        let mut c: Value =
            serde_json::from_str(&side.conf(version, true, "")).unwrap_or(Value::Null);
        c["prevResult"] = res.clone();
        c.to_string()
    };
    assert_eq!(a.run("CHECK", &with_prev(&a, &ja), &[]).code, 0);
    // The reference CHECK says the same of our ADD as of its own (it fails
    // on routes without "gw": it looks for a nil gateway).
    let mut a = a;
    a.bin = reference("ptp");
    a.cni_path = REF_DIR.into();
    let rc = a.run("CHECK", &with_prev(&a, &ja), &[]);
    let rc_own = b.run("CHECK", &with_prev(&b, &jb), &[]);
    assert_eq!(
        rc.code, rc_own.code,
        "reference CHECK of our ADD: {}",
        rc.stdout
    );
    assert_eq!(
        a.normalize(&rc.error(), "-"),
        b.normalize(&rc_own.error(), "-")
    );
    a.bin = ours("ptp");
    a.cni_path = ours_dir().display().to_string();
    delete_and_verify(&a, version, &veth_a);
    delete_and_verify(&b, version, &veth_b);
}

/// DEL removes the veth, the lease and the rules; a second DEL is fine.
fn delete_and_verify(s: &Side, version: &str, veth: &str) {
    for _ in 0..2 {
        let d = s.run("DEL", &s.conf(version, true, ""), &[]);
        assert_eq!(d.code, 0, "{}", d.stdout);
    }
    assert!(!host_link_exists(veth), "{veth} left behind");
    assert!(nat_rules(&format!("name: \\\"{}\\\"", s.net)).is_empty());
    let names: Vec<String> = s.leases().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["last_reserved_ip.0", "lock"]);
    let links = s.ns.ip_json(&["link"]);
    assert_eq!(
        links.as_array().map(Vec::len),
        Some(1),
        "only lo left: {links}"
    );
}

#[test]
fn same_as_reference_v1() {
    compare_add("1.0.0", 10, 11);
}

#[test]
fn same_as_reference_v040() {
    compare_add("0.4.0", 12, 13);
}

/// The reference host-local works as our ptp's IPAM too.
#[test]
fn with_reference_host_local() {
    require("ptp");
    let s = Side::new("pm14", 14, true, false);
    let r = s.run("ADD", &s.conf("1.0.0", false, ""), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["ips"][0]["address"], "172.30.14.2/24");
    let veth = r.json()["interfaces"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    delete_and_verify(&s, "1.0.0", &veth);
}

/// A TCP connection from the container reaches the host end of the veth.
#[test]
fn container_reaches_gateway() {
    require("ptp");
    let s = Side::new("pc15", 15, true, true);
    let r = s.run("ADD", &s.conf("1.0.0", false, ""), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let listener =
        std::net::TcpListener::bind("172.30.15.1:0").expect("bind on the gateway address");
    let port = listener.local_addr().expect("addr").port();
    let st = std::process::Command::new("ip")
        .args(["netns", "exec", &s.ns.name, "bash", "-c"])
        .arg(format!("echo hi > /dev/tcp/172.30.15.1/{port}"))
        .status()
        .expect("ip netns exec");
    assert!(st.success());
    let (_, peer) = listener.accept().expect("accept");
    assert_eq!(peer.ip().to_string(), "172.30.15.2");
    let veth = r.json()["interfaces"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    delete_and_verify(&s, "1.0.0", &veth);
}

/// DEL after the namespace is gone still releases the lease and the rules.
#[test]
fn del_after_netns_gone() {
    require("ptp");
    let s = Side::new("pg16", 16, true, true);
    let r = s.run("ADD", &s.conf("1.1.0", true, ""), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["cniVersion"], "1.1.0");
    let veth = r.json()["interfaces"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(nat_rules(&format!("name: \\\"{}\\\"", s.net)).len(), 3);
    s.ns.delete();
    // The runtime passes the cached ADD result; with it the host end goes
    // at once even though the kernel frees the namespace asynchronously.
    let mut c: Value = serde_json::from_str(&s.conf("1.1.0", true, "")).unwrap_or(Value::Null);
    c["prevResult"] = r.json();
    let d = s.run("DEL", &c.to_string(), &[]);
    assert_eq!(d.code, 0, "{}", d.stdout);
    assert!(!host_link_exists(&veth));
    let d = s.run("DEL", &s.conf("1.1.0", true, ""), &[]);
    assert_eq!(d.code, 0, "{}", d.stdout);
    assert!(nat_rules(&format!("name: \\\"{}\\\"", s.net)).is_empty());
    let names: Vec<String> = s.leases().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["last_reserved_ip.0", "lock"]);
}

/// Failures are CNI errors and leave no veth, lease or rule behind.
#[test]
fn bad_input() {
    require("ptp");
    let s = Side::new("pe17", 17, true, true);
    // Take .2 for someone else, then ask for it.
    let pre = run(
        &ours("host-local"),
        "ADD",
        &s.conf("1.0.0", true, ""),
        &[
            ("CNI_CONTAINERID", "other"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/x"),
            ("CNI_PATH", "/x"),
        ],
    );
    assert_eq!(pre.code, 0, "{}", pre.stdout);
    let e = s.run(
        "ADD",
        &s.conf("1.0.0", true, ""),
        &[("CNI_ARGS", "IP=172.30.17.2")],
    );
    assert_eq!(e.code, 1);
    assert!(
        e.json()["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("is not available"),
        "{}",
        e.stdout
    );
    // No ipam type.
    let e = s.run(
        "ADD",
        r#"{"cniVersion":"1.0.0","name":"x","type":"ptp","ipam":{}}"#,
        &[],
    );
    assert_eq!(e.json()["msg"], "no plugin name provided");
    // Missing IPAM binary.
    let e = s.run(
        "ADD",
        r#"{"cniVersion":"1.0.0","name":"x","type":"ptp","ipam":{"type":"nope"}}"#,
        &[],
    );
    assert!(e.json()["msg"]
        .as_str()
        .unwrap_or_default()
        .starts_with("failed to find plugin \"nope\""));
    // Malformed JSON.
    assert_eq!(s.run("ADD", "{", &[]).json()["code"], 6);
    // The interface name is taken in the container: the lease is given back.
    let st = std::process::Command::new("ip")
        .args([
            "-n", &s.ns.name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
        ])
        .status()
        .expect("ip link add");
    assert!(st.success());
    let e = s.run("ADD", &s.conf("1.0.0", true, ""), &[]);
    assert_eq!(
        e.json()["msg"],
        "container veth name provided (eth0) already exists",
        "{}",
        e.stdout
    );
    assert!(nat_rules(&format!("name: \\\"{}\\\"", s.net)).is_empty());
    let names: Vec<String> = s.leases().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        vec!["172.30.17.2", "last_reserved_ip.0", "lock"],
        "only the other container's lease"
    );
    // CHECK without prevResult.
    let e = s.run("CHECK", &s.conf("1.0.0", true, ""), &[]);
    assert_eq!(e.code, 1);
}

/// GC (1.1.0) drops leases and masquerade rules of attachments that are no
/// longer valid, and keeps the others.
#[test]
fn gc_keeps_only_valid_attachments() {
    require("ptp");
    let s = Side::new("pgc18", 18, true, true);
    let other = Netns::new("pgc18b");
    let conf = s.conf("1.1.0", true, "");
    assert_eq!(s.run("ADD", &conf, &[]).code, 0);
    let other_path = other.path();
    let path = ours_dir().display().to_string();
    let env2 = [
        ("CNI_CONTAINERID", "ctr2"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_NETNS", other_path.as_str()),
        ("CNI_PATH", path.as_str()),
    ];
    assert_eq!(run(&ours("ptp"), "ADD", &conf, &env2).code, 0);
    assert_eq!(nat_rules(&format!("name: \\\"{}\\\"", s.net)).len(), 6);
    let mut gc: Value = serde_json::from_str(&conf).unwrap_or(Value::Null);
    gc["cni.dev/valid-attachments"] =
        serde_json::json!([{"containerID": "ctr2", "ifname": "eth0"}]);
    let g = run(
        &ours("ptp"),
        "GC",
        &gc.to_string(),
        &[("CNI_PATH", path.as_str())],
    );
    assert_eq!(g.code, 0, "{}", g.stdout);
    let rules = nat_rules(&format!("name: \\\"{}\\\"", s.net));
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert!(rules.iter().all(|r| r.contains("ctr2")));
    let names: Vec<String> = s.leases().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["172.30.18.3", "last_reserved_ip.0", "lock"]);
    let st = run(
        &ours("ptp"),
        "STATUS",
        &conf,
        &[("CNI_PATH", path.as_str())],
    );
    assert_eq!(st.code, 0, "{}", st.stdout);
    assert_eq!(run(&ours("ptp"), "DEL", &conf, &env2).code, 0);
    assert!(nat_rules(&format!("name: \\\"{}\\\"", s.net)).is_empty());
}
