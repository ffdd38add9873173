//! The ns stage1: the pod's own namespaces, the PID 1 supervisor's exit
//! code and status rules, the app's /dev, /proc and /sys, stop and enter.

use std::time::Duration;

use functional_tests::pods::ns_stage1_flag as stage1_flag;
use functional_tests::pods::rkt_with_test_images as setup;
use functional_tests::pods::{ns_run, ns_sh as sh, pod_dir, status, wait_until, BgPod};
use functional_tests::{Out, Rkt};

const BUSYBOX: &str = "example.com/busybox";
const INSPECT: &str = "example.com/inspect";

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn single_app_exit_code_is_the_pods() {
    let rkt = setup();
    let (out, uuid) = sh(&rkt, &[], "echo hello; exit 7");
    let out = out.expect_code(7).expect_stdout("hello\n");
    let st = status(&rkt, &uuid);
    assert_eq!(st["state"], "exited", "{out}");
    assert_eq!(st["app-busybox"], "7", "{st:?}");
    let (out, _) = sh(&rkt, &[], "exit 0");
    out.expect_code(0);
    assert!(rkt
        .mounts_under_root()
        .iter()
        .all(|m| !m.contains("/stage2/")));
}

#[test]
fn failing_app_stops_the_others_and_sets_the_exit_code() {
    let rkt = setup();
    let start = std::time::Instant::now();
    let (out, uuid) = ns_run(
        &rkt,
        &[
            BUSYBOX,
            "--name=sleeper",
            "--exec=/bin/sleep",
            "--",
            "100",
            "---",
            BUSYBOX,
            "--name=failer",
            "--exec=/bin/sh",
            "--",
            "-c",
            "sleep 0.3; exit 5",
            "---",
        ],
    );
    out.expect_code(5);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "others were stopped"
    );
    let st = status(&rkt, &uuid);
    assert_eq!(st["app-failer"], "5", "{st:?}");
    assert_eq!(st["app-sleeper"], "143", "SIGTERM ended it: {st:?}");

    // All succeed: 0, each app recorded.
    let (out, uuid) = ns_run(
        &rkt,
        &[
            BUSYBOX,
            "--name=a",
            "--exec=/bin/true",
            "---",
            INSPECT,
            "--name=b",
            "--",
            "--print-msg=from-b",
            "---",
        ],
    );
    out.expect_code(0).expect_stdout("from-b\n");
    let st = status(&rkt, &uuid);
    assert_eq!((st["app-a"].as_str(), st["app-b"].as_str()), ("0", "0"));
}

#[test]
fn hostname_defaults_to_the_uuid_and_can_be_set() {
    let rkt = setup();
    let (out, uuid) = ns_run(&rkt, &[INSPECT, "--", "--print-hostname"]);
    out.expect_code(0)
        .expect_stdout(&format!("Hostname: rkt-{uuid}\n"));
    let (out, _) = sh(&rkt, &["--hostname=podhost"], "hostname; cat /etc/hostname");
    assert_eq!(out.expect_code(0).stdout, "podhost\npodhost\n");
}

#[test]
fn own_pid_uts_ipc_and_mount_namespaces() {
    let rkt = setup();
    let (out, _) = ns_run(
        &rkt,
        &[
            INSPECT,
            "--",
            "--print-pid",
            "--print-pidns",
            "--print-ipcns",
            "--print-utsns",
            "--print-mountns",
        ],
    );
    // The supervisor is 1, the first app 2.
    let out = out.expect_code(0).expect_stdout("PID: 2\n");
    for kind in ["pid", "ipc", "uts", "mnt"] {
        assert!(!out.stdout.contains(&host_ns(kind)), "{kind}: {out}");
    }
    let (out, _) = ns_run(&rkt, &["--ipc=parent", INSPECT, "--", "--print-ipcns"]);
    out.expect_code(0)
        .expect_stdout(&format!("IPCNS: {}\n", host_ns("ipc")));
    // Only the pod's processes are visible.
    let (out, _) = sh(&rkt, &[], "ls /proc | grep -c '^[0-9]'");
    let n: u32 = out.expect_code(0).stdout.trim().parse().unwrap();
    assert!(n <= 4, "supervisor, sh, ls, grep at most; saw {n}");
}

