//! host-local IPAM plugin (drop-in for containernetworking-plugins' host-local).
fn main() {
    cni_plugins::cni::run(&cni_plugins::ipam::host_local::HostLocal)
}
