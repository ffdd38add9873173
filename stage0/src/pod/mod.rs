//! Pods: the lifecycle directories and locks, UUIDs, rendering and stage1 exec.

pub mod lifecycle;
pub mod manifest;
pub mod mounts;
pub mod options;
pub mod stage1;
