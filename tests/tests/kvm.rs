//! The kvm stage1: each pod in a microVM of its own (QEMU, under TCG on
//! these machines) with the flavor's kernel, the pod run inside by the ns
//! flavor's supervisor, its networks from CNI on the host handed to the VM
//! through taps. Exit codes, output, isolators, networks, forwarded ports,
//! volumes, stop and gc, and what the flavor refuses.

use std::path::Path;
use std::time::Duration;

use functional_tests::hosts::{assert_forwarded, ip, leases_of, server_aci, LanLink};
use functional_tests::pods::{
    free_port, pod_dir, rkt_with_test_images as setup, run_pod, status, wait_until, BgPod,
};
use functional_tests::{stage1_image, Out, Rkt};

const BUSYBOX: &str = "example.com/busybox";

fn kvm_flag() -> String {
    let kvm = stage1_image("kvm").canonicalize().unwrap();
    format!("--stage1-path={}", kvm.display())
}

/// `rkt run` on the kvm stage1 with `args`.
fn kvm_run(rkt: &Rkt, args: &[&str]) -> (Out, String) {
    let s1 = kvm_flag();
    let mut all = vec![s1.as_str()];
    all.extend_from_slice(args);
    run_pod(rkt, &all)
}

/// One busybox app running `sh -c script`, `pod_args` before the image.
fn kvm_sh(rkt: &Rkt, pod_args: &[&str], script: &str) -> (Out, String) {
    let mut all = pod_args.to_vec();
    all.extend_from_slice(&[BUSYBOX, "--exec=/bin/sh", "--", "-c", script]);
    kvm_run(rkt, &all)
}

/// Host processes running QEMU for a pod of this test's data directory.
fn vms_of(rkt: &Rkt) -> Vec<String> {
    let root = rkt.root().to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let argv0 = cmdline.split(|&b| b == 0).next()?;
            let is_qemu = Path::new(&*String::from_utf8_lossy(argv0))
                .file_name()
                .is_some_and(|n| n == "qemu-system-x86_64");
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (is_qemu && cmdline.contains(&root))
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

fn host_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn pod_runs_in_a_vm_with_the_ns_isolation_inside() {
    let rkt = setup();
    let (out, uuid) = kvm_run(
        &rkt,
        &[
            "--net=none",
            BUSYBOX,
            "--memory=96Mi",
            "--exec=/bin/sh",
            "--",
            "-c",
            "cat /proc/sys/kernel/random/boot_id; hostname; echo to-stderr >&2; \
             grep -E '^(CapBnd|Seccomp):' /proc/self/status; \
             cat /sys/fs/cgroup/memory.max; ip -o link | cut -d: -f2; \
             cat /proc/1/comm; exit 7",
        ],
    );
    let out = out.expect_code(7);
    // A kernel of its own: another boot than the host's.
    let guest_boot = out.stdout.lines().next().unwrap_or_default();
    assert_eq!(guest_boot.len(), 36, "{out}");
    assert_ne!(guest_boot, host_boot_id(), "{out}");
    assert!(
        out.stdout.contains(&format!("rkt-{uuid}\n")),
        "{uuid:?} {out}"
    );
    // stdout and stderr stay apart.
    assert!(out.stderr.contains("to-stderr"), "{out}");
    assert!(!out.stdout.contains("to-stderr"), "{out}");
    // The ns flavor's isolation, inside the VM: rkt's default
    // capabilities, the seccomp filter, the app's memory cgroup.
    assert!(out.stdout.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.stdout.contains("Seccomp:\t2"), "{out}");
    assert!(out.stdout.contains(&format!("{}\n", 96 << 20)), "{out}");
    // --net=none: loopback only; the pod's PID 1 is the supervisor.
    assert!(out.stdout.contains(" lo\n"), "{out}");
    assert!(!out.stdout.contains("eth0"), "{out}");
    assert!(out.stdout.contains("supervisor\n"), "{out}");

    let st = status(&rkt, &uuid);
    assert_eq!(st["app-busybox"], "7", "{st:?}");
    assert_eq!(st["state"], "exited", "{st:?}");
    assert!(vms_of(&rkt).is_empty(), "the VM outlived the pod");
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert!(!pod_dir(&rkt, "run", &uuid).exists());
    assert_eq!(rkt.mounts_under_root(), Vec::<String>::new());
}

#[test]
fn several_apps_and_a_failing_one() {
    let rkt = setup();
    let (out, uuid) = kvm_run(
        &rkt,
        &[
            "--net=none",
            BUSYBOX,
            "--name=sleeper",
            "--exec=/bin/sleep",
            "--",
            "600",
            "---",
            BUSYBOX,
            "--name=failer",
            "--exec=/bin/sh",
            "--",
            "-c",
            "echo failing; exit 3",
        ],
    );
    // The failing app stops the other and gives the pod its code.
    let out = out.expect_code(3).expect_stdout("failing");
    let st = status(&rkt, &uuid);
    assert_eq!(st["app-failer"], "3", "{out} {st:?}");
    assert!(st.contains_key("app-sleeper"), "{st:?}");
}

/// The pod on `default`: reaches the host, serves on forwarded ports from
/// the host's 127.0.0.1 and from another host; `stop` ends it through
/// the guest, and gc leaves no network state behind.
#[test]
fn default_network_forwarded_ports_stop_and_gc() {
    let rkt = setup();
    let aci = server_aci(&rkt, "hello-from-vm");
    let http = free_port();
    let s1 = kvm_flag();
    let aci = aci.display().to_string();
    let port_http = format!("--port=http:{http}");
    let mut pod = BgPod::start(
        &rkt,
        &[
            "--insecure-options=image",
            &s1,
            "--net=default",
            &port_http,
            &aci,
        ],
    );
    let _other = assert_forwarded(http, "hello-from-vm", Duration::from_secs(60));
    let list = rkt.ok(&["list", "--no-legend", "--full"]).stdout;
    let vm_ip = list
        .split("default:ip4=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {list}"))
        .to_string();
    assert_eq!(vms_of(&rkt).len(), 1, "one VM runs the pod");
    // CNI CHECK finds the VM's interface in the pod's netns as ADD left it.
    let status = rkt.ok(&["status", "--check-networks", &pod.uuid]).stdout;
    assert!(status.contains("\nnetwork-check=default:ok\n"), "{status}");
    // Pod to pod on the same network: an ns pod reaches the VM's server
    // (the guest routes the subnet through the gateway, as ptp set it up).
    let ns = functional_tests::pods::ns_stage1_flag();
    let (out, _) = run_pod(
        &rkt,
        &[
            &ns,
            "--net=default",
            BUSYBOX,
            "--exec=/bin/sh",
            "--",
            "-c",
            &format!("nc -w 5 {vm_ip} 80 </dev/null"),
        ],
    );
    assert!(out.stdout.contains("hello-from-vm"), "pod to pod: {out}");

    let uuid = pod.uuid.clone();
    rkt.ok(&["stop", &uuid]);
    let out = pod
        .wait(Duration::from_secs(60))
        .expect("the pod stopped on rkt stop");
    // The shell loop ends on SIGTERM: 128 + 15.
    assert_eq!(out.code, 143, "{out}");
    assert!(vms_of(&rkt).is_empty(), "the VM outlived the pod");
    let nft = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&nft.stdout).contains(&uuid),
        "the forwarding table outlived the pod"
    );
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert!(!Path::new(&format!("/run/netns/rkt-{uuid}")).exists());
    assert_eq!(
        leases_of(Path::new("/var/lib/cni/networks/default"), &uuid),
        Vec::<String>::new(),
        "the pod's lease is left"
    );
    assert_eq!(rkt.mounts_under_root(), Vec::<String>::new());
}

