//! CNI CHECK of a running pod's networks through the stage1's optional
//! `net/check` entrypoint: stage1 owns the networks, their plugins and
//! their records, so stage0 only asks and reports.

use std::path::Path;
use std::process::{Command, Stdio};

use abi::stage1::{Entrypoint, NetCheckArgs, NetCheckOutcome};
use thiserror::Error;

use super::{Pod, PodState};
use crate::pod::stage1::Stage1Image;

#[derive(Debug, Error)]
pub enum NetCheckError {
    #[error("the pod isn't running; only a running pod's networks can be checked")]
    NotRunning,
    #[error("the pod is still starting (its networks may be being set up); retry in a moment")]
    Starting,
    #[error("the pod exited during the check: {0}")]
    ExitedDuringCheck(String),
    #[error(transparent)]
    Stage1(#[from] crate::pod::stage1::Stage1Error),
    #[error(
        "its stage1 image {0} has no {annotation} entrypoint, so its networks cannot be \
         checked (fly pods use the host's network; the ns and kvm stage1 images of this \
         release have it)",
        annotation = Entrypoint::NetCheck.annotation()
    )]
    Unsupported(String),
    #[error("the stage1 net/check entrypoint printed {0:?}, not `NETWORK ok|skipped`")]
    Output(String),
    #[error("cannot run {path}: {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    /// The entrypoint's own message, which names the network and plugin.
    #[error("{0}; restart the pod to set its networks up again")]
    Failed(String),
}

impl Pod {
    /// Runs the stage1 `net/check` entrypoint of this running pod. With
    /// `debug`, the entrypoint's debug output goes to stderr as it comes.
    pub fn check_networks(
        &mut self,
        local_config: &Path,
        debug: bool,
    ) -> Result<Vec<NetCheckOutcome>, NetCheckError> {
        if self.state() != PodState::Running {
            return Err(NetCheckError::NotRunning);
        }
        // Stage1 writes `pid` once the networks are set up: no CHECK while
        // an ADD may still run (CNI allows one operation at a time).
        if self.pid_file().is_none() {
            return Err(NetCheckError::Starting);
        }
        let s1 = Stage1Image::load(self.path())?;
        if s1.entrypoint(Entrypoint::NetCheck).is_none() {
            return Err(NetCheckError::Unsupported(s1.name().to_string()));
        }
        let ep = s1.entrypoint_path(self.path(), Entrypoint::NetCheck)?;
        let argv = NetCheckArgs {
            debug,
            local_config: Some(local_config.display().to_string()),
            uuid: self.uuid().to_string(),
        }
        .to_argv(s1.version);
        let out = Command::new(&ep)
            .args(&argv)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stderr(if debug {
                Stdio::inherit()
            } else {
                Stdio::piped()
            })
            .output()
            .map_err(|source| NetCheckError::Spawn {
                path: ep.display().to_string(),
                source,
            })?;
        if !out.status.success() {
            let message = match debug {
                true => format!(
                    "the stage1 net/check entrypoint exited with {}; its messages are above",
                    out.status
                ),
                false => failure_message(&out.stderr, &out.status),
            };
            // A pod that ended meanwhile lost its networks to its own exit.
            let _ = self.refresh();
            return Err(match self.state() {
                PodState::Running => NetCheckError::Failed(message),
                _ => NetCheckError::ExitedDuringCheck(message),
            });
        }
        // Warnings of a successful check (e.g. a bad plugin timeout).
        std::io::Write::write_all(&mut std::io::stderr(), &out.stderr).ok();
        parse_outcomes(&String::from_utf8_lossy(&out.stdout))
    }
}

/// The entrypoint's last `stage1: ` line (its error, one line) without
/// that prefix, else its last line, else its exit status.
fn failure_message(stderr: &[u8], status: &std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    let said = || text.lines().rev().map(str::trim).filter(|l| !l.is_empty());
    match said()
        .find_map(|l| l.strip_prefix("stage1: "))
        .or_else(|| said().next())
    {
        Some(line) => line.to_string(),
        None => format!("the stage1 net/check entrypoint exited with {status}"),
    }
}

/// The entrypoint's outcome lines, nothing else.
fn parse_outcomes(stdout: &str) -> Result<Vec<NetCheckOutcome>, NetCheckError> {
    stdout
        .lines()
        .map(|line| {
            NetCheckOutcome::parse_line(line).ok_or_else(|| NetCheckError::Output(line.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn outcomes_are_read_line_by_line() {
        assert!(matches!(
            parse_outcomes("default ok\nnoise\n"),
            Err(NetCheckError::Output(l)) if l == "noise"
        ));
        assert_eq!(parse_outcomes("").unwrap(), []);
        assert_eq!(
            parse_outcomes("default ok\nquiet skipped\n").unwrap(),
            [
                NetCheckOutcome {
                    net: "default".into(),
                    checked: true
                },
                NetCheckOutcome {
                    net: "quiet".into(),
                    checked: false
                },
            ]
        );
    }

    #[test]
    fn the_failure_is_the_last_line_said() {
        let status = std::process::ExitStatus::from_raw(254 << 8);
        assert_eq!(
            failure_message(
                b"stage1: debug\nstage1: network \"default\": bad\n",
                &status
            ),
            "network \"default\": bad"
        );
        assert!(failure_message(b"", &status).contains("exited with"));
    }

    #[test]
    fn only_running_pods_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let mut pod = Pod::create(tmp.path()).unwrap();
        pod.to_prepared().unwrap();
        let err = pod
            .check_networks(Path::new("/etc/rkt"), false)
            .unwrap_err();
        assert!(matches!(err, NetCheckError::NotRunning), "{err}");
    }
}
