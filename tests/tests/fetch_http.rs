//! Fetching images by URL from a local HTTPS server with a CA of the test's
//! own (trusted through `SSL_CERT_FILE`): signatures from `.aci.asc` beside
//! the image, rkt's HTTP cache (ETag, Cache-Control max-age) and pull
//! policies, and the refusals: untrusted certificates, plain http, missing
//! signatures, redirect loops, endless bodies.

use std::path::PathBuf;

use functional_tests::gpg::{Gpg, Key};
use functional_tests::http::signer_and_ca as setup;
use functional_tests::http::{HttpServer, TestCa};
use functional_tests::{image, Out, Rkt};

const NAME: &str = "example.com/busybox";

/// A served directory with busybox.aci, its signature by `key`, and the
/// key trusted for example.com in `rkt`.
fn served(rkt: &Rkt, gpg: &Gpg, key: &Key) -> PathBuf {
    let www = rkt.root().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let aci = www.join("busybox.aci");
    std::fs::copy(image("busybox.aci"), &aci).unwrap();
    gpg.sign(key, &aci, &www.join("busybox.aci.asc"), None);
    let key_file = gpg.export(key, &rkt.root().join("signer.asc"));
    rkt.ok(&[
        "trust",
        "--prefix=example.com",
        "--skip-fingerprint-review",
        key_file.to_str().unwrap(),
    ]);
    www
}

/// rkt with `SSL_CERT_FILE` pointing at the test CA.
fn rkt_with_ca(rkt: &Rkt, ca: &TestCa, args: &[&str]) -> Out {
    let out = rkt
        .command()
        .env("SSL_CERT_FILE", &ca.ca_pem)
        .args(args)
        .output()
        .unwrap();
    Out::from_output(out)
}

fn gets(server: &HttpServer) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET "))
        .collect()
}

#[test]
fn a_signed_image_is_fetched_over_https_and_cached() {
    let (rkt, gpg, key, ca) = setup();
    let www = served(&rkt, &gpg, &key);
    let server = HttpServer::start(&www, Some(&ca));
    let url = server.url("busybox.aci");

    let out = rkt_with_ca(&rkt, &ca, &["fetch", "--full", &url]).expect_code(0);
    let fetched = out.stdout.trim().to_string();
    out.expect_stderr("signature verified:")
        .expect_stderr("Test Signer <signer@example.com>");
    assert_eq!(
        gets(&server),
        ["GET /busybox.aci.asc 200", "GET /busybox.aci 200"],
        "the signature, then the image"
    );
    assert_eq!(fetched, rkt.fetch(&image("busybox.aci")), "the same image");

    // `fetch` (pull policy update) asks again, with the ETag: 304, same key.
    server.clear_requests();
    let again = rkt_with_ca(&rkt, &ca, &["fetch", "--full", &url]).expect_code(0);
    assert_eq!(again.stdout.trim(), fetched);
    assert!(
        gets(&server).contains(&"GET /busybox.aci 304".to_string()),
        "{:?}",
        gets(&server)
    );

    // `run` (pull policy new) takes the stored image without asking.
    server.clear_requests();
    let stage1 = functional_tests::pods::ns_stage1_flag();
    rkt_with_ca(
        &rkt,
        &ca,
        &[
            "run",
            &stage1,
            &url,
            "--exec=/bin/sh",
            "--",
            "-c",
            "echo from-https",
        ],
    )
    .expect_code(0)
    .expect_stdout("from-https");
    assert!(gets(&server).is_empty(), "{:?}", gets(&server));

    // With Cache-Control: max-age, a fetch within it does not ask at all.
    std::fs::write(
        www.join("busybox.aci.headers"),
        "Cache-Control: max-age=3600\n",
    )
    .unwrap();
    rkt_with_ca(&rkt, &ca, &["fetch", &url]).expect_code(0);
    server.clear_requests();
    rkt_with_ca(&rkt, &ca, &["fetch", &url]).expect_code(0);
    assert!(gets(&server).is_empty(), "{:?}", gets(&server));

    // After `image rm`, never means never.
    rkt.ok(&["image", "rm", NAME]);
    rkt_with_ca(&rkt, &ca, &["fetch", "--pull-policy=never", &url])
        .expect_code(254)
        .expect_stderr("--pull-policy=never");
}

