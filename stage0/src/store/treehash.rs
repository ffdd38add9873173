//! The hash of a rendered tree, recomputed by `image verify` to detect changes.
//!
//! Current form (`tree-xxh3-…`): SHA-256 over one record per path, sorted
//! by path bytes, so it does not depend on the order files were written in.
//! A record holds the path, `st_mode`, owner, and the symlink target or the
//! size and XXH3-128 of the contents. Rendering passes the contents' digests
//! it computed while writing ([`FileDigests`]), so only metadata is read back.
//! Older trees carry the `sha512-…` form (a sorted walk hashing contents
//! inline), still verified as such.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha256, Sha512};

use super::extract::FileDigests;
use super::key::to_hex;

const PREFIX: &str = "tree-xxh3-";
const LEGACY_PREFIX: &str = "sha512-";

/// Hash and total file size of the tree under `root`. Covers names, types,
/// modes, owners, symlink targets and contents; not times (copies keep them
/// anyway). Contents come from `digests` when they hold the path, else are read.
pub fn hash_tree(root: &Path, digests: Option<&FileDigests>) -> io::Result<(String, u64)> {
    let mut entries = Vec::new();
    collect(root, "", &mut entries)?;
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha256::new();
    let mut size = 0u64;
    let mut buf = Vec::new();
    for (rel, md) in &entries {
        h.update(rel.as_bytes());
        h.update(format!("\0{:o}\0{}\0{}\0", md.mode(), md.uid(), md.gid()).as_bytes());
        let ft = md.file_type();
        let path = root.join(rel);
        if ft.is_symlink() {
            h.update(fs::read_link(&path)?.as_os_str().as_encoded_bytes());
        } else if ft.is_file() {
            h.update(md.len().to_le_bytes());
            size += md.len();
            match digests.and_then(|d| d.get(rel)) {
                Some(sum) => h.update(sum),
                None => {
                    if buf.is_empty() {
                        buf.resize(1 << 20, 0);
                    }
                    h.update(file_digest(&path, &mut buf)?);
                }
            }
        }
        h.update(b"\n");
    }
    Ok((format!("{PREFIX}{}", to_hex(&h.finalize())), size))
}

/// Recomputes the hash of `root` in the form `stored` has.
pub fn rehash_like(root: &Path, stored: &str) -> io::Result<String> {
    if stored.starts_with(LEGACY_PREFIX) {
        let mut h = Sha512::new();
        let mut buf = vec![0u8; 1 << 20];
        legacy_walk(root, "", &mut h, &mut buf)?;
        return Ok(format!("{LEGACY_PREFIX}{}", to_hex(&h.finalize())));
    }
    hash_tree(root, None).map(|(h, _)| h)
}

/// Every path under `dir` (relative, no leading `/`) with its metadata.
fn collect(dir: &Path, rel: &str, out: &mut Vec<(String, fs::Metadata)>) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let child = if rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let md = fs::symlink_metadata(e.path())?;
        let is_dir = md.is_dir();
        out.push((child.clone(), md));
        if is_dir {
            collect(&e.path(), &child, out)?;
        }
    }
    Ok(())
}

/// XXH3-128 of a file's contents.
fn file_digest(path: &Path, buf: &mut [u8]) -> io::Result<[u8; 16]> {
    let mut f = File::open(path)?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    loop {
        let n = f.read(buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.digest128().to_le_bytes())
}

fn legacy_walk(dir: &Path, rel: &str, h: &mut Sha512, buf: &mut [u8]) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let md = fs::symlink_metadata(&path)?;
        let child = format!("{rel}/{}", name.to_string_lossy());
        h.update(child.as_bytes());
        h.update(format!("\0{:o}\0{}\0{}\0", md.mode(), md.uid(), md.gid()).as_bytes());
        let ft = md.file_type();
        if ft.is_symlink() {
            h.update(fs::read_link(&path)?.as_os_str().as_encoded_bytes());
        } else if ft.is_file() {
            h.update(md.len().to_le_bytes());
            let mut f = File::open(&path)?;
            loop {
                let n = f.read(buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        } else if ft.is_dir() {
            legacy_walk(&path, &child, h, buf)?;
        }
        h.update(b"\n");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn digests_match_reading_and_changes_show() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), b"hello").unwrap();
        fs::write(root.join("a.x"), b"").unwrap();
        symlink("a/b/f", root.join("l")).unwrap();
        let (read, size) = hash_tree(root, None).unwrap();
        assert_eq!(size, 5);
        let mut digests = FileDigests::new();
        digests.insert(
            "a/b/f".into(),
            xxhash_rust::xxh3::xxh3_128(b"hello").to_le_bytes(),
        );
        digests.insert("a.x".into(), xxhash_rust::xxh3::xxh3_128(b"").to_le_bytes());
        assert_eq!(hash_tree(root, Some(&digests)).unwrap().0, read);
        assert_eq!(rehash_like(root, &read).unwrap(), read);
        fs::write(root.join("a/b/f"), b"hellO").unwrap();
        assert_ne!(rehash_like(root, &read).unwrap(), read);
        let legacy = rehash_like(root, "sha512-").unwrap();
        assert!(legacy.starts_with(LEGACY_PREFIX));
        assert_eq!(rehash_like(root, &legacy).unwrap(), legacy);
    }
}
