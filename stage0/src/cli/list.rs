//! `rkt list`.

use std::time::SystemTime;

use anyhow::{bail, Result};
use clap::Args;
use stage0::pod::lifecycle::{NetInfo, Pod, PodState};

use super::output::{full_time, humanize_since, Table};
use super::Context;

#[derive(Args, Debug)]
pub struct ListArgs {
    /// suppress a legend with the list
    #[arg(long)]
    no_legend: bool,
    /// use long output format
    #[arg(long)]
    full: bool,
    /// choose the output format, allowed format includes 'json', 'json-pretty'.
    /// If empty, then the result is printed as key value pairs
    #[arg(long, default_value = "", value_name = "FORMAT")]
    format: String,
}

/// `name:ip4=1.2.3.4` entries joined by `, ` (rkt's `fmtNets`).
pub fn fmt_nets(nets: &[NetInfo]) -> String {
    nets.iter()
        .map(|n| format!("{}:ip4={}", n.net_name, n.ip.as_deref().unwrap_or("<nil>")))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(ctx: &Context, args: ListArgs) -> Result<i32> {
    let json = match args.format.as_str() {
        "" => None,
        "json" => Some(false),
        "json-pretty" => Some(true),
        other => bail!("unknown format {other:?}; use json or json-pretty"),
    };
    let mut pods =
        Pod::list(&ctx.data_dir).map_err(|e| anyhow::anyhow!("failed to get pod handles: {e}"))?;
    // A pod whose preparation died (rkt killed mid-prepare) is half made:
    // it is not listed; `rkt gc` removes it and `rkt status` still finds it.
    pods.retain(|p| !matches!(p.state(), PodState::Embryo | PodState::AbortedPrepare));
    let mut errors = Vec::new();

    if let Some(pretty) = json {
        let mut out = Vec::new();
        for p in &pods {
            match p.to_v1() {
                Ok(v) => out.push(v),
                Err(e) => errors.push(e.to_string()),
            }
        }
        let text = if pretty {
            super::status::to_go_pretty_json(&out)?
        } else {
            serde_json::to_string(&out)?
        };
        println!("{text}");
    } else {
        print!("{}", table(&pods, args.full, args.no_legend, &mut errors));
    }
    if !errors.is_empty() {
        eprintln!("list: listing pods:");
        for e in errors {
            eprintln!("  {e}");
        }
    }
    Ok(0)
}

fn table(pods: &[Pod], full: bool, no_legend: bool, errors: &mut Vec<String>) -> String {
    let now = SystemTime::now();
    let fmt_time = |t: SystemTime| {
        if full {
            full_time(t)
        } else {
            humanize_since(t, now)
        }
    };
    let mut t = Table::new();
    if !no_legend {
        if full {
            t.row([
                "UUID",
                "APP",
                "IMAGE NAME",
                "IMAGE ID",
                "STATE",
                "CREATED",
                "STARTED",
                "NETWORKS",
            ]);
        } else {
            t.row([
                "UUID",
                "APP",
                "IMAGE NAME",
                "STATE",
                "CREATED",
                "STARTED",
                "NETWORKS",
            ]);
        }
    }
    for p in pods {
        let apps = if p.has_manifest() {
            match p.manifest() {
                Ok(m) => m.apps,
                Err(e) => {
                    errors.push(format!("Unable to read pod {} manifest:\n  {e}", p.uuid()));
                    continue;
                }
            }
        } else {
            Vec::new()
        };
        let mut uuid = if full {
            p.uuid().to_string()
        } else {
            p.uuid()[..8].to_string()
        };
        let mut state = p.state().to_string();
        let mut nets = fmt_nets(&p.networks());
        // rkt formats the zero time for pods not prepared yet.
        let mut created = match p.created() {
            Some(t) => fmt_time(t),
            None if full => "0001-01-01 00:00:00 +0000 UTC".to_string(),
            None => "a long while ago".to_string(),
        };
        let mut started = p.started().map(fmt_time).unwrap_or_default();
        let mut rows: Vec<[String; 4]> = Vec::new(); // app, image name, image id
        if apps.is_empty() {
            rows.push(["-".into(), "-".into(), "-".into(), String::new()]);
        }
        for a in &apps {
            let mut name = a
                .image
                .name
                .as_ref()
                .map(|n| n.as_str().to_string())
                .unwrap_or_default();
            if let Some(v) = a.image.labels.iter().find(|l| l.name.as_str() == "version") {
                name = format!("{name}:{}", v.value);
            }
            let id: String = a.image.id.as_str().chars().take(19).collect();
            rows.push([a.name.as_str().to_string(), name, id, String::new()]);
        }
        for [app, image, id, _] in rows {
            let mut cells = vec![std::mem::take(&mut uuid), app, image];
            if full {
                cells.push(id);
            }
            cells.extend([
                std::mem::take(&mut state),
                std::mem::take(&mut created),
                std::mem::take(&mut started),
                std::mem::take(&mut nets),
            ]);
            t.row(cells);
        }
    }
    t.render()
}
