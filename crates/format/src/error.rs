//! The crate's error type and the [`Location`] every error carries.
//!
//! Each module that parses bytes has its own error enum (`ArchiveError`, `JsonError`,
//! `ConfigError`, ...); [`Error`] wraps them, keeping the lower error as its `source`, and
//! adds *where*: the file, the zip member, the HDF5 path, the config path, the layer.

use std::fmt;
use std::path::PathBuf;

/// Where in a model file something is: each part is optional and filled in as the error climbs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The file on disk.
    pub file: Option<PathBuf>,
    /// The member inside a `.keras` archive (`config.json`, `model.weights.h5`).
    pub member: Option<String>,
    /// An HDF5 object path (`/model_weights/dense/dense/kernel:0`).
    pub hdf5_path: Option<String>,
    /// A path inside a JSON config (`config.layers[3].config.units`).
    pub config_path: Option<String>,
    /// A layer name (`dense_1`, or `outer/inner` inside nested models).
    pub layer: Option<String>,
}

impl Location {
    /// A location in a file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Location { file: Some(path.into()), ..Default::default() }
    }
    /// This location, inside archive member `m`.
    pub fn with_member(mut self, m: impl Into<String>) -> Self {
        self.member = Some(m.into());
        self
    }
    /// This location, at HDF5 path `p`.
    pub fn with_hdf5_path(mut self, p: impl Into<String>) -> Self {
        self.hdf5_path = Some(p.into());
        self
    }
    /// This location, at config path `p`.
    pub fn with_config_path(mut self, p: impl Into<String>) -> Self {
        self.config_path = Some(p.into());
        self
    }
    /// This location, at layer `l`.
    pub fn with_layer(mut self, l: impl Into<String>) -> Self {
        self.layer = Some(l.into());
        self
    }
    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        *self == Location::default()
    }
}

impl fmt::Display for Location {
    /// `model.keras, member config.json, layers[3].config.units, layer "dense_1"`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(p) = &self.file {
            parts.push(p.display().to_string());
        }
        if let Some(m) = &self.member {
            parts.push(format!("member {m}"));
        }
        if let Some(h) = &self.hdf5_path {
            parts.push(format!("HDF5 {h}"));
        }
        if let Some(c) = &self.config_path {
            parts.push(c.clone());
        }
        if let Some(l) = &self.layer {
            parts.push(format!("layer \"{l}\""));
        }
        if parts.is_empty() { f.write_str("<unknown location>") } else { f.write_str(&parts.join(", ")) }
    }
}

/// Everything that can go wrong reading or writing a Keras file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The OS refused a read or write.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "open").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a Keras model file of any kind strata reads.
    #[error("{path}: {why}; {help}")]
    NotAModel {
        /// The file.
        path: PathBuf,
        /// What the bytes are instead.
        why: String,
        /// What to do.
        help: String,
    },
    /// The bytes are not something strata reads (a Git LFS pointer, a pickle, a truncated file...).
    #[error("{source}")]
    Detect {
        /// What the bytes are, and what to do.
        #[source]
        source: crate::detect::DetectError,
    },
    /// A `.keras` archive problem.
    #[error("{location}: {source}")]
    Archive {
        /// Where.
        location: Location,
        /// What.
        #[source]
        source: crate::archive::ArchiveError,
    },
    /// An HDF5 problem.
    #[error("{location}: {source}")]
    Hdf5 {
        /// Where.
        location: Location,
        /// What.
        #[source]
        source: strata_hdf5::Error,
    },
    /// Malformed JSON.
    #[error("{location}: {source}")]
    Json {
        /// Where.
        location: Location,
        /// What.
        #[source]
        source: crate::json::JsonError,
    },
    /// JSON that is not a Keras config strata understands.
    #[error("{location}: {source}")]
    Config {
        /// Where.
        location: Location,
        /// What.
        #[source]
        source: crate::config::ConfigError,
    },
    /// A save that could not complete (the previous file is intact).
    #[error("{source}")]
    Save {
        /// What.
        #[source]
        source: crate::atomic::AtomicError,
    },
    /// Something is missing or inconsistent in a file's structure.
    #[error("{location}: {what}; {help}")]
    Invalid {
        /// Where.
        location: Location,
        /// What is wrong.
        what: String,
        /// What to do.
        help: String,
    },
    /// The file asks for something strata does not do (yet).
    #[error("{location}: {what} is not supported; {help}")]
    Unsupported {
        /// Where.
        location: Location,
        /// The feature.
        what: String,
        /// What to do.
        help: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
