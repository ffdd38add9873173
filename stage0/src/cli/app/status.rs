//! `rkt app status UUID --app=NAME [--format=json|json-pretty]`: one app's
//! state, times and exit code (rkt's `api/v1` app view).

use std::time::SystemTime;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use stage0::pod::lifecycle::v1::V1App;

use super::mutable_pod::MutablePod;
use crate::cli::output::full_time;
use crate::cli::status::to_go_pretty_json;
use crate::cli::Context;
use abi::calendar::unix_nanos;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// the pod UUID (or a unique prefix)
    uuid: String,
    /// name of the app
    #[arg(long, value_name = "NAME", required = true)]
    app: String,
    /// choose the output format: json or json-pretty; key=value lines when empty
    #[arg(long, default_value = "", value_name = "FORMAT")]
    format: String,
}

pub fn run(ctx: &Context, args: StatusArgs) -> Result<i32> {
    let json = match args.format.as_str() {
        "" => None,
        "json" => Some(false),
        "json-pretty" => Some(true),
        other => bail!("unknown format {other:?}; use json or json-pretty"),
    };
    let mp = MutablePod::load(ctx, &args.uuid, false)?;
    mp.app(&args.app)?;
    let v1 = mp
        .pod
        .to_v1()
        .map_err(|e| anyhow!("cannot read pod {}: {e}", mp.uuid()))?;
    let mut app = v1
        .apps
        .into_iter()
        .find(|a| a.name == args.app)
        .ok_or_else(|| anyhow!("pod {} has no app {:?}", mp.uuid(), args.app))?;
    let rt = mp.app_runtime(&args.app);
    let nanos = |t: Option<SystemTime>| t.map(unix_nanos);
    app.state = rt.state;
    app.created_at = nanos(rt.created);
    app.started_at = nanos(rt.started);
    app.finished_at = nanos(rt.finished);
    app.exit_code = rt.exit_code;
    match json {
        Some(true) => println!("{}", to_go_pretty_json(&app)?),
        Some(false) => println!("{}", serde_json::to_string(&app)?),
        None => print!("{}", text(&app, &rt)),
    }
    Ok(0)
}

fn text(app: &V1App, rt: &super::mutable_pod::AppRuntime) -> String {
    let mut out = format!(
        "name={}\nstate={}\nimage_id={}\n",
        app.name, app.state, app.image_id
    );
    for (key, t) in [
        ("created_at", rt.created),
        ("started_at", rt.started),
        ("finished_at", rt.finished),
    ] {
        if let Some(t) = t {
            out.push_str(&format!("{key}={}\n", full_time(t)));
        }
    }
    if let Some(code) = app.exit_code {
        out.push_str(&format!("exit_code={code}\n"));
    }
    if !app.mounts.is_empty() {
        out.push_str("mounts=");
        for m in &app.mounts {
            out.push_str(&format!(
                "{}:{}:(read_only:{}) ",
                m.host_path, m.container_path, m.read_only
            ));
        }
        out.push('\n');
    }
    out
}
