//! Finding a pod's processes in the host's /proc: `enter` knows the pod's
//! PID 1 (host pid) and the app's pid in the pod's PID namespace.

use std::path::Path;

/// `(ppid, nspids)` from the text of `/proc/<pid>/status`; `nspids` goes
/// from the reader's namespace down to the process's own.
pub fn parse_status(status: &str) -> (Option<i32>, Vec<i32>) {
    let mut ppid = None;
    let mut nspids = Vec::new();
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("PPid:") {
            ppid = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("NSpid:") {
            nspids = v
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
        }
    }
    (ppid, nspids)
}

/// The host pid of the child of `parent` whose pid in its own namespace
/// is `inner`, scanning `proc`.
pub fn find_child(proc: &Path, parent: i32, inner: i32) -> Option<i32> {
    let entries = std::fs::read_dir(proc).ok()?;
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            let Ok(status) = std::fs::read_to_string(proc.join(pid.to_string()).join("status"))
            else {
                return false;
            };
            let (ppid, nspids) = parse_status(&status);
            ppid == Some(parent) && nspids.last() == Some(&inner)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let s = "Name:\tsh\nPid:\t4242\nPPid:\t4240\nNSpid:\t4242\t3\n";
        assert_eq!(parse_status(s), (Some(4240), vec![4242, 3]));
        assert_eq!(parse_status("Name: x\n"), (None, vec![]));
    }

    #[test]
    fn finds_a_child_in_a_fake_proc() {
        let proc = tempfile::tempdir().unwrap();
        for (pid, body) in [
            ("10", "PPid:\t1\nNSpid:\t10\n"),
            ("11", "PPid:\t10\nNSpid:\t11\t2\n"),
            ("12", "PPid:\t10\nNSpid:\t12\t3\n"),
        ] {
            std::fs::create_dir(proc.path().join(pid)).unwrap();
            std::fs::write(proc.path().join(pid).join("status"), body).unwrap();
        }
        std::fs::create_dir(proc.path().join("self")).unwrap();
        assert_eq!(find_child(proc.path(), 10, 3), Some(12));
        assert_eq!(find_child(proc.path(), 10, 4), None);
        assert_eq!(find_child(proc.path(), 11, 2), None);
    }
}
