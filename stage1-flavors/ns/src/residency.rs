//! Keeping the supervisor small while it waits: once the pod is up, the
//! code and read-only data it ran to set it up (mounts, pivot, planning,
//! forking apps) stay mapped into every pod's PID 1 although the waiting
//! loop never runs them again. Unmapping those clean file pages from this
//! process costs nothing (they stay in the page cache, shared with every
//! other pod's supervisor, and fault back in when needed) and leaves the
//! supervisor's resident set at what it actually uses.

use nix::sys::mman::{madvise, MmapAdvise};
use std::ffi::c_void;
use std::ptr::NonNull;

/// One mapping of `/proc/self/smaps`.
#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    file_backed: bool,
    /// Pages of the mapping that are private copies (relocated data, a
    /// debugger's breakpoint): dropping those would lose them.
    anonymous_kb: u64,
}

/// At most this many mappings are dropped (a static binary has two).
const MAX_DROPPED: usize = 16;

/// Drops this process's mappings of clean, read-only file pages; best
/// effort (a failure leaves the pages mapped, nothing else). Call it right
/// before blocking: everything it allocated is freed before the pages go,
/// so little code runs (and faults pages back) between it and the wait.
pub fn drop_clean_file_pages() {
    let mut ranges = [(0usize, 0usize); MAX_DROPPED];
    let mut count = 0;
    {
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return;
        };
        let clean = parse_smaps(&smaps)
            .into_iter()
            .filter(|m| !m.writable && m.file_backed && m.anonymous_kb == 0);
        for (slot, m) in ranges.iter_mut().zip(clean) {
            *slot = (m.start, m.end);
            count += 1;
        }
    }
    for &(start, end) in &ranges[..count] {
        let Some(addr) = NonNull::new(start as *mut c_void) else {
            continue;
        };
        // SAFETY: the range is a read-only mapping of file pages with no
        // private copies: MADV_DONTNEED only unmaps them, and the next
        // access reads the same bytes back from the page cache.
        let _ = unsafe { madvise(addr, end - start, MmapAdvise::MADV_DONTNEED) };
    }
}

fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        if let Some((start, end)) = first.split_once('-').and_then(|(s, e)| {
            Some((
                usize::from_str_radix(s, 16).ok()?,
                usize::from_str_radix(e, 16).ok()?,
            ))
        }) {
            let perms = fields.next().unwrap_or("");
            // offset, device, inode, then the path, if any.
            let inode = fields.nth(2).unwrap_or("0");
            let path = fields.next().unwrap_or("");
            out.push(Mapping {
                start,
                end,
                writable: perms.contains('w'),
                file_backed: inode != "0" && path.starts_with('/'),
                // Unknown until its line is read: never dropped unseen.
                anonymous_kb: u64::MAX,
            });
        } else if first == "Anonymous:" {
            if let (Some(m), Some(kb)) = (out.last_mut(), fields.next()) {
                m.anonymous_kb = kb.parse().unwrap_or(u64::MAX);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5612a0000000-5612a0080000 r--p 00000000 08:01 1234 /run
Rss:                 512 kB
Anonymous:             0 kB
5612a0080000-5612a0200000 r-xp 00080000 08:01 1234 /run
Anonymous:             0 kB
5612a0200000-5612a0217000 r--p 00200000 08:01 1234 /run
Anonymous:            92 kB
5612a0217000-5612a021a000 rw-p 00217000 08:01 1234 /run
Anonymous:            12 kB
5612a1000000-5612a1020000 rw-p 00000000 00:00 0 [heap]
Anonymous:           100 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";

    #[test]
    fn only_clean_read_only_file_mappings_qualify() {
        let maps = parse_smaps(SMAPS);
        assert_eq!(maps.len(), 6);
        let dropped: Vec<usize> = maps
            .iter()
            .filter(|m| !m.writable && m.file_backed && m.anonymous_kb == 0)
            .map(|m| m.start)
            .collect();
        assert_eq!(dropped, [0x5612a0000000, 0x5612a0080000]);
    }

    #[test]
    fn the_process_keeps_running_after_its_pages_are_dropped() {
        drop_clean_file_pages();
        // Code, read-only data and relocated data all still work.
        let words: Vec<String> = "a b c".split(' ').map(str::to_uppercase).collect();
        assert_eq!(words.join("-"), "A-B-C");
        assert!(format!("{:?}", parse_smaps("")).contains("[]"));
    }
}