#[test]
fn net_none_has_only_loopback_and_net_host_the_hosts() {
    let rkt = setup();
    let (out, _) = sh(
        &rkt,
        &["--net=none"],
        "ls /sys/class/net; cat /sys/class/net/lo/flags",
    );
    let out = out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "lo", "{out}");
    let flags = u32::from_str_radix(lines[1].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up: {out}");
    assert_eq!(lines.len(), 2, "{out}");
    let (out, _) = ns_run(&rkt, &["--net=none", INSPECT, "--", "--print-netns"]);
    assert!(!out.expect_code(0).stdout.contains(&host_ns("net")));

    // Host veths come and go with the pods of tests running alongside
    // (default networks): the rest must be the same.
    let steady = |names: &mut dyn Iterator<Item = String>| -> Vec<String> {
        let mut names: Vec<String> = names.filter(|n| !n.starts_with("veth")).collect();
        names.sort();
        names
    };
    let host = steady(
        &mut std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned()),
    );
    let (out, _) = sh(&rkt, &["--net=host"], "ls -1 /sys/class/net");
    let seen = steady(&mut out.expect_code(0).stdout.lines().map(str::to_string));
    assert_eq!(seen, host);
    let (out, _) = ns_run(&rkt, &["--net=host", INSPECT, "--", "--print-netns"]);
    out.expect_code(0)
        .expect_stdout(&format!("NetNS: {}\n", host_ns("net")));
}

#[test]
fn dev_is_minimal_and_sys_read_only() {
    let rkt = setup();
    let (out, _) = sh(&rkt, &[], "ls -1A /dev | tr '\\n' ' '");
    assert_eq!(
        out.expect_code(0).stdout,
        "console fd full null ptmx pts random shm stderr stdin stdout tty urandom zero "
    );
    let (out, _) = sh(
        &rkt,
        &[],
        "echo x > /dev/null && head -c 4 /dev/urandom | wc -c && test -c /dev/zero && test -L /dev/ptmx && test -e /dev/pts/ptmx && echo dev-ok",
    );
    assert_eq!(
        out.expect_code(0)
            .stdout
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["4", "dev-ok"]
    );
    let (out, _) = sh(
        &rkt,
        &[],
        "touch /sys/x 2>/dev/null && echo writable; awk '$5 == \"/sys\" && $6 ~ /^ro,/' /proc/self/mountinfo | wc -l; touch /dev/shm/x && echo shm-ok",
    );
    assert_eq!(out.expect_code(0).stdout, "1\nshm-ok\n");
}

#[test]
fn readonly_rootfs_and_interactive() {
    let rkt = setup();
    let (out, _) = sh(
        &rkt,
        &[],
        "test -f /etc/mtab -o -L /etc/mtab && echo mtab-ok",
    );
    out.expect_code(0).expect_stdout("mtab-ok\n");
    let s1 = stage1_flag();
    rkt.run(&[
        "run",
        &s1,
        BUSYBOX,
        "--readonly-rootfs=true",
        "--exec=/bin/sh",
        "--",
        "-c",
        "touch /x 2>/dev/null && exit 9; touch /dev/shm/x || exit 8; exit 0",
    ])
    .expect_code(0);
    rkt.run(&[
        "run",
        &s1,
        "--interactive",
        INSPECT,
        "--",
        "--print-msg=interactive-ok",
    ])
    .expect_code(0)
    .expect_stdout("interactive-ok\n");
    rkt.run(&[
        "run",
        &s1,
        "--interactive",
        INSPECT,
        "---",
        BUSYBOX,
        "--exec=/bin/true",
        "---",
    ])
    .expect_code(254)
    .expect_stderr("exactly one app");
}

