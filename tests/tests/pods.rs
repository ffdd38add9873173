//! Pod lifecycle through the real `rkt` binary with the default (fly)
//! stage1: run/prepare/run-prepared, list, status, cat-manifest, gc, rm,
//! stop, enter, export, the app-argument grammar and app options.

use std::path::Path;
use std::time::{Duration, Instant};

use functional_tests::pods::rkt_with_test_images as setup;
use functional_tests::pods::{
    all_pods, fetch_test_images, is_uuid, pod_dir, pods_in, run_pod, status, status_map, BgPod,
};
use functional_tests::Rkt;

const BUSYBOX: &str = "example.com/busybox";
const INSPECT: &str = "example.com/inspect";

/// gc everything and require that nothing stays mounted or on disk.
#[track_caller]
fn gc_clean(rkt: &Rkt) {
    rkt.ok(&["gc", "--grace-period=0s", "--expire-prepared=0s"]);
    assert_eq!(rkt.mounts_under_root(), Vec::<String>::new());
    assert_eq!(all_pods(rkt), Vec::<String>::new());
}

// ---------------------------------------------------------------- run & exit

#[test]
fn run_returns_the_app_exit_code() {
    let rkt = setup();
    for code in [0, 1, 3] {
        let script = format!("echo out-{code}; exit {code}");
        let (out, uuid) = run_pod(&rkt, &[BUSYBOX, "--exec", "/bin/sh", "--", "-c", &script]);
        let out = out.expect_code(code);
        assert_eq!(out.stdout, format!("out-{code}\n"), "{out}");
        let st = status(&rkt, &uuid);
        assert_eq!(st["state"], "exited");
        assert_eq!(st["exited"], "true");
        assert_eq!(
            st.get("app-busybox").map(String::as_str),
            Some(code.to_string().as_str()),
            "status should record the app's exit code: {st:?}"
        );
    }
    assert_eq!(pods_in(&rkt, "run").len(), 3);
    gc_clean(&rkt);
}

#[test]
fn inspect_exit_code_and_message_reach_rkt() {
    let rkt = setup();
    rkt.run(&[
        "run",
        INSPECT,
        "--",
        "--print-msg=hello pod",
        "--exit-code=3",
    ])
    .expect_code(3)
    .expect_stdout("hello pod\n");
}

// ------------------------------------------------------- prepare / run-prepared

#[test]
fn prepare_then_run_prepared() {
    let rkt = setup();
    let out = rkt.ok(&[
        "prepare",
        "--quiet",
        INSPECT,
        "--",
        "--print-msg=prepared ran",
        "---",
    ]);
    let uuid = out.stdout.trim().to_string();
    assert!(is_uuid(&uuid), "prepare should print a UUID: {out}");
    assert_eq!(pods_in(&rkt, "prepared"), vec![uuid.clone()]);
    assert_eq!(status(&rkt, &uuid)["state"], "prepared");
    let list = rkt.ok(&["list", "--no-legend", "--full"]).stdout;
    let row: Vec<&str> = list.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], uuid);
    assert!(row.contains(&"prepared"), "{list}");

    rkt.ok(&["run-prepared", &uuid])
        .expect_stdout("prepared ran\n");
    assert_eq!(pods_in(&rkt, "run"), vec![uuid.clone()]);
    assert_eq!(status(&rkt, &uuid)["state"], "exited");
    // A pod runs once.
    rkt.run(&["run-prepared", &uuid]).expect_code(254);
    gc_clean(&rkt);
}

#[test]
fn uuid_file_save_has_no_newline() {
    let rkt = setup();
    let uf = rkt.root().join("uuid");
    rkt.ok(&[
        "run",
        &format!("--uuid-file-save={}", uf.display()),
        INSPECT,
    ]);
    let content = std::fs::read_to_string(&uf).unwrap();
    assert!(is_uuid(&content), "{content:?}");
    assert_eq!(pods_in(&rkt, "run"), vec![content.clone()]);
    // --uuid-file is accepted by status and cat-manifest.
    let st = rkt.ok(&["status", &format!("--uuid-file={}", uf.display())]);
    assert_eq!(status_map(&st.stdout)["state"], "exited");
    rkt.ok(&["cat-manifest", &format!("--uuid-file={}", uf.display())]);
}

// ------------------------------------------------------------- list / status

