//! `rkt logs`: a pod's app output, read from the pod's own journal (the ns
//! stage1 keeps one on hosts that run systemd-journald, see its
//! `podjournal`). rkt never had this command; it was its users' most
//! requested one (rkt #3082), and rkt's docs sent them to
//! `journalctl -M rkt-<uuid>`, which only works while the pod runs.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use abi::pod_dir::JOURNALD_DIR;
use anyhow::{anyhow, bail, Result};
use clap::Args;

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
    /// show output since this time, in journalctl's forms
    /// ("2026-12-05 10:00:00", "-1h", "today")
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
    if let Some(app) = &args.app {
        let manifest = pod
            .manifest()
            .map_err(|e| anyhow!("cannot get pod manifest: {e}"))?;
        let names: Vec<&str> = manifest.apps.iter().map(|a| a.name.as_str()).collect();
        if !names.contains(&app.as_str()) {
            bail!(
                "pod {uuid} has no app named {app:?}; its apps are: {}",
                names.join(", ")
            );
        }
    }
    let journal = pod.path().join(JOURNALD_DIR).join("log/journal");
    if !journal.is_dir() {
        bail!(
            "pod {uuid} has no journal: the host did not run systemd-journald when it started, so its output went only to `rkt run`'s stdout and stderr"
        );
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
    if let Some(since) = &args.since {
        journalctl.arg(format!("--since={since}"));
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
