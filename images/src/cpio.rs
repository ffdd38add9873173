//! A writer of cpio archives in the "newc" format, the one the kernel
//! unpacks as an initramfs.

use std::io::{self, Write};

const TRAILER: &str = "TRAILER!!!";
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        CpioWriter { out, next_ino: 1 }
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | mode, 2, (0, 0), &[])
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | mode, 1, (0, 0), data)
    }

    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | mode, 1, (major, minor), &[])
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry(TRAILER, 0, 1, (0, 0), &[])?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        nlink: u32,
        (rdev_major, rdev_minor): (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        let ino = if path == TRAILER { 0 } else { self.next_ino };
        self.next_ino += 1;
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::other(format!("{path} is too large for cpio")))?;
        let name_size = path.len() as u32 + 1;
        // ino mode uid gid nlink mtime filesize devmajor devminor
        // rdevmajor rdevminor namesize check
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev_major, rdev_minor, name_size, 0,
        ];
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(path.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(110 + name_size as usize)?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    fn pad(&mut self, written: usize) -> io::Result<()> {
        let pad = (4 - written % 4) % 4;
        self.out.write_all(&[0u8; 3][..pad])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_newc_records() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("dev", 0o755).unwrap();
        w.char_device("dev/console", 0o600, 5, 1).unwrap();
        w.file("init", 0o755, b"hello").unwrap();
        let out = w.finish().unwrap();
        assert!(out.starts_with(b"070701"));
        // Header (110) + "dev\0" = 114, padded to 116.
        assert_eq!(&out[116..122], b"070701");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("dev/console"));
        // The console's rdev: major 5, minor 1.
        let console = text.find("dev/console").unwrap();
        let header = &text[console - 110..console];
        assert_eq!(&header[6 + 9 * 8..6 + 10 * 8], "00000005");
        assert_eq!(&header[6 + 10 * 8..6 + 11 * 8], "00000001");
        assert!(text.contains("hello"));
        assert!(text.ends_with("TRAILER!!!\0\0\0\0"));
        assert_eq!(out.len() % 4, 0);
    }
}
