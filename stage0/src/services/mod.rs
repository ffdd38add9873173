//! The long-running services: `rkt metadata-service` (and its clients).

pub mod metadata;
