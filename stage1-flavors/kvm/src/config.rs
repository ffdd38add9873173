//! What the host tells the guest: `$pod/kvm/guest.json`, written by `run`
//! before the VM boots and read by the guest's init from the shared pod
//! directory. Also the other files of `$pod/kvm/`.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use cni_plugins::ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// `$pod/kvm`: the flavor's files in the pod directory.
pub const KVM_DIR: &str = "kvm";
/// The guest's configuration.
pub const GUEST_CONFIG: &str = "kvm/guest.json";
/// The pod's exit code, written by the guest before it powers off (in the
/// stage1's runtime directory, which the guest may write).
pub const EXIT_CODE: &str = "stage1/rootfs/rkt/kvm-exit-code";

/// The parts of the pod directory the guest may write; everything else of
/// it (the stage1's entrypoints and plugins, which the host runs, and the
/// records the host tears the pod down by) it sees read-only.
pub const WRITABLE: [(&str, &str); 3] = [
    // The supervisor's status, env and pid files.
    ("rkt-runtime", "stage1/rootfs/rkt"),
    // The apps' root file systems.
    ("rkt-apps", "stage1/rootfs/opt/stage2"),
    // The pod's `empty` volumes.
    ("rkt-volumes", abi::pod_dir::SHARED_VOLUMES),
];
/// The guest kernel's console (boot messages, the init's errors).
pub const CONSOLE_LOG: &str = "kvm/console.log";
/// The FIFO QEMU reads control requests from.
pub const CONTROL_FIFO: &str = "kvm/control";

/// In the stage1 rootfs: the guest kernel and its initramfs.
pub const KERNEL: &str = "kvm/vmlinux";
pub const INITRAMFS: &str = "kvm/initramfs.cpio";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestConfig {
    /// The pod directory's path on the host; the guest mounts it there too,
    /// so every path in the pod's files means the same inside.
    pub pod_dir: PathBuf,
    /// The `run` entrypoint's arguments, as stage0 gave them.
    pub run_args: Vec<String>,
    /// The host wrote a CNI result's name servers to the pod's resolv.conf.
    pub wrote_resolv_conf: bool,
    /// The pod's network interfaces, in order.
    pub interfaces: Vec<GuestInterface>,
    /// The writable parts of the pod directory, shared on their own.
    pub writable: Vec<SharedDir>,
    /// Host directories shared for the pod's host volumes.
    pub shared_dirs: Vec<SharedDir>,
}

/// One of the pod's network interfaces as CNI left it in the pod's network
/// namespace on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestInterface {
    pub name: String,
    /// The MAC of the interface on the host, which the VM's NIC takes over.
    pub mac: String,
    pub mtu: u32,
    pub addresses: Vec<IpNet>,
    pub routes: Vec<GuestRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestRoute {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    pub scope: u8,
}

/// A host directory shared over 9p, mounted at the same path in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedDir {
    pub tag: String,
    /// Where the guest mounts it: the path the pod's files name it by.
    pub path: PathBuf,
    /// The directory QEMU exports (`path` with its symlinks resolved).
    pub host: PathBuf,
    /// Exported read-only: the guest cannot write it, whatever it mounts.
    #[serde(default)]
    pub read_only: bool,
}

impl GuestConfig {
    pub fn read(pod_dir: &Path) -> io::Result<GuestConfig> {
        let bytes = std::fs::read(pod_dir.join(GUEST_CONFIG))?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    pub fn write(&self, pod_dir: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        std::fs::write(pod_dir.join(GUEST_CONFIG), json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_the_pod_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(KVM_DIR)).unwrap();
        let config = GuestConfig {
            pod_dir: dir.path().to_path_buf(),
            run_args: vec!["--net=default".into(), "uuid".into()],
            wrote_resolv_conf: true,
            interfaces: vec![GuestInterface {
                name: "eth0".into(),
                mac: "02:00:00:00:00:01".into(),
                mtu: 1500,
                addresses: vec!["172.16.28.2/24".parse().unwrap()],
                routes: vec![GuestRoute {
                    dst: "0.0.0.0/0".parse().unwrap(),
                    gateway: Some("172.16.28.1".parse().unwrap()),
                    scope: 0,
                }],
            }],
            writable: vec![SharedDir {
                tag: "rkt-runtime".into(),
                path: dir.path().join("stage1/rootfs/rkt"),
                host: dir.path().join("stage1/rootfs/rkt"),
                read_only: false,
            }],
            shared_dirs: vec![SharedDir {
                tag: "rkt-vol0".into(),
                path: "/srv/data".into(),
                host: "/mnt/disk/data".into(),
                read_only: true,
            }],
        };
        config.write(dir.path()).unwrap();
        assert_eq!(GuestConfig::read(dir.path()).unwrap(), config);
    }
}
