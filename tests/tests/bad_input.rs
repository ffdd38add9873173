//! Bad input (issue 2): hostile or broken images and arguments. rkt must
//! refuse them with one clear error line, import nothing half-way, and never
//! touch anything outside its data directory (checked with canaries planted
//! next to `$dir`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use functional_tests::fixtures::{
    app_manifest, bare_manifest, build_aci, image_rows, raw_tar, raw_tar_with_manifest_bytes,
    stderr_lines, write_big_aci, write_input, Canary,
};
use functional_tests::{image, sha512_file, stage1_image, Out, Rkt};
use images::RawEntry;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn fetch(rkt: &Rkt, p: &Path) -> Out {
    rkt.run(&["--insecure-options=image", "fetch", "--full", s(p)])
}

/// Error lines of `out`, without the insecure-mode warning.
fn error_lines(out: &Out) -> Vec<&str> {
    stderr_lines(out)
        .into_iter()
        .filter(|l| !l.contains("warning: image signature verification has been disabled"))
        // Progress, as rkt prints it, before discovery of a name.
        .filter(|l| !l.starts_with("image: searching for app image"))
        .collect()
}

/// Exit 254 with one `<prefix>: ` line that names one of `needles`
/// (case-insensitive).
#[track_caller]
fn assert_refused(out: &Out, prefix: &str, needles: &[&str]) {
    assert_eq!(out.code, 254, "expected rkt to refuse; output:\n{out}");
    let lines = error_lines(out);
    assert_eq!(lines.len(), 1, "expected one error line; output:\n{out}");
    assert!(
        lines[0].starts_with(&format!("{prefix}: ")),
        "error line lacks the {prefix:?} prefix; output:\n{out}"
    );
    let low = lines[0].to_lowercase();
    assert!(
        needles.is_empty() || needles.iter().any(|n| low.contains(&n.to_lowercase())),
        "error line names none of {needles:?}; output:\n{out}"
    );
}

