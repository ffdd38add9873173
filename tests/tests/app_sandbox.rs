//! Mutable pods (`rkt app sandbox|add|start|stop|rm|list|status`): the exact
//! crossing-entrypoint ABI against a recording busybox-script stage1 (args,
//! replaced environment, cwd, pod.lck, exit status 5, rollback of a failed
//! `app add`, the manifest after add and rm), the refusals, and the whole
//! cycle end to end on the ns stage1.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use functional_tests::pods::rkt_with_test_images as setup;
use functional_tests::pods::{build_aci, host_busybox, pod_dir, status, status_map, wait_until};
use functional_tests::pods::{pod_cgroups, pod_processes};
use functional_tests::{stage1_image, Rkt};
use images::manifest::{annotation, image_manifest, standard_labels};
use images::recipes::populate_busybox_rootfs;

const BUSYBOX: &str = "example.com/busybox";
const STUB: &str = "example.com/stub-mutable-stage1";
const STUB_IMMUTABLE: &str = "example.com/stub-immutable-stage1";

/// Records its argv, then becomes the pod's PID 1 the way a real stage1
/// does: its own mount namespace, pivoted into the stage1 rootfs (so host
/// paths are not visible from it), holding the lock until killed.
const RUN: &str = r#"#!/bin/busybox sh
for a in "$@"; do echo "$a"; done > stub-run-args
# The pid is written only once pivoted: stage0 must never reach into a
# namespace whose root is still the host's.
exec 9>pid
exec /bin/busybox unshare -m --propagation private /bin/busybox sh -c '
  /bin/busybox mount --bind stage1/rootfs stage1/rootfs &&
  cd stage1/rootfs && /bin/busybox mkdir -p .old &&
  /bin/busybox pivot_root . .old && cd / &&
  /bin/busybox umount -l /.old && echo $$ >&9 && exec 9>&- &&
  exec /bin/busybox sleep 1000'
"#;

const STOP: &str = r#"#!/bin/busybox sh
/bin/busybox kill "$(/bin/busybox cat pid)"
"#;

const NOOP: &str = "#!/bin/busybox sh\nexit 0\n";

/// The crossing entrypoints: record argv, environment, cwd and whether
/// pod.lck is held into `stub-<name>-*` files of the pod dir (their cwd),
/// then do the minimum: status markers through the pod's root. `stub-fail-<name>`
/// in the pod dir makes one fail; `stub-stop-code` sets app/stop's status.
fn crossing(name: &str) -> String {
    format!(
        r#"#!/bin/busybox sh
for a in "$@"; do echo "$a"; done > stub-{name}-args
/bin/busybox env | /bin/busybox sort > stub-{name}-env
/bin/busybox pwd > stub-{name}-cwd
if flock -n -x pod.lck true; then echo free; else echo held; fi > stub-{name}-lock
for a in "$@"; do case "$a" in --app=*) app="${{a#--app=}}";; esac; done
root=/proc/$RKT_STAGE1_ENTERPID/root
st=$root/rkt/status
/bin/busybox mkdir -p $st
case {name} in
add)
  /bin/busybox cp pod stub-add-pod
  if [ -x $root/opt/stage2/$app/rootfs/bin/busybox ]; then echo yes; else echo no; fi > stub-add-rootfs
  ;;
esac
if [ -e stub-fail-{name} ]; then
  echo "stub {name}: first line"
  echo "stub {name}: cannot do it" >&2
  exit 3
fi
case {name} in
add) : > $st/$app-created ;;
start) : > $st/$app-started ;;
stop)
  if [ -e stub-stop-code ]; then exit "$(/bin/busybox cat stub-stop-code)"; fi
  echo 0 > $st/$app ;;
esac
exit 0
"#
    )
}

