//! `rkt config`: the merged stage0 configuration as JSON (rkt's format: one
//! entry per auth domain, per docker registry, one `paths`, one `stage1`).

use anyhow::Result;
use clap::Args;
use serde_json::{json, Map, Value};
use stage0::pod::select::{default_image_candidates, stage1_images_dir, DEFAULT_FLAVOR};

use super::context::DEFAULT_DATA_DIR;
use super::Context;

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// indent the JSON output
    #[arg(long, num_args = 0..=1, default_value = "true", default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pretty_print: bool,
}

pub fn run(ctx: &Context, args: ConfigArgs) -> Result<i32> {
    let cfg = ctx.config();
    let mut entries: Vec<Value> = Vec::new();
    for (domain, raw) in &cfg.auth {
        entries.push(auth_entry("auth", "domains", domain, raw));
    }
    for (registry, raw) in &cfg.docker_auth {
        entries.push(auth_entry("dockerAuth", "registries", registry, raw));
    }
    entries.push(json!({
        "rktVersion": "v1",
        "rktKind": "paths",
        // rkt prints the configured value; --dir only overrides it at run time.
        "data": cfg.paths.data.clone().unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
        "stage1-images": stage1_images_dir(cfg),
    }));
    let file = format!("stage1-{DEFAULT_FLAVOR}.aci");
    let location = cfg.stage1.location.clone().or_else(|| {
        default_image_candidates(cfg, &file)
            .into_iter()
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    });
    entries.push(json!({
        "rktVersion": "v1",
        "rktKind": "stage1",
        "name": cfg.stage1.name.clone().unwrap_or_else(|| format!("coreos.com/rkt/stage1-{DEFAULT_FLAVOR}")),
        "version": cfg.stage1.version.clone().unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string()),
        "location": location.unwrap_or_default(),
    }));
    let out = json!({ "stage0": entries });
    if args.pretty_print {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", serde_json::to_string(&out)?);
    }
    Ok(0)
}

/// One entry per domain (or registry), as rkt prints them.
fn auth_entry(kind: &str, list_key: &str, name: &str, raw: &Value) -> Value {
    let mut obj = Map::new();
    obj.insert("rktVersion".into(), json!("v1"));
    obj.insert("rktKind".into(), json!(kind));
    obj.insert(list_key.into(), json!([name]));
    if let Value::Object(src) = raw {
        for (k, v) in src {
            if !matches!(
                k.as_str(),
                "rktVersion" | "rktKind" | "domains" | "registries"
            ) {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(obj)
}
