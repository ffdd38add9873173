//! Docker and OCI images: an OCI layout built with umoci, and a real
//! registry (Debian's docker-registry on 127.0.0.1, with token auth) that
//! skopeo pushes to. The five-layer test image has a whiteout, an opaque
//! directory, a user, a working directory, env, a volume and ports; the
//! pod shows that all of it arrived.

use std::path::Path;

use functional_tests::pods::ns_stage1_flag;
use functional_tests::registry::{build_five_layers, layout_blob, layout_image, Registry};
use functional_tests::{Out, Rkt};

/// What the image's /bin/app prints in the pod.
const APP_SAYS: &str = "app arg1 arg2 uid=1000 gid=1001 cwd=/data foo=bar\n";

fn stored_images(rkt: &Rkt) -> usize {
    rkt.ok(&["image", "list", "--no-legend", "--fields=id"])
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// The pod's output shows the merged layers and the applied config.
fn expect_app_output(out: Out) {
    let out = out.expect_code(0).expect_stdout(APP_SAYS);
    // Layer 4 made /data/old opaque (a and b are gone, c is there); layer
    // 3 deleted /etc/deleteme; layer 2 added /etc/hello.txt.
    assert!(out.stdout.contains("/data/old:\nc\n"), "{out}");
    assert!(out.stdout.contains("hello.txt"), "{out}");
    assert!(!out.stdout.contains("deleteme"), "{out}");
}

fn no_leftovers_in_store_tmp(rkt: &Rkt) {
    let tmp = rkt.dir.join("cas/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {tmp:?}: {left:?}");
}

#[test]
fn an_oci_layout_is_imported_with_its_layers_merged_and_config_applied() {
    let rkt = Rkt::new();
    let layout = rkt.root().join("img");
    build_five_layers(&layout, "v1");
    let (manifest_digest, config_digest, layers) = layout_image(&layout, "v1");
    assert_eq!(layers.len(), 5);
    let reference = format!("oci:{}:v1", layout.display());

    // Unsigned, as rkt said of docker images.
    rkt.run(&["fetch", &reference])
        .expect_code(254)
        .expect_stderr("--insecure-options=image");
    assert_eq!(stored_images(&rkt), 0);

    let key = rkt
        .ok(&["fetch", "--insecure-options=image", &reference])
        .stdout
        .trim()
        .to_string();
    assert!(key.starts_with("sha512-"), "{key}");
    rkt.ok(&["image", "list"]).expect_stdout("img:v1");
    let manifest: serde_json::Value =
        serde_json::from_str(&rkt.ok(&["image", "cat-manifest", &key]).stdout).unwrap();
    let app = &manifest["app"];
    assert_eq!(app["exec"], serde_json::json!(["/bin/app", "arg1", "arg2"]));
    assert_eq!(
        (app["user"].as_str(), app["group"].as_str()),
        (Some("app"), Some("1001"))
    );
    assert_eq!(app["workingDirectory"], "/data");
    assert_eq!(
        app["mountPoints"],
        serde_json::json!([{"name": "volume-data-vol", "path": "/data/vol"}])
    );
    let ports: Vec<&str> = app["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(ports, ["53-udp", "8080-tcp"]);
    let annotation = |name: &str| {
        manifest["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .map(|a| a["value"].as_str().unwrap().to_string())
    };
    assert_eq!(annotation("appc.io/docker/imageid").unwrap(), config_digest);
    assert_eq!(
        annotation("appc.io/docker/manifesthash").unwrap(),
        manifest_digest
    );
    assert_eq!(
        annotation("appc.io/docker/entrypoint").unwrap(),
        r#"["/bin/app"]"#
    );

    expect_app_output(rkt.run(&["run", &ns_stage1_flag(), &key]));

    // The layout's only image, by path: the same image.
    let again = rkt.ok(&[
        "fetch",
        "--insecure-options=image",
        layout.to_str().unwrap(),
    ]);
    assert_eq!(again.stdout.trim(), key);

    // Two tags: the layout alone is ambiguous; a missing tag is named.
    let tagged = std::process::Command::new("umoci")
        .args(["tag", "--image", &format!("{}:v1", layout.display()), "v2"])
        .status()
        .unwrap();
    assert!(tagged.success());
    rkt.run(&[
        "fetch",
        "--insecure-options=image",
        &format!("oci:{}", layout.display()),
    ])
    .expect_code(254)
    .expect_stderr("several images; name one with oci:DIR:TAG (tags: v1, v2)");
    rkt.run(&[
        "fetch",
        "--insecure-options=image",
        &format!("oci:{}:v9", layout.display()),
    ])
    .expect_code(254)
    .expect_stderr("no image tagged \"v9\"");

    // A corrupt layer (one byte changed): refused, nothing stored.
    let before = stored_images(&rkt);
    let top = layout_blob(&layout, &layers[4]);
    let mut bytes = std::fs::read(&top).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&top, bytes).unwrap();
    let out = rkt
        .run(&["fetch", "--insecure-options=image", &reference])
        .expect_code(254);
    assert!(
        out.stderr.contains("tampered") || out.stderr.contains("corrupt"),
        "{out}"
    );
    assert_eq!(stored_images(&rkt), before);
    no_leftovers_in_store_tmp(&rkt);
}

fn docker_auth(rkt: &Rkt, registry: &Registry, password: &str) {
    let dir = rkt.local_config.join("auth.d");
    std::fs::create_dir_all(&dir).unwrap();
    let (user, _) = Registry::credentials();
    std::fs::write(
        dir.join("registry.json"),
        serde_json::json!({
            "rktKind": "dockerAuth",
            "rktVersion": "v1",
            "registries": [registry.host()],
            "credentials": {"user": user, "password": password}
        })
        .to_string(),
    )
    .unwrap();
}

#[test]
fn a_registry_image_is_pulled_with_a_token_and_run() {
    let rkt = Rkt::new();
    let registry = Registry::start_with_token_auth(&rkt.root().join("registry"));
    let layout = rkt.root().join("img");
    build_five_layers(&layout, "v1");
    registry.push(&layout, "v1", "test/five:v1", false);
    let reference = registry.reference("test/five:v1");
    let insecure = "--insecure-options=image,http";

    // The registry is plain http: refused without consent.
    rkt.run(&["fetch", "--insecure-options=image", &reference])
        .expect_code(254)
        .expect_stderr("serves plain http, pass --insecure-options=http");
    // No credentials: the token service refuses, and the message says
    // where they go.
    rkt.run(&["fetch", insecure, &reference])
        .expect_code(254)
        .expect_stderr("refused access")
        .expect_stderr("dockerAuth");
    docker_auth(&rkt, &registry, "wrong");
    rkt.run(&["fetch", insecure, &reference])
        .expect_code(254)
        .expect_stderr("refused access");
    assert_eq!(stored_images(&rkt), 0);

    let (_, password) = Registry::credentials();
    docker_auth(&rkt, &registry, password);
    let key = rkt
        .ok(&["fetch", insecure, &reference])
        .stdout
        .trim()
        .to_string();
    assert!(key.starts_with("sha512-"), "{key}");
    assert!(
        registry
            .token_requests()
            .iter()
            .any(|r| r.contains("scope=repository%3Atest%2Ffive%3Apull") && r.ends_with("basic")),
        "{:?}",
        registry.token_requests()
    );
    let listed = rkt.ok(&["image", "list"]);
    assert!(
        listed
            .stdout
            .contains(&format!("127.0.0.1_{}/test/five:v1", registry.port)),
        "{listed}"
    );

    // The same manifest again: the stored image, by its digest.
    let again = rkt.ok(&["fetch", insecure, &reference]);
    assert_eq!(again.stdout.trim(), key);
    assert_eq!(stored_images(&rkt), 1);
    // The store only, for run's default policy and for `never`.
    let requests = registry.token_requests().len();
    expect_app_output(rkt.run(&["run", insecure, &ns_stage1_flag(), &reference]));
    assert_eq!(
        registry.token_requests().len(),
        requests,
        "run used the store"
    );
    rkt.run(&[
        "fetch",
        insecure,
        "--pull-policy=never",
        &registry.reference("test/five:v2"),
    ])
    .expect_code(254)
    .expect_stderr("--pull-policy=never");

    // Pinned by digest.
    let (digest, _, _) = layout_image(&layout, "v1");
    let pinned = registry.reference(&format!("test/five@{digest}"));
    rkt.ok(&["fetch", insecure, &pinned]);
}

/// An index with only an arm64 image, tagged `multi` in `layout`.
fn add_arm64_only_index(layout: &Path) {
    let (manifest, _, _) = layout_image(layout, "v1");
    let size = std::fs::metadata(layout_blob(layout, &manifest))
        .unwrap()
        .len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest, "size": size,
            "platform": {"architecture": "arm64", "os": "linux"}
        }]
    })
    .to_string();
    let digest = {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(index.as_bytes());
        format!(
            "sha256:{}",
            hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    std::fs::write(layout_blob(layout, &digest), &index).unwrap();
    let path = layout.join("index.json");
    let mut top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    top["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest, "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"}
        }));
    std::fs::write(&path, top.to_string()).unwrap();
}

