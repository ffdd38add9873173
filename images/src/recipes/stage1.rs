//! Stage1 images (`coreos.com/rkt/stage1-<flavor>`), one table row per flavor.

use std::path::Path;

use abi::schema::ImageManifest;
use abi::stage1::{
    format_features, Entrypoint, Feature, FEATURES_ANNOTATION, INTERFACE_VERSION_ANNOTATION,
};

use super::{guest, install, mkdir, set_mode, write, RecipeError};
use crate::manifest::{annotation, image_manifest, standard_labels};

/// What goes into one flavor's stage1 image.
#[derive(Debug, Clone, Copy)]
pub struct Stage1Flavor {
    pub name: &'static str,
    pub image_name: &'static str,
    /// (entrypoint, path in rootfs, file name in the build's bin dir).
    pub entrypoints: &'static [(Entrypoint, &'static str, &'static str)],
    pub interface_version: u32,
    pub features: &'static [Feature],
    /// Files the image carries besides its binaries: (path in rootfs,
    /// content).
    pub files: &'static [(&'static str, &'static str)],
    /// Empty directories the stage1 mounts on at run time: present in the
    /// image, they are not made in each pod's overlay upper dir (an ext4
    /// mkdir per pod start).
    pub dirs: &'static [&'static str],
    /// CNI plugins (file names in the build's bin dir) shipped in
    /// `usr/lib/rkt/plugins/net`, where the stage1 looks first.
    pub cni_plugins: &'static [&'static str],
    /// The flavor boots a VM: the image carries the guest kernel and an
    /// initramfs around the guest init (`kvm-guest` in the bin dir).
    pub guest: bool,
}

/// The guest init's file name in the build's bin dir.
pub const GUEST_INIT: &str = "kvm-guest";

/// rkt's built-in `default` network: ptp on 172.16.28.0/24, masqueraded,
/// with a default route.
const DEFAULT_NET: &str = r#"{
    "cniVersion": "1.0.0",
    "name": "default",
    "type": "ptp",
    "ipMasq": true,
    "ipam": {
        "type": "host-local",
        "subnet": "172.16.28.0/24",
        "routes": [{ "dst": "0.0.0.0/0" }]
    }
}
"#;

/// rkt's built-in `default-restricted` network: ptp on 172.31.0.0/16,
/// reachable from the host only (no masquerade, no default route).
const DEFAULT_RESTRICTED_NET: &str = r#"{
    "cniVersion": "1.0.0",
    "name": "default-restricted",
    "type": "ptp",
    "ipMasq": false,
    "ipam": {
        "type": "host-local",
        "subnet": "172.31.0.0/16"
    }
}
"#;

/// rkt's built-in networks, in the stage1's `net.d`.
const BUILTIN_NETS: &[(&str, &str)] = &[
    ("etc/rkt/net.d/99-default.conf", DEFAULT_NET),
    (
        "etc/rkt/net.d/99-default-restricted.conf",
        DEFAULT_RESTRICTED_NET,
    ),
];

/// The project's CNI plugins a networked stage1 ships.
const OWN_PLUGINS: &[&str] = &["ptp", "bridge", "host-local", "loopback", "portmap"];

