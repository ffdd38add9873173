//! The stage1 ABI as a third party sees it: stage1 selection flags and
//! config, and a busybox-script stage1 built here that records what stage0
//! hands it (argv per interface version, cwd, RKT_LOCK_FD) for run, gc,
//! stop and enter.

use std::path::{Path, PathBuf};
use std::time::Duration;

use functional_tests::pods::rkt_with_test_images as setup;
use functional_tests::pods::{
    all_pods, build_aci, host_busybox, pod_dir, pods_in, status, wait_until, BgPod,
};
use functional_tests::{stage1_image, Rkt};
use images::manifest::{annotation, image_manifest, standard_labels};
use images::recipes::populate_busybox_rootfs;

const INSPECT: &str = "example.com/inspect";
const STUB: &str = "example.com/stub-stage1";

/// Records its argv, cwd and lock fd into the pod dir (its cwd), writes
/// `pid`, then either becomes a sleeper (`$STUB_SLEEP`, holding the lock)
/// or exits with `$STUB_EXIT` (default 7).
const RUN: &str = r#"#!/bin/busybox sh
for a in "$@"; do echo "$a"; done > stub-run-args
/bin/busybox pwd > stub-run-cwd
echo "$RKT_LOCK_FD" > stub-lock-fd
/bin/busybox readlink "/proc/$$/fd/$RKT_LOCK_FD" > stub-lock-target
if [ -e stage1/rootfs/etc/rkt-resolv.conf ]; then
  /bin/busybox cp stage1/rootfs/etc/rkt-resolv.conf stub-resolv.conf
fi
echo $$ > pid
if [ -n "$STUB_SLEEP" ]; then exec /bin/busybox sleep "$STUB_SLEEP"; fi
exit "${STUB_EXIT:-7}"
"#;

/// gc/stop/enter record into `$STUB_OUT` (the pod dir may be deleted next);
/// without it (the harness's own cleanup) they only do their job.
const GC: &str = r#"#!/bin/busybox sh
[ -n "$STUB_OUT" ] || exit 0
for a in "$@"; do echo "$a"; done > "$STUB_OUT/gc-args"
/bin/busybox pwd > "$STUB_OUT/gc-cwd"
"#;

const STOP: &str = r#"#!/bin/busybox sh
if [ -n "$STUB_OUT" ]; then
  for a in "$@"; do echo "$a"; done > "$STUB_OUT/stop-args"
  /bin/busybox pwd > "$STUB_OUT/stop-cwd"
fi
/bin/busybox kill "$(/bin/busybox cat pid)"
"#;

const ENTER: &str = r#"#!/bin/busybox sh
if [ -n "$STUB_OUT" ]; then
  for a in "$@"; do echo "$a"; done > "$STUB_OUT/enter-args"
fi
echo entered
exit 3
"#;

