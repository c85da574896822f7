//! [`Model`]: a Keras model that owns its weights, so it can be trained and saved.
//!
//! The layer engine (`strata-layers`) builds layers from a config and a list of tensors per
//! layer. A `Model` keeps those tensors ([`LayerWeights`]) next to the config and rebuilds the
//! engine around them: after each optimizer step with the new values, and for each training step
//! around tape-tracked copies, so gradients flow through every transform a layer applies to its
//! weights while building (kernel flips, gate splits) without each layer knowing about training.

use std::collections::HashMap;
use std::path::Path;

use strata_format::config::{ConfigDialect, ModelConfig};
use strata_format::json::Json;
use strata_format::model::ModelFile;
use strata_layers::BuildCtx;
use strata_registry::Registry;
use strata_tensor::{Tape, Tensor};

use crate::compile::Compiled;
use crate::error::{Error, Result};

/// One layer's variables, in Keras order (`layer.weights`: trainable first, then
/// non-trainable, each in creation order).
#[derive(Clone, Debug)]
pub struct LayerWeights {
    /// The layer's path in the model (`dense`, or `outer/inner` inside a nested model).
    pub path: String,
    /// The Keras class name.
    pub class_name: String,
    /// Variable names (`kernel`, `bias`, `moving_mean`...; a custom layer's `add_weight` names).
    pub names: Vec<String>,
    /// Current values.
    pub values: Vec<Tensor>,
    /// Whether training updates each variable.
    pub trainable: Vec<bool>,
}

impl LayerWeights {
    /// `path/name` of variable `i`: Keras 3's `variable.path`, which names optimizer slots.
    pub fn variable_path(&self, i: usize) -> String {
        format!("{}/{}", self.path, self.names.get(i).map(String::as_str).unwrap_or("variable"))
    }
}

/// A Keras model: config, weights, custom objects and (after [`Model::compile`]) its training
/// setup. Load one with [`Model::load`], or define one with [`crate::Sequential`].
pub struct Model {
    /// `config.json` as Keras 3 writes it (without `compile_config`).
    pub(crate) config_json: Json,
    pub(crate) config: ModelConfig,
    pub(crate) backend: Option<String>,
    pub(crate) keras_version: Option<String>,
    pub(crate) registry: Registry,
    pub(crate) layers: Vec<LayerWeights>,
    pub(crate) engine: strata_layers::Model,
    pub(crate) compiled: Option<Compiled>,
    /// Optimizer variables read from the file, applied when the model is compiled from it.
    pub(crate) pending_optimizer: Option<Vec<Tensor>>,
    /// The file's compile config, if any.
    pub(crate) file_compile_config: Option<Json>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.config.name)
            .field("layers_with_weights", &self.layers.len())
            .field("params", &self.count_params())
            .field("compiled", &self.compiled.is_some())
            .finish()
    }
}

/// Which of a built-in layer's `n` stored variables are trainable, in Keras order.
fn builtin_trainable(class: &str, n: usize, layer_trainable: bool) -> Vec<bool> {
    if !layer_trainable {
        return vec![false; n];
    }
    let tail = strata_format::bind::non_trainable_tail(class, n);
    (0..n).map(|i| i + tail < n).collect()
}

/// Keras's variable names for a built-in layer's `n` variables (falls back to `variable_i`).
pub(crate) fn builtin_names(class: &str, n: usize, config: &Json) -> Vec<String> {
    let flag = |k: &str| config.get(k).and_then(Json::as_bool).unwrap_or(true);
    let names: Vec<&str> = match class {
        "Dense" | "EinsumDense" | "Conv1D" | "Conv2D" | "Conv3D" | "Conv1DTranspose" | "Conv2DTranspose"
        | "Conv3DTranspose" => vec!["kernel", "bias"],
        "DepthwiseConv1D" | "DepthwiseConv2D" => vec!["kernel", "bias"],
        "SeparableConv1D" | "SeparableConv2D" => vec!["depthwise_kernel", "pointwise_kernel", "bias"],
        "BatchNormalization" => {
            let mut v = Vec::new();
            if flag("scale") {
                v.push("gamma");
            }
            if flag("center") {
                v.push("beta");
            }
            v.extend(["moving_mean", "moving_variance"]);
            v
        }
        "LayerNormalization" | "GroupNormalization" => {
            let mut v = Vec::new();
            if flag("scale") {
                v.push("gamma");
            }
            if flag("center") {
                v.push("beta");
            }
            v
        }
        "Embedding" => vec!["embeddings"],
        "PReLU" => vec!["alpha"],
        "SimpleRNN" | "LSTM" | "GRU" => vec!["kernel", "recurrent_kernel", "bias"],
        _ => Vec::new(),
    };
    if names.len() >= n && names.len() <= n + 1 {
        names.iter().take(n).map(|s| s.to_string()).collect()
    } else {
        (0..n).map(|i| format!("variable_{i}")).collect()
    }
}

