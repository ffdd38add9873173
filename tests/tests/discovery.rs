//! appc meta discovery against a test "host": a network namespace where
//! example.com is an HTTPS server (the test's own CA) on 127.0.0.1:443. A
//! name becomes URLs through `ac-discovery` templates (found at a parent
//! prefix), keys come from `ac-discovery-pubkeys`, and the downloaded image
//! must be the one asked for.

use std::path::{Path, PathBuf};

use functional_tests::gpg::{Gpg, Key};
use functional_tests::http::signer_and_ca as setup;
use functional_tests::http::Host;
use functional_tests::image;

const TEMPLATE: &str = "https://example.com/images/{name}-{version}-{os}-{arch}.{ext}";

/// The host's files: discovery tags at the root (so `example.com/busybox`
/// finds them at its parent prefix), busybox as `latest` and `1.35.0`,
/// each signed by `key`, and the key at /keys/signer.asc.
fn website(root: &Path, gpg: &Gpg, key: &Key, template: &str) -> PathBuf {
    let www = root.join("www");
    let images = www.join("images/example.com");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(www.join("keys")).unwrap();
    std::fs::write(
        www.join("index.html"),
        format!(
            "<html><head>\n<meta name=\"ac-discovery\" content=\"example.com {template}\">\n\
             <meta name=\"ac-discovery-pubkeys\" content=\"example.com https://example.com/keys/signer.asc\">\n\
             </head></html>\n"
        ),
    )
    .unwrap();
    for version in ["latest", "1.35.0"] {
        let aci = images.join(format!("busybox-{version}-linux-amd64.aci"));
        std::fs::copy(image("busybox.aci"), &aci).unwrap();
        gpg.sign(key, &aci, &aci.with_extension("aci.asc"), None);
    }
    gpg.export(key, &www.join("keys/signer.asc"));
    www
}

#[test]
fn a_name_is_discovered_fetched_and_verified() {
    let (rkt, gpg, key, ca) = setup();
    let www = website(rkt.root(), &gpg, &key, TEMPLATE);
    let host = Host::start(&www, &ca);

    // Found, but signed by a key nobody trusts yet.
    host.rkt(&rkt, &ca, &["fetch", "example.com/busybox"])
        .expect_code(254)
        .expect_stderr("searching for app image example.com/busybox")
        .expect_stderr(&key.fingerprint);

    // `rkt trust --prefix` without key files discovers the prefix's keys.
    host.rkt(
        &rkt,
        &ca,
        &[
            "trust",
            "--prefix=example.com/busybox",
            "--skip-fingerprint-review",
        ],
    )
    .expect_code(0)
    .expect_stdout("Key: \"https://example.com/keys/signer.asc\"")
    .expect_stdout("Added key for prefix \"example.com/busybox\"");

    host.server().clear_requests();
    host.rkt(&rkt, &ca, &["fetch", "example.com/busybox:1.35.0"])
        .expect_code(0)
        .expect_stderr("signature verified:");
    let requests = host.server().requests();
    for expected in [
        "GET /busybox?ac-discovery=1 404",
        "GET /?ac-discovery=1 200",
        "GET /images/example.com/busybox-1.35.0-linux-amd64.aci.asc 200",
        "GET /images/example.com/busybox-1.35.0-linux-amd64.aci 200",
    ] {
        assert!(
            requests.contains(&expected.to_string()),
            "{expected} not in {requests:?}"
        );
    }
    let listed = rkt.ok(&["image", "list", "--no-legend"]).stdout;
    assert!(listed.contains("example.com/busybox"), "{listed}");

    // A version nobody serves: discovery finds URLs, the server has nothing.
    host.rkt(&rkt, &ca, &["fetch", "example.com/busybox:9.9"])
        .expect_code(254)
        .expect_stderr("404");
}

