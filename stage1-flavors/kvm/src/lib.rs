//! The kvm stage1 flavor: each pod is a microVM. QEMU (`microvm`, TCG
//! where the host has no usable hardware virtualization) boots the
//! flavor's kernel with an initramfs whose init is `kvm-guest`. The pod
//! directory is shared into the guest over 9p at the same path, and the
//! guest runs the pod exactly as the ns flavor runs it on a host (its
//! supervisor, namespaces, cgroups, capabilities, seccomp), so exit
//! codes and `rkt/status` files come back through the shared directory.
//!
//! The host side (`kvm-run`, the image's `/init`) sets up the pod's CNI
//! networks in a network namespace like the ns flavor, and hands each
//! network interface to the VM through a tap device that the interface's
//! ingress traffic is redirected to and from (so any CNI plugin works).
//! `stop` and `gc` are the ns flavor's: `run` passes SIGTERM (and the
//! other signals the ns flavor forwards) to the guest on the VM's control
//! port.

pub mod config;
pub mod guest;
pub mod qemu;
pub mod tap;

pub use stage1_common::entry::{debug, fail};

/// The pod directory's 9p mount tag.
pub const POD_TAG: &str = "rkt-pod";

/// The name of the virtio serial port `run` sends control requests on.
pub const CONTROL_PORT: &str = "rkt.control";

/// The virtio serial ports the pod's stdout and stderr go out on: plain
/// character devices, not terminals (a console would turn `\n` into
/// `\r\n` and tell apps they write to a tty).
pub const STDOUT_PORT: &str = "rkt.stdout";
pub const STDERR_PORT: &str = "rkt.stderr";

/// The control request that sends `signal` to the pod (which passes it on
/// to the apps, as on a host): `signal <number>`.
pub fn signal_request(signal: nix::sys::signal::Signal) -> String {
    format!("signal {}", signal as i32)
}

/// The signal a control request asks for, if it is one.
pub fn parse_signal_request(line: &str) -> Option<nix::sys::signal::Signal> {
    let number: i32 = line.trim().strip_prefix("signal ")?.parse().ok()?;
    nix::sys::signal::Signal::try_from(number).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn signal_requests_round_trip() {
        let line = signal_request(Signal::SIGTERM);
        assert_eq!(line, "signal 15");
        assert_eq!(parse_signal_request(&line), Some(Signal::SIGTERM));
        assert_eq!(parse_signal_request("signal 99999"), None);
        assert_eq!(parse_signal_request("stop"), None);
    }
}