#[test]
fn certificates_and_plain_http_need_explicit_consent() {
    let (rkt, gpg, key, ca) = setup();
    let www = served(&rkt, &gpg, &key);
    let server = HttpServer::start(&www, Some(&ca));
    let url = server.url("busybox.aci");

    // The host's CAs do not know the test CA.
    rkt.run(&["fetch", &url])
        .expect_code(254)
        .expect_stderr("TLS")
        .expect_stderr("--insecure-options=tls");
    rkt.run(&["--insecure-options=tls", "fetch", &url])
        .expect_code(0)
        .expect_stderr("signature verified:");

    let plain = HttpServer::start(&www, None);
    let plain_url = plain.url("busybox.aci");
    plain.clear_requests();
    rkt.run(&["fetch", &plain_url])
        .expect_code(254)
        .expect_stderr("--insecure-options=http");
    assert!(gets(&plain).is_empty(), "nothing was asked over plain http");
    rkt.run(&["--insecure-options=http", "fetch", &plain_url])
        .expect_code(0);

    // Keys over plain http: refused, unless `pubkey` (or --insecure-allow-http).
    std::fs::copy(rkt.root().join("signer.asc"), www.join("signer.asc")).unwrap();
    let key_url = plain.url("signer.asc");
    let trust = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend([
            "trust",
            "--prefix=example.com",
            "--skip-fingerprint-review",
            &key_url,
        ]);
        rkt.run(&args)
    };
    trust(&[])
        .expect_code(254)
        .expect_stderr("--insecure-options=http");
    trust(&["--insecure-options=pubkey"])
        .expect_code(0)
        .expect_stdout("Added key for prefix \"example.com\"");

    // An https URL redirected to plain http is refused too.
    let redirected = server.url(&format!("redirect?to={plain_url}"));
    rkt_with_ca(
        &rkt,
        &ca,
        &["--insecure-options=image", "fetch", &redirected],
    )
    .expect_code(254)
    .expect_stderr("plain http");
}

#[test]
fn bad_servers_get_clear_errors_and_nothing_is_stored() {
    let (rkt, gpg, key, ca) = setup();
    let www = served(&rkt, &gpg, &key);
    let server = HttpServer::start(&www, Some(&ca));
    let fetch = |path: &str| rkt_with_ca(&rkt, &ca, &["fetch", &server.url(path)]);

    // No signature beside the image.
    std::fs::copy(image("busybox.aci"), www.join("unsigned.aci")).unwrap();
    fetch("unsigned.aci")
        .expect_code(254)
        .expect_stderr("no signature for")
        .expect_stderr("404");

    // A signature that never ends.
    std::fs::copy(image("busybox.aci"), www.join("endless.aci")).unwrap();
    std::fs::write(www.join("endless.aci.asc.redirect"), "/endless").unwrap();
    fetch("endless.aci")
        .expect_code(254)
        .expect_stderr("more than 1048576 bytes");

    // A redirect loop, a missing image.
    rkt_with_ca(
        &rkt,
        &ca,
        &["--insecure-options=image", "fetch", &server.url("loop")],
    )
    .expect_code(254)
    .expect_stderr("redirect loop");
    rkt_with_ca(
        &rkt,
        &ca,
        &[
            "--insecure-options=image",
            "fetch",
            &server.url("missing.aci"),
        ],
    )
    .expect_code(254)
    .expect_stderr("404");

    // A signature by a key nobody trusted.
    let stranger = gpg.new_key("Stranger", "stranger@example.com", "ed25519", "1y", None);
    std::fs::copy(image("busybox.aci"), www.join("stranger.aci")).unwrap();
    gpg.sign(
        &stranger,
        &www.join("stranger.aci"),
        &www.join("stranger.aci.asc"),
        None,
    );
    fetch("stranger.aci")
        .expect_code(254)
        .expect_stderr(&stranger.fingerprint);

    let listed = rkt.ok(&["image", "list", "--no-legend"]).stdout;
    assert!(!listed.contains(NAME), "nothing was stored: {listed}");

    // A server that defers the signature (202) gives it after the image.
    server.clear_requests();
    std::fs::write(www.join("busybox.aci.asc.status"), "202\n200\n").unwrap();
    fetch("busybox.aci").expect_code(0);
    assert_eq!(
        gets(&server),
        [
            "GET /busybox.aci.asc 202",
            "GET /busybox.aci 200",
            "GET /busybox.aci.asc 200"
        ]
    );
}

