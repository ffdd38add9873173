//! Delegation to an IPAM plugin binary, the way ptp and bridge get their
//! addresses: find `ipam.type` on CNI_PATH, run it with the same config and
//! environment (only CNI_COMMAND changed), and hand back its result or its
//! error object unchanged.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::cni::{Args, Error, ERR_DECODING, ERR_GENERIC};
use crate::types::CniResult;

/// Finds `plugin` in the CNI_PATH directories.
pub fn find_plugin(plugin: &str, path: &[PathBuf]) -> Result<PathBuf, Error> {
    if plugin.is_empty() {
        return Err(Error::generic("no plugin name provided"));
    }
    // A type is a file name, never a path.
    if plugin.contains('/') {
        return Err(Error::generic(format!("invalid plugin name {plugin:?}")));
    }
    path.iter()
        .map(|d| d.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            let dirs: Vec<String> = path.iter().map(|p| p.display().to_string()).collect();
            Error::generic(format!(
                "failed to find plugin {plugin:?} in path [{}]",
                dirs.join(" ")
            ))
        })
}

#[derive(Deserialize)]
struct ErrorIn {
    #[serde(default)]
    code: u32,
    #[serde(default)]
    msg: String,
    details: Option<String>,
}

/// Runs the IPAM plugin for `command` ("ADD", "DEL", "CHECK").
/// Returns the parsed result for ADD, None otherwise.
pub fn exec(plugin: &str, command: &str, args: &Args) -> Result<Option<CniResult>, Error> {
    let bin = find_plugin(plugin, &args.path)?;
    let mut child = Command::new(&bin)
        .env("CNI_COMMAND", command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::generic(format!("failed to run {}: {e}", bin.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A plugin that exits without reading gives EPIPE; its exit status
        // and output below say what went wrong.
        let _ = stdin.write_all(&args.stdin);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::generic(format!("failed to run {}: {e}", bin.display())))?;
    if !out.status.success() {
        return Err(match serde_json::from_slice::<ErrorIn>(&out.stdout) {
            Ok(e) if !e.msg.is_empty() => Error {
                code: if e.code == 0 { ERR_GENERIC } else { e.code },
                msg: e.msg,
                details: e.details,
            },
            _ => Error::generic(format!(
                "netplugin failed: {:?}",
                String::from_utf8_lossy(&out.stdout).trim()
            )),
        });
    }
    if command != "ADD" {
        return Ok(None);
    }
    let r: CniResult = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::new(ERR_DECODING, format!("failed to parse IPAM result: {e}")))?;
    Ok(Some(r))
}

/// The `ipam.type` of the config, or an error like the reference's.
pub fn ipam_type(args: &Args) -> Result<String, Error> {
    Ok(args
        .conf
        .pointer("/ipam/type")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string())
}