/// The default route leads out of the VM: the pod reaches a server on the
/// host's side of its network.
#[test]
fn pod_reaches_the_host() {
    let rkt = setup();
    let listener = std::net::TcpListener::bind("172.16.28.1:0")
        .or_else(|_| std::net::TcpListener::bind("0.0.0.0:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.write_all(b"hello-from-host\n");
        }
    });
    let (out, _) = kvm_sh(
        &rkt,
        &["--net=default"],
        &format!("ip route; nc 172.16.28.1 {port} </dev/null"),
    );
    let out = out.expect_code(0);
    assert!(out.stdout.contains("default via 172.16.28.1"), "{out}");
    assert!(out.stdout.contains("hello-from-host"), "{out}");
    server.join().unwrap();
}

/// Host directories reach the VM over 9p at their own paths; a file is
/// refused with the fix named, as are flags the flavor cannot honour.
#[test]
fn volumes_and_what_the_flavor_refuses() {
    let rkt = setup();
    let shared = rkt.root().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("from-host"), "host-data\n").unwrap();
    // Named through a symlink: the guest finds it where the pod names it.
    let link = rkt.root().join("shared-link");
    std::os::unix::fs::symlink(&shared, &link).unwrap();
    let volume = format!("--volume=data,kind=host,source={}", link.display());
    let (out, _) = kvm_sh(
        &rkt,
        &["--net=none", &volume, "--mount=volume=data,target=/data"],
        "cat /data/from-host; echo vm-data > /data/from-vm",
    );
    out.expect_code(0).expect_stdout("host-data");
    assert_eq!(
        std::fs::read_to_string(shared.join("from-vm")).unwrap(),
        "vm-data\n"
    );

    let file_volume = format!(
        "--volume=data,kind=host,source={}",
        shared.join("from-host").display()
    );
    let (out, _) = kvm_sh(
        &rkt,
        &[
            "--net=none",
            &file_volume,
            "--mount=volume=data,target=/data",
        ],
        "true",
    );
    out.expect_code(254)
        .expect_stderr("shares directories with the VM");

    for (flag, says) in [
        ("--net=host", "--net=host"),
        ("--interactive", "--interactive"),
    ] {
        let (out, _) = kvm_sh(&rkt, &[flag], "true");
        let out = out.expect_code(254);
        assert!(out.stderr.contains(says), "{flag}: {out}");
    }
    assert!(vms_of(&rkt).is_empty());
}

