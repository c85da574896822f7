//! Saving (placeholder until strata-format's save_model lands).
use crate::error::{Error, Result};
use crate::model::Model;
use std::path::Path;

impl Model {
    /// Saves the model (`model.save(path)`): `.keras` or legacy `.h5`, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        Err(Error::Save { path: path.as_ref().to_path_buf(), problem: "not yet".into(), help: String::new() })
    }
    /// Saves the weights (`model.save_weights(path)`, `.weights.h5`).
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        Err(Error::Save { path: path.as_ref().to_path_buf(), problem: "not yet".into(), help: String::new() })
    }
}
