//! Errors of layer construction and execution.

use std::fmt;

/// A layer the engine has no implementation for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// Layer path (`inner/dense`).
    pub layer: String,
    /// Its class name.
    pub class: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "layer `{}` has class `{}`, which strata cannot run yet", self.layer, self.class)
    }
}

fn join(list: &[Unsupported]) -> String {
    list.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Everything that can fail while building or running layers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// One or more layers have classes without an implementation (all are listed).
    #[error("{} unsupported layer(s): {}; remove them or implement them in strata-layers", .0.len(), join(.0))]
    Unsupported(Vec<Unsupported>),
    /// A config value is missing or invalid.
    #[error("layer `{layer}`: config key `{key}` {problem}; fix the model config")]
    Config { layer: String, key: String, problem: String },
    /// The layer got a different number of weight tensors than its config implies.
    #[error(
        "layer `{layer}` expects {expected} weight tensor(s) but the file binds {got}; the weights do not match the config"
    )]
    WeightCount { layer: String, expected: usize, got: usize },
    /// A weight tensor has a dtype the engine cannot decode.
    #[error(
        "layer `{layer}`: weight `{tensor}` has dtype {dtype}, which strata cannot compute with; convert it to a float type"
    )]
    WeightDType { layer: String, tensor: String, dtype: String },
    /// Reading a weight tensor failed.
    #[error("layer `{layer}`: reading weight `{tensor}` failed: {source}")]
    Read {
        layer: String,
        tensor: String,
        #[source]
        source: Box<strata_format::Error>,
    },
    /// A tensor op failed inside a layer.
    #[error("layer `{layer}` ({class}) failed: {source}")]
    Tensor {
        layer: String,
        class: String,
        #[source]
        source: Box<strata_tensor::Error>,
    },
    /// A layer got the wrong number of inputs.
    #[error("layer `{layer}` ({class}) takes {expected} input(s) but got {got}; check the model graph")]
    Arity { layer: String, class: String, expected: String, got: usize },
    /// A call passes a tensor by a keyword the layer does not take.
    #[error(
        "layer `{layer}` ({class}) is called with a tensor for keyword `{keyword}`, which strata does not implement for this layer"
    )]
    Keyword { layer: String, class: String, keyword: String },
    /// The graph cannot be executed.
    #[error("model `{model}`: {problem}")]
    Graph { model: String, problem: String },
    /// The caller passed the wrong number of model inputs.
    #[error("model `{model}` takes {expected} input(s) but predict got {got}; pass one tensor per model input")]
    InputCount { model: String, expected: usize, got: usize },
    /// The file has no config or no weights.
    #[error("the model file has no {what}; strata needs both the config and the weights to run a model")]
    Missing { what: &'static str },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
