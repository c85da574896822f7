//! Keras file formats, read and written without Python.
//!
//! Main types: [`model::ModelFile`] (any model file, opened by what its bytes are),
//! [`config::ModelConfig`] (Keras 1-3 configs in one schema), [`weights::WeightStore`]
//! (stored tensors bound to owners), [`inspect::Report`] (what `strata inspect` prints).
//!
//! ```no_run
//! let mf = strata_format::model::ModelFile::open("model.keras")?;
//! let report = strata_format::inspect::Report::new(&mf);
//! println!("{}", report.to_text());
//! # Ok::<(), strata_format::Error>(())
//! ```
//!
//! Nothing in a file is ever executed: Lambda layers are reported, never decoded into code.

pub mod archive;
pub mod atomic;
pub mod bind;
pub mod builtin;
pub mod config;
pub mod convert;
pub mod detect;
pub mod error;
pub mod inspect;
pub mod json;
pub mod limits;
pub mod model;
pub mod naming;
pub mod npy;
pub mod save;
pub mod weights;

pub use error::{Error, Location, Result};
