//! IP address management: the host-local allocator and delegation to an
//! IPAM plugin binary (how ptp and bridge get their addresses).

pub mod exec;
pub mod host_local;
pub mod store;
