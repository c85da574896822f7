//! Training building blocks that behave as Keras 3 does: optimizers, learning-rate schedules,
//! losses, metrics, initializers, regularizers and constraints, each with Keras's formulas,
//! defaults, names and config keys, so a model's `compile_config` and optimizer state
//! round-trip through `.keras` / `.weights.h5` files.
//!
//! Main types: [`optimizers::Optimizer`] (built with [`optimizers::Adam`], [`optimizers::SGD`], ...
//! or from a name/config), [`schedules::LearningRateSchedule`], [`losses::Loss`],
//! [`metrics::Metric`], [`initializers::Initializer`], [`regularizers::Regularizer`],
//! [`constraints::Constraint`]. The fit loop lives above this crate (it needs the layer engine).
//!
//! ```
//! use strata_tensor::Tensor;
//! use strata_train::losses::Loss;
//! use strata_train::optimizers::{Adam, Optimizer, Variable};
//!
//! let mut opt: Optimizer = Adam::default().learning_rate(1e-2).into();
//! let mut w = vec![Variable::new("dense/kernel", Tensor::from_vec(&[2], vec![0.5, -0.5])?)];
//! let mse = Loss::get("mse")?;
//! let y_true = Tensor::from_vec(&[1, 2], vec![0.0, 0.0])?;
//! for _ in 0..3 {
//!     let y_pred = w[0].value.reshape(&[1, 2])?;
//!     let (loss, grad) = mse.value_and_grad(&y_true, &y_pred, None)?;
//!     assert!(loss > 0.0);
//!     opt.apply(&[grad.reshape(&[2])?], &mut w)?;
//! }
//! assert_eq!(opt.iterations(), 3);
//! assert!(w[0].value.as_slice()[0] < 0.5);
//! # Ok::<(), strata_train::Error>(())
//! ```
#![warn(missing_docs)]

pub mod config;
pub mod constraints;
mod error;
pub mod initializers;
pub mod losses;
pub mod metrics;
pub mod optimizers;
mod reduce;
pub mod regularizers;
pub mod schedules;

pub use error::{Error, Result};
