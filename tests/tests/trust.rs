//! Signed images and `rkt trust`, with keys and signatures made by GnuPG:
//! an image runs only when its signature is good and made by a key trusted
//! for its name (the name itself, a parent prefix, or a root key), valid now.

use std::path::{Path, PathBuf};

use functional_tests::gpg::{Gpg, Key};
use functional_tests::pods::ns_run;
use functional_tests::{image, Rkt};

const NAME: &str = "example.com/busybox";

/// busybox.aci copied into the test dir with its signature beside it
/// (`busybox.aci.asc`, where rkt looks for it).
fn signed_busybox(rkt: &Rkt, gpg: &Gpg, key: &Key) -> PathBuf {
    let aci = rkt.root().join("busybox.aci");
    std::fs::copy(image("busybox.aci"), &aci).unwrap();
    gpg.sign(key, &aci, &rkt.root().join("busybox.aci.asc"), None);
    aci
}

fn trust(rkt: &Rkt, scope: &str, key_file: &Path) -> functional_tests::Out {
    rkt.run(&[
        "trust",
        scope,
        "--skip-fingerprint-review",
        key_file.to_str().unwrap(),
    ])
}

fn fetch(rkt: &Rkt, aci: &Path) -> functional_tests::Out {
    rkt.run(&["fetch", aci.to_str().unwrap()])
}

fn stored_names(rkt: &Rkt) -> String {
    rkt.ok(&["image", "list", "--no-legend"]).stdout
}

#[test]
fn a_signed_image_runs_once_its_key_is_trusted() {
    let rkt = Rkt::new();
    let gpg = Gpg::new();
    let key = gpg.new_key("Test Signer", "signer@example.com", "rsa2048", "1y", None);
    let key_file = gpg.export(&key, &rkt.root().join("signer.asc"));
    let aci = signed_busybox(&rkt, &gpg, &key);

    // Untrusted: refused, naming the key and the prefix; nothing stored.
    fetch(&rkt, &aci)
        .expect_code(254)
        .expect_stderr(&key.fingerprint)
        .expect_stderr(&format!("not trusted for prefix \"{NAME}\""))
        .expect_stderr(&format!("rkt trust --prefix={NAME}"));
    assert!(!stored_names(&rkt).contains(NAME));

    // The review needs a terminal; without one nothing is trusted.
    rkt.run(&[
        "trust",
        &format!("--prefix={NAME}"),
        key_file.to_str().unwrap(),
    ])
    .expect_code(254)
    .expect_stderr("--skip-fingerprint-review");
    let stored = rkt
        .local_config
        .join("trustedkeys/prefix.d")
        .join(NAME)
        .join(&key.fingerprint);
    assert!(!stored.exists());

    let out = trust(&rkt, &format!("--prefix={NAME}"), &key_file).expect_code(0);
    out.expect_stdout("Test Signer <signer@example.com>")
        .expect_stdout(&format!(
            "Added key for prefix \"{NAME}\" at \"{}\"",
            stored.display()
        ));
    assert!(
        stored.is_file(),
        "the key is stored at {}",
        stored.display()
    );

    fetch(&rkt, &aci)
        .expect_code(0)
        .expect_stderr("signature verified:")
        .expect_stderr("  Test Signer <signer@example.com>");
    assert!(stored_names(&rkt).contains(NAME));

    // `rkt run` of the signed file checks it the same way, then runs it.
    let (out, _) = ns_run(
        &rkt,
        &[
            aci.to_str().unwrap(),
            "--exec=/bin/sh",
            "--",
            "-c",
            "echo signed-run",
        ],
    );
    out.expect_code(0)
        .expect_stdout("signed-run")
        .expect_stderr("signature verified:");
}

