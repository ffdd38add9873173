//! rkt's group layout: a data directory rkt creates on a host with a `rkt`
//! group is `root:rkt` 2750, and members of the group (not root) list and
//! inspect pods and images and run the API service, read-only; everyone
//! else, and every command that changes something, is refused clearly.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde_json::json;

use functional_tests::api::ApiService;
use functional_tests::pods::{fetch_test_images, ns_sh};
use functional_tests::Rkt;

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;
const BUSYBOX: &str = "example.com/busybox";

/// The `rkt` group's id (`make test-setup` creates the group, as rkt's
/// packages did).
fn rkt_gid() -> u32 {
    nix::unistd::Group::from_name("rkt")
        .unwrap()
        .expect("no `rkt` group on this host; `make test-setup` creates it")
        .gid
        .as_raw()
}

/// A test environment whose data directory rkt itself creates, under a
/// root directory other users may traverse; one exited pod (exit 3) in it.
fn data_dir_made_by_rkt() -> (Rkt, String) {
    let rkt = Rkt::new();
    std::fs::remove_dir(&rkt.dir).unwrap();
    std::fs::set_permissions(rkt.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    fetch_test_images(&rkt);
    let (out, uuid) = ns_sh(&rkt, &["--net=none"], "echo from-the-pod; exit 3");
    out.expect_code(3);
    (rkt, uuid)
}

#[test]
fn members_of_the_rkt_group_read_pods_and_images_and_change_nothing() {
    let gid = rkt_gid();
    let (rkt, uuid) = data_dir_made_by_rkt();
    let meta = std::fs::metadata(&rkt.dir).unwrap();
    assert_eq!(meta.gid(), gid, "the data dir's group");
    assert_eq!(meta.mode() & 0o7777, 0o2750, "the data dir's mode");
    let pods = std::fs::metadata(rkt.dir.join("pods/run")).unwrap();
    assert_eq!(pods.gid(), gid, "pods/run inherits the group");

    let member = |args: &[&str]| rkt.run_as(NOBODY, gid, args);
    member(&["list", "--full", "--no-legend"])
        .expect_code(0)
        .expect_stdout(&uuid)
        .expect_stdout("exited");
    member(&["status", &uuid])
        .expect_code(0)
        .expect_stdout("state=exited")
        .expect_stdout("app-busybox=3");
    member(&["cat-manifest", &uuid])
        .expect_code(0)
        .expect_stdout("\"PodManifest\"");
    member(&["image", "list", "--no-legend"])
        .expect_code(0)
        .expect_stdout(BUSYBOX);
    member(&["image", "cat-manifest", BUSYBOX])
        .expect_code(0)
        .expect_stdout("\"ImageManifest\"");
    let out_dir = rkt.root().join("member-out");
    std::fs::create_dir(&out_dir).unwrap();
    nix::unistd::chown(&out_dir, Some(nix::unistd::Uid::from_raw(NOBODY)), None).unwrap();
    let exported = out_dir.join("busybox.aci");
    member(&["image", "export", BUSYBOX, exported.to_str().unwrap()]).expect_code(0);
    assert_eq!(
        functional_tests::sha512_file(&exported),
        functional_tests::sha512_file(&functional_tests::image("busybox.aci")),
        "the export is the imported ACI"
    );

    // Changing anything stays root's.
    for args in [
        vec!["run", "--insecure-options=image", BUSYBOX],
        vec!["gc", "--grace-period=0s"],
        vec!["rm", uuid.as_str()],
    ] {
        member(&args)
            .expect_code(254)
            .expect_stderr("cannot run as unprivileged user");
    }
    member(&["image", "rm", BUSYBOX]).expect_code(254);
    rkt.ok(&["image", "list", "--no-legend"])
        .expect_stdout(BUSYBOX);
    rkt.ok(&["status", &uuid]).expect_stdout("app-busybox=3");

    // Outside the group: refused with the fix named.
    let outsider = |args: &[&str]| rkt.run_as(NOBODY, NOGROUP, args);
    outsider(&["list"])
        .expect_code(254)
        .expect_stderr("member of the data directory's group");
    outsider(&["image", "list"])
        .expect_code(254)
        .expect_stderr("member of the data directory's group");
}

#[test]
fn the_api_service_runs_as_a_member_of_the_rkt_group() {
    let gid = rkt_gid();
    let (rkt, uuid) = data_dir_made_by_rkt();
    let api = ApiService::start_as(&rkt, NOBODY, gid);

    let pods = api.call("ListPods", &json!({"detail": true}));
    let pod = pods["pods"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["id"] == uuid.as_str()))
        .unwrap_or_else(|| panic!("pod {uuid} not listed: {pods}"));
    assert_eq!(pod["state"], "POD_STATE_EXITED", "{pod}");
    assert_eq!(pod["apps"][0]["exit_code"], 3, "{pod}");
    let one = api.call("InspectPod", &json!({"id": uuid}));
    assert_eq!(one["pod"]["id"], uuid.as_str(), "{one}");

    let images = api.call("ListImages", &json!({"detail": true}));
    assert!(
        images["images"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["name"] == BUSYBOX)),
        "{images}"
    );

    // The service as someone outside the group says why pods are refused.
    let outsider = ApiService::start_as(&rkt, NOBODY, NOGROUP);
    let refused = outsider.call("ListPods", &json!({}));
    let error = refused["error"].as_str().unwrap_or_default();
    assert_eq!(error, "PERMISSION_DENIED", "{refused}");
    assert!(
        refused["details"]
            .as_str()
            .is_some_and(|d| d.contains("member of the data directory's group")),
        "{refused}"
    );
}
