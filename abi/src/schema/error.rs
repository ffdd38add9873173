use thiserror::Error;

/// A manifest or a value inside one that breaks the appc spec.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SchemaError {
    #[error("invalid AC Identifier {0:?}: only a-z, 0-9 and -._~/ are allowed, starting and ending alphanumeric")]
    AcIdentifier(String),
    #[error(
        "invalid AC Name {0:?}: only a-z, 0-9 and single dashes are allowed, starting and ending alphanumeric (e.g. \"my-app\")"
    )]
    AcName(String),
    #[error("invalid image ID {0:?}: expected sha512-<hex>")]
    ImageId(String),
    #[error("{0}")]
    Invalid(String),
}