/// `rkt run` in a terminal (a pty from script(1)), `args` after `run`,
/// with `input` typed into it; the terminal's transcript.
fn run_in_terminal(rkt: &Rkt, args: &str, input: &str, delay_secs: u32) -> String {
    let rkt_cmd = format!(
        "{} {} run {} {args}",
        functional_tests::rkt_bin().display(),
        rkt.global_args().join(" "),
        stage1_flag(),
    );
    // The caller's settings are compared before and after: `run` puts the
    // terminal in raw mode and must restore it.
    let script = format!(
        "stty cols 77 rows 33; before=$(stty -g); stat -c 'caller-tty %t:%T' $(tty); \
         {rkt_cmd}; echo rc=$?; [ \"$before\" = \"$(stty -g)\" ] && echo terminal-restored"
    );
    let feed = format!("sleep {delay_secs}; printf '{input}'");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "({feed}) | timeout 120 script -qec \"$0\" /dev/null"
        ))
        .arg(script)
        .output()
        .expect("spawn script");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn interactive_app_gets_a_terminal_of_its_own() {
    let rkt = setup();
    let app = "stty size; stat -L -c \"app-tty %t:%T\" /proc/self/fd/0; \
               stat -L -c \"console %t:%T\" /dev/console; read line; echo got:$line; exit 4";
    let out = run_in_terminal(
        &rkt,
        &format!("--interactive {BUSYBOX} --exec=/bin/sh -- -c '{app}'"),
        "typed\\n",
        2,
    );
    let field = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key:?} in {out:?}"))
            .to_string()
    };
    // The pod's own terminal: sized like the caller's, shown as
    // /dev/console, and not the caller's device.
    assert!(out.contains("33 77\n"), "window size: {out:?}");
    assert_eq!(field("app-tty "), field("console "), "{out:?}");
    assert_ne!(field("app-tty "), field("caller-tty "), "{out:?}");
    assert!(out.contains("got:typed\n"), "typed input: {out:?}");
    assert!(out.contains("rc=4\n"), "exit code: {out:?}");
    assert!(out.contains("terminal-restored"), "{out:?}");

    // ^C is a key like any other: the pod's terminal turns it into SIGINT
    // for the app (its foreground process group).
    let app = "trap \"echo got-sigint; exit 3\" INT; while :; do sleep 0.1; done";
    let out = run_in_terminal(
        &rkt,
        &format!("--interactive {BUSYBOX} --exec=/bin/sh -- -c '{app}'"),
        "\\003",
        3,
    );
    assert!(out.contains("got-sigint\n"), "{out:?}");
    assert!(out.contains("rc=3\n"), "{out:?}");
    assert!(out.contains("terminal-restored"), "{out:?}");

    // Output nobody reads any more (`| head -1`): the app gets SIGHUP, as
    // when a terminal goes away, instead of blocking on a full terminal.
    let out = run_in_terminal(
        &rkt,
        &format!("--interactive {BUSYBOX} --exec=/bin/yes | head -1"),
        "",
        1,
    );
    assert!(out.contains("y\n"), "{out:?}");
    assert!(out.contains("terminal-restored"), "{out:?}");

    // Without a terminal, the app reads `rkt run`'s stdin.
    let mut child = rkt
        .command()
        .args([
            "run",
            &stage1_flag(),
            "--interactive",
            BUSYBOX,
            "--exec=/bin/sh",
            "--",
            "-c",
            "read line; echo got:$line; [ -t 0 ] || echo not-a-tty",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn rkt");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    Out::from_output(child.wait_with_output().unwrap())
        .expect_code(0)
        .expect_stdout("got:piped\nnot-a-tty\n");
}

#[test]
fn stop_ends_a_running_pod() {
    let rkt = setup();
    let s1 = stage1_flag();
    let mut pod = BgPod::start(&rkt, &[&s1, BUSYBOX, "--exec=/bin/sleep", "--", "1000"]);
    rkt.ok(&["stop", &pod.uuid]);
    let out = pod.wait(Duration::from_secs(15)).expect("rkt run ended");
    assert_eq!(out.code, 143, "{out}");
    let st = status(&rkt, &pod.uuid);
    assert_eq!(st["state"], "exited");
    assert_eq!(st["app-busybox"], "143");

    // --force kills an app that ignores SIGTERM.
    let mut pod = BgPod::start(
        &rkt,
        &[
            &s1,
            BUSYBOX,
            "--exec=/bin/sh",
            "--",
            "-c",
            "trap '' TERM; sleep 1000 & wait",
        ],
    );
    rkt.ok(&["stop", "--force", &pod.uuid]);
    let out = pod.wait(Duration::from_secs(15)).expect("rkt run ended");
    assert_eq!(out.code, 137, "{out}");

    // Killing `rkt run` itself ends the pod: nothing is left running.
    let mut pod = BgPod::start(&rkt, &[&s1, BUSYBOX, "--exec=/bin/sleep", "--", "1000"]);
    let pid = pod.pid().expect("rkt run pid") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    pod.wait(Duration::from_secs(5)).expect("rkt run reaped");
    assert!(
        wait_until(Duration::from_secs(10), || status(&rkt, &pod.uuid)["state"]
            == "exited"),
        "the pod outlived rkt run"
    );
}

#[test]
fn enter_runs_a_command_in_the_app() {
    let rkt = setup();
    let s1 = stage1_flag();
    let pod = BgPod::start(
        &rkt,
        &[
            &s1,
            "--hostname=entered",
            BUSYBOX,
            "--exec=/bin/sleep",
            "--",
            "1000",
        ],
    );
    rkt.ok(&["status", "--wait-ready=10s", &pod.uuid]);
    let out = rkt.ok(&[
        "enter",
        &pod.uuid,
        "/bin/sh",
        "-c",
        "hostname; echo $AC_APP_NAME; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /opt 2>&1 | head -1; cat /proc/self/status | grep NSpid; grep -c 'machine-rkt-.*/busybox$' /proc/self/cgroup",
    ]);
    let code3 = rkt.run(&["enter", &pod.uuid, "/bin/sh", "-c", "exit 3"]);
    // Stopped before asserting: a panic must not leave the pod running.
    rkt.ok(&["stop", "--force", &pod.uuid]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "entered", "{out}");
    assert_eq!(lines[1], "busybox", "{out}");
    assert!(lines[2].contains("run"), "PID 1 is the supervisor: {out}");
    assert!(
        lines[3].contains("No such file"),
        "the app's root, not stage1's: {out}"
    );
    // One pid: the pod's /proc, seen from the pod's PID namespace.
    assert_eq!(lines[4].split_whitespace().count(), 2, "{out}");
    assert_ne!(lines[5], "0", "the command runs in the app's cgroup: {out}");
    code3.expect_code(3);
}

/// The `bounding:` line of `inspect --print-caps-pid=0` in the pod.
fn bounding_set(rkt: &Rkt, flags: &[&str], app_flags: &[&str]) -> String {
    let mut args = flags.to_vec();
    args.push(INSPECT);
    args.extend_from_slice(app_flags);
    args.extend_from_slice(&["--", "--print-caps-pid=0"]);
    let (out, _) = ns_run(rkt, &args);
    let out = out.expect_code(0);
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("Capability set: bounding: "))
        .unwrap_or_else(|| panic!("no bounding set in {out}"))
        .to_string()
}

