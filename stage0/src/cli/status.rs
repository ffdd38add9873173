//! `rkt status`.

use std::time::Duration;

use abi::stage1::NetCheckOutcome;
use anyhow::{anyhow, bail, Result};
use clap::Args;
use serde::Serialize;
use stage0::pod::lifecycle::{ensure_superuser, parse_wait, read_uuid_file, Pod, PodState, Wait};

use super::list::fmt_nets;
use super::output::full_time;
use super::Context;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// toggles waiting for the pod to finish (true, false or a timeout).
    /// Use the output to determine the actual terminal state.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true",
          require_equals = true, value_name = "BOOL|DURATION")]
    wait: String,
    /// toggles waiting until the pod is ready (true, false or a timeout)
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true",
          require_equals = true, value_name = "BOOL|DURATION")]
    wait_ready: String,
    /// choose the output format. Allowed format includes 'json', 'json-pretty'.
    /// If empty, then the result is printed as key value pairs
    #[arg(long, default_value = "", value_name = "FORMAT")]
    format: String,
    /// run CNI CHECK of the running pod's networks and look for its --port
    /// rules (root only): exit 254 naming the network and plugin that found
    /// it changed, or the rules that are gone; the text
    /// output gains network-check=NET:ok|skipped,... (JSON output does not
    /// change: its exit code is the check's)
    #[arg(long)]
    check_networks: bool,
    /// read pod UUID from file instead of argument
    #[arg(long, value_name = "FILE")]
    uuid_file: Option<std::path::PathBuf>,
    /// the pod UUID (or a unique prefix)
    uuid: Option<String>,
}

/// Go's `json.MarshalIndent(v, "", "\t")`; a nil slice prints `null`.
pub fn to_go_pretty_json<T: Serialize>(v: &T) -> Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser)?;
    let text = String::from_utf8(buf)?;
    Ok(if text == "[]" {
        "null".to_string()
    } else {
        text
    })
}

/// Resolves `--uuid-file` xor a positional UUID (prefix) to a loaded pod.
pub fn pod_from_args(
    ctx: &Context,
    uuid_file: Option<&std::path::Path>,
    uuid: Option<&str>,
) -> Result<Pod> {
    let prefix = match (uuid_file, uuid) {
        (Some(f), None) => {
            read_uuid_file(f).map_err(|e| anyhow!("unable to resolve UUID from file: {e}"))?
        }
        (None, Some(u)) => u.to_string(),
        _ => bail!("pass exactly one pod: --uuid-file=FILE or a UUID"),
    };
    Pod::load_prefix(&ctx.data_dir, &prefix).map_err(|e| anyhow!("problem retrieving pod: {e}"))
}

pub fn run(ctx: &Context, args: StatusArgs) -> Result<i32> {
    let wait = parse_wait(&args.wait)?;
    let wait_ready = parse_wait(&args.wait_ready)?;
    let json = match args.format.as_str() {
        "" => None,
        "json" => Some(false),
        "json-pretty" => Some(true),
        other => bail!("unknown format {other:?}; use json or json-pretty"),
    };
    if args.check_networks {
        if wait != Wait::No {
            bail!("--check-networks needs a running pod and --wait waits until it has finished; pass one of them");
        }
        ensure_superuser().map_err(|e| anyhow!("--check-networks: {e}"))?;
    }
    let mut pod = pod_from_args(ctx, args.uuid_file.as_deref(), args.uuid.as_deref())?;
    pod.wait_ready(wait_ready)
        .map_err(|e| anyhow!("error waiting for pod readiness: {e}"))?;
    pod.wait_finished(wait)
        .map_err(|e| anyhow!("error waiting for pod to finish: {e}"))?;
    let checks = match args.check_networks {
        true => Some(
            pod.check_networks(&ctx.local_config, ctx.debug)
                .map_err(|e| anyhow!("network check of pod {:?}: {e}", pod.uuid()))?,
        ),
        false => None,
    };

    if let Some(pretty) = json {
        let v = pod
            .to_v1()
            .map_err(|e| anyhow!("unable to print status: error converting pod: {e}"))?;
        let text = if pretty {
            to_go_pretty_json(&v)?
        } else {
            serde_json::to_string(&v)?
        };
        println!("{text}");
        return Ok(0);
    }
    print!("{}", text_status(&pod)?);
    if let Some(checks) = checks {
        println!("network-check={}", fmt_checks(&checks));
    }
    Ok(0)
}

/// `NET:ok|skipped` per network, comma-separated, in ADD's order.
fn fmt_checks(checks: &[NetCheckOutcome]) -> String {
    checks
        .iter()
        .map(|c| format!("{}:{}", c.net, c.word()))
        .collect::<Vec<_>>()
        .join(",")
}

fn text_status(pod: &Pod) -> Result<String> {
    let mut out = String::new();
    let state = pod.state();
    out.push_str(&format!("state={state}\n"));
    // rkt formats the zero time for pods not prepared yet.
    let created = pod
        .created()
        .map(full_time)
        .unwrap_or_else(|| "0001-01-01 00:00:00 +0000 UTC".to_string());
    out.push_str(&format!("created={created}\n"));
    if let Some(t) = pod.started() {
        out.push_str(&format!("started={}\n", full_time(t)));
    }
    if state == PodState::Running || state == PodState::Exited {
        out.push_str(&format!("networks={}\n", fmt_nets(&pod.networks())));
    }
    if state == PodState::Running || state == PodState::Deleting || state.is_after_run() {
        // The pid file may lag the state change by a little.
        let mut pid = pod.pid_file();
        for _ in 0..10 {
            if pid.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            pid = pod.pid_file();
        }
        let pid = pid.ok_or_else(|| {
            anyhow!(
                "unable to print status: unable to get PID for pod {:?}",
                pod.uuid()
            )
        })?;
        let exited = matches!(state, PodState::Exited | PodState::ExitedGarbage);
        out.push_str(&format!("pid={pid}\nexited={exited}\n"));
        if state != PodState::Running {
            for (app, code) in pod.app_exit_codes() {
                out.push_str(&format!("app-{app}={code}\n"));
            }
        }
    }
    Ok(out)
}
