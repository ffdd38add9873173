//! Features a stage1 image declares it can honour.
//!
//! rkt's fly silently ignored options it could not honour; ours declare what
//! they support in [`FEATURES_ANNOTATION`] (a comma-separated list of
//! [`Feature`] names) so stage0 can refuse the rest with a clear error. A
//! stage1 without the annotation (a third-party one) is assumed to honour
//! everything its interface version allows, as in rkt.

/// Manifest annotation listing the stage1's features.
pub const FEATURES_ANNOTATION: &str = "coreos.com/rkt/stage1/features";

macro_rules! features {
    ($($variant:ident => $name:literal: $doc:literal,)*) => {
        /// One capability of a stage1.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Feature {
            $(#[doc = $doc] $variant,)*
        }

        impl Feature {
            pub const ALL: &'static [Feature] = &[$(Feature::$variant,)*];

            pub fn name(self) -> &'static str {
                match self { $(Feature::$variant => $name,)* }
            }

            pub fn from_name(name: &str) -> Option<Feature> {
                match name { $($name => Some(Feature::$variant),)* _ => None }
            }

            /// What a user would call the option, for error messages.
            pub fn describe(self) -> &'static str {
                match self { $(Feature::$variant => $doc,)* }
            }
        }
    };
}

features! {
    NetHost => "net-host": "--net=host",
    NetNone => "net-none": "--net=none",
    NetContained => "net-contained": "contained networking (--net=default or named CNI networks)",
    PortForward => "port-forward": "--port forwarding",
    MultiApp => "multi-app": "more than one app per pod",
    Hostname => "hostname": "--hostname",
    Dns => "dns": "--dns, --dns-search, --dns-opt, --dns-domain",
    HostsEntry => "hosts-entry": "--hosts-entry",
    Volumes => "volumes": "volumes",
    ResourceIsolators => "resource-isolators": "resource isolators (--memory, --cpu, --cpu-shares)",
    OomScoreAdj => "oom-score-adj": "--oom-score-adj",
    Capabilities => "capabilities": "capability isolators (--caps-retain, --caps-remove)",
    Seccomp => "seccomp": "seccomp isolators (--seccomp)",
    NoNewPrivileges => "no-new-privileges": "the os/linux/no-new-privileges isolator",
    ReadonlyRootfs => "readonly-rootfs": "--readonly-rootfs",
    PrivateUsers => "private-users": "--private-users",
    Interactive => "interactive": "--interactive",
    IpcPrivate => "ipc-private": "--ipc=private",
    IpcParent => "ipc-parent": "--ipc=parent",
    MetadataService => "mds": "--mds-register",
    Enter => "enter": "rkt enter",
    Stop => "stop": "rkt stop",
    Mutable => "mutable": "mutable pods (rkt app sandbox/add/start/stop/rm)",
    EventHandlers => "event-handlers": "pre-start/post-stop event handlers",
}

/// Parses a features annotation value; unknown names are ignored (a newer
/// stage1 may know features this stage0 does not).
pub fn parse_features(value: &str) -> Vec<Feature> {
    value
        .split(',')
        .filter_map(|s| Feature::from_name(s.trim()))
        .collect()
}

/// Renders a features annotation value.
pub fn format_features(features: &[Feature]) -> String {
    features
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(",")
}