/// The stub stage1: the run/stop/gc/enter entrypoints plus app add, start,
/// stop and rm (no features annotation: everything of version 6 assumed).
fn stub_stage1(rkt: &Rkt, with_apps: bool) -> PathBuf {
    let name = if with_apps { STUB } else { STUB_IMMUTABLE };
    let mut m = image_manifest(name, &standard_labels("1.0.0")).unwrap();
    let mut eps = vec![
        ("run", "/run"),
        ("enter", "/enter"),
        ("gc", "/gc"),
        ("stop", "/stop"),
    ];
    if with_apps {
        eps.extend([
            ("app/add", "/app_add"),
            ("app/start", "/app_start"),
            ("app/stop", "/app_stop"),
            ("app/rm", "/app_rm"),
        ]);
    }
    for (ep, path) in &eps {
        m.annotations
            .push(annotation(&format!("coreos.com/rkt/stage1/{ep}"), path).unwrap());
    }
    m.annotations
        .push(annotation("coreos.com/rkt/stage1/interface-version", "6").unwrap());
    let file = if with_apps {
        "stub-mutable.aci"
    } else {
        "stub-immutable.aci"
    };
    build_aci(rkt.root(), file, m, |root| {
        populate_busybox_rootfs(root, &host_busybox()).unwrap();
        let scripts = [
            ("run", RUN.to_string()),
            ("stop", STOP.to_string()),
            ("gc", NOOP.to_string()),
            ("enter", NOOP.to_string()),
            ("app_add", crossing("add")),
            ("app_start", crossing("start")),
            ("app_stop", crossing("stop")),
            ("app_rm", crossing("rm")),
        ];
        for (name, script) in scripts {
            let p = root.join(name);
            std::fs::write(&p, script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    })
}

/// `rkt app sandbox` in the background; killed and reaped on drop.
struct Sandbox {
    child: Option<Child>,
    uuid: String,
}

impl Sandbox {
    #[track_caller]
    fn start(rkt: &Rkt, args: &[&str]) -> Sandbox {
        let uf = rkt.root().join("sandbox-uuid");
        let _ = std::fs::remove_file(&uf);
        let child = rkt
            .command()
            .args(["--insecure-options=image", "app", "sandbox"])
            .arg(format!("--uuid-file-save={}", uf.display()))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rkt app sandbox");
        let mut sb = Sandbox {
            child: Some(child),
            uuid: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(Ok(Some(st))) = sb.child.as_mut().map(Child::try_wait) {
                let out = sb.child.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "app sandbox exited early ({st}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            if sb.uuid.is_empty() {
                sb.uuid = std::fs::read_to_string(&uf).unwrap_or_default();
            }
            if !sb.uuid.is_empty() {
                let o = rkt.run(&["status", &sb.uuid]);
                let st = status_map(&o.stdout);
                if st.get("state").map(String::as_str) == Some("running") && st.contains_key("pid")
                {
                    return sb;
                }
            }
            assert!(Instant::now() < deadline, "sandbox never became running");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Waits for the background rkt to exit after `rkt stop`.
    fn wait(&mut self) -> i32 {
        let mut c = self.child.take().expect("running");
        c.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lines(path: impl AsRef<Path>) -> Vec<String> {
    read(path).lines().map(str::to_string).collect()
}

fn manifest_apps(rkt: &Rkt, uuid: &str) -> Vec<String> {
    let out = rkt.ok(&["cat-manifest", uuid]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

/// Mount points at or below `/opt/stage2` as PID 1 of the pod sees them.
fn stage2_mounts(pid: &str) -> Vec<String> {
    read(format!("/proc/{pid}/mountinfo"))
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with("/opt/stage2"))
        .map(str::to_string)
        .collect()
}

// --------------------------------------------------------------- stub ABI

fn stub_cycle(no_overlay: bool) {
    let rkt = setup();
    let stub = stub_stage1(&rkt, true);
    let s1 = format!("--stage1-path={}", stub.display());
    let mut args = vec![s1.as_str(), "--user-label=team=x"];
    if no_overlay {
        args.push("--no-overlay");
    }
    let mut sb = Sandbox::start(&rkt, &args);
    let uuid = sb.uuid.clone();
    let dir = pod_dir(&rkt, "run", &uuid);
    let pid = status(&rkt, &uuid)["pid"].clone();

    // The run entrypoint was asked for a mutable pod with no apps.
    let run_args = lines(dir.join("stub-run-args"));
    assert!(run_args.contains(&"--mutable".to_string()), "{run_args:?}");
    assert_eq!(run_args.last(), Some(&uuid));
    let pm: serde_json::Value =
        serde_json::from_str(&rkt.ok(&["cat-manifest", &uuid]).stdout).unwrap();
    assert_eq!(pm["apps"], serde_json::json!([]));
    assert_eq!(
        pm["annotations"][0],
        serde_json::json!({"name": "coreos.com/rkt/stage1/mutable", "value": "true"})
    );
    assert_eq!(pm["userLabels"]["team"], "x");
    rkt.ok(&["app", "list", &uuid])
        .expect_stdout("NAME\tSTATE\n");

    // app add: args, exactly three environment variables, cwd, pod.lck held,
    // the manifest already listing the app, the rootfs visible in the pod.
    rkt.ok(&[
        "app",
        "add",
        &uuid,
        BUSYBOX,
        "--name=bb",
        "--exec=/bin/sh",
        "--",
        "-c",
        "sleep 1000",
    ]);
    assert_eq!(
        lines(dir.join("stub-add-args")),
        vec!["--debug=false", &format!("--uuid={uuid}"), "--app=bb"]
    );
    // The shell itself adds PWD and SHLVL.
    let env: Vec<String> = lines(dir.join("stub-add-env"))
        .into_iter()
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL="))
        .collect();
    let enter = rkt
        .dir
        .join("cas/tree")
        .canonicalize()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(env.len(), 3, "{env:?}");
    assert!(env[0].starts_with("PATH="), "{env:?}");
    assert!(
        env[1].starts_with("RKT_STAGE1_ENTERCMD=/") && env[1].ends_with("/rootfs/enter"),
        "{env:?}"
    );
    if !no_overlay {
        // Overlay pods run it from the tree store's copy of the stage1.
        assert!(env[1].contains(&enter), "{env:?} {enter}");
    }
    assert_eq!(env[2], format!("RKT_STAGE1_ENTERPID={pid}"));
    assert_eq!(read(dir.join("stub-add-cwd")).trim(), dir.to_str().unwrap());
    assert_eq!(read(dir.join("stub-add-lock")).trim(), "held");
    assert_eq!(read(dir.join("stub-add-rootfs")).trim(), "yes");
    let added: serde_json::Value = serde_json::from_str(&read(dir.join("stub-add-pod"))).unwrap();
    assert_eq!(added["apps"][0]["name"], "bb");
    assert_eq!(
        added["apps"][0]["app"]["exec"],
        serde_json::json!(["/bin/sh", "-c", "sleep 1000"])
    );
    assert!(dir.join("appsinfo/bb/manifest").is_file());
    assert_eq!(dir.join("appsinfo/bb/treeStoreID").is_file(), !no_overlay);
    assert_eq!(
        stage2_mounts(&pid),
        if no_overlay {
            vec![]
        } else {
            vec!["/opt/stage2/bb/rootfs".to_string()]
        }
    );
    assert!(rkt.mounts_under_root().is_empty(), "host sees pod mounts");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("pod"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    rkt.ok(&["app", "list", "--no-legend", &uuid])
        .expect_stdout("bb\tcreated\n");

    // A second app of the same name is refused before anything changes.
    let out = rkt.run(&["app", "add", &uuid, BUSYBOX, "--name=bb"]);
    let out = out.expect_code(254).expect_stderr("app add: ");
    assert!(
        out.stderr.contains("already has an app named \"bb\""),
        "{out}"
    );

    // start / stop: args without the UUID, same environment.
    rkt.ok(&["app", "start", &uuid, "--app=bb"]);
    assert_eq!(
        lines(dir.join("stub-start-args")),
        vec!["--debug=false", "--app=bb"]
    );
    let start_env: Vec<String> = lines(dir.join("stub-start-env"))
        .into_iter()
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL="))
        .collect();
    assert_eq!(start_env, env);
    assert_eq!(read(dir.join("stub-start-lock")).trim(), "free");
    rkt.ok(&["app", "list", &uuid])
        .expect_stdout("bb\trunning\n");
    rkt.ok(&["--debug", "app", "stop", &uuid, "--app=bb"]);
    assert_eq!(
        lines(dir.join("stub-stop-args")),
        vec!["--debug=true", "--app=bb"]
    );
    let st = status_map(&rkt.ok(&["app", "status", &uuid, "--app=bb"]).stdout);
    assert_eq!(st["name"], "bb");
    assert_eq!(st["state"], "exited");
    assert_eq!(st["exit_code"], "0");
    assert!(st["image_id"].starts_with("sha512-"), "{st:?}");
    for k in ["created_at", "started_at", "finished_at"] {
        assert!(st.contains_key(k), "{st:?}");
    }
    let json: serde_json::Value = serde_json::from_str(
        &rkt.ok(&["app", "status", &uuid, "--app=bb", "--format=json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(json["state"], "exited");
    assert_eq!(json["exit_code"], 0);
    assert!(json["finished_at"].as_i64().unwrap() > 0);

    // Exit status 5 from app/stop: "not running".
    std::fs::write(dir.join("stub-stop-code"), "5").unwrap();
    let out = rkt
        .run(&["app", "stop", &uuid, "--app=bb"])
        .expect_code(254);
    assert!(out.stderr.starts_with("app stop: "), "{out}");
    assert!(out.stderr.contains("is not running"), "{out}");
    // Unknown apps are refused before the stage1 is called.
    std::fs::remove_file(dir.join("stub-start-args")).unwrap();
    let out = rkt
        .run(&["app", "start", &uuid, "--app=nope"])
        .expect_code(254);
    assert!(out.stderr.contains("has no app \"nope\""), "{out}");
    assert!(!dir.join("stub-start-args").exists());

    // A failing app/add is undone completely; its output is shown.
    std::fs::write(dir.join("stub-fail-add"), "").unwrap();
    let before = read(dir.join("pod"));
    let out = rkt
        .run(&["app", "add", &uuid, BUSYBOX, "--name=broken"])
        .expect_code(254);
    assert!(out.stderr.contains("stub add: first line"), "{out}");
    let last = out.stderr.lines().last().unwrap();
    assert!(
        last.starts_with("app add: ")
            && last.contains("exited with status 3): stub add: cannot do it"),
        "{out}"
    );
    assert_eq!(read(dir.join("pod")), before);
    assert!(!dir.join("appsinfo/broken").exists());
    assert_eq!(stage2_mounts(&pid).len(), usize::from(!no_overlay));
    assert!(!Path::new(&format!("/proc/{pid}/root/opt/stage2/broken")).exists());
    let uppers = walk_names(&dir.join("overlay"));
    assert!(!uppers.iter().any(|n| n == "broken"), "{uppers:?}");
    std::fs::remove_file(dir.join("stub-fail-add")).unwrap();

    // app rm: stop (5 tolerated), rm, then everything of the app is gone.
    rkt.ok(&["app", "rm", &uuid, "--app=bb"]);
    assert_eq!(
        lines(dir.join("stub-rm-args")),
        vec!["--debug=false", "--app=bb"]
    );
    assert_eq!(read(dir.join("stub-rm-lock")).trim(), "held");
    assert_eq!(manifest_apps(&rkt, &uuid), Vec::<String>::new());
    assert!(stage2_mounts(&pid).is_empty());
    assert!(!dir.join("appsinfo/bb").exists());
    assert!(!Path::new(&format!("/proc/{pid}/root/opt/stage2/bb")).exists());
    for f in ["bb", "bb-created", "bb-started"] {
        assert!(!Path::new(&format!("/proc/{pid}/root/rkt/status/{f}")).exists());
    }
    let names = walk_names(&dir.join("overlay"));
    assert!(!names.iter().any(|n| n == "bb"), "{names:?}");
    // The name is free again.
    rkt.ok(&["app", "add", &uuid, BUSYBOX, "--name=bb"]);
    assert_eq!(manifest_apps(&rkt, &uuid), vec!["bb"]);

    rkt.ok(&["stop", &uuid]);
    sb.wait();
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert!(rkt.mounts_under_root().is_empty());
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        out.push(e.file_name().to_string_lossy().into_owned());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk_names(&e.path()));
        }
    }
    out
}

#[test]
fn crossing_entrypoint_abi_with_overlay() {
    stub_cycle(false);
}

#[test]
fn crossing_entrypoint_abi_without_overlay() {
    stub_cycle(true);
}

// --------------------------------------------------------------- refusals

#[test]
fn refusals_are_clear() {
    let rkt = setup();
    let immutable = stub_stage1(&rkt, false);
    let s1 = format!("--stage1-path={}", immutable.display());
    let out = rkt
        .run(&["--insecure-options=image", "app", "sandbox", &s1])
        .expect_code(254);
    assert!(
        out.stderr.lines().any(|l| l.starts_with("app sandbox: ")),
        "{out}"
    );
    assert!(
        out.stderr.contains("does not support mutable pods"),
        "{out}"
    );

    // rkt's sandbox form names the protocol and pod port too.
    let out = rkt
        .run(&["app", "sandbox", "--port=http:8080"])
        .expect_code(254);
    assert!(
        out.stderr
            .contains("expected NAME:PROTO:PODPORT:HOSTIP:HOSTPORT"),
        "{out}"
    );

    let out = rkt.run(&["app", "add", "nope", BUSYBOX]).expect_code(254);
    assert!(out.stderr.starts_with("app add: "), "{out}");

    // A prepared (not running, not mutable) pod.
    let out = rkt.ok(&["prepare", BUSYBOX]);
    let uuid = out.stdout.trim().to_string();
    let out = rkt.run(&["app", "add", &uuid, BUSYBOX]).expect_code(254);
    assert!(out.stderr.contains("not running"), "{out}");
    let out = rkt.run(&["app", "list", &uuid]).expect_code(254);
    assert!(out.stderr.contains("not a mutable pod"), "{out}");
    let out = rkt.run(&["app", "start", &uuid]).expect_code(254);
    assert!(out.stderr.contains("--app"), "{out}");
}

// ------------------------------------------------------------ ns end to end

fn ns_has_mutable() -> bool {
    let out = std::process::Command::new("tar")
        .args(["-xOf"])
        .arg(stage1_image("ns"))
        .arg("manifest")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("coreos.com/rkt/stage1/app/add")
}

#[test]
fn ns_sandbox_add_start_enter_stop_rm() {
    assert!(
        ns_has_mutable(),
        "stage1-ns.aci lacks app/add: run `make images`"
    );
    let rkt = setup();
    let ns = stage1_image("ns").canonicalize().unwrap();
    let s1 = format!("--stage1-path={}", ns.display());
    let mut sb = Sandbox::start(&rkt, &[&s1]);
    let uuid = sb.uuid.clone();
    let pid = status(&rkt, &uuid)["pid"].clone();

    rkt.ok(&[
        "app",
        "add",
        &uuid,
        BUSYBOX,
        "--name=bb",
        "--exec=/bin/sh",
        "--",
        "-c",
        "echo hi > /tmp/x; sleep 1000",
    ]);
    assert_eq!(stage2_mounts(&pid), vec!["/opt/stage2/bb/rootfs"]);
    rkt.ok(&["app", "list", &uuid])
        .expect_stdout("NAME\tSTATE\nbb\tcreated\n");
    let app_state = || {
        let out = rkt.ok(&["status", "--format=json", &uuid]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v["apps"][0]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(app_state(), "created", "rkt status agrees with app list");
    rkt.ok(&["app", "start", &uuid, "--app=bb"]);
    rkt.ok(&["app", "list", "--no-legend", &uuid])
        .expect_stdout("bb\trunning\n");
    assert_eq!(app_state(), "running");
    let mut seen = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            seen = rkt
                .run(&["enter", "--app=bb", &uuid, "/bin/cat", "/tmp/x"])
                .stdout;
            seen == "hi\n"
        }),
        "{seen:?}"
    );

    // A bad exec fails app add clearly and leaves the pod as it was.
    let out = rkt
        .run(&["app", "add", &uuid, BUSYBOX, "--name=bad", "--exec=/nope"])
        .expect_code(254);
    assert!(out.stderr.contains("/nope"), "{out}");
    assert_eq!(manifest_apps(&rkt, &uuid), vec!["bb"]);
    assert_eq!(stage2_mounts(&pid), vec!["/opt/stage2/bb/rootfs"]);

    let sleeping = || {
        pod_processes(&rkt, &uuid)
            .into_iter()
            .filter(|p| p.ends_with("(sleep)"))
            .count()
    };
    assert_eq!(sleeping(), 1, "the app's child runs");
    rkt.ok(&["app", "stop", &uuid, "--app=bb"]);
    let st = status_map(&rkt.ok(&["app", "status", &uuid, "--app=bb"]).stdout);
    assert_eq!(st["state"], "exited", "{st:?}");
    // SIGTERM to sh: 128 + 15.
    assert_eq!(st["exit_code"], "143", "{st:?}");
    // The whole app stops, not only its first process.
    assert!(
        wait_until(Duration::from_secs(5), || sleeping() == 0),
        "the app's child outlived app stop: {:?}",
        pod_processes(&rkt, &uuid)
    );
    rkt.run(&["app", "stop", &uuid, "--app=bb"])
        .expect_code(254)
        .expect_stderr("is not running");

    rkt.ok(&["app", "rm", &uuid, "--app=bb"]);
    assert!(stage2_mounts(&pid).is_empty());
    assert_eq!(manifest_apps(&rkt, &uuid), Vec::<String>::new());
    assert!(!Path::new(&format!("/proc/{pid}/root/opt/stage2/bb")).exists());

    rkt.ok(&["stop", &uuid]);
    sb.wait();
    assert!(wait_until(Duration::from_secs(10), || status(&rkt, &uuid)
        ["state"]
        == "exited"));
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert!(rkt.mounts_under_root().is_empty());
    assert!(
        pod_processes(&rkt, &uuid).is_empty(),
        "{:?}",
        pod_processes(&rkt, &uuid)
    );
    assert!(pod_cgroups(&uuid).is_empty(), "{:?}", pod_cgroups(&uuid));
}

/// rkt's `app sandbox --port=NAME:PROTO:PODPORT:HOSTIP:HOSTPORT`: the
/// forward exists before any app does, and reaches the app added later;
/// a malformed one is refused before anything is created.
#[test]
fn ns_sandbox_ports_are_forwarded_to_apps_added_later() {
    use functional_tests::pods::{free_port, tcp_read};
    let rkt = setup();
    let ns = stage1_image("ns").canonicalize().unwrap();
    let s1 = format!("--stage1-path={}", ns.display());

    for (bad, why) in [
        ("web:sctp:80::8080", "neither tcp nor udp"),
        (
            "web:tcp:80:8080",
            "expected NAME:PROTO:PODPORT:HOSTIP:HOSTPORT",
        ),
        ("web:tcp:80:nowhere:8080", "not an IPv4 address"),
    ] {
        let out = rkt.run(&[
            "--insecure-options=image",
            "app",
            "sandbox",
            &s1,
            "--net=default",
            &format!("--port={bad}"),
        ]);
        let out = out.expect_code(254);
        assert!(out.stderr.contains(why), "--port={bad}: {out}");
    }
    assert_eq!(
        rkt.run(&["list", "--no-legend"]).stdout,
        "",
        "nothing prepared"
    );

    let port = free_port();
    let mut sb = Sandbox::start(
        &rkt,
        &[
            &s1,
            "--net=default",
            &format!("--port=web:tcp:8080::{port}"),
        ],
    );
    let uuid = sb.uuid.clone();
    rkt.ok(&[
        "app",
        "add",
        &uuid,
        BUSYBOX,
        "--name=web",
        "--exec=/bin/sh",
        "--",
        "-c",
        "while true; do echo sandboxed-web | nc -l -p 8080; done",
    ]);
    rkt.ok(&["app", "start", &uuid, "--app=web"]);
    let mut seen = String::new();
    let reached = wait_until(Duration::from_secs(10), || {
        seen = tcp_read(&format!("127.0.0.1:{port}"));
        seen.contains("sandboxed-web")
    });
    assert!(reached, "127.0.0.1:{port} gave {seen:?}");

    rkt.ok(&["stop", &uuid]);
    if let Some(mut child) = sb.child.take() {
        let _ = child.wait();
    }
    rkt.ok(&["gc", "--grace-period=0s"]);
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert!(!tables.contains(&uuid), "forwarding left: {tables}");
}
