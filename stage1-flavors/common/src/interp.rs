//! Why an exec failed with ENOENT although the file is there: its ELF
//! interpreter (the dynamic loader named in `PT_INTERP`) or its `#!`
//! interpreter is missing, which rkt's diagnostics named.

use std::io::Read;
use std::path::Path;

const PT_INTERP: u32 = 3;
/// Headers and the interpreter path sit at the start of an ELF file.
const HEAD: u64 = 64 * 1024;

/// The interpreter `path` needs, when that interpreter does not exist.
pub fn missing_interpreter(path: &Path) -> Option<String> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(HEAD)
        .read_to_end(&mut head)
        .ok()?;
    let interp = elf_interpreter(&head).or_else(|| shebang_interpreter(&head))?;
    (!Path::new(&interp).exists()).then_some(interp)
}

/// `PT_INTERP` of a little-endian ELF64 file whose start is `head`.
fn elf_interpreter(head: &[u8]) -> Option<String> {
    if head.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(head.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(head.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(head.get(o..o + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    (0..phnum).find_map(|i| {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? != PT_INTERP {
            return None;
        }
        let off = usize::try_from(u64_at(ph + 8)?).ok()?;
        let size = usize::try_from(u64_at(ph + 32)?).ok()?;
        let raw = head.get(off..off.checked_add(size)?)?;
        let name = raw.split(|b| *b == 0).next()?;
        Some(String::from_utf8_lossy(name).into_owned())
    })
}

/// The program of a `#!` line.
fn shebang_interpreter(head: &[u8]) -> Option<String> {
    let line = head.strip_prefix(b"#!")?.split(|b| *b == b'\n').next()?;
    let text = String::from_utf8_lossy(line);
    text.split_whitespace().next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_interpreter_of_a_real_binary() {
        let head = std::fs::read("/bin/true").unwrap();
        let interp = elf_interpreter(&head).expect("/bin/true is dynamically linked");
        assert!(interp.contains("ld-linux"), "{interp}");
        assert_eq!(missing_interpreter(Path::new("/bin/true")), None);
    }

    #[test]
    fn shebangs_and_garbage() {
        assert_eq!(
            shebang_interpreter(b"#!/nope/sh -e\necho"),
            Some("/nope/sh".into())
        );
        assert_eq!(elf_interpreter(b"\x7fELF\x02\x01\0\0"), None);
        assert_eq!(elf_interpreter(b"plain text"), None);
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/no/such/interp\n").unwrap();
        assert_eq!(missing_interpreter(&script), Some("/no/such/interp".into()));
    }
}
