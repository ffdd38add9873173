//! The ns stage1 on a host that runs systemd-journald and machined (real
//! ones, started by the test): each pod gets a journal of its own, which
//! `journalctl -M rkt-<uuid> [-t app]` reads while the pod runs, as rkt
//! documented (apps' syslog through /dev/log included), and the host's `journalctl -m _MACHINE_ID=<id>` after it
//! exited; the output still reaches `rkt run`'s stdout/stderr, and `gc`
//! leaves no journald, link, machine or scope behind.

use std::process::Stdio;
use std::time::Duration;

use functional_tests::journald::Journald;
use functional_tests::pods::rkt_with_test_images as setup;
use functional_tests::pods::wait_until;
use functional_tests::pods::{ns_stage1_flag, pod_dir, BgPod};
use functional_tests::Out;
use serde_json::Value;

const BUSYBOX: &str = "example.com/busybox";

fn field<'a>(entry: &'a Value, key: &str) -> &'a str {
    entry[key].as_str().unwrap_or_default()
}

/// The apps' entries (journald's own notices carry no pod UUID).
fn app_lines(entries: &[Value]) -> Vec<(String, String, String)> {
    let mut lines: Vec<(String, String, String)> = entries
        .iter()
        .filter(|e| !field(e, "RKT_POD_UUID").is_empty())
        .map(|e| {
            let f = |k: &str| field(e, k).to_string();
            (f("SYSLOG_IDENTIFIER"), f("MESSAGE"), f("PRIORITY"))
        })
        .collect();
    lines.sort();
    lines
}

fn two_apps(tag: &str, web_tail: &str, db_tail: &str) -> Vec<String> {
    let web = format!("echo {tag}-web-1; echo {tag}-web-2 >&2; {web_tail}");
    let db = format!("echo {tag}-db-1; {db_tail}");
    [
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
    ]
    .map(String::from)
    .to_vec()
}

/// Pod journalds left running: any but the host's own.
fn stray_journalds(host: &Journald) -> Vec<String> {
    let mut stray = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid: u32 = rest
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if comm.ends_with("(systemd-journal") && ppid != host.pid() {
            stray.push(stat);
        }
    }
    stray
}

