//! `rkt logs`: a pod's app output, read from the pod's own journal (the ns
//! stage1 keeps one on hosts that run systemd-journald, see its
//! `podjournal`), or else from the apps' log files (`abi::app_log`). rkt never had this command; it was its users' most
//! requested one (rkt #3082), and rkt's docs sent them to
//! `journalctl -M rkt-<uuid>`, which only works while the pod runs.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use abi::app_log::{parse_time, rfc3339_nanos};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use stage0::pod::lifecycle::{Pod, PodState};
use stage0::pod::logs::{journal_command, select, AppLogFiles, Entry, LogQuery};

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
    let query = LogQuery {
        app: args.app.clone(),
        lines: args.lines,
        since,
        until: None,
        follow: args.follow,
    };
    let Some(mut journalctl) = journal_command(&pod, &query) else {
        let since = since.map(rfc3339_nanos);
        return follow_files(pod, &apps, since.as_deref(), args.lines, args.follow);
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

/// Prints the apps' log entries in time order (the last `lines`, from
/// `since`), then, with `follow`, new ones until the pod stops running.
fn follow_files(
    mut pod: Pod,
    apps: &[String],
    since: Option<&str>,
    lines: u64,
    follow: bool,
) -> Result<i32> {
    let mut sources = AppLogFiles::of(&pod, apps);
    if !follow && !sources.iter().any(AppLogFiles::exists) {
        // Not an error: the apps may have printed nothing.
        eprintln!(
            "pod {} has no logged output: its apps printed nothing, or it kept no logs (--interactive pods, stage1s other than ns)",
            pod.uuid()
        );
        return Ok(0);
    }
    let print = |entries: Vec<Entry>, last: u64| {
        let mut out = std::io::stdout().lock();
        for (_, line) in select(entries, since, None, last) {
            if writeln!(out, "{line}").is_err() {
                return false; // the reader went away
            }
        }
        out.flush().is_ok()
    };
    let first: Vec<_> = sources.iter_mut().flat_map(AppLogFiles::read_new).collect();
    if !print(first, lines) || !follow {
        return Ok(0);
    }
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let running = pod.refresh().is_ok() && pod.state() == PodState::Running;
        let new: Vec<_> = sources.iter_mut().flat_map(AppLogFiles::read_new).collect();
        if !print(new, 0) || !running {
            return Ok(0);
        }
    }
}