#[test]
fn list_formats() {
    let rkt = setup();
    let (_, uuid) = run_pod(&rkt, &[INSPECT]);
    let out = rkt.ok(&["list"]).stdout;
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["UUID", "APP", "IMAGE", "NAME", "STATE", "CREATED", "STARTED", "NETWORKS"]
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap()
        .split('\t')
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(row[0], &uuid[..8]);
    assert_eq!(row[1], "inspect");
    assert!(row[2].starts_with("example.com/inspect:"), "{out}");
    assert_eq!(row[3], "exited");
    assert!(lines.next().is_none(), "{out}");

    let full = rkt.ok(&["list", "--full"]).stdout;
    let header: Vec<&str> = full.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "UUID", "APP", "IMAGE", "NAME", "IMAGE", "ID", "STATE", "CREATED", "STARTED",
            "NETWORKS"
        ]
    );
    let row: Vec<&str> = full
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(row[0], uuid);
    assert!(
        row[3].starts_with("sha512-") && row[3].len() == 19,
        "{full}"
    );

    let nolegend = rkt.ok(&["list", "--no-legend"]).stdout;
    assert_eq!(nolegend.lines().count(), 1, "{nolegend}");
    assert!(nolegend.starts_with(&uuid[..8]));

    let json = rkt.ok(&["list", "--format=json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&json).expect("list json");
    let pods = v.as_array().expect("array");
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["name"], uuid.as_str());
    assert_eq!(pods[0]["state"], "exited");
    assert_eq!(pods[0]["apps"][0]["name"], "inspect");
    assert!(pods[0]["apps"][0]["image_id"]
        .as_str()
        .unwrap()
        .starts_with("sha512-"));
    let pretty = rkt.ok(&["list", "--format=json-pretty"]).stdout;
    let p: serde_json::Value = serde_json::from_str(&pretty).expect("list json-pretty");
    assert_eq!(p, v);
}

#[test]
fn list_of_empty_data_dir_has_only_the_header() {
    let rkt = Rkt::new();
    let out = rkt.ok(&["list"]);
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    assert_eq!(rkt.ok(&["list", "--no-legend"]).stdout, "");
    let v: serde_json::Value =
        serde_json::from_str(&rkt.ok(&["list", "--format=json"]).stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));
}

#[test]
fn status_text_and_json() {
    let rkt = setup();
    let (out, uuid) = run_pod(&rkt, &[INSPECT, "--", "--exit-code=2"]);
    out.expect_code(2);
    let text = rkt.ok(&["status", &uuid]).stdout;
    let keys: Vec<&str> = text.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(keys[0], "state");
    assert_eq!(keys[1], "created");
    assert_eq!(keys[2], "started");
    let st = status_map(&text);
    assert_eq!(st["state"], "exited");
    assert_eq!(st["exited"], "true");
    assert!(st["pid"].parse::<u32>().is_ok(), "{text}");
    assert_eq!(
        st.get("app-inspect").map(String::as_str),
        Some("2"),
        "{text}"
    );

    let json = rkt.ok(&["status", "--format=json", &uuid]).stdout;
    let v: serde_json::Value = serde_json::from_str(&json).expect("status json");
    assert_eq!(v["name"], uuid.as_str());
    assert_eq!(v["state"], "exited");
    assert_eq!(v["apps"][0]["name"], "inspect");
    assert_eq!(v["apps"][0]["exit_code"], 2, "{json}");

    // Prefixes work; unknown ones do not.
    assert_eq!(status(&rkt, &uuid[..6])["state"], "exited");
    rkt.run(&["status", "ffffffff-0000"]).expect_code(254);
}

// --------------------------------------------------------------- cat-manifest

#[test]
fn cat_manifest_prints_the_pod_manifest() {
    let rkt = setup();
    let (_, uuid) = run_pod(
        &rkt,
        &[
            INSPECT,
            "--name=checker",
            "--annotation=example.com/ann=v1",
            "--user-annotation=ua=uv",
            "--user-label=ul=lv",
        ],
    );
    let pretty = rkt.ok(&["cat-manifest", &uuid]).stdout;
    assert!(
        pretty.contains("\n\t"),
        "tab-indented by default:\n{pretty}"
    );
    let v: serde_json::Value = serde_json::from_str(&pretty).expect("manifest json");
    assert_eq!(v["acKind"], "PodManifest");
    let app = &v["apps"][0];
    assert_eq!(app["name"], "checker");
    assert_eq!(app["image"]["name"], INSPECT);
    assert_eq!(app["app"]["exec"][0], "/inspect");
    let anns = app["annotations"].as_array().expect("app annotations");
    assert!(
        anns.iter()
            .any(|a| a["name"] == "example.com/ann" && a["value"] == "v1"),
        "{app}"
    );
    assert_eq!(app["app"]["userAnnotations"]["ua"], "uv", "{app}");
    assert_eq!(app["app"]["userLabels"]["ul"], "lv", "{app}");

    let compact = rkt
        .ok(&["cat-manifest", "--pretty-print=false", &uuid])
        .stdout;
    assert_eq!(compact.trim().lines().count(), 1, "{compact}");
    let c: serde_json::Value = serde_json::from_str(&compact).unwrap();
    assert_eq!(c, v);
    // The user annotations and labels reach list --format=json too.
    let list: serde_json::Value =
        serde_json::from_str(&rkt.ok(&["list", "--format=json"]).stdout).unwrap();
    assert_eq!(list[0]["apps"][0]["user_annotations"]["ua"], "uv", "{list}");
    assert_eq!(list[0]["apps"][0]["user_labels"]["ul"], "lv", "{list}");
}

