//! Running the host's packet-filter tools (`iptables`, `iptables-restore`,
//! `nft`): found on PATH or in the usual sbin directories, fed on stdin;
//! what they print on stderr is the error.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0} not found in PATH, /usr/sbin or /sbin")]
    NotFound(&'static str),
    #[error("failed to run {bin}: {source}")]
    Exec { bin: String, source: io::Error },
    #[error("{bin} failed: {stderr}")]
    Failed { bin: String, stderr: String },
}

impl ToolError {
    /// What the tool said, or why it could not say anything.
    pub fn detail(&self) -> String {
        match self {
            ToolError::Failed { stderr, .. } => stderr.clone(),
            e => e.to_string(),
        }
    }
}

/// Where `name` is installed.
pub fn find_bin(name: &'static str) -> Result<PathBuf, ToolError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(ToolError::NotFound(name))
}

/// Runs `bin ARGS` with `input` on stdin (none: /dev/null); its stdout.
pub fn run(bin: &'static str, args: &[&str], input: Option<&str>) -> Result<String, ToolError> {
    let path = find_bin(bin)?;
    let err = |source| ToolError::Exec {
        bin: bin.to_string(),
        source,
    };
    let mut child = Command::new(&path)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(err)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(err)?;
    }
    let out = child.wait_with_output().map_err(err)?;
    if !out.status.success() {
        return Err(ToolError::Failed {
            bin: bin.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
