//! The fly stage1: host namespaces, a fresh /tmp, DNS and hosts handling,
//! and clear refusals of what fly cannot honour.

use functional_tests::pods::{all_pods, fetch_test_images};
use functional_tests::{stage1_image, Rkt};

const BUSYBOX: &str = "example.com/busybox";
const INSPECT: &str = "example.com/inspect";
const FLY: &str = "coreos.com/rkt/stage1-fly";

/// A store whose default stage1 is fly, configured as a user would
/// (`stage1.d` in the local config), so plain `rkt run` uses it.
fn setup() -> Rkt {
    let rkt = Rkt::new();
    fetch_test_images(&rkt);
    let stage1_d = rkt.local_config.join("stage1.d");
    std::fs::create_dir_all(&stage1_d).unwrap();
    std::fs::write(
        stage1_d.join("fly.json"),
        serde_json::json!({
            "rktKind": "stage1",
            "rktVersion": "v1",
            "name": FLY,
            "version": env!("CARGO_PKG_VERSION"),
            "location": stage1_image("fly"),
        })
        .to_string(),
    )
    .unwrap();
    rkt
}

fn own_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn shares_host_network_and_pid_namespaces() {
    let rkt = setup();
    let out = rkt.ok(&[
        "run",
        INSPECT,
        "--",
        "--print-netns",
        "--print-pidns",
        "--print-ipcns",
    ]);
    assert_eq!(
        out.stdout,
        format!(
            "NetNS: {}\nPIDNS: {}\nIPCNS: {}\n",
            own_ns("net"),
            own_ns("pid"),
            own_ns("ipc")
        ),
        "{out}"
    );
    // --net=host is what fly does anyway.
    let out = rkt.ok(&["run", "--net=host", INSPECT, "--", "--print-netns"]);
    assert_eq!(out.stdout, format!("NetNS: {}\n", own_ns("net")));
}

#[test]
fn sees_the_host_proc() {
    let rkt = setup();
    let me = std::process::id();
    let script = format!("test -d /proc/{me} && cat /proc/{me}/comm");
    let out = rkt.ok(&["run", BUSYBOX, "--exec", "/bin/sh", "--", "-c", &script]);
    assert!(!out.stdout.trim().is_empty(), "{out}");
}

#[test]
fn tmp_is_a_fresh_tmpfs_and_dev_works() {
    let rkt = setup();
    let out = rkt.ok(&[
        "run",
        BUSYBOX,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "grep ' /tmp ' /proc/self/mountinfo | grep -c tmpfs; ls -A /tmp | wc -l; echo x > /dev/null && echo devnull-ok",
    ]);
    assert_eq!(out.stdout, "1\n0\ndevnull-ok\n", "{out}");
}