/// Builds the stub stage1 ACI: busybox rootfs plus the four scripts, with
/// the given interface-version and features annotations.
fn stub_stage1(rkt: &Rkt, file: &str, version: Option<u32>, features: Option<&str>) -> PathBuf {
    let mut m = image_manifest(STUB, &standard_labels("1.0.0")).unwrap();
    for (ep, path) in [
        ("run", "/run"),
        ("enter", "/enter"),
        ("gc", "/gc"),
        ("stop", "/stop"),
    ] {
        m.annotations
            .push(annotation(&format!("coreos.com/rkt/stage1/{ep}"), path).unwrap());
    }
    if let Some(v) = version {
        m.annotations
            .push(annotation("coreos.com/rkt/stage1/interface-version", &v.to_string()).unwrap());
    }
    if let Some(f) = features {
        m.annotations
            .push(annotation("coreos.com/rkt/stage1/features", f).unwrap());
    }
    build_aci(rkt.root(), file, m, |root| {
        populate_busybox_rootfs(root, &host_busybox()).unwrap();
        for (name, script) in [("run", RUN), ("gc", GC), ("stop", STOP), ("enter", ENTER)] {
            let p = root.join(name);
            std::fs::write(&p, script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    })
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs `rkt --insecure-options=image run --stage1-path=STUB ARGS... INSPECT`
/// and returns (output, uuid).
fn run_stub(rkt: &Rkt, stub: &Path, pod_args: &[&str]) -> (functional_tests::Out, String) {
    let uf = rkt.root().join("uuid");
    let mut args = vec![
        "--insecure-options=image".to_string(),
        "run".to_string(),
        format!("--stage1-path={}", stub.display()),
        format!("--uuid-file-save={}", uf.display()),
    ];
    args.extend(pod_args.iter().map(|s| s.to_string()));
    args.push(INSPECT.to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = rkt.run(&refs);
    (out, std::fs::read_to_string(&uf).unwrap_or_default())
}

// ----------------------------------------------------------- stage1 selection

#[test]
fn stage1_path_of_the_built_fly() {
    let rkt = setup();
    // The default image beside the binary is trusted without a signature.
    let fly = stage1_image("fly").canonicalize().unwrap();
    rkt.ok(&[
        "run",
        &format!("--stage1-path={}", fly.display()),
        INSPECT,
        "--",
        "--print-msg=via-path",
    ])
    .expect_stdout("via-path\n");
}

#[test]
fn stage1_path_with_insecure_image() {
    let rkt = setup();
    let fly = stage1_image("fly");
    rkt.ok(&[
        "--insecure-options=image",
        "run",
        &format!("--stage1-path={}", fly.display()),
        INSPECT,
        "--",
        "--print-msg=via-path",
    ])
    .expect_stdout("via-path\n");
    rkt.run(&["run", "--stage1-path=/nonexistent/stage1.aci", INSPECT])
        .expect_code(254);
}

#[test]
fn stage1_by_name_and_hash_from_the_store() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub.aci", Some(6), None);
    let key = rkt.fetch(&stub);
    rkt.run(&["run", &format!("--stage1-name={STUB}"), INSPECT])
        .expect_code(7);
    rkt.run(&["run", &format!("--stage1-name={STUB}:1.0.0"), INSPECT])
        .expect_code(7);
    rkt.run(&["run", &format!("--stage1-hash={key}"), INSPECT])
        .expect_code(7);
    rkt.run(&["run", &format!("--stage1-hash={}", &key[..30]), INSPECT])
        .expect_code(7);
    // The real fly by name once fetched.
    rkt.fetch(&stage1_image("fly"));
    rkt.ok(&[
        "run",
        "--stage1-name=coreos.com/rkt/stage1-fly",
        INSPECT,
        "--",
        "--print-msg=fly",
    ])
    .expect_stdout("fly\n");
    // Unknown ones fail without a pod.
    let before = all_pods(&rkt);
    rkt.run(&["run", "--stage1-hash=sha512-0000000000000000", INSPECT])
        .expect_code(254);
    // (Not in the store: discovery runs, offline.)
    rkt.run_offline(&["run", "--stage1-name=example.com/nope", INSPECT])
        .expect_code(254);
    assert_eq!(all_pods(&rkt), before);
}

#[test]
fn stage1_from_dir_with_paths_config() {
    let rkt = setup();
    let images_dir = rkt.root().join("stage1-images");
    std::fs::create_dir(&images_dir).unwrap();
    let stub = stub_stage1(&rkt, "stub.aci", Some(6), None);
    std::fs::copy(&stub, images_dir.join("stub.aci")).unwrap();
    std::fs::copy(stage1_image("fly"), images_dir.join("stage1-fly.aci")).unwrap();
    let paths_d = rkt.local_config.join("paths.d");
    std::fs::create_dir(&paths_d).unwrap();
    std::fs::write(
        paths_d.join("paths.json"),
        serde_json::json!({
            "rktKind": "paths",
            "rktVersion": "v1",
            "stage1-images": images_dir,
        })
        .to_string(),
    )
    .unwrap();
    rkt.ok(&[
        "run",
        "--stage1-from-dir=stage1-fly.aci",
        INSPECT,
        "--",
        "--print-msg=fromdir",
    ])
    .expect_stdout("fromdir\n");
    rkt.run(&["run", "--stage1-from-dir=stub.aci", INSPECT])
        .expect_code(7);
    rkt.run(&["run", "--stage1-from-dir=missing.aci", INSPECT])
        .expect_code(254);
    rkt.run(&["run", "--stage1-from-dir=../stub.aci", INSPECT])
        .expect_code(254);
}

#[test]
fn stage1_location_from_stage1_d_config() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub.aci", Some(6), None);
    let stage1_d = rkt.local_config.join("stage1.d");
    std::fs::create_dir(&stage1_d).unwrap();
    std::fs::write(
        stage1_d.join("s.json"),
        serde_json::json!({
            "rktKind": "stage1",
            "rktVersion": "v1",
            "location": stub,
        })
        .to_string(),
    )
    .unwrap();
    rkt.run(&["run", INSPECT]).expect_code(7);
}

#[test]
fn two_stage1_selectors_conflict() {
    let rkt = setup();
    let fly = stage1_image("fly");
    rkt.run(&[
        "run",
        &format!("--stage1-path={}", fly.display()),
        "--stage1-name=coreos.com/rkt/stage1-fly",
        INSPECT,
    ])
    .expect_code(254)
    .expect_stderr("only one of");
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
}

#[test]
fn unsigned_third_party_stage1_needs_insecure_image() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub.aci", Some(6), None);
    rkt.run(&["run", &format!("--stage1-path={}", stub.display()), INSPECT])
        .expect_code(254);
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
}

// ---------------------------------------------------------- run entrypoint

#[test]
fn run_args_interface_version_6() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub6.aci", Some(6), None);
    let (out, uuid) = run_stub(&rkt, &stub, &["--hostname=h"]);
    let out = out.expect_code(7);
    assert!(!out.stderr.contains("not supported"), "{out}");
    let dir = pod_dir(&rkt, "run", &uuid);
    assert_eq!(
        lines(&dir.join("stub-run-args")),
        [
            "--net=default".to_string(),
            format!("--local-config={}", rkt.local_config.display()),
            "--hostname=h".to_string(),
            uuid.clone(),
        ]
    );
    assert_eq!(
        lines(&dir.join("stub-run-cwd")),
        [dir.display().to_string()]
    );
    // The lock fd is an open descriptor of the pod directory.
    let fd: Vec<String> = lines(&dir.join("stub-lock-fd"));
    assert!(fd[0].parse::<u32>().unwrap() > 2, "{fd:?}");
    assert_eq!(
        lines(&dir.join("stub-lock-target")),
        [dir.display().to_string()]
    );
    let st = status(&rkt, &uuid);
    assert_eq!(st["state"], "exited");
    assert_eq!(st["pid"], lines(&dir.join("pid"))[0]);
}

