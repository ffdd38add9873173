//! The hash of a rendered tree, recomputed by `image verify` to detect changes.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha512};

use super::key::to_hex;

/// Hash and total size of the files under `root`. Covers names, types, modes,
/// owners, symlink targets and contents; not times (copies keep them anyway).
pub fn hash_tree(root: &Path) -> io::Result<(String, u64)> {
    let mut h = Sha512::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    walk(root, "", &mut h, &mut size, &mut buf)?;
    Ok((format!("sha512-{}", to_hex(&h.finalize())), size))
}

fn walk(dir: &Path, rel: &str, h: &mut Sha512, size: &mut u64, buf: &mut [u8]) -> io::Result<()> {
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
            *size += md.len();
            let mut f = File::open(&path)?;
            loop {
                let n = f.read(buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        } else if ft.is_dir() {
            walk(&path, &child, h, size, buf)?;
        }
        h.update(b"\n");
    }
    Ok(())
}
