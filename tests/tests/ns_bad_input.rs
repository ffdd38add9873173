//! Bad input for the ns stage1 (issue 3): a missing exec or ELF
//! interpreter or library, unknown capability and syscall names, both
//! capability sets on one app, a memory limit too small to start, an app
//! that leaves a thousand children behind, one that ignores SIGTERM, a
//! killed supervisor, and apps that try to reach the host through
//! `/proc/1` or write `/proc/sysrq-trigger`. Each must fail clearly (or be
//! contained) and leave no process, cgroup or mount behind after `gc`.
//!
//! Covered elsewhere and not repeated here: `stop --force` of an app that
//! ignores SIGTERM and SIGKILL of `rkt run` itself (ns.rs
//! `stop_ends_a_running_pod`), cgroups removed by gc after a killed
//! `rkt run` (ns.rs `resource_limits_in_app_cgroups_removed_by_gc`), the
//! read-only mount of /proc/sysrq-trigger (ns_paths.rs).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use functional_tests::pods::ns_stage1_flag as stage1_flag;
use functional_tests::pods::rkt_with_test_images as setup;
use functional_tests::pods::{build_aci, host_busybox, status, status_map, wait_until, BgPod};
use functional_tests::pods::{pod_cgroups, pod_processes};
use functional_tests::{Out, Rkt};
use images::recipes::{busybox_manifest, busybox_version, populate_busybox_rootfs};

const BUSYBOX: &str = "example.com/busybox";

/// `rkt run --stage1-path=NS --net=none ARGS...` killed (our own child, by
/// pid) if it runs longer than `limit`: its output and the pod's UUID.
fn ns_run_limited(rkt: &Rkt, args: &[&str], limit: Duration) -> (Out, String) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let uf = rkt
        .root()
        .join(format!("uuid-{}", N.fetch_add(1, Ordering::Relaxed)));
    let mut child = rkt
        .command()
        .arg("run")
        .arg(format!("--uuid-file-save={}", uf.display()))
        .arg(stage1_flag())
        .arg("--net=none")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rkt run");
    let t0 = Instant::now();
    let mut timed_out = false;
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !timed_out,
        "rkt run {args:?} ran longer than {limit:?}:\n{out}"
    );
    let uuid = std::fs::read_to_string(&uf).unwrap_or_default();
    (out, uuid)
}

fn ns_run(rkt: &Rkt, args: &[&str]) -> (Out, String) {
    ns_run_limited(rkt, args, Duration::from_secs(60))
}

fn sh(rkt: &Rkt, app_flags: &[&str], script: &str) -> (Out, String) {
    let mut all = vec![BUSYBOX];
    all.extend_from_slice(app_flags);
    all.extend_from_slice(&["--exec=/bin/sh", "--", "-c", script]);
    ns_run(rkt, &all)
}

/// After `rkt gc --grace-period=0s`: no process, cgroup or mount of the
/// pods, and no pod listed.
#[track_caller]
fn assert_nothing_left(rkt: &Rkt, uuids: &[&str]) {
    rkt.ok(&["gc", "--grace-period=0s"]);
    let mut left = Vec::new();
    for uuid in uuids {
        // Pid-namespace teardown is asynchronous: give the kernel a moment.
        wait_until(Duration::from_secs(5), || {
            pod_processes(rkt, uuid).is_empty()
        });
        left.extend(
            pod_processes(rkt, uuid)
                .into_iter()
                .map(|p| format!("process {p}")),
        );
        left.extend(
            pod_cgroups(uuid)
                .into_iter()
                .map(|d| format!("cgroup {}", d.display())),
        );
    }
    left.extend(
        rkt.mounts_under_root()
            .into_iter()
            .map(|m| format!("mount {m}")),
    );
    let list = rkt.ok(&["list", "--no-legend"]);
    if !list.stdout.trim().is_empty() {
        left.push(format!("listed pods: {}", list.stdout));
    }
    assert!(left.is_empty(), "left behind after gc: {left:#?}");
}

/// The pod is not (or no longer) running.
#[track_caller]
fn assert_not_running(rkt: &Rkt, uuid: &str) {
    if uuid.is_empty() {
        return;
    }
    let o = rkt.run(&["status", uuid]);
    if o.code == 0 {
        assert_ne!(
            status_map(&o.stdout).get("state").map(String::as_str),
            Some("running"),
            "{o}"
        );
    }
}

