//! The ns stage1's appc event handlers: `pre-start` runs as root in the
//! app's root before the app (which starts only if it succeeds), `post-stop`
//! runs in the app's root after it exits.

use std::path::{Path, PathBuf};
use std::process::Command;

use abi::schema::EventHandler;
use functional_tests::pods::ns_stage1_flag as stage1_flag;
use functional_tests::pods::{build_aci, host_busybox, run_pod};
use functional_tests::{Out, Rkt};
use images::recipes::{busybox_manifest, busybox_version, populate_busybox_rootfs};

const PRE_START: &str = "echo pre > /pre-marker; id -u > /pre-uid";
const APP: &str = "cat /pre-marker /pre-uid; echo app";
const POST_STOP: &str = "echo post > /post-marker";

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

/// A busybox ACI named `name` whose app runs `app` as user 1000 with the
/// given handlers.
fn events_aci(rkt: &Rkt, name: &str, pre_start: &str, app: &str, post_stop: &str) -> PathBuf {
    let busybox = host_busybox();
    let mut m = busybox_manifest(&busybox_version(&busybox).unwrap()).unwrap();
    m.name = format!("example.com/{name}").parse().unwrap();
    let a = m.app.as_mut().unwrap();
    a.exec = sh(app);
    a.user = "1000".into();
    a.group = "1000".into();
    a.event_handlers = vec![
        EventHandler {
            name: "pre-start".into(),
            exec: sh(pre_start),
        },
        EventHandler {
            name: "post-stop".into(),
            exec: sh(post_stop),
        },
    ];
    build_aci(rkt.root(), &format!("{name}.aci"), m, |root| {
        populate_busybox_rootfs(root, &busybox).unwrap();
    })
}

fn run_aci(rkt: &Rkt, aci: &Path) -> (Out, String) {
    let s1 = stage1_flag();
    let aci = aci.display().to_string();
    run_pod(rkt, &["--insecure-options=image", &s1, &aci])
}

/// The paths in the exported ACI of the pod's only app.
fn exported_paths(rkt: &Rkt, uuid: &str) -> Vec<String> {
    let out = rkt.root().join(format!("{uuid}.aci"));
    rkt.ok(&["export", uuid, out.to_str().unwrap()]);
    let tar = Command::new("tar").arg("-tf").arg(&out).output().unwrap();
    assert!(tar.status.success(), "tar -tf {out:?} failed");
    String::from_utf8_lossy(&tar.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn pre_start_as_root_before_the_app_and_post_stop_after_it() {
    let rkt = Rkt::new();
    let aci = events_aci(&rkt, "events-ok", PRE_START, APP, POST_STOP);
    let (out, uuid) = run_aci(&rkt, &aci);
    let out = out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    // The app (uid 1000) sees the pre-start's files; the handler ran as 0.
    let at = lines
        .iter()
        .position(|l| *l == "pre")
        .unwrap_or_else(|| panic!("no pre-start marker in {:?}", out.stdout));
    assert_eq!(&lines[at..at + 3], ["pre", "0", "app"], "{}", out.stdout);

    let paths = exported_paths(&rkt, &uuid);
    for p in ["rootfs/pre-marker", "rootfs/post-marker"] {
        assert!(paths.iter().any(|x| x == p), "{p} not in {paths:?}");
    }
}

#[test]
fn failing_pre_start_keeps_the_app_from_running() {
    let rkt = Rkt::new();
    let aci = events_aci(
        &rkt,
        "events-fail",
        "exit 3",
        "echo app-ran",
        "echo post > /post-marker",
    );
    let (out, uuid) = run_aci(&rkt, &aci);
    let out = out.expect_code(3);
    assert!(!out.stdout.contains("app-ran"), "{}", out.stdout);
    let status = functional_tests::pods::status(&rkt, &uuid);
    let code = status
        .iter()
        .find(|(k, _)| k.starts_with("app-"))
        .map(|(_, v)| v.clone());
    assert_eq!(code.as_deref(), Some("3"), "{status:?}");
}

/// `rkt stop` of an app that ignores SIGTERM and whose post-stop handler
/// hangs: the app is killed after the grace period, its handler (started
/// only then) gets one more and is killed too, and `rkt run` returns.
#[test]
fn a_hanging_post_stop_after_the_kill_timer_is_killed_too() {
    use functional_tests::pods::{status, wait_until, BgPod};
    use std::time::{Duration, Instant};
    let rkt = Rkt::new();
    let aci = events_aci(
        &rkt,
        "events-hang",
        "true",
        "trap '' TERM; while true; do sleep 1; done",
        "exec sleep 1000",
    );
    let s1 = stage1_flag();
    let aci = aci.display().to_string();
    let mut pod = BgPod::start(&rkt, &["--insecure-options=image", &s1, &aci]);
    let uuid = pod.uuid.clone();
    let started = Instant::now();
    rkt.ok(&["stop", &uuid]);
    let out = pod.wait(Duration::from_secs(40));
    let took = started.elapsed();
    assert!(out.is_some(), "rkt run still running after {took:?}");
    assert!(
        took >= Duration::from_secs(15),
        "the handler got its grace: {took:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || status(&rkt, &uuid)
        ["state"]
        == "exited"));
    rkt.ok(&["gc", "--grace-period=0s"]);
}
