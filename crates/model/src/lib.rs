//! Keras's `Model` API in Rust: define a model ([`Sequential`], built-in [`layers`] and
//! registered custom layers), `compile`, `fit`, `evaluate`, `predict`, and save/load `.keras` and
//! `.h5` files that Python Keras reads back with the same numbers.
//!
//! ```no_run
//! use strata_model::{FitOptions, Model, Sequential, layers::Dense};
//! use strata_registry::Registry;
//! use strata_tensor::Tensor;
//! use strata_train::optimizers::Adam;
//!
//! let registry = Registry::new();
//! let mut model = Sequential::new("seed").input(&[10]).add(Dense::new(32)).add(Dense::new(1)).build(&registry)?;
//! model.compile(Adam::default(), "mse", &["mae"])?;
//! let x = Tensor::zeros(&[100, 10])?;
//! let y = Tensor::zeros(&[100, 1])?;
//! let history = model.fit(&x, &y, FitOptions::new(2, 32))?;
//! model.save("my_model.keras")?;
//! let again = Model::load("my_model.keras", &registry)?;
//! # Ok::<(), strata_model::Error>(())
//! ```
#![warn(missing_docs)]

mod compile;
mod error;
mod fit;
mod model;
pub mod reference;
mod save;
mod sequential;
mod summary;

pub use compile::{LossArg, MetricArg};
pub use error::{Error, Result};
pub use fit::FitOptions;
pub use model::{LayerWeights, Model};
pub use sequential::{Functional, LayerDef, Node, Sequential, SharedLayer, layers};
pub use strata_registry::{LoadOptions, Registry};
pub use strata_train::{callbacks, history, progress};
