//! The ns stage1 on a host that runs systemd-journald (a real one, started
//! by the test): every app's output lines reach the journal tagged with the
//! app's name and the pod, and still reach `rkt run`'s stdout/stderr.

use std::time::Duration;

use functional_tests::journald::Journald;
use functional_tests::pods::ns_stage1_flag;
use functional_tests::pods::rkt_with_test_images as setup;
use functional_tests::pods::wait_until;
use serde_json::Value;

const BUSYBOX: &str = "example.com/busybox";

fn field<'a>(entry: &'a Value, key: &str) -> &'a str {
    entry[key].as_str().unwrap_or_default()
}

#[test]
fn app_output_reaches_the_journal_by_app_and_pod() {
    let rkt = setup();
    let journald = Journald::start();
    let s1 = ns_stage1_flag();
    let run = |uuid_file: &str, tag: &str| {
        let save = format!("--uuid-file-save={}", rkt.root().join(uuid_file).display());
        let web = format!("echo {tag}-web-1; echo {tag}-web-2 >&2; printf '{tag}-partial'");
        let db = format!("echo {tag}-db-1");
        let out = journald.rkt(
            &rkt,
            &[
                "run",
                &s1,
                &save,
                "--net=none",
                BUSYBOX,
                "--name=web",
                "--exec=/bin/sh",
                "--",
                "-c",
                &web,
                "---",
                BUSYBOX,
                "--name=db",
                "--exec=/bin/sh",
                "--",
                "-c",
                &db,
                "---",
            ],
        );
        let uuid = std::fs::read_to_string(rkt.root().join(uuid_file)).unwrap();
        (out.expect_code(0), uuid)
    };
    let (first, uuid) = run("uuid-1", "one");
    let (_, other_uuid) = run("uuid-2", "two");

    // Still on rkt run's own stdout and stderr.
    assert!(first.stdout.contains("one-web-1\n"), "{first}");
    assert!(first.stdout.contains("one-db-1\n"), "{first}");
    assert!(first.stderr.contains("one-web-2\n"), "{first}");

    let pod = format!("CONTAINER_NAME=rkt-{uuid}");
    let mut web = Vec::new();
    let found = wait_until(Duration::from_secs(10), || {
        web = journald.entries(&[&pod, "SYSLOG_IDENTIFIER=web"]);
        web.len() >= 3
    });
    assert!(found, "web's lines not in the journal: {web:?}");
    let lines: Vec<(&str, &str)> = web
        .iter()
        .map(|e| (field(e, "MESSAGE"), field(e, "PRIORITY")))
        .collect();
    // stdout and stderr are separate pipes: only each one's order holds.
    assert_eq!(lines.len(), 3, "{lines:?}");
    for want in [("one-web-1", "6"), ("one-web-2", "3"), ("one-partial", "6")] {
        assert!(
            lines.iter().any(|l| l.0 == want.0 && l.1 == want.1),
            "{want:?} missing: {lines:?}"
        );
    }
    for e in &web {
        assert_eq!(field(e, "RKT_POD_UUID"), uuid, "{e}");
        assert_eq!(field(e, "RKT_APP_NAME"), "web", "{e}");
    }

    // journalctl -t selects an app; the other pod's lines are its own.
    let db = journald.entries(&[&pod, "-t", "db"]);
    let db: Vec<&str> = db.iter().map(|e| field(e, "MESSAGE")).collect();
    assert_eq!(db, ["one-db-1"]);
    let other = format!("CONTAINER_NAME=rkt-{other_uuid}");
    let mut theirs = Vec::new();
    wait_until(Duration::from_secs(10), || {
        theirs = journald.entries(&[&other]);
        theirs.len() >= 4
    });
    let mut theirs: Vec<&str> = theirs.iter().map(|e| field(e, "MESSAGE")).collect();
    theirs.sort();
    assert_eq!(
        theirs,
        ["two-db-1", "two-partial", "two-web-1", "two-web-2"]
    );

    journald
        .rkt(&rkt, &["gc", "--grace-period=0s"])
        .expect_code(0);
}

/// A single app with no journald: nothing in between its output and the
/// caller, checked by the app seeing the caller's stdout file itself.
#[test]
fn without_journald_a_single_app_writes_to_the_callers_stdout_directly() {
    let rkt = setup();
    let s1 = ns_stage1_flag();
    let path = rkt.root().join("stdout");
    let file = std::fs::File::create(&path).unwrap();
    let status = rkt
        .command()
        .args([
            "run",
            &s1,
            "--net=none",
            BUSYBOX,
            "--exec=/bin/sh",
            "--",
            "-c",
        ])
        .arg("readlink /proc/self/fd/1")
        .stdout(file)
        .status()
        .unwrap();
    assert!(status.success());
    let seen = std::fs::read_to_string(&path).unwrap();
    assert!(
        seen.trim().ends_with("/stdout"),
        "the app's stdout: {seen:?}"
    );
}
