//! loopback plugin (drop-in for containernetworking-plugins' loopback).
fn main() {
    cni_plugins::cni::run(&cni_plugins::loopback::Loopback)
}
