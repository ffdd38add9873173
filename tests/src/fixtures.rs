//! Image and filesystem fixtures for the image-store tests: small ACIs built
//! in the test's directory, hostile archives, compression, canaries that
//! prove nothing outside `$dir` was touched.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use abi::schema::ImageManifest;
use images::manifest::{image_manifest, root_app, standard_labels};
use images::{AciBuilder, RawAciWriter, RawEntry};
use sha2::{Digest, Sha512};

use crate::Rkt;

/// `sha512-` + first 64 hex of the sha512 of `tar` (rkt's store key).
pub fn key_of_tar(tar: &[u8]) -> String {
    format!("sha512-{}", &hex(&Sha512::digest(tar))[..64])
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A manifest named `name` with `version`, host `os`/`arch` labels and an
/// app running `/bin/sh` as root.
pub fn app_manifest(name: &str, version: &str) -> ImageManifest {
    let mut m = image_manifest(name, &standard_labels(version)).expect("valid name");
    m.app = Some(root_app(&["/bin/sh"], &[("PATH", "/bin")]));
    m
}

/// A manifest with only a name and the given labels (no app).
pub fn bare_manifest(name: &str, labels: &[(&str, &str)]) -> ImageManifest {
    image_manifest(name, labels).expect("valid name")
}

/// Fresh directory `name` under the test's root (created, must not exist).
pub fn test_dir(rkt: &Rkt, name: &str) -> PathBuf {
    let p = rkt.root().join(name);
    fs::create_dir(&p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
    p
}

/// Builds `<root>/in/<file>` from `manifest` and a rootfs holding `files`
/// (relative path, content; parents created), deterministically.
pub fn build_aci(
    rkt: &Rkt,
    file: &str,
    manifest: ImageManifest,
    files: &[(&str, &[u8])],
) -> PathBuf {
    let input = rkt.root().join("in");
    fs::create_dir_all(&input).unwrap();
    let staging = tempfile::Builder::new()
        .prefix("rootfs-")
        .tempdir_in(&input)
        .unwrap();
    let rootfs = staging.path();
    fs::set_permissions(rootfs, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for (rel, data) in files {
        let p = rootfs.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
    }
    let out = input.join(file);
    AciBuilder::new(manifest, rootfs)
        .deterministic(true)
        .write_file(&out)
        .expect("build ACI");
    out
}

/// A plain tar ACI: `manifest` (serialised `manifest`, or `raw_manifest`
/// bytes), a `rootfs` directory entry, then `entries` verbatim.
pub fn raw_tar(manifest: &ImageManifest, entries: &[RawEntry]) -> Vec<u8> {
    let json = serde_json::to_vec_pretty(manifest).unwrap();
    raw_tar_with_manifest_bytes(&json, entries)
}

pub fn raw_tar_with_manifest_bytes(manifest: &[u8], entries: &[RawEntry]) -> Vec<u8> {
    let mut w = RawAciWriter::new(Vec::new());
    w.manifest_bytes(manifest).unwrap();
    w.append(&RawEntry::dir("rootfs")).unwrap();
    for e in entries {
        w.append(e).unwrap();
    }
    w.finish().unwrap()
}

/// Writes `bytes` to `<root>/in/<file>`.
pub fn write_input(rkt: &Rkt, file: &str, bytes: &[u8]) -> PathBuf {
    let input = rkt.root().join("in");
    fs::create_dir_all(&input).unwrap();
    let p = input.join(file);
    fs::write(&p, bytes).unwrap();
    p
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Decompresses gzip/bzip2/xz by magic bytes; anything else is returned as is.
pub fn decompress(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if data.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
    } else if data.starts_with(b"BZh") {
        bzip2::read::BzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        xz2::read::XzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
    } else {
        out = data.to_vec();
    }
    out
}

/// Incompressible bytes from a fixed seed (xorshift64*), streamed.
pub struct NoiseReader {
    state: u64,
}

impl NoiseReader {
    pub fn new(seed: u64) -> Self {
        NoiseReader { state: seed | 1 }
    }
}

impl Read for NoiseReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        for chunk in buf.chunks_mut(8) {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            let v = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(buf.len())
    }
}

/// Writes an uncompressed ACI named `name` whose rootfs holds one file of
/// `size` random bytes, straight to `path` (no big buffer in memory).
pub fn write_big_aci(path: &Path, name: &str, size: u64) {
    let f = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(path).unwrap());
    let mut w = RawAciWriter::new(f);
    w.manifest(&app_manifest(name, "1.0.0"), 0).unwrap();
    w.append(&RawEntry::dir("rootfs")).unwrap();
    w.append_reader(
        &RawEntry::file("rootfs/noise", Vec::new()),
        size,
        NoiseReader::new(0x5eed),
    )
    .unwrap();
    let f = w.finish().unwrap();
    f.into_inner().unwrap().sync_all().unwrap();
}

/// What a path looked like: type, size, mode, link count, content digest or
/// link target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    kind: &'static str,
    len: u64,
    mode: u32,
    nlink: u64,
    digest: String,
}

