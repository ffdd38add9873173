//! Configuration: global options and the system/local/user config layers.

mod insecure;

pub use insecure::{InsecureOptions, InsecureOptionsError};
