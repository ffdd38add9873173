use std::collections::BTreeMap;

use super::*;

enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Link(&'a str, &'a str),
    Symlink(&'a str, &'a str),
    Dev(&'a str),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = Header::new_ustar();
        h.set_mode(0o644);
        h.set_mtime(1);
        match e {
            E::Dir(p) => {
                h.set_entry_type(EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, io::empty()).unwrap();
            }
            E::File(p, body) => {
                h.set_size(body.len() as u64);
                b.append_data(&mut h, p, body.as_bytes()).unwrap();
            }
            E::Link(p, t) => {
                h.set_entry_type(EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Symlink(p, t) => {
                h.set_entry_type(EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Dev(p) => {
                h.set_entry_type(EntryType::Char);
                h.set_size(0);
                b.append_data(&mut h, p, io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Flattens `layers` (oldest first, as a manifest lists them) and returns
/// the ACI's entries: path → (kind, content or link target).
fn flatten(layers: &[Vec<u8>]) -> Result<BTreeMap<String, (char, String)>, FlattenError> {
    let mut f = Flattener::new(Vec::new())?;
    for (i, l) in layers.iter().enumerate().rev() {
        f.add_layer(&format!("#{i}"), &|| {
            Ok(Box::new(l.as_slice()) as Box<dyn Read>)
        })?;
    }
    let out = f.finish(b"{}")?;
    let mut a = tar::Archive::new(out.as_slice());
    let mut got = BTreeMap::new();
    let mut last = String::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let kind = e.header().entry_type();
        let (k, v) = match kind {
            EntryType::Directory => ('d', String::new()),
            EntryType::Link => ('h', e.link_name().unwrap().unwrap().display().to_string()),
            EntryType::Symlink => ('l', e.link_name().unwrap().unwrap().display().to_string()),
            _ => {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                ('f', s)
            }
        };
        last = path.clone();
        got.insert(path, (k, v));
    }
    assert_eq!(last, "manifest", "the manifest is last");
    Ok(got)
}

fn file(body: &str) -> (char, String) {
    ('f', body.to_string())
}

#[test]
fn newer_layers_win_and_whiteouts_delete() {
    let base = layer(&[
        E::Dir("etc"),
        E::File("etc/passwd", "root:x:0:0::/:/bin/sh\n"),
        E::File("etc/deleteme", "gone"),
        E::Dir("data/old"),
        E::File("data/old/a", "a"),
        E::File("data/old/b", "b"),
        E::Dir("tree"),
        E::File("tree/x", "x"),
        E::Dir("was-dir"),
        E::File("was-dir/inner", "i"),
        E::Dev("dev/null"),
    ]);
    let upper = layer(&[
        E::Dir("etc"),
        E::File(
            "etc/passwd",
            "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        ),
        E::File("etc/.wh.deleteme", ""),
        E::File("data/old/.wh..wh..opq", ""),
        E::File("data/old/c", "c"),
        E::File(".wh.tree", ""),
        E::File("was-dir", "now a file"),
        E::File("./new//file", "new"),
    ]);
    let got = flatten(&[base, upper]).unwrap();
    let paths: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "manifest",
            "rootfs",
            "rootfs/data/old",
            "rootfs/data/old/c",
            "rootfs/etc",
            "rootfs/etc/passwd",
            "rootfs/new/file",
            "rootfs/was-dir",
        ]
    );
    assert!(got["rootfs/etc/passwd"].1.contains("app:x:1000"));
    assert_eq!(got["rootfs/was-dir"], file("now a file"));
    assert_eq!(got["rootfs/data/old"].0, 'd', "the older dir entry stays");
}

#[test]
fn opaque_and_whiteouts_apply_to_older_layers_only() {
    let base = layer(&[E::File("d/old", "old")]);
    let upper = layer(&[
        E::File("d/.wh..wh..opq", ""),
        E::File("d/mine", "mine"),
        E::File(".wh.gone", ""),
        E::File("gone", "recreated in the same layer"),
    ]);
    let got = flatten(&[base, upper]).unwrap();
    assert!(!got.contains_key("rootfs/d/old"));
    assert_eq!(got["rootfs/d/mine"], file("mine"));
    assert_eq!(got["rootfs/gone"], file("recreated in the same layer"));
}

#[test]
fn hard_links_keep_the_content_of_a_replaced_target() {
    let base = layer(&[
        E::File("bin/perl", "old perl"),
        E::Link("bin/perl5", "bin/perl"),
        E::Link("bin/perl5.36", "bin/perl"),
        E::File("bin/kept", "kept"),
        E::Link("bin/kept-link", "bin/kept"),
    ]);
    let upper = layer(&[
        E::File("bin/perl", "new perl"),
        E::Symlink("bin/sh", "busybox"),
    ]);
    let got = flatten(&[base, upper]).unwrap();
    assert_eq!(got["rootfs/bin/perl"], file("new perl"));
    assert_eq!(got["rootfs/bin/perl5"], file("old perl"));
    assert_eq!(got["rootfs/bin/perl5.36"], ('h', "rootfs/bin/perl5".into()));
    assert_eq!(got["rootfs/bin/kept-link"], ('h', "rootfs/bin/kept".into()));
    assert_eq!(got["rootfs/bin/sh"], ('l', "busybox".into()));
}

#[test]
fn escapes_are_refused_and_devices_left_out() {
    let bad = layer(&[E::File("etc/x", "x")]);
    // tar::Builder refuses ".." itself: patch the name in the header.
    let mut bad = bad;
    bad[..6].copy_from_slice(b"../x\0\0");
    let mut h = Header::from_byte_slice(&bad[..512]).clone();
    h.set_cksum();
    bad[..512].copy_from_slice(h.as_bytes());
    let e = flatten(&[bad]).unwrap_err();
    assert!(e.to_string().contains("leaves the image"), "{e}");

    let mut f = Flattener::new(Vec::new()).unwrap();
    let l = layer(&[E::Dev("dev/sda"), E::File("ok", "ok")]);
    f.add_layer("#0", &|| Ok(Box::new(l.as_slice()) as Box<dyn Read>))
        .unwrap();
    assert_eq!(f.devices_skipped, 1);
}

#[test]
fn the_image_passwd_is_the_visible_one() {
    let base = layer(&[E::File("etc/passwd", "old")]);
    let upper = layer(&[E::File("etc/passwd", "new")]);
    let mut f = Flattener::new(Vec::new()).unwrap();
    for l in [&upper, &base] {
        f.add_layer("l", &|| Ok(Box::new(l.as_slice()) as Box<dyn Read>))
            .unwrap();
    }
    assert_eq!(f.passwd(), Some(&b"new"[..]));
}

#[test]
fn pax_global_headers_are_not_files() {
    let mut b = tar::Builder::new(Vec::new());
    let record = b"18 comment=abcde\n";
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::XGlobalHeader);
    h.set_size(record.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "pax_global_header", &record[..])
        .unwrap();
    let rest = layer(&[E::File("ok", "ok")]);
    let mut bytes = b.into_inner().unwrap();
    // The file's archive after the global header (without the first
    // archive's end marker).
    bytes.truncate(bytes.len() - 1024);
    bytes.extend_from_slice(&rest);
    let got = flatten(&[bytes]).unwrap();
    let paths: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(paths, ["manifest", "rootfs", "rootfs/ok"]);
}

#[test]
fn directories_implied_by_newer_layers_replace_older_symlinks() {
    // usrmerge: the base has bin -> usr/bin; a newer layer has bin/tool
    // without an entry for bin itself.
    let base = layer(&[
        E::Symlink("bin", "usr/bin"),
        E::Dir("usr/bin"),
        E::File("usr/bin/sh", "sh"),
        E::Dir("keep"),
        E::File("keep/old", "old"),
    ]);
    // A middle layer replaced the directory keep with a file; the newest
    // made it a directory again.
    let middle = layer(&[E::File("keep", "a file now")]);
    let upper = layer(&[E::File("bin/tool", "tool"), E::File("keep/new", "new")]);
    let got = flatten(&[base, middle, upper]).unwrap();
    assert!(
        !got.contains_key("rootfs/bin"),
        "the older symlink is gone: {got:?}"
    );
    assert_eq!(got["rootfs/bin/tool"], file("tool"));
    assert_eq!(got["rootfs/usr/bin/sh"], file("sh"));
    assert_eq!(got["rootfs/keep/new"], file("new"));
    assert!(!got.contains_key("rootfs/keep/old"), "{got:?}");
}

#[test]
fn an_opaque_root_hides_all_older_layers() {
    let base = layer(&[E::File("old", "old")]);
    let upper = layer(&[E::File(".wh..wh..opq", ""), E::File("new", "new")]);
    let got = flatten(&[base, upper]).unwrap();
    assert!(!got.contains_key("rootfs/old"));
    assert_eq!(got["rootfs/new"], file("new"));
}