/// A busybox ACI named `name` whose app is the host's (dynamically linked)
/// `true`, with the files `extra` copies from the host (host path, path in
/// the image).
fn dynamic_aci(rkt: &Rkt, name: &str, extra: &[(&str, &str)]) -> PathBuf {
    let busybox = host_busybox();
    let mut m = busybox_manifest(&busybox_version(&busybox).unwrap()).unwrap();
    m.name = format!("example.com/{name}").parse().unwrap();
    m.app.as_mut().unwrap().exec = vec!["/bin/dyn-true".into()];
    let extra: Vec<(PathBuf, String)> = extra
        .iter()
        .map(|(h, i)| (PathBuf::from(h), i.to_string()))
        .collect();
    build_aci(rkt.root(), &format!("{name}.aci"), m, |root| {
        populate_busybox_rootfs(root, &busybox).unwrap();
        std::fs::copy("/bin/true", root.join("bin/dyn-true")).unwrap();
        for (host, in_image) in &extra {
            let dst = root.join(in_image.trim_start_matches('/'));
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(host, dst).unwrap();
        }
    })
}

/// The ELF interpreter (PT_INTERP) of the host's `/bin/true`, as
/// `file(1)` would name it.
fn host_interpreter() -> String {
    let elf = std::fs::read("/bin/true").unwrap();
    // The interpreter path is the only `/lib…ld-linux…\0` string near the
    // start of the file; reading it that way avoids an ELF parser here.
    let text = String::from_utf8_lossy(&elf[..elf.len().min(4096)]).into_owned();
    let start = text.find("/lib").expect("an interpreter path in /bin/true");
    let end = text[start..].find('\0').unwrap() + start;
    text[start..end].to_string()
}

#[test]
fn missing_exec_is_named() {
    let rkt = setup();
    let (out, uuid) = ns_run(&rkt, &[BUSYBOX, "--exec=/bin/no-such-program"]);
    let out = out.expect_code(254).expect_stderr("/bin/no-such-program");
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert_not_running(&rkt, &uuid);
    assert_nothing_left(&rkt, &[&uuid]);
}