#[test]
fn registry_bad_input_is_refused_and_nothing_is_stored() {
    let rkt = Rkt::new();
    let registry = Registry::start(&rkt.root().join("registry"));
    let layout = rkt.root().join("img");
    build_five_layers(&layout, "v1");
    add_arm64_only_index(&layout);
    registry.push(&layout, "v1", "test/five:v1", false);
    registry.push(&layout, "multi", "test/multi:v1", true);
    let insecure = "--insecure-options=image,http";

    // A manifest list without linux/amd64, from the registry and the layout.
    rkt.run(&["fetch", insecure, &registry.reference("test/multi:v1")])
        .expect_code(254)
        .expect_stderr("has no image for linux/amd64 (it has linux/arm64)");
    rkt.run(&[
        "fetch",
        "--insecure-options=image",
        &format!("oci:{}:multi", layout.display()),
    ])
    .expect_code(254)
    .expect_stderr("has no image for linux/amd64 (it has linux/arm64)");
    // An unknown tag: the registry's own words.
    rkt.run(&["fetch", insecure, &registry.reference("test/five:nope")])
        .expect_code(254)
        .expect_stderr("MANIFEST_UNKNOWN");

    // A layer the registry serves with one byte changed, then with bytes
    // added (a server that sends more than the manifest says).
    let (_, _, layers) = layout_image(&layout, "v1");
    let stored = registry.blob_path(&layers[0]);
    let original = std::fs::read(&stored).unwrap();
    let mut changed = original.clone();
    changed[original.len() / 2] ^= 0xff;
    std::fs::write(&stored, &changed).unwrap();
    rkt.run(&["fetch", insecure, &registry.reference("test/five:v1")])
        .expect_code(254)
        .expect_stderr(&format!("not {}", layers[0]));
    let mut longer = original.clone();
    longer.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&stored, &longer).unwrap();
    rkt.run(&["fetch", insecure, &registry.reference("test/five:v1")])
        .expect_code(254)
        .expect_stderr("more than the");
    assert_eq!(stored_images(&rkt), 0);
    no_leftovers_in_store_tmp(&rkt);

    // Put right, the same reference works.
    std::fs::write(&stored, &original).unwrap();
    rkt.ok(&["fetch", insecure, &registry.reference("test/five:v1")]);
    assert_eq!(stored_images(&rkt), 1);
}
