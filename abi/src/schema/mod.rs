//! appc schema: image and pod manifests and the types they are made of.
//!
//! Field names follow the appc JSON; Go-compatibility quirks (case-insensitive
//! keys, defaults applied on decode, `null` vs `[]`) are handled here so that
//! callers see normalised values.

mod app;
mod error;
mod image;
mod isolator;
mod pod;
mod types;

pub use app::{App, EnvironmentVariable, EventHandler, MountPoint, Port};
pub use error::SchemaError;
pub use image::{Dependency, ImageManifest};
pub use isolator::Isolator;
pub use pod::{ExposedPort, Mount, PodManifest, RuntimeApp, RuntimeImage, Volume, VolumeKind};
pub use types::{AcIdentifier, AcName, Annotation, ImageId, Label};

/// The appc version this implementation writes into manifests.
pub const AC_VERSION: &str = "0.8.11";
