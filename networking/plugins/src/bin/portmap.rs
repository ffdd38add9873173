//! portmap plugin (drop-in for containernetworking-plugins' portmap, with
//! one nftables table per attachment instead of iptables chains).
fn main() {
    cni_plugins::cni::run(&cni_plugins::portmap::Portmap)
}