#[test]
fn bad_signatures_and_dead_keys_are_refused_and_nothing_is_stored() {
    let rkt = Rkt::new();
    let gpg = Gpg::new();
    let key = gpg.new_key("Test Signer", "signer@example.com", "ed25519", "1y", None);
    let key_file = gpg.export(&key, &rkt.root().join("signer.asc"));
    trust(&rkt, "--prefix=example.com", &key_file).expect_code(0);
    let aci = signed_busybox(&rkt, &gpg, &key);

    // A tampered image: one byte changed after signing.
    let tampered = rkt.root().join("tampered.aci");
    let mut bytes = std::fs::read(&aci).unwrap();
    bytes[3000] ^= 0x20;
    std::fs::write(&tampered, bytes).unwrap();
    std::fs::copy(
        rkt.root().join("busybox.aci.asc"),
        rkt.root().join("tampered.aci.asc"),
    )
    .unwrap();
    fetch(&rkt, &tampered)
        .expect_code(254)
        .expect_stderr("does not match the image")
        .expect_stderr(&key.fingerprint);

    // A good signature, of another image.
    let other = rkt.root().join("other.asc");
    gpg.sign(&key, &image("inspect.aci"), &other, None);
    rkt.run(&[
        "fetch",
        &format!("--signature={}", other.display()),
        aci.to_str().unwrap(),
    ])
    .expect_code(254)
    .expect_stderr("does not match the image");

    // Signed by a key nobody trusted.
    let stranger = gpg.new_key("Stranger", "stranger@example.com", "ed25519", "1y", None);
    let by_stranger = rkt.root().join("stranger.asc");
    gpg.sign(&stranger, &aci, &by_stranger, None);
    rkt.run(&[
        "fetch",
        &format!("--signature={}", by_stranger.display()),
        aci.to_str().unwrap(),
    ])
    .expect_code(254)
    .expect_stderr(&stranger.fingerprint)
    .expect_stderr("not trusted for prefix");

    // A key that expired after it signed (made and used in 2020, valid a day).
    let old = gpg.new_key(
        "Old Signer",
        "old@example.com",
        "rsa2048",
        "1d",
        Some("20200101T000000"),
    );
    let old_file = gpg.export(&old, &rkt.root().join("old.asc"));
    trust(&rkt, "--prefix=example.com", &old_file)
        .expect_code(254)
        .expect_stderr("expired");
    // An administrator who installs it anyway gets nothing from it.
    let installed = rkt
        .local_config
        .join("trustedkeys/prefix.d/example.com")
        .join(&old.fingerprint);
    std::fs::copy(&old_file, &installed).unwrap();
    let by_old = rkt.root().join("old-sig.asc");
    gpg.sign(&old, &aci, &by_old, Some("20200101T010000"));
    rkt.run(&[
        "fetch",
        &format!("--signature={}", by_old.display()),
        aci.to_str().unwrap(),
    ])
    .expect_code(254)
    .expect_stderr(&old.fingerprint)
    .expect_stderr("expired");

    // A key revoked after it was trusted: its updated copy in the keystore.
    let revoked = gpg.new_key(
        "Revoked Signer",
        "revoked@example.com",
        "ed25519",
        "1y",
        None,
    );
    let revoked_file = gpg.export(&revoked, &rkt.root().join("revoked.asc"));
    trust(&rkt, "--prefix=example.com", &revoked_file).expect_code(0);
    let by_revoked = rkt.root().join("revoked-sig.asc");
    gpg.sign(&revoked, &aci, &by_revoked, None);
    gpg.revoke(&revoked);
    let revoked_now = gpg.export(&revoked, &rkt.root().join("revoked-now.asc"));
    std::fs::copy(
        &revoked_now,
        rkt.local_config
            .join("trustedkeys/prefix.d/example.com")
            .join(&revoked.fingerprint),
    )
    .unwrap();
    rkt.run(&[
        "fetch",
        &format!("--signature={}", by_revoked.display()),
        aci.to_str().unwrap(),
    ])
    .expect_code(254)
    .expect_stderr(&revoked.fingerprint)
    .expect_stderr("revoked");
    trust(&rkt, "--prefix=example.com", &revoked_now)
        .expect_code(254)
        .expect_stderr("revoked");

    // A signature file that is not one.
    let junk = rkt.root().join("junk.asc");
    std::fs::write(&junk, "not a signature\n").unwrap();
    rkt.run(&[
        "fetch",
        &format!("--signature={}", junk.display()),
        aci.to_str().unwrap(),
    ])
    .expect_code(254)
    .expect_stderr("junk.asc");

    assert!(
        !stored_names(&rkt).contains(NAME),
        "nothing refused was stored"
    );
    // The untouched image with its own signature still goes in.
    fetch(&rkt, &aci).expect_code(0);
}

#[test]
fn trust_by_parent_prefix_root_and_masking() {
    let gpg = Gpg::new();
    let key = gpg.new_key("Test Signer", "signer@example.com", "ed25519", "1y", None);

    // A parent prefix covers the names below it.
    let rkt = Rkt::new();
    let key_file = gpg.export(&key, &rkt.root().join("signer.asc"));
    let aci = signed_busybox(&rkt, &gpg, &key);
    trust(&rkt, "--prefix=example.com", &key_file).expect_code(0);
    fetch(&rkt, &aci).expect_code(0);

    // A sibling prefix does not, even one that starts with the same letters.
    let rkt = Rkt::new();
    let key_file = gpg.export(&key, &rkt.root().join("signer.asc"));
    let aci = signed_busybox(&rkt, &gpg, &key);
    trust(&rkt, "--prefix=example.com/busy", &key_file).expect_code(0);
    fetch(&rkt, &aci)
        .expect_code(254)
        .expect_stderr("not trusted");

    // A root key covers every name.
    let rkt = Rkt::new();
    let key_file = gpg.export(&key, &rkt.root().join("signer.asc"));
    let aci = signed_busybox(&rkt, &gpg, &key);
    trust(&rkt, "--root", &key_file)
        .expect_code(0)
        .expect_stdout("Added root key at");
    assert!(rkt
        .local_config
        .join("trustedkeys/root.d")
        .join(&key.fingerprint)
        .is_file());
    fetch(&rkt, &aci).expect_code(0);

    // A system key counts, until an empty local file of its name masks it.
    let rkt = Rkt::new();
    let aci = signed_busybox(&rkt, &gpg, &key);
    let system = rkt.system_config.join("trustedkeys/prefix.d/example.com");
    std::fs::create_dir_all(&system).unwrap();
    gpg.export(&key, &system.join(&key.fingerprint));
    fetch(&rkt, &aci).expect_code(0);
    rkt.ok(&["image", "rm", NAME]);
    // rkt's order: root keys load first, so a mask there cannot reach a
    // prefix key loaded after it; a mask at the prefix does.
    let local = rkt.local_config.join("trustedkeys/root.d");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join(&key.fingerprint), "").unwrap();
    fetch(&rkt, &aci).expect_code(0);
    let mask = rkt.local_config.join("trustedkeys/prefix.d/example.com");
    std::fs::create_dir_all(&mask).unwrap();
    std::fs::write(mask.join(&key.fingerprint), "").unwrap();
    rkt.ok(&["image", "rm", NAME]);
    fetch(&rkt, &aci)
        .expect_code(254)
        .expect_stderr("not trusted");

    // A key file not named after its key is an error, not a silent skip.
    let wrong = rkt
        .local_config
        .join("trustedkeys/prefix.d/example.com/busybox");
    std::fs::create_dir_all(&wrong).unwrap();
    gpg.export(
        &key,
        &wrong.join("0123456789abcdef0123456789abcdef01234567"),
    );
    fetch(&rkt, &aci)
        .expect_code(254)
        .expect_stderr("is named after its key's lowercase fingerprint");
}

