//! The kvm flavor's guest: the kernel, decompressed from Debian's bzImage
//! into the ELF `vmlinux` QEMU boots directly (through its PVH entry; an
//! emulated CPU spends seconds decompressing a bzImage), and an initramfs
//! with the guest's init and the kernel modules the VM's devices need, in
//! an order that loads each after its dependencies.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::cpio::CpioWriter;

/// What the guest needs: the VM's transports, 9p for the pod directory,
/// its NICs and consoles.
pub const GUEST_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_console",
    "virtio_net",
    "9pnet_virtio",
    "9p",
];

#[derive(Debug, Error)]
pub enum GuestError {
    #[error("{action} {path}: {err}")]
    Io {
        action: &'static str,
        path: PathBuf,
        err: io::Error,
    },
    #[error("kernel module {module} (needed by {needed_by}) is not in {dir}; fetch the kernel again (scripts/guest-kernel.sh)")]
    MissingModule {
        module: String,
        needed_by: String,
        dir: PathBuf,
    },
    #[error("{0} is not a bzImage with an xz- or gzip-compressed kernel")]
    UnknownKernel(PathBuf),
    #[error("kernel modules depend on each other in a cycle through {0}")]
    Cycle(String),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> GuestError + 'a {
    move |err| GuestError::Io {
        action,
        path: path.to_path_buf(),
        err,
    }
}

/// The uncompressed kernel (an ELF image) inside a bzImage.
pub fn vmlinux_from_bzimage(bzimage: &Path) -> Result<Vec<u8>, GuestError> {
    let data = fs::read(bzimage).map_err(io_err("reading", bzimage))?;
    let find = |magic: &[u8]| data.windows(magic.len()).position(|w| w == magic);
    let mut out = Vec::new();
    if let Some(at) = find(b"\xfd7zXZ\x00") {
        out = unxz(&data[at..]).map_err(io_err("decompressing", bzimage))?;
    } else if let Some(at) = find(b"\x1f\x8b\x08\x00") {
        flate2::bufread::GzDecoder::new(&data[at..])
            .read_to_end(&mut out)
            .map_err(io_err("decompressing", bzimage))?;
    } else {
        return Err(GuestError::UnknownKernel(bzimage.to_path_buf()));
    }
    if !out.starts_with(b"\x7fELF") {
        return Err(GuestError::UnknownKernel(bzimage.to_path_buf()));
    }
    Ok(out)
}

/// The one xz stream at the start of `data`, which the bzImage follows
/// with other bytes (the read adaptors take those for a corrupt stream).
fn unxz(data: &[u8]) -> io::Result<Vec<u8>> {
    use xz2::stream::{Action, Status, Stream};
    let mut stream = Stream::new_stream_decoder(u64::MAX, 0)?;
    let mut out = Vec::with_capacity(data.len() * 4);
    loop {
        let consumed = stream.total_in() as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        }
        match stream.process_vec(&data[consumed..], &mut out, Action::Run)? {
            Status::StreamEnd => return Ok(out),
            _ if stream.total_in() as usize == data.len() && out.len() < out.capacity() => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the xz stream is cut short",
                ));
            }
            _ => {}
        }
    }
}

/// The `.ko` (or xz-compressed `.ko.xz`, as newer Debian kernels ship
/// them) files below `dir`, by module name (`-` read as `_`, as the
/// kernel does).
fn index_modules(dir: &Path) -> Result<HashMap<String, PathBuf>, GuestError> {
    let mut found = HashMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).map_err(io_err("reading", &d))? {
            let path = entry.map_err(io_err("reading", &d))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                if let Some(module) = name
                    .strip_suffix(".ko")
                    .or_else(|| name.strip_suffix(".ko.xz"))
                {
                    found.insert(module.replace('-', "_"), path);
                }
            }
        }
    }
    Ok(found)
}

/// A module's `depends=` entry from its `.modinfo` strings.
fn dependencies(ko: &[u8]) -> Vec<String> {
    ko.split(|&b| b == 0)
        .find_map(|s| s.strip_prefix(b"depends="))
        .map(|deps| {
            String::from_utf8_lossy(deps)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(|d| d.replace('-', "_"))
                .collect()
        })
        .unwrap_or_default()
}

