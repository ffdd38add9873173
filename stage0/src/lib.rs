//! The `rkt` stage0 library: image store, fetching, configuration and the pod
//! lifecycle. The command line (`src/cli/`, part of the binary) drives it.

pub mod config;
pub mod data_dir;
pub mod fetch;
pub mod pod;
pub mod services;
pub mod store;
pub mod trust;
