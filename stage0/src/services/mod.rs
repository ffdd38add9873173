//! The long-running services: `rkt metadata-service` (and its clients) and
//! `rkt api-service`.

pub mod activation;
pub mod api;
pub mod metadata;
