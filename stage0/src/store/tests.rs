//! Store tests with ACIs built in memory (including hostile ones).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use sha2::{Digest, Sha512};
use tar::{EntryType, Header};

use super::*;

/// Raw tar entry: the name goes straight into the header, unchecked, so
/// tests can write names the `tar` crate would refuse.
pub(crate) fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: EntryType,
    data: &[u8],
    link: Option<&str>,
    mode: u32,
) {
    let mut h = Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            old.linkname = [0; 100];
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_000_000);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

pub(crate) fn manifest(name: &str, extra: &str) -> String {
    format!(r#"{{"acKind":"ImageManifest","acVersion":"0.8.11","name":"{name}"{extra}}}"#)
}

/// An ACI with `manifest`, `rootfs` and the given files (parents must be listed).
pub(crate) fn aci(manifest: &str, entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(
        &mut b,
        "manifest",
        EntryType::Regular,
        manifest.as_bytes(),
        None,
        0o644,
    );
    raw_entry(&mut b, "rootfs", EntryType::Directory, b"", None, 0o755);
    for (name, data) in entries {
        if name.ends_with('/') {
            raw_entry(&mut b, name, EntryType::Directory, b"", None, 0o755);
        } else {
            raw_entry(&mut b, name, EntryType::Regular, data, None, 0o644);
        }
    }
    b.into_inner().unwrap()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    (dir, s)
}

/// Imports without rendering (tests of rendering render explicitly).
fn import(s: &Store, bytes: &[u8]) -> Result<ImageKey, StoreError> {
    import_rendering(s, bytes, false)
}

fn import_rendering(s: &Store, bytes: &[u8], render: bool) -> Result<ImageKey, StoreError> {
    s.import(
        bytes,
        &ImportOptions {
            render_tree: Some(render),
            ..Default::default()
        },
    )
}

/// Names left in `cas/tmp`.
fn tmp_names(s: &Store) -> Vec<String> {
    fs::read_dir(s.cas_dir().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn labels(l: &[(&str, &str)]) -> Vec<(String, String)> {
    l.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn import_all_compressions_gives_the_same_key() {
    let (_d, s) = store();
    let tar = aci(&manifest("example.com/a", ""), &[("rootfs/hello", b"hi")]);
    let want = ImageKey::from_digest(&Sha512::digest(&tar));

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&tar).unwrap();
    let bz = bz.finish().unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&tar).unwrap();
    let xz = xz.finish().unwrap();

    for bytes in [&tar, &gz, &bz, &xz] {
        assert_eq!(import(&s, bytes).unwrap(), want);
    }
    let list = s.list().unwrap();
    assert_eq!(list.len(), 1, "re-import must not duplicate");
    let info = s.info(&want).unwrap();
    assert_eq!(info.name, "example.com/a");
    assert_eq!(info.size, tar.len() as u64);
    let mut blob = Vec::new();
    s.open_blob(&want).unwrap().read_to_end(&mut blob).unwrap();
    assert_eq!(blob, tar, "the blob is the uncompressed tar, byte for byte");
    s.verify_blob(&want).unwrap();
    assert_eq!(s.manifest(&want).unwrap().name.as_str(), "example.com/a");
    // Nothing left behind in tmp.
    assert_eq!(fs::read_dir(s.cas_dir().join("tmp")).unwrap().count(), 0);
}

#[test]
fn big_import_crosses_buffer_boundaries() {
    let (_d, s) = store();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let tar = aci(&manifest("example.com/big", ""), &[("rootfs/big", &big)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let key = import(&s, &gz.finish().unwrap()).unwrap();
    assert_eq!(key, ImageKey::from_digest(&Sha512::digest(&tar)));
}

#[test]
fn key_resolution() {
    let (_d, s) = store();
    let mut keys = Vec::new();
    for i in 0..40 {
        let tar = aci(&manifest(&format!("example.com/x{i}"), ""), &[]);
        keys.push(import(&s, &tar).unwrap());
    }
    let k = &keys[0];
    assert_eq!(&s.resolve_key(k.as_str()).unwrap(), k);
    assert_eq!(&s.resolve_key(&k.as_str()[..30]).unwrap(), k);
    assert_eq!(&s.resolve_key(&k.as_str().to_uppercase()).unwrap(), k);
    assert!(matches!(
        s.resolve_key("sha512-"),
        Err(StoreError::BadKey(_))
    ));
    let absent = (0..=255u8)
        .map(|b| format!("sha512-{b:02x}"))
        .find(|p| !keys.iter().any(|k| k.as_str().starts_with(p)))
        .unwrap();
    assert!(matches!(
        s.resolve_key(&absent),
        Err(StoreError::NotFound(_))
    ));
    let shared = (0..=255u8)
        .map(|b| format!("sha512-{b:02x}"))
        .find(|p| keys.iter().filter(|k| k.as_str().starts_with(p)).count() > 1)
        .expect("40 keys share some 2-hex prefix");
    assert!(matches!(
        s.resolve_key(&shared),
        Err(StoreError::Ambiguous(_))
    ));
}

#[test]
fn name_lookup_follows_getaci_rules() {
    let (_d, s) = store();
    let img = |v: &str, extra: &str| {
        aci(
            &manifest(
                "example.com/app",
                &format!(
                    r#","labels":[{{"name":"version","value":"{v}"}},{{"name":"os","value":"linux"}}{extra}]"#
                ),
            ),
            &[],
        )
    };
    let v1 = s
        .import(
            &img("1", "")[..],
            &ImportOptions {
                latest: true,
                ..Default::default()
            },
        )
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let v2 = import(&s, &img("2", "")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let v3 = import(&s, &img("3", r#",{"name":"arch","value":"amd64"}"#)).unwrap();

    // No version requested: the `latest` image wins over newer imports.
    assert_eq!(
        s.find_by_name("example.com/app", &[]).unwrap(),
        Some(v1.clone())
    );
    // A version requested: exact match.
    assert_eq!(
        s.find_by_name("example.com/app", &labels(&[("version", "2")]))
            .unwrap(),
        Some(v2)
    );
    // All labels must match.
    assert_eq!(
        s.find_by_name("example.com/app", &labels(&[("arch", "amd64")]))
            .unwrap(),
        Some(v3)
    );
    assert_eq!(
        s.find_by_name("example.com/app", &labels(&[("os", "freebsd")]))
            .unwrap(),
        None
    );
    assert_eq!(s.find_by_name("example.com/other", &[]).unwrap(), None);
    s.remove(&v1).unwrap();
    assert!(matches!(s.remove(&v1), Err(StoreError::NotFound(_))));
    assert!(s.open_blob(&v1).is_err());
}

/// A->[B,C], C->[D]: render order B, D, C, A (A wins), whitelists filter.
#[test]
fn render_order_and_whitelists() {
    let (_d, s) = store();
    let dep = |n: &str| format!(r#"{{"imageName":"example.com/{n}"}}"#);
    let d = aci(
        &manifest("example.com/d", ""),
        &[
            ("rootfs/common", b"D"),
            ("rootfs/bd", b"D"),
            ("rootfs/d-only", b"D"),
            ("rootfs/d-hidden", b"D"),
        ],
    );
    let c = aci(
        &manifest(
            "example.com/c",
            &format!(
                r#","dependencies":[{}],"pathWhitelist":["/common","/bd","/d-only","/cd","/etc"]"#,
                dep("d")
            ),
        ),
        &[
            ("rootfs/common", b"C"),
            ("rootfs/c-hidden", b"C"),
            ("rootfs/cd", b"C"),
            ("rootfs/etc/", b""),
        ],
    );
    let b = aci(
        &manifest("example.com/b", ""),
        &[
            ("rootfs/common", b"B"),
            ("rootfs/bd", b"B"),
            ("rootfs/b-only", b"B"),
            ("rootfs/etc/", b""),
            ("rootfs/etc/b", b"B"),
        ],
    );
    let a = aci(
        &manifest(
            "example.com/a",
            &format!(r#","dependencies":[{},{}]"#, dep("b"), dep("c")),
        ),
        &[("rootfs/a-only", b"A")],
    );
    for img in [&d, &c, &b] {
        import(&s, img).unwrap();
    }
    let ka = import(&s, &a).unwrap();
    let order: Vec<String> = dep_list(&s, &ka)
        .unwrap()
        .iter()
        .map(|l| l.manifest.name.to_string())
        .collect();
    assert_eq!(
        order,
        [
            "example.com/a",
            "example.com/c",
            "example.com/d",
            "example.com/b"
        ]
    );

    let id = s.render_tree(&ka).unwrap();
    assert!(id.as_str().starts_with("deps-sha512-"));
    let root = s.tree_rootfs(&id);
    let read = |p: &str| fs::read_to_string(root.join(p)).ok();
    assert_eq!(read("a-only").as_deref(), Some("A"));
    assert_eq!(
        read("common").as_deref(),
        Some("C"),
        "C comes before D and B"
    );
    assert_eq!(read("bd").as_deref(), Some("D"), "D comes before B");
    assert_eq!(read("d-only").as_deref(), Some("D"));
    assert_eq!(read("b-only").as_deref(), Some("B"));
    assert_eq!(read("etc/b").as_deref(), Some("B"));
    assert_eq!(read("cd").as_deref(), Some("C"));
    assert_eq!(read("c-hidden"), None, "not in C's own whitelist");
    assert_eq!(
        read("d-hidden"),
        None,
        "not in the whitelist of D's parent C"
    );
    assert_eq!(
        fs::read(s.tree_dir(&id).join("manifest")).unwrap(),
        s.raw_manifest(&ka).unwrap()
    );
    assert!(s.tree_rendered(&id));

    // Idempotent and verifiable; tampering is detected.
    assert_eq!(s.render_tree(&ka).unwrap(), id);
    assert_eq!(s.list_trees().unwrap(), vec![id.clone()]);
    s.verify_tree(&id).unwrap();
    assert!(s.info(&ka).unwrap().tree_store_size > 0);
    fs::remove_file(root.join("b-only")).unwrap();
    assert!(s.verify_tree(&id).is_err());
    s.remove_tree(&id).unwrap();
    assert!(s.list_trees().unwrap().is_empty());

    // Missing dependency.
    let (_d2, s2) = store();
    let ka2 = import(&s2, &a).unwrap();
    let err = s2.render_tree(&ka2).unwrap_err().to_string();
    assert!(err.contains("example.com/b"), "{err}");
}

fn assert_unsafe(s: &Store, tar: &[u8], needle: &str) {
    for render in [false, true] {
        let err = import_rendering(s, tar, render)
            .expect_err("hostile archive was imported")
            .to_string();
        assert!(
            err.contains(needle),
            "error {err:?} should mention {needle:?}"
        );
        assert!(s.list().unwrap().is_empty());
        assert!(s.list_trees().unwrap().is_empty());
        assert!(tmp_names(s).is_empty(), "{:?}", tmp_names(s));
    }
}

#[test]
fn hostile_archives_are_refused_at_import() {
    let (_d, s) = store();
    let m = manifest("example.com/evil", "");
    let with = |f: &dyn Fn(&mut tar::Builder<Vec<u8>>)| {
        let mut b = tar::Builder::new(Vec::new());
        raw_entry(
            &mut b,
            "manifest",
            EntryType::Regular,
            m.as_bytes(),
            None,
            0o644,
        );
        raw_entry(&mut b, "rootfs", EntryType::Directory, b"", None, 0o755);
        f(&mut b);
        b.into_inner().unwrap()
    };
    assert_unsafe(
        &s,
        &with(&|b| {
            raw_entry(
                b,
                "rootfs/../../etc/x",
                EntryType::Regular,
                b"x",
                None,
                0o644,
            )
        }),
        "\"..\"",
    );
    assert_unsafe(
        &s,
        &with(&|b| raw_entry(b, "/etc/x", EntryType::Regular, b"x", None, 0o644)),
        "absolute",
    );
    assert_unsafe(
        &s,
        &with(&|b| {
            raw_entry(
                b,
                "rootfs/evil",
                EntryType::Symlink,
                b"",
                Some("/etc"),
                0o777,
            );
            raw_entry(
                b,
                "rootfs/evil/passwd",
                EntryType::Regular,
                b"x",
                None,
                0o644,
            );
        }),
        "under an earlier symlink",
    );
    assert_unsafe(
        &s,
        &with(&|b| {
            raw_entry(
                b,
                "rootfs/l",
                EntryType::Link,
                b"",
                Some("/etc/shadow"),
                0o644,
            )
        }),
        "absolute",
    );
    assert_unsafe(
        &s,
        &with(&|b| {
            raw_entry(
                b,
                "rootfs/l",
                EntryType::Link,
                b"",
                Some("rootfs/later"),
                0o644,
            )
        }),
        "hard link target",
    );
    assert_unsafe(
        &s,
        &with(&|b| raw_entry(b, "rootfs/l", EntryType::Link, b"", Some("manifest"), 0o644)),
        "hard link target",
    );
    assert_unsafe(
        &s,
        &with(&|b| raw_entry(b, "rootfs/dev/sda", EntryType::Block, b"", None, 0o600)),
        "device nodes are not allowed in images",
    );
    assert_unsafe(
        &s,
        &with(&|b| raw_entry(b, "rootfs/null", EntryType::Char, b"", None, 0o600)),
        "rootfs/null",
    );
    assert_unsafe(
        &s,
        &with(&|b| raw_entry(b, "extra", EntryType::Regular, b"x", None, 0o644)),
        "top-level",
    );
    assert_unsafe(
        &s,
        &with(&|b| raw_entry(b, "rootfs", EntryType::Directory, b"", None, 0o755)),
        "duplicate",
    );
    let huge = " ".repeat(MAX_MANIFEST_SIZE as usize + 1) + &m;
    assert_unsafe(&s, &aci(&huge, &[]), "limit");
    assert_unsafe(&s, &aci(r#"{"acKind":"PodManifest"}"#, &[]), "manifest");

    // No rootfs, no manifest.
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(
        &mut b,
        "manifest",
        EntryType::Regular,
        m.as_bytes(),
        None,
        0o644,
    );
    assert_unsafe(&s, &b.into_inner().unwrap(), "no rootfs");
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "rootfs", EntryType::Directory, b"", None, 0o755);
    assert_unsafe(&s, &b.into_inner().unwrap(), "no image manifest");

    // Truncated and garbage input.
    let good = aci(&m, &[("rootfs/f", &[7u8; 5000])]);
    assert_unsafe(&s, &good[..2048], "truncated");
    assert_unsafe(
        &s,
        b"this is not an image at all, just some text",
        "unknown image filetype",
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&good).unwrap();
    let gz = gz.finish().unwrap();
    assert_unsafe(&s, &gz[..gz.len() / 2], "corrupt or truncated");
    assert_eq!(fs::read_dir(s.cas_dir().join("tmp")).unwrap().count(), 0);
}

/// A lower layer's symlink must not let an upper layer write outside the tree.
#[test]
fn render_never_writes_through_a_lower_symlink() {
    let (d, s) = store();
    let outside = d.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let mut bb = tar::Builder::new(Vec::new());
    let mb = manifest("example.com/b", "");
    raw_entry(
        &mut bb,
        "manifest",
        EntryType::Regular,
        mb.as_bytes(),
        None,
        0o644,
    );
    raw_entry(&mut bb, "rootfs", EntryType::Directory, b"", None, 0o755);
    raw_entry(
        &mut bb,
        "rootfs/evil",
        EntryType::Symlink,
        b"",
        Some(outside.to_str().unwrap()),
        0o777,
    );
    import(&s, &bb.into_inner().unwrap()).unwrap();
    let a = aci(
        &manifest(
            "example.com/a",
            r#","dependencies":[{"imageName":"example.com/b"}]"#,
        ),
        &[("rootfs/evil/pwned", b"x")],
    );
    let ka = import(&s, &a).unwrap();
    let err = s.render_tree(&ka).unwrap_err().to_string();
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert!(s.list_trees().unwrap().is_empty());
}

#[test]
fn extraction_preserves_metadata() {
    let (d, s) = store();
    let m = manifest("example.com/meta", "");
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(
        &mut b,
        "manifest",
        EntryType::Regular,
        m.as_bytes(),
        None,
        0o644,
    );
    raw_entry(&mut b, "rootfs", EntryType::Directory, b"", None, 0o755);
    raw_entry(&mut b, "rootfs/bin", EntryType::Directory, b"", None, 0o711);
    raw_entry(
        &mut b,
        "rootfs/bin/su",
        EntryType::Regular,
        b"#!",
        None,
        0o4755,
    );
    raw_entry(
        &mut b,
        "rootfs/bin/su2",
        EntryType::Link,
        b"",
        Some("rootfs/bin/su"),
        0o4755,
    );
    raw_entry(
        &mut b,
        "rootfs/sh",
        EntryType::Symlink,
        b"",
        Some("bin/su"),
        0o777,
    );
    raw_entry(&mut b, "rootfs/fifo", EntryType::Fifo, b"", None, 0o640);
    let key = import(&s, &b.into_inner().unwrap()).unwrap();

    let dest = d.path().join("out");
    s.extract_to(&key, &dest, false).unwrap();
    let root = dest.join("rootfs");
    assert_eq!(fs::read(dest.join("manifest")).unwrap(), m.as_bytes());
    let su = fs::metadata(root.join("bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(su.mtime(), 1_000_000);
    assert_eq!(su.nlink(), 2);
    assert_eq!(fs::metadata(root.join("bin/su2")).unwrap().ino(), su.ino());
    assert_eq!(
        fs::metadata(root.join("bin")).unwrap().permissions().mode() & 0o7777,
        0o711
    );
    assert_eq!(fs::metadata(root.join("bin")).unwrap().mtime(), 1_000_000);
    assert_eq!(fs::read_link(root.join("sh")).unwrap(), Path::new("bin/su"));
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(root.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());

    let only = d.path().join("rootfs-only");
    s.extract_to(&key, &only, true).unwrap();
    assert!(only.join("bin/su").exists() && !only.join("manifest").exists());

    let rendered = d.path().join("rendered");
    s.render_to(&key, &rendered).unwrap();
    assert_eq!(fs::read(rendered.join("rootfs/bin/su")).unwrap(), b"#!");
    assert!(rendered.join("manifest").exists());
}

/// An ACI exercising every kind of entry, with the manifest last.
fn manifest_last_aci(m: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "rootfs", EntryType::Directory, b"", None, 0o755);
    raw_entry(&mut b, "rootfs/bin", EntryType::Directory, b"", None, 0o711);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    raw_entry(
        &mut b,
        "rootfs/bin/big",
        EntryType::Regular,
        &big,
        None,
        0o755,
    );
    raw_entry(
        &mut b,
        "rootfs/bin/su",
        EntryType::Regular,
        b"#!",
        None,
        0o4755,
    );
    raw_entry(
        &mut b,
        "rootfs/bin/su2",
        EntryType::Link,
        b"",
        Some("rootfs/bin/su"),
        0o4755,
    );
    raw_entry(
        &mut b,
        "rootfs/sh",
        EntryType::Symlink,
        b"",
        Some("bin/su"),
        0o777,
    );
    raw_entry(&mut b, "rootfs/fifo", EntryType::Fifo, b"", None, 0o640);
    raw_entry(
        &mut b,
        "manifest",
        EntryType::Regular,
        m.as_bytes(),
        None,
        0o644,
    );
    b.into_inner().unwrap()
}

#[test]
fn tree_rendered_while_importing_equals_a_render() {
    let (_d, s) = store();
    let m = manifest("example.com/own", "");
    let key = import_rendering(&s, &manifest_last_aci(&m), true).unwrap();
    let id = s.tree_id(&key).unwrap();
    assert!(s.tree_rendered(&id));
    assert_eq!(s.list_trees().unwrap(), vec![id.clone()]);
    assert!(tmp_names(&s).is_empty(), "{:?}", tmp_names(&s));
    let size = s.info(&key).unwrap().tree_store_size;
    assert_eq!(size, 3_000_004, "hard links count like the tree walk did");
    s.verify_tree(&id).unwrap();
    let root = s.tree_rootfs(&id);
    let su = fs::metadata(root.join("bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(su.nlink(), 2);
    assert_eq!(fs::read_link(root.join("sh")).unwrap(), Path::new("bin/su"));
    assert_eq!(
        fs::read(s.tree_dir(&id).join("manifest")).unwrap(),
        m.as_bytes()
    );
    assert_eq!(s.tree_image(&id), Some(key.clone()));
    let hash = fs::read_to_string(s.tree_dir(&id).join("hash")).unwrap();

    // The same tree and hash as rendering from the blob.
    s.remove_tree(&id).unwrap();
    assert_eq!(s.render_tree(&key).unwrap(), id);
    assert_eq!(
        fs::read_to_string(s.tree_dir(&id).join("hash")).unwrap(),
        hash
    );

    // Importing again keeps the existing tree; changes are still detected.
    assert_eq!(
        import_rendering(&s, &manifest_last_aci(&m), true).unwrap(),
        key
    );
    assert!(tmp_names(&s).is_empty(), "{:?}", tmp_names(&s));
    s.verify_tree(&id).unwrap();
    fs::write(root.join("bin/big"), b"changed").unwrap();
    assert!(s.verify_tree(&id).is_err());
    fs::remove_file(root.join("bin/big")).unwrap();
    assert!(s.verify_tree(&id).is_err());
}

#[test]
fn images_with_dependencies_or_whitelists_are_not_rendered_while_importing() {
    let (_d, s) = store();
    let base = import(&s, &aci(&manifest("example.com/base", ""), &[])).unwrap();
    let deps = manifest(
        "example.com/app",
        r#","dependencies":[{"imageName":"example.com/base"}]"#,
    );
    let listed = manifest("example.com/listed", r#","pathWhitelist":["/a"]"#);
    for m in [deps, listed] {
        for tar in [aci(&m, &[("rootfs/a", b"a")]), manifest_last_aci(&m)] {
            import_rendering(&s, &tar, true).unwrap();
            assert!(s.list_trees().unwrap().is_empty());
            assert!(tmp_names(&s).is_empty(), "{:?}", tmp_names(&s));
        }
    }
    assert!(!s.tree_rendered(&s.tree_id(&base).unwrap()));
}

#[test]
fn stale_temp_files_are_cleaned_on_open() {
    let (d, s) = store();
    let stale = s.cas_dir().join("tmp/import-deadbeef");
    fs::write(&stale, b"half an image").unwrap();
    let fresh = s.cas_dir().join("tmp/import-fresh");
    fs::write(&fresh, b"being written").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    // A tree of an import killed while rendering: its lock file is gone.
    let orphan = s.cas_dir().join("tmp/import-gone.tree");
    fs::create_dir_all(orphan.join("rootfs/x")).unwrap();
    // One whose import is still running keeps its (locked) lock file.
    let live = s.temp_file("import-").unwrap();
    let live_tree = PathBuf::from(format!("{}{SPEC_SUFFIX}", live.path.display()));
    fs::create_dir_all(live_tree.join("rootfs")).unwrap();
    drop(s);
    let _s = Store::open(d.path()).unwrap();
    assert!(!orphan.exists());
    assert!(live_tree.exists());
    drop(live);
    fs::remove_dir_all(&live_tree).unwrap();
    assert!(!stale.exists());
    assert!(
        fresh.exists(),
        "a just-created temp file may not be locked yet"
    );
}

#[test]
fn concurrent_imports_of_one_image() {
    let (_d, s) = store();
    let tar = aci(
        &manifest("example.com/c", ""),
        &[("rootfs/x", &[1u8; 100_000])],
    );
    let keys: Vec<ImageKey> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let dir = s.cas_dir().parent().unwrap().to_path_buf();
                let tar = &tar;
                sc.spawn(move || {
                    Store::open(&dir)
                        .unwrap()
                        .import(&tar[..], &ImportOptions::default())
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(s.list().unwrap().len(), 1);
    s.verify_blob(&keys[0]).unwrap();
}

#[test]
fn long_names_and_pax_headers_are_handled() {
    let (d, s) = store();
    let m = manifest("example.com/long", "");
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(
        &mut b,
        "manifest",
        EntryType::Regular,
        m.as_bytes(),
        None,
        0o644,
    );
    raw_entry(&mut b, "rootfs", EntryType::Directory, b"", None, 0o755);
    let long = format!("rootfs/{}", "d".repeat(150));
    let mut h = Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o600);
    h.set_entry_type(EntryType::Regular);
    b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
    b.append_pax_extensions([("SCHILY.xattr.user.test", &b"v"[..])])
        .unwrap();
    let mut h = Header::new_ustar();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_entry_type(EntryType::Regular);
    b.append_data(&mut h, "rootfs/x", &b"x"[..]).unwrap();
    let key = import(&s, &b.into_inner().unwrap()).unwrap();
    let out = d.path().join("out");
    s.extract_to(&key, &out, true).unwrap();
    assert_eq!(fs::read(out.join("d".repeat(150))).unwrap(), b"abc");
    assert_eq!(fs::read(out.join("x")).unwrap(), b"x");
}
