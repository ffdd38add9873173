//! The apps' output logs when the pod has no journal (the host runs no
//! journald): what `rkt logs` reads then. Layout and format are
//! `abi::app_log`'s; files are opened on an app's first line, so a pod
//! whose apps print nothing writes nothing.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::SystemTime;

use abi::app_log::{format_entry, log_name, rotated_name, MAX_LOG_BYTES};

pub struct AppLogs {
    dir: PathBuf,
    files: HashMap<String, LogFile>,
}

struct LogFile {
    file: File,
    size: u64,
}

impl AppLogs {
    /// Logs in `dir` (the stage1 rootfs's `abi::app_log::LOGS_DIR`).
    pub fn new(dir: PathBuf) -> Self {
        AppLogs {
            dir,
            files: HashMap::new(),
        }
    }

    /// Appends one entry per line of `bytes` (whole lines, the last one's
    /// newline optional) to `app`'s log, rotating it when full.
    pub fn append(&mut self, app: &str, stderr: bool, bytes: &[u8]) -> io::Result<()> {
        let now = SystemTime::now();
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let mut entries = Vec::with_capacity(body.len() + 48);
        for line in body.split(|b| *b == b'\n') {
            entries.extend_from_slice(&format_entry(now, stderr, line));
        }
        let full = self
            .files
            .get(app)
            .is_some_and(|log| log.size > 0 && log.size + entries.len() as u64 > MAX_LOG_BYTES);
        if full {
            std::fs::rename(
                self.dir.join(log_name(app)),
                self.dir.join(rotated_name(app)),
            )?;
            self.files.remove(app);
        }
        if !self.files.contains_key(app) {
            let log = self.open(app)?;
            self.files.insert(app.to_string(), log);
        }
        let log = self.files.get_mut(app).expect("opened above");
        log.file.write_all(&entries)?;
        log.size += entries.len() as u64;
        Ok(())
    }

    fn open(&self, app: &str) -> io::Result<LogFile> {
        std::fs::create_dir_all(&self.dir)?;
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(self.dir.join(log_name(app)))?;
        let size = file.metadata()?.len();
        Ok(LogFile { file, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::app_log::parse_entry;

    #[test]
    fn lines_become_entries_and_a_full_log_is_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let mut logs = AppLogs::new(dir.path().join("logs"));
        logs.append("web", false, b"one\ntwo\n").unwrap();
        logs.append("web", true, b"three").unwrap();
        let text = std::fs::read_to_string(dir.path().join("logs/web.log")).unwrap();
        let lines: Vec<(&str, &str)> = text
            .lines()
            .map(|l| parse_entry(l).map(|e| (e.stream, e.line)).unwrap())
            .collect();
        assert_eq!(
            lines,
            [("stdout", "one"), ("stdout", "two"), ("stderr", "three")]
        );

        let big = vec![b'x'; (MAX_LOG_BYTES / 2) as usize];
        for _ in 0..3 {
            logs.append("web", false, &big).unwrap();
        }
        let size = |n: &str| {
            std::fs::metadata(dir.path().join("logs").join(n))
                .unwrap()
                .len()
        };
        assert!(size("web.log.1") <= MAX_LOG_BYTES, "{}", size("web.log.1"));
        assert!(size("web.log") <= MAX_LOG_BYTES);
        assert!(size("web.log") > 0);
    }
}