#[test]
fn each_pod_has_a_journal_that_journalctl_reads_by_machine_and_app() {
    let rkt = setup();
    let host = Journald::start();
    let s1 = ns_stage1_flag();
    let save = |name: &str| format!("--uuid-file-save={}", rkt.root().join(name).display());
    let uuid_of = |name: &str| std::fs::read_to_string(rkt.root().join(name)).unwrap();

    // A pod that has exited: the host's journal finds it by machine id.
    let mut args = vec![
        "run".to_string(),
        s1.clone(),
        save("uuid-2"),
        "--net=none".into(),
    ];
    args.extend(two_apps("two", "printf two-partial", "true"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let two = host.rkt(&rkt, &args).expect_code(0);
    assert!(two.stdout.contains("two-web-1\n"), "{two}");
    assert!(two.stderr.contains("two-web-2\n"), "{two}");
    let two_uuid = uuid_of("uuid-2");
    let two_id = format!("_MACHINE_ID={}", two_uuid.replace('-', ""));
    let lines = app_lines(&host.entries(&["-m", &two_id]));
    let want = |tag: &str, partial: bool| {
        let mut want = vec![
            ("db".to_string(), format!("{tag}-db-1"), "6".to_string()),
            ("web".into(), format!("{tag}-web-1"), "6".into()),
            ("web".into(), format!("{tag}-web-2"), "3".into()),
        ];
        if partial {
            want.push(("web".into(), format!("{tag}-partial"), "6".into()));
        }
        want.sort();
        want
    };
    assert_eq!(lines, want("two", true), "the exited pod's journal");

    // rkt logs reads the same journal, by pod and by app.
    let logs = host.rkt(&rkt, &["logs", &two_uuid]).expect_code(0);
    for line in ["two-web-1", "two-web-2", "two-partial", "two-db-1"] {
        assert!(logs.stdout.contains(line), "{line} missing: {logs}");
    }
    assert!(!logs.stdout.contains("Journal started"), "{logs}");
    let db = host
        .rkt(&rkt, &["logs", "--app=db", &two_uuid])
        .expect_code(0);
    assert!(db.stdout.contains("two-db-1"), "{db}");
    assert!(!db.stdout.contains("two-web"), "{db}");
    let last = host
        .rkt(&rkt, &["logs", "--app=web", "--lines=1", &two_uuid])
        .expect_code(0);
    assert_eq!(last.stdout.lines().count(), 1, "{last}");
    // --since means the same as for log files (UTC or an age), passed on
    // to journalctl as an absolute time.
    let recent = host
        .rkt(&rkt, &["logs", "--since=-1h", &two_uuid])
        .expect_code(0);
    assert_eq!(recent.stdout.lines().count(), 4, "{recent}");
    let future = host
        .rkt(&rkt, &["logs", "--since=2100-01-01 00:00:00", &two_uuid])
        .expect_code(0);
    assert_eq!(future.stdout, "", "{future}");
    // The API's GetLogs reads the same journal (Python grpcio client).
    let api = functional_tests::api::ApiService::start(&rkt);
    let lines = |req: serde_json::Value| -> Vec<String> {
        api.stream("GetLogs", &req, None)
            .responses()
            .iter()
            .flat_map(|r| r["lines"].as_array().cloned().unwrap_or_default())
            .map(|l| l.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let all = lines(serde_json::json!({"pod_id": two_uuid}));
    for line in ["two-web-1", "two-web-2", "two-partial", "two-db-1"] {
        assert!(
            all.iter().any(|l| l.contains(line)),
            "GetLogs: {line} missing: {all:?}"
        );
    }
    let db = lines(serde_json::json!({"pod_id": two_uuid, "app_name": "db"}));
    assert!(
        db.iter().any(|l| l.contains("two-db-1")) && !db.iter().any(|l| l.contains("two-web")),
        "{db:?}"
    );
    let last = lines(serde_json::json!({"pod_id": two_uuid, "app_name": "web", "lines": 1}));
    assert_eq!(last.len(), 1, "{last:?}");
    drop(api);
    let nope = host
        .rkt(&rkt, &["logs", "--app=nope", &two_uuid])
        .expect_code(254);
    assert!(nope.stderr.contains("no app named \"nope\""), "{nope}");
    let unknown = host
        .rkt(&rkt, &["logs", "00000000-0000-4000-8000-000000000000"])
        .expect_code(254);
    assert!(
        unknown.stderr.contains("problem retrieving pod"),
        "{unknown}"
    );

    // A running pod: machined knows it, and journalctl -M reads its
    // journal through it.
    let mut args = vec![s1.clone(), save("uuid-1"), "--net=none".into()];
    // web also logs through syslog(3), to /dev/log.
    args.extend(two_apps(
        "one",
        "logger -t websys one-via-syslog; exec sleep 100",
        "exec sleep 100",
    ));
    let mut running = host.command(functional_tests::rkt_bin());
    running
        .args(rkt.global_args())
        .arg("run")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let running = running.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(20), || rkt
        .root()
        .join("uuid-1")
        .exists()));
    let uuid = uuid_of("uuid-1");
    let machine = format!("rkt-{uuid}");
    assert!(
        wait_until(Duration::from_secs(20), || host
            .machines()
            .contains(&machine)),
        "machinectl does not list {machine}: {:?}",
        host.machines()
    );
    let mut lines = Vec::new();
    let complete = wait_until(Duration::from_secs(10), || {
        lines = app_lines(&host.entries(&["-M", &machine]));
        lines.len() >= 3
    });
    assert!(complete, "journalctl -M {machine}: {lines:?}");
    assert_eq!(lines, want("one", false), "journalctl -M {machine}");
    let db = host.entries(&["-M", &machine, "-t", "db"]);
    let db: Vec<&str> = db.iter().map(|e| field(e, "MESSAGE")).collect();
    assert_eq!(db, ["one-db-1"], "journalctl -M {machine} -t db");
    for e in host.entries(&["-M", &machine, "-t", "web"]) {
        assert_eq!(field(&e, "RKT_POD_UUID"), uuid, "{e}");
        assert_eq!(field(&e, "RKT_APP_NAME"), "web", "{e}");
        assert_eq!(field(&e, "CONTAINER_NAME"), machine, "{e}");
        // Its journald runs with the pod's hostname and machine id.
        assert_eq!(field(&e, "_HOSTNAME"), machine, "{e}");
        assert_eq!(field(&e, "_MACHINE_ID"), uuid.replace('-', ""), "{e}");
    }
    // /dev/log is the pod journal's syslog socket.
    let mut syslog = Vec::new();
    wait_until(Duration::from_secs(10), || {
        syslog = host.entries(&["-M", &machine, "-t", "websys"]);
        !syslog.is_empty()
    });
    let syslog: Vec<&str> = syslog.iter().map(|e| field(e, "MESSAGE")).collect();
    assert_eq!(
        syslog,
        ["one-via-syslog"],
        "journalctl -M {machine} -t websys"
    );
    // rkt logs --follow shows what is there and waits for more.
    let mut follow = host.command(functional_tests::rkt_bin());
    follow
        .args(rkt.global_args())
        .args(["logs", "--follow", &uuid])
        .stdout(Stdio::piped());
    let mut follow = follow.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        follow.try_wait().unwrap().is_none(),
        "rkt logs --follow returned"
    );
    follow.kill().unwrap();
    let followed = Out::from_output(follow.wait_with_output().unwrap());
    assert!(followed.stdout.contains("one-web-1"), "{followed}");
    // The pod is in its scope where systemd tracks processes.
    let pid = std::fs::read_to_string(pod_dir(&rkt, "run", &uuid).join("pid")).unwrap();
    let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    let scope = format!("machine.slice/machine-rkt-{uuid}.scope");
    assert!(cgroups.contains(&scope), "{cgroups}");

    host.rkt(&rkt, &["stop", &uuid]).expect_code(0);
    let out = Out::from_output(running.wait_with_output().unwrap());
    assert!(out.stdout.contains("one-web-1\n"), "{out}");
    assert!(out.stdout.contains("one-db-1\n"), "{out}");
    assert!(
        !host.machines().contains(&machine),
        "{machine} still registered after the pod ended"
    );
    assert_eq!(
        stray_journalds(&host),
        Vec::<String>::new(),
        "pod journalds left"
    );

    host.rkt(&rkt, &["gc", "--grace-period=0s"]).expect_code(0);
    let links: Vec<_> = std::fs::read_dir(host.path("/var/log/journal"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(links.is_empty(), "journal links left after gc: {links:?}");
    for hierarchy in ["unified", "systemd", "memory"] {
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join(&scope);
        assert!(!dir.exists(), "{dir:?} left after gc");
    }
}

/// Without journald every app's output still reaches the caller, and the
/// stage1 keeps it in the app's log file, which `rkt logs` reads: by app,
/// the last lines, since a time, and following a running pod until it
/// ends.
#[test]
fn without_journald_rkt_logs_reads_the_apps_log_files() {
    let rkt = setup();
    let s1 = ns_stage1_flag();
    let save = format!("--uuid-file-save={}", rkt.root().join("uuid").display());
    let mut args = vec!["run".to_string(), s1.clone(), save, "--net=none".into()];
    args.extend(two_apps("t", "sleep 0.3; echo t-web-3", "true"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = rkt.run(&args).expect_code(0);
    assert!(
        out.stdout.contains("t-web-1\n") && out.stdout.contains("t-db-1\n"),
        "{out}"
    );
    assert!(out.stderr.contains("t-web-2\n"), "{out}");
    let uuid = std::fs::read_to_string(rkt.root().join("uuid")).unwrap();
    let logs = rkt.ok(&["logs", &uuid]);
    let lines: Vec<&str> = logs
        .stdout
        .lines()
        .map(|l| l.split_once(' ').map_or("", |(_, rest)| rest))
        .collect();
    // In time order across the apps (the apps run at once, and stdout and
    // stderr are two pipes: only the sleep puts t-web-3 last).
    assert_eq!(lines.len(), 4, "{logs}");
    let mut first = lines[..3].to_vec();
    first.sort();
    assert_eq!(
        first,
        ["db: t-db-1", "web: t-web-1", "web: t-web-2"],
        "{logs}"
    );
    assert_eq!(lines[3], "web: t-web-3", "{logs}");
    let time = logs.stdout.split(' ').next().unwrap_or_default();
    assert!(time.ends_with('Z') && time.len() == 30, "{logs}");

    let db = rkt.ok(&["logs", "--app=db", &uuid]);
    assert_eq!(db.stdout.lines().count(), 1, "{db}");
    let last = rkt.ok(&["logs", "--lines=2", &uuid]);
    assert!(
        last.stdout.ends_with("web: t-web-3\n") && last.stdout.lines().count() == 2,
        "{last}"
    );
    assert_eq!(
        rkt.ok(&["logs", "--since=-1h", &uuid])
            .stdout
            .lines()
            .count(),
        4
    );
    assert_eq!(
        rkt.ok(&["logs", "--since=2100-01-01 00:00:00", &uuid])
            .stdout,
        ""
    );
    let bad = rkt
        .run(&["logs", "--since=yesterday", &uuid])
        .expect_code(254);
    assert!(bad.stderr.contains("invalid --since"), "{bad}");

    // A pod whose app printed nothing: no output, and a note saying why.
    let quiet_save = format!("--uuid-file-save={}", rkt.root().join("quiet").display());
    rkt.ok(&[
        "run",
        &s1,
        &quiet_save,
        "--net=none",
        BUSYBOX,
        "--exec=/bin/true",
    ]);
    let quiet = std::fs::read_to_string(rkt.root().join("quiet")).unwrap();
    let none = rkt.ok(&["logs", &quiet]);
    assert_eq!(none.stdout, "", "{none}");
    assert!(none.stderr.contains("has no logged output"), "{none}");

    // --follow prints what comes and returns once the pod has ended.
    let pod = BgPod::start(
        &rkt,
        &[
            &s1,
            "--net=none",
            BUSYBOX,
            "--exec=/bin/sh",
            "--",
            "-c",
            "echo first; sleep 1; echo second; sleep 1000",
        ],
    );
    let follow = rkt
        .command()
        .args(["logs", "--follow", &pod.uuid])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1800));
    rkt.ok(&["stop", &pod.uuid]);
    let start = std::time::Instant::now();
    let followed = Out::from_output(follow.wait_with_output().unwrap());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "--follow did not end"
    );
    let got: Vec<&str> = followed
        .stdout
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(got, ["first", "second"], "{followed}");
    let followed_uuid = pod.uuid.clone();
    drop(pod);
    rkt.ok(&["gc", "--grace-period=0s"]);
    // A collected pod, and one that never was: clear errors.
    for gone in [
        followed_uuid.as_str(),
        "0f6ba1c2-33d4-4e5f-8a9b-0c1d2e3f4a5b",
    ] {
        let out = rkt.run(&["logs", gone]).expect_code(254);
        assert!(
            out.stderr.contains(gone) || out.stderr.contains("no matches"),
            "{out}"
        );
    }
}