/// No image listed and no blob in the CAS.
#[track_caller]
fn assert_nothing_imported(rkt: &Rkt) {
    assert!(image_rows(rkt).is_empty(), "{:?}", image_rows(rkt));
    let blobs = files_under(&rkt.dir.join("cas/blob"));
    assert!(blobs.is_empty(), "half-imported blobs: {blobs:?}");
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(files_under(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

/// The canary dir as a path relative to `/`.
fn canary_rel(c: &Canary) -> String {
    s(&c.dir).trim_start_matches('/').to_string()
}

/// `rootfs/../../…/<canary>/name`: enough `..` to reach `/` from wherever
/// rkt extracts, then down into the canary directory.
fn deep_escape(c: &Canary, name: &str) -> String {
    format!("rootfs/{}{}/{name}", "../".repeat(64), canary_rel(c))
}

/// A hostile image that rkt may either refuse at fetch or import; if it is
/// imported, extracting, rendering and preparing it must stay inside `$dir`
/// and the chosen output directories.
fn must_stay_contained(rkt: &Rkt, canary: &Canary, aci: &Path) {
    let out = fetch(rkt, aci);
    eprintln!("fetch: {out}");
    canary.check("fetch");
    if out.code != 0 {
        assert_refused(&out, "fetch", &[]);
        assert_nothing_imported(rkt);
        return;
    }
    let key = out.stdout.trim().to_string();
    for (i, cmd) in [
        &["image", "extract"][..],
        &["image", "extract", "--rootfs-only"][..],
        &["image", "render"][..],
        &["image", "render", "--rootfs-only"][..],
    ]
    .iter()
    .enumerate()
    {
        let dest = rkt.root().join(format!("out-{i}"));
        let mut args = cmd.to_vec();
        args.push(&key);
        args.push(s(&dest));
        let out = rkt.run(&args);
        eprintln!("{cmd:?}: {out}");
        canary.check(&format!("{cmd:?}"));
        if out.code != 0 {
            assert_eq!(out.code, 254, "{cmd:?}: {out}");
            assert_eq!(error_lines(&out).len(), 1, "{cmd:?}: {out}");
        }
    }
    stage1_image("fly");
    let out = rkt.run(&["--insecure-options=image", "prepare", "--quiet", &key]);
    eprintln!("prepare: {out}");
    canary.check("prepare");
    if out.code == 0 {
        rkt.ok(&["rm", out.stdout.trim()]);
    } else {
        assert_eq!(out.code, 254, "prepare: {out}");
    }
    canary.check("rm");
}

fn small_tar() -> Vec<u8> {
    raw_tar(
        &app_manifest("example.com/hostile", "1.0.0"),
        &[
            RawEntry::dir("rootfs/etc"),
            RawEntry::file("rootfs/etc/hello", vec![b'h'; 64 * 1024]),
        ],
    )
}

fn hostile(entries: Vec<RawEntry>) -> Vec<u8> {
    raw_tar(&app_manifest("example.com/hostile", "1.0.0"), &entries)
}

/// The canary itself notices a file planted in it or a new hard link.
#[test]
fn canary_detects_changes() {
    let rkt = Rkt::new();
    let canary = Canary::plant(&rkt);
    canary.check("untouched");
    fs::hard_link(&canary.file, rkt.dir.join("link")).unwrap();
    let caught = std::panic::catch_unwind(|| canary.check("hard link"));
    assert!(caught.is_err(), "a hard link to the canary went unnoticed");
    fs::remove_file(rkt.dir.join("link")).unwrap();
    canary.check("restored");
    fs::write(canary.dir.join("sub/new"), b"x").unwrap();
    let caught = std::panic::catch_unwind(|| canary.check("new file"));
    assert!(caught.is_err(), "a new file in the canary went unnoticed");
}

#[test]
fn truncated_aci_is_refused() {
    let rkt = Rkt::new();
    let tar = small_tar();
    // Cut in the middle of the file's data.
    let aci = write_input(&rkt, "truncated.aci", &tar[..tar.len() - 1024 - 32 * 1024]);
    let canary = Canary::plant(&rkt);
    let out = fetch(&rkt, &aci);
    assert_refused(&out, "fetch", &[]);
    assert_nothing_imported(&rkt);
    canary.check("truncated fetch");
}

#[test]
fn truncated_compressed_aci_is_refused() {
    let rkt = Rkt::new();
    let gz = functional_tests::fixtures::gzip(&small_tar());
    let aci = write_input(&rkt, "truncated.aci", &gz[..gz.len() / 2]);
    let out = fetch(&rkt, &aci);
    assert_refused(&out, "fetch", &[]);
    assert_nothing_imported(&rkt);
}

#[test]
fn garbage_file_is_refused() {
    let rkt = Rkt::new();
    let mut noise = vec![0u8; 4096];
    std::io::Read::read_exact(
        &mut functional_tests::fixtures::NoiseReader::new(7),
        &mut noise,
    )
    .unwrap();
    let aci = write_input(&rkt, "garbage.aci", &noise);
    let empty = write_input(&rkt, "empty.aci", b"");
    let canary = Canary::plant(&rkt);
    assert_refused(&fetch(&rkt, &aci), "fetch", &[]);
    assert_refused(&fetch(&rkt, &empty), "fetch", &[]);
    assert_nothing_imported(&rkt);
    canary.check("garbage fetch");
}

#[test]
fn dotdot_entries_are_refused() {
    let rkt = Rkt::new();
    let canary = Canary::plant(&rkt);
    // Built after planting: snapshot must not include the inputs.
    let simple = hostile(vec![RawEntry::file("rootfs/../../escape", "x")]);
    let deep = hostile(vec![RawEntry::file(deep_escape(&canary, "escaped"), "x")]);
    let dir = tempfile::tempdir().unwrap();
    for (name, tar) in [("simple.aci", simple), ("deep.aci", deep)] {
        let p = dir.path().join(name);
        fs::write(&p, tar).unwrap();
        // appc: every entry must lie under rootfs/ once cleaned.
        assert_refused(&fetch(&rkt, &p), "fetch", &[".."]);
        assert_nothing_imported(&rkt);
        canary.check(name);
    }
    assert!(!rkt.dir.join("cas/escape").exists());
    assert!(!rkt.root().join("escape").exists());
}

#[test]
fn absolute_entry_names_are_refused() {
    let rkt = Rkt::new();
    let canary = Canary::plant(&rkt);
    let name = format!("{}/abs-escaped", s(&canary.dir));
    let tar = hostile(vec![RawEntry::file(&name, "x")]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("abs.aci");
    fs::write(&p, tar).unwrap();
    assert_refused(&fetch(&rkt, &p), "fetch", &[&name, "absolute"]);
    assert_nothing_imported(&rkt);
    canary.check("absolute entry");
}

#[test]
fn symlink_then_entry_through_it_stays_inside() {
    let rkt = Rkt::new();
    let canary = Canary::plant(&rkt);
    let tar = hostile(vec![
        RawEntry::symlink("rootfs/evil", s(&canary.dir)),
        RawEntry::file("rootfs/evil/canary-file", "planted through a symlink"),
        RawEntry::symlink("rootfs/root-link", "/"),
        RawEntry::file(
            format!("rootfs/root-link/{}/planted-via-root", canary_rel(&canary)),
            "x",
        ),
        RawEntry::symlink("rootfs/rel", "../../../../../../../../../../../../.."),
        RawEntry::file(
            format!("rootfs/rel/{}/planted-via-rel", canary_rel(&canary)),
            "x",
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("symlink.aci");
    fs::write(&p, tar).unwrap();
    must_stay_contained(&rkt, &canary, &p);
}

#[test]
fn hardlink_to_a_path_outside_the_rootfs_stays_inside() {
    let rkt = Rkt::new();
    let canary = Canary::plant(&rkt);
    let tar = hostile(vec![
        RawEntry::hardlink("rootfs/abs-link", s(&canary.file)),
        RawEntry::hardlink(
            "rootfs/rel-link",
            format!("rootfs/{}{}/secret", "../".repeat(64), canary_rel(&canary)),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hardlink.aci");
    fs::write(&p, tar).unwrap();
    // The canary's link count is in the snapshot: a hard link made to it
    // anywhere (even inside $dir) is caught.
    must_stay_contained(&rkt, &canary, &p);
}

#[test]
fn symlink_directory_then_hardlink_through_it_stays_inside() {
    let rkt = Rkt::new();
    let canary = Canary::plant(&rkt);
    let tar = hostile(vec![
        RawEntry::symlink("rootfs/out", s(&canary.dir)),
        RawEntry::hardlink("rootfs/link", "rootfs/out/secret"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hardlink-symlink.aci");
    fs::write(&p, tar).unwrap();
    must_stay_contained(&rkt, &canary, &p);
}

#[test]
fn char_device_in_image_is_refused() {
    let rkt = Rkt::new();
    let canary = Canary::plant(&rkt);
    let tar = hostile(vec![
        RawEntry::dir("rootfs/dev"),
        RawEntry::char_device("rootfs/dev/kmem-evil", 1, 2),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("chardev.aci");
    fs::write(&p, tar).unwrap();
    assert_refused(&fetch(&rkt, &p), "fetch", &["device"]);
    assert_nothing_imported(&rkt);
    canary.check("char device");
}

#[test]
fn block_device_in_image_is_refused() {
    let rkt = Rkt::new();
    let tar = hostile(vec![RawEntry::block_device("rootfs/sda-evil", 8, 0)]);
    let p = write_input(&rkt, "blockdev.aci", &tar);
    let canary = Canary::plant(&rkt);
    assert_refused(&fetch(&rkt, &p), "fetch", &["device"]);
    assert_nothing_imported(&rkt);
    canary.check("block device");
}

#[test]
fn manifest_with_invalid_name_is_refused() {
    let rkt = Rkt::new();
    let manifest = br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"Bad Name!"}"#;
    let p = write_input(
        &rkt,
        "badname.aci",
        &raw_tar_with_manifest_bytes(manifest, &[]),
    );
    assert_refused(&fetch(&rkt, &p), "fetch", &["Bad Name!"]);
    assert_nothing_imported(&rkt);
}

#[test]
fn manifest_that_is_not_json_is_refused() {
    let rkt = Rkt::new();
    let p = write_input(
        &rkt,
        "notjson.aci",
        &raw_tar_with_manifest_bytes(b"{not json", &[]),
    );
    assert_refused(&fetch(&rkt, &p), "fetch", &["manifest"]);
    assert_nothing_imported(&rkt);
}

#[test]
fn archive_without_manifest_is_refused() {
    let rkt = Rkt::new();
    let mut w = images::RawAciWriter::new(Vec::new());
    w.append(&RawEntry::dir("rootfs")).unwrap();
    w.append(&RawEntry::file("rootfs/x", "x")).unwrap();
    let p = write_input(&rkt, "nomanifest.aci", &w.finish().unwrap());
    assert_refused(&fetch(&rkt, &p), "fetch", &["manifest"]);
    assert_nothing_imported(&rkt);
}

#[test]
fn huge_manifest_is_refused() {
    let rkt = Rkt::new();
    let pad = "a".repeat(2 << 20);
    let manifest = format!(
        r#"{{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/huge","annotations":[{{"name":"pad","value":"{pad}"}}]}}"#
    );
    let p = write_input(
        &rkt,
        "huge.aci",
        &raw_tar_with_manifest_bytes(manifest.as_bytes(), &[]),
    );
    let t0 = Instant::now();
    let out = fetch(&rkt, &p);
    assert_refused(&out, "fetch", &["manifest"]);
    assert!(
        error_lines(&out)[0].to_lowercase().contains("large")
            || error_lines(&out)[0].contains("MiB")
            || error_lines(&out)[0].contains("bytes"),
        "error should say the manifest is too big: {out}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_nothing_imported(&rkt);
}

fn no_pods(rkt: &Rkt) {
    let out = rkt.ok(&["list", "--no-legend"]);
    assert!(out.stdout.trim().is_empty(), "pods left behind: {out}");
}

#[test]
fn missing_os_arch_labels_fail_at_run() {
    stage1_image("fly");
    let rkt = Rkt::new();
    let busybox = image("busybox.aci");
    // busybox's rootfs with a manifest lacking os/arch.
    let extracted = rkt.root().join("bb");
    rkt.fetch(&busybox);
    rkt.ok(&[
        "image",
        "extract",
        "--rootfs-only",
        "example.com/busybox",
        s(&extracted),
    ]);
    rkt.ok(&["image", "rm", "example.com/busybox"]);
    let mut m = bare_manifest("example.com/noarch", &[("version", "1.0.0")]);
    m.app = app_manifest("x.org/x", "1").app;
    let aci = rkt.root().join("noarch.aci");
    images::AciBuilder::new(m, &extracted)
        .write_file(&aci)
        .unwrap();

    let out = fetch(&rkt, &aci);
    if out.code != 0 {
        // Refusing at fetch is fine too, if the error names the labels.
        assert_refused(&out, "fetch", &["os"]);
        assert!(out.stderr.contains("arch"), "{out}");
        return;
    }
    let out = rkt.run(&[
        "--insecure-options=image",
        "run",
        s(&aci),
        "--exec",
        "/bin/true",
    ]);
    assert_refused(&out, "run", &["os"]);
    let line = error_lines(&out)[0];
    assert!(line.contains("arch") && line.contains("label"), "{out}");
    no_pods(&rkt);
    let out = rkt.run(&["--insecure-options=image", "prepare", s(&aci)]);
    assert_refused(&out, "prepare", &["os"]);
    no_pods(&rkt);
}

#[test]
fn unknown_os_label_is_refused() {
    let rkt = Rkt::new();
    let m = bare_manifest(
        "example.com/plan9",
        &[("version", "1"), ("os", "plan9"), ("arch", "amd64")],
    );
    let p = build_aci(&rkt, "plan9.aci", m, &[]);
    let out = fetch(&rkt, &p);
    if out.code != 0 {
        assert_refused(&out, "fetch", &["plan9"]);
        assert_nothing_imported(&rkt);
    } else {
        stage1_image("fly");
        let out = rkt.run(&[
            "--insecure-options=image",
            "run",
            s(&p),
            "--exec",
            "/bin/true",
        ]);
        assert_refused(&out, "run", &["plan9"]);
        no_pods(&rkt);
    }
}

#[test]
fn image_name_not_in_store_is_a_clear_error() {
    stage1_image("fly");
    let rkt = Rkt::new();
    // Not in the store: discovery runs, offline, and finds nothing.
    let out = rkt.run_offline(&["run", "example.com/nope", "--exec", "/bin/true"]);
    assert_refused(&out, "run", &["example.com/nope"]);
    no_pods(&rkt);
    let out = rkt.run(&["image", "cat-manifest", "example.com/nope"]);
    assert_refused(&out, "image", &["example.com/nope"]);
    let out = rkt.run(&["image", "cat-manifest", "sha512-0123456789ab"]);
    assert_refused(&out, "image", &["sha512-0123456789ab"]);
    let out = rkt.run(&["--insecure-options=image", "fetch", "sha512-0123456789ab"]);
    assert_refused(&out, "fetch", &["sha512-0123456789ab"]);
}

#[test]
fn unknown_uuid_prefix_is_a_clear_error() {
    let rkt = Rkt::new();
    for cmd in ["status", "cat-manifest", "rm"] {
        let out = rkt.run(&[cmd, "0000"]);
        assert_eq!(out.code, 254, "{cmd}: {out}");
        let lines = error_lines(&out);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{cmd}: ")) && l.contains("0000")),
            "{cmd}: {out}"
        );
    }
    let out = rkt.run(&["status", "not-a-uuid!"]);
    assert_eq!(out.code, 254, "{out}");
}

#[test]
fn ambiguous_uuid_prefix_is_a_clear_error() {
    stage1_image("fly");
    let rkt = Rkt::new();
    let busybox = image("busybox.aci");
    let mut seen: Vec<String> = Vec::new();
    let (a, b) = loop {
        assert!(
            seen.len() < 17,
            "17 UUIDs cannot all differ in the first hex digit"
        );
        let out = rkt.ok(&[
            "--insecure-options=image",
            "prepare",
            "--quiet",
            s(&busybox),
        ]);
        let uuid = out.stdout.trim().to_string();
        if let Some(prev) = seen.iter().find(|u| u[..1] == uuid[..1]) {
            break (prev.clone(), uuid);
        }
        seen.push(uuid);
    };
    let out = rkt.run(&["status", &a[..1]]);
    assert_refused(&out, "status", &["ambiguous"]);
    // A longer prefix (or the full UUID) is unambiguous.
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let out = rkt.ok(&["status", &a[..common + 1]]);
    assert!(out.stdout.starts_with("state=prepared"), "{out}");
    let out = rkt.ok(&["status", &b]);
    assert!(out.stdout.starts_with("state=prepared"), "{out}");
    let out = rkt.run(&["rm", &a[..1]]);
    assert_eq!(out.code, 254, "rm of an ambiguous prefix: {out}");
    assert!(out.stderr.contains("ambiguous"), "{out}");
    for u in seen.iter().chain([&b]) {
        rkt.ok(&["rm", u]);
    }
}

#[test]
fn missing_volume_source_fails_before_creating_a_pod() {
    stage1_image("fly");
    let rkt = Rkt::new();
    let busybox = image("busybox.aci");
    let missing = rkt.root().join("nonexistent");
    let volume = format!("data,kind=host,source={}", s(&missing));
    let out = rkt.run(&[
        "--insecure-options=image",
        "run",
        "--volume",
        &volume,
        "--mount",
        "volume=data,target=/data",
        s(&busybox),
        "--exec",
        "/bin/true",
    ]);
    assert_refused(&out, "run", &[s(&missing)]);
    no_pods(&rkt);
    assert!(!missing.exists(), "rkt created the missing volume source");
    // Same through prepare.
    let out = rkt.run(&[
        "--insecure-options=image",
        "prepare",
        "--volume",
        &volume,
        "--mount",
        "volume=data,target=/data",
        s(&busybox),
    ]);
    assert_refused(&out, "prepare", &[s(&missing)]);
    no_pods(&rkt);
}

/// Two `rkt fetch` of the same image at once, `rounds` times in fresh data
/// dirs (optionally created by an earlier command): both succeed with the
/// same key and the store holds one image.
fn concurrent_fetches(rounds: usize, existing_store: bool) {
    let busybox = image("busybox.aci");
    for round in 0..rounds {
        let rkt = Rkt::new();
        if existing_store {
            rkt.ok(&["image", "list"]);
        }
        let spawn = || -> Child {
            rkt.command()
                .args(["--insecure-options=image", "fetch", "--full", s(&busybox)])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        for o in [&a, &b] {
            assert!(
                o.status.success(),
                "round {round}: concurrent fetch failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert_eq!(a.stdout, b.stdout);
        let key = String::from_utf8(a.stdout).unwrap().trim().to_string();
        assert_eq!(
            image_rows(&rkt),
            [(key, "example.com/busybox:1.35.0".to_string())]
        );
    }
}

#[test]
fn concurrent_fetches_into_a_fresh_store_agree() {
    concurrent_fetches(20, false);
}

#[test]
fn concurrent_fetches_into_an_existing_store_agree() {
    concurrent_fetches(20, true);
}

/// Runs rkt, killing it if it takes longer than `limit` (a stuck lock must
/// fail the test, not hang it).
fn run_with_limit(rkt: &Rkt, args: &[&str], limit: Duration) -> Out {
    let mut child = rkt
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "rkt {args:?} hung for {limit:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = child.wait_with_output().unwrap();
    let code = o.status.code().unwrap_or(-1);
    Out {
        code,
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn kill_9_during_import_leaves_no_image_and_refetch_works() {
    let rkt = Rkt::new();
    let big = rkt.root().join("big.aci");
    write_big_aci(&big, "example.com/big", 160 << 20);
    let key = format!("sha512-{}", &sha512_file(&big)[..64]);

    let mut child = rkt
        .command()
        .args(["--insecure-options=image", "fetch", "--full", s(&big)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let finished_early = child.try_wait().unwrap();
    assert!(
        finished_early.is_none(),
        "fetch of a 160 MiB image finished within 100ms ({finished_early:?}); the test cannot interrupt it"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let out = run_with_limit(
        &rkt,
        &["image", "list", "--no-legend"],
        Duration::from_secs(10),
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.trim().is_empty(),
        "half-imported image listed: {out}"
    );
    let out = run_with_limit(
        &rkt,
        &["image", "cat-manifest", "example.com/big"],
        Duration::from_secs(10),
    );
    assert_eq!(out.code, 254, "{out}");

    let out = run_with_limit(
        &rkt,
        &["--insecure-options=image", "fetch", "--full", s(&big)],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.trim(), key);
    assert_eq!(
        image_rows(&rkt),
        [(key.clone(), "example.com/big:1.0.0".to_string())]
    );
    // The data is whole: the exported blob hashes to the key.
    let exported = rkt.root().join("out.aci");
    rkt.ok(&["image", "export", &key, s(&exported)]);
    assert_eq!(format!("sha512-{}", &sha512_file(&exported)[..64]), key);
}