#[test]
fn run_args_carry_pod_options_for_version_6() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub6.aci", Some(6), None);
    let (out, uuid) = run_stub(
        &rkt,
        &stub,
        &[
            "--net=mynet",
            "--dns=8.8.8.8",
            "--ipc=private",
            "--insecure-options=image,paths,seccomp,capabilities",
        ],
    );
    out.expect_code(7);
    let args = lines(&pod_dir(&rkt, "run", &uuid).join("stub-run-args"));
    assert_eq!(args[0], "--net=mynet", "{args:?}");
    assert_eq!(
        args[1],
        format!("--local-config={}", rkt.local_config.display())
    );
    assert!(
        args.iter()
            .any(|a| a.starts_with("--dns-conf-mode=resolv=stage0")),
        "{args:?}"
    );
    for f in [
        "--disable-capabilities-restriction",
        "--disable-paths",
        "--disable-seccomp",
        "--ipc=private",
    ] {
        assert!(args.iter().any(|a| a == f), "{f} missing: {args:?}");
    }
    assert_eq!(args.last(), Some(&uuid));
    // stage0 wrote the resolv.conf for the stage1 to use (the stub copied
    // it out of its rootfs, which may be an overlay private to the pod).
    let resolv =
        std::fs::read_to_string(pod_dir(&rkt, "run", &uuid).join("stub-resolv.conf")).unwrap();
    assert!(resolv.contains("nameserver 8.8.8.8"), "{resolv}");
}

#[test]
fn run_args_interface_version_1_drop_newer_flags() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub1.aci", None, None);
    let (out, uuid) = run_stub(&rkt, &stub, &["--hostname=h", "--ipc=private"]);
    let out = out.expect_code(7).expect_stderr("warning:");
    assert!(out.stderr.contains("--hostname"), "{out}");
    let args = lines(&pod_dir(&rkt, "run", &uuid).join("stub-run-args"));
    assert_eq!(
        args,
        [
            "--net=default".to_string(),
            format!("--local-config={}", rkt.local_config.display()),
            uuid.clone(),
        ]
    );
}

#[test]
fn debug_flag_reaches_the_stage1_first() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub6.aci", Some(6), None);
    let uf = rkt.root().join("u");
    rkt.run(&[
        "--debug",
        "--insecure-options=image",
        "run",
        &format!("--uuid-file-save={}", uf.display()),
        &format!("--stage1-path={}", stub.display()),
        INSPECT,
    ])
    .expect_code(7);
    let uuid = std::fs::read_to_string(&uf).unwrap();
    let args = lines(&pod_dir(&rkt, "run", &uuid).join("stub-run-args"));
    assert_eq!(args[0], "--debug", "{args:?}");
    assert_eq!(args[1], "--net=default", "{args:?}");
}