/// `auth.d` credentials go to their domain: basic, then an OAuth bearer
/// token; without them the server's 401 is the error.
#[test]
fn auth_d_credentials_are_sent_to_their_host() {
    let (rkt, gpg, key, ca) = setup();
    let www = served(&rkt, &gpg, &key);
    let server = HttpServer::start(&www, Some(&ca));
    let url = server.url("busybox.aci");
    // "dTpw" is base64 of "u:p".
    std::fs::write(www.join("busybox.aci.auth"), "Basic dTpw").unwrap();
    rkt_with_ca(&rkt, &ca, &["--insecure-options=image", "fetch", &url])
        .expect_code(254)
        .expect_stderr("401");

    let auth_d = rkt.local_config.join("auth.d");
    std::fs::create_dir_all(&auth_d).unwrap();
    let write = |body: serde_json::Value| {
        std::fs::write(auth_d.join("test.json"), body.to_string()).unwrap();
    };
    write(serde_json::json!({
        "rktKind": "auth", "rktVersion": "v1", "domains": ["127.0.0.1"],
        "type": "basic", "credentials": {"user": "u", "password": "p"}
    }));
    rkt_with_ca(&rkt, &ca, &["--insecure-options=image", "fetch", &url]).expect_code(0);

    rkt.ok(&["image", "rm", NAME]);
    std::fs::write(www.join("busybox.aci.auth"), "Bearer s3cret").unwrap();
    write(serde_json::json!({
        "rktKind": "auth", "rktVersion": "v1", "domains": ["127.0.0.1"],
        "type": "oauth", "credentials": {"token": "s3cret"}
    }));
    rkt_with_ca(&rkt, &ca, &["--insecure-options=image", "fetch", &url]).expect_code(0);

    write(serde_json::json!({
        "rktKind": "auth", "rktVersion": "v1", "domains": ["127.0.0.1"],
        "type": "aws", "credentials": {"accessKeyID": "a", "secretAccessKey": "b"}
    }));
    rkt_with_ca(&rkt, &ca, &["--insecure-options=image", "fetch", &url])
        .expect_code(254)
        .expect_stderr("not supported");
}

