//! The command line itself: version, exit codes, error-line conventions,
//! `rkt config` layering, global flags, completion.

use std::fs;
use std::path::Path;

use functional_tests::fixtures::stderr_lines;
use functional_tests::{image, Out, Rkt};
use serde_json::{json, Value};

/// rkt's own failures: exit 254 and exactly one stderr line starting with
/// one of `prefixes` followed by `": "`, naming every needle.
#[track_caller]
fn one_line_error(out: &Out, prefixes: &[&str], needles: &[&str]) {
    assert_eq!(out.code, 254, "expected exit 254; output:\n{out}");
    let lines = stderr_lines(out);
    assert_eq!(lines.len(), 1, "expected one error line; output:\n{out}");
    let line = lines[0];
    assert!(
        prefixes.iter().any(|p| line.starts_with(&format!("{p}: "))),
        "error line lacks a {prefixes:?} prefix: {line:?}"
    );
    for n in needles {
        assert!(line.contains(n), "error line does not name {n:?}: {line:?}");
    }
}

#[test]
fn version_prints_rkt_and_appc_versions() {
    let rkt = Rkt::new();
    let out = rkt.ok(&["version"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("rkt Version: {}", env!("CARGO_PKG_VERSION")).as_str()),
        "{out}"
    );
    assert_eq!(lines.get(1).copied(), Some("appc Version: 0.8.11"), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("OS/Arch: linux/") && !l.ends_with('/')),
        "no OS/Arch line: {out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Features: ")),
        "no Features line: {out}"
    );
    assert!(out.stderr.is_empty(), "{out}");
}

#[test]
fn missing_subcommand_exits_2() {
    let rkt = Rkt::new();
    let out = rkt.run(&[]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stdout.is_empty() || out.stderr.contains("missing subcommand"),
        "{out}"
    );
    // Global flags alone are still no subcommand.
    let out = rkt.run(&["--debug"]);
    assert_eq!(out.code, 2, "{out}");
}

#[test]
fn bogus_insecure_option_is_one_line_254_naming_the_value() {
    let rkt = Rkt::new();
    let out = rkt.run(&["--insecure-options=bogus", "image", "list"]);
    one_line_error(&out, &["image", "list"], &["bogus"]);
    let busybox = image("busybox.aci");
    let out = rkt.run(&[
        "--insecure-options=image,bogus",
        "fetch",
        busybox.to_str().unwrap(),
    ]);
    one_line_error(&out, &["fetch"], &["bogus"]);
    // Nothing was imported on the way.
    assert!(!rkt.dir.join("cas/blob").exists() || dir_is_empty_tree(&rkt.dir.join("cas/blob")));
}

fn dir_is_empty_tree(p: &Path) -> bool {
    fs::read_dir(p).unwrap().flatten().all(|e| {
        let p = e.path();
        p.is_dir() && dir_is_empty_tree(&p)
    })
}

#[test]
fn errors_are_one_line_prefixed_by_the_subcommand() {
    let rkt = Rkt::new();
    let missing = rkt.root().join("nonexistent.aci");
    let out = rkt.run(&[
        "--insecure-options=image",
        "fetch",
        missing.to_str().unwrap(),
    ]);
    assert!(!out.stderr.contains("\n\n"), "{out}");
    let lines: Vec<&str> = stderr_lines(&out)
        .into_iter()
        .filter(|l| !l.contains("warning: image signature verification has been disabled"))
        .collect();
    assert_eq!(out.code, 254, "{out}");
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].starts_with("fetch: "), "{out}");
    assert!(lines[0].contains("nonexistent.aci"), "{out}");

    let out = rkt.run(&["image", "cat-manifest", "example.com/nope"]);
    one_line_error(&out, &["image", "cat-manifest"], &["example.com/nope"]);
    let out = rkt.run(&["image", "export", "example.com/nope", "/nonexistent/x.aci"]);
    one_line_error(&out, &["image", "export"], &["example.com/nope"]);
    let out = rkt.run(&["status", "0000"]);
    one_line_error(&out, &["status"], &["0000"]);
    let out = rkt.run(&["cat-manifest", "0000"]);
    one_line_error(&out, &["cat-manifest"], &["0000"]);
}

#[test]
fn unknown_flag_exits_254() {
    let rkt = Rkt::new();
    let out = rkt.run(&["image", "list", "--no-such-flag"]);
    assert_eq!(out.code, 254, "{out}");
    assert!(out.stderr.contains("--no-such-flag"), "{out}");
}

/// Successful commands write only prefixed diagnostics to stderr (rkt's
/// `<subcommand>: ` convention): no stray debug lines without `--debug`.
#[test]
fn fetch_stderr_lines_are_all_prefixed() {
    let rkt = Rkt::new();
    let busybox = image("busybox.aci");
    let out = rkt.ok(&[
        "--insecure-options=image",
        "fetch",
        busybox.to_str().unwrap(),
    ]);
    for line in stderr_lines(&out) {
        assert!(
            line.starts_with("fetch: ") || line.starts_with("image: "),
            "unprefixed stderr line {line:?} from a plain fetch; output:\n{out}"
        );
    }
}

fn write_config(dir: &Path, sub: &str, file: &str, v: Value) {
    let d = dir.join(sub);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join(file), serde_json::to_vec(&v).unwrap()).unwrap();
}

fn config(rkt: &Rkt) -> Vec<Value> {
    let out = rkt.ok(&["config"]);
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("rkt config is not JSON ({e}):\n{out}"));
    let obj = v.as_object().expect("config is an object");
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["stage0"], "{out}");
    obj["stage0"]
        .as_array()
        .expect("stage0 is an array")
        .clone()
}