/// `wanted` and everything they depend on, each after its dependencies:
/// (module name, file content).
pub fn resolve_modules(dir: &Path, wanted: &[&str]) -> Result<Vec<(String, Vec<u8>)>, GuestError> {
    let index = index_modules(dir)?;
    let mut ordered: Vec<(String, Vec<u8>)> = Vec::new();
    // Depth first, dependencies before dependents; `visiting` finds cycles.
    fn visit(
        module: &str,
        needed_by: &str,
        dir: &Path,
        index: &HashMap<String, PathBuf>,
        visiting: &mut Vec<String>,
        ordered: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), GuestError> {
        if ordered.iter().any(|(m, _)| m == module) {
            return Ok(());
        }
        if visiting.iter().any(|m| m == module) {
            return Err(GuestError::Cycle(module.to_string()));
        }
        let path = index.get(module).ok_or_else(|| GuestError::MissingModule {
            module: module.to_string(),
            needed_by: needed_by.to_string(),
            dir: dir.to_path_buf(),
        })?;
        let mut ko = fs::read(path).map_err(io_err("reading", path))?;
        if path.extension().is_some_and(|e| e == "xz") {
            ko = unxz(&ko).map_err(io_err("decompressing", path))?;
        }
        visiting.push(module.to_string());
        for dep in dependencies(&ko) {
            visit(&dep, module, dir, index, visiting, ordered)?;
        }
        visiting.pop();
        ordered.push((module.to_string(), ko));
        Ok(())
    }
    for module in wanted {
        visit(
            module,
            "the guest",
            dir,
            &index,
            &mut Vec::new(),
            &mut ordered,
        )?;
    }
    Ok(ordered)
}

/// The initramfs: `/init` (the guest's init), `/dev/console` (the init's
/// stdio until the pod's consoles are up) and `/modules/NN-name.ko`.
pub fn initramfs(init: &[u8], modules: &[(String, Vec<u8>)]) -> io::Result<Vec<u8>> {
    let mut w = CpioWriter::new(Vec::new());
    w.dir("dev", 0o755)?;
    w.char_device("dev/console", 0o600, 5, 1)?;
    w.dir("modules", 0o755)?;
    for (i, (name, ko)) in modules.iter().enumerate() {
        w.file(&format!("modules/{i:02}-{name}.ko"), 0o644, ko)?;
    }
    w.file("init", 0o755, init)?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_ko(depends: &str) -> Vec<u8> {
        format!("\x7fELF\0license=GPL\0depends={depends}\0vermagic=6.1.0-57-amd64 SMP mod_unload\0")
            .into_bytes()
    }

    #[test]
    fn modules_come_after_their_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("fs/9p");
        fs::create_dir_all(&sub).unwrap();
        fs::write(sub.join("9p.ko"), fake_ko("9pnet,netfs")).unwrap();
        fs::write(dir.path().join("9pnet.ko"), fake_ko("")).unwrap();
        fs::write(dir.path().join("netfs.ko"), fake_ko("")).unwrap();
        fs::write(dir.path().join("9pnet_virtio.ko"), fake_ko("9pnet")).unwrap();
        let ordered = resolve_modules(dir.path(), &["9p", "9pnet_virtio"]).unwrap();
        let names: Vec<&str> = ordered.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["9pnet", "netfs", "9p", "9pnet_virtio"]);
        let err = resolve_modules(dir.path(), &["virtio_net"]).unwrap_err();
        assert!(err.to_string().contains("virtio_net (needed by the guest)"));
    }

    #[test]
    fn compressed_modules_are_read_uncompressed() {
        let dir = tempfile::tempdir().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        std::io::Write::write_all(&mut xz, &fake_ko("")).unwrap();
        fs::write(dir.path().join("virtio-ring.ko.xz"), xz.finish().unwrap()).unwrap();
        let ordered = resolve_modules(dir.path(), &["virtio_ring"]).unwrap();
        assert_eq!(ordered[0].0, "virtio_ring");
        assert_eq!(ordered[0].1, fake_ko(""));
    }

    #[test]
    fn a_dependency_cycle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.ko"), fake_ko("b")).unwrap();
        fs::write(dir.path().join("b.ko"), fake_ko("a")).unwrap();
        assert!(matches!(
            resolve_modules(dir.path(), &["a"]),
            Err(GuestError::Cycle(_))
        ));
    }

    #[test]
    fn initramfs_names_modules_in_load_order() {
        let modules = vec![
            ("virtio".to_string(), b"k1".to_vec()),
            ("9p".to_string(), b"k2".to_vec()),
        ];
        let cpio = initramfs(b"init", &modules).unwrap();
        let text = String::from_utf8_lossy(&cpio);
        let first = text.find("modules/00-virtio.ko").unwrap();
        let second = text.find("modules/01-9p.ko").unwrap();
        assert!(first < second);
        assert!(text.contains("dev/console"));
    }
}