#[test]
fn run_prepared_uses_the_stage1_chosen_at_prepare() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub6.aci", Some(6), None);
    let uuid = rkt
        .ok(&[
            "--insecure-options=image",
            "prepare",
            "--quiet",
            &format!("--stage1-path={}", stub.display()),
            INSPECT,
        ])
        .stdout
        .trim()
        .to_string();
    let dir = pod_dir(&rkt, "prepared", &uuid);
    assert!(dir.join("stage1/manifest").exists());
    rkt.run(&["run-prepared", "--hostname=hp", &uuid])
        .expect_code(7);
    let args = lines(&pod_dir(&rkt, "run", &uuid).join("stub-run-args"));
    assert_eq!(
        args,
        [
            "--net=default".to_string(),
            format!("--local-config={}", rkt.local_config.display()),
            "--hostname=hp".to_string(),
            uuid.clone(),
        ]
    );
}

#[test]
fn third_party_stage1_without_features_is_not_refused() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub6.aci", Some(6), None);
    // Options fly would refuse are the stage1's business here.
    for opts in [
        &["--net=none"][..],
        &["--port=http:8080"],
        &["--hostname=h", "--net=n1,n2"],
    ] {
        let (out, _) = run_stub(&rkt, &stub, opts);
        out.expect_code(7);
    }
    let uf = rkt.root().join("u2");
    rkt.run(&[
        "--insecure-options=image",
        "run",
        &format!("--uuid-file-save={}", uf.display()),
        &format!("--stage1-path={}", stub.display()),
        INSPECT,
        "--memory=50M",
        "--caps-retain=CAP_CHOWN",
        "--readonly-rootfs=true",
        "---",
        "example.com/busybox",
    ])
    .expect_code(7);
    let uuid = std::fs::read_to_string(&uf).unwrap();
    let pm: serde_json::Value =
        serde_json::from_str(&rkt.ok(&["cat-manifest", &uuid]).stdout).unwrap();
    assert_eq!(pm["apps"].as_array().unwrap().len(), 2, "{pm}");
    let iso = pm["apps"][0]["app"]["isolators"].to_string();
    assert!(iso.contains("resource/memory"), "{pm}");
    assert!(iso.contains("os/linux/capabilities-retain-set"), "{pm}");
}

#[test]
fn declared_features_are_enforced_for_third_party_stage1s() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stubf.aci", Some(6), Some("net-host,volumes"));
    let (out, _) = run_stub(&rkt, &stub, &["--net=host"]);
    out.expect_code(7);
    let (out, _) = run_stub(&rkt, &stub, &["--net=host", "--hostname=h"]);
    out.expect_code(254).expect_stderr("--hostname");
    let (out, _) = run_stub(&rkt, &stub, &["--net=none"]);
    out.expect_code(254).expect_stderr("--net=none");
}

// ------------------------------------------------------ gc/stop/enter entrypoints

fn gc_case(version: Option<u32>) {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub.aci", version, None);
    let (out, uuid) = run_stub(&rkt, &stub, &[]);
    out.expect_code(7);
    let rec = rkt.root().join("rec");
    std::fs::create_dir(&rec).unwrap();
    let out = rkt
        .command()
        .env("STUB_OUT", &rec)
        .args(["gc", "--grace-period=0s"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want = Vec::new();
    if version.unwrap_or(1) >= 5 {
        want.push("--local-config".to_string());
        want.push(rkt.local_config.display().to_string());
    }
    want.push(uuid.clone());
    assert_eq!(lines(&rec.join("gc-args")), want);
    assert_eq!(
        lines(&rec.join("gc-cwd")),
        [pod_dir(&rkt, "exited-garbage", &uuid).display().to_string()]
    );
    assert_eq!(all_pods(&rkt), Vec::<String>::new());
    assert_eq!(rkt.mounts_under_root(), Vec::<String>::new());
}

#[test]
fn gc_entrypoint_args_version_6() {
    gc_case(Some(6));
}

#[test]
fn gc_entrypoint_args_version_1() {
    gc_case(None);
}

#[test]
fn rm_runs_the_gc_entrypoint() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub.aci", Some(5), None);
    let (_, uuid) = run_stub(&rkt, &stub, &[]);
    let rec = rkt.root().join("rec");
    std::fs::create_dir(&rec).unwrap();
    let out = rkt
        .command()
        .env("STUB_OUT", &rec)
        .args(["rm", &uuid])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&rec.join("gc-args")).last(), Some(&uuid));
}