fn entries_of<'a>(stage0: &'a [Value], kind: &str) -> Vec<&'a Value> {
    stage0.iter().filter(|e| e["rktKind"] == kind).collect()
}

#[test]
fn config_without_files_is_valid_json() {
    let rkt = Rkt::new();
    let stage0 = config(&rkt);
    for e in &stage0 {
        assert_eq!(e["rktVersion"], "v1", "{e}");
        assert!(e["rktKind"].is_string(), "{e}");
    }
}

#[test]
fn config_layers_paths_and_stage1() {
    let rkt = Rkt::new();
    write_config(
        &rkt.system_config,
        "paths.d",
        "paths.json",
        json!({"rktKind": "paths", "rktVersion": "v1",
               "data": "/usr/lib/rkt/data", "stage1-images": "/usr/lib/rkt/stage1-images"}),
    );
    write_config(
        &rkt.user_config,
        "paths.d",
        "paths.json",
        json!({"rktKind": "paths", "rktVersion": "v1", "data": "/home/me/rkt/data"}),
    );
    write_config(
        &rkt.local_config,
        "stage1.d",
        "stage1.json",
        json!({"rktKind": "stage1", "rktVersion": "v1",
               "name": "example.com/rkt/stage1", "version": "1.2.3",
               "location": "http://example.com/download/stage1.aci"}),
    );
    write_config(
        &rkt.user_config,
        "stage1.d",
        "stage1.json",
        json!({"rktKind": "stage1", "rktVersion": "v1",
               "location": "http://localhost:8080/stage1.aci"}),
    );
    // Files not ending in .json are not config.
    write_config(
        &rkt.user_config,
        "stage1.d",
        "ignored.json.bak",
        json!({"rktKind": "stage1", "rktVersion": "v1", "location": "/ignored"}),
    );

    let stage0 = config(&rkt);
    let paths = entries_of(&stage0, "paths");
    assert_eq!(paths.len(), 1, "{stage0:?}");
    assert_eq!(
        *paths[0],
        json!({"rktKind": "paths", "rktVersion": "v1",
               "data": "/home/me/rkt/data", "stage1-images": "/usr/lib/rkt/stage1-images"})
    );
    let stage1 = entries_of(&stage0, "stage1");
    assert_eq!(stage1.len(), 1, "{stage0:?}");
    assert_eq!(
        *stage1[0],
        json!({"rktKind": "stage1", "rktVersion": "v1",
               "name": "example.com/rkt/stage1", "version": "1.2.3",
               "location": "http://localhost:8080/stage1.aci"})
    );
}

#[test]
fn config_duplicate_in_one_dir_is_an_error() {
    let rkt = Rkt::new();
    for f in ["a.json", "b.json"] {
        write_config(
            &rkt.local_config,
            "paths.d",
            f,
            json!({"rktKind": "paths", "rktVersion": "v1", "stage1-images": format!("/{f}")}),
        );
    }
    let out = rkt.run(&["config"]);
    one_line_error(&out, &["config"], &["paths.d"]);
}

#[test]
fn config_invalid_json_is_an_error_naming_the_file() {
    let rkt = Rkt::new();
    let d = rkt.local_config.join("paths.d");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("broken.json"), b"{not json").unwrap();
    let out = rkt.run(&["config"]);
    one_line_error(&out, &["config"], &["broken.json"]);
}

#[test]
fn debug_flag_is_accepted() {
    let rkt = Rkt::new();
    rkt.ok(&["--debug", "version"]);
    let out = rkt.ok(&["--debug", "image", "list"]);
    assert!(out.stdout.starts_with("ID"), "{out}");
    rkt.ok(&["--debug", "list"]);
}

/// rkt's global flags are cobra persistent flags: users put them after the
/// subcommand too (`rkt fetch --insecure-options=image x.aci`).
#[test]
fn global_flags_are_accepted_after_the_subcommand() {
    let rkt = Rkt::new();
    let busybox = image("busybox.aci");
    let out = rkt.run(&[
        "fetch",
        "--insecure-options=image",
        busybox.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.trim().starts_with("sha512-"), "{out}");
    rkt.ok(&["image", "list", "--debug"]);
}

#[test]
fn completion_bash_prints_a_script() {
    let rkt = Rkt::new();
    let out = rkt.ok(&["completion", "bash"]);
    assert!(out.stdout.contains("rkt"), "{out}");
    assert!(out.stdout.contains("complete"), "{out}");
    let out = rkt.run(&["completion", "tcsh"]);
    assert_eq!(out.code, 254, "{out}");
}

/// The hidden profiling flags write real profiles: folded CPU stacks and a
/// heap summary.
#[test]
fn cpu_and_memory_profiles_are_written() {
    let rkt = Rkt::new();
    let cpu = rkt.root().join("cpu.folded");
    let mem = rkt.root().join("mem.txt");
    let busybox = image("busybox.aci");
    rkt.ok(&[
        &format!("--cpuprofile={}", cpu.display()),
        &format!("--memprofile={}", mem.display()),
        "--insecure-options=image",
        "fetch",
        busybox.to_str().unwrap(),
    ]);
    let mem = fs::read_to_string(&mem).unwrap();
    let peak: u64 = mem
        .lines()
        .find_map(|l| l.strip_prefix("heap_peak_bytes "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no heap_peak_bytes in {mem}"));
    assert!(peak > 0, "{mem}");
    assert!(mem.contains("VmHWM"), "{mem}");
    // Sampling may catch nothing in a very short run, but the file exists and
    // every line is `stack count`.
    let cpu = fs::read_to_string(&cpu).unwrap();
    for line in cpu.lines() {
        let count = line.rsplit(' ').next().unwrap();
        assert!(count.parse::<u64>().is_ok(), "{line}");
    }
}
