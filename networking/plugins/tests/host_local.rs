//! host-local against the reference host-local: same results, same errors,
//! same lease files, and leases each can read from the other.

mod common;
use common::*;

fn conf(version: &str, net: &str, dir: &str, third: u8) -> String {
    format!(
        r#"{{"cniVersion":"{version}","name":"{net}","type":"host-local","ipam":{{"type":"host-local",
        "ranges":[[{{"subnet":"172.30.{third}.0/24","rangeStart":"172.30.{third}.10","rangeEnd":"172.30.{third}.12"}}]],
        "routes":[{{"dst":"0.0.0.0/0"}},{{"dst":"10.99.0.0/16","gw":"172.30.{third}.1"}}],"dataDir":"{dir}"}}}}"#
    )
}

fn env<'a>(id: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut e = vec![
        ("CNI_CONTAINERID", id),
        ("CNI_IFNAME", "eth0"),
        ("CNI_NETNS", "/var/run/netns/none"),
        ("CNI_PATH", "/usr/lib/cni"),
    ];
    e.extend_from_slice(extra);
    e
}

/// A command, a container id and extra environment.
type Step<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

/// The same sequence of calls against both implementations gives the same
/// outputs and leaves the same lease files.
fn same_sequence(version: &str, third: u8) {
    require("host-local");
    let net = unique(&format!("hl{third}"));
    let (d_ours, d_ref) = (
        TmpDir::new(&format!("hlo{third}")),
        TmpDir::new(&format!("hlr{third}")),
    );
    let steps: Vec<Step> = vec![
        ("ADD", "c1", vec![]),
        ("ADD", "c2", vec![]),
        ("ADD", "c3", vec![]),
        ("ADD", "c4", vec![]), // exhausted
        ("ADD", "c1", vec![]), // duplicate
        ("DEL", "c2", vec![]),
        ("DEL", "c2", vec![]),                               // idempotent
        ("ADD", "c5", vec![("CNI_ARGS", "IP=172.30.0.99")]), // outside
        ("ADD", "c5", vec![("CNI_ARGS", "IP=172.30.0.10")]), // taken
        ("ADD", "c5", vec![("CNI_ARGS", "FOO=bar")]),        // unknown arg
        ("CHECK", "c1", vec![]),
        ("CHECK", "c9", vec![]),
        ("ADD", "c6", vec![]), // round robin wraps to the freed .11
    ];
    for (i, (cmd, id, extra)) in steps.iter().enumerate() {
        let fix = |s: String| s.replace("172.30.0.", &format!("172.30.{third}."));
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), fix(v.to_string())))
            .collect();
        let extra_ref: Vec<(&str, &str)> = extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let a = run(
            &ours("host-local"),
            cmd,
            &conf(version, &net, d_ours.path(), third),
            &env(id, &extra_ref),
        );
        let b = run(
            &reference("host-local"),
            cmd,
            &conf(version, &net, d_ref.path(), third),
            &env(id, &extra_ref),
        );
        assert_eq!(
            a.code, b.code,
            "step {i} {cmd} {id}: {} vs {}",
            a.stdout, b.stdout
        );
        if a.code == 0 {
            assert_eq!(a.json(), b.json(), "step {i}");
            // Key order and layout too, byte for byte.
            assert_eq!(a.stdout, b.stdout, "step {i}");
        } else {
            assert_eq!(a.error(), b.error(), "step {i}");
        }
    }
    assert_eq!(
        lease_files(&d_ours.0.join(&net)),
        lease_files(&d_ref.0.join(&net))
    );
}

#[test]
fn same_as_reference_v1() {
    same_sequence("1.0.0", 1);
}

#[test]
fn same_as_reference_v040() {
    same_sequence("0.4.0", 2);
}

#[test]
fn leases_interoperate() {
    require("host-local");
    let net = unique("hlx");
    let d = TmpDir::new("hlx");
    let c = conf("1.0.0", &net, d.path(), 3);
    let r = run(&reference("host-local"), "ADD", &c, &env("r1", &[]));
    assert_eq!(r.code, 0, "{}", r.stdout);
    // Ours sees the reference's lease and skips the address.
    let o = run(&ours("host-local"), "ADD", &c, &env("o1", &[]));
    assert_eq!(o.json()["ips"][0]["address"], "172.30.3.11/24");
    assert_eq!(
        run(&ours("host-local"), "CHECK", &c, &env("r1", &[])).code,
        0
    );
    assert_eq!(
        run(&reference("host-local"), "CHECK", &c, &env("o1", &[])).code,
        0
    );
    // Each releases the other's lease.
    assert_eq!(run(&ours("host-local"), "DEL", &c, &env("r1", &[])).code, 0);
    assert_eq!(
        run(&reference("host-local"), "DEL", &c, &env("o1", &[])).code,
        0
    );
    let left: Vec<String> = lease_files(&d.0.join(&net))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(left, vec!["last_reserved_ip.0", "lock"]);
}

