//! The crate's one error type.

/// Everything that can go wrong in strata-train. Variants carry values, not preformatted text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name (string identifier or `class_name`) that Keras would not resolve either.
    #[error("unknown {kind} `{name}`; known {kind}s: {}", known.join(", "))]
    UnknownName {
        /// "optimizer", "loss", "metric", ...
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// Every name that resolves.
        known: Vec<&'static str>,
    },
    /// A config value that is missing, of the wrong type or out of range.
    #[error("{object}: config key `{key}` {problem}")]
    Config {
        /// The class being configured (`Adam`, `ExponentialDecay`, ...).
        object: String,
        /// The config key.
        key: String,
        /// What is wrong, and the fix.
        problem: String,
    },
    /// An option Keras has that strata does not implement yet (never silently ignored).
    #[error("{object}: option `{option}` is not supported by strata yet ({why})")]
    Unsupported {
        /// The class.
        object: String,
        /// The option.
        option: String,
        /// Why, and what to do instead.
        why: String,
    },
    /// Tensors whose shapes do not fit together.
    #[error("{what}: expected shape {expected:?}, found {found:?}")]
    Shape {
        /// What was being computed.
        what: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },
    /// The number of gradients, variables or stored optimizer variables does not match.
    #[error("{what}: expected {expected}, found {found}")]
    Count {
        /// What was counted.
        what: String,
        /// Expected count.
        expected: usize,
        /// Found count.
        found: usize,
    },
    /// An invalid argument value (out of range, non-finite...).
    #[error("{object}: {problem}")]
    Invalid {
        /// The class or function.
        object: String,
        /// What is wrong.
        problem: String,
    },
    /// A tensor kernel failed.
    #[error(transparent)]
    Tensor(#[from] strata_tensor::Error),
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(object: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Invalid { object: object.into(), problem: problem.into() }
    }
    pub(crate) fn shape(what: impl Into<String>, expected: &[usize], found: &[usize]) -> Error {
        Error::Shape { what: what.into(), expected: expected.to_vec(), found: found.to_vec() }
    }
}