#[test]
fn fly_declares_its_features() {
    let rkt = setup();
    // The default stage1 is imported on first run.
    rkt.ok(&["run", INSPECT]);
    let m: serde_json::Value =
        serde_json::from_str(&rkt.ok(&["image", "cat-manifest", FLY]).stdout).unwrap();
    let ann = |name: &str| {
        m["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .map(|a| a["value"].as_str().unwrap().to_string())
    };
    assert_eq!(ann("coreos.com/rkt/stage1/run").as_deref(), Some("/run"));
    assert_eq!(
        ann("coreos.com/rkt/stage1/enter").as_deref(),
        Some("/enter")
    );
    assert_eq!(ann("coreos.com/rkt/stage1/gc").as_deref(), Some("/gc"));
    assert_eq!(ann("coreos.com/rkt/stage1/stop").as_deref(), Some("/stop"));
    let features = ann("coreos.com/rkt/stage1/features").expect("features annotation");
    let features: Vec<&str> = features.split(',').collect();
    for f in ["net-host", "dns", "hosts-entry", "volumes", "enter", "stop"] {
        assert!(features.contains(&f), "{features:?}");
    }
    for f in [
        "net-contained",
        "hostname",
        "port-forward",
        "multi-app",
        "capabilities",
    ] {
        assert!(!features.contains(&f), "{features:?}");
    }
}

/// fly declares and implements a read-only rootfs (with a writable /tmp)
/// and interactive pods.
#[test]
fn readonly_rootfs_and_interactive_are_honoured() {
    let rkt = setup();
    rkt.run(&[
        "run",
        "example.com/busybox",
        "--readonly-rootfs=true",
        "--exec=/bin/sh",
        "--",
        "-c",
        "touch /x && exit 9; touch /tmp/x || exit 8; exit 0",
    ])
    .expect_code(0);
    rkt.run(&[
        "run",
        "--interactive",
        "example.com/busybox",
        "--exec=/bin/sh",
        "--",
        "-c",
        "echo interactive-ok",
    ])
    .expect_code(0)
    .expect_stdout("interactive-ok");
}

/// Each option fly cannot honour is refused before any pod is made.
#[test]
fn refuses_what_it_cannot_honour() {
    let rkt = setup();
    let cases: &[&[&str]] = &[
        &["--net=default", INSPECT],
        &["--net", INSPECT],
        &["--net=none", INSPECT],
        &["--net=mynet", INSPECT],
        &["--net=default-restricted", INSPECT],
        &["--hostname=h", INSPECT],
        &["--port=http:8080", INSPECT],
        &[INSPECT, "--memory=50M"],
        &[INSPECT, "--cpu=100m"],
        &[INSPECT, "--caps-retain=CAP_CHOWN"],
        &[INSPECT, "--caps-remove=CAP_CHOWN"],
        &[INSPECT, "--seccomp=mode=retain,read,write"],
        &["--ipc=private", INSPECT],
    ];
    for args in cases {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let out = rkt.run(&all);
        assert_eq!(out.code, 254, "{all:?}: {out}");
        assert!(out.stderr.contains("fly"), "{all:?} should name fly: {out}");
        assert!(!out.stderr.contains("panicked"), "{out}");
    }
    // Not built yet at all; still refused before any pod is made.
    rkt.run(&["run", "--private-users", "--no-overlay", INSPECT])
        .expect_code(254);
    rkt.run(&["run", "--mds-register", INSPECT])
        .expect_code(254);
    // prepare refuses the per-app ones as well.
    rkt.run(&["prepare", INSPECT, "--memory=50M"])
        .expect_code(254)
        .expect_stderr("fly");
    assert_eq!(all_pods(&rkt), Vec::<String>::new(), "no pod left behind");
    // run-prepared refuses pod-level ones.
    let uuid = rkt
        .ok(&["prepare", "--quiet", INSPECT])
        .stdout
        .trim()
        .to_string();
    rkt.run(&["run-prepared", "--hostname=h", &uuid])
        .expect_code(254)
        .expect_stderr("fly");
    rkt.run(&["run-prepared", "--net=none", &uuid])
        .expect_code(254)
        .expect_stderr("fly");
    // The pod is still usable afterwards.
    rkt.ok(&["run-prepared", &uuid]);
}

#[test]
fn ipc_auto_and_parent_work() {
    let rkt = setup();
    for ipc in ["--ipc=auto", "--ipc=parent"] {
        rkt.ok(&["run", ipc, INSPECT, "--", "--print-ipcns"])
            .expect_stdout(&format!("IPCNS: {}\n", own_ns("ipc")));
    }
}

fn cat_in_pod(rkt: &Rkt, pod_flags: &[&str], file: &str) -> String {
    let mut args = vec!["run"];
    args.extend_from_slice(pod_flags);
    args.extend_from_slice(&[BUSYBOX, "--exec", "/bin/cat", "--", file]);
    rkt.ok(&args).stdout
}

#[test]
fn dns_flags_make_resolv_conf() {
    let rkt = setup();
    let conf = cat_in_pod(
        &rkt,
        &[
            "--dns=8.8.8.8",
            "--dns=1.1.1.1,9.9.9.9",
            "--dns-search=example.org",
            "--dns-opt=ndots:2",
            "--dns-domain=example.com",
        ],
        "/etc/resolv.conf",
    );
    let lines: Vec<&str> = conf
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for want in [
        "nameserver 8.8.8.8",
        "nameserver 1.1.1.1",
        "nameserver 9.9.9.9",
        "search example.org",
        "options ndots:2",
        "domain example.com",
    ] {
        assert!(lines.contains(&want), "{want:?} missing from:\n{conf}");
    }
    let ns: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(
        ns,
        [
            &"nameserver 8.8.8.8",
            &"nameserver 1.1.1.1",
            &"nameserver 9.9.9.9"
        ]
    );
}

#[test]
fn dns_host_mirrors_the_host_file() {
    let rkt = setup();
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let conf = cat_in_pod(&rkt, &["--dns=host"], "/etc/resolv.conf");
    assert_eq!(conf, host);
    // --dns=host with other DNS flags is invalid.
    rkt.run(&["run", "--dns=host", "--dns-search=x.org", INSPECT])
        .expect_code(254);
    rkt.run(&["run", "--dns=host,8.8.8.8", INSPECT])
        .expect_code(254);
    rkt.run(&["run", "--dns=notanip", INSPECT]).expect_code(254);
}

#[test]
fn dns_none_gives_no_resolv_conf() {
    let rkt = setup();
    rkt.ok(&[
        "run",
        "--dns=none",
        BUSYBOX,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "test ! -e /etc/resolv.conf",
    ]);
}

#[test]
fn hosts_entries() {
    let rkt = setup();
    let default = cat_in_pod(&rkt, &[], "/etc/hosts");
    assert!(
        default
            .lines()
            .any(|l| l.starts_with("127.0.0.1") && l.contains("localhost")),
        "{default}"
    );
    let hosts = cat_in_pod(
        &rkt,
        &[
            "--hosts-entry=1.2.3.4=foo",
            "--hosts-entry=5.6.7.8=bar,9.9.9.9=baz",
        ],
        "/etc/hosts",
    );
    let find = |ip: &str, name: &str| {
        hosts.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&ip) && f[1..].contains(&name)
        })
    };
    assert!(find("1.2.3.4", "foo"), "{hosts}");
    assert!(find("5.6.7.8", "bar"), "{hosts}");
    assert!(find("9.9.9.9", "baz"), "{hosts}");
    assert!(hosts.contains("localhost"), "{hosts}");

    let host_file = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    assert_eq!(
        cat_in_pod(&rkt, &["--hosts-entry=host"], "/etc/hosts"),
        host_file
    );
    rkt.run(&["run", "--hosts-entry=notanip=foo", INSPECT])
        .expect_code(254);
}

