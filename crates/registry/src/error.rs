//! Errors of the registry: missing custom objects (all at once), bad configs, and the engine's.

use crate::missing::MissingObject;

/// Everything that can fail while registering, building or loading custom objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model uses custom objects that are not registered; every one is listed.
    #[error("{}", crate::missing::render(.file, .missing))]
    Missing {
        /// The file being loaded (for the message).
        file: String,
        /// Every missing object, in the order the model uses them.
        missing: Vec<MissingObject>,
    },
    /// A custom layer's config does not deserialize into its Rust struct.
    #[error(
        "layer `{layer}` ({registered}): its config does not fit the Rust type `{rust_type}`: {problem}; make the struct's fields match the config keys Keras wrote"
    )]
    Config { layer: String, registered: String, rust_type: String, problem: String },
    /// A custom layer's stored weights do not match what its `build` created.
    #[error("layer `{layer}` ({registered}): {problem}")]
    Weights { layer: String, registered: String, problem: String },
    /// A custom layer's own code reported a problem.
    #[error("{0}")]
    Layer(String),
    /// A tensor op failed.
    #[error(transparent)]
    Tensor(#[from] strata_tensor::Error),
    /// Reading the file failed.
    #[error(transparent)]
    Format(Box<strata_format::Error>),
    /// Building or running the model failed.
    #[error(transparent)]
    Engine(Box<strata_layers::Error>),
}

impl From<strata_format::Error> for Error {
    fn from(e: strata_format::Error) -> Error {
        Error::Format(Box::new(e))
    }
}

impl From<strata_layers::Error> for Error {
    fn from(e: strata_layers::Error) -> Error {
        Error::Engine(Box::new(e))
    }
}

impl Error {
    /// An error from a custom layer's own code (`build`, `call`, `compute_output_shape`).
    pub fn layer(message: impl Into<String>) -> Error {
        Error::Layer(message.into())
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
