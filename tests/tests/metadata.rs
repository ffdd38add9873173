//! `rkt metadata-service` and `--mds-register`, with clients nobody here
//! wrote: curl from the host, busybox wget and the inspect app from inside
//! pods on the default network and on the host's.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use functional_tests::metadata::{self, curl, register, Answer, MetadataService, PORT};
use functional_tests::pods::ns_stage1_flag as stage1_flag;
use functional_tests::pods::{ns_run, ns_sh, pod_dir, rkt_with_test_images as setup};
use functional_tests::{Out, Rkt};

const BUSYBOX: &str = "example.com/busybox";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=us-ascii";
const UUID: &str = "0f6ba1c2-33d4-4e5f-8a9b-0c1d2e3f4a5b";
const IMAGE_ID: &str = "sha512-aaaabbbbccccddddeeeeffff00001111222233334444555566667777888899990";

fn get(token: &str, path: &str) -> Answer {
    curl(&[&format!(
        "http://127.0.0.1:{PORT}/{token}/acMetadata/v1{path}"
    )])
}

fn post(token: &str, path: &str, form: &[(&str, &str)]) -> Answer {
    let mut args = vec![
        "-X".to_string(),
        "POST".to_string(),
        format!("http://127.0.0.1:{PORT}/{token}/acMetadata/v1{path}"),
    ];
    for (k, v) in form {
        args.push("--data-urlencode".into());
        args.push(format!("{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(&args)
}

fn assert_answer(a: &Answer, status: u16, content_type: &str, body: &str) {
    assert_eq!(
        (a.status, a.content_type.as_str(), a.body.as_str()),
        (status, content_type, body),
        "{a:?}"
    );
}

/// Registration and every public endpoint, driven by curl as a foreign
/// registrar and client would: exact content types and bodies, identity,
/// and the bad input the service must shrug off.
#[test]
fn metadata_service_api_with_curl() {
    let rkt = Rkt::new();
    let mut service = MetadataService::start(&rkt);
    let pod = rkt.root().join("pod.json");
    std::fs::write(
        &pod,
        format!(
            r#"{{"acVersion":"0.8.11","acKind":"PodManifest",
            "apps":[{{"name":"web","image":{{"name":"example.com/web","id":"{IMAGE_ID}"}},
            "annotations":[{{"name":"color","value":"pod-red"}}]}}],
            "volumes":[],"isolators":[],
            "annotations":[{{"name":"team","value":"blue"}}],"ports":[]}}
"#
        ),
    )
    .unwrap();
    let image = rkt.root().join("image.json");
    std::fs::write(
        &image,
        r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/web",
        "annotations":[{"name":"color","value":"image-blue"},{"name":"size","value":"xl"}]}"#,
    )
    .unwrap();
    let token = "c0ffee00c0ffee00c0ffee00c0ffee00";
    let put_pod = format!("/pods/{UUID}?token={token}");
    assert_eq!(register("PUT", &put_pod, Some(&pod)).status, 200);
    assert_eq!(
        register("PUT", &format!("/pods/{UUID}/web"), Some(&image)).status,
        200
    );

    // The spec's endpoints, byte for byte.
    assert_answer(&get(token, "/pod/uuid"), 200, TEXT, UUID);
    assert_answer(
        &get(token, "/pod/annotations"),
        200,
        JSON,
        r#"[{"name":"team","value":"blue"}]"#,
    );
    assert_answer(&get(token, "/pod/annotations/team"), 200, TEXT, "blue");
    let manifest = get(token, "/pod/manifest");
    assert_eq!(
        (manifest.status, manifest.content_type.as_str()),
        (200, JSON)
    );
    assert!(
        !manifest.body.ends_with('\n'),
        "no stray newline: {manifest:?}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&manifest.body).unwrap();
    assert_eq!(parsed["apps"][0]["image"]["id"], IMAGE_ID);
    assert_eq!(parsed["volumes"], serde_json::json!([]), "[] stays []");
    assert_answer(
        &get(token, "/apps/web/annotations"),
        200,
        JSON,
        r#"[{"name":"color","value":"pod-red"},{"name":"size","value":"xl"}]"#,
    );
    assert_answer(&get(token, "/apps/web/annotations/size"), 200, TEXT, "xl");
    assert_answer(&get(token, "/apps/web/image/id"), 200, TEXT, IMAGE_ID);
    let im = get(token, "/apps/web/image/manifest");
    assert_eq!((im.status, im.content_type.as_str()), (200, JSON));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&im.body).unwrap()["name"],
        "example.com/web"
    );

    // Identity: sign, verify, and what a forger gets.
    let sig = post(token, "/pod/hmac/sign", &[("content", "hello world")]);
    assert_eq!(
        (sig.status, sig.content_type.as_str()),
        (200, TEXT),
        "{sig:?}"
    );
    assert_eq!(sig.body.len(), 88, "base64 of a SHA-512 HMAC: {sig:?}");
    let verify = |uuid: &str, content: &str, signature: &str| {
        post(
            token,
            "/pod/hmac/verify",
            &[
                ("uuid", uuid),
                ("content", content),
                ("signature", signature),
            ],
        )
        .status
    };
    assert_eq!(verify(UUID, "hello world", &sig.body), 200);
    assert_eq!(
        verify(UUID, "hello wOrld", &sig.body),
        403,
        "tampered content"
    );
    let forged = format!("A{}", &sig.body[1..]);
    assert_eq!(
        verify(UUID, "hello world", &forged),
        403,
        "forged signature"
    );
    let other = "1f6ba1c2-33d4-4e5f-8a9b-0c1d2e3f4a5b";
    assert_eq!(
        verify(other, "hello world", &sig.body),
        403,
        "another pod's claim"
    );

    // Bad input: clear answers with the right codes.
    assert_eq!(
        get("0000000000000000", "/pod/uuid").status,
        401,
        "unknown token"
    );
    assert_eq!(
        post("nope", "/pod/hmac/sign", &[("content", "x")]).status,
        401
    );
    assert_eq!(get(token, "/apps/db/image/id").status, 404, "unknown app");
    assert_eq!(get(token, "/pod/annotations/missing").status, 404);
    assert_eq!(post(token, "/pod/hmac/sign", &[]).status, 400, "no content");
    assert_eq!(verify("not-a-uuid", "x", &sig.body), 400);
    assert_eq!(verify(UUID, "x", "***not base64***"), 400);
    let garbage = curl(&[
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-binary",
        "%%%&&&==\u{1}",
        &format!("http://127.0.0.1:{PORT}/{token}/acMetadata/v1/pod/hmac/verify"),
    ]);
    assert_eq!(garbage.status, 400, "{garbage:?}");
    let twice = register(
        "PUT",
        &format!("/pods/{UUID}?token=deadbeefdeadbeef"),
        Some(&pod),
    );
    assert_eq!(twice.status, 409, "{twice:?}");
    assert!(twice.body.contains("already registered"), "{twice:?}");
    assert_eq!(
        register("PUT", &put_pod, Some(&image)).status,
        400,
        "not a pod manifest"
    );
    assert_eq!(
        register("PUT", "/pods/nope?token=abc", Some(&pod)).status,
        400
    );

    // A client that opens 1000 connections and stalls: the others are
    // still answered, promptly.
    raise_open_files_limit();
    let stalled: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(("127.0.0.1", PORT)).expect("connecting"))
        .collect();
    let start = Instant::now();
    assert_answer(&get(token, "/pod/uuid"), 200, TEXT, UUID);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "answered after {:?} with 1000 stalled connections",
        start.elapsed()
    );
    drop(stalled);
    assert!(service.running(), "{}", service.log());

    // Unregistered: its token is worthless.
    assert_eq!(
        register("DELETE", &format!("/pods/{UUID}"), None).status,
        200
    );
    assert_eq!(
        register("DELETE", &format!("/pods/{UUID}"), None).status,
        404
    );
    assert_eq!(get(token, "/pod/uuid").status, 401);

    // Every request logged as rkt did.
    let log = service.log();
    assert!(
        log.contains(&format!("GET /{token}/acMetadata/v1/pod/uuid - 200")),
        "{log}"
    );
    assert!(
        log.contains(&format!("PUT /pods/{UUID}/web - 200")),
        "{log}"
    );
    assert_eq!(service.stop(), Some(0), "{log}");
    assert!(
        !std::path::Path::new(metadata::SOCKET).exists(),
        "socket left behind"
    );
}

fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max.min(65536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

/// The app's URL as it printed it (`URL=...`).
fn printed_url(out: &Out) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("URL="))
        .unwrap_or_else(|| panic!("no URL printed: {out}"))
        .to_string()
}

/// A pod on the default network reads its own metadata and proves its
/// identity with busybox wget; the inspect app reads its annotation the way
/// rkt's test did; gc unregisters the pod.
#[test]
fn apps_on_the_default_network_use_the_metadata_service() {
    let rkt = setup();
    let service = MetadataService::start(&rkt);
    // Signature bytes +, / and = must be escaped in the verify form.
    let script = r#"
        set -e
        echo URL=$AC_METADATA_URL
        M=$AC_METADATA_URL/acMetadata/v1
        U=$(wget -q -O - $M/pod/uuid)
        echo UUID=$U
        echo ID=$(wget -q -O - $M/apps/$AC_APP_NAME/image/id)
        wget -q -O - $M/pod/manifest | grep -q '"acKind":"PodManifest"' && echo MANIFEST=ok
        S=$(wget -q -O - --post-data=content=from-the-pod $M/pod/hmac/sign)
        E=$(echo "$S" | sed -e 's/+/%2B/g' -e 's,/,%2F,g' -e 's/=/%3D/g')
        wget -q -O - --post-data="uuid=$U&content=from-the-pod&signature=$E" $M/pod/hmac/verify && echo VERIFY=ok
        wget -q -O - --post-data="uuid=$U&content=forged&signature=$E" $M/pod/hmac/verify || echo FORGED=refused
    "#;
    let (out, uuid) = ns_sh(&rkt, &["--mds-register", "--net=default"], script);
    let out = out.expect_code(0);
    let url = printed_url(&out);
    assert!(
        url.starts_with("http://172.16.28.1:18112/"),
        "the default network's gateway: {out}"
    );
    assert!(out.stdout.contains(&format!("UUID={uuid}\n")), "{out}");
    let image_id = rkt.ok(&["cat-manifest", &uuid]).stdout;
    let image_id: serde_json::Value = serde_json::from_str(&image_id).unwrap();
    let image_id = image_id["apps"][0]["image"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(out.stdout.contains(&format!("ID={image_id}\n")), "{out}");
    for line in ["MANIFEST=ok", "VERIFY=ok", "FORGED=refused"] {
        assert!(out.stdout.contains(line), "{line}: {out}");
    }
    let marked = ["run", "exited-garbage"]
        .iter()
        .any(|state| pod_dir(&rkt, state, &uuid).join("mds-registered").exists());
    assert!(marked, "the pod is marked for gc to unregister it");

    // The inspect app, with an annotation from a pod manifest.
    let inspect_id = rkt
        .ok(&["image", "list", "--fields=id,name", "--full", "--no-legend"])
        .stdout;
    let inspect_id = inspect_id
        .lines()
        .find(|l| l.contains("inspect"))
        .and_then(|l| l.split_whitespace().next())
        .expect("the inspect image is in the store")
        .to_string();
    let pm = rkt.root().join("pod.json");
    let manifest = serde_json::json!({
        "acVersion": "0.8.11", "acKind": "PodManifest",
        "apps": [{
            "name": "reader",
            "image": {"name": "example.com/inspect", "id": inspect_id},
            "app": {"exec": ["/inspect", "--print-app-annotation=color"], "user": "0", "group": "0"},
            "annotations": [{"name": "color", "value": "teal"}]
        }]
    });
    std::fs::write(&pm, manifest.to_string()).unwrap();
    let (out, _) = ns_run(
        &rkt,
        &[
            "--mds-register",
            "--net=default",
            &format!("--pod-manifest={}", pm.display()),
        ],
    );
    assert_eq!(out.expect_code(0).stdout, "Annotation color=teal\n");

    // gc unregisters: the first pod's token now gets 401.
    let token = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(get(&token, "/pod/uuid").status, 200);
    rkt.ok(&["gc", "--grace-period=0s"]);
    assert_eq!(get(&token, "/pod/uuid").status, 401);
    assert!(
        service
            .log()
            .contains(&format!("DELETE /pods/{uuid} - 200")),
        "{}",
        service.log()
    );
}

/// On the host's network the apps reach the service on 127.0.0.1.
#[test]
fn apps_on_the_host_network_use_the_loopback_address() {
    let rkt = setup();
    let _service = MetadataService::start(&rkt);
    let (out, uuid) = ns_sh(
        &rkt,
        &["--mds-register", "--net=host"],
        "echo URL=$AC_METADATA_URL; wget -q -O - $AC_METADATA_URL/acMetadata/v1/pod/uuid",
    );
    let out = out.expect_code(0);
    assert!(
        printed_url(&out).starts_with("http://127.0.0.1:18112/"),
        "{out}"
    );
    assert!(out.stdout.ends_with(&uuid), "{out}");
    // run-prepared registers too.
    let s1 = stage1_flag();
    let script = "wget -q -O - $AC_METADATA_URL/acMetadata/v1/pod/uuid";
    let prepared = rkt
        .ok(&[
            "prepare",
            "--quiet",
            &s1,
            BUSYBOX,
            "--exec=/bin/sh",
            "--",
            "-c",
            script,
        ])
        .stdout
        .trim()
        .to_string();
    let out = rkt.run(&["run-prepared", "--mds-register", "--net=host", &prepared]);
    assert_eq!(out.expect_code(0).stdout, prepared);
    rkt.ok(&["gc", "--grace-period=0s"]);
}

/// Without a running service, `--mds-register` is refused before any pod
/// is made, with rkt's pointer to the fix; with `--net=none`, or a stage1
/// that cannot register pods, it is refused outright.
#[test]
fn mds_register_needs_a_running_service_and_a_network() {
    let rkt = setup();
    let _turn = metadata::exclusive();
    assert!(
        !metadata::listening(),
        "a metadata service is running on this host"
    );
    let s1 = stage1_flag();
    for net in ["--net=default", "--net=host"] {
        rkt.run(&[
            "run",
            &s1,
            "--mds-register",
            net,
            BUSYBOX,
            "--exec=/bin/true",
        ])
        .expect_code(254)
        .expect_stderr("could not reach the metadata service")
        .expect_stderr("rkt metadata-service");
    }
    rkt.run(&[
        "run",
        &s1,
        "--mds-register",
        "--net=none",
        BUSYBOX,
        "--exec=/bin/true",
    ])
    .expect_code(254)
    .expect_stderr("--net=none");
    // A stage1 that cannot register pods says so first.
    let fly = format!(
        "--stage1-path={}",
        functional_tests::stage1_image("fly").display()
    );
    rkt.run(&[
        "run",
        &fly,
        "--mds-register",
        "--net=host",
        BUSYBOX,
        "--exec=/bin/true",
    ])
    .expect_code(254)
    .expect_stderr("cannot honour");
    assert_eq!(
        rkt.ok(&["list", "--no-legend"]).stdout,
        "",
        "no pod was made"
    );
}

/// Socket activation: systemd (here `systemd-socket-activate`, from
/// Debian's systemd) owns the registration socket and starts the service
/// on the first connection; the service leaves the socket in place.
#[test]
fn metadata_service_runs_socket_activated() {
    let rkt = Rkt::new();
    let _turn = metadata::exclusive();
    assert!(
        !metadata::listening(),
        "a metadata service is running on this host"
    );
    let _ = std::fs::remove_file(metadata::SOCKET);
    std::fs::create_dir_all("/run/rkt").unwrap();
    let mut activator = std::process::Command::new("systemd-socket-activate")
        .args(["-l", metadata::SOCKET, "--"])
        .arg(functional_tests::rkt_bin())
        .args(rkt.global_args())
        .arg("metadata-service")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("systemd-socket-activate (Debian's systemd package)");
    let up = functional_tests::pods::wait_until(Duration::from_secs(10), || {
        std::path::Path::new(metadata::SOCKET).exists()
    });
    assert!(
        up,
        "systemd-socket-activate did not create {}",
        metadata::SOCKET
    );
    let pod = rkt.root().join("pod.json");
    std::fs::write(
        &pod,
        r#"{"acVersion":"0.8.11","acKind":"PodManifest","apps":[]}"#,
    )
    .unwrap();
    let put = register(
        "PUT",
        &format!("/pods/{UUID}?token=activated0001"),
        Some(&pod),
    );
    assert_eq!(put.status, 200, "{put:?}");
    let up = functional_tests::pods::wait_until(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", PORT)).is_ok()
    });
    assert!(up, "the activated service does not listen on {PORT}");
    assert_answer(&get("activated0001", "/pod/uuid"), 200, TEXT, UUID);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(activator.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = activator.wait();
    assert!(
        std::path::Path::new(metadata::SOCKET).exists(),
        "the activated socket is systemd's to remove"
    );
    let _ = std::fs::remove_file(metadata::SOCKET);
}
