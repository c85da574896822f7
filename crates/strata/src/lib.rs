//! strata: Keras models in Rust.
pub use strata_format as format;
pub use strata_hdf5 as hdf5;
