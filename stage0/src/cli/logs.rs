//! `rkt logs`: a pod's app output, read from the pod's own journal (the ns
//! stage1 keeps one on hosts that run systemd-journald, see its
//! `podjournal`), or else from the apps' log files (`abi::app_log`). rkt never had this command; it was its users' most
//! requested one (rkt #3082), and rkt's docs sent them to
//! `journalctl -M rkt-<uuid>`, which only works while the pod runs.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use abi::app_log::{log_name, parse_entry, parse_time, rfc3339_nanos, rotated_name, LOGS_DIR};
use abi::pod_dir::JOURNAL_FILES;
use anyhow::{anyhow, bail, Result};
use clap::Args;
use stage0::pod::lifecycle::{Pod, PodState};

use super::status::pod_from_args;
use super::Context;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// show only the output of this app
    #[arg(long, value_name = "NAME")]
    app: Option<String>,
    /// keep printing the pod's output as it is written
    #[arg(long, short = 'f')]
    follow: bool,
    /// show only the last N lines (0 shows all)
    #[arg(long, short = 'n', default_value_t = 0, value_name = "N")]
    lines: u64,
    /// show output since this time: a UTC time ("2026-12-05 10:00:00") or
    /// an age ("-1h"; s, m, h, d)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// read pod UUID from file instead of argument
    #[arg(long, value_name = "FILE")]
    uuid_file: Option<PathBuf>,
    /// the pod UUID (or a unique prefix)
    uuid: Option<String>,
}

pub fn run(ctx: &Context, args: LogsArgs) -> Result<i32> {
    let pod = pod_from_args(ctx, args.uuid_file.as_deref(), args.uuid.as_deref())?;
    let uuid = pod.uuid().to_string();
    let manifest = pod
        .manifest()
        .map_err(|e| anyhow!("cannot get pod manifest: {e}"))?;
    let names: Vec<String> = manifest.apps.iter().map(|a| a.name.to_string()).collect();
    // The apps whose output is shown.
    let apps = match &args.app {
        Some(app) if !names.contains(app) => bail!(
            "pod {uuid} has no app named {app:?}; its apps are: {}",
            names.join(", ")
        ),
        Some(app) => vec![app.clone()],
        None => names,
    };
    // One meaning for both kinds of log (journalctl alone would read a
    // time as local and take its own words like "today").
    let since = match &args.since {
        Some(s) => Some(parse_since(s)?),
        None => None,
    };
    let journal = pod.path().join(JOURNAL_FILES);
    if !journal.is_dir() {
        let since = since.map(rfc3339_nanos);
        return follow_files(pod, &apps, since.as_deref(), args.lines, args.follow);
    }
    let mut journalctl = Command::new("journalctl");
    journalctl
        .arg(format!("--directory={}", journal.display()))
        .args(["--no-pager", "--quiet"]);
    if args.follow {
        journalctl.arg("--follow");
    }
    if args.lines > 0 {
        journalctl.arg(format!("--lines={}", args.lines));
    }
    if let Some(since) = since {
        let secs = since
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        journalctl.arg(format!("--since=@{secs}"));
    }
    match &args.app {
        Some(app) => journalctl.arg(format!("RKT_APP_NAME={app}")),
        // The apps' output lines and what they logged through /dev/log,
        // not the pod journald's own notices.
        None => journalctl.args([&format!("RKT_POD_UUID={uuid}"), "+", "_TRANSPORT=syslog"]),
    };
    let err = journalctl.exec();
    bail!(
        "cannot run journalctl to read the pod's journal: {err}; install Debian's systemd package"
    )
}

/// `--since` for the log files: `YYYY-MM-DD HH:MM:SS` (UTC, optionally
/// with `T`, a fraction and `Z`) or `-N[smhd]` ago.
fn parse_since(text: &str) -> Result<SystemTime> {
    let relative = text.strip_prefix('-').and_then(|rest| {
        let (n, unit) = rest.split_at(rest.len().checked_sub(1)?);
        let n: u64 = n.parse().ok()?;
        let secs = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86_400,
            _ => return None,
        };
        SystemTime::now().checked_sub(Duration::from_secs(secs))
    });
    match relative.or_else(|| parse_time(text)) {
        Some(t) => Ok(t),
        None => bail!(
            "invalid --since={text:?}; use a UTC time like \"2026-12-05 10:00:00\" or an age like -1h (s, m, h, d)"
        ),
    }
}

/// One app's log files and how far they have been read, by inode: a
/// rotation renames `<app>.log` to `<app>.log.1`, which keeps its offset,
/// and starts a new `<app>.log` from 0.
struct AppFiles {
    app: String,
    /// `<app>.log.1` then `<app>.log`.
    files: [std::path::PathBuf; 2],
    read_up_to: HashMap<u64, u64>,
}

impl AppFiles {
    /// Complete entries appended since the last call, as (time, line).
    fn read_new(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for path in &self.files {
            let Ok(mut file) = std::fs::File::open(path) else {
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

    fn exists(&self) -> bool {
        self.files.iter().any(|f| f.exists())
    }
}

/// Prints the apps' log entries in time order (the last `lines`, from
/// `since`), then, with `follow`, new ones until the pod stops running.
fn follow_files(
    mut pod: Pod,
    apps: &[String],
    since: Option<&str>,
    lines: u64,
    follow: bool,
) -> Result<i32> {
    let dir = pod.stage1_runtime_path(LOGS_DIR);
    let mut sources: Vec<AppFiles> = apps
        .iter()
        .map(|app| AppFiles {
            app: app.clone(),
            files: [dir.join(rotated_name(app)), dir.join(log_name(app))],
            read_up_to: HashMap::new(),
        })
        .collect();
    if !follow && !sources.iter().any(AppFiles::exists) {
        // Not an error: the apps may have printed nothing.
        eprintln!(
            "pod {} has no logged output: its apps printed nothing, or it kept no logs (--interactive pods, stage1s other than ns)",
            pod.uuid()
        );
        return Ok(0);
    }
    let print = |mut entries: Vec<(String, String)>, skip_to_last: Option<u64>| {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(since) = since {
            entries.retain(|e| e.0.as_str() >= since);
        }
        let skip = match skip_to_last {
            Some(n) if n > 0 => entries.len().saturating_sub(n as usize),
            _ => 0,
        };
        let mut out = std::io::stdout().lock();
        for (_, line) in &entries[skip..] {
            if writeln!(out, "{line}").is_err() {
                return false; // the reader went away
            }
        }
        out.flush().is_ok()
    };
    let first: Vec<_> = sources.iter_mut().flat_map(AppFiles::read_new).collect();
    if !print(first, Some(lines)) || !follow {
        return Ok(0);
    }
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let running = pod.refresh().is_ok() && pod.state() == PodState::Running;
        let new: Vec<_> = sources.iter_mut().flat_map(AppFiles::read_new).collect();
        if !print(new, None) || !running {
            return Ok(0);
        }
    }
}