fn host_status_field(key: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn capability_isolators() {
    let rkt = setup();
    // rkt's 14 default capabilities.
    assert_eq!(bounding_set(&rkt, &[], &[]), "0x00000000a80425fb");
    assert_eq!(
        bounding_set(&rkt, &[], &["--caps-retain=CAP_NET_ADMIN"]),
        "0x0000000000001000"
    );
    let defaults_minus_chown = 0xa804_25fb_u64 & !1;
    assert_eq!(
        bounding_set(&rkt, &[], &["--caps-remove=CAP_CHOWN"]),
        format!("0x{defaults_minus_chown:016x}")
    );
    let full = format!("0x{}", host_status_field("CapBnd"));
    assert_eq!(
        bounding_set(&rkt, &["--insecure-options=image,capabilities"], &[]),
        full
    );
}

#[test]
fn seccomp_isolators() {
    let rkt = setup();
    // The default whitelist: ordinary commands work, mount(2) is killed.
    let (out, _) = sh(&rkt, &[], "echo fine; grep Seccomp: /proc/self/status");
    out.expect_code(0)
        .expect_stdout("fine\n")
        .expect_stdout("Seccomp:\t2");
    let (out, uuid) = ns_run(
        &rkt,
        &[
            BUSYBOX,
            "--exec=/bin/mount",
            "--",
            "-t",
            "tmpfs",
            "t",
            "/mnt",
        ],
    );
    // 128 + SIGSYS.
    let out = out.expect_code(159);
    assert_eq!(status(&rkt, &uuid)["app-busybox"], "159", "{out}");
    // Disabled: mount gets as far as the missing capability.
    let (out, _) = sh(
        &rkt,
        &["--insecure-options=image,seccomp"],
        "grep Seccomp: /proc/self/status",
    );
    out.expect_code(0).expect_stdout("Seccomp:\t0");

    // A remove set with an errno: the call fails instead of killing.
    let (out, _) = ns_run(
        &rkt,
        &[
            BUSYBOX,
            "--seccomp=mode=remove,errno=EPERM,mkdir",
            "--exec=/bin/sh",
            "--",
            "-c",
            "mkdir /x; echo rc=$?",
        ],
    );
    out.expect_code(0)
        .expect_stdout("rc=1\n")
        .expect_stderr("Operation not permitted");
}

#[test]
fn oom_score_adj_and_no_new_privs() {
    let rkt = setup();
    let (out, _) = ns_run(
        &rkt,
        &[
            BUSYBOX,
            "--oom-score-adj=500",
            "--exec=/bin/sh",
            "--",
            "-c",
            "cat /proc/self/oom_score_adj; grep NoNewPrivs: /proc/self/status",
        ],
    );
    // Root apps get no_new_privs only when asked for it.
    out.expect_code(0)
        .expect_stdout("500\n")
        .expect_stdout("NoNewPrivs:\t0");
}

/// Every `/sys/fs/cgroup/<hierarchy>/<subcgroup>` directory that exists.
fn cgroup_dirs(subcgroup: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path().join(subcgroup))
        .filter(|p| p.is_dir())
        .collect()
}

