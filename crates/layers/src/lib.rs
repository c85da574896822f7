//! Keras layers for inference on `strata-tensor`, and a graph executor for Sequential and
//! Functional model configs read by `strata-format`.
//!
//! ```no_run
//! let model = strata_layers::Model::open("model.keras").unwrap();
//! # let x = strata_tensor::Tensor::zeros(&[1, 4]).unwrap();
//! let y = model.predict(&[x]).unwrap();
//! ```

pub mod activation;
pub mod error;
pub mod layers;
pub mod model;

pub use activation::Activation;
pub use error::{Error, Result, Unsupported};
pub use layers::{Builtin, Kind, Layer, MergeOp};
pub use model::{Model, unsupported_layers};