#[test]
fn dns_and_hosts_flags_on_run_prepared() {
    let rkt = setup();
    let uuid = rkt
        .ok(&[
            "prepare",
            "--quiet",
            BUSYBOX,
            "--exec",
            "/bin/cat",
            "--",
            "/etc/resolv.conf",
            "/etc/hosts",
        ])
        .stdout
        .trim()
        .to_string();
    let out = rkt.ok(&[
        "run-prepared",
        "--dns=7.7.7.7",
        "--hosts-entry=1.2.3.4=pre",
        &uuid,
    ]);
    assert!(out.stdout.contains("nameserver 7.7.7.7"), "{out}");
    assert!(out.stdout.contains("1.2.3.4"), "{out}");
}

#[test]
fn image_etc_hosts_is_kept_without_flags() {
    // busybox has no /etc/hosts: fly writes a fallback. An app-provided one
    // is left alone; check via a pod that writes one and exports.
    let rkt = setup();
    let out = rkt.ok(&[
        "run",
        BUSYBOX,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "grep -c localhost /etc/hosts >/dev/null && echo has-localhost",
    ]);
    assert_eq!(out.stdout, "has-localhost\n");
}

#[test]
fn exited_fly_pod_leaves_no_mounts() {
    let rkt = setup();
    let host = rkt.root().join("v");
    std::fs::create_dir(&host).unwrap();
    let vol = format!("--volume=v,kind=host,source={}", host.display());
    rkt.ok(&["run", &vol, INSPECT, "--mount=volume=v,target=/v"]);
    // Fly mounts live in the pod's private mount namespace: nothing on the
    // host's view even before gc.
    assert_eq!(rkt.mounts_under_root(), Vec::<String>::new());
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert_eq!(rkt.mounts_under_root(), Vec::<String>::new());
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
}