// ---------------------------------------------------------------------- gc/rm

#[test]
fn gc_mark_only_then_sweep() {
    let rkt = setup();
    let (_, uuid) = run_pod(&rkt, &[INSPECT]);
    let out = rkt.ok(&["gc", "--mark-only"]);
    assert!(!out.stdout.contains("Garbage collecting"), "{out}");
    assert_eq!(pods_in(&rkt, "exited-garbage"), vec![uuid.clone()]);
    assert_eq!(status(&rkt, &uuid)["state"], "exited garbage");
    // Within the default grace period nothing is removed.
    rkt.ok(&["gc"]);
    assert_eq!(pods_in(&rkt, "exited-garbage"), vec![uuid.clone()]);
    let out = rkt.ok(&["gc", "--grace-period=0s"]);
    assert!(
        out.stdout
            .contains(&format!("Garbage collecting pod \"{uuid}\"")),
        "{out}"
    );
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
    assert_eq!(rkt.mounts_under_root(), Vec::<String>::new());
}

#[test]
fn gc_expire_prepared() {
    let rkt = setup();
    let uuid = rkt
        .ok(&["prepare", "--quiet", INSPECT])
        .stdout
        .trim()
        .to_string();
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert_eq!(
        pods_in(&rkt, "prepared"),
        vec![uuid.clone()],
        "not expired yet"
    );
    let out = rkt.ok(&["gc", "--grace-period=0s", "--expire-prepared=0s"]);
    assert!(
        out.stdout
            .contains(&format!("Garbage collecting pod \"{uuid}\"")),
        "{out}"
    );
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
}

#[test]
fn rm_exited_pod_and_refuse_unknown() {
    let rkt = setup();
    let (_, uuid) = run_pod(&rkt, &[INSPECT]);
    rkt.ok(&["rm", &uuid]).expect_stdout(&format!("\"{uuid}\""));
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
    assert_eq!(rkt.mounts_under_root(), Vec::<String>::new());
    rkt.run(&["rm", &uuid])
        .expect_code(254)
        .expect_stderr("no matches found");
    rkt.run(&["rm", "deadbeef"])
        .expect_code(254)
        .expect_stderr("failed to remove one or more pods");
}

#[test]
fn rm_prepared_pod_via_uuid_file() {
    let rkt = setup();
    let uuid = rkt
        .ok(&["prepare", "--quiet", INSPECT])
        .stdout
        .trim()
        .to_string();
    let uf = rkt.root().join("uf");
    std::fs::write(&uf, format!("{uuid}\n")).unwrap();
    rkt.ok(&["rm", &format!("--uuid-file={}", uf.display())]);
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
}

#[test]
fn rm_refuses_a_running_pod() {
    let rkt = setup();
    let pod = BgPod::start(&rkt, &[BUSYBOX, "--exec", "/bin/sleep", "--", "100"]);
    rkt.run(&["rm", &pod.uuid]).expect_code(254);
    assert_eq!(pods_in(&rkt, "run"), vec![pod.uuid.clone()]);
    // gc leaves a running pod alone too.
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert_eq!(status(&rkt, &pod.uuid)["state"], "running");
}

// ------------------------------------------------------------------ stop/enter

fn stop_case(force: bool) {
    let rkt = setup();
    let mut pod = BgPod::start(&rkt, &[BUSYBOX, "--exec", "/bin/sleep", "--", "100"]);
    let st = status(&rkt, &pod.uuid);
    assert_eq!(st["exited"], "false");
    assert!(!st.keys().any(|k| k.starts_with("app-")), "{st:?}");
    let t = Instant::now();
    let mut args = vec!["stop"];
    if force {
        args.push("--force");
    }
    args.push(&pod.uuid);
    rkt.ok(&args).expect_stdout(&format!("\"{}\"", pod.uuid));
    let out = pod
        .wait(Duration::from_secs(10))
        .expect("background rkt run should end after rkt stop");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    // sleep has no SIGTERM handler: it dies of the signal.
    assert_eq!(out.code, if force { 137 } else { 143 }, "{out}");
    let st = status(&rkt, &pod.uuid);
    assert_eq!(st["state"], "exited");
    rkt.ok(&["stop", &pod.uuid])
        .expect_stdout(&format!("pod \"{}\" is already stopped", pod.uuid));
    gc_clean(&rkt);
}

#[test]
fn stop_running_pod() {
    stop_case(false);
}

#[test]
fn stop_force_running_pod() {
    stop_case(true);
}

#[test]
fn stop_refuses_unknown_and_prepared_pods() {
    let rkt = setup();
    rkt.run(&["stop", "deadbeef"]).expect_code(254);
    let uuid = rkt
        .ok(&["prepare", "--quiet", INSPECT])
        .stdout
        .trim()
        .to_string();
    rkt.run(&["stop", &uuid]).expect_code(254);
}

