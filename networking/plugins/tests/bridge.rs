//! bridge against the reference bridge in real namespaces, each side with
//! its own bridge device, subnet and network name.

mod common;
use common::*;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

struct Side {
    ns: Netns,
    third: u8,
    net: String,
    bridge: String,
    data: TmpDir,
    ours: bool,
}

impl Side {
    fn new(tag: &str, third: u8, ours: bool) -> Side {
        Side {
            ns: Netns::new(tag),
            third,
            net: unique(tag),
            // Interface names are at most 15 bytes.
            bridge: format!("cb{}{}", third, std::process::id() % 100_000),
            data: TmpDir::new(tag),
            ours,
        }
    }

    fn conf(&self, extra: &str) -> String {
        format!(
            r#"{{"cniVersion":"1.0.0","name":"{}","type":"bridge","bridge":"{}","mtu":1400{extra},
            "ipam":{{"type":"host-local","subnet":"172.30.{}.0/24","dataDir":"{}","routes":[{{"dst":"0.0.0.0/0"}}]}}}}"#,
            self.net,
            self.bridge,
            self.third,
            self.data.path()
        )
    }

    fn run_with(&self, bin_ours: bool, cmd: &str, conf: &str, id: &str) -> Out {
        self.run_with_args(bin_ours, cmd, conf, id, "")
    }

    fn run_with_args(
        &self,
        bin_ours: bool,
        cmd: &str,
        conf: &str,
        id: &str,
        cni_args: &str,
    ) -> Out {
        let ns = self.ns.path();
        let (bin, path) = if bin_ours {
            (ours("bridge"), ours_dir().display().to_string())
        } else {
            (reference("bridge"), REF_DIR.to_string())
        };
        let env = [
            ("CNI_CONTAINERID", id),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", ns.as_str()),
            ("CNI_PATH", path.as_str()),
            ("CNI_ARGS", cni_args),
        ];
        run(&bin, cmd, conf, &env)
    }

    fn run(&self, cmd: &str, conf: &str) -> Out {
        self.run_with(self.ours, cmd, conf, "ctr1")
    }

    fn normalize(&self, v: &Value, veth: &str) -> Value {
        let s = v
            .to_string()
            .replace(&format!("172.30.{}.", self.third), "172.30.X.")
            .replace(&self.net, "NET")
            .replace(&self.bridge, "BRIDGE")
            .replace(&self.ns.path(), "NETNS")
            .replace(veth, "HOSTVETH");
        serde_json::from_str(&s).unwrap_or(Value::Null)
    }

    fn lease_names(&self) -> Vec<String> {
        lease_files(&Path::new(self.data.path()).join(&self.net))
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }
}