/// Every flavor `build-aci stage1` knows.
pub const STAGE1_FLAVORS: &[Stage1Flavor] = &[
    Stage1Flavor {
        name: "fly",
        image_name: "coreos.com/rkt/stage1-fly",
        entrypoints: &[
            (Entrypoint::Run, "/run", "fly-run"),
            (Entrypoint::Enter, "/enter", "fly-enter"),
            (Entrypoint::Gc, "/gc", "fly-gc"),
            (Entrypoint::Stop, "/stop", "fly-stop"),
        ],
        interface_version: 5,
        features: &[
            Feature::NetHost,
            Feature::Dns,
            Feature::HostsEntry,
            Feature::Volumes,
            Feature::Enter,
            Feature::Stop,
            Feature::IpcParent,
            Feature::Interactive,
            Feature::ReadonlyRootfs,
        ],
        files: &[],
        dirs: &[],
        cni_plugins: &[],
        guest: false,
    },
    Stage1Flavor {
        name: "ns",
        image_name: "coreos.com/rkt/stage1-ns",
        entrypoints: &[
            (Entrypoint::Run, "/init", "ns-run"),
            (Entrypoint::Enter, "/enter", "ns-enter"),
            (Entrypoint::Gc, "/gc", "ns-gc"),
            (Entrypoint::Stop, "/stop", "ns-stop"),
            (Entrypoint::NetCheck, "/net_check", "ns-net-check"),
            (Entrypoint::AppAdd, "/app_add", "ns-app-add"),
            (Entrypoint::AppStart, "/app_start", "ns-app-start"),
            (Entrypoint::AppStop, "/app_stop", "ns-app-stop"),
            (Entrypoint::AppRm, "/app_rm", "ns-app-rm"),
        ],
        interface_version: 6,
        features: &[
            Feature::NetHost,
            Feature::NetNone,
            Feature::NetContained,
            Feature::PortForward,
            Feature::MultiApp,
            Feature::Hostname,
            Feature::Dns,
            Feature::HostsEntry,
            Feature::Volumes,
            Feature::Interactive,
            Feature::IpcPrivate,
            Feature::IpcParent,
            Feature::Enter,
            Feature::Stop,
            Feature::ReadonlyRootfs,
            Feature::ResourceIsolators,
            Feature::Capabilities,
            Feature::Seccomp,
            Feature::NoNewPrivileges,
            Feature::OomScoreAdj,
            Feature::EventHandlers,
            Feature::Mutable,
            Feature::PrivateUsers,
            Feature::MetadataService,
        ],
        files: BUILTIN_NETS,
        dirs: &["proc", "dev", "sys", "var/log/journal"],
        cni_plugins: OWN_PLUGINS,
        guest: false,
    },
    Stage1Flavor {
        name: "kvm",
        image_name: "coreos.com/rkt/stage1-kvm",
        // Inside the VM the pod runs under the ns flavor's supervisor;
        // on the host, its gc and net/check (networks) and stop (SIGTERM
        // to `run`, which asks the guest to stop) serve as they are.
        entrypoints: &[
            (Entrypoint::Run, "/init", "kvm-run"),
            (Entrypoint::Gc, "/gc", "ns-gc"),
            (Entrypoint::Stop, "/stop", "ns-stop"),
            (Entrypoint::NetCheck, "/net_check", "ns-net-check"),
        ],
        interface_version: 6,
        features: &[
            Feature::NetNone,
            Feature::NetContained,
            Feature::PortForward,
            Feature::MultiApp,
            Feature::Hostname,
            Feature::Dns,
            Feature::HostsEntry,
            Feature::Volumes,
            Feature::IpcPrivate,
            Feature::Stop,
            Feature::ReadonlyRootfs,
            Feature::ResourceIsolators,
            Feature::Capabilities,
            Feature::Seccomp,
            Feature::NoNewPrivileges,
            Feature::OomScoreAdj,
            Feature::EventHandlers,
        ],
        files: BUILTIN_NETS,
        dirs: &["proc", "dev", "sys"],
        cni_plugins: OWN_PLUGINS,
        guest: true,
    },
];

impl Stage1Flavor {
    pub fn find(name: &str) -> Result<&'static Stage1Flavor, RecipeError> {
        STAGE1_FLAVORS
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| {
                let known: Vec<_> = STAGE1_FLAVORS.iter().map(|f| f.name).collect();
                RecipeError::UnknownFlavor(name.to_string(), known.join(", "))
            })
    }
}

/// Manifest with entrypoint, interface-version and features annotations and
/// no `app` section.
pub fn stage1_manifest(flavor: &Stage1Flavor, version: &str) -> Result<ImageManifest, RecipeError> {
    let mut m = image_manifest(flavor.image_name, &standard_labels(version))?;
    for (ep, path, _) in flavor.entrypoints {
        m.annotations.push(annotation(ep.annotation(), path)?);
    }
    m.annotations.push(annotation(
        INTERFACE_VERSION_ANNOTATION,
        &flavor.interface_version.to_string(),
    )?);
    m.annotations.push(annotation(
        FEATURES_ANNOTATION,
        &format_features(flavor.features),
    )?);
    Ok(m)
}

/// Copies each entrypoint binary from `bin_dir` to its path in `root`; a
/// VM flavor's kernel and initramfs are made from `guest_kernel` (what
/// scripts/guest-kernel.sh fetched).
pub fn populate_stage1_rootfs(
    root: &Path,
    flavor: &Stage1Flavor,
    bin_dir: &Path,
    guest_kernel: Option<&Path>,
) -> Result<(), RecipeError> {
    // A temporary staging dir is 0700; the image's / must not be.
    set_mode(root, 0o755)?;
    for (_, path, file) in flavor.entrypoints {
        install(root, path.trim_start_matches('/'), &bin_dir.join(file))?;
    }
    if !flavor.cni_plugins.is_empty() {
        mkdir(root, "usr/lib/rkt/plugins/net", 0o755)?;
    }
    for plugin in flavor.cni_plugins {
        install(
            root,
            &format!("usr/lib/rkt/plugins/net/{plugin}"),
            &bin_dir.join(plugin),
        )?;
    }
    for dir in flavor.dirs {
        mkdir(root, dir, 0o755)?;
    }
    for (path, content) in flavor.files {
        if let Some((dir, _)) = path.rsplit_once('/') {
            mkdir(root, dir, 0o755)?;
        }
        write(root, path, content.as_bytes(), 0o644)?;
    }
    if flavor.guest {
        let dir = guest_kernel.ok_or(RecipeError::NoGuestKernel(flavor.name))?;
        populate_guest(root, dir, &bin_dir.join(GUEST_INIT))?;
    }
    Ok(())
}

