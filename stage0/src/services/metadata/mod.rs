//! `rkt metadata-service`: what apps learn about their pod and how they
//! prove which pod they are (appc's metadata service, rkt's registration
//! and HMAC scheme), and stage0's side of registering pods with it.

pub mod client;
pub mod identity;
pub mod registry;
pub mod routes;
pub mod server;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error(transparent)]
    Start(#[from] super::StartError),
    #[error("a metadata service is already listening on {0}; use that one or stop it first")]
    Running(PathBuf),
    #[error("could not reach the metadata service at {path}: {source}; start it with `rkt metadata-service` or run without --mds-register")]
    Unreachable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("talking to the metadata service at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the metadata service refused {what}: HTTP {status}: {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
}
