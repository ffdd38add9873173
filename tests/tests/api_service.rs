//! `rkt api-service` driven by a client nobody here wrote: Python's grpcio
//! with stubs generated from the shipped .proto by grpcio-tools.

use serde_json::{json, Value};

use functional_tests::api::ApiService;
use functional_tests::pods::ns_stage1_flag as stage1_flag;
use functional_tests::pods::{ns_sh, rkt_with_test_images as setup, BgPod};
use functional_tests::Rkt;

const BUSYBOX: &str = "example.com/busybox";

fn ids(pods: &Value) -> Vec<String> {
    let mut v: Vec<String> = pods["pods"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn pod<'a>(answer: &'a Value, uuid: &str) -> &'a Value {
    answer["pods"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["id"] == uuid))
        .unwrap_or_else(|| panic!("pod {uuid} not in {answer}"))
}

fn error(answer: &Value) -> &str {
    answer["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {answer}"))
}

/// Pods in three states, every ListPods filter kind (AND within a filter,
/// OR across), summary and detail, InspectPod, GetInfo, the images and
/// GetLogs without journald; nonsense gets INVALID_ARGUMENT or NOT_FOUND.
#[test]
fn api_service_answers_an_independent_client() {
    let rkt = setup();
    let s1 = stage1_flag();
    // Exited, with output and an exit code.
    let (out, exited) = ns_sh(&rkt, &["--net=none"], "echo hello-from-the-api; exit 3");
    out.expect_code(3);
    // Prepared, with annotations, from a pod manifest.
    let busybox_id = rkt.fetch(&functional_tests::image("busybox.aci"));
    let pm = rkt.root().join("pod.json");
    std::fs::write(
        &pm,
        json!({
            "acVersion": "0.8.11", "acKind": "PodManifest",
            "apps": [{"name": "annotated", "image": {"name": BUSYBOX, "id": busybox_id},
                      "app": {"exec": ["/bin/true"], "user": "0", "group": "0"}}],
            "annotations": [{"name": "team", "value": "blue"}]
        })
        .to_string(),
    )
    .unwrap();
    let prepared = rkt
        .ok(&[
            "prepare",
            "--quiet",
            &s1,
            &format!("--pod-manifest={}", pm.display()),
        ])
        .stdout
        .trim()
        .to_string();
    // Running, on the default network.
    let running = BgPod::start(
        &rkt,
        &[
            &s1,
            "--net=default",
            BUSYBOX,
            "--exec=/bin/sleep",
            "--",
            "600",
        ],
    );
    let running_id = running.uuid.clone();

    let api = ApiService::start(&rkt);
    let info = api.call("GetInfo", &json!({}));
    assert_eq!(info["info"]["api_version"], "1.0.0-alpha", "{info}");
    assert_eq!(info["info"]["appc_version"], "0.8.11");
    assert_eq!(
        info["info"]["global_flags"]["dir"],
        rkt.dir.canonicalize().unwrap().display().to_string()
    );

    // Summary: every pod, no manifests.
    let all = api.call("ListPods", &json!({}));
    assert_eq!(
        ids(&all),
        sorted(vec![exited.clone(), prepared.clone(), running_id.clone()]),
        "{all}"
    );
    assert_eq!(pod(&all, &exited)["state"], "POD_STATE_EXITED");
    assert_eq!(pod(&all, &prepared)["state"], "POD_STATE_PREPARED");
    assert!(
        pod(&all, &exited).get("manifest").is_none(),
        "no manifest in a summary"
    );
    assert_eq!(
        pod(&all, &prepared)["annotations"],
        json!([{"Key": "team", "value": "blue"}])
    );
    // Detail: manifests, app states and exit codes, whole images.
    let detail = api.call("ListPods", &json!({"detail": true}));
    let e = pod(&detail, &exited);
    assert!(e["manifest"].is_string(), "{e}");
    assert_eq!(e["apps"][0]["state"], "APP_STATE_EXITED", "{e}");
    assert_eq!(e["apps"][0]["exit_code"], 3, "{e}");
    assert_eq!(e["apps"][0]["image"]["name"], BUSYBOX, "{e}");
    let r = pod(&detail, &running_id);
    assert_eq!(r["state"], "POD_STATE_RUNNING");
    assert!(r["pid"].as_i64().unwrap_or(0) > 0, "{r}");
    assert!(
        r["cgroup"].as_str().unwrap_or("").contains(&running_id),
        "{r}"
    );
    assert_eq!(r["networks"][0]["name"], "default", "{r}");
    assert!(
        r["networks"][0]["ipv4"]
            .as_str()
            .unwrap_or("")
            .starts_with("172.16.28."),
        "{r}"
    );
    assert_eq!(r["apps"][0]["state"], "APP_STATE_RUNNING", "{r}");

    // Filters: conditions AND within a filter, filters OR.
    let list = |filters: Value| ids(&api.call("ListPods", &json!({"filters": filters})));
    assert_eq!(
        list(json!([{"states": ["POD_STATE_RUNNING"]}])),
        vec![running_id.clone()]
    );
    assert_eq!(
        list(json!([{"annotations": [{"Key": "team", "value": "blue"}]}])),
        vec![prepared.clone()]
    );
    assert_eq!(
        list(json!([{"network_names": ["default"]}])),
        vec![running_id.clone()]
    );
    assert_eq!(
        list(json!([{"app_names": ["annotated"]}])),
        vec![prepared.clone()]
    );
    assert_eq!(
        list(json!([{"image_ids": [busybox_id.clone()], "states": ["POD_STATE_EXITED"]}])),
        vec![exited.clone()]
    );
    assert_eq!(
        list(json!([{"states": ["POD_STATE_EXITED"], "ids": [running_id.clone()]}])),
        Vec::<String>::new(),
        "AND"
    );
    assert_eq!(
        list(json!([{"ids": [exited.clone()]}, {"ids": [prepared.clone()]}])),
        sorted(vec![exited.clone(), prepared.clone()]),
        "OR"
    );
    let cgroup = r["cgroup"].as_str().unwrap().to_string();
    assert_eq!(
        list(json!([{"pod_sub_cgroups": [format!("{cgroup}/sleep")]}])),
        vec![running_id.clone()]
    );
    assert_eq!(
        list(json!([{"cgroups": [cgroup]}])),
        vec![running_id.clone()]
    );
    let nonsense = api.call("ListPods", &json!({"filters": [{"states": [42]}]}));
    assert_eq!(error(&nonsense), "INVALID_ARGUMENT", "{nonsense}");

    // InspectPod.
    let inspected = api.call("InspectPod", &json!({"id": exited}));
    assert_eq!(inspected["pod"]["apps"][0]["exit_code"], 3);
    assert_eq!(
        error(&api.call(
            "InspectPod",
            &json!({"id": "0f6ba1c2-33d4-4e5f-8a9b-0c1d2e3f4a5b"})
        )),
        "NOT_FOUND"
    );
    assert_eq!(
        error(&api.call("InspectPod", &json!({"id": "../../etc"}))),
        "INVALID_ARGUMENT"
    );

    // Images and their filters.
    let images = |filters: Value| -> Vec<String> {
        let a = api.call("ListImages", &json!({"filters": filters}));
        let mut v: Vec<String> = a["images"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    assert!(images(json!([])).contains(&BUSYBOX.to_string()));
    assert_eq!(images(json!([{"base_names": ["busybox"]}])), vec![BUSYBOX]);
    assert_eq!(images(json!([{"full_names": [BUSYBOX]}])), vec![BUSYBOX]);
    assert_eq!(images(json!([{"keywords": ["busy"]}])), vec![BUSYBOX]);
    assert_eq!(
        images(json!([{"prefixes": ["example.com/b"]}])),
        vec![BUSYBOX]
    );
    assert_eq!(images(json!([{"ids": [&busybox_id[..20]]}])), vec![BUSYBOX]);
    assert_eq!(
        images(json!([{"base_names": ["busybox"], "imported_after": "4102444800"}])),
        Vec::<String>::new()
    );
    assert_eq!(
        images(json!([{"labels": [{"Key": "os", "value": "linux"}], "base_names": ["busybox"]}])),
        vec![BUSYBOX]
    );
    let image = api.call("InspectImage", &json!({"id": busybox_id}));
    assert_eq!(image["image"]["name"], BUSYBOX);
    assert_eq!(image["image"]["base_format"]["type"], "IMAGE_TYPE_APPC");
    assert!(
        image["image"]["manifest"].is_string(),
        "detail has the manifest"
    );
    assert_eq!(
        error(&api.call("InspectImage", &json!({"id": "sha512-0000000000"}))),
        "NOT_FOUND"
    );

    // GetLogs, from the app's log file (no journald here).
    let logs = api
        .stream("GetLogs", &json!({"pod_id": exited}), None)
        .responses();
    let text = logs.iter().map(Value::to_string).collect::<String>();
    assert!(text.contains("hello-from-the-api"), "{logs:?}");
    let no_app = api.call("GetLogs", &json!({"pod_id": exited, "app_name": "nope"}));
    assert_eq!(error(&no_app), "NOT_FOUND", "{no_app}");
    let gone = api.call(
        "GetLogs",
        &json!({"pod_id": "0f6ba1c2-33d4-4e5f-8a9b-0c1d2e3f4a5b"}),
    );
    assert_eq!(error(&gone), "NOT_FOUND", "{gone}");
    let bad = api.call("InspectPod", &json!({"id": ""}));
    assert_eq!(error(&bad), "INVALID_ARGUMENT");

    drop(running);
    rkt.ok(&["gc", "--grace-period=0s"]);
}

/// ListenEvents streams what happens after the call: a pod's whole life,
/// its app's start and exit (with the code), its garbage collection.
#[test]
fn listen_events_streams_a_pods_life() {
    let rkt = setup();
    let api = ApiService::start(&rkt);
    let nonsense = api.call("ListenEvents", &json!({"filter": {"types": [77]}}));
    assert_eq!(error(&nonsense), "INVALID_ARGUMENT", "{nonsense}");
    let mut stream = api.stream("ListenEvents", &json!({}), Some("EVENT_TYPE_IMAGE_REMOVED"));
    let (out, uuid) = ns_sh(&rkt, &["--net=none"], "sleep 1; exit 7");
    out.expect_code(7);
    let has = |kind: &'static str| {
        let uuid = uuid.clone();
        move |r: &Value| {
            r["events"].as_array().is_some_and(|es| {
                es.iter()
                    .any(|e| e["type"] == kind && e["id"] == uuid.as_str())
            })
        }
    };
    // The exit is seen while the pod is still there, then the collection.
    let mut responses = stream.read_until(has("EVENT_TYPE_POD_EXITED"));
    rkt.ok(&["gc", "--grace-period=0s"]);
    let uuid_gone = uuid.clone();
    responses.extend(stream.read_until(move |r: &Value| {
        r["events"].as_array().is_some_and(|es| {
            es.iter().any(|e| {
                e["type"] == "EVENT_TYPE_POD_GARBAGE_COLLECTED" && e["id"] == uuid_gone.as_str()
            })
        })
    }));
    // An image comes and goes.
    let aci = annotated_image(&rkt);
    let image_id = rkt.fetch(&aci);
    responses.extend(stream.read_until(|r: &Value| {
        r["events"]
            .as_array()
            .is_some_and(|es| es.iter().any(|e| e["type"] == "EVENT_TYPE_IMAGE_IMPORTED"))
    }));
    rkt.ok(&["image", "rm", &image_id]);
    responses.extend(stream.responses());
    let image_events: Vec<(String, String)> = responses
        .iter()
        .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["id"] == image_id.as_str())
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["from"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        image_events,
        vec![
            (
                "EVENT_TYPE_IMAGE_IMPORTED".to_string(),
                "example.com/annotated".to_string()
            ),
            (
                "EVENT_TYPE_IMAGE_REMOVED".to_string(),
                "example.com/annotated".to_string()
            ),
        ]
    );
    let events: Vec<Value> = responses
        .iter()
        .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["id"] == uuid.as_str())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in [
        "EVENT_TYPE_POD_PREPARED",
        "EVENT_TYPE_POD_STARTED",
        "EVENT_TYPE_APP_EXITED",
        "EVENT_TYPE_POD_EXITED",
        "EVENT_TYPE_POD_GARBAGE_COLLECTED",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {events:?}");
    }
    let exited = events
        .iter()
        .find(|e| e["type"] == "EVENT_TYPE_APP_EXITED")
        .unwrap();
    assert_eq!(exited["from"], "busybox");
    assert_eq!(exited["data"], json!([{"Key": "exit_code", "value": "7"}]));
    let order = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
    assert!(order("EVENT_TYPE_POD_STARTED") < order("EVENT_TYPE_POD_EXITED"));
    assert!(order("EVENT_TYPE_POD_EXITED") < order("EVENT_TYPE_POD_GARBAGE_COLLECTED"));
}