#[test]
fn enter_a_running_pod() {
    let rkt = setup();
    let pod = BgPod::start(
        &rkt,
        &[
            "--set-env=FROM_SET_ENV=yes",
            BUSYBOX,
            "--working-dir=/tmp",
            "--exec",
            "/bin/sleep",
            "--",
            "100",
        ],
    );
    let out = rkt.ok(&[
        "enter",
        &pod.uuid,
        "/bin/sh",
        "-c",
        "echo $AC_APP_NAME; pwd; echo $FROM_SET_ENV; id -u",
    ]);
    assert_eq!(out.stdout, "busybox\n/tmp\nyes\n0\n", "{out}");
    // --app names the single app; a wrong name is refused.
    rkt.ok(&["enter", "--app=busybox", &pod.uuid, "/bin/true"]);
    rkt.run(&["enter", "--app=nope", &pod.uuid, "/bin/true"])
        .expect_code(254);
    // The command's exit code comes back.
    rkt.run(&["enter", &pod.uuid, "/bin/sh", "-c", "exit 5"])
        .expect_code(5);
}

#[test]
fn enter_refuses_an_exited_pod() {
    let rkt = setup();
    let (_, uuid) = run_pod(&rkt, &[INSPECT]);
    rkt.run(&["enter", &uuid, "/bin/true"]).expect_code(254);
}

// --------------------------------------------------------------------- export

#[test]
fn export_an_exited_pod() {
    let rkt = setup();
    let (out, uuid) = run_pod(
        &rkt,
        &[BUSYBOX, "--exec", "/bin/sh", "--", "-c", "echo data > /out"],
    );
    out.expect_code(0);
    let aci = rkt.root().join("out.aci");
    rkt.ok(&["export", &uuid, aci.to_str().unwrap()]);
    let content = tar_cat(&aci, "rootfs/out");
    assert_eq!(content, "data\n");
    let manifest: serde_json::Value = serde_json::from_str(&tar_cat(&aci, "manifest")).unwrap();
    assert_eq!(manifest["name"], BUSYBOX);
    // An existing file needs --overwrite; the name must end in .aci.
    rkt.run(&["export", &uuid, aci.to_str().unwrap()])
        .expect_code(254);
    rkt.ok(&["export", "--overwrite", &uuid, aci.to_str().unwrap()]);
    let bad = rkt.root().join("out.tar");
    rkt.run(&["export", &uuid, bad.to_str().unwrap()])
        .expect_code(254);
    gc_clean(&rkt);
}

#[test]
fn export_refuses_a_running_pod() {
    let rkt = setup();
    let pod = BgPod::start(&rkt, &[BUSYBOX, "--exec", "/bin/sleep", "--", "100"]);
    let aci = rkt.root().join("out.aci");
    rkt.run(&["export", &pod.uuid, aci.to_str().unwrap()])
        .expect_code(254);
    assert!(!aci.exists());
}

