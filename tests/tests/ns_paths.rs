//! The ns stage1's path protection (`--insecure-options=paths` turns it
//! off) and the app's read-only view of its own cgroups.
//!
//! SAFETY of the host: these tests never write to /proc/sys or
//! /proc/sysrq-trigger. A knob's writability is checked by opening it for
//! appending in a subshell that exits without writing (busybox `test -w`
//! is true for root whatever the mount), /sys and sysrq-trigger only by
//! their mount options in mountinfo.

use functional_tests::pods::rkt_with_test_images as setup;
use functional_tests::pods::{ns_stage1_flag, run_pod};
use functional_tests::{Out, Rkt};

const BUSYBOX: &str = "example.com/busybox";
const INSPECT: &str = "example.com/inspect";

fn ns_run(rkt: &Rkt, args: &[&str]) -> Out {
    let s1 = ns_stage1_flag();
    let mut all = vec![s1.as_str()];
    all.extend_from_slice(args);
    run_pod(rkt, &all).0
}

fn sh(rkt: &Rkt, pod_args: &[&str], script: &str) -> Out {
    let mut all = pod_args.to_vec();
    all.extend_from_slice(&[BUSYBOX, "--exec=/bin/sh", "--", "-c", script]);
    ns_run(rkt, &all)
}

fn host_has(path: &str) -> bool {
    std::path::Path::new(path).symlink_metadata().is_ok()
}

/// `<path>=w` or `<path>=ro` for each knob (open for append, no write),
/// then the first mount option of /proc/sysrq-trigger and /sys
/// (`none` when it is no mount point of its own).
const WRITABLE: &str = "for p in /proc/sys/kernel/core_pattern /proc/sys/vm/panic_on_oom; do \
    if (exec 3>>$p) 2>/dev/null; then echo $p=w; else echo $p=ro; fi; done; \
    for m in /proc/sysrq-trigger /sys; do \
    o=$(cut -d' ' -f5,6 /proc/self/mountinfo | grep \"^$m \" | cut -d' ' -f2 | cut -d, -f1); \
    echo $m=${o:-none}; done";

#[test]
fn kernel_knobs_are_read_only_and_leaky_files_hidden() {
    let rkt = setup();
    let out = sh(&rkt, &[], WRITABLE).expect_code(0);
    // Some kernels (this test host's) have no sysrq-trigger or kcore.
    let sysrq = if host_has("/proc/sysrq-trigger") {
        "ro"
    } else {
        "none"
    };
    assert_eq!(
        out.stdout,
        format!(
            "/proc/sys/kernel/core_pattern=ro\n/proc/sys/vm/panic_on_oom=ro\n\
             /proc/sysrq-trigger={sysrq}\n/sys=ro\n"
        ),
        "{out}"
    );

    let script = "cat /proc/kcore 2>/dev/null | wc -c; ls -A /sys/firmware | wc -l; \
        ls -A /sys/module | wc -l; cat /proc/kallsyms | wc -c; \
        grep -c ' /proc/sys ro,' /proc/self/mountinfo; echo done";
    let out = sh(&rkt, &[], script).expect_code(0);
    assert_eq!(out.stdout, "0\n0\n0\n0\n1\ndone\n", "{out}");
    if host_has("/proc/kcore") {
        let out = sh(&rkt, &[], "grep -c ' /proc/kcore ' /proc/self/mountinfo").expect_code(0);
        assert_eq!(out.stdout, "1\n", "{out}");
    }
    // Still a working /proc.
    let out = sh(&rkt, &[], "cat /proc/sys/kernel/ostype").expect_code(0);
    assert_eq!(out.stdout, "Linux\n", "{out}");
}

#[test]
fn insecure_paths_leaves_proc_and_sys_writable() {
    let rkt = setup();
    let out = sh(&rkt, &["--insecure-options=image,paths"], WRITABLE).expect_code(0);
    assert_eq!(
        out.stdout,
        "/proc/sys/kernel/core_pattern=w\n/proc/sys/vm/panic_on_oom=w\n\
         /proc/sysrq-trigger=none\n/sys=rw\n",
        "{out}"
    );
    let out = sh(
        &rkt,
        &["--insecure-options=image,paths"],
        "ls -A /sys/firmware | wc -l; grep -c ' /proc/sys' /proc/self/mountinfo; true",
    )
    .expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[1], "0", "/proc/sys is no separate mount: {out}");
    let host_firmware = std::fs::read_dir("/sys/firmware").map_or(0, |d| d.count());
    assert_eq!(lines[0], host_firmware.to_string(), "{out}");
}

#[test]
fn app_reads_its_own_cgroup_limits() {
    let rkt = setup();
    let out = ns_run(
        &rkt,
        &[
            INSPECT,
            "--memory=64Mi",
            "--cpu=250m",
            "--cpu-shares=512",
            "--",
            "--print-memorylimit",
            "--print-cpuquota",
            "--print-cpushares",
        ],
    )
    .expect_code(0);
    assert_eq!(
        out.stdout, "Memory Limit: 67108864\nCPU Quota: 250\nCPU Shares: 512\n",
        "{out}"
    );
}

#[test]
fn cgroups_are_read_only_in_the_app() {
    let rkt = setup();
    // The memory hierarchy on v1, the unified one on v2: either way no
    // write access to any knob, and no sight of the host's other cgroups.
    let script = "cd /sys/fs/cgroup; d=$(ls -d memory 2>/dev/null || echo .); \
        (exec 3>>$d/cgroup.procs) 2>/dev/null && echo writable; \
        ls $d | grep -c -e '^machine.slice$' -e '^system.slice$'; true";
    let out = sh(&rkt, &[], script).expect_code(0);
    assert_eq!(out.stdout, "0\n", "{out}");
}

/// Devices are closed: a node the app makes (CAP_MKNOD is in rkt's
/// default set) cannot be opened, in its rootfs or its /dev; the minimal
/// /dev works, and so does a device passed as a volume.
#[test]
fn devices_are_closed_except_the_minimal_set_and_device_volumes() {
    let rkt = setup();
    let script = "mknod /sda b 8 0 && (head -c 1 /sda >/dev/null 2>&1 && echo sda=open || echo sda=denied); \
        mknod /dev/mem2 c 1 1 && (head -c 1 /dev/mem2 >/dev/null 2>&1 && echo mem=open || echo mem=denied); \
        echo x >/dev/null && echo null=ok; \
        echo zero=$(head -c 4 /dev/zero | wc -c) urandom=$(head -c 4 /dev/urandom | wc -c); \
        echo volume=$(head -c 5 /zero | wc -c)";
    let out = sh(
        &rkt,
        &[
            "--net=none",
            "--volume=z,kind=host,source=/dev/zero",
            "--mount=volume=z,target=/zero",
        ],
        script,
    );
    out.expect_code(0)
        .expect_stdout("sda=denied\nmem=denied\nnull=ok\nzero=4 urandom=4\nvolume=5\n");
}
