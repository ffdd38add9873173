//! bridge plugin (drop-in for containernetworking-plugins' bridge). IPAM is
//! the plugin named by `ipam.type`, looked up on CNI_PATH; none = layer 2.
fn main() {
    cni_plugins::cni::run(&cni_plugins::bridge::Bridge)
}
