//! `rkt api-service`: rkt's read-only gRPC API (`v1alpha.PublicAPI`,
//! `proto/v1alpha/api.proto`) over this host's pods and images, with the
//! event stream and logs rkt never finished.

pub mod events;
pub mod images;
pub mod pods;
pub mod server;

/// The messages and the service trait generated from the shipped .proto.
#[allow(clippy::all)]
pub mod proto {
    tonic::include_proto!("v1alpha");
}

/// The API version this service speaks (rkt's).
pub const API_VERSION: &str = "1.0.0-alpha";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Start(#[from] super::StartError),
    #[error("serving gRPC: {0}")]
    Serve(String),
}
