//! The one error type of the core.

use thiserror::Error;

/// Everything the core can reject.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// A FeatureSpec document is malformed. `field` is the path of the field at fault
    /// (`"landmarks"`, `"normalize.kind"`, ...) or `None` for the whole document (not JSON,
    /// not an object, an unknown preset). The message is one line that starts with the
    /// exact location (`landmarks[3]: ...`) and says what was expected and what was found.
    #[error("{message}")]
    Spec {
        /// The field path at fault, if any.
        field: Option<String>,
        /// The one-line message.
        message: String,
    },
    /// An input array has the wrong length / shape.
    #[error("{0}")]
    Shape(String),
    /// A stream decision setting is out of range (`stride` 0, a threshold outside [0, 1],
    /// ...); the message names the setting, what was expected and what was given.
    #[error("{0}")]
    Setting(String),
    /// A model (or its engine) produced output that cannot be used.
    #[error("{0}")]
    Model(String),
    /// Memory for an output or working buffer could not be had: its size overflows, is
    /// over [`crate::alloc::limit`], or the allocator refused it.
    #[error("{0}")]
    Alloc(String),
    /// A bug in signrt (an invariant that should always hold did not).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A spec error about `field`.
    pub fn spec(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Spec {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A spec error about the whole document.
    pub fn spec_doc(message: impl Into<String>) -> Self {
        Error::Spec {
            field: None,
            message: message.into(),
        }
    }
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;