/// `kvm/vmlinux` and `kvm/initramfs.cpio`.
fn populate_guest(root: &Path, kernel_dir: &Path, init: &Path) -> Result<(), RecipeError> {
    mkdir(root, "kvm", 0o755)?;
    let vmlinux = guest::vmlinux_from_bzimage(&kernel_dir.join("vmlinuz"))?;
    write(root, "kvm/vmlinux", &vmlinux, 0o644)?;
    let modules = guest::resolve_modules(&kernel_dir.join("modules"), guest::GUEST_MODULES)?;
    let init = std::fs::read(init).map_err(super::io_err("reading", init))?;
    let cpio = guest::initramfs(&init, &modules)
        .map_err(super::io_err("writing the initramfs of", root))?;
    write(root, "kvm/initramfs.cpio", &cpio, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::stage1::{parse_features, InterfaceVersion};

    #[test]
    fn fly_manifest_declares_entrypoints_and_features() {
        let fly = Stage1Flavor::find("fly").unwrap();
        let m = stage1_manifest(fly, "0.1.0").unwrap();
        assert!(m.app.is_none());
        assert_eq!(m.annotation(Entrypoint::Run.annotation()), Some("/run"));
        assert_eq!(m.annotation(Entrypoint::Stop.annotation()), Some("/stop"));
        assert_eq!(
            InterfaceVersion::from_annotation(m.annotation(INTERFACE_VERSION_ANNOTATION)),
            Ok(InterfaceVersion(5))
        );
        let features = parse_features(m.annotation(FEATURES_ANNOTATION).unwrap());
        assert_eq!(features, fly.features);
        let ns = Stage1Flavor::find("ns").unwrap();
        let m = stage1_manifest(ns, "0.1.0").unwrap();
        assert_eq!(m.annotation(Entrypoint::Enter.annotation()), Some("/enter"));
        // rkt's name: the pod's `/run` stays free for what runtimes keep
        // there (journalctl -M looks for /run/log/journal).
        assert_eq!(m.annotation(Entrypoint::Run.annotation()), Some("/init"));
        assert_eq!(
            InterfaceVersion::from_annotation(m.annotation(INTERFACE_VERSION_ANNOTATION)),
            Ok(InterfaceVersion(6))
        );
        assert!(ns.features.contains(&Feature::MultiApp));
        // Contained networking with its built-in networks and plugins.
        assert!(ns.features.contains(&Feature::NetContained));
        assert!(ns.features.contains(&Feature::PortForward));
        assert!(ns.files.iter().any(|(p, c)| p.ends_with("99-default.conf")
            && c.contains("172.16.28.0/24")
            && c.contains("\"ipMasq\": true")));
        assert!(ns.cni_plugins.contains(&"ptp") && ns.cni_plugins.contains(&"host-local"));
        // At the rootfs' root: it finds the plugins beside itself.
        assert_eq!(
            m.annotation(Entrypoint::NetCheck.annotation()),
            Some("/net_check")
        );
        assert!(Stage1Flavor::find("nope")
            .unwrap_err()
            .to_string()
            .contains("fly"));
    }

    #[test]
    fn kvm_declares_no_host_network_and_needs_a_guest_kernel() {
        let kvm = Stage1Flavor::find("kvm").unwrap();
        let m = stage1_manifest(kvm, "0.1.0").unwrap();
        assert_eq!(m.annotation(Entrypoint::Run.annotation()), Some("/init"));
        assert_eq!(m.annotation(Entrypoint::Gc.annotation()), Some("/gc"));
        assert_eq!(
            m.annotation(Entrypoint::NetCheck.annotation()),
            Some("/net_check")
        );
        // No enter entrypoint: stage0 refuses `rkt enter` by the features.
        assert_eq!(m.annotation(Entrypoint::Enter.annotation()), None);
        let features = parse_features(m.annotation(FEATURES_ANNOTATION).unwrap());
        assert!(!features.contains(&Feature::NetHost));
        assert!(!features.contains(&Feature::Enter));
        assert!(features.contains(&Feature::NetContained));
        let dir = tempfile::tempdir().unwrap();
        let bins = dir.path().join("bin");
        std::fs::create_dir(&bins).unwrap();
        for (_, _, file) in kvm.entrypoints {
            std::fs::write(bins.join(file), b"#!").unwrap();
        }
        for plugin in kvm.cni_plugins {
            std::fs::write(bins.join(plugin), b"#!").unwrap();
        }
        let root = dir.path().join("rootfs");
        std::fs::create_dir(&root).unwrap();
        let err = populate_stage1_rootfs(&root, kvm, &bins, None).unwrap_err();
        assert!(err.to_string().contains("--guest-kernel"), "{err}");
    }
}