fn read_trimmed(path: impl AsRef<std::path::Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn resource_limits_in_app_cgroups_removed_by_gc() {
    let rkt = setup();
    let s1 = stage1_flag();
    let mut pod = BgPod::start(
        &rkt,
        &[
            &s1,
            BUSYBOX,
            // Quantities are Kubernetes ones: M is 10^6.
            "--memory=64M",
            "--cpu=250m",
            "--cpu-shares=512",
            "--exec=/bin/sleep",
            "--",
            "1000",
        ],
    );
    let subcgroup = read_trimmed(pod_dir(&rkt, "run", &pod.uuid).join("subcgroup"));
    assert!(subcgroup.contains(&pod.uuid), "{subcgroup}");
    let root = std::path::Path::new("/sys/fs/cgroup");
    let v2 = nix::sys::statfs::statfs(root).unwrap().filesystem_type()
        == nix::sys::statfs::CGROUP2_SUPER_MAGIC;
    let app = |hier: &str, file: &str| {
        let base = if v2 {
            root.to_path_buf()
        } else {
            root.join(hier)
        };
        read_trimmed(base.join(&subcgroup).join("busybox").join(file))
    };
    if v2 {
        assert_eq!(app("", "memory.max"), "64000000");
        assert_eq!(app("", "cpu.max"), "25000 100000");
        // The app joins its cgroup just before exec, after the pod is up.
        assert!(wait_until(Duration::from_secs(10), || app(
            "",
            "cgroup.procs"
        )
        .lines()
        .count()
            == 1));
    } else {
        assert_eq!(app("memory", "memory.limit_in_bytes"), "64000000");
        assert_eq!(app("cpu", "cpu.cfs_quota_us"), "25000");
        assert_eq!(app("cpu", "cpu.shares"), "512");
        assert!(wait_until(Duration::from_secs(10), || app(
            "memory",
            "cgroup.procs"
        )
        .lines()
        .count()
            == 1));
    }
    // Killing `rkt run` leaves the cleanup to gc.
    let pid = pod.pid().expect("rkt run pid") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    pod.wait(Duration::from_secs(5)).expect("rkt run reaped");
    assert!(wait_until(Duration::from_secs(10), || status(
        &rkt, &pod.uuid
    )["state"]
        == "exited"));
    assert!(!cgroup_dirs(&subcgroup).is_empty());
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert_eq!(cgroup_dirs(&subcgroup), Vec::<std::path::PathBuf>::new());

    // A pod that ends normally removes its cgroups itself.
    let (out, uuid) = sh(&rkt, &[], "cat /proc/self/cgroup");
    let out = out.expect_code(0);
    assert!(out.stdout.contains(&uuid), "{out}");
    let sub = format!("machine.slice/machine-rkt-{uuid}.scope");
    assert!(out.stdout.contains(&format!("{sub}/busybox")), "{out}");
    assert_eq!(cgroup_dirs(&sub), Vec::<std::path::PathBuf>::new());
}

/// Apps of one pod writing lines in pieces at the same time: every line
/// reaches `rkt run`'s stdout whole, and stderr lines reach its stderr.
#[test]
fn output_of_several_apps_is_unmixed_line_by_line() {
    let rkt = setup();
    let writer = |c: &str| {
        format!(
            "for i in 1 2 3 4 5 6; do printf '{c}{c}{c}'; sleep 0.01; printf '{C}{C}{C}\\n'; done; echo err-{c} >&2",
            C = c.to_uppercase()
        )
    };
    let (a, b) = (writer("a"), writer("b"));
    let (out, _) = ns_run(
        &rkt,
        &[
            "--net=none",
            BUSYBOX,
            "--name=a",
            "--exec=/bin/sh",
            "--",
            "-c",
            &a,
            "---",
            BUSYBOX,
            "--name=b",
            "--exec=/bin/sh",
            "--",
            "-c",
            &b,
            "---",
        ],
    );
    let out = out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 12, "{out}");
    for line in &lines {
        assert!(
            matches!(*line, "aaaAAA" | "bbbBBB"),
            "mixed line {line:?}: {out}"
        );
    }
    let mut errs: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("err-"))
        .collect();
    errs.sort();
    assert_eq!(errs, ["err-a", "err-b"], "{out}");
}

