//! CNI CHECK of a running pod's networks through the stage1's optional
//! `net/check` entrypoint: stage1 owns the networks, their plugins and
//! their records, so stage0 only asks and reports.

use std::path::Path;
use std::process::{Command, Stdio};

use abi::stage1::{Entrypoint, NetCheckArgs};
use thiserror::Error;

use super::{Pod, PodState};
use crate::pod::stage1::Stage1Image;

#[derive(Debug, Error)]
pub enum NetCheckError {
    #[error("pod {0:?} isn't running; only a running pod's networks can be checked")]
    NotRunning(String),
    #[error(transparent)]
    Stage1(#[from] crate::pod::stage1::Stage1Error),
    #[error(
        "the {0} stage1 cannot check networks (it has no {annotation} entrypoint); \
         use the ns or kvm stage1",
        annotation = Entrypoint::NetCheck.annotation()
    )]
    Unsupported(String),
    #[error("cannot run {path}: {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    /// The entrypoint's own message, which names the network and plugin.
    #[error("{0}")]
    Failed(String),
}

/// One network's outcome: `checked` is false for a network that does not
/// take CHECK (`disableCheck`, or a CNI version before 0.4.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetCheck {
    pub net: String,
    pub checked: bool,
}

impl Pod {
    /// Runs the stage1 `net/check` entrypoint of this running pod. With
    /// `debug`, the entrypoint's debug output goes to stderr as it comes.
    pub fn check_networks(
        &self,
        local_config: &Path,
        debug: bool,
    ) -> Result<Vec<NetCheck>, NetCheckError> {
        if self.state() != PodState::Running {
            return Err(NetCheckError::NotRunning(self.uuid().to_string()));
        }
        let s1 = Stage1Image::load(self.path())?;
        if s1.entrypoint(Entrypoint::NetCheck).is_none() {
            return Err(NetCheckError::Unsupported(s1.flavor().to_string()));
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
            return Err(NetCheckError::Failed(match debug {
                true => format!(
                    "the stage1 net/check entrypoint exited with {}; its messages are above",
                    out.status
                ),
                false => failure_message(&out.stderr, &out.status),
            }));
        }
        Ok(parse_outcomes(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// The entrypoint's last stderr line without its `stage1: ` prefix, or its
/// exit status when it said nothing.
fn failure_message(stderr: &[u8], status: &std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    match text.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => line.trim().trim_start_matches("stage1: ").to_string(),
        None => format!("the stage1 net/check entrypoint exited with {status}"),
    }
}

/// `NETWORK ok|skipped` lines; anything else is not an outcome.
fn parse_outcomes(stdout: &str) -> Vec<NetCheck> {
    stdout
        .lines()
        .filter_map(|line| match line.split_once(' ')? {
            (net, "ok") => Some(NetCheck {
                net: net.to_string(),
                checked: true,
            }),
            (net, "skipped") => Some(NetCheck {
                net: net.to_string(),
                checked: false,
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn outcomes_are_read_line_by_line() {
        assert_eq!(
            parse_outcomes("default ok\nquiet skipped\nnoise\n"),
            [
                NetCheck {
                    net: "default".into(),
                    checked: true
                },
                NetCheck {
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
        assert!(matches!(err, NetCheckError::NotRunning(_)), "{err}");
    }
}
