//! Loading a model file with a [`Registry`]: every custom object is checked first (all missing
//! ones reported at once), then the engine builds the model with the registry as its resolver.

use crate::error::{Error, Result};
use crate::missing::{UsedObject, used_objects};
use crate::registry::Registry;
use std::path::Path;
use strata_format::model::ModelFile;
use strata_layers::{BuildCtx, Model};

/// How to load.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Resolve the compile config's loss and metrics too (Keras's `compile=True`, the default).
    /// With `false` they are not checked, like `load_model(..., compile=False)`.
    pub compile: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { compile: true }
    }
}

/// Opens a model file (`.keras`, `.h5`, a Keras 3 model directory) and builds it with the
/// registry's custom objects. Fails listing every unregistered custom object.
pub fn load_model(path: impl AsRef<Path>, registry: &Registry) -> Result<Model> {
    load_model_with(path, registry, LoadOptions::default())
}

/// [`load_model`] with [`LoadOptions`].
pub fn load_model_with(path: impl AsRef<Path>, registry: &Registry, opts: LoadOptions) -> Result<Model> {
    let file = ModelFile::open(path.as_ref())?;
    load_file(&file, registry, opts)
}

/// The custom objects an opened file uses (layers, objects in layer configs, and with
/// `opts.compile` the loss and metrics), whether registered or not.
pub fn used_by_file(file: &ModelFile, opts: LoadOptions) -> Vec<UsedObject> {
    match &file.config {
        Some(config) => used_objects(config, if opts.compile { file.training_config.as_ref() } else { None }),
        None => Vec::new(),
    }
}

/// Builds an opened file (for example `model.json` whose `weights` were taken from a
/// `model.weights.h5`) with the registry's custom objects.
pub fn load_file(file: &ModelFile, registry: &Registry, opts: LoadOptions) -> Result<Model> {
    let missing = registry.missing(&used_by_file(file, opts));
    if !missing.is_empty() {
        return Err(Error::Missing { file: file.path.display().to_string(), missing });
    }
    let config = file.config.as_ref().ok_or(strata_layers::Error::Missing { what: "model config" })?;
    let store = file.weights.as_ref().ok_or(strata_layers::Error::Missing { what: "weights" })?;
    let binding = strata_format::bind::bind(config, store);
    let ctx = BuildCtx {
        dialect: config.source,
        backend: file.backend.as_deref(),
        keras_version: file.keras_version.as_deref(),
    };
    Ok(Model::build_with_resolver(config, &binding, store, &ctx, Some(registry))?)
}