/// An image with annotations, named example.com/annotated.
fn annotated_image(rkt: &Rkt) -> std::path::PathBuf {
    let mut manifest = functional_tests::fixtures::app_manifest("example.com/annotated", "2.0");
    manifest.annotations = vec![abi::schema::Annotation {
        name: abi::schema::AcIdentifier::new("tier").unwrap(),
        value: "gold".into(),
    }];
    functional_tests::fixtures::build_aci(rkt, "annotated.aci", manifest, &[("hello", b"hi")])
}

/// The image filters not covered above: annotations, and the import-time
/// window on both sides.
#[test]
fn image_filters_on_annotations_and_import_time() {
    let rkt = setup();
    let id = rkt.fetch(&annotated_image(&rkt));
    let api = ApiService::start(&rkt);
    let names = |filters: Value| -> Vec<String> {
        let a = api.call("ListImages", &json!({"filters": filters}));
        let mut v: Vec<String> = a["images"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let annotated = vec!["example.com/annotated".to_string()];
    assert_eq!(
        names(json!([{"annotations": [{"Key": "tier", "value": "gold"}]}])),
        annotated
    );
    assert!(names(json!([{"annotations": [{"Key": "tier", "value": "silver"}]}])).is_empty());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let window = |after: i64, before: i64| {
        names(
            json!([{"ids": [id.clone()], "imported_after": after.to_string(), "imported_before": before.to_string()}]),
        )
    };
    assert_eq!(window(now - 3600, now + 3600), annotated);
    assert!(
        window(now + 3600, now + 7200).is_empty(),
        "imported_after in the future"
    );
    assert!(
        window(now - 7200, now - 3600).is_empty(),
        "imported_before in the past"
    );
    let image = api.call("InspectImage", &json!({"id": id}));
    assert_eq!(
        image["image"]["annotations"],
        json!([{"Key": "tier", "value": "gold"}])
    );
    assert_eq!(image["image"]["version"], "2.0");
}

/// `--listen` and socket activation exclude each other, as in rkt.
#[test]
fn api_service_refuses_listen_with_socket_activation() {
    let rkt = Rkt::new();
    let out = rkt
        .command()
        .args(["api-service", "--listen=127.0.0.1:1"])
        .env("LISTEN_FDS", "1")
        .output()
        .unwrap();
    let out = functional_tests::Out::from_output(out);
    out.expect_code(254).expect_stderr("socket activation");
}

/// Socket activation: the service serves the socket systemd passes it.
#[test]
fn api_service_runs_socket_activated() {
    let rkt = setup();
    let api = ApiService::start_socket_activated(&rkt);
    let info = api.call("GetInfo", &json!({}));
    assert_eq!(info["info"]["api_version"], "1.0.0-alpha", "{info}");
    let images = api.call(
        "ListImages",
        &json!({"filters": [{"base_names": ["busybox"]}]}),
    );
    assert_eq!(images["images"][0]["name"], BUSYBOX, "{images}");
}

/// A followed GetLogs stream ends when the pod stops, with every line.
#[test]
fn get_logs_follow_ends_when_the_pod_stops() {
    let rkt = setup();
    let s1 = stage1_flag();
    let pod = BgPod::start(
        &rkt,
        &[
            &s1,
            "--net=none",
            BUSYBOX,
            "--exec=/bin/sh",
            "--",
            "-c",
            "echo first-line; sleep 2; echo last-line",
        ],
    );
    let api = ApiService::start(&rkt);
    let started = std::time::Instant::now();
    let lines: Vec<String> = api
        .stream(
            "GetLogs",
            &json!({"pod_id": pod.uuid, "follow": true}),
            None,
        )
        .responses()
        .iter()
        .flat_map(|r| r["lines"].as_array().cloned().unwrap_or_default())
        .map(|l| l.as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        lines.iter().any(|l| l.ends_with("busybox: first-line")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with("busybox: last-line")),
        "{lines:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the stream outlived the pod"
    );
    drop(pod);
    rkt.ok(&["gc", "--grace-period=0s"]);
}
