//! Isolators applied for real: each test spawns `/bin/busybox`, applies the
//! settings between fork and exec (the `apply_*` steps allocate nothing, so
//! this is sound in the multi-threaded test harness) and checks what the
//! app sees. Needs root; skipped otherwise.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output};

use abi::schema::IsolatorValue;
use stage1_common::isolators::caps::{Capability, CapabilitySet};
use stage1_common::isolators::{process, AppSecurity, Insecure};

const BUSYBOX: &str = "/bin/busybox";

/// These tests need root and busybox (installed by `make test`'s setup);
/// without them they fail loudly rather than skip.
fn skip() -> bool {
    assert!(nix::unistd::geteuid().is_root(), "these tests need root");
    assert!(
        std::path::Path::new(BUSYBOX).exists(),
        "these tests need {BUSYBOX} (apt install busybox-static)"
    );
    false
}

/// Runs `busybox sh -c script` as `uid` (0 or another) with `sec` applied.
fn run(sec: &AppSecurity, uid: u32, script: &str) -> Output {
    let sec = sec.clone();
    let mut cmd = Command::new(BUSYBOX);
    cmd.args(["sh", "-c", script]);
    // SAFETY: the closure only makes syscalls and does not allocate on its
    // success path (see AppSecurity); errors are returned to std, which
    // reports them through its own pipe.
    unsafe {
        cmd.pre_exec(move || {
            sec.apply_before_credentials()
                .map_err(|_| std::io::Error::other("apply_before_credentials"))?;
            if uid != 0
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            sec.apply_after_credentials()
                .map_err(|_| std::io::Error::other("apply_after_credentials"))?;
            Ok(())
        });
    }
    cmd.output().expect("spawning busybox")
}

fn status_field(stdout: &[u8], key: &str) -> String {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
        .to_string()
}

fn mask(stdout: &[u8], key: &str) -> u64 {
    u64::from_str_radix(&status_field(stdout, key), 16).unwrap()
}

fn no_seccomp() -> Insecure {
    Insecure {
        capabilities: false,
        seccomp: true,
    }
}

#[test]
fn caps_retain_set_root_and_non_root() {
    if skip() {
        return;
    }
    let isolators = [IsolatorValue::CapabilitiesRetainSet(vec![
        "CAP_NET_ADMIN".into(),
        "CAP_KILL".into(),
    ])];
    let want = CapabilitySet::parse_names(["CAP_NET_ADMIN", "CAP_KILL"]).unwrap();

    let sec = AppSecurity::new(&isolators, 0, no_seccomp()).unwrap();
    let out = run(&sec, 0, "grep Cap /proc/self/status");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mask(&out.stdout, "CapBnd"), want.mask());
    assert_eq!(mask(&out.stdout, "CapEff"), want.mask());
    assert_eq!(mask(&out.stdout, "CapPrm"), want.mask());
    assert_eq!(mask(&out.stdout, "CapInh"), 0);
    assert_eq!(mask(&out.stdout, "CapAmb"), 0);

    // Non-root: the set bounds, but the app holds nothing.
    let sec = AppSecurity::new(&isolators, 65534, no_seccomp()).unwrap();
    let out = run(&sec, 65534, "grep Cap /proc/self/status");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mask(&out.stdout, "CapBnd"), want.mask());
    assert_eq!(mask(&out.stdout, "CapEff"), 0);
    assert_eq!(mask(&out.stdout, "CapPrm"), 0);
}

#[test]
fn default_caps_and_insecure_caps() {
    if skip() {
        return;
    }
    let sec = AppSecurity::new(&[], 0, no_seccomp()).unwrap();
    let out = run(&sec, 0, "grep Cap /proc/self/status");
    assert_eq!(mask(&out.stdout, "CapBnd"), 0xa80425fb);

    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let sec = AppSecurity::new(
        &[],
        0,
        Insecure {
            capabilities: true,
            seccomp: true,
        },
    )
    .unwrap();
    let out = run(&sec, 0, "grep Cap /proc/self/status");
    assert_eq!(
        mask(&out.stdout, "CapBnd"),
        mask(host.as_bytes(), "CapBnd"),
        "insecure keeps the host's bounding set"
    );
    assert!(CapabilitySet::from_mask(mask(&out.stdout, "CapEff"))
        .contains(Capability::parse("CAP_SYS_ADMIN").unwrap()));
}

#[test]
fn seccomp_remove_set_with_errno() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("made");
    let isolators = [IsolatorValue::SeccompRemoveSet {
        set: vec!["mkdir".into()],
        errno: Some("EPERM".into()),
    }];
    let sec = AppSecurity::new(&isolators, 0, Insecure::default()).unwrap();
    let script = format!("echo pid=$$; {BUSYBOX} mkdir {}", target.display());
    let out = run(&sec, 0, &script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "mkdir must fail: {out:?}");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    assert!(!target.exists());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("pid=") && stdout.trim().len() > 4,
        "{stdout}"
    );

    // Without the filter the same script works.
    let out = run(&AppSecurity::new(&[], 0, no_seccomp()).unwrap(), 0, &script);
    assert!(out.status.success(), "{out:?}");
    assert!(target.is_dir());
}

#[test]
fn default_whitelist_runs_a_shell_and_kills_on_mount() {
    if skip() {
        return;
    }
    let sec = AppSecurity::new(&[], 0, Insecure::default()).unwrap();
    let out = run(&sec, 0, "echo ok");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");

    // mount(2) is not whitelisted and there is no errno: SIGSYS.
    let out = run(&sec, 0, &format!("exec {BUSYBOX} mount -t tmpfs none /mnt"));
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{out:?}");

    // A non-root app with seccomp gets no_new_privs forced and still runs.
    let sec = AppSecurity::new(&[], 65534, Insecure::default()).unwrap();
    assert!(sec.no_new_privs);
    let out = run(&sec, 65534, "grep NoNewPrivs /proc/self/status");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), "1");
}

#[test]
fn no_new_privs_and_oom_score_adj() {
    if skip() {
        return;
    }
    let isolators = [
        IsolatorValue::NoNewPrivileges(true),
        IsolatorValue::OomScoreAdj(500),
    ];
    let sec = AppSecurity::new(&isolators, 0, no_seccomp()).unwrap();
    let out = run(
        &sec,
        0,
        "grep NoNewPrivs /proc/self/status; echo Oom: $(cat /proc/self/oom_score_adj)",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), "1");
    assert_eq!(status_field(&out.stdout, "Oom"), "500");

    // Root without the isolator: no_new_privs stays off.
    let sec = AppSecurity::new(&[], 0, no_seccomp()).unwrap();
    let out = run(&sec, 0, "grep NoNewPrivs /proc/self/status");
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), "0");
    assert!(
        !process::no_new_privs().unwrap(),
        "the test process is untouched"
    );
}
