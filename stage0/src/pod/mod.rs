//! Pods: the lifecycle directories and locks, UUIDs, rendering and stage1 exec.

pub mod attach;
pub mod dns;
pub mod launch;
pub mod lifecycle;
pub mod logs;
pub mod manifest;
pub mod mounts;
pub mod options;
pub mod overlay;
pub mod render;
pub mod select;
pub mod stage1;
pub mod userns;
