//! loopback against the reference loopback, in real namespaces.

mod common;
use common::*;

fn conf(v: &str) -> String {
    format!(r#"{{"cniVersion":"{v}","name":"lo","type":"loopback"}}"#)
}

fn env(ns: &str) -> Vec<(&str, &str)> {
    vec![
        ("CNI_CONTAINERID", "c1"),
        ("CNI_IFNAME", "lo"),
        ("CNI_NETNS", ns),
        ("CNI_PATH", REF_DIR),
    ]
}

/// The `ip addr` view of lo (flags and addresses).
fn lo_state(ns: &Netns) -> serde_json::Value {
    ns.ip_json(&["addr", "show", "lo"])
}

#[test]
fn same_as_reference() {
    require("loopback");
    for v in ["0.4.0", "1.0.0"] {
        let (a, b) = (Netns::new("loa"), Netns::new("lob"));
        let ra = run(&ours("loopback"), "ADD", &conf(v), &env(&a.path()));
        let rb = run(&reference("loopback"), "ADD", &conf(v), &env(&b.path()));
        assert_eq!(ra.code, 0, "{}", ra.stdout);
        let mut ja = ra.json();
        let mut jb = rb.json();
        // The sandbox paths differ by construction.
        ja["interfaces"][0]["sandbox"] = "x".into();
        jb["interfaces"][0]["sandbox"] = "x".into();
        if v == "1.0.0" {
            assert_eq!(ja, jb);
        } else {
            // The reference omits "version" in 0.x IP entries here; we write
            // it, as the 0.4.0 spec asks. Everything else matches.
            for ip in ja["ips"].as_array_mut().into_iter().flatten() {
                ip.as_object_mut().map(|o| o.remove("version"));
            }
            assert_eq!(ja, jb);
        }
        assert_eq!(lo_state(&a), lo_state(&b));
        for (bin, ns) in [(ours("loopback"), &a), (reference("loopback"), &b)] {
            assert_eq!(run(&bin, "CHECK", &conf(v), &env(&ns.path())).code, 0);
            assert_eq!(run(&bin, "DEL", &conf(v), &env(&ns.path())).code, 0);
        }
        assert_eq!(lo_state(&a), lo_state(&b));
        let ca = run(&ours("loopback"), "CHECK", &conf(v), &env(&a.path()));
        let cb = run(&reference("loopback"), "CHECK", &conf(v), &env(&b.path()));
        assert_eq!((ca.code, ca.error()), (cb.code, cb.error()));
    }
}

#[test]
fn del_without_namespace_succeeds() {
    require("loopback");
    let gone = format!("/var/run/netns/{}", unique("lgone"));
    assert_eq!(
        run(&ours("loopback"), "DEL", &conf("1.0.0"), &env(&gone)).code,
        0
    );
    let e = run(&ours("loopback"), "ADD", &conf("1.0.0"), &env(&gone));
    assert_eq!(e.code, 1);
    assert_eq!(e.json()["code"], 999);
    // A file that is not a namespace is refused.
    let e = run(
        &ours("loopback"),
        "ADD",
        &conf("1.0.0"),
        &env("/etc/hostname"),
    );
    assert!(e.json()["msg"]
        .as_str()
        .unwrap_or_default()
        .contains("not a valid network namespace"));
}
