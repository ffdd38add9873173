//! What the guest's init (`kvm-guest`) does before it runs the pod: load
//! the kernel modules the VM's devices need, leave the initramfs for a
//! tmpfs root (pivot_root, which the pod's namespaces use, refuses the
//! initramfs), mount the shared pod directory and host volumes where the
//! host has them, and configure the network interfaces as the host's CNI
//! networks left them.

pub mod modules;
pub mod mounts;
pub mod net;
