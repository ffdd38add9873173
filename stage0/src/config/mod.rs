//! Configuration: global options and the system/local/user config layers.

mod files;
mod insecure;

pub use files::{Config, ConfigError, PathsConfig, Stage1Config};
pub use insecure::{InsecureOptions, InsecureOptionsError};