#[test]
fn bad_input_leaves_nothing() {
    require("host-local");
    let net = unique("hlb");
    let d = TmpDir::new("hlb");
    let hl = ours("host-local");
    let e = run(&hl, "ADD", "{bad", &env("c1", &[]));
    assert_eq!((e.code, e.json()["code"].as_u64()), (1, Some(6)));
    let e = run(
        &hl,
        "ADD",
        r#"{"cniVersion":"1.0.0","name":"x","type":"host-local"}"#,
        &env("c1", &[]),
    );
    assert_eq!(e.json()["msg"], "IPAM config missing 'ipam' key");
    let e = run(
        &hl,
        "ADD",
        r#"{"cniVersion":"1.0.0","name":"x","ipam":{}}"#,
        &env("c1", &[]),
    );
    assert_eq!(e.json()["msg"], "no IP ranges specified");
    let e = run(
        &hl,
        "ADD",
        r#"{"cniVersion":"9.9.9","name":"x","ipam":{}}"#,
        &env("c1", &[]),
    );
    assert_eq!(e.json()["code"], 1);
    assert_eq!(e.json()["cniVersion"], "1.1.0");
    // Two range sets, the second request is taken: the first reservation
    // must be rolled back.
    let two = format!(
        r#"{{"cniVersion":"1.0.0","name":"{net}","ipam":{{"dataDir":"{}","ranges":[
        [{{"subnet":"172.30.4.0/24"}}],[{{"subnet":"172.30.5.0/24"}}]]}}}}"#,
        d.path()
    );
    let ok = run(&hl, "ADD", &two, &env("c1", &[]));
    assert_eq!(
        ok.json()["ips"].as_array().map(Vec::len),
        Some(2),
        "{}",
        ok.stdout
    );
    let e = run(
        &hl,
        "ADD",
        &two,
        &env("c2", &[("CNI_ARGS", "IP=172.30.5.2")]),
    );
    assert_eq!(e.code, 1);
    assert!(e.json()["msg"]
        .as_str()
        .unwrap_or_default()
        .contains("failed to allocate for range 1"));
    let names: Vec<String> = lease_files(&d.0.join(&net))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        vec![
            "172.30.4.2",
            "172.30.5.2",
            "last_reserved_ip.0",
            "last_reserved_ip.1",
            "lock"
        ]
    );
}

#[test]
fn args_ips_and_gc() {
    require("host-local");
    let net = unique("hlg");
    let d = TmpDir::new("hlg");
    let hl = ours("host-local");
    let c = format!(
        r#"{{"cniVersion":"1.1.0","name":"{net}","args":{{"cni":{{"ips":["172.30.6.77"]}}}},
        "ipam":{{"dataDir":"{}","subnet":"172.30.6.0/24"}}}}"#,
        d.path()
    );
    let r = run(&hl, "ADD", &c, &env("c1", &[]));
    assert_eq!(
        r.json()["ips"][0]["address"],
        "172.30.6.77/24",
        "{}",
        r.stdout
    );
    let plain = format!(
        r#"{{"cniVersion":"1.1.0","name":"{net}","ipam":{{"dataDir":"{}","subnet":"172.30.6.0/24"}}}}"#,
        d.path()
    );
    assert_eq!(run(&hl, "ADD", &plain, &env("c2", &[])).code, 0);
    let gc = format!(
        r#"{{"cniVersion":"1.1.0","name":"{net}","cni.dev/valid-attachments":[{{"containerID":"c2","ifname":"eth0"}}],
        "ipam":{{"dataDir":"{}","subnet":"172.30.6.0/24"}}}}"#,
        d.path()
    );
    let g = run(&hl, "GC", &gc, &[("CNI_PATH", "/usr/lib/cni")]);
    assert_eq!(g.code, 0, "{}", g.stdout);
    let names: Vec<String> = lease_files(&d.0.join(&net))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, vec!["172.30.6.78", "last_reserved_ip.0", "lock"]);
}

#[test]
fn parallel_adds_get_distinct_addresses() {
    require("host-local");
    let net = unique("hlp");
    let d = TmpDir::new("hlp");
    let c = format!(
        r#"{{"cniVersion":"1.0.0","name":"{net}","ipam":{{"dataDir":"{}","subnet":"172.30.7.0/24"}}}}"#,
        d.path()
    );
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || {
                let id = format!("p{i}");
                run(&ours("host-local"), "ADD", &c, &env(&id, &[])).json()["ips"][0]["address"]
                    .clone()
            })
        })
        .collect();
    let mut addrs: Vec<String> = handles
        .into_iter()
        .map(|h| {
            h.join()
                .expect("thread")
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 8, "{addrs:?}");
}

#[test]
fn same_as_reference_v031() {
    // Includes CHECK, which 0.3.x does not allow: both refuse it alike.
    same_sequence("0.3.1", 8);
}
