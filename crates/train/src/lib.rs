//! Training building blocks that behave as Keras 3 does: optimizers, learning-rate schedules,
//! losses, metrics, initializers, regularizers and constraints, each with Keras's formulas,
//! defaults, names and config keys, so a model's `compile_config` and optimizer state
//! round-trip through `.keras` / `.weights.h5` files; and the callbacks, `History` and progress bar
//! that the fit loop drives, with Keras's decisions and printed text.
//!
//! Main types: [`optimizers::Optimizer`] (built with [`optimizers::Adam`], [`optimizers::SGD`], ...
//! or from a name/config), [`schedules::LearningRateSchedule`], [`losses::Loss`],
//! [`metrics::Metric`], [`initializers::Initializer`], [`regularizers::Regularizer`],
//! [`constraints::Constraint`], [`callbacks::Callback`] ([`callbacks::EarlyStopping`],
//! [`callbacks::ModelCheckpoint`], [`callbacks::ReduceLROnPlateau`], [`callbacks::CSVLogger`],
//! [`callbacks::TerminateOnNaN`], [`callbacks::LearningRateScheduler`],
//! [`callbacks::LambdaCallback`], [`callbacks::CallbackList`]), [`history::History`] and
//! [`progress::ProgbarLogger`]. The fit loop lives above this crate (it needs the layer engine)
//! and implements [`callbacks::TrainContext`] for the callbacks.
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
//!
//! Callbacks see the model only through [`callbacks::TrainContext`]:
//!
//! ```
//! use strata_train::callbacks::{Callback, EarlyStopping, Logs, TrainContext};
//! # use std::{any::Any, path::Path};
//! # struct Model { stop: bool, lr: f32 }
//! # impl TrainContext for Model {
//! #     fn stop_training(&mut self) { self.stop = true }
//! #     fn learning_rate(&self) -> f64 { self.lr as f64 }
//! #     fn set_learning_rate(&mut self, lr: f64) -> strata_train::Result<()> { self.lr = lr as f32; Ok(()) }
//! #     fn save_model(&mut self, _: &Path) -> strata_train::Result<()> { Ok(()) }
//! #     fn save_weights(&mut self, _: &Path) -> strata_train::Result<()> { Ok(()) }
//! #     fn snapshot_weights(&self) -> Box<dyn Any + Send> { Box::new(()) }
//! #     fn restore_weights(&mut self, _: &(dyn Any + Send)) -> strata_train::Result<()> { Ok(()) }
//! # }
//! let mut model = Model { stop: false, lr: 0.01 };
//! let mut es = EarlyStopping::new().patience(1);
//! es.on_train_begin(&mut model)?;
//! for (epoch, val_loss) in [0.9, 0.8, 0.85, 0.86].into_iter().enumerate() {
//!     let mut logs: Logs = [("loss", 1.0), ("val_loss", val_loss)].into_iter().collect();
//!     es.on_epoch_end(epoch, &mut logs, &mut model)?;
//!     if model.stop {
//!         break;
//!     }
//! }
//! assert_eq!(es.stopped_epoch(), 2);
//! # Ok::<(), strata_train::Error>(())
//! ```
#![warn(missing_docs)]

pub mod callbacks;
pub mod config;
pub mod constraints;
mod error;
pub mod history;
pub mod initializers;
pub mod losses;
pub mod metrics;
pub mod optimizers;
pub mod progress;
mod pyformat;
mod reduce;
pub mod regularizers;
pub mod schedules;

pub use error::{Error, Result};