#[test]
fn running_stub_holds_the_lock_then_stop_and_enter() {
    let rkt = setup();
    let stub = stub_stage1(&rkt, "stub.aci", Some(6), None);
    let rec = rkt.root().join("rec");
    std::fs::create_dir(&rec).unwrap();
    let stub_arg = format!("--stage1-path={}", stub.display());
    let mut pod = BgPod::start_with_env(
        &rkt,
        &[("STUB_SLEEP", "100")],
        &["--insecure-options=image", &stub_arg, INSPECT],
    );
    let st = status(&rkt, &pod.uuid);
    assert_eq!(st["state"], "running");
    assert_eq!(pods_in(&rkt, "run"), vec![pod.uuid.clone()]);
    // gc and rm leave a running pod alone.
    rkt.ok(&["gc", "--grace-period=0s"]);
    rkt.run(&["rm", &pod.uuid]).expect_code(254);

    // enter: --pid=<pid file> --appname=<app> -- CMD
    let out = rkt
        .command()
        .env("STUB_OUT", &rec)
        .args(["enter", &pod.uuid, "/bin/x", "y"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "entered\n");
    assert_eq!(
        lines(&rec.join("enter-args")),
        [
            format!("--pid={}", st["pid"]),
            "--appname=inspect".to_string(),
            "--".to_string(),
            "/bin/x".to_string(),
            "y".to_string(),
        ]
    );

    // stop: [--force] UUID with cwd = pod dir.
    let out = rkt
        .command()
        .env("STUB_OUT", &rec)
        .args(["stop", "--force", &pod.uuid])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lines(&rec.join("stop-args")),
        ["--force".to_string(), pod.uuid.clone()]
    );
    assert_eq!(
        lines(&rec.join("stop-cwd")),
        [pod_dir(&rkt, "run", &pod.uuid).display().to_string()]
    );
    assert!(
        pod.wait(Duration::from_secs(10)).is_some(),
        "stub did not stop"
    );
    assert!(wait_until(Duration::from_secs(5), || status(
        &rkt, &pod.uuid
    )["state"]
        == "exited"));
}

/// `make install PREFIX=P` puts rkt in `P/bin` and the stage1 images in
/// `P/lib/rkt/stage1-images`, where that rkt finds its default stage1.
#[test]
fn installed_layout_finds_the_default_stage1() {
    let rkt = setup();
    let prefix = rkt.root().join("prefix");
    let bin = prefix.join("bin");
    let images = prefix.join("lib/rkt/stage1-images");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&images).unwrap();
    std::fs::copy(functional_tests::rkt_bin(), bin.join("rkt")).unwrap();
    std::fs::copy(stage1_image("ns"), images.join("stage1-ns.aci")).unwrap();
    let out = std::process::Command::new(bin.join("rkt"))
        .arg(format!("--dir={}", rkt.dir.display()))
        .arg(format!("--local-config={}", rkt.local_config.display()))
        .arg(format!("--system-config={}", rkt.system_config.display()))
        .args([
            "run",
            "example.com/busybox",
            "--exec=/bin/sh",
            "--",
            "-c",
            "echo installed; exit 4",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "installed\n");
}

/// `--stage1-url=file://…` loads a stage1 file; `https://` fetches it
/// (from a local server with the test's own CA); plain http needs consent.
#[test]
fn stage1_url_file_and_https() {
    use functional_tests::http::{HttpServer, TestCa};
    let rkt = setup();
    let fly = stage1_image("fly").canonicalize().unwrap();
    rkt.ok(&[
        "run",
        &format!("--stage1-url=file://{}", fly.display()),
        INSPECT,
        "--",
        "--print-msg=via-url",
    ])
    .expect_stdout("via-url\n");

    let www = rkt.root().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::copy(&fly, www.join("stage1-fly.aci")).unwrap();
    let ca = TestCa::new(&rkt.root().join("ca"));
    let server = HttpServer::start(&www, Some(&ca));
    let url = server.url("stage1-fly.aci");
    let out = rkt
        .command()
        .env("SSL_CERT_FILE", &ca.ca_pem)
        .args([
            "--insecure-options=image",
            "run",
            &format!("--stage1-url={url}"),
            INSPECT,
            "--",
            "--print-msg=via-https",
        ])
        .output()
        .unwrap();
    functional_tests::Out::from_output(out)
        .expect_code(0)
        .expect_stdout("via-https\n");
    assert!(server
        .requests()
        .contains(&"GET /stage1-fly.aci 200".to_string()));

    let plain = HttpServer::start(&www, None);
    rkt.run(&[
        "run",
        &format!("--stage1-url={}", plain.url("stage1-fly.aci")),
        INSPECT,
    ])
    .expect_code(254)
    .expect_stderr("--insecure-options=http");
}