fn tar_cat(archive: &Path, member: &str) -> String {
    let o = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()
        .expect("tar");
    assert!(
        o.status.success(),
        "{member} missing from {}: {}",
        archive.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

// -------------------------------------------------------------- app grammar

#[test]
fn exec_and_args_grammar() {
    let rkt = setup();
    // Arguments after `--` up to `---` go to the app; `--exec` replaces exec.
    rkt.ok(&[
        "run",
        BUSYBOX,
        "--exec",
        "/bin/echo",
        "--",
        "a",
        "b c",
        "---",
    ])
    .expect_stdout("a b c\n");
    rkt.ok(&["run", INSPECT, "--exec=/inspect", "--", "--print-exec"])
        .expect_stdout("inspect execed as: /inspect\n");
}

#[test]
fn two_images_are_refused_by_fly() {
    let rkt = setup();
    let fly = format!(
        "--stage1-path={}",
        functional_tests::stage1_image("fly").display()
    );
    rkt.run(&["run", &fly, BUSYBOX, "--", "-c", "true", "---", INSPECT])
        .expect_code(254)
        .expect_stderr("fly");
    assert_eq!(all_pods(&rkt), Vec::<String>::new(), "no pod left behind");
}

#[test]
fn per_app_flags_must_follow_an_image() {
    let rkt = setup();
    for flag in [
        "--exec=/bin/true",
        "--user=0",
        "--name=x",
        "--working-dir=/",
    ] {
        rkt.run(&["run", flag, BUSYBOX])
            .expect_code(254)
            .expect_stderr("must follow an image");
    }
    // `x` is taken for an image name, discovered (offline here) and not found.
    rkt.run_offline(&["run", "--", "x", BUSYBOX])
        .expect_code(254);
    rkt.run(&["run"]).expect_code(254);
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
}

// ------------------------------------------------------------------- env

#[test]
fn environment_precedence() {
    let rkt = setup();
    let envfile = rkt.root().join("env");
    std::fs::write(
        &envfile,
        "# comment\n; other comment\nFROM_FILE=file\nOVER_FILE=file\nOVER_ALL=file\nVAR_FROM_MANIFEST=file\n",
    )
    .unwrap();
    let out = rkt
        .command()
        .env("INHERITED", "parent")
        .env("VAR_FROM_MANIFEST", "parent")
        .env("OVER_ALL", "parent")
        .args([
            "run",
            "--inherit-env",
            &format!("--set-env-file={}", envfile.display()),
            "--set-env=OVER_FILE=setenv",
            "--set-env=OVER_ALL=setenv",
            INSPECT,
            "--environment=OVER_ALL=app",
            "--",
            "--print-env=INHERITED",
            "--print-env=FROM_FILE",
            "--print-env=OVER_FILE",
            "--print-env=OVER_ALL",
            "--print-env=VAR_FROM_MANIFEST",
            "--print-env=AC_APP_NAME",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "INHERITED=parent\nFROM_FILE=file\nOVER_FILE=setenv\nOVER_ALL=app\nVAR_FROM_MANIFEST=file\nAC_APP_NAME=inspect\n"
    );
}

#[test]
fn inherit_env_does_not_override_the_image() {
    let rkt = setup();
    let out = rkt
        .command()
        .env("VAR_FROM_MANIFEST", "parent")
        .env("INHERITED", "parent")
        .args([
            "run",
            "--inherit-env",
            INSPECT,
            "--",
            "--print-env=VAR_FROM_MANIFEST",
            "--print-env=INHERITED",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "VAR_FROM_MANIFEST=manifest\nINHERITED=parent\n"
    );
    // Without --inherit-env the parent's variables stay out.
    let out = rkt
        .command()
        .env("INHERITED", "parent")
        .args(["run", INSPECT, "--", "--print-env=INHERITED"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "INHERITED=\n");
}

#[test]
fn set_env_file_duplicate_key_is_an_error() {
    let rkt = setup();
    let envfile = rkt.root().join("env");
    std::fs::write(&envfile, "A=1\nA=2\n").unwrap();
    rkt.run(&[
        "run",
        &format!("--set-env-file={}", envfile.display()),
        INSPECT,
    ])
    .expect_code(254);
}

// ------------------------------------------------------- user/group/workdir

#[test]
fn user_and_group_by_id_and_name() {
    let rkt = setup();
    rkt.ok(&["run", INSPECT, "--", "--print-user", "--print-groups"])
        .expect_stdout("User: uid=0 euid=0 gid=0 egid=0\n");
    rkt.ok(&[
        "run",
        INSPECT,
        "--user=1000",
        "--group=50",
        "--",
        "--print-user",
    ])
    .expect_stdout("User: uid=1000 euid=1000 gid=50 egid=50\n");
    let out = rkt.ok(&[
        "run",
        INSPECT,
        "--user=user",
        "--group=staff",
        "--supplementary-gids=50,1000",
        "--",
        "--print-user",
        "--print-groups",
    ]);
    assert_eq!(
        out.stdout, "User: uid=1000 euid=1000 gid=50 egid=50\nGroups: 50 1000\n",
        "{out}"
    );
    rkt.run(&["run", INSPECT, "--user=nosuchuser"])
        .expect_code(254);
}

#[test]
fn working_dir_and_name() {
    let rkt = setup();
    rkt.ok(&["run", INSPECT, "--working-dir=/dir1", "--", "--print-cwd"])
        .expect_stdout("cwd: /dir1\n");
    rkt.ok(&["run", INSPECT, "--", "--print-cwd"])
        .expect_stdout("cwd: /\n");
    let (out, uuid) = run_pod(
        &rkt,
        &[INSPECT, "--name=renamed", "--", "--print-env=AC_APP_NAME"],
    );
    assert_eq!(out.expect_code(0).stdout, "AC_APP_NAME=renamed\n");
    let list = rkt.ok(&["list", "--no-legend", "--full"]).stdout;
    assert!(
        list.lines()
            .any(|l| l.starts_with(&uuid) && l.split('\t').any(|c| c == "renamed")),
        "{list}"
    );
}

// --------------------------------------------------------------- pod manifest

fn pod_manifest(image_id: &str, exec: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "acVersion": "0.8.11",
        "acKind": "PodManifest",
        "apps": [{
            "name": "fromfile",
            "image": {"name": INSPECT, "id": image_id},
            "app": {
                "exec": exec,
                "user": "0",
                "group": "0",
                "environment": [{"name": "PM_VAR", "value": "pm"}]
            }
        }]
    })
}

#[test]
fn run_with_pod_manifest() {
    let rkt = Rkt::new();
    let (_, inspect_id) = fetch_test_images(&rkt);
    let pm = rkt.root().join("pod.json");
    std::fs::write(
        &pm,
        pod_manifest(
            &inspect_id,
            &[
                "/inspect",
                "--print-env=PM_VAR",
                "--print-env=AC_APP_NAME",
                "--exit-code=4",
            ],
        )
        .to_string(),
    )
    .unwrap();
    let pm_arg = format!("--pod-manifest={}", pm.display());
    let (out, uuid) = run_pod(&rkt, &[&pm_arg]);
    let out = out.expect_code(4);
    assert_eq!(out.stdout, "PM_VAR=pm\nAC_APP_NAME=fromfile\n");
    let v: serde_json::Value =
        serde_json::from_str(&rkt.ok(&["cat-manifest", &uuid]).stdout).unwrap();
    assert_eq!(v["apps"][0]["name"], "fromfile");
    assert_eq!(v["apps"][0]["image"]["id"], inspect_id.as_str());

    // prepare accepts it too.
    let uuid = rkt
        .ok(&["prepare", "--quiet", &pm_arg])
        .stdout
        .trim()
        .to_string();
    rkt.run(&["run-prepared", &uuid]).expect_code(4);
}

#[test]
fn pod_manifest_conflicts() {
    let rkt = Rkt::new();
    let (_, inspect_id) = fetch_test_images(&rkt);
    let pm = rkt.root().join("pod.json");
    std::fs::write(&pm, pod_manifest(&inspect_id, &["/inspect"]).to_string()).unwrap();
    let pm_arg = format!("--pod-manifest={}", pm.display());
    for extra in [
        vec![INSPECT],
        vec!["--set-env=A=B"],
        vec!["--inherit-env"],
        vec!["--volume=v,kind=empty"],
    ] {
        let mut args = vec!["run", pm_arg.as_str()];
        args.extend(extra.iter().copied());
        rkt.run(&args).expect_code(254);
        args[0] = "prepare";
        rkt.run(&args).expect_code(254);
    }
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
    // A manifest without apps is refused.
    std::fs::write(
        &pm,
        r#"{"acVersion":"0.8.11","acKind":"PodManifest","apps":[]}"#,
    )
    .unwrap();
    rkt.run(&["run", &pm_arg]).expect_code(254);
}

// --------------------------------------------------------------------- volumes

#[test]
fn host_volume_read_write() {
    let rkt = setup();
    let host = rkt.root().join("hostvol");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from host").unwrap();
    let vol = format!("--volume=data,kind=host,source={}", host.display());
    rkt.ok(&[
        "run",
        &vol,
        INSPECT,
        "--mount=volume=data,target=/data",
        "--",
        "--read-file",
        "--file-name=/data/in",
    ])
    .expect_stdout("/data/in: from host\n");
    rkt.ok(&[
        "run",
        &vol,
        "--mount=volume=data,target=/data",
        INSPECT,
        "--",
        "--write-file",
        "--file-name=/data/out",
        "--content=from app",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from app"
    );
    gc_clean(&rkt);
    assert_eq!(
        std::fs::read_to_string(host.join("in")).unwrap(),
        "from host"
    );
}

#[test]
fn host_volume_read_only() {
    let rkt = setup();
    let host = rkt.root().join("hostvol");
    std::fs::create_dir(&host).unwrap();
    let vol = format!(
        "--volume=data,kind=host,source={},readOnly=true",
        host.display()
    );
    rkt.run(&[
        "run",
        &vol,
        INSPECT,
        "--mount=volume=data,target=/data",
        "--",
        "--write-file",
        "--file-name=/data/out",
        "--content=x",
    ])
    .expect_code(1)
    .expect_stderr("Error: writing /data/out");
    assert!(!host.join("out").exists());
    // The host directory itself stays writable.
    std::fs::write(host.join("probe"), "ok").unwrap();
    gc_clean(&rkt);
}

#[test]
fn empty_volume() {
    let rkt = setup();
    let (out, _uuid) = run_pod(
        &rkt,
        &[
            "--volume=scratch,kind=empty",
            INSPECT,
            "--mount=volume=scratch,target=/scratch",
            "--",
            "--write-file",
            "--file-name=/scratch/f",
            "--content=e",
            "--read-file",
        ],
    );
    out.expect_code(0).expect_stdout("/scratch/f: e\n");
    gc_clean(&rkt);
}

#[test]
fn missing_host_volume_source_fails() {
    let rkt = setup();
    let vol = format!(
        "--volume=data,kind=host,source={}",
        rkt.root().join("nope").display()
    );
    let out = rkt.run(&["run", &vol, INSPECT, "--mount=volume=data,target=/data"]);
    assert_ne!(out.code, 0, "{out}");
    gc_clean(&rkt);
}

#[test]
fn mount_target_through_symlink_stays_in_rootfs() {
    let rkt = setup();
    // The host must not have a /dir2 for this to prove anything.
    assert!(
        !Path::new("/dir2").exists(),
        "host has /dir2; cannot run this test"
    );
    let host = rkt.root().join("hostvol");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("canary"), "canary").unwrap();
    let vol = format!("--volume=v,kind=host,source={}", host.display());
    // /dir1/link_abs_dir2 -> /dir2 inside the image.
    let out = rkt.ok(&[
        "run",
        &vol,
        INSPECT,
        "--mount=volume=v,target=/dir1/link_abs_dir2/x",
        "--",
        "--read-file",
        "--file-name=/dir2/x/canary",
    ]);
    assert_eq!(out.stdout, "/dir2/x/canary: canary\n", "{out}");
    assert!(
        !Path::new("/dir2").exists(),
        "a mount escaped onto the host's /dir2"
    );
    let out = rkt.ok(&[
        "run",
        &vol,
        INSPECT,
        "--mount=volume=v,target=/dir1/link_rel_dir2/y",
        "--",
        "--read-file",
        "--file-name=/dir2/y/canary",
    ]);
    assert_eq!(out.stdout, "/dir2/y/canary: canary\n", "{out}");
    gc_clean(&rkt);
    assert!(!Path::new("/dir2").exists());
    assert_eq!(
        std::fs::read_to_string(host.join("canary")).unwrap(),
        "canary"
    );
}

// ---------------------------------------------------------------- no-overlay

#[test]
fn no_overlay_pods_work() {
    let rkt = setup();
    let (out, uuid) = run_pod(
        &rkt,
        &[
            "--no-overlay",
            BUSYBOX,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "echo no-overlay > /out; cat /out; exit 3",
        ],
    );
    out.expect_code(3).expect_stdout("no-overlay\n");
    let dir = pod_dir(&rkt, "run", &uuid);
    assert!(!dir.join("overlay-prepared").exists());
    assert!(
        dir.join("stage1/rootfs/opt/stage2/busybox/rootfs/out")
            .exists(),
        "no-overlay renders the app into the pod dir"
    );
    let aci = rkt.root().join("o.aci");
    rkt.ok(&["export", &uuid, aci.to_str().unwrap()]);
    assert_eq!(tar_cat(&aci, "rootfs/out"), "no-overlay\n");

    let uuid = rkt
        .ok(&[
            "prepare",
            "--quiet",
            "--no-overlay",
            INSPECT,
            "--",
            "--print-msg=np",
        ])
        .stdout
        .trim()
        .to_string();
    rkt.ok(&["run-prepared", &uuid]).expect_stdout("np\n");
    gc_clean(&rkt);
}

#[test]
fn overlay_pods_do_not_touch_the_image_tree() {
    let rkt = setup();
    let (out, _) = run_pod(
        &rkt,
        &[
            BUSYBOX,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "echo changed > /etc/passwd",
        ],
    );
    out.expect_code(0);
    rkt.ok(&[
        "run",
        BUSYBOX,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "grep -q ^root: /etc/passwd",
    ]);
    gc_clean(&rkt);
}

// ------------------------------------------------------------------ many pods

#[test]
fn gc_of_many_exited_pods() {
    const N: usize = 30;
    let rkt = setup();
    let t = Instant::now();
    for i in 0..N {
        let msg = format!("--print-msg=pod{i}");
        let args: Vec<&str> = if i % 2 == 0 {
            vec!["run", INSPECT, "--", &msg]
        } else {
            vec!["run", "--no-overlay", INSPECT, "--", &msg]
        };
        rkt.ok(&args).expect_stdout(&format!("pod{i}\n"));
    }
    let run_time = t.elapsed();
    assert_eq!(pods_in(&rkt, "run").len(), N);
    let list = rkt.ok(&["list", "--no-legend"]).stdout;
    assert_eq!(list.lines().count(), N);
    let t = Instant::now();
    let out = rkt.ok(&["gc", "--grace-period=0s"]);
    let gc_time = t.elapsed();
    assert_eq!(
        out.stdout.matches("Garbage collecting pod").count(),
        N,
        "{out}"
    );
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
    assert_eq!(rkt.mounts_under_root(), Vec::<String>::new());
    eprintln!("{N} pods: run {run_time:?}, gc {gc_time:?}");
    assert!(gc_time < Duration::from_secs(20), "gc took {gc_time:?}");
}

#[test]
fn host_canary_survives_pod_lifecycle() {
    let rkt = setup();
    let dir = rkt.root().join("canarydir");
    std::fs::create_dir(&dir).unwrap();
    let canary = dir.join("canary");
    std::fs::write(&canary, "keep").unwrap();
    let vol = format!(
        "--volume=c,kind=host,source={},readOnly=true",
        dir.display()
    );
    let (out, uuid) = run_pod(
        &rkt,
        &[
            &vol,
            BUSYBOX,
            "--mount=volume=c,target=/host",
            "--exec",
            "/bin/cat",
            "--",
            "/host/canary",
        ],
    );
    assert_eq!(out.expect_code(0).stdout, "keep");
    rkt.ok(&["rm", &uuid]);
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "keep");
    assert_eq!(rkt.mounts_under_root(), Vec::<String>::new());
    // /dev, /proc and /sys of the host are still fine.
    assert!(Path::new("/dev/null").exists());
    assert!(Path::new("/proc/self/status").exists());
}

#[test]
fn export_leaves_out_files_the_app_deleted() {
    let rkt = setup();
    let (out, uuid) = run_pod(
        &rkt,
        &[
            BUSYBOX,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "rm /etc/group && echo n > /new",
        ],
    );
    out.expect_code(0);
    let aci = rkt.root().join("o.aci");
    rkt.ok(&["export", &uuid, aci.to_str().unwrap()]);
    let o = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&aci)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(list.lines().any(|l| l == "rootfs/new"), "{list}");
    assert!(list.lines().any(|l| l == "rootfs/etc/passwd"), "{list}");
    assert!(!list.lines().any(|l| l.contains("etc/group")), "{list}");
    assert!(
        !list.contains(".wh."),
        "no overlay whiteouts in the ACI: {list}"
    );
}

#[test]
fn mount_target_through_dangling_symlink_stays_in_rootfs() {
    let rkt = setup();
    assert!(!Path::new("/nonexistent").exists(), "host has /nonexistent");
    let host = rkt.root().join("hostvol");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "in").unwrap();
    let vol = format!("--volume=v,kind=host,source={}", host.display());
    // /dir1/link_invalid -> /nonexistent/x inside the image.
    rkt.ok(&[
        "run",
        &vol,
        INSPECT,
        "--mount=volume=v,target=/dir1/link_invalid",
        "--",
        "--read-file",
        "--file-name=/nonexistent/x/f",
    ])
    .expect_stdout("/nonexistent/x/f: in\n");
    assert!(
        !Path::new("/nonexistent").exists(),
        "a mount escaped onto the host"
    );
    gc_clean(&rkt);
}

