//! The QEMU command line of a pod's VM: a `microvm` machine with the
//! flavor's kernel and initramfs, the pod directory (and host volumes)
//! over virtio-9p, the apps' stdout and stderr on two virtio serial ports,
//! a control port, and one virtio NIC per tap.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use crate::config::SharedDir;
use crate::{CONTROL_PORT, POD_TAG, STDERR_PORT, STDOUT_PORT};

/// The QEMU binary looked for in `PATH`.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// microvm has this many virtio-mmio transports: the pod directory, the
/// serial bus, and the NICs and host volumes share them.
pub const VIRTIO_TRANSPORTS: usize = 8;

/// A NIC: the tap's descriptor (inherited by QEMU) and its MAC.
pub struct Nic {
    pub fd: RawFd,
    pub mac: String,
}

pub struct VmSpec<'a> {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub pod_dir: &'a Path,
    pub console_log: PathBuf,
    pub control_fifo: PathBuf,
    pub memory_mib: u64,
    pub cpus: u32,
    /// Whether the host's KVM can run the guest kernel; TCG otherwise.
    pub kvm: bool,
    pub tsc_khz: Option<u64>,
    /// The writable parts of the pod directory, then the host volumes.
    pub shared_dirs: &'a [SharedDir],
    pub nics: &'a [Nic],
    /// Write ends of the pipes the apps' stdout and stderr go to (inherited
    /// by QEMU).
    pub stdout: RawFd,
    pub stderr: RawFd,
}

/// A path as one QEMU option value (commas doubled).
fn opt_path(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

impl VmSpec<'_> {
    /// How many virtio-mmio transports the VM needs: the pod directory,
    /// the serial bus, the other shares and the NICs.
    pub fn transports(shared_dirs: usize, nics: usize) -> usize {
        2 + shared_dirs + nics
    }

    pub fn args(&self) -> Vec<OsString> {
        let mut cmdline = String::from("console=ttyS0 quiet panic=-1 rdinit=/init");
        if let (Some(khz), false) = (self.tsc_khz, self.kvm) {
            // TCG sometimes hangs calibrating the TSC without it.
            cmdline.push_str(&format!(" tsc_early_khz={khz}"));
        }
        let mut a: Vec<String> = vec![
            // QEMU itself gets no more than it needs: no new privileges,
            // processes or resource changes.
            "-sandbox".into(),
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny".into(),
            "-M".into(),
            "microvm,rtc=on".into(),
            "-accel".into(),
            if self.kvm { "kvm" } else { "tcg" }.into(),
            "-cpu".into(),
            if self.kvm { "host" } else { "max" }.into(),
            "-smp".into(),
            self.cpus.to_string(),
            "-m".into(),
            format!("{}M", self.memory_mib),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-nographic".into(),
            "-no-reboot".into(),
            "-kernel".into(),
            self.kernel.to_string_lossy().into_owned(),
            "-initrd".into(),
            self.initramfs.to_string_lossy().into_owned(),
            "-append".into(),
            cmdline,
            "-chardev".into(),
            format!("file,id=console,path={}", opt_path(&self.console_log)),
            "-serial".into(),
            "chardev:console".into(),
        ];
        let mut share = |id: &str, path: &Path, tag: &str, read_only: bool| {
            a.push("-fsdev".into());
            a.push(format!(
                "local,id={id},path={},security_model=passthrough,multidevs=remap{}",
                opt_path(path),
                if read_only { ",readonly=on" } else { "" }
            ));
            a.push("-device".into());
            a.push(format!("virtio-9p-device,fsdev={id},mount_tag={tag}"));
        };
        // Read-only: the host runs what is in it (entrypoints, plugins) and
        // trusts its records (pid, networks).
        share("pod", self.pod_dir, POD_TAG, true);
        for (i, dir) in self.shared_dirs.iter().enumerate() {
            share(&format!("share{i}"), &dir.host, &dir.tag, dir.read_only);
        }
        a.extend([
            "-device".into(),
            // Port 0 is a console's only; ours are 1 to 3.
            "virtio-serial-device,max_ports=4".into(),
            // The apps' stdout and stderr, to pipes `run` relays: QEMU
            // opening `run`'s own by path would write a file at an offset
            // of its own.
            "-chardev".into(),
            format!("file,id=stdout,path=/proc/self/fd/{}", self.stdout),
            "-device".into(),
            format!("virtserialport,chardev=stdout,name={STDOUT_PORT}"),
            "-chardev".into(),
            format!("file,id=stderr,path=/proc/self/fd/{}", self.stderr),
            "-device".into(),
            format!("virtserialport,chardev=stderr,name={STDERR_PORT}"),
            "-chardev".into(),
            format!("pipe,id=control,path={}", opt_path(&self.control_fifo)),
            "-device".into(),
            format!("virtserialport,chardev=control,name={CONTROL_PORT}"),
        ]);
        for (i, nic) in self.nics.iter().enumerate() {
            a.push("-netdev".into());
            a.push(format!("tap,id=net{i},fd={}", nic.fd));
            a.push("-device".into());
            a.push(format!("virtio-net-device,netdev=net{i},mac={}", nic.mac));
        }
        a.into_iter().map(OsString::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_shares_the_pod_and_passes_taps() {
        let dirs = [SharedDir {
            tag: "rkt-vol0".into(),
            path: "/srv/link".into(),
            host: "/srv/a,b".into(),
            read_only: true,
        }];
        let nics = [Nic {
            fd: 7,
            mac: "02:00:00:00:00:01".into(),
        }];
        let spec = VmSpec {
            kernel: "/s1/kvm/vmlinux".into(),
            initramfs: "/s1/kvm/initramfs.cpio".into(),
            pod_dir: Path::new("/var/lib/rkt/pods/run/u"),
            console_log: "/var/lib/rkt/pods/run/u/kvm/console.log".into(),
            control_fifo: "/var/lib/rkt/pods/run/u/kvm/control".into(),
            memory_mib: 512,
            cpus: 1,
            kvm: false,
            tsc_khz: Some(2_445_000),
            shared_dirs: &dirs,
            nics: &nics,
            stdout: 8,
            stderr: 9,
        };
        let args: Vec<String> = spec
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("-accel tcg -cpu max"));
        assert!(joined.contains("tsc_early_khz=2445000"));
        // The pod directory is the guest's to read only.
        assert!(joined.contains(
            "path=/var/lib/rkt/pods/run/u,security_model=passthrough,multidevs=remap,readonly=on"
        ));
        assert!(joined.starts_with("-sandbox on,"));
        assert!(joined.contains("mount_tag=rkt-pod"));
        // A comma in a path must not end QEMU's option value.
        assert!(joined
            .contains("path=/srv/a,,b,security_model=passthrough,multidevs=remap,readonly=on"));
        assert!(joined.contains("-netdev tap,id=net0,fd=7"));
        assert!(joined.contains("mac=02:00:00:00:00:01"));
        assert!(joined.contains("name=rkt.control"));
        assert!(joined.contains("file,id=stdout,path=/proc/self/fd/8 "));
        assert_eq!(VmSpec::transports(dirs.len(), nics.len()), 4);
    }
}
