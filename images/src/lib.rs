//! A small ACI writer and the recipes of the images this project builds.
//!
//! [`AciBuilder`] writes well-formed images from a manifest and a rootfs
//! directory; [`RawAciWriter`] writes arbitrary (hostile) tar entries for tests.

mod builder;
pub mod cpio;
pub mod manifest;
mod raw;
pub mod recipes;

pub use builder::{AciBuilder, BuildError, DETERMINISTIC_MTIME};
pub use raw::{gzip, RawAciWriter, RawEntry, RawError, RawKind};