#[test]
fn missing_elf_interpreter_is_named() {
    let rkt = setup();
    let interp = host_interpreter();
    let aci = dynamic_aci(&rkt, "dyn-no-interp", &[]);
    let (out, uuid) = ns_run(&rkt, &["--insecure-options=image", aci.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    // rkt's diagnostic names the interpreter, not just the exec.
    let base = Path::new(&interp).file_name().unwrap().to_string_lossy();
    assert!(
        out.stderr.contains(base.as_ref()),
        "stderr should name the missing interpreter {interp}:\n{out}"
    );
    assert_not_running(&rkt, &uuid);
    assert_nothing_left(&rkt, &[&uuid]);
}

#[test]
fn missing_shared_library_is_named() {
    let rkt = setup();
    let interp = host_interpreter();
    // The interpreter is there, libc is not: the loader names it.
    let aci = dynamic_aci(&rkt, "dyn-no-libc", &[(&interp, &interp)]);
    let (out, uuid) = ns_run(&rkt, &["--insecure-options=image", aci.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("libc.so.6"), "{out}");
    assert_nothing_left(&rkt, &[&uuid]);
}

#[test]
fn unknown_capability_names_are_refused() {
    let rkt = setup();
    let mut uuids = Vec::new();
    for flag in [
        "--caps-retain=CAP_NO_SUCH_THING",
        "--caps-remove=CAP_NO_SUCH_THING",
    ] {
        let (out, uuid) = ns_run(&rkt, &[BUSYBOX, flag, "--exec=/bin/true"]);
        let out = out.expect_code(254).expect_stderr("CAP_NO_SUCH_THING");
        assert!(!out.stderr.contains("panicked"), "{out}");
        assert_not_running(&rkt, &uuid);
        uuids.push(uuid);
    }
    let uuids: Vec<&str> = uuids.iter().map(String::as_str).collect();
    assert_nothing_left(&rkt, &uuids);
}

#[test]
fn unknown_syscall_names_are_refused() {
    let rkt = setup();
    let mut uuids = Vec::new();
    for flag in [
        "--seccomp=mode=retain,read,write,no_such_syscall",
        "--seccomp=mode=remove,no_such_syscall",
        "--seccomp=mode=retain,@no/such-group",
    ] {
        let (out, uuid) = ns_run(&rkt, &[BUSYBOX, flag, "--exec=/bin/true"]);
        let needle = flag.rsplit(',').next().unwrap();
        let out = out.expect_code(254).expect_stderr(needle);
        assert!(!out.stderr.contains("panicked"), "{out}");
        assert_not_running(&rkt, &uuid);
        uuids.push(uuid);
    }
    let uuids: Vec<&str> = uuids.iter().map(String::as_str).collect();
    assert_nothing_left(&rkt, &uuids);
}

#[test]
fn caps_retain_and_remove_on_one_app_are_refused() {
    let rkt = setup();
    let (out, uuid) = ns_run(
        &rkt,
        &[
            BUSYBOX,
            "--caps-retain=CAP_CHOWN",
            "--caps-remove=CAP_KILL",
            "--exec=/bin/true",
        ],
    );
    out.expect_code(254)
        .expect_stderr("--caps-retain")
        .expect_stderr("--caps-remove");
    assert_not_running(&rkt, &uuid);
    assert_nothing_left(&rkt, &[&uuid]);
}

#[test]
fn memory_limit_too_small_to_start_fails_clearly() {
    let rkt = setup();
    // 100 kB: not even the shell's first pages fit.
    let (out, uuid) = sh(&rkt, &["--memory=100k"], "echo started");
    assert_ne!(out.code, 0, "{out}");
    assert!(!out.stdout.contains("started"), "{out}");
    let st = status(&rkt, &uuid);
    assert_eq!(st["state"], "exited", "{st:?}");
    assert_ne!(st.get("app-busybox").map(String::as_str), Some("0"));
    // The cause is named: killed for its memory limit, not a bare 137.
    let lower = out.stderr.to_lowercase();
    assert!(
        lower.contains("memory") || lower.contains("oom"),
        "stderr should say the app ran out of its memory limit:\n{out}"
    );
    assert_nothing_left(&rkt, &[&uuid]);
}

#[test]
fn app_that_forks_a_thousand_children_and_exits() {
    let rkt = setup();
    let t0 = Instant::now();
    let (out, uuid) = ns_run_limited(
        &rkt,
        &[
            BUSYBOX,
            "--exec=/bin/sh",
            "--",
            "-c",
            "for i in $(seq 1000); do sleep 100 & done; exit 0",
        ],
        Duration::from_secs(60),
    );
    let took = t0.elapsed();
    out.expect_code(0);
    eprintln!("rkt run with 1000 orphans returned after {took:?}");
    assert_eq!(status(&rkt, &uuid)["state"], "exited");
    // The orphans die with the pod, before gc.
    assert!(
        wait_until(Duration::from_secs(5), || pod_processes(&rkt, &uuid)
            .is_empty()),
        "left running after rkt run returned: {} processes",
        pod_processes(&rkt, &uuid).len()
    );
    assert_nothing_left(&rkt, &[&uuid]);
}

#[test]
fn stop_ends_an_app_that_ignores_sigterm() {
    let rkt = setup();
    let s1 = stage1_flag();
    let mut pod = BgPod::start(
        &rkt,
        &[
            &s1,
            "--net=none",
            BUSYBOX,
            "--exec=/bin/sh",
            "--",
            "-c",
            "trap '' TERM; touch /trapped; sleep 1000 & wait; wait",
        ],
    );
    let uuid = pod.uuid.clone();
    // Stopped only once the shell ignores SIGTERM.
    assert!(
        wait_until(Duration::from_secs(10), || rkt
            .run(&["enter", &uuid, "/bin/test", "-e", "/trapped"])
            .code
            == 0),
        "the app never set its trap"
    );
    let t0 = Instant::now();
    rkt.ok(&["stop", &uuid]);
    let out = pod.wait(Duration::from_secs(30));
    let took = t0.elapsed();
    eprintln!("rkt stop of a SIGTERM-ignoring app: rkt run returned after {took:?}");
    let out = out.expect("rkt run ended within 30 s of rkt stop");
    // SIGKILL after the grace period.
    assert_eq!(out.code, 137, "{out}");
    assert!(took < Duration::from_secs(15), "stop took {took:?}");
    assert_eq!(status(&rkt, &uuid)["state"], "exited");
    assert_nothing_left(&rkt, &[&uuid]);
}

#[test]
fn kill_9_of_the_supervisor() {
    let rkt = setup();
    let s1 = stage1_flag();
    let mut pod = BgPod::start(
        &rkt,
        &[
            &s1,
            "--net=none",
            BUSYBOX,
            "--exec=/bin/sleep",
            "--",
            "1000",
        ],
    );
    let uuid = pod.uuid.clone();
    let pid_file = rkt.dir.join("pods/run").join(&uuid).join("pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains(&uuid),
        "pid {pid} is the pod's supervisor"
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    let out = pod
        .wait(Duration::from_secs(15))
        .expect("rkt run returns when the supervisor is killed");
    assert_ne!(out.code, 0, "{out}");
    assert!(
        wait_until(Duration::from_secs(10), || status(&rkt, &uuid)["state"]
            == "exited"),
        "{:?}",
        status(&rkt, &uuid)
    );
    assert_nothing_left(&rkt, &[&uuid]);
    // The user learns why the pod ended, not just a bare 137.
    let lower = out.stderr.to_lowercase();
    assert!(
        lower.contains("supervisor") || lower.contains("killed") || lower.contains("signal"),
        "rkt run should say the pod's supervisor was killed:\n{out}"
    );
}

/// A script that tries every way through the supervisor's /proc entry to a
/// host file and prints what it reads.
fn escape_script(canary: &Path) -> String {
    let c = canary.display();
    let up = "../".repeat(40);
    format!(
        "ls /proc/1/root/ >/dev/null 2>&1; \
         cat /proc/1/root/etc/hostname 2>/dev/null; \
         cat /proc/1/root{c} /proc/1/cwd{c} /proc/1/root/{up}{c} 2>/dev/null; \
         for f in /proc/1/fd/* /proc/1/task/*/fd/* /proc/1/map_files/*; do \
           cat $f/{up}{c} 2>/dev/null; \
         done; \
         cat /proc/1/root/proc/1/root{c} 2>/dev/null; echo probed"
    )
}

#[test]
fn app_cannot_reach_host_files_through_proc_1() {
    let rkt = setup();
    let canary = rkt.root().join("host-canary");
    std::fs::write(&canary, "HOST-SECRET\n").unwrap();
    let script = escape_script(&canary);
    let mut uuids = Vec::new();
    for flags in [
        &[][..],
        &["--caps-retain=CAP_SYS_PTRACE,CAP_DAC_OVERRIDE,CAP_DAC_READ_SEARCH,CAP_SYS_CHROOT"][..],
    ] {
        let (out, uuid) = sh(&rkt, flags, &script);
        let out = out.expect_code(0).expect_stdout("probed\n");
        assert!(
            !out.stdout.contains("HOST-SECRET"),
            "the app {flags:?} read a host file through /proc/1:\n{out}"
        );
        assert!(
            !out.stdout.contains(&host_hostname()),
            "the app {flags:?} read the host's /etc/hostname:\n{out}"
        );
        uuids.push(uuid);
    }
    let uuids: Vec<&str> = uuids.iter().map(String::as_str).collect();
    assert_nothing_left(&rkt, &uuids);
}

fn host_hostname() -> String {
    let h = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    // A marker that cannot match the pod's own rkt-<uuid> hostname.
    format!("\n{}\n", h.trim())
}

/// SAFETY of the host: the only byte ever written is `h` (sysrq's help
/// text in the kernel log), and only if the write is let through at all.
#[test]
fn writes_to_sysrq_trigger_fail() {
    let rkt = setup();
    let script =
        "if echo h > /proc/sysrq-trigger; then echo WROTE; else echo refused; fi 2>/dev/null";
    let (out, u1) = sh(&rkt, &[], script);
    assert_eq!(out.expect_code(0).stdout, "refused\n");
    // With CAP_SYS_ADMIN the app may not remount or unmount it either
    // (mount(2) and umount2(2) are outside the default seccomp whitelist).
    let script = "(mount -o remount,rw /proc/sysrq-trigger) 2>/dev/null; \
        (umount /proc/sysrq-trigger) 2>/dev/null; \
        if echo h > /proc/sysrq-trigger; then echo WROTE; else echo refused; fi 2>/dev/null";
    let (out, u2) = sh(&rkt, &["--caps-retain=CAP_SYS_ADMIN"], script);
    assert_eq!(out.expect_code(0).stdout, "refused\n");
    assert_nothing_left(&rkt, &[&u1, &u2]);
}
