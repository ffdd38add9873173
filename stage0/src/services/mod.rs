//! The long-running services: `rkt metadata-service` (and its clients) and
//! `rkt api-service`. Both run on a small tokio runtime of their own until
//! SIGINT or SIGTERM; nothing else in `rkt` starts one.

pub mod activation;
pub mod api;
pub mod metadata;

use std::future::Future;

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("starting the service's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen on {what}: {source}")]
    Listen {
        what: String,
        source: std::io::Error,
    },
    #[error("socket activation: {0}")]
    Activation(String),
}

/// Runs `service` to its end on a two-worker runtime.
pub fn run<E: From<StartError>>(service: impl Future<Output = Result<(), E>>) -> Result<(), E> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?
        .block_on(service)
}

/// A future that ends at the first SIGINT or SIGTERM (the handlers are in
/// place once this returns). Call it inside the runtime.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>, StartError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(StartError::Runtime)?;
    let mut int = signal(SignalKind::interrupt()).map_err(StartError::Runtime)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
