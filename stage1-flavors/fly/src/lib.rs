//! The fly stage1 flavor: one app, chrooted, in the host's network, PID, IPC
//! and UTS namespaces, with no isolators (rkt.md §6 "Fly").
//!
//! Unlike rkt's fly, `run` sets the app up in a private mount namespace (a
//! slave of the host's), so nothing it mounts outlives the app and `gc` has
//! nothing to clean up in the host.
//!
//! `run` forks: the child becomes the app, the parent stays as a small
//! waiter (see [`waiter`]) that holds the pod lock and records the app's exit
//! code, which rkt's fly (exec'ing the app directly) never did.
//!
//! This library holds what the four entrypoint binaries share.

use thiserror::Error;

pub use stage1_common::entry::{debug, exec, fail, fork, reset_signals_for_exec, EntryError};

pub use stage1_common::STAGE1_ERROR_EXIT;

pub mod terminal;
pub mod waiter;

#[derive(Debug, Error)]
pub enum FlyError {
    #[error("fly runs apps in the host network namespace; --net={0} is not supported (use --net=host or leave --net unset)")]
    Network(String),
    #[error(transparent)]
    Entry(#[from] EntryError),
}

/// Checks a `--net` value: fly only knows the host network. rkt passes
/// `default` when the user said nothing, which fly (like rkt's) runs as host.
pub fn check_net(net: &str) -> Result<(), FlyError> {
    for entry in net.split(',').filter(|e| !e.is_empty()) {
        let name = entry.split(':').next().unwrap_or(entry);
        if name != "host" && name != "default" {
            return Err(FlyError::Network(net.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_values() {
        for ok in ["", "host", "default", "default,host"] {
            check_net(ok).unwrap();
        }
        for bad in ["none", "mynet", "default,mynet:IP=10.0.0.2"] {
            let e = check_net(bad).unwrap_err();
            assert!(e.to_string().contains("--net=host"), "{e}");
        }
    }
}