#[test]
fn trust_keys_from_https_trusts_what_discovery_offers() {
    let (rkt, gpg, key, ca) = setup();
    let www = website(rkt.root(), &gpg, &key, TEMPLATE);
    let host = Host::start(&www, &ca);
    host.rkt(
        &rkt,
        &ca,
        &["--trust-keys-from-https", "fetch", "example.com/busybox"],
    )
    .expect_code(0)
    .expect_stderr("--trust-keys-from-https")
    .expect_stderr("signature verified:");
    assert!(rkt
        .local_config
        .join("trustedkeys/prefix.d/example.com/busybox")
        .join(&key.fingerprint)
        .is_file());
}

#[test]
fn discovery_refuses_wrong_images_and_pages_without_tags() {
    let (rkt, gpg, key, ca) = setup();
    // The template serves the inspect image under busybox's name.
    let www = website(rkt.root(), &gpg, &key, TEMPLATE);
    let wrong = www.join("images/example.com/busybox-latest-linux-amd64.aci");
    std::fs::copy(image("inspect.aci"), &wrong).unwrap();
    gpg.sign(&key, &wrong, &wrong.with_extension("aci.asc"), None);
    let host = Host::start(&www, &ca);
    host.rkt(
        &rkt,
        &ca,
        &["--insecure-options=image", "fetch", "example.com/busybox"],
    )
    .expect_code(254)
    .expect_stderr("not the requested example.com/busybox");

    // A page without tags, at every prefix.
    std::fs::write(www.join("index.html"), "<html><head></head></html>\n").unwrap();
    host.rkt(
        &rkt,
        &ca,
        &["--insecure-options=image", "fetch", "example.com/busybox"],
    )
    .expect_code(254)
    .expect_stderr("found no image URLs")
    .expect_stderr("example.com: no matching meta tags");

    let listed = rkt.ok(&["image", "list", "--no-legend"]).stdout;
    assert!(!listed.contains("example.com/busybox"), "{listed}");
}

#[test]
fn dependencies_are_discovered_and_checked_by_image_id() {
    use functional_tests::fixtures::{app_manifest, build_aci};
    let (rkt, gpg, key, ca) = setup();
    let www = website(rkt.root(), &gpg, &key, TEMPLATE);
    let key_file = gpg.export(&key, &rkt.root().join("signer.asc"));
    rkt.ok(&[
        "trust",
        "--prefix=example.com",
        "--skip-fingerprint-review",
        key_file.to_str().unwrap(),
    ]);
    // example.com/app 2.0.0 is built on busybox 1.35.0 (by name and
    // labels); example.com/bad on an image ID nobody serves.
    let serve = |name: &str, dep: serde_json::Value| {
        let mut m = app_manifest(&format!("example.com/{name}"), "2.0.0");
        m.dependencies = vec![serde_json::from_value(dep).unwrap()];
        let built = build_aci(&rkt, &format!("{name}.aci"), m, &[("app/file", b"app\n")]);
        let served = www.join(format!("images/example.com/{name}-2.0.0-linux-amd64.aci"));
        std::fs::copy(&built, &served).unwrap();
        gpg.sign(&key, &served, &served.with_extension("aci.asc"), None);
    };
    serve(
        "app",
        serde_json::json!({"imageName": "example.com/busybox",
                           "labels": [{"name": "version", "value": "1.35.0"}]}),
    );
    serve(
        "bad",
        serde_json::json!({"imageName": "example.com/busybox",
                           "imageID": format!("sha512-{}", "0".repeat(64)),
                           "labels": [{"name": "version", "value": "1.35.0"}]}),
    );
    let host = Host::start(&www, &ca);

    host.rkt(&rkt, &ca, &["fetch", "example.com/app:2.0.0"])
        .expect_code(0)
        .expect_stderr("searching for app image example.com/busybox:1.35.0");
    let listed = rkt.ok(&["image", "list", "--no-legend"]).stdout;
    assert!(listed.contains("example.com/app"), "{listed}");
    assert!(listed.contains("example.com/busybox"), "{listed}");

    host.rkt(&rkt, &ca, &["fetch", "example.com/bad:2.0.0"])
        .expect_code(254)
        .expect_stderr("requires image ID sha512-0000");
}