impl Model {
    /// Opens a model file (`.keras`, legacy `.h5`, or a `to_json()` file next to its weights)
    /// with the custom objects of `registry`. Every missing custom object is reported at once,
    /// with where it is used and how to register it. The file's compile config and optimizer
    /// state are kept: [`Model::compile_from_file`] (or the first `fit`) resumes from them.
    pub fn load(path: impl AsRef<Path>, registry: &Registry) -> Result<Model> {
        let file = ModelFile::open(path.as_ref())?;
        Model::from_file(&file, registry)
    }

    /// [`Model::load`] with options: `LoadOptions { compile: false }` ignores the compile config
    /// (loss, metrics, optimizer state) like Keras's `load_model(..., compile=False)`, so a
    /// missing custom loss does not stop the model from loading.
    pub fn load_with(path: impl AsRef<Path>, registry: &Registry, opts: strata_registry::LoadOptions) -> Result<Model> {
        let file = ModelFile::open(path.as_ref())?;
        Model::from_file_with(&file, registry, opts)
    }

    /// [`Model::load`] for an opened file.
    pub fn from_file(file: &ModelFile, registry: &Registry) -> Result<Model> {
        Model::from_file_with(file, registry, strata_registry::LoadOptions { compile: true })
    }

    /// [`Model::load_with`] for an opened file.
    pub fn from_file_with(file: &ModelFile, registry: &Registry, opts: strata_registry::LoadOptions) -> Result<Model> {
        let used = strata_registry::used_by_file(file, opts);
        let missing = registry.missing(&used);
        if !missing.is_empty() {
            return Err(strata_registry::Error::Missing { file: file.path.display().to_string(), missing }.into());
        }
        let config = file.config.clone().ok_or_else(|| {
            Error::invalid(
                format!("`{}` has no model config", file.path.display()),
                "open the full model file (.keras or .h5 from model.save), not a weights-only file",
            )
        })?;
        let store = file.weights.as_ref().ok_or_else(|| {
            Error::invalid(format!("`{}` has no weights", file.path.display()), "give the model's weights file")
        })?;
        let binding = strata_format::bind::bind(&config, store);
        if !binding.problems.is_empty() {
            return Err(Error::invalid(
                format!(
                    "the weights of `{}` do not fit its architecture: {}",
                    file.path.display(),
                    binding.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
                ),
                "run `strata doctor` on the file",
            ));
        }
        // every weight is read once: into the model's variables, which the engine is then built from
        let mut layers = Vec::new();
        for b in &binding.layers {
            if b.tensors.is_empty() {
                continue;
            }
            let values = b
                .tensors
                .iter()
                .map(|info| strata_layers::model::load_tensor(&b.path, info, store))
                .collect::<strata_layers::Result<Vec<_>>>()?;
            let n = values.len();
            let (names, trainable) = match registry.layer_for(b.layer) {
                Some(entry) => custom_names(entry, b.layer, n),
                None => (
                    builtin_names(&b.layer.class_name, n, &b.layer.config),
                    builtin_trainable(&b.layer.class_name, n, b.layer.trainable()),
                ),
            };
            layers.push(LayerWeights {
                path: b.path.clone(),
                class_name: b.layer.class_name.clone(),
                names,
                values,
                trainable,
            });
        }
        let engine =
            build_engine(&config, file.backend.as_deref(), file.keras_version.as_deref(), registry, &layers, None)?;
        let pending_optimizer = if store.optimizer.is_empty() {
            None
        } else {
            let vars = store
                .optimizer
                .iter()
                .map(|info| strata_layers::model::load_tensor("optimizer", info, store))
                .collect::<strata_layers::Result<Vec<_>>>()?;
            Some(vars)
        };
        let config_json = keras3_envelope(file, &config);
        Ok(Model {
            config_json,
            config,
            backend: file.backend.clone(),
            keras_version: file.keras_version.clone(),
            registry: registry.clone(),
            layers,
            engine,
            compiled: None,
            pending_optimizer: if opts.compile { pending_optimizer } else { None },
            file_compile_config: if opts.compile { file.training_config.clone() } else { None },
        })
    }

