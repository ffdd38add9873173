//! appc schema: image and pod manifests and the types they are made of.
//!
//! Field names follow the appc JSON; Go-compatibility quirks (case-insensitive
//! keys, defaults applied on decode, `null` vs `[]`) are handled here so that
//! callers see normalised values. Parse untrusted manifests with
//! [`ImageManifest::from_json`] / [`PodManifest::from_json`], which also
//! validate; plain serde decoding skips validation and key folding.

mod app;
mod error;
mod gojson;
mod image;
mod isolator;
mod labels;
mod pod;
pub mod quantity;
mod types;
mod validate;

pub use app::{App, EnvironmentVariable, EventHandler, MountPoint, Port, EVENT_HANDLER_NAMES};
pub use error::SchemaError;
pub use image::{Dependency, ImageManifest, IMAGE_MANIFEST_KIND};
pub use isolator::{
    validate_isolators, Isolator, IsolatorValue, APPARMOR_PROFILE, CAPABILITIES_REMOVE_SET,
    CAPABILITIES_RETAIN_SET, CPU_SHARES, CPU_SHARES_RANGE, KNOWN_ISOLATORS, NO_NEW_PRIVILEGES,
    OOM_SCORE_ADJ, OOM_SCORE_ADJ_RANGE, RESOURCE_BLOCK_BANDWIDTH, RESOURCE_BLOCK_IOPS,
    RESOURCE_CPU, RESOURCE_MEMORY, RESOURCE_NETWORK_BANDWIDTH, SECCOMP_REMOVE_SET,
    SECCOMP_RETAIN_SET, SELINUX_CONTEXT, UNIX_SYSCTL,
};
pub use labels::{
    host_os_arch, valid_os, valid_os_arch, validate_annotations, validate_labels, VALID_OS_ARCH,
};
pub use pod::{
    ExposedPort, Mount, PodManifest, RuntimeApp, RuntimeImage, Volume, VolumeKind,
    EMPTY_VOLUME_DEFAULT_MODE, POD_MANIFEST_KIND,
};
pub use quantity::{
    format_quantity_bytes, format_quantity_millis, parse_quantity_bytes, parse_quantity_millis,
    QuantityError,
};
pub use types::{AcIdentifier, AcName, Annotation, ImageId, Label};
pub use validate::{is_env_name, is_http_url, is_rfc3339, SemVer};

/// The appc version this implementation writes into manifests.
pub const AC_VERSION: &str = "0.8.11";

/// Largest manifest (image or pod) the `from_json` parsers accept. Real
/// manifests are a few KiB; this bounds what a hostile image can make us
/// allocate.
pub const MAX_MANIFEST_SIZE: usize = 1 << 20;
