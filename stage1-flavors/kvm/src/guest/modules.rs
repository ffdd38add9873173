//! Loads the initramfs's kernel modules. The image builder wrote them to
//! [`MODULES_DIR`] named so that their order is a valid load order (each
//! after its dependencies).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// In the initramfs: `NN-name.ko`, loaded in name order.
pub const MODULES_DIR: &str = "/modules";

#[derive(Debug, thiserror::Error)]
#[error("cannot load kernel module {path:?}: {source}")]
pub struct ModuleError {
    path: PathBuf,
    source: io::Error,
}

pub fn load_all(dir: &Path) -> Result<(), ModuleError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModuleError { path, source }
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    let params = CString::default();
    for path in paths {
        let file = File::open(&path).map_err(err(&path))?;
        // SAFETY: finit_module(2) reads the module from an open descriptor;
        // the parameter string is a valid empty C string.
        let r =
            unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
        if r != 0 {
            let e = io::Error::last_os_error();
            // Built into this kernel after all.
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(err(&path)(e));
            }
        }
    }
    Ok(())
}