/// `--private-users`: the pod's root is a random 65536-id range of the
/// host's (recorded in the pod dir, files chowned into it at prepare), it
/// is uid 0 with its own files owned by 0 inside, `enter` joins its user
/// namespace, and gc leaves nothing; overlay and host networking are
/// refused clearly.
#[test]
fn private_users_shift_the_pod_into_its_own_id_range() {
    use std::os::unix::fs::MetadataExt;
    let rkt = setup();
    let (out, uuid) = sh(
        &rkt,
        &["--net=none", "--private-users", "--no-overlay"],
        "id -u; cat /proc/self/uid_map; stat -c %u:%g /bin/sh; touch /made && stat -c %u /made",
    );
    let out = out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    let map: Vec<u64> = lines[1]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(map[0], 0, "{out}");
    assert_eq!(map[2], 65536, "{out}");
    let shift = map[1];
    assert!(shift > 0 && shift.is_multiple_of(65536), "{out}");
    assert_eq!(
        lines[2], "0:0",
        "the image's files are root's inside: {out}"
    );
    assert_eq!(lines[3], "0", "{out}");
    let dir = pod_dir(&rkt, "exited-garbage", &uuid);
    let dir = if dir.exists() {
        dir
    } else {
        pod_dir(&rkt, "run", &uuid)
    };
    assert_eq!(
        std::fs::read_to_string(dir.join("private-users-prepared")).unwrap(),
        format!("{shift}:65536")
    );
    let bin = dir.join("stage1/rootfs/opt/stage2/busybox/rootfs/bin");
    assert_eq!(u64::from(std::fs::metadata(&bin).unwrap().uid()), shift);
    // The stage1's entrypoints, run later by the host's root, stay its own.
    let enter = dir.join("stage1/rootfs/enter");
    assert_eq!(std::fs::metadata(&enter).unwrap().uid(), 0);

    // enter joins the pod's user namespace.
    let s1 = stage1_flag();
    let pod = BgPod::start(
        &rkt,
        &[
            &s1,
            "--net=none",
            "--private-users",
            "--no-overlay",
            BUSYBOX,
            "--exec=/bin/sleep",
            "--",
            "1000",
        ],
    );
    rkt.ok(&["status", "--wait-ready=10s", &pod.uuid]);
    let entered = rkt.run(&[
        "enter",
        &pod.uuid,
        "/bin/sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    rkt.ok(&["stop", "--force", &pod.uuid]);
    let entered = entered.expect_code(0);
    let lines: Vec<&str> = entered.stdout.lines().collect();
    assert_eq!(lines[0], "0", "{entered}");
    assert!(!lines[1].starts_with("         0          0"), "{entered}");
    rkt.ok(&["gc", "--grace-period=0s"]);

    for (args, needle) in [
        (vec!["--net=none", "--private-users"], "--no-overlay"),
        (
            vec!["--net=host", "--private-users", "--no-overlay"],
            "network namespace",
        ),
    ] {
        let (out, _) = sh(&rkt, &args, "true");
        out.expect_code(254).expect_stderr(needle);
    }
}

/// A descriptor the caller left open (here: the host's `/` as fd 7) never
/// reaches the app, and a non-interactive app reads /dev/null, in a
/// session of its own (the caller's terminal is not its controlling one).
#[test]
fn caller_descriptors_and_terminal_stay_outside() {
    use std::os::unix::process::CommandExt;
    let rkt = setup();
    let s1 = stage1_flag();
    let root = std::fs::File::open("/").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&root);
    let mut cmd = rkt.command();
    cmd.args([
        "run",
        &s1,
        "--net=none",
        BUSYBOX,
        "--exec=/bin/sh",
        "--",
        "-c",
        "test -e /proc/self/fd/7 && echo fd7=open || echo fd7=closed; readlink /proc/self/fd/0; \
         test \"$(cut -d' ' -f6 /proc/self/stat)\" = \"$(cut -d' ' -f6 /proc/1/stat)\" && echo same-session || echo own-session",
    ]);
    // SAFETY: dup2 is async-signal-safe; both descriptors are valid.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = Out::from_output(cmd.output().unwrap());
    drop(root);
    out.expect_code(0)
        .expect_stdout("fd7=closed\n/dev/null\nown-session\n");
    rkt.ok(&["gc", "--grace-period=0s"]);
}
