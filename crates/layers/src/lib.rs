//! Keras layers for inference on `strata-tensor`, and a graph executor for Sequential and
//! Functional model configs read by `strata-format`.
//!
//! Layers are grouped in families (core in [`layers`], [`conv`], [`spatial`], [`recurrent`],
//! [`attention`]); [`legacy`] rewrites Keras 1/2 configs and weight layouts before a family builds
//! them. [`layers::build_layer`] is the one entry point.
//!
//! ```no_run
//! let model = strata_layers::Model::open("model.keras").unwrap();
//! # let x = strata_tensor::Tensor::zeros(&[1, 4]).unwrap();
//! let y = model.predict(&[x]).unwrap();
//! ```

pub mod activation;
pub mod attention;
pub mod cfg;
pub mod conv;
pub mod error;
mod grad;
pub mod layers;
pub mod legacy;
pub mod model;
pub mod ops;
pub mod recurrent;
pub mod spatial;

pub use activation::Activation;
pub use error::{Error, Result, Unsupported};
pub use layers::{
    BatchNormTraining, BuildCtx, Builtin, CallArgs, Kind, Layer, LayerResolver, MergeOp, StateUpdate, build_layer,
    is_supported, is_supported_in, seed_dropout, supported_classes, training_unsupported,
};
pub use model::{Model, WeightMap, unsupported_layers};