/// `kill -9` of `rkt run` takes the VM with it, and gc removes the rest.
#[test]
fn killed_run_leaves_nothing_after_gc() {
    let rkt = setup();
    let s1 = kvm_flag();
    let mut pod = BgPod::start(
        &rkt,
        &[
            &s1,
            "--net=default",
            BUSYBOX,
            "--exec=/bin/sleep",
            "--",
            "600",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), || vms_of(&rkt).len() == 1),
        "the VM started"
    );
    let uuid = pod.uuid.clone();
    let pid = pod.pid().expect("rkt run's pid");
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let _ = pod.wait(Duration::from_secs(30));
    assert!(
        wait_until(Duration::from_secs(10), || vms_of(&rkt).is_empty()),
        "the VM outlived rkt run: {:?}",
        vms_of(&rkt)
    );
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert!(!Path::new(&format!("/run/netns/rkt-{uuid}")).exists());
    assert_eq!(rkt.mounts_under_root(), Vec::<String>::new());
}

/// Any CNI plugin: Debian's reference macvlan (on a veth standing in for a
/// LAN link), chained with tuning, and the project's bridge as a second
/// network; the VM gets both interfaces as the plugins made them and
/// reaches the LAN's other end.
#[test]
fn reference_plugins_and_two_networks_reach_the_vm() {
    let rkt = setup();
    let lan = LanLink::new(&format!("rktkvm{}", std::process::id() % 100000));
    let master = lan.name.clone();
    assert!(ip(&["addr", "add", "172.30.97.1/24", "dev", &lan.peer]));
    assert!(ip(&["link", "set", &lan.peer, "up"]));
    let leases = rkt.root().join("leases");
    let dir = rkt.local_config.join("net.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("50-lan.conflist"),
        format!(
            r#"{{"cniVersion":"1.0.0","name":"lan","plugins":[
                {{"type":"macvlan","master":"{master}","mode":"bridge",
                  "ipam":{{"type":"host-local","subnet":"172.30.97.0/24",
                           "rangeStart":"172.30.97.10","dataDir":"{}"}}}},
                {{"type":"tuning","mtu":1400}}]}}"#,
            leases.display()
        ),
    )
    .unwrap();
    let bridge = format!("rktkbr{}", std::process::id() % 100000);
    std::fs::write(
        dir.join("60-br.conf"),
        format!(
            r#"{{"cniVersion":"1.0.0","name":"br","type":"bridge","bridge":"{bridge}",
                "isGateway":true,
                "ipam":{{"type":"host-local","subnet":"172.30.98.0/24","dataDir":"{}"}}}}"#,
            leases.display()
        ),
    )
    .unwrap();
    // The bridge plugin made it; gone with the test.
    struct DelLink(String);
    impl Drop for DelLink {
        fn drop(&mut self) {
            let _ = ip(&["link", "del", &self.0]);
        }
    }
    let _bridge = DelLink(bridge);
    let (out, uuid) = kvm_sh(
        &rkt,
        &["--net=lan,br"],
        "ip -o link show eth0; ip -4 -o addr; \
         ping -c1 -W5 172.30.97.1 >/dev/null && echo lan-reachable; \
         ping -c1 -W5 172.30.98.1 >/dev/null && echo bridge-reachable",
    );
    let out = out.expect_code(0);
    assert!(out.stdout.contains("mtu 1400"), "{out}");
    assert!(out.stdout.contains("eth0    inet 172.30.97."), "{out}");
    assert!(out.stdout.contains("eth1    inet 172.30.98."), "{out}");
    assert!(out.stdout.contains("lan-reachable"), "{out}");
    assert!(out.stdout.contains("bridge-reachable"), "{out}");
    let info = std::fs::read_to_string(pod_dir(&rkt, "run", &uuid).join("net-info.json")).unwrap();
    assert!(info.contains("/usr/lib/cni/macvlan"), "{info}");
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert!(!Path::new(&format!("/run/netns/rkt-{uuid}")).exists());
    for net in ["lan", "br"] {
        let left = leases_of(&leases.join(net), &uuid);
        assert!(left.is_empty(), "leases of {net} left: {left:?}");
    }
}