#[test]
fn trust_refuses_what_it_cannot_do() {
    let rkt = Rkt::new();
    let gpg = Gpg::new();
    let key = gpg.new_key("Test Signer", "signer@example.com", "ed25519", "1y", None);
    let key_file = gpg.export(&key, &rkt.root().join("signer.asc"));
    let k = key_file.to_str().unwrap();
    let notkey = rkt.root().join("notkey.asc");
    std::fs::write(&notkey, "hello\n").unwrap();
    for (args, needle) in [
        (vec!["trust", k], "implicit unbounded trust"),
        (
            vec!["trust", "--root", "--prefix=example.com", k],
            "mutually exclusive",
        ),
        (
            vec!["trust", "--prefix=https://example.com", k],
            "not a URL",
        ),
        (
            vec!["trust", "--prefix=example.com/../etc", k],
            "invalid prefix",
        ),
        (
            vec![
                "trust",
                "--prefix=example.com",
                "--skip-fingerprint-review",
                notkey.to_str().unwrap(),
            ],
            "is not an OpenPGP public key",
        ),
        (
            vec![
                "trust",
                "--prefix=example.com",
                "--skip-fingerprint-review",
                "http://127.0.0.1:1/key.asc",
            ],
            "--insecure-options=http",
        ),
    ] {
        rkt.run(&args).expect_code(254).expect_stderr(needle);
    }
    assert!(
        !rkt.local_config.join("trustedkeys").exists(),
        "nothing was trusted"
    );
}

/// `rkt trust --prefix=<NAME> KEY` on a terminal (a pty from script(1))
/// where `answers` are typed; the terminal's transcript.
fn trust_on_a_terminal(rkt: &Rkt, key_file: &Path, answers: &str) -> String {
    let command = format!(
        "{} {} trust --prefix={NAME} {}",
        functional_tests::rkt_bin().display(),
        rkt.global_args().join(" "),
        key_file.display()
    );
    // The input stays open until rkt is done with it.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(printf '{answers}'; sleep 2) | script -qec \"$0\" /dev/null"
        ))
        .arg(command)
        .output()
        .expect("spawn script");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn the_fingerprint_review_asks_on_a_terminal() {
    let rkt = Rkt::new();
    let gpg = Gpg::new();
    let key = gpg.new_key("Test Signer", "signer@example.com", "ed25519", "1y", None);
    let key_file = gpg.export(&key, &rkt.root().join("signer.asc"));
    let stored = rkt
        .local_config
        .join("trustedkeys/prefix.d")
        .join(NAME)
        .join(&key.fingerprint);

    // Anything but yes or no is asked again; no trusts nothing.
    let out = trust_on_a_terminal(&rkt, &key_file, "maybe\\nno\\n");
    assert!(out.contains("GPG key fingerprint is:"), "{out}");
    assert!(out.contains("Test Signer <signer@example.com>"), "{out}");
    assert_eq!(
        out.matches("Are you sure you want to trust this key (yes/no)? ")
            .count(),
        2,
        "{out}"
    );
    assert!(out.contains("Please enter 'yes' or 'no'"), "{out}");
    assert!(out.contains("Not trusting"), "{out}");
    assert!(!stored.exists());

    let out = trust_on_a_terminal(&rkt, &key_file, "yes\\n");
    assert!(out.contains("after fingerprint review"), "{out}");
    assert!(
        out.contains(&format!("Added key for prefix \"{NAME}\"")),
        "{out}"
    );
    assert!(stored.is_file(), "{out}");
}