#[test]
fn missing_exec_is_a_clear_error() {
    let rkt = setup();
    let (out, uuid) = run_pod(&rkt, &[INSPECT, "--exec", "/nope"]);
    out.expect_code(254).expect_stderr("/nope");
    // The pod ran (and failed): it is exited, not stuck running.
    let list = rkt.ok(&["list", "--no-legend", "--full"]).stdout;
    assert!(
        list.lines()
            .any(|l| l.starts_with(&uuid) && l.split('\t').any(|c| c == "exited")),
        "{list}"
    );
    assert_eq!(pods_in(&rkt, "run"), vec![uuid.clone()]);
    gc_clean(&rkt);
}

// ------------------------------------------------------- half-made pods

/// A run that fails after the pod directory exists removes it again.
#[test]
fn failed_prepare_leaves_no_pod() {
    let rkt = setup();
    let bad = rkt.root().join("no-such-dir/uuid");
    rkt.run(&[
        "run",
        &format!("--uuid-file-save={}", bad.display()),
        BUSYBOX,
        "--exec=/bin/true",
    ])
    .expect_code(254)
    .expect_stderr("no-such-dir");
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
    let list = rkt.ok(&["list", "--no-legend"]);
    assert_eq!(list.stdout, "");
}

/// What a crash mid-prepare leaves (an unlocked dir in `prepare/`) is not
/// listed, and gc removes it.
#[test]
fn crashed_prepare_is_not_listed_and_gc_removes_it() {
    let rkt = setup();
    let uuid = "0badc0de-0000-4000-8000-000000000001";
    let dir = rkt.dir.join("pods/prepare").join(uuid);
    std::fs::create_dir_all(dir.join("stage1")).unwrap();
    std::fs::write(dir.join("pod-created"), "").unwrap();
    let list = rkt.ok(&["list", "--no-legend"]);
    assert!(!list.stdout.contains("0badc0de"), "{list}");
    rkt.ok(&["status", uuid])
        .expect_stdout("state=aborted prepare");
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert!(!dir.exists());
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
}

