//! The contracts between stage0, stage1 flavors and third-party stage1 images:
//! appc image and pod manifests (with the spec's validation), the versioned
//! stage1 ABI (entrypoints, arguments, pod-directory files) and the JSON files
//! stage1 leaves in the pod directory (`runtime-config`, `net-info.json`).
//!
//! This crate does no I/O beyond (de)serialising and reading the files a pod
//! writes ([`pod_file`]); everything else depends on it.

pub mod app_log;
pub mod calendar;
pub mod metadata;
pub mod net_info;
pub mod pod_dir;
pub mod pod_file;
pub mod resolv;
pub mod runtime_config;
pub mod schema;
pub mod stage1;
