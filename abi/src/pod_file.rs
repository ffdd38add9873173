//! Reading files a pod's stage1 wrote (exit codes, status, logs), by
//! stage0 and by the stage1's own host-side entrypoints alike: a kvm guest
//! writes its stage1's runtime directory itself, so such a file may be
//! anything it could make there. Never through a symlink (the host's
//! files stay the host's), never blocking on a FIFO, regular files only.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for reading if it is a regular file (not through a
/// symlink).
pub fn open(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path:?} is not a regular file"),
        ));
    }
    Ok(file)
}

/// The first `max` bytes of the regular file `path`, as text.
pub fn read_small(path: &Path, max: u64) -> io::Result<String> {
    let mut text = String::new();
    open(path)?.take(max).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_and_never_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("code");
        std::fs::write(&file, "42\n").unwrap();
        assert_eq!(read_small(&file, 64).unwrap(), "42\n");
        assert_eq!(read_small(&file, 1).unwrap(), "4");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read_small(&link, 64).is_err());
        let fifo = dir.path().join("fifo");
        let c_fifo = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        // A FIFO with no writer: refused, not waited on.
        assert!(read_small(&fifo, 64).is_err());
        assert!(read_small(Path::new("/dev/zero"), 64).is_err());
    }
}