    /// A model from a Keras 3 `config.json` object and its layers' weights (what
    /// [`crate::Sequential`] produces).
    pub(crate) fn from_parts(config_json: Json, layers: Vec<LayerWeights>, registry: &Registry) -> Result<Model> {
        let config = ModelConfig::parse(&config_json).map_err(|e| {
            Error::invalid(format!("the model config strata built does not parse: {e}"), "please report this")
        })?;
        let engine = build_engine(&config, None, None, registry, &layers, None)?;
        Ok(Model {
            config_json,
            config,
            backend: None,
            keras_version: None,
            registry: registry.clone(),
            layers,
            engine,
            compiled: None,
            pending_optimizer: None,
            file_compile_config: None,
        })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The parsed config.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// `config.json` as Keras 3 writes it, with `compile_config` when compiled.
    pub fn to_config_json(&self) -> Json {
        let mut j = self.config_json.clone();
        if let Some(obj) = j.as_object_mut() {
            let cc = match &self.compiled {
                Some(c) => Some(c.compile_config()),
                None => None,
            };
            if let Some(cc) = cc {
                obj.insert("compile_config".to_string(), cc);
            }
        }
        j
    }

    /// Layers with variables, in model order.
    pub fn layers(&self) -> &[LayerWeights] {
        &self.layers
    }

    /// The registry the model was loaded or defined with.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every variable in Keras order (`model.get_weights()`).
    pub fn get_weights(&self) -> Vec<Tensor> {
        self.layers.iter().flat_map(|l| l.values.iter().cloned()).collect()
    }

    /// Replaces every variable (`model.set_weights`), checking count and shapes.
    pub fn set_weights(&mut self, weights: &[Tensor]) -> Result<()> {
        let total: usize = self.layers.iter().map(|l| l.values.len()).sum();
        if weights.len() != total {
            return Err(Error::invalid(
                format!("set_weights got {} tensors; the model has {total} variables", weights.len()),
                "pass the tensors get_weights returns, in the same order",
            ));
        }
        let mut it = weights.iter();
        for l in &mut self.layers {
            for (i, v) in l.values.iter_mut().enumerate() {
                let Some(new) = it.next() else { break };
                if new.shape() != v.shape() {
                    return Err(Error::invalid(
                        format!(
                            "set_weights: `{}` has shape {:?}, the new value {:?}",
                            l.names.get(i).map(|n| format!("{}/{n}", l.path)).unwrap_or_default(),
                            v.shape(),
                            new.shape()
                        ),
                        "pass tensors of the shapes get_weights returns",
                    ));
                }
                *v = new.detach();
            }
        }
        self.rebuild()
    }

    /// Number of scalars in all variables.
    pub fn count_params(&self) -> usize {
        self.layers.iter().flat_map(|l| l.values.iter()).map(Tensor::len).sum()
    }

    /// Runs inference (`model.predict` on one batch): one tensor per model input, one per output.
    pub fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(self.engine.predict(inputs)?)
    }

    /// `model.predict(x, batch_size)`: runs chunks of `batch_size` rows (in parallel) and
    /// concatenates the outputs, so large inputs do not need one huge batch.
    pub fn predict_batched(&self, inputs: &[Tensor], batch_size: usize) -> Result<Vec<Tensor>> {
        Ok(self.engine.predict_batched(inputs, batch_size)?)
    }

    /// [`Model::predict`] for a single-input, single-output model.
    pub fn predict1(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = self.predict(std::slice::from_ref(x))?;
        if out.len() != 1 {
            return Err(Error::invalid(
                format!("model `{}` has {} outputs", self.name(), out.len()),
                "use predict, which returns one tensor per output",
            ));
        }
        Ok(out.remove(0))
    }

    /// Rebuilds the engine around the current weights.
    pub(crate) fn rebuild(&mut self) -> Result<()> {
        self.engine = build_engine(
            &self.config,
            self.backend.as_deref(),
            self.keras_version.as_deref(),
            &self.registry,
            &self.layers,
            None,
        )?;
        Ok(())
    }

