//! The image store as users drive it: fetch, image list/cat-manifest/export/
//! extract/render/rm/gc/verify.

use std::fs;
use std::path::{Path, PathBuf};

use functional_tests::fixtures::{
    app_manifest, bare_manifest, build_aci, bzip2, decompress, gzip, image_rows, key_of_tar,
    stderr_lines, test_dir, trees, write_input, xz,
};
use functional_tests::{image, sha512_file, stage1_image, Rkt};
use images::manifest::standard_labels;
use serde_json::Value;

fn busybox_key() -> String {
    key_of_tar(&decompress(&fs::read(image("busybox.aci")).unwrap()))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small image `example.com/small:1.0.0` with `/etc/hello`.
fn small_aci(rkt: &Rkt) -> PathBuf {
    build_aci(
        rkt,
        "small.aci",
        app_manifest("example.com/small", "1.0.0"),
        &[("etc/hello", b"hello\n"), ("bin/tool", b"#!/bin/sh\n")],
    )
}

#[test]
fn fetch_unsigned_image_requires_insecure_image() {
    let rkt = Rkt::new();
    let busybox = image("busybox.aci");
    let out = rkt.run(&["fetch", s(&busybox)]);
    assert_eq!(out.code, 254, "{out}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].starts_with("fetch: "), "{out}");
    assert!(lines[0].contains("--insecure-options=image"), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(image_rows(&rkt).is_empty());
}

#[test]
fn fetch_prints_short_and_full_keys() {
    let rkt = Rkt::new();
    let busybox = image("busybox.aci");
    let key = busybox_key();
    let out = rkt.ok(&["--insecure-options=image", "fetch", s(&busybox)]);
    assert_eq!(out.stdout, format!("{}\n", &key[..39]), "{out}");
    let out = rkt.ok(&["--insecure-options=image", "fetch", "--full", s(&busybox)]);
    assert_eq!(out.stdout, format!("{key}\n"), "{out}");
    assert_eq!(key.len(), 71);
    // The same image twice is still one image.
    assert_eq!(
        image_rows(&rkt),
        [(key, "example.com/busybox:1.35.0".to_string())]
    );
}

#[test]
fn fetch_several_images_prints_one_key_each() {
    let rkt = Rkt::new();
    let small = small_aci(&rkt);
    let busybox = image("busybox.aci");
    let out = rkt.ok(&[
        "--insecure-options=image",
        "fetch",
        "--full",
        s(&small),
        s(&busybox),
    ]);
    let small_key = key_of_tar(&fs::read(&small).unwrap());
    assert_eq!(
        out.stdout,
        format!("{small_key}\n{}\n", busybox_key()),
        "{out}"
    );
}

#[test]
fn compressed_variants_import_to_the_same_key() {
    let rkt = Rkt::new();
    let plain = fs::read(small_aci(&rkt)).unwrap();
    let key = key_of_tar(&plain);
    for (name, bytes) in [
        ("plain.aci", plain.clone()),
        ("gz.aci", gzip(&plain)),
        ("bz2.aci", bzip2(&plain)),
        ("xz.aci", xz(&plain)),
    ] {
        assert!(name == "plain.aci" || bytes != plain);
        let p = write_input(&rkt, name, &bytes);
        assert_eq!(rkt.fetch(&p), key, "{name}");
    }
    assert_eq!(
        image_rows(&rkt),
        [(key.clone(), "example.com/small:1.0.0".to_string())]
    );
    // The store keeps the uncompressed tar.
    let out = test_dir(&rkt, "out");
    rkt.ok(&["image", "export", &key, s(&out.join("x.aci"))]);
    assert_eq!(fs::read(out.join("x.aci")).unwrap(), plain);
}

fn collapse(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn image_list_formats() {
    let rkt = Rkt::new();
    let bb_key = rkt.fetch(&image("busybox.aci"));
    let small_key = rkt.fetch(&small_aci(&rkt));

    let out = rkt.ok(&["image", "list"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        collapse(lines[0]),
        "ID NAME SIZE IMPORT TIME LAST USED",
        "{out}"
    );
    // Sorted by import time, oldest first.
    let row: Vec<&str> = lines[1].split('\t').filter(|c| !c.is_empty()).collect();
    assert_eq!(row[0], &bb_key[..19], "{out}");
    assert_eq!(row[1], "example.com/busybox:1.35.0", "{out}");
    assert!(
        row[2].ends_with("iB") || row[2].ends_with('B'),
        "size {:?}",
        row[2]
    );
    let row: Vec<&str> = lines[2].split('\t').filter(|c| !c.is_empty()).collect();
    assert_eq!(row[0], &small_key[..19], "{out}");
    assert_eq!(row[1], "example.com/small:1.0.0", "{out}");

    let out = rkt.ok(&["image", "list", "--no-legend"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with(&bb_key[..19]), "{out}");

    let out = rkt.ok(&["image", "list", "--full", "--no-legend"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let full: Vec<&str> = lines[0].split('\t').filter(|c| !c.is_empty()).collect();
    assert_eq!(full[0], bb_key, "{out}");
    let full_size: u64 = full[2].parse().expect("--full size is in bytes");

    let out = rkt.ok(&["image", "list", "--fields=id,name"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(collapse(lines[0]), "ID NAME", "{out}");
    assert_eq!(
        collapse(lines[2]),
        format!("{} example.com/small:1.0.0", &small_key[..19])
    );

    let out = rkt.ok(&["image", "list", "--format=json"]);
    let v: Value = serde_json::from_str(&out.stdout).expect("json");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 2, "{out}");
    assert_eq!(arr[0]["id"], bb_key.as_str());
    assert_eq!(arr[0]["name"], "example.com/busybox:1.35.0");
    assert_eq!(arr[0]["size"].as_u64(), Some(full_size));
    assert!(full_size >= fs::metadata(image("busybox.aci")).unwrap().len() / 2);
    for e in arr {
        assert!(
            e["import_time"].as_i64().unwrap() > 1_500_000_000_000_000_000,
            "{e}"
        );
        assert!(e["last_used_time"].as_i64().is_some(), "{e}");
    }
    assert_eq!(arr[1]["id"], small_key.as_str());

    let out = rkt.ok(&["image", "list", "--format=json-pretty"]);
    let pretty: Value = serde_json::from_str(&out.stdout).expect("json-pretty");
    assert_eq!(pretty, v);
    assert!(out.stdout.lines().count() > 2, "{out}");

    // Short IDs from the list work as image arguments.
    let out = rkt.ok(&["image", "cat-manifest", &small_key[..19]]);
    assert!(out.stdout.contains("example.com/small"), "{out}");
}

#[test]
fn image_list_of_empty_store_prints_only_the_header() {
    let rkt = Rkt::new();
    let out = rkt.ok(&["image", "list"]);
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    assert_eq!(collapse(&out.stdout), "ID NAME SIZE IMPORT TIME LAST USED");
    let out = rkt.ok(&["image", "list", "--format=json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap(),
        Value::Array(vec![])
    );
}

#[test]
fn cat_manifest_by_name_and_short_key() {
    let rkt = Rkt::new();
    let key = rkt.fetch(&image("busybox.aci"));
    let by_name = rkt.ok(&["image", "cat-manifest", "example.com/busybox"]);
    let v: Value = serde_json::from_str(&by_name.stdout).expect("manifest JSON");
    assert_eq!(v["acKind"], "ImageManifest");
    assert_eq!(v["name"], "example.com/busybox");
    assert!(
        by_name.stdout.lines().count() > 3,
        "pretty-printed by default"
    );

    for arg in [
        &key[..19],
        &key[..39],
        key.as_str(),
        "example.com/busybox:1.35.0",
    ] {
        let out = rkt.ok(&["image", "cat-manifest", arg]);
        assert_eq!(
            serde_json::from_str::<Value>(&out.stdout).unwrap(),
            v,
            "{arg}"
        );
    }
    let out = rkt.ok(&[
        "image",
        "cat-manifest",
        "--pretty-print=false",
        "example.com/busybox",
    ]);
    assert_eq!(out.stdout.trim_end().lines().count(), 1, "{out}");
    assert_eq!(serde_json::from_str::<Value>(&out.stdout).unwrap(), v);

    let out = rkt.run(&["image", "cat-manifest", "example.com/busybox:9.9.9"]);
    assert_eq!(out.code, 254, "{out}");
}

#[test]
fn export_writes_the_stored_tar_and_reimports_to_the_same_key() {
    let rkt = Rkt::new();
    let key = rkt.fetch(&image("busybox.aci"));
    let out = test_dir(&rkt, "out");
    let aci = out.join("busybox.aci");
    rkt.ok(&["image", "export", "example.com/busybox", s(&aci)]);
    assert_eq!(format!("sha512-{}", &sha512_file(&aci)[..64]), key);

    let again = rkt.run(&["image", "export", &key[..19], s(&aci)]);
    assert_eq!(
        again.code, 254,
        "existing output without --overwrite: {again}"
    );
    assert_eq!(stderr_lines(&again).len(), 1, "{again}");
    rkt.ok(&["image", "export", "--overwrite", &key[..19], s(&aci)]);
    assert_eq!(format!("sha512-{}", &sha512_file(&aci)[..64]), key);

    let other = Rkt::new();
    assert_eq!(other.fetch(&aci), key);
}

#[test]
fn extract_with_and_without_rootfs_only() {
    let rkt = Rkt::new();
    let key = rkt.fetch(&small_aci(&rkt));
    let out = rkt.root().join("out-full");
    rkt.ok(&["image", "extract", "example.com/small", s(&out)]);
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["manifest", "rootfs"]);
    assert_eq!(fs::read(out.join("rootfs/etc/hello")).unwrap(), b"hello\n");
    let m: Value = serde_json::from_slice(&fs::read(out.join("manifest")).unwrap()).unwrap();
    assert_eq!(m["name"], "example.com/small");

    let out = rkt.root().join("out-rootfs");
    rkt.ok(&["image", "extract", "--rootfs-only", &key[..19], s(&out)]);
    assert_eq!(fs::read(out.join("etc/hello")).unwrap(), b"hello\n");
    assert!(!out.join("manifest").exists());
    assert!(!out.join("rootfs").exists());

    // A non-empty destination needs --overwrite.
    let again = rkt.run(&["image", "extract", "--rootfs-only", &key[..19], s(&out)]);
    assert_eq!(again.code, 254, "{again}");
    rkt.ok(&[
        "image",
        "extract",
        "--rootfs-only",
        "--overwrite",
        &key[..19],
        s(&out),
    ]);
    assert_eq!(fs::read(out.join("etc/hello")).unwrap(), b"hello\n");
}

/// Base image B and app image A (`dep_whitelist`: A's pathWhitelist).
fn dependency_chain(rkt: &Rkt, app_name: &str, whitelist: &[&str]) -> (PathBuf, PathBuf) {
    let base = build_aci(
        rkt,
        "base.aci",
        bare_manifest("example.com/base", &standard_labels("1.0.0")),
        &[
            ("base/one", b"one\n"),
            ("base/two", b"two\n"),
            ("shared", b"from base\n"),
        ],
    );
    let mut m = app_manifest(app_name, "2.0.0");
    m.dependencies = vec![serde_json::from_value(serde_json::json!({
        "imageName": "example.com/base",
        "labels": [{"name": "version", "value": "1.0.0"}],
    }))
    .unwrap()];
    m.path_whitelist = whitelist.iter().map(|s| s.to_string()).collect();
    let app = build_aci(
        rkt,
        &format!("{}.aci", app_name.replace('/', "_")),
        m,
        &[("app/file", b"app\n"), ("shared", b"from app\n")],
    );
    (base, app)
}

#[test]
fn render_includes_dependency_files() {
    let rkt = Rkt::new();
    let (base, app) = dependency_chain(&rkt, "example.com/app", &[]);
    rkt.fetch(&base);
    let app_key = rkt.fetch(&app);

    let out = rkt.root().join("out-render");
    rkt.ok(&["image", "render", "example.com/app", s(&out)]);
    let r = out.join("rootfs");
    assert_eq!(fs::read(r.join("base/one")).unwrap(), b"one\n");
    assert_eq!(fs::read(r.join("base/two")).unwrap(), b"two\n");
    assert_eq!(fs::read(r.join("app/file")).unwrap(), b"app\n");
    assert_eq!(
        fs::read(r.join("shared")).unwrap(),
        b"from app\n",
        "upper image wins"
    );
    let m: Value = serde_json::from_slice(&fs::read(out.join("manifest")).unwrap()).unwrap();
    assert_eq!(m["name"], "example.com/app", "the manifest is the app's");

    let out = rkt.root().join("out-rootfs");
    rkt.ok(&["image", "render", "--rootfs-only", &app_key[..19], s(&out)]);
    assert_eq!(fs::read(out.join("base/one")).unwrap(), b"one\n");
    assert!(!out.join("manifest").exists());

    // extract, unlike render, is the image's own ACI only.
    let out = rkt.root().join("out-extract");
    rkt.ok(&[
        "image",
        "extract",
        "--rootfs-only",
        "example.com/app",
        s(&out),
    ]);
    assert!(out.join("app/file").exists());
    assert!(!out.join("base").exists());
}

#[test]
fn render_applies_the_path_whitelist() {
    let rkt = Rkt::new();
    let (base, app) = dependency_chain(
        &rkt,
        "example.com/listed",
        &["/base/one", "/app/file", "/shared"],
    );
    rkt.fetch(&base);
    rkt.fetch(&app);
    let out = rkt.root().join("out-render");
    rkt.ok(&[
        "image",
        "render",
        "--rootfs-only",
        "example.com/listed",
        s(&out),
    ]);
    assert_eq!(fs::read(out.join("base/one")).unwrap(), b"one\n");
    assert!(out.join("base").is_dir(), "directories are always kept");
    assert!(
        !out.join("base/two").exists(),
        "base/two is not whitelisted"
    );
    assert_eq!(fs::read(out.join("app/file")).unwrap(), b"app\n");
    assert_eq!(fs::read(out.join("shared")).unwrap(), b"from app\n");
}

#[test]
fn fetching_an_image_whose_dependency_is_missing_fails_clearly() {
    let rkt = Rkt::new();
    let (_base, app) = dependency_chain(&rkt, "example.com/orphan", &[]);
    // rkt fetches dependencies too: the base is looked up by discovery,
    // offline here, and not found; the fetch fails naming it.
    let out = rkt.run_offline(&["--insecure-options=image", "fetch", s(&app)]);
    assert_eq!(out.code, 254, "{out}");
    assert!(out.stderr.contains("example.com/base"), "{out}");
    // With discovery ruled out, the store's answer.
    rkt.run(&[
        "--insecure-options=image",
        "fetch",
        "--pull-policy=never",
        s(&app),
    ])
    .expect_code(254)
    .expect_stderr("dependency example.com/base");
}

#[test]
fn render_refuses_to_write_into_root() {
    let rkt = Rkt::new();
    // A uniquely named file: if rkt did render into /, this is all it adds.
    let marker = format!("rkt-functional-test-render-{}", std::process::id());
    let aci = build_aci(
        &rkt,
        "marker.aci",
        bare_manifest("example.com/marker", &standard_labels("1.0.0")),
        &[(marker.as_str(), b"x")],
    );
    rkt.fetch(&aci);
    for args in [
        &[
            "image",
            "render",
            "--rootfs-only",
            "example.com/marker",
            "/",
        ][..],
        &[
            "image",
            "render",
            "--rootfs-only",
            "--overwrite",
            "example.com/marker",
            "/",
        ][..],
        &["image", "render", "--overwrite", "example.com/marker", "/"][..],
    ] {
        let out = rkt.run(args);
        let leaked = Path::new("/").join(&marker);
        let leaked_manifest_tree = Path::new("/rootfs").join(&marker);
        let leaked_any = leaked.exists() || leaked_manifest_tree.exists();
        let _ = fs::remove_file(&leaked);
        let _ = fs::remove_file(&leaked_manifest_tree);
        assert!(!leaked_any, "{args:?} rendered into /: {out}");
        assert_eq!(out.code, 254, "{args:?}: {out}");
        assert_eq!(stderr_lines(&out).len(), 1, "{out}");
    }
}

#[test]
fn rm_by_name_and_by_key() {
    let rkt = Rkt::new();
    let bb_key = rkt.fetch(&image("busybox.aci"));
    let small_key = rkt.fetch(&small_aci(&rkt));

    let out = rkt.ok(&["image", "rm", "example.com/small"]);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains(&format!(
            "successfully removed aci for image: \"{small_key}\""
        )),
        "{out}"
    );
    assert!(all.contains("1 image(s) successfully removed"), "{out}");
    assert_eq!(
        image_rows(&rkt),
        [(bb_key.clone(), "example.com/busybox:1.35.0".into())]
    );
    let blob = |k: &str| rkt.dir.join("cas/blob/sha512").join(&k[7..9]).join(k);
    assert!(
        !blob(&small_key).exists(),
        "blob of removed image left behind"
    );

    let out = rkt.ok(&["image", "rm", &bb_key[..19]]);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains(&format!("successfully removed aci for image: \"{bb_key}\"")),
        "{out}"
    );
    assert!(image_rows(&rkt).is_empty());
    let out = rkt.run(&["image", "cat-manifest", &bb_key]);
    assert_eq!(out.code, 254, "{out}");

    // Removing what is not there fails and names it.
    let out = rkt.run(&["image", "rm", "example.com/small"]);
    assert_eq!(out.code, 254, "{out}");
    assert!(out.stderr.contains("example.com/small"), "{out}");
    assert!(
        out.stderr
            .ends_with("image: 1 image(s) cannot be removed; see the lines above\n"),
        "{out}"
    );
}

fn prepare(rkt: &Rkt, image_arg: &str) -> String {
    let out = rkt.ok(&["--insecure-options=image", "prepare", "--quiet", image_arg]);
    let uuid = out.stdout.trim().to_string();
    assert_eq!(uuid.len(), 36, "{out}");
    uuid
}

#[test]
fn image_gc_removes_trees_not_used_by_pods() {
    stage1_image("fly");
    let rkt = Rkt::new();
    let bb_key = rkt.fetch(&image("busybox.aci"));
    let small_key = rkt.fetch(&small_aci(&rkt));
    let keep = prepare(&rkt, "example.com/busybox");
    let drop = prepare(&rkt, "example.com/small");
    let tree_of = |key: &str| {
        trees(&rkt)
            .into_iter()
            .find(|(_, k)| k == key)
            .map(|(p, _)| p)
    };
    let small_tree = tree_of(&small_key).expect("prepare renders the image into the tree store");
    let bb_tree = tree_of(&bb_key).expect("busybox tree");
    let before = trees(&rkt).len();
    assert!(before >= 3, "stage1 + two apps: {:?}", trees(&rkt));

    rkt.ok(&["rm", &drop]);
    let out = rkt.ok(&["image", "gc"]);
    let id = small_tree.file_name().unwrap().to_str().unwrap();
    assert!(
        out.stdout.contains(&format!("removed treestore \"{id}\"")),
        "{out}"
    );
    assert!(!small_tree.exists());
    assert!(bb_tree.exists(), "tree used by a prepared pod was removed");
    assert_eq!(trees(&rkt).len(), before - 1, "{:?}", trees(&rkt));
    // Default grace period (24h): recently used images stay.
    assert_eq!(image_rows(&rkt).len(), 3, "{:?}", image_rows(&rkt));

    rkt.ok(&["rm", &keep]);
    let out = rkt.ok(&["image", "gc", "--grace-period=0s"]);
    assert!(trees(&rkt).is_empty(), "{out}\n{:?}", trees(&rkt));
    assert!(image_rows(&rkt).is_empty(), "{out}");
}

#[test]
fn verify_checks_and_repairs_a_rendered_tree() {
    stage1_image("fly");
    let rkt = Rkt::new();
    let key = rkt.fetch(&image("busybox.aci"));
    let pod = prepare(&rkt, "example.com/busybox");
    let (tree, _) = trees(&rkt)
        .into_iter()
        .find(|(_, k)| *k == key)
        .expect("busybox tree");
    let out = rkt.ok(&["image", "verify", "example.com/busybox"]);
    assert!(
        out.stdout.contains("successfully verified checksum"),
        "{out}"
    );
    assert!(out.stdout.contains(&key), "{out}");

    let passwd = tree.join("rootfs/etc/passwd");
    let content = fs::read(&passwd).unwrap();
    fs::remove_file(&passwd).unwrap();
    let out = rkt.ok(&["image", "verify", &key[..19]]);
    assert!(
        out.stdout.contains("verification failed") || out.stderr.contains("verification failed"),
        "deleted file not detected: {out}"
    );
    assert_eq!(fs::read(&passwd).unwrap(), content, "tree not repaired");
    let out = rkt.ok(&["image", "verify", "example.com/busybox"]);
    assert!(
        out.stdout.contains("successfully verified checksum"),
        "{out}"
    );

    // A changed file is caught too.
    fs::write(&passwd, b"root::0:0::/:/bin/sh\n").unwrap();
    let out = rkt.ok(&["image", "verify", "example.com/busybox"]);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("verification failed"),
        "modified file not detected: {out}"
    );
    assert_eq!(fs::read(&passwd).unwrap(), content, "tree not repaired");
    rkt.ok(&["rm", &pod]);
}

/// rkt pre-renders fetched images into the tree store when running as root
/// (so the first `run` is fast); `image verify` then has a tree to check.
#[test]
fn fetch_as_root_renders_the_tree() {
    let rkt = Rkt::new();
    let key = rkt.fetch(&image("busybox.aci"));
    let t = trees(&rkt);
    let (tree, _) = t
        .iter()
        .find(|(_, k)| *k == key)
        .unwrap_or_else(|| panic!("no tree for {key} after fetch: {t:?}"));
    assert!(tree.join("rendered").exists());
    assert!(tree.join("rootfs/bin/busybox").exists());
}

/// Fetching by name: `new`/`never` take it from the store; `update` (rkt
/// fetch's default) goes to discovery (offline here, so it fails saying
/// what it tried; discovery.rs covers it online).
#[test]
fn fetch_by_name_follows_the_pull_policy() {
    let rkt = Rkt::new();
    let key = rkt.fetch(&image("busybox.aci"));
    let out = rkt.ok(&[
        "fetch",
        "--full",
        "--pull-policy=new",
        "example.com/busybox",
    ]);
    assert_eq!(out.stdout.trim(), key);
    rkt.ok(&["fetch", "--pull-policy=never", "example.com/busybox"]);
    rkt.run_offline(&["fetch", "example.com/busybox"])
        .expect_code(254)
        .expect_stderr("searching for app image example.com/busybox")
        .expect_stderr("discovery of \"example.com/busybox\" found no image URLs");
    rkt.run(&["fetch", "--pull-policy=never", "example.com/nope"])
        .expect_code(254)
        .expect_stderr("not found in the store");
}

/// Executables are rendered so that running one maps only the code it
/// touches: a fault maps the whole page-cache folio, and a folio is as
/// large as the write that made it, so they are written 64 KiB (the
/// kernel's fault-around window) at a time. Touching a page of the
/// rendered busybox must map at most those 16 pages, not the hundreds of
/// the large folios a plain copy makes (a pod supervisor's RSS doubled).
#[test]
fn rendered_executables_map_no_more_than_the_fault_around_window() {
    use std::os::fd::AsRawFd;
    let rkt = Rkt::new();
    let key = rkt.fetch(&image("busybox.aci"));
    let (tree, _) = trees(&rkt)
        .into_iter()
        .find(|(_, k)| *k == key)
        .expect("busybox tree");
    let exe = fs::File::open(tree.join("rootfs/bin/busybox")).unwrap();
    let len = exe.metadata().unwrap().len() as usize;
    assert!(
        len > 1 << 20,
        "busybox is {len} bytes: too small to tell folios apart"
    );
    // The fault-around window is aligned in the address space: map the
    // file at a 64 KiB-aligned address so the window covers one folio.
    const WINDOW: usize = 64 << 10;
    // SAFETY: reserving fresh address space, then mapping the file read-only
    // over an aligned part of that reservation; both unmapped below.
    let (reserved, addr) = unsafe {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        let reserved = libc::mmap(
            std::ptr::null_mut(),
            len + WINDOW,
            libc::PROT_NONE,
            flags,
            -1,
            0,
        );
        assert_ne!(reserved, libc::MAP_FAILED);
        let aligned = (reserved as usize).next_multiple_of(WINDOW) as *mut libc::c_void;
        let flags = libc::MAP_PRIVATE | libc::MAP_FIXED;
        (
            reserved,
            libc::mmap(aligned, len, libc::PROT_READ, flags, exe.as_raw_fd(), 0),
        )
    };
    assert_ne!(addr, libc::MAP_FAILED);
    let pages = len / 4096;
    let touched: Vec<usize> = (0..8).map(|i| i * pages / 8).collect();
    for page in &touched {
        // SAFETY: `page` pages into a mapping of `len` bytes.
        let _ = unsafe { std::ptr::read_volatile((addr as *const u8).add(page * 4096)) };
    }
    let mut entries = vec![0u8; pages * 8];
    let pagemap = fs::File::open("/proc/self/pagemap").unwrap();
    std::os::unix::fs::FileExt::read_exact_at(&pagemap, &mut entries, (addr as u64 / 4096) * 8)
        .unwrap();
    // SAFETY: unmapping the reservation (and the file mapping inside it).
    unsafe { libc::munmap(reserved, len + WINDOW) };
    let mapped = entries
        .chunks_exact(8)
        .filter(|e| u64::from_le_bytes((*e).try_into().unwrap()) >> 63 == 1)
        .count();
    assert!(
        (touched.len()..=16 * touched.len()).contains(&mapped),
        "touching {} pages of the rendered busybox mapped {mapped} pages, more than 16 each",
        touched.len()
    );
}
