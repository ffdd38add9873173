use std::fs;

use super::*;
use crate::store::tests_support::{aci, manifest};

fn setup() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("data")).unwrap();
    (d, s)
}

fn insecure() -> InsecureOptions {
    InsecureOptions::parse("image").unwrap()
}

#[test]
fn files_need_a_signature_unless_insecure() {
    let (d, s) = setup();
    let file = d.path().join("app.aci");
    fs::write(&file, aci(&manifest("example.com/app", ""), &[])).unwrap();

    let strict = Fetcher::new(&s, InsecureOptions::default(), PullPolicy::New, false);
    let err = strict
        .fetch(file.to_str().unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--insecure-options=image") && err.contains("app.aci"),
        "{err}"
    );
    fs::write(d.path().join("app.aci.asc"), b"sig").unwrap();
    let err = strict
        .fetch(file.to_str().unwrap(), None)
        .unwrap_err()
        .to_string();
    // A file that is not a signature is refused before anything is stored.
    assert!(err.contains("app.aci.asc"), "{err}");
    assert!(s.find_by_name("example.com/app", &[]).unwrap().is_none());

    let f = Fetcher::new(&s, insecure(), PullPolicy::Never, false);
    let key = f.fetch(file.to_str().unwrap(), None).unwrap();
    assert_eq!(f.fetch(&key.as_str()[..20], None).unwrap(), key);
}

#[test]
fn names_come_from_the_store_with_host_labels() {
    let (d, s) = setup();
    let (os, arch) = abi::schema::host_os_arch();
    let labels = format!(
        r#","labels":[{{"name":"version","value":"1.0"}},{{"name":"os","value":"{os}"}},{{"name":"arch","value":"{arch}"}}]"#
    );
    let file = d.path().join("app.aci");
    fs::write(&file, aci(&manifest("example.com/app", &labels), &[])).unwrap();
    let f = Fetcher::new(&s, insecure(), PullPolicy::New, false);
    let key = f.fetch(file.to_str().unwrap(), None).unwrap();
    assert_eq!(f.fetch("example.com/app", None).unwrap(), key);
    assert_eq!(f.fetch("example.com/app:1.0", None).unwrap(), key);
    // (`new` would go to discovery; unit tests stay off the network.)
    let store_only = Fetcher::new(&s, insecure(), PullPolicy::Never, false);
    let err = store_only
        .fetch("example.com/app:2.0", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not found in the store"), "{err}");
    assert!(store_only.fetch("https://127.0.0.1:1/x.aci", None).is_err());
    assert!(f.fetch("docker://busybox", None).is_err());
}

#[test]
fn missing_dependencies_are_reported() {
    let (d, s) = setup();
    let file = d.path().join("top.aci");
    let m = manifest(
        "example.com/top",
        r#","dependencies":[{"imageName":"example.com/base"}]"#,
    );
    fs::write(&file, aci(&m, &[])).unwrap();
    // (Other policies would look the dependency up by discovery; unit
    // tests stay off the network.)
    let f = Fetcher::new(&s, insecure(), PullPolicy::Never, false);
    let err = f
        .fetch_with_deps(file.to_str().unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("example.com/base"), "{err}");
    let base = d.path().join("base.aci");
    fs::write(&base, aci(&manifest("example.com/base", ""), &[])).unwrap();
    f.fetch(base.to_str().unwrap(), None).unwrap();
    f.fetch_with_deps(file.to_str().unwrap(), None).unwrap();
}

#[test]
fn asc_paths() {
    assert_eq!(asc_path(Path::new("/a/b.aci")), Path::new("/a/b.aci.asc"));
    assert_eq!(asc_path(Path::new("/a/b")), Path::new("/a/b.aci.asc"));
}
