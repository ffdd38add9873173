//! ptp plugin (drop-in for containernetworking-plugins' ptp). IPAM is the
//! plugin named by `ipam.type`, looked up on CNI_PATH.
fn main() {
    cni_plugins::cni::run(&cni_plugins::ptp::Ptp)
}