impl Drop for Side {
    /// Also on failure: DEL (removes lease, veth, rules) and the bridge.
    fn drop(&mut self) {
        let _ = self.run_with(true, "DEL", &self.conf(r#","ipMasq":true"#), "ctr1");
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

/// The host end of the veth, from an ADD result (bridge, host, container).
fn host_veth(result: &Value) -> String {
    result["interfaces"][1]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn inet_view(addr_json: &Value) -> Value {
    Value::Array(
        addr_json
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                let inet: Vec<Value> = l["addr_info"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|a| a["family"] == "inet")
                    .map(|a| serde_json::json!([a["local"], a["prefixlen"], a["broadcast"], a["scope"]]))
                    .collect();
                serde_json::json!({"ifname": l["ifname"], "flags": l["flags"], "mtu": l["mtu"], "inet": inet})
            })
            .collect(),
    )
}

fn port_view(veth: &str) -> Value {
    let v = ip_json(&["-j", "-d", "link", "show", "dev", veth]);
    let l = &v[0];
    serde_json::json!({
        "master": l["master"], "mtu": l["mtu"], "flags": l["flags"],
        "hairpin": l["linkinfo"]["info_slave_data"]["hairpin"],
        "txqlen": l["txqlen"],
    })
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn same_as_reference() {
    require("bridge");
    let a = Side::new("ba20", 20, true);
    let b = Side::new("bb21", 21, false);
    let extra = r#","isGateway":true,"ipMasq":true,"hairpinMode":true"#;
    let (ra, rb) = (a.run("ADD", &a.conf(extra)), b.run("ADD", &b.conf(extra)));
    assert_eq!(ra.code, 0, "ours: {}", ra.stdout);
    assert_eq!(rb.code, 0, "ref: {}", rb.stdout);
    let (ja, jb) = (ra.json(), rb.json());
    let (veth_a, veth_b) = (host_veth(&ja), host_veth(&jb));
    // With isGateway both pin the bridge's own MAC instead of letting it
    // follow the lowest port MAC.
    for j in [&ja, &jb] {
        assert_ne!(j["interfaces"][0]["mac"], j["interfaces"][1]["mac"], "{j}");
    }
    let mask = |mut v: Value| {
        for i in v["interfaces"].as_array_mut().into_iter().flatten() {
            assert_eq!(i["mac"].as_str().map(str::len), Some(17));
            i["mac"] = "MAC".into();
        }
        v
    };
    assert_eq!(
        mask(a.normalize(&ja, &veth_a)),
        mask(b.normalize(&jb, &veth_b))
    );
    // Container side.
    assert_eq!(
        a.normalize(&inet_view(&a.ns.ip_json(&["addr"])), &veth_a),
        b.normalize(&inet_view(&b.ns.ip_json(&["addr"])), &veth_b)
    );
    assert_eq!(
        a.normalize(&a.ns.ip_json(&["route"]), &veth_a),
        b.normalize(&b.ns.ip_json(&["route"]), &veth_b)
    );
    // Host side: the bridge's gateway address, the port, the subnet route.
    let br = |s: &Side, v: &str| {
        s.normalize(
            &inet_view(&ip_json(&["-j", "addr", "show", "dev", &s.bridge])),
            v,
        )
    };
    assert_eq!(br(&a, &veth_a), br(&b, &veth_b));
    assert_eq!(
        a.normalize(&port_view(&veth_a), &veth_a),
        b.normalize(&port_view(&veth_b), &veth_b)
    );
    assert_eq!(port_view(&veth_a)["hairpin"], true);
    let rt = |s: &Side, v: &str| {
        s.normalize(
            &ip_json(&["-j", "route", "show", &format!("172.30.{}.0/24", s.third)]),
            v,
        )
    };
    assert_eq!(rt(&a, &veth_a), rt(&b, &veth_b));
    // Masquerade rules.
    let rules = |s: &Side| -> Vec<String> {
        nat_rules(&format!("name: \\\"{}\\\"", s.net))
            .iter()
            .map(|l| {
                let mut x = l
                    .replace(&s.net, "NET")
                    .replace(&format!("172.30.{}.", s.third), "X.");
                if let Some(p) = x.find("CNI-") {
                    x.replace_range(p..p + 28, "CNI-HASH");
                }
                x
            })
            .collect()
    };
    assert_eq!(rules(&a).len(), 3);
    assert_eq!(rules(&a), rules(&b));
    assert_eq!(
        a.lease_names(),
        vec!["172.30.20.2", "last_reserved_ip.0", "lock"]
    );

    // CHECK of our ADD by both implementations.
    let mut c: Value = serde_json::from_str(&a.conf(extra)).unwrap_or(Value::Null);
    c["prevResult"] = ja.clone();
    assert_eq!(a.run_with(true, "CHECK", &c.to_string(), "ctr1").code, 0);
    let rc = a.run_with(false, "CHECK", &c.to_string(), "ctr1");
    assert_eq!(rc.code, 0, "{}", rc.stdout);

    // DEL: veth, lease and rules go, the bridge stays (as the reference's).
    for s in [&a, &b] {
        for _ in 0..2 {
            assert_eq!(s.run("DEL", &s.conf(extra)).code, 0);
        }
        assert_eq!(s.lease_names(), vec!["last_reserved_ip.0", "lock"]);
        assert!(rules(s).is_empty());
        assert!(link_exists(&s.bridge));
    }
    assert!(!link_exists(&veth_a) && !link_exists(&veth_b));
}

#[test]
fn two_containers_talk_over_the_bridge() {
    require("bridge");
    let a = Side::new("bt22", 22, true);
    let other = Netns::new("bt22o");
    assert_eq!(a.run("ADD", &a.conf(r#","isGateway":true"#)).code, 0);
    let env_path = other.path();
    let path = ours_dir().display().to_string();
    let r = run(
        &ours("bridge"),
        "ADD",
        &a.conf(r#","isGateway":true"#),
        &[
            ("CNI_CONTAINERID", "ctr2"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", &env_path),
            ("CNI_PATH", &path),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["ips"][0]["address"], "172.30.22.3/24");
    // A refused connection proves the SYN got there and the RST came back.
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &a.ns.name,
            "bash",
            "-c",
            "echo > /dev/tcp/172.30.22.3/9",
        ])
        .output()
        .expect("exec");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("refused"),
        "{:?}",
        o
    );
    let d = run(
        &ours("bridge"),
        "DEL",
        &a.conf(r#","isGateway":true"#),
        &[
            ("CNI_CONTAINERID", "ctr2"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", &env_path),
            ("CNI_PATH", &path),
        ],
    );
    assert_eq!(d.code, 0);
}

#[test]
fn layer2_promisc_and_errors() {
    require("bridge");
    let a = Side::new("bl23", 23, true);
    let l2 = format!(
        r#"{{"cniVersion":"1.0.0","name":"{}","type":"bridge","bridge":"{}","promiscMode":true,"ipam":{{}}}}"#,
        a.net, a.bridge
    );
    let r = a.run("ADD", &l2);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.json().get("ips").is_none());
    assert_eq!(r.json()["interfaces"].as_array().map(Vec::len), Some(3));
    let flags = ip_json(&["-j", "link", "show", "dev", &a.bridge])[0]["flags"].clone();
    assert!(
        flags
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f == "PROMISC"),
        "{flags}"
    );
    assert_eq!(a.run("DEL", &l2).code, 0);
    assert_eq!(a.ns.ip_json(&["link"]).as_array().map(Vec::len), Some(1));

    let both = a.conf(r#","hairpinMode":true,"promiscMode":true"#);
    let e = a.run("ADD", &both);
    let f = a.run_with(false, "ADD", &both, "ctr1");
    assert_eq!(e.error(), f.error());
    // A non-bridge device with the bridge's name: refused, lease returned.
    let lo_conf = a
        .conf("")
        .replace(&format!("\"bridge\":\"{}\"", a.bridge), "\"bridge\":\"lo\"");
    let e = a.run("ADD", &lo_conf);
    assert_eq!(e.json()["msg"], "\"lo\" already exists but is not a bridge");
    assert_eq!(a.lease_names(), vec!["last_reserved_ip.0", "lock"]);
}

/// The container interface's MAC from `MAC=` in CNI_ARGS, `args.cni.mac`
/// and `runtimeConfig.mac` (which wins), and the same refusals of a bad
/// MAC or an unknown CNI_ARGS key, as the reference.
#[test]
fn mac_from_args_as_the_reference() {
    require("bridge");
    let a = Side::new("bm24", 24, true);
    let b = Side::new("bn25", 25, false);
    let mac_of = |s: &Side| -> String {
        let v = s.ns.ip_json(&["link", "show", "dev", "eth0"]);
        v[0]["address"].as_str().unwrap_or_default().to_string()
    };
    // host-local (both) refuses a CNI_ARGS key it does not know unless
    // IgnoreUnknown is set, so MAC= alone fails as with the reference.
    let cases: [(&str, &str, Option<&str>); 7] = [
        ("", "MAC=0a:58:ac:1e:00:42", None),
        (
            "",
            "IgnoreUnknown=1;MAC=0a:58:ac:1e:00:42",
            Some("0a:58:ac:1e:00:42"),
        ),
        (
            r#","args":{"cni":{"mac":"0a:58:ac:1e:00:43"}}"#,
            "IgnoreUnknown=1;MAC=0a:58:ac:1e:00:42",
            Some("0a:58:ac:1e:00:43"),
        ),
        (
            r#","runtimeConfig":{"mac":"0a:58:ac:1e:00:44"}"#,
            "IgnoreUnknown=1;MAC=0a:58:ac:1e:00:42",
            Some("0a:58:ac:1e:00:44"),
        ),
        ("", "IgnoreUnknown=1;MAC=not-a-mac", None),
        ("", "IP=172.30.1.5", None),
        (
            "",
            "IgnoreUnknown=1;FOO=bar;MAC=0a:58:ac:1e:00:45",
            Some("0a:58:ac:1e:00:45"),
        ),
    ];
    for (extra, cni_args, want) in cases {
        for s in [&a, &b] {
            let who = if s.ours { "ours" } else { "reference" };
            let out = s.run_with_args(s.ours, "ADD", &s.conf(extra), "ctr1", cni_args);
            match want {
                Some(mac) => {
                    assert_eq!(out.code, 0, "{who} {cni_args}: {}", out.stdout);
                    assert_eq!(
                        out.json()["interfaces"][2]["mac"],
                        mac,
                        "{who}: {}",
                        out.stdout
                    );
                    assert_eq!(mac_of(s), mac, "{who} {cni_args}");
                }
                None => assert_ne!(out.code, 0, "{who} accepted {cni_args}: {}", out.stdout),
            }
            let del = s.run_with_args(s.ours, "DEL", &s.conf(extra), "ctr1", "IgnoreUnknown=1");
            assert_eq!(del.code, 0, "{who} DEL: {}", del.stdout);
        }
    }
}

/// `vlan`: the bridge filters VLANs, each container port is an access port
/// of the VLAN, and with `isGateway` the gateway address sits on a
/// `<bridge>.<vlan>` interface of that VLAN, added to the result; all as
/// the reference does. An out-of-range VLAN is refused by both.
#[test]
fn vlan_access_ports_and_gateway_as_the_reference() {
    require("bridge");
    let a = Side::new("bv26", 26, true);
    let b = Side::new("bw27", 27, false);
    let extra = r#","vlan":100,"isGateway":true"#;
    let vlan_gateway = |s: &Side| format!("{}.100", s.bridge);
    struct DropLink(String);
    impl Drop for DropLink {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["link", "del", &self.0])
                .stderr(Stdio::null())
                .status();
        }
    }
    let _cleanup = [DropLink(vlan_gateway(&a)), DropLink(vlan_gateway(&b))];
    if !kernel_filters_vlans() {
        // Kernels built without CONFIG_BRIDGE_VLAN_FILTERING (this test
        // machine's): both refuse alike, naming the bridge they could not
        // make.
        for s in [&a, &b] {
            let out = s.run("ADD", &s.conf(extra));
            assert_ne!(out.code, 0, "{}", out.stdout);
            assert!(
                out.stdout
                    .contains(&format!("could not add \\\"{}\\\"", s.bridge))
                    && out.stdout.contains("not supported"),
                "{}",
                out.stdout
            );
            assert!(s.lease_names().iter().all(|n| !n.starts_with("172.")));
        }
        return;
    }
    let (ra, rb) = (a.run("ADD", &a.conf(extra)), b.run("ADD", &b.conf(extra)));
    assert_eq!(ra.code, 0, "ours: {}", ra.stdout);
    assert_eq!(rb.code, 0, "ref: {}", rb.stdout);
    let (ja, jb) = (ra.json(), rb.json());
    let (veth_a, veth_b) = (host_veth(&ja), host_veth(&jb));
    let mask = |s: &Side, v: &Value, veth: &str| {
        let mut v = s.normalize(v, veth);
        for i in v["interfaces"].as_array_mut().into_iter().flatten() {
            i["mac"] = "MAC".into();
        }
        v
    };
    assert_eq!(mask(&a, &ja, &veth_a), mask(&b, &jb, &veth_b));
    assert_eq!(ja["interfaces"][3]["name"], vlan_gateway(&a), "{ja}");

    let filtering = |s: &Side| {
        let v = ip_json(&["-j", "-d", "link", "show", "dev", &s.bridge]);
        v[0]["linkinfo"]["info_data"]["vlan_filtering"].clone()
    };
    assert_eq!(filtering(&a), 1);
    assert_eq!(filtering(&a), filtering(&b));
    let vlans = |dev: &str| {
        let out = Command::new("bridge")
            .args(["-j", "vlan", "show", "dev", dev])
            .output()
            .expect("bridge vlan show");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v[0]["vlans"].clone()
    };
    assert_eq!(vlans(&veth_a), vlans(&veth_b));
    assert!(
        vlans(&veth_a).to_string().contains("100"),
        "{}",
        vlans(&veth_a)
    );
    let gw_addr = |s: &Side, v: &str| {
        s.normalize(
            &inet_view(&ip_json(&["-j", "addr", "show", "dev", &vlan_gateway(s)])),
            v,
        )
    };
    assert_eq!(gw_addr(&a, &veth_a), gw_addr(&b, &veth_b));
    assert!(gw_addr(&a, &veth_a).to_string().contains("172.30.X.1"));

    for s in [&a, &b] {
        assert_eq!(s.run("DEL", &s.conf(extra)).code, 0);
        let bad = s.run("ADD", &s.conf(r#","vlan":5000"#));
        assert_ne!(bad.code, 0, "vlan 5000 accepted");
        assert!(
            bad.stdout.contains("invalid VLAN ID 5000"),
            "{}",
            bad.stdout
        );
    }
}

/// Whether this kernel can make a VLAN-filtering bridge.
fn kernel_filters_vlans() -> bool {
    let name = format!("cbvf{}", std::process::id() % 100_000);
    let made = Command::new("ip")
        .args([
            "link",
            "add",
            &name,
            "type",
            "bridge",
            "vlan_filtering",
            "1",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let _ = Command::new("ip").args(["link", "del", &name]).status();
    }
    made
}

/// Whether a TCP connection from `ns` to `addr` port 9 gets an answer (a
/// refusal proves the SYN got there and the RST came back).
fn reaches(ns: &str, addr: &str) -> bool {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "timeout", "2", "bash", "-c"])
        .arg(format!("echo > /dev/tcp/{addr}/9"))
        .output()
        .expect("exec");
    String::from_utf8_lossy(&o.stderr).contains("refused")
}

fn ruleset_has(needle: &str) -> bool {
    let o = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&o.stdout).contains(needle)
}

/// `macspoofchk`: once the container changes its MAC, its frames no longer
/// reach the bridge; DEL removes the check. The reference behaves the same.
#[test]
fn mac_spoof_check_as_the_reference() {
    require("bridge");
    for (ours, third) in [(true, 40u8), (false, 41u8)] {
        let a = Side::new(&format!("bs{third}"), third, ours);
        let conf = a.conf(r#","isGateway":true,"macspoofchk":true"#);
        let r = a.run("ADD", &conf);
        assert_eq!(r.code, 0, "ours={ours}: {}", r.stdout);
        let gateway = format!("172.30.{third}.1");
        assert!(reaches(&a.ns.name, &gateway), "ours={ours}: own MAC passes");
        assert!(ruleset_has("macspoofchk-ctr1-eth0"), "ours={ours}");
        let changed = Command::new("ip")
            .args(["netns", "exec", &a.ns.name, "ip", "link", "set", "eth0"])
            .args(["address", "02:00:00:00:00:99"])
            .status()
            .unwrap();
        assert!(changed.success());
        assert!(
            !reaches(&a.ns.name, &gateway),
            "ours={ours}: another MAC is dropped"
        );
        assert_eq!(a.run("DEL", &conf).code, 0, "ours={ours}");
        assert!(
            !ruleset_has("macspoofchk-ctr1-eth0"),
            "ours={ours}: gone after DEL"
        );
    }
}

#[test]
fn unsupported_bridge_options_are_refused() {
    require("bridge");
    let a = Side::new("bu42", 42, true);
    for (extra, needle) in [
        (r#","enabledad":true"#, "enabledad is not supported"),
        (r#","vlanTrunk":[{"id":101}]"#, "vlanTrunk is not supported"),
    ] {
        let e = a.run("ADD", &a.conf(extra));
        assert_ne!(e.code, 0, "{extra}");
        assert!(
            e.json()["msg"]
                .as_str()
                .unwrap_or_default()
                .contains(needle),
            "{extra}: {}",
            e.stdout
        );
    }
    assert!(a.lease_names().len() <= 2, "{:?}", a.lease_names());
}