    /// An engine whose trainable variables are watched by `tape`; returns it with the watched
    /// tensors (`[layer][variable]`, `None` for non-trainable ones).
    pub(crate) fn tracked_engine(&self, tape: &Tape) -> Result<(strata_layers::Model, Vec<Vec<Option<Tensor>>>)> {
        let watched: Vec<Vec<Option<Tensor>>> = self
            .layers
            .iter()
            .map(|l| l.values.iter().zip(&l.trainable).map(|(v, &t)| t.then(|| tape.watch(v))).collect())
            .collect();
        let engine = build_engine(
            &self.config,
            self.backend.as_deref(),
            self.keras_version.as_deref(),
            &self.registry,
            &self.layers,
            Some(&watched),
        )?;
        Ok((engine, watched))
    }

    /// The dialect of the config.
    pub fn dialect(&self) -> ConfigDialect {
        self.config.source
    }
}

fn custom_names(
    entry: &strata_registry::LayerEntry,
    layer: &strata_format::config::LayerConfig,
    n: usize,
) -> (Vec<String>, Vec<bool>) {
    let shapes =
        layer.build_config.as_ref().and_then(|b| b.get("input_shape")).and_then(shapes_from_json).unwrap_or_default();
    match entry.weight_specs(layer, &shapes) {
        Ok(b) if b.specs().len() == n => {
            let order = b.keras_order();
            let specs = b.specs();
            let trainable_layer = layer.trainable();
            (
                order.iter().map(|&i| specs[i].name.clone()).collect(),
                order.iter().map(|&i| specs[i].trainable && trainable_layer).collect(),
            )
        }
        _ => ((0..n).map(|i| format!("variable_{i}")).collect(), vec![layer.trainable(); n]),
    }
}

/// Keras's `build_config.input_shape`: one shape (or the first of a list).
pub(crate) fn shapes_from_json(j: &Json) -> Option<Vec<strata_registry::Shape>> {
    let one = |j: &Json| -> Option<strata_registry::Shape> {
        j.as_array()?.iter().map(|d| if d.is_null() { Some(None) } else { d.as_usize().map(Some) }).collect()
    };
    let arr = j.as_array()?;
    if arr.iter().all(|d| d.is_null() || d.as_number().is_some()) {
        return Some(vec![one(j)?]);
    }
    arr.iter().map(one).collect()
}

pub(crate) fn build_engine(
    config: &ModelConfig,
    backend: Option<&str>,
    keras_version: Option<&str>,
    registry: &Registry,
    layers: &[LayerWeights],
    tracked: Option<&[Vec<Option<Tensor>>]>,
) -> Result<strata_layers::Model> {
    let by_path: HashMap<&str, usize> = layers.iter().enumerate().map(|(i, l)| (l.path.as_str(), i)).collect();
    let ctx = BuildCtx { dialect: config.source, backend, keras_version };
    let source = |path: &str| -> strata_layers::Result<Vec<Tensor>> {
        let Some(&i) = by_path.get(path) else { return Ok(Vec::new()) };
        let l = &layers[i];
        Ok(match tracked.and_then(|t| t.get(i)) {
            Some(w) => l.values.iter().zip(w).map(|(v, t)| t.clone().unwrap_or_else(|| v.clone())).collect(),
            None => l.values.clone(),
        })
    };
    Ok(strata_layers::Model::build_from_weights(
        config,
        &ctx,
        Some(registry as &dyn strata_layers::LayerResolver),
        &source,
    )?)
}

/// The Keras 3 `config.json` object for a file's config (its own for a `.keras`; the legacy
/// config in the Keras 3 envelope otherwise), without `compile_config`.
fn keras3_envelope(file: &ModelFile, config: &ModelConfig) -> Json {
    let mut j = match &file.config_json {
        Some(j) if matches!(config.source, ConfigDialect::Keras3) => j.clone(),
        Some(j) => {
            let mut inner = j.get("config").cloned().unwrap_or(Json::Null);
            if inner.as_array().is_some() {
                let name = if config.name.is_empty() { "sequential".to_string() } else { config.name.clone() };
                inner = Json::object([("name", Json::from(name)), ("layers", inner)]);
            }
            strata_format::convert::upgrade_for_keras3(&mut inner, config);
            let (module, class, registered) = match config.kind {
                strata_format::config::ModelKind::Sequential => ("keras", "Sequential", Json::Null),
                _ => ("keras.src.models.functional", "Functional", Json::from("Functional")),
            };
            Json::object([
                ("module", Json::from(module)),
                ("class_name", Json::from(class)),
                ("config", inner),
                ("registered_name", registered),
            ])
        }
        None => Json::Null,
    };
    if let Some(obj) = j.as_object_mut() {
        obj.remove("compile_config");
    }
    j
}
