//! The contracts between stage0, stage1 flavors and third-party stage1 images:
//! appc image and pod manifests (with the spec's validation) and the versioned
//! stage1 ABI (entrypoints, arguments, pod-directory files).
//!
//! This crate does no I/O beyond (de)serialising; everything else depends on it.

pub mod pod_dir;
pub mod schema;
pub mod stage1;