/// Files and directories next to the data dir that rkt must never touch,
/// and a snapshot of everything in the test's root outside `$dir`.
pub struct Canary {
    root: PathBuf,
    /// The canary directory: `<root>/canary`.
    pub dir: PathBuf,
    /// A file inside it (`secret`).
    pub file: PathBuf,
    before: BTreeMap<PathBuf, Seen>,
}

impl Canary {
    /// Plants `<root>/canary/{secret,sub/inner}` and snapshots the root
    /// (except `data/` and entries named `out*`, where tests let rkt write).
    pub fn plant(rkt: &Rkt) -> Canary {
        let root = rkt.root().to_path_buf();
        let dir = root.join("canary");
        fs::create_dir_all(dir.join("sub")).unwrap();
        let file = dir.join("secret");
        fs::write(&file, b"canary: do not touch\n").unwrap();
        fs::write(dir.join("sub/inner"), b"inner canary\n").unwrap();
        let before = snapshot(&root);
        Canary {
            root,
            dir,
            file,
            before,
        }
    }

    /// Panics naming every path created, removed or changed since planting.
    #[track_caller]
    pub fn check(&self, when: &str) {
        let now = snapshot(&self.root);
        let mut diff = Vec::new();
        for (p, s) in &now {
            match self.before.get(p) {
                None => diff.push(format!("created {}", p.display())),
                Some(b) if b != s => diff.push(format!("changed {}: {b:?} -> {s:?}", p.display())),
                _ => {}
            }
        }
        for p in self.before.keys() {
            if !now.contains_key(p) {
                diff.push(format!("removed {}", p.display()));
            }
        }
        assert!(
            diff.is_empty(),
            "{when}: rkt touched files outside its data dir:\n{}",
            diff.join("\n")
        );
    }
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Seen> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Seen>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for ent in rd.flatten() {
        let path = ent.path();
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        if dir == root {
            let n = ent.file_name().to_string_lossy().into_owned();
            if n == "data" || n.starts_with("out") {
                continue;
            }
        }
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        let (kind, digest) = if ft.is_symlink() {
            let t = fs::read_link(&path).map(|t| t.display().to_string());
            ("symlink", t.unwrap_or_default())
        } else if ft.is_dir() {
            ("dir", String::new())
        } else if ft.is_file() {
            let d = fs::read(&path).map(|b| hex(&Sha512::digest(&b)));
            ("file", d.unwrap_or_default())
        } else {
            ("other", String::new())
        };
        out.insert(
            rel,
            Seen {
                kind,
                len: if ft.is_dir() { 0 } else { meta.len() },
                mode: meta.mode(),
                nlink: if ft.is_dir() { 0 } else { meta.nlink() },
                digest,
            },
        );
        if ft.is_dir() {
            walk(root, &path, out);
        }
    }
}

/// The stderr lines of an output, trimmed, without empty ones.
pub fn stderr_lines(out: &crate::Out) -> Vec<&str> {
    out.stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The tree directories under `$dir/cas/tree`, with the image key each was
/// rendered from (its `image` file).
pub fn trees(rkt: &Rkt) -> Vec<(PathBuf, String)> {
    let dir = rkt.dir.join("cas/tree");
    let mut v: Vec<(PathBuf, String)> = fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    let key = fs::read_to_string(p.join("image")).unwrap_or_default();
                    (p, key.trim().to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The rows of `rkt image list --no-legend --full --fields=id,name`.
pub fn image_rows(rkt: &Rkt) -> Vec<(String, String)> {
    let out = rkt.ok(&["image", "list", "--no-legend", "--full", "--fields=id,name"]);
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split_whitespace();
            let id = cols.next().unwrap_or_default().to_string();
            let name = cols.next().unwrap_or_default().to_string();
            (id, name)
        })
        .collect()
}
