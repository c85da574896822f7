//! The error type of `strata-model`.

use std::path::PathBuf;

/// What went wrong defining, loading, training or saving a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the file failed (format, HDF5, zip, JSON).
    #[error(transparent)]
    Format(#[from] strata_format::Error),
    /// Building or running the layer graph failed.
    #[error(transparent)]
    Layers(#[from] strata_layers::Error),
    /// Custom objects: missing registrations, configs that do not fit the Rust types.
    #[error(transparent)]
    Registry(#[from] strata_registry::Error),
    /// Optimizer, loss, metric, callback or schedule problems.
    #[error(transparent)]
    Train(#[from] strata_train::Error),
    /// A tensor operation failed (shapes, tape).
    #[error(transparent)]
    Tensor(#[from] strata_tensor::Error),
    /// Writing progress output failed.
    #[error("writing progress output: {0}")]
    Io(#[from] std::io::Error),
    /// A call that cannot work as made; `help` says what to do instead.
    #[error("{what}\n  help: {help}")]
    Invalid {
        /// What was wrong.
        what: String,
        /// How to fix it.
        help: String,
    },
    /// Saving failed; the previous file (if any) is untouched.
    #[error("saving {path}: {problem}\n  help: {help}")]
    Save {
        /// Where the model was being saved.
        path: PathBuf,
        /// Why it failed.
        problem: String,
        /// How to fix it.
        help: String,
    },
}

impl Error {
    /// An [`Error::Invalid`].
    pub fn invalid(what: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Invalid { what: what.into(), help: help.into() }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
