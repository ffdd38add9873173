//! Reading a pod's app output, for `rkt logs` and the API's `GetLogs`:
//! from the pod's own journal (with journalctl) where the ns stage1 kept
//! one, else from the apps' log files (`abi::app_log`).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use abi::app_log::{log_name, parse_entry, rotated_name, LOGS_DIR};
use abi::pod_dir::JOURNAL_FILES;

use super::lifecycle::Pod;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// One app, or every app of the pod.
    pub app: Option<String>,
    /// The last this many lines; 0 is all.
    pub lines: u64,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    pub follow: bool,
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// journalctl reading the pod's journal for `query`, or `None` when the
/// pod kept no journal (its output is in log files then).
pub fn journal_command(pod: &Pod, query: &LogQuery) -> Option<Command> {
    let journal = pod.path().join(JOURNAL_FILES);
    if !journal.is_dir() {
        return None;
    }
    let mut cmd = Command::new("journalctl");
    cmd.arg(format!("--directory={}", journal.display()))
        .args(["--no-pager", "--quiet"]);
    if query.follow {
        cmd.arg("--follow");
    }
    if query.lines > 0 {
        cmd.arg(format!("--lines={}", query.lines));
    }
    if let Some(since) = query.since {
        cmd.arg(format!("--since=@{}", epoch_secs(since)));
    }
    if let Some(until) = query.until {
        cmd.arg(format!("--until=@{}", epoch_secs(until)));
    }
    match &query.app {
        Some(app) => cmd.arg(format!("RKT_APP_NAME={app}")),
        // The apps' output lines and what they logged through /dev/log,
        // not the pod journald's own notices.
        None => cmd.args([
            &format!("RKT_POD_UUID={}", pod.uuid()),
            "+",
            "_TRANSPORT=syslog",
        ]),
    };
    Some(cmd)
}

/// One app's log files and how far they have been read, by inode: a
/// rotation renames `<app>.log` to `<app>.log.1`, which keeps its offset,
/// and starts a new `<app>.log` from 0.
pub struct AppLogFiles {
    app: String,
    /// `<app>.log.1` then `<app>.log`.
    files: [PathBuf; 2],
    read_up_to: HashMap<u64, u64>,
}

/// A log entry: its RFC 3339 time (sorts as text) and the line to show.
pub type Entry = (String, String);

impl AppLogFiles {
    /// The log files of `apps` of `pod`.
    pub fn of(pod: &Pod, apps: &[String]) -> Vec<AppLogFiles> {
        let dir = pod.stage1_runtime_path(LOGS_DIR);
        apps.iter()
            .map(|app| AppLogFiles {
                app: app.clone(),
                files: [dir.join(rotated_name(app)), dir.join(log_name(app))],
                read_up_to: HashMap::new(),
            })
            .collect()
    }

    /// Complete entries appended since the last call.
    pub fn read_new(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        for path in &self.files {
            let Ok(mut file) = abi::pod_file::open(path) else {
                continue;
            };
            let Ok(meta) = file.metadata() else {
                continue;
            };
            let offset = self.read_up_to.entry(meta.ino()).or_insert(0);
            let mut text = String::new();
            if file.seek(SeekFrom::Start(*offset)).is_err()
                || file.read_to_string(&mut text).is_err()
            {
                continue;
            }
            // Only whole entries; a line being written waits for the next read.
            let complete = text.rfind('\n').map_or(0, |i| i + 1);
            *offset += complete as u64;
            for line in text[..complete].lines() {
                if let Some(e) = parse_entry(line) {
                    out.push((
                        e.time.to_string(),
                        format!("{} {}: {}", e.time, self.app, e.line),
                    ));
                }
            }
        }
        out
    }

    pub fn exists(&self) -> bool {
        self.files.iter().any(|f| f.exists())
    }
}

/// Puts `entries` of several apps in time order, keeps those from `since`
/// (RFC 3339 text) and before `until`, then the last `last` (0: all).
pub fn select(
    mut entries: Vec<Entry>,
    since: Option<&str>,
    until: Option<&str>,
    last: u64,
) -> Vec<Entry> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.retain(|e| {
        since.is_none_or(|s| e.0.as_str() >= s) && until.is_none_or(|u| e.0.as_str() < u)
    });
    let skip = match last {
        0 => 0,
        n => entries.len().saturating_sub(n as usize),
    };
    entries.split_off(skip)
}