/// `prepare --quiet` prints only the UUID; without it rkt's notices reach stderr.
#[test]
fn prepare_quiet_prints_only_the_uuid() {
    let rkt = Rkt::new();
    let busybox = functional_tests::image("busybox.aci");
    let path = busybox.to_str().unwrap();
    let loud = rkt.ok(&["--insecure-options=image", "prepare", path]);
    assert!(loud.stderr.contains("signature verification"), "{loud}");
    let quiet = rkt.ok(&["--insecure-options=image", "prepare", "--quiet", path]);
    assert!(is_uuid(quiet.stdout.trim()), "{quiet}");
    assert_eq!(quiet.stderr, "", "{quiet}");
}

/// fly is ready once the app runs: `status --wait-ready` returns for a
/// running pod, and times out with an error for a prepared one.
#[test]
fn status_wait_ready() {
    let rkt = setup();
    let mut pod = BgPod::start(&rkt, &[BUSYBOX, "--exec", "/bin/sleep", "--", "100"]);
    let out = rkt.ok(&["status", "--wait-ready=10s", &pod.uuid]);
    assert!(out.stdout.contains("state=running"), "{out}");
    rkt.ok(&["stop", &pod.uuid]);
    pod.wait(Duration::from_secs(10))
        .expect("pod ends after stop");
    let busybox = functional_tests::image("busybox.aci");
    let prepared = rkt.ok(&[
        "--insecure-options=image",
        "prepare",
        "--quiet",
        busybox.to_str().unwrap(),
    ]);
    rkt.run(&["status", "--wait-ready=300ms", prepared.stdout.trim()])
        .expect_code(254);
}
