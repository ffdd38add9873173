//! Entrypoint annotations and interface versions.

/// Annotation holding the stage1's interface version (missing = 1).
pub const INTERFACE_VERSION_ANNOTATION: &str = "coreos.com/rkt/stage1/interface-version";

/// The entrypoints a stage1 image may declare in its manifest annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entrypoint {
    Run,
    Enter,
    Gc,
    Stop,
    AppAdd,
    AppRm,
    AppStart,
    AppStop,
    Attach,
    /// This project's addition, optional like the app entrypoints: CNI
    /// CHECK of a running pod's networks (`rkt status --check-networks`).
    /// It takes gc's arguments ([`super::NetCheckArgs`]), prints one
    /// [`super::NetCheckOutcome`] line per network and exits non-zero with
    /// the failure on stderr.
    NetCheck,
}

impl Entrypoint {
    pub const ALL: [Entrypoint; 10] = [
        Entrypoint::Run,
        Entrypoint::Enter,
        Entrypoint::Gc,
        Entrypoint::Stop,
        Entrypoint::AppAdd,
        Entrypoint::AppRm,
        Entrypoint::AppStart,
        Entrypoint::AppStop,
        Entrypoint::Attach,
        Entrypoint::NetCheck,
    ];

    /// The manifest annotation whose value is the entrypoint's path in rootfs.
    pub fn annotation(self) -> &'static str {
        match self {
            Entrypoint::Run => "coreos.com/rkt/stage1/run",
            Entrypoint::Enter => "coreos.com/rkt/stage1/enter",
            Entrypoint::Gc => "coreos.com/rkt/stage1/gc",
            Entrypoint::Stop => "coreos.com/rkt/stage1/stop",
            Entrypoint::AppAdd => "coreos.com/rkt/stage1/app/add",
            Entrypoint::AppRm => "coreos.com/rkt/stage1/app/rm",
            Entrypoint::AppStart => "coreos.com/rkt/stage1/app/start",
            Entrypoint::AppStop => "coreos.com/rkt/stage1/app/stop",
            Entrypoint::Attach => "coreos.com/rkt/stage1/attach",
            Entrypoint::NetCheck => "coreos.com/rkt/stage1/net/check",
        }
    }
}

/// A stage1 interface version; each adds arguments (see [`InterfaceVersion::supports`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct InterfaceVersion(pub u32);

impl InterfaceVersion {
    /// The newest version this implementation speaks.
    pub const CURRENT: InterfaceVersion = InterfaceVersion(6);

    /// Parses the annotation value; a missing annotation means version 1.
    pub fn from_annotation(value: Option<&str>) -> Result<Self, String> {
        match value {
            None => Ok(InterfaceVersion(1)),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .map(InterfaceVersion)
                .ok_or_else(|| format!("invalid stage1 interface version {v:?}")),
        }
    }

    /// `--hostname` (v2).
    pub fn supports_hostname(self) -> bool {
        self.0 >= 2
    }
    /// `--disable-capabilities-restriction`, `--disable-paths`, `--disable-seccomp` (v3).
    pub fn supports_insecure_options(self) -> bool {
        self.0 >= 3
    }
    /// `--dns-conf-mode` (v4).
    pub fn supports_dns_conf_mode(self) -> bool {
        self.0 >= 4
    }
    /// gc `--local-config`, `--mutable`, app entrypoints (v5).
    pub fn supports_gc_local_config(self) -> bool {
        self.0 >= 5
    }
    /// `--mutable` (v5).
    pub fn supports_mutable(self) -> bool {
        self.0 >= 5
    }
    /// `--ipc` (v6).
    pub fn supports_ipc(self) -> bool {
        self.0 >= 6
    }
}