/// On a terminal (util-linux `script` gives it one) the download draws
/// rkt's progress line; in a pipe, as everywhere else here, it does not.
#[test]
fn a_terminal_gets_a_progress_line() {
    let (rkt, gpg, key, ca) = setup();
    let www = served(&rkt, &gpg, &key);
    let server = HttpServer::start(&www, Some(&ca));
    let url = server.url("busybox.aci");
    let command = format!(
        "env SSL_CERT_FILE={} {} {} fetch {url}",
        ca.ca_pem.display(),
        functional_tests::rkt_bin().display(),
        rkt.global_args().join(" "),
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Downloading ACI: ["), "{text}");
    assert!(text.contains(" MB/"), "{text}");
    let piped = rkt_with_ca(&rkt, &ca, &["fetch", &url]).expect_code(0);
    assert!(!piped.stderr.contains("Downloading"), "{piped}");
}

/// The kept bytes of downloads in `rkt`'s store (`cas/tmp/download-*`,
/// without the ETag files).
fn kept_downloads(rkt: &Rkt) -> Vec<u64> {
    std::fs::read_dir(rkt.dir.join("cas/tmp"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("download-") && !name.ends_with(".etag")
                })
                .map(|e| e.metadata().unwrap().len())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_broken_off_download_resumes_where_it_stopped() {
    let (rkt, gpg, key, ca) = setup();
    let www = served(&rkt, &gpg, &key);
    let server = HttpServer::start(&www, Some(&ca));
    let url = server.url("busybox.aci");

    // The connection drops after 300000 bytes: the fetch fails, the bytes
    // stay for the next one.
    std::fs::write(www.join("busybox.aci.cut"), "300000").unwrap();
    rkt_with_ca(&rkt, &ca, &["fetch", &url])
        .expect_code(254)
        .expect_stderr("broke off after 300000 bytes")
        .expect_stderr("run the fetch again to resume it");
    assert_eq!(kept_downloads(&rkt), [300000]);
    assert!(rkt
        .ok(&["image", "list", "--no-legend"])
        .stdout
        .trim()
        .is_empty());

    // The next fetch asks for the rest only, and stores the whole image.
    server.clear_requests();
    let out = rkt_with_ca(&rkt, &ca, &["fetch", "--full", &url])
        .expect_code(0)
        .expect_stderr("resuming the download")
        .expect_stderr("signature verified:");
    assert_eq!(
        gets(&server),
        [
            "GET /busybox.aci.asc 200",
            "GET /busybox.aci 206 bytes=300000-"
        ],
    );
    assert_eq!(
        out.stdout.trim(),
        rkt.fetch(&image("busybox.aci")),
        "the same image"
    );
    assert!(kept_downloads(&rkt).is_empty(), "nothing kept once stored");

    // Broken off again, and the image changes meanwhile: its new ETag
    // makes the server send all of the new one, which is what is stored.
    rkt.ok(&["image", "rm", NAME]);
    std::fs::write(www.join("busybox.aci.cut"), "300000").unwrap();
    rkt_with_ca(&rkt, &ca, &["fetch", &url]).expect_code(254);
    let inspect = www.join("busybox.aci");
    std::fs::copy(image("inspect.aci"), &inspect).unwrap();
    gpg.sign(&key, &inspect, &www.join("busybox.aci.asc"), None);
    server.clear_requests();
    let out = rkt_with_ca(&rkt, &ca, &["fetch", "--full", &url]).expect_code(0);
    assert_eq!(
        gets(&server),
        ["GET /busybox.aci.asc 200", "GET /busybox.aci 200"]
    );
    assert_eq!(out.stdout.trim(), rkt.fetch(&image("inspect.aci")));
    assert!(kept_downloads(&rkt).is_empty());

    // Kept bytes that are the whole image (a fetch stopped after its
    // download): the server answers 416, and the image is asked for again.
    rkt.ok(&["image", "rm", "example.com/inspect"]);
    let body = std::fs::read(&inspect).unwrap();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    use sha2::Digest;
    let kept = rkt.dir.join("cas/tmp").join(format!(
        "download-{}",
        hex(&sha2::Sha256::digest(url.as_bytes())[..16])
    ));
    std::fs::write(&kept, &body).unwrap();
    std::fs::write(
        kept.with_extension("etag"),
        format!("\"{}\"", hex(&sha2::Sha256::digest(&body))),
    )
    .unwrap();
    server.clear_requests();
    rkt_with_ca(&rkt, &ca, &["fetch", &url]).expect_code(0);
    let range = "GET /busybox.aci 416".to_string();
    assert!(gets(&server).contains(&range), "{:?}", gets(&server));
    assert_eq!(gets(&server).last().unwrap(), "GET /busybox.aci 200");
    assert!(kept_downloads(&rkt).is_empty());
}
