//! `rkt image list`.

use std::cmp::Ordering;
use std::time::SystemTime;

use anyhow::{bail, Result};
use clap::{ArgAction, Args};
use serde::Serialize;
use stage0::store::{ImageInfo, Store};

use crate::cli::output::{full_time, humanize_bytes, humanize_since, Table};
use crate::cli::Context;
use abi::calendar::unix_nanos;

const FIELDS: [(&str, &str); 6] = [
    ("id", "ID"),
    ("name", "NAME"),
    ("size", "SIZE"),
    ("importtime", "IMPORT TIME"),
    ("lastused", "LAST USED"),
    ("latest", "LATEST"),
];
const SORTABLE: [&str; 4] = ["name", "importtime", "lastused", "size"];

#[derive(Args, Debug)]
pub struct ListArgs {
    /// comma-separated list of fields to display: id, name, importtime, lastused, size, latest
    #[arg(
        long,
        default_value = "id,name,size,importtime,lastused",
        value_name = "FIELDS"
    )]
    fields: String,
    /// sort the output by these comma-separated fields: name, importtime, lastused, size
    #[arg(long, default_value = "importtime", value_name = "FIELDS")]
    sort: String,
    /// sorting order: asc or desc
    #[arg(long, default_value = "asc", value_name = "ORDER")]
    order: String,
    /// suppress a legend with the list
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    no_legend: bool,
    /// use long output format
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    full: bool,
    /// output format: json or json-pretty (default: a table)
    #[arg(long, default_value = "", value_name = "FORMAT")]
    format: String,
}

/// One `--format=json` entry (rkt's `lib.ImageListEntry`).
#[derive(Serialize)]
struct JsonEntry {
    id: String,
    name: String,
    import_time: i64,
    last_used_time: i64,
    size: u64,
}

fn parse_list<'a>(s: &'a str, allowed: &[&str], what: &str) -> Result<Vec<&'a str>> {
    let items: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    for f in &items {
        if !allowed.contains(f) {
            bail!(
                "unknown {what} {f:?}; accepted values: {}",
                allowed.join(", ")
            );
        }
    }
    Ok(items)
}

fn display_name(i: &ImageInfo) -> String {
    match &i.version {
        Some(v) => format!("{}:{v}", i.name),
        None => i.name.clone(),
    }
}

fn compare(a: &ImageInfo, b: &ImageInfo, field: &str) -> Ordering {
    match field {
        "name" => a.name.cmp(&b.name),
        "lastused" => a.last_used.cmp(&b.last_used),
        "size" => (a.size + a.tree_store_size).cmp(&(b.size + b.tree_store_size)),
        _ => a.import_time.cmp(&b.import_time),
    }
}

pub fn run(ctx: &Context, args: ListArgs) -> Result<i32> {
    let all_fields: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
    let fields = parse_list(&args.fields, &all_fields, "field")?;
    let sort = parse_list(&args.sort, &SORTABLE, "sort field")?;
    let desc = match args.order.to_ascii_lowercase().as_str() {
        "asc" => false,
        "desc" => true,
        other => bail!("wrong sort order {other:?}; use asc or desc"),
    };
    let store = Store::open_for_reading(&ctx.data_dir)?;
    let mut images = store.list()?;
    images.sort_by(|a, b| {
        let o = sort
            .iter()
            .map(|f| compare(a, b, f))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal);
        if desc {
            o.reverse()
        } else {
            o
        }
    });

    match args.format.as_str() {
        "json" | "json-pretty" => {
            let entries: Vec<JsonEntry> = images
                .iter()
                .map(|i| JsonEntry {
                    id: i.key.to_string(),
                    name: display_name(i),
                    import_time: unix_nanos(i.import_time),
                    last_used_time: unix_nanos(i.last_used),
                    size: i.size + i.tree_store_size,
                })
                .collect();
            let out = if args.format == "json" {
                serde_json::to_string(&entries)?
            } else {
                pretty_tabs(&entries)?
            };
            super::print_out(&format!("{out}\n"));
        }
        "" => {
            let now = SystemTime::now();
            let mut table = Table::new();
            if !args.no_legend {
                table.row(fields.iter().map(|f| {
                    FIELDS
                        .iter()
                        .find(|(n, _)| n == f)
                        .map(|(_, h)| *h)
                        .unwrap_or_default()
                }));
            }
            for i in &images {
                let time = |t: SystemTime| {
                    if args.full {
                        full_time(t)
                    } else {
                        humanize_since(t, now)
                    }
                };
                let size = i.size + i.tree_store_size;
                table.row(fields.iter().map(|f| match *f {
                    "id" if args.full => i.key.to_string(),
                    "id" => i.key.short().to_string(),
                    "name" => display_name(i),
                    "size" if args.full => size.to_string(),
                    "size" => humanize_bytes(size),
                    "importtime" => time(i.import_time),
                    "lastused" => time(i.last_used),
                    _ => i.latest.to_string(),
                }));
            }
            super::print_out(&table.render());
        }
        other => bail!("invalid format {other:?}; use json or json-pretty"),
    }
    Ok(0)
}

/// JSON indented with tabs, as Go's `json.MarshalIndent(v, "", "\t")`.
pub fn pretty_tabs<T: Serialize>(v: &T) -> Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser)?;
    Ok(String::from_utf8(buf)?)
}
