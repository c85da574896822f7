//! Keras 1, 2 and 3 model configs parsed into one typed schema.
//!
//! Every Keras version describes a model as JSON: `config.json` inside a `.keras` archive, the
//! `model_config` (and `training_config`) attribute of a legacy `.h5`, and `model.to_json()`. The
//! shapes differ by version; this module reads all of them into [`ModelConfig`] and writes back JSON
//! equal to what it read, keeping every key it does not model (each layer keeps its `raw` entry and
//! [`ModelConfig::to_json`] patches only the keys the typed fields own).
//!
//! What is mirrored from where:
//! * the Keras 3 object envelope (`module`, `class_name`, `config`, `registered_name`, `build_config`,
//!   `compile_config`, `shared_object_id`): `keras/src/saving/serialization_lib.py`
//!   (`serialize_keras_object`);
//! * Keras 3 functional graphs: `keras/src/models/functional.py` (`get_config`, `serialize_node`,
//!   `functional_from_config`, `deserialize_node`): `{"args": [...], "kwargs": {...}}` nodes holding
//!   `__keras_tensor__` markers, `input_layers`/`output_layers` as one `[name, node, tensor]` triple or
//!   any nesting of lists/dicts of triples; see [`keras3`];
//! * Keras 1/2 and tf-keras graphs: `tf_keras/engine/node.py` (`Node.serialize`),
//!   `tf_keras/engine/functional.py` (`get_network_config`, `reconstruct_from_config`): nodes as lists
//!   of `[layer, node, tensor, kwargs]` entries (three elements in Keras 1), `_CONSTANT_VALUE` entries,
//!   tensor triples inside kwargs; see [`keras2`];
//! * Keras 1 / Keras 2.0 Sequential as a bare list of layers and Keras 1 `Merge` layers holding whole
//!   sub-models (`keras/models.py` of Keras 1.2, `Sequential.get_config`); see [`keras1`];
//! * which writer produced a config ([`ConfigDialect`]), including the Keras 3 legacy-`.h5` hybrid
//!   (legacy layer entries, Keras 3 nodes and nested values); see [`dialect`].
//!
//! Class names stay exactly as written (`Dense`, `Convolution2D`, `my_pkg>Scale`): mapping legacy
//! spellings to Keras 3 classes is the engine's job. Nothing here decodes or runs Lambda code:
//! [`LayerConfig::lambda_function`] only reports what is stored.
//!
//! Node indices are kept as written. How they map to calls differs by writer (a nested Functional
//! model counts a built-in first node in some places); [`ModelConfig::check_graph`] knows these rules
//! and [`ModelConfig::node_index_base`] exposes them.

pub mod dialect;
pub mod keras1;
pub mod keras2;
pub mod keras3;
pub mod lambda;
mod path;
mod training;

use std::collections::HashMap;
use std::fmt;

use crate::json::{Json, JsonKind, Object};

pub use lambda::LambdaFunction;
pub use path::ConfigPath;
pub use training::TrainingConfig;

/// Which Keras wrote a config. Detected from the JSON itself (see [`dialect`]); a version string
/// from the file (`keras_version`) sharpens it through [`ConfigOptions::keras_version`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigDialect {
    /// Keras 1.x (3-element node entries, `Merge`, `init`/`W_regularizer`/`border_mode` spellings).
    Keras1,
    /// Multi-backend Keras 2.x, or a tf.keras config that cannot be told apart from one.
    Keras2,
    /// tf.keras (TF >= 2.0) or the tf-keras package, in `.h5`/JSON or in a `.keras` archive.
    TfKeras,
    /// Keras 3 `config.json` / `to_json()`.
    Keras3,
    /// Keras 3 writing a legacy `.h5`: legacy layer entries, Keras 3 nodes and nested values.
    Keras3LegacyH5,
}

/// What kind of model a config describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// A stack of layers without a graph.
    Sequential,
    /// A graph of layers (`Functional`, `Model` before TF 2.3, or a subclass with a functional
    /// constructor, whose class name stays in [`Envelope::class_name`]).
    Functional,
    /// A subclassed model: only what its `get_config` returned is known. Holds the class name.
    Subclassed(String),
}

/// The keys around a serialized object (Keras 3 envelope, or the legacy `{"class_name", "config"}`).
/// `None` means the key was absent (or `null`, for the string keys).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Envelope {
    /// `module` (Keras 3): `keras`, `keras.layers`, `keras.src.models.functional`, a user module, or
    /// `None` for `__main__` classes (written as `null`) and legacy configs (absent).
    pub module: Option<String>,
    /// `class_name` as written.
    pub class_name: String,
    /// `registered_name` (Keras 3): `package>Name`, a bare class name, or `None`.
    pub registered_name: Option<String>,
    /// `build_config`, e.g. `{"input_shape": null}`.
    pub build_config: Option<Json>,
    /// `compile_config` (Keras 3 models).
    pub compile_config: Option<Json>,
    /// `shared_object_id` (an arbitrary Python `id()` in Keras 3, a small counter in tf-keras).
    pub shared_object_id: Option<Json>,
    /// `keras_version`, which `to_json()` of Keras 1/2 and tf-keras add at the top level.
    pub keras_version: Option<String>,
    /// `backend`, added next to `keras_version`.
    pub backend: Option<String>,
}

/// A reference to a tensor: output `tensor_index` of call `node_index` of layer `layer`, with the
/// node index exactly as the config writes it (see [`ModelConfig::node_index_base`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorRef {
    /// The producing layer's name.
    pub layer: String,
    /// The producing call, as written.
    pub node_index: usize,
    /// The output of that call.
    pub tensor_index: usize,
}

impl fmt::Display for TensorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[\"{}\", {}, {}]", self.layer, self.node_index, self.tensor_index)
    }
}

/// How a node was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeFormat {
    /// Keras 3: `{"args": [...], "kwargs": {...}}` with `__keras_tensor__` markers.
    ArgsKwargs,
    /// Keras 1/2, tf-keras: a list (or nesting) of `[layer, node, tensor(, kwargs)]` entries.
    LegacyList,
}

/// One call of a layer inside its model (one entry of `inbound_nodes`).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Tensors in the call's positional arguments, in the order Keras flattens them (lists in
    /// order, dict values by sorted key).
    pub inputs: Vec<TensorRef>,
    /// Tensors passed by keyword (Keras 3 `kwargs`; tf-keras triples inside an entry's kwargs),
    /// in the same flatten order.
    pub kwarg_inputs: Vec<TensorRef>,
    /// The positional arguments as written: Keras 3 `args`, or the whole legacy entry list.
    /// [`Node::to_json`] puts `inputs` back into it in order.
    pub args_structure: Json,
    /// Keyword arguments: Keras 3 `kwargs`, or the kwargs of the first legacy entry (`{}` when the
    /// entries have none, as in Keras 1).
    pub kwargs: Json,
    /// How the node was written.
    pub format: NodeFormat,
    /// The node as read (`Json::Null` for nodes built in Rust).
    pub raw: Json,
}

/// One entry of a model's `layers`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerConfig {
    /// `class_name` as written (`Dense`, `Convolution2D`, `my_pkg>Scale`).
    pub class_name: String,
    /// Keras 3 `module` (see [`Envelope::module`]).
    pub module: Option<String>,
    /// Keras 3 `registered_name`.
    pub registered_name: Option<String>,
    /// The layer's name: the entry's `name`, else `config.name`; empty when neither exists (a
    /// Keras 1 Sequential nested in a Sequential records none).
    pub name: String,
    /// The layer's own `config` as written. For a nested model [`LayerConfig::nested`] is
    /// authoritative when writing back; for a Keras 1 `Merge`, [`LayerConfig::branches`] is.
    pub config: Json,
    /// `inbound_nodes`, normalized from both formats (empty in Sequential models).
    pub inbound_nodes: Vec<Node>,
    /// `build_config` (Keras 3).
    pub build_config: Option<Json>,
    /// `shared_object_id` (Keras 3).
    pub shared_object_id: Option<Json>,
    /// The parsed model when this layer is itself a Sequential or functional model.
    pub nested: Option<Box<ModelConfig>>,
    /// The sub-models of a Keras 1 `Merge` layer used inside a Sequential.
    pub branches: Vec<ModelConfig>,
    /// The entry as read (`Json::Null` for layers built in Rust).
    pub raw: Json,
}

/// A model config in one schema for every Keras version. See the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Sequential, functional or subclassed.
    pub kind: ModelKind,
    /// `config.name`; empty when the config records none (Keras 1 / 2.0 bare-list Sequential).
    pub name: String,
    /// `config.trainable`; `None` leaves whatever was written untouched on write-back.
    pub trainable: Option<bool>,
    /// The layers, in config order.
    pub layers: Vec<LayerConfig>,
    /// Model inputs (`input_layers`) in Keras flatten order; empty for Sequential.
    pub inputs: Vec<TensorRef>,
    /// `input_layers` as written (a triple, or a list/dict nesting of triples); `Null` if absent.
    pub inputs_structure: Json,
    /// Model outputs (`output_layers`) in Keras flatten order (dict values by sorted key).
    pub outputs: Vec<TensorRef>,
    /// `output_layers` as written; `Null` if absent.
    pub outputs_structure: Json,
    /// `config.build_input_shape` (Sequential).
    pub build_input_shape: Option<Json>,
    /// The keys around `config`.
    pub envelope: Envelope,
    /// Which Keras wrote this.
    pub source: ConfigDialect,
    /// The whole object as read (`Json::Null` for models built in Rust).
    pub raw: Json,
}

/// Options for [`ModelConfig::parse_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigOptions {
    /// The `keras_version` stored with the config (`.h5` root attribute, `metadata.json`), if known.
    pub keras_version: Option<String>,
    /// Most layers in the whole config, nested models included. Default 100 000.
    pub max_layers: usize,
    /// Most levels of models inside models. Default 64.
    pub max_model_depth: usize,
}

impl Default for ConfigOptions {
    fn default() -> Self {
        ConfigOptions { keras_version: None, max_layers: 100_000, max_model_depth: 64 }
    }
}

/// Where a reference checked by [`ModelConfig::check_graph`] is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefUse {
    /// In call `node` of layer `layer`.
    Node {
        /// The consuming layer.
        layer: String,
        /// Its call, as an index into its `inbound_nodes`.
        node: usize,
    },
    /// In `input_layers`.
    ModelInput,
    /// In `output_layers`.
    ModelOutput,
}

impl fmt::Display for RefUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefUse::Node { layer, node } => write!(f, "layer `{layer}` (inbound_nodes[{node}])"),
            RefUse::ModelInput => f.write_str("input_layers"),
            RefUse::ModelOutput => f.write_str("output_layers"),
        }
    }
}

/// Why a reference does not resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefProblem {
    /// No layer of that name in the same model.
    UnknownLayer,
    /// The layer exists, but has no call with that index.
    NodeOutOfRange {
        /// The first valid index.
        first: usize,
        /// How many calls the layer has in this model.
        count: usize,
    },
}

/// Why a model config could not be read. Paths are JSON paths from the document root
/// (`config.layers[3].inbound_nodes[0]`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value has the wrong JSON type.
    #[error(
        "expected {expected} at `{path}`, found {found}; no Keras version writes this, so the config was edited or is not a Keras model config"
    )]
    WrongType {
        /// Where.
        path: ConfigPath,
        /// What Keras writes there.
        expected: &'static str,
        /// What is there.
        found: JsonKind,
    },
    /// A required key is missing.
    #[error("missing key `{key}` at `{path}`; every Keras version writes it, so the config is truncated or edited")]
    MissingKey {
        /// The object missing the key.
        path: ConfigPath,
        /// The key.
        key: &'static str,
    },
    /// A tensor reference is not `[layer_name, node_index, tensor_index]`.
    #[error(
        "invalid tensor reference at `{path}`: expected [layer_name, node_index, tensor_index] with non-negative integer indices, found {found}"
    )]
    BadTensorRef {
        /// Where.
        path: ConfigPath,
        /// The value found, as compact JSON (cut at 80 characters).
        found: String,
    },
    /// Two layers of one functional model share a name.
    #[error(
        "duplicate layer name `{name}` at `{path}` (already used by layers[{first}]); tensor references name layers, so names in a functional model must be unique: rename one of them"
    )]
    DuplicateLayerName {
        /// The second entry.
        path: ConfigPath,
        /// The name.
        name: String,
        /// Index of the first entry with that name.
        first: usize,
    },
    /// More layers than [`ConfigOptions::max_layers`].
    #[error(
        "the config has more than {limit} layers (nested models included) at `{path}`; raise ConfigOptions::max_layers if the file is trusted"
    )]
    TooManyLayers {
        /// The entry that went over the limit.
        path: ConfigPath,
        /// The limit.
        limit: usize,
    },
    /// Models nested deeper than [`ConfigOptions::max_model_depth`].
    #[error(
        "models are nested more than {limit} levels deep at `{path}`; raise ConfigOptions::max_model_depth if the file is trusted"
    )]
    TooDeep {
        /// The model that went over the limit.
        path: ConfigPath,
        /// The limit.
        limit: usize,
    },
    /// A tensor reference names no existing layer call ([`ModelConfig::check_graph`]).
    #[error("{}", unresolved_message(model, used_in, reference, problem))]
    UnresolvedRef {
        /// The model holding the reference: layer names from the root joined by `/`; empty for the
        /// top-level model.
        model: String,
        /// Where the reference is used.
        used_in: RefUse,
        /// The reference.
        reference: TensorRef,
        /// Why it does not resolve.
        problem: RefProblem,
    },
}

fn unresolved_message(model: &str, used_in: &RefUse, reference: &TensorRef, problem: &RefProblem) -> String {
    let model = if model.is_empty() { "the top-level model".to_owned() } else { format!("model `{model}`") };
    match problem {
        RefProblem::UnknownLayer => format!(
            "{used_in} in {model} reads tensor {reference}, but the model has no layer `{}`; the graph is broken (edited config?): fix the name or add the layer",
            reference.layer
        ),
        RefProblem::NodeOutOfRange { first, count } => format!(
            "{used_in} in {model} reads tensor {reference}, but layer `{}` has {count} call(s) in this model, so valid node indices start at {first} and end before {}; the graph is broken (edited config?)",
            reference.layer,
            first + count
        ),
    }
}

/// `Result` with a [`ConfigError`].
pub type Result<T> = std::result::Result<T, ConfigError>;

// ---------------------------------------------------------------------------------------------
// Small readers shared by the version modules.

pub(crate) fn wrong(path: &ConfigPath, expected: &'static str, found: &Json) -> ConfigError {
    ConfigError::WrongType { path: path.clone(), expected, found: found.kind() }
}

pub(crate) fn short_json(v: &Json) -> String {
    let s = v.to_string_python();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

pub(crate) fn expect_object<'a>(v: &'a Json, path: &ConfigPath) -> Result<&'a Object> {
    v.as_object().ok_or_else(|| wrong(path, "an object", v))
}

/// A string-or-null key: absent or null is `None`.
fn opt_string(obj: &Object, key: &'static str, path: &mut ConfigPath) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => {
            path.push_key(key);
            let e = wrong(path, "a string or null", other);
            path.pop();
            Err(e)
        }
    }
}

fn required_string(obj: &Object, key: &'static str, path: &mut ConfigPath) -> Result<String> {
    match obj.get(key) {
        Some(Json::String(s)) => Ok(s.clone()),
        Some(other) => {
            path.push_key(key);
            let e = wrong(path, "a string", other);
            path.pop();
            Err(e)
        }
        None => Err(ConfigError::MissingKey { path: path.clone(), key }),
    }
}

/// Writes an optional string key back: `Some` sets it, `None` writes `null` where the key existed.
fn put_opt_string(out: &mut Object, key: &str, value: &Option<String>) {
    match value {
        Some(s) => {
            out.insert(key, Json::from(s.as_str()));
        }
        None => {
            if out.contains_key(key) {
                out.insert(key, Json::Null);
            }
        }
    }
}

/// Writes an optional JSON key back: `Some` sets it, `None` removes it.
fn put_opt_json(out: &mut Object, key: &str, value: &Option<Json>) {
    match value {
        Some(v) => {
            out.insert(key, v.clone());
        }
        None => {
            out.remove(key);
        }
    }
}

impl Envelope {
    fn parse(obj: &Object, path: &mut ConfigPath) -> Result<Envelope> {
        Ok(Envelope {
            module: opt_string(obj, "module", path)?,
            class_name: required_string(obj, "class_name", path)?,
            registered_name: opt_string(obj, "registered_name", path)?,
            build_config: obj.get("build_config").cloned(),
            compile_config: obj.get("compile_config").cloned(),
            shared_object_id: obj.get("shared_object_id").cloned(),
            keras_version: opt_string(obj, "keras_version", path)?,
            backend: opt_string(obj, "backend", path)?,
        })
    }

    fn write(&self, out: &mut Object) {
        out.insert("class_name", Json::from(self.class_name.as_str()));
        put_opt_string(out, "module", &self.module);
        put_opt_string(out, "registered_name", &self.registered_name);
        put_opt_json(out, "build_config", &self.build_config);
        put_opt_json(out, "compile_config", &self.compile_config);
        put_opt_json(out, "shared_object_id", &self.shared_object_id);
        put_opt_string(out, "keras_version", &self.keras_version);
        put_opt_string(out, "backend", &self.backend);
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

struct Ctx<'o> {
    dialect: ConfigDialect,
    opts: &'o ConfigOptions,
    layers_seen: usize,
}

/// Whether a layer entry is itself a Sequential or functional model.
fn entry_is_model(class_name: &str, config: &Json) -> bool {
    match config {
        Json::Array(_) => class_name == "Sequential",
        Json::Object(c) => {
            let has_layers = matches!(c.get("layers"), Some(Json::Array(_)));
            let graph = c.contains_key("input_layers") && c.contains_key("output_layers");
            has_layers && (graph || matches!(class_name, "Sequential" | "Functional" | "Model"))
        }
        _ => false,
    }
}

impl Ctx<'_> {
    fn model(&mut self, json: &Json, path: &mut ConfigPath, depth: usize) -> Result<ModelConfig> {
        if depth > self.opts.max_model_depth {
            return Err(ConfigError::TooDeep { path: path.clone(), limit: self.opts.max_model_depth });
        }
        let obj = expect_object(json, path)?;
        let envelope = Envelope::parse(obj, path)?;
        let config = obj.get("config").ok_or_else(|| ConfigError::MissingKey { path: path.clone(), key: "config" })?;
        path.push_key("config");
        let result = self.model_body(json, config, envelope, path, depth);
        path.pop();
        result
    }

    fn model_body(
        &mut self,
        json: &Json,
        config: &Json,
        envelope: Envelope,
        path: &mut ConfigPath,
        depth: usize,
    ) -> Result<ModelConfig> {
        let mut model = ModelConfig {
            kind: ModelKind::Sequential,
            name: String::new(),
            trainable: None,
            layers: Vec::new(),
            inputs: Vec::new(),
            inputs_structure: Json::Null,
            outputs: Vec::new(),
            outputs_structure: Json::Null,
            build_input_shape: None,
            envelope,
            source: self.dialect,
            raw: json.clone(),
        };
        let cfg = match config {
            Json::Array(items) => {
                // Keras 1 / Keras 2.0-2.1 Sequential: the config is the list of layers.
                model.layers = self.layer_list(items, path, depth, false)?;
                return Ok(model);
            }
            Json::Object(cfg) => cfg,
            other => {
                return Err(wrong(path, "an object or a list of layers", other));
            }
        };
        model.name = cfg.get("name").and_then(Json::as_str).unwrap_or_default().to_owned();
        model.trainable = cfg.get("trainable").and_then(Json::as_bool);
        model.build_input_shape = cfg.get("build_input_shape").cloned();
        let class_name = model.envelope.class_name.as_str();
        let layers_value = cfg.get("layers");
        let graph = cfg.contains_key("input_layers") || cfg.contains_key("output_layers");
        model.kind = if graph {
            ModelKind::Functional
        } else if class_name == "Sequential" {
            ModelKind::Sequential
        } else {
            ModelKind::Subclassed(class_name.to_owned())
        };
        let parse_layers = match model.kind {
            ModelKind::Functional | ModelKind::Sequential => true,
            // A subclass of Sequential keeps its layer list; other subclassed models may use
            // `layers` for anything, so only a list of layer entries is read.
            ModelKind::Subclassed(_) => layers_value.and_then(Json::as_array).is_some_and(|items| {
                items
                    .iter()
                    .all(|i| i.get("class_name").is_some_and(|c| c.as_str().is_some()) && i.get("config").is_some())
            }),
        };
        if parse_layers {
            path.push_key("layers");
            let items = match layers_value {
                Some(Json::Array(items)) => items,
                Some(other) => {
                    let e = wrong(path, "a list of layers", other);
                    path.pop();
                    return Err(e);
                }
                None => {
                    path.pop();
                    return Err(ConfigError::MissingKey { path: path.clone(), key: "layers" });
                }
            };
            let functional = model.kind == ModelKind::Functional;
            let layers = self.layer_list(items, path, depth, functional);
            path.pop();
            model.layers = layers?;
        }
        if model.kind == ModelKind::Functional {
            for (key, structure, refs) in [
                ("input_layers", &mut model.inputs_structure, &mut model.inputs),
                ("output_layers", &mut model.outputs_structure, &mut model.outputs),
            ] {
                let value = cfg.get(key).ok_or_else(|| ConfigError::MissingKey { path: path.clone(), key })?;
                path.push_key(key);
                let parsed = keras3::io_refs(value, path);
                path.pop();
                *refs = parsed?;
                *structure = value.clone();
            }
        }
        Ok(model)
    }

    fn layer_list(
        &mut self,
        items: &[Json],
        path: &mut ConfigPath,
        depth: usize,
        functional: bool,
    ) -> Result<Vec<LayerConfig>> {
        let mut layers = Vec::with_capacity(items.len().min(4096));
        let mut names: HashMap<String, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            path.push_index(i);
            let layer = self.layer(item, path, depth);
            let layer = match layer {
                Ok(l) => l,
                Err(e) => {
                    path.pop();
                    return Err(e);
                }
            };
            if functional {
                if let Some(first) = names.get(&layer.name) {
                    let e =
                        ConfigError::DuplicateLayerName { path: path.clone(), name: layer.name.clone(), first: *first };
                    path.pop();
                    return Err(e);
                }
                names.insert(layer.name.clone(), i);
            }
            path.pop();
            layers.push(layer);
        }
        Ok(layers)
    }

    fn layer(&mut self, json: &Json, path: &mut ConfigPath, depth: usize) -> Result<LayerConfig> {
        self.layers_seen += 1;
        if self.layers_seen > self.opts.max_layers {
            return Err(ConfigError::TooManyLayers { path: path.clone(), limit: self.opts.max_layers });
        }
        let obj = expect_object(json, path)?;
        let class_name = required_string(obj, "class_name", path)?;
        let module = opt_string(obj, "module", path)?;
        let registered_name = opt_string(obj, "registered_name", path)?;
        let config = obj.get("config").ok_or_else(|| ConfigError::MissingKey { path: path.clone(), key: "config" })?;
        let name = match obj.get("name") {
            Some(Json::String(s)) => s.clone(),
            Some(other) => {
                path.push_key("name");
                let e = wrong(path, "a string", other);
                path.pop();
                return Err(e);
            }
            None => config.get("name").and_then(Json::as_str).unwrap_or_default().to_owned(),
        };
        let mut inbound_nodes = Vec::new();
        if let Some(nodes) = obj.get("inbound_nodes") {
            path.push_key("inbound_nodes");
            let parsed = self.nodes(nodes, path);
            path.pop();
            inbound_nodes = parsed?;
        }
        let nested =
            if entry_is_model(&class_name, config) { Some(Box::new(self.model(json, path, depth + 1)?)) } else { None };
        let branches = if nested.is_none() {
            path.push_key("config");
            let b = keras1::merge_branches(self, &class_name, config, path, depth);
            path.pop();
            b?
        } else {
            Vec::new()
        };
        Ok(LayerConfig {
            class_name,
            module,
            registered_name,
            name,
            config: config.clone(),
            inbound_nodes,
            build_config: obj.get("build_config").cloned(),
            shared_object_id: obj.get("shared_object_id").cloned(),
            nested,
            branches,
            raw: json.clone(),
        })
    }

    fn nodes(&mut self, nodes: &Json, path: &mut ConfigPath) -> Result<Vec<Node>> {
        let items = nodes.as_array().ok_or_else(|| wrong(path, "a list of nodes", nodes))?;
        let mut out = Vec::with_capacity(items.len().min(4096));
        for (i, node) in items.iter().enumerate() {
            path.push_index(i);
            let parsed = match node {
                Json::Object(_) => keras3::parse_node(node, path),
                Json::Array(_) => keras2::parse_node(node, path),
                other => Err(wrong(
                    path,
                    "a node: a list of [layer, node, tensor, kwargs] entries (Keras 1/2) or an object with `args` and `kwargs` (Keras 3)",
                    other,
                )),
            };
            path.pop();
            out.push(parsed?);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Public API

impl ModelConfig {
    /// Parses a model config: a `.keras` `config.json`, an `.h5` `model_config` attribute or a
    /// `to_json()` document, of any Keras version.
    pub fn parse(json: &Json) -> Result<ModelConfig> {
        ModelConfig::parse_with(json, &ConfigOptions::default())
    }

    /// [`ModelConfig::parse`] with options (a known `keras_version`, limits).
    pub fn parse_with(json: &Json, opts: &ConfigOptions) -> Result<ModelConfig> {
        let dialect = dialect::detect(json, opts.keras_version.as_deref());
        let mut ctx = Ctx { dialect, opts, layers_seen: 0 };
        ctx.model(json, &mut ConfigPath::root(), 0)
    }

    /// The layer called `name` in this model (not in nested models).
    pub fn layer(&self, name: &str) -> Option<&LayerConfig> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// Whether a layer entry of this model is a Keras 3 operation rather than a layer (a raw
    /// `keras.ops` call in a functional graph, e.g. `NotEqual`, `Any`). Keras lists operations in
    /// the config but not in `model.layers`, and they hold no weights. Keras 3 writes their
    /// `module` as `keras.src.ops.*`; the legacy-`.h5` hybrid drops `module`, so there an entry whose
    /// config has neither `trainable` nor `dtype` (which every Keras 3 `Layer.get_config` writes)
    /// counts as an operation.
    pub fn is_operation(&self, layer: &LayerConfig) -> bool {
        if layer.module.as_deref().is_some_and(|m| m.starts_with("keras.src.ops.") || m == "keras.ops") {
            return true;
        }
        self.source == ConfigDialect::Keras3LegacyH5
            && layer.module.is_none()
            && layer.class_name != "InputLayer"
            && layer.nested.is_none()
            && layer.config.as_object().is_some_and(|c| !c.contains_key("trainable") && !c.contains_key("dtype"))
    }

    /// The layers as Keras's `model.layers` lists them: operations left out, and for a Sequential
    /// model the leading `InputLayer` too.
    pub fn model_layers(&self) -> Vec<&LayerConfig> {
        let mut layers: Vec<&LayerConfig> = self.layers.iter().filter(|l| !self.is_operation(l)).collect();
        if self.kind == ModelKind::Sequential && layers.first().is_some_and(|l| l.class_name == "InputLayer") {
            layers.remove(0);
        }
        layers
    }

    /// Every layer, depth first, with its path from this model: `dense`, `inner/dense`; a Keras 1
    /// `Merge` branch adds its index (`merge_1/0/dense_1`); a layer without a name shows as `#index`.
    pub fn iter_layers_recursive(&self) -> impl Iterator<Item = (String, &LayerConfig)> {
        let mut out = Vec::new();
        collect_model("", self, &mut out);
        out.into_iter()
    }

    /// The first valid node index for references to `producer`, a layer of this model. Keras 3
    /// counts a nested Functional model's built-in node in `input_layers`/`output_layers` only
    /// (`functional.py` `get_config` starts its counter at 1, `get_tensor` subtracts 1), not inside
    /// `inbound_nodes` (`serialize_node` drops nodes outside the model). Keras 1/2 count it
    /// everywhere for nested models (`kept_nodes = 1` for containers); tf-keras does for Functional
    /// models and for Sequential models that start with an InputLayer (`_should_skip_first_node`).
    pub fn node_index_base(&self, producer: &LayerConfig, in_model_io: bool) -> usize {
        let Some(nested) = &producer.nested else {
            return 0;
        };
        match self.source {
            ConfigDialect::Keras3 | ConfigDialect::Keras3LegacyH5 => {
                usize::from(in_model_io && nested.kind == ModelKind::Functional)
            }
            ConfigDialect::Keras1 | ConfigDialect::Keras2 => 1,
            ConfigDialect::TfKeras => match nested.kind {
                ModelKind::Sequential => {
                    usize::from(nested.layers.first().is_some_and(|l| l.class_name == "InputLayer"))
                }
                _ => 1,
            },
        }
    }

    /// Checks that every tensor reference (node inputs, `input_layers`, `output_layers`) names a
    /// layer of the same model and a call it has, in this model and all nested ones. Returns every
    /// problem found (empty when the graph is consistent).
    pub fn check_graph(&self) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        check_model(self, "", &mut problems);
        problems
    }

    /// Writes the config back as JSON: the original document with the keys owned by typed fields
    /// replaced, so an unmodified parse writes back equal JSON (same keys, same order).
    pub fn to_json(&self) -> Json {
        let mut out = match &self.raw {
            Json::Object(o) => o.clone(),
            _ => Object::new(),
        };
        self.envelope.write(&mut out);
        let raw_config = self.raw.get("config");
        let config = if matches!(raw_config, Some(Json::Array(_))) && self.kind == ModelKind::Sequential {
            Json::Array(self.layers.iter().map(LayerConfig::to_json).collect())
        } else {
            let mut cfg = match raw_config {
                Some(Json::Object(o)) => o.clone(),
                _ => Object::new(),
            };
            if !self.name.is_empty() || cfg.contains_key("name") {
                cfg.insert("name", Json::from(self.name.as_str()));
            }
            if let Some(t) = self.trainable {
                cfg.insert("trainable", Json::Bool(t));
            }
            let owns_layers = matches!(self.kind, ModelKind::Sequential | ModelKind::Functional);
            if owns_layers || !self.layers.is_empty() {
                cfg.insert("layers", Json::Array(self.layers.iter().map(LayerConfig::to_json).collect()));
            }
            if self.kind == ModelKind::Functional {
                cfg.insert("input_layers", keras3::fill_io(&self.inputs_structure, &self.inputs));
                cfg.insert("output_layers", keras3::fill_io(&self.outputs_structure, &self.outputs));
            }
            put_opt_json(&mut cfg, "build_input_shape", &self.build_input_shape);
            Json::Object(cfg)
        };
        out.insert("config", config);
        Json::Object(out)
    }
}

fn collect_model<'a>(prefix: &str, model: &'a ModelConfig, out: &mut Vec<(String, &'a LayerConfig)>) {
    for (i, layer) in model.layers.iter().enumerate() {
        let p = join_path(prefix, &layer.name, i);
        out.push((p.clone(), layer));
        if let Some(nested) = &layer.nested {
            collect_model(&p, nested, out);
        }
        for (b, branch) in layer.branches.iter().enumerate() {
            collect_model(&format!("{p}/{b}"), branch, out);
        }
    }
}

fn join_path(prefix: &str, name: &str, index: usize) -> String {
    let seg = if name.is_empty() { format!("#{index}") } else { name.to_owned() };
    if prefix.is_empty() { seg } else { format!("{prefix}/{seg}") }
}

fn check_model(model: &ModelConfig, model_path: &str, problems: &mut Vec<ConfigError>) {
    if model.kind == ModelKind::Functional {
        let by_name: HashMap<&str, &LayerConfig> = model.layers.iter().map(|l| (l.name.as_str(), l)).collect();
        let mut check = |r: &TensorRef, used_in: RefUse, in_io: bool| {
            let problem = match by_name.get(r.layer.as_str()) {
                None => Some(RefProblem::UnknownLayer),
                Some(producer) => {
                    let (first, count) = if producer.class_name == "InputLayer" && producer.inbound_nodes.is_empty() {
                        (0, 1)
                    } else {
                        (model.node_index_base(producer, in_io), producer.inbound_nodes.len())
                    };
                    (r.node_index < first || r.node_index >= first + count)
                        .then_some(RefProblem::NodeOutOfRange { first, count })
                }
            };
            if let Some(problem) = problem {
                problems.push(ConfigError::UnresolvedRef {
                    model: model_path.to_owned(),
                    used_in,
                    reference: r.clone(),
                    problem,
                });
            }
        };
        for layer in &model.layers {
            for (n, node) in layer.inbound_nodes.iter().enumerate() {
                for r in node.inputs.iter().chain(&node.kwarg_inputs) {
                    check(r, RefUse::Node { layer: layer.name.clone(), node: n }, false);
                }
            }
        }
        for r in &model.inputs {
            check(r, RefUse::ModelInput, true);
        }
        for r in &model.outputs {
            check(r, RefUse::ModelOutput, true);
        }
    }
    for (i, layer) in model.layers.iter().enumerate() {
        let sub = join_path(model_path, &layer.name, i);
        if let Some(nested) = &layer.nested {
            check_model(nested, &sub, problems);
        }
        for (b, branch) in layer.branches.iter().enumerate() {
            check_model(branch, &format!("{sub}/{b}"), problems);
        }
    }
}

impl LayerConfig {
    /// Whether this layer is itself a model (a parsed nested model, or a model class name).
    pub fn is_model(&self) -> bool {
        self.nested.is_some() || matches!(self.class_name.as_str(), "Sequential" | "Functional" | "Model")
    }

    /// `config.trainable`; Keras's default `true` when absent.
    pub fn trainable(&self) -> bool {
        self.config.get("trainable").and_then(Json::as_bool).unwrap_or(true)
    }

    /// The layer's dtype policy name: `config.dtype` as a string (`"float32"`), or the `name` of a
    /// Keras 3 `DTypePolicy` / tf.keras `Policy` object (`"mixed_float16"`).
    pub fn dtype(&self) -> Option<&str> {
        match self.config.get("dtype")? {
            Json::String(s) => Some(s),
            Json::Object(o) => o.get("config")?.get("name")?.as_str(),
            _ => None,
        }
    }

    /// The declared batch input shape: `config.batch_shape` (Keras 3) or `config.batch_input_shape`
    /// (Keras 1/2, tf-keras; also on the first layer of old Sequential models).
    pub fn batch_input_shape(&self) -> Option<&Json> {
        self.config.get("batch_shape").or_else(|| self.config.get("batch_input_shape")).filter(|v| !v.is_null())
    }

    /// What a `Lambda` layer stores as its function (see [`LambdaFunction`]); `None` for other layers.
    pub fn lambda_function(&self) -> Option<LambdaFunction> {
        lambda::from_layer(self, "function")
    }

    /// What a `Lambda` layer stores as its `output_shape` when that is a function.
    pub fn lambda_output_shape(&self) -> Option<LambdaFunction> {
        lambda::from_layer(self, "output_shape")
    }

    /// Writes the entry back: the raw entry with the typed keys replaced.
    pub fn to_json(&self) -> Json {
        let raw_obj = self.raw.as_object();
        let mut out = raw_obj.cloned().unwrap_or_default();
        out.insert("class_name", Json::from(self.class_name.as_str()));
        put_opt_string(&mut out, "module", &self.module);
        put_opt_string(&mut out, "registered_name", &self.registered_name);
        let mut config = match &self.nested {
            Some(nested) => {
                let n = nested.to_json();
                put_opt_json(&mut out, "compile_config", &nested.envelope.compile_config);
                n.get("config").cloned().unwrap_or(Json::Null)
            }
            None => keras1::write_branches(&self.config, &self.branches),
        };
        // The name is written only where it changed, so a renamed nested model (whose own
        // `name` lives in `nested`) is not overwritten by an untouched layer name.
        let original_name = raw_obj
            .and_then(|o| o.get("name").or_else(|| o.get("config").and_then(|c| c.get("name"))).and_then(Json::as_str));
        let renamed = original_name != Some(self.name.as_str()) && !self.name.is_empty();
        if renamed && let Some(c) = config.as_object_mut().filter(|c| c.contains_key("name")) {
            c.insert("name", Json::from(self.name.as_str()));
        }
        out.insert("config", config);
        if renamed && raw_obj.is_none_or(|o| o.contains_key("name")) {
            out.insert("name", Json::from(self.name.as_str()));
        }
        if raw_obj.is_some_and(|o| o.contains_key("inbound_nodes")) || !self.inbound_nodes.is_empty() {
            out.insert("inbound_nodes", Json::Array(self.inbound_nodes.iter().map(Node::to_json).collect()));
        }
        put_opt_json(&mut out, "build_config", &self.build_config);
        put_opt_json(&mut out, "shared_object_id", &self.shared_object_id);
        Json::Object(out)
    }
}

impl Node {
    /// Writes the node back in its own format, with `inputs`/`kwarg_inputs` put into the structure.
    pub fn to_json(&self) -> Json {
        match self.format {
            NodeFormat::ArgsKwargs => keras3::write_node(self),
            NodeFormat::LegacyList => keras2::write_node(self),
        }
    }

    /// Every tensor this call reads: positional, then keyword.
    pub fn all_inputs(&self) -> impl Iterator<Item = &TensorRef> {
        self.inputs.iter().chain(&self.kwarg_inputs)
    }

    /// The top-level keyword each entry of [`Node::kwarg_inputs`] was passed under (`mask`,
    /// `value`, `attention_mask`, ...), in the same order; a list-valued keyword repeats its name.
    pub fn kwarg_input_names(&self) -> Vec<String> {
        let Json::Object(o) = &self.kwargs else { return Vec::new() };
        let mut keys: Vec<&str> = o.keys().collect();
        keys.sort_unstable();
        let mut names = Vec::with_capacity(self.kwarg_inputs.len());
        for k in keys {
            let Some(v) = o.get(k) else { continue };
            let mut found = Vec::new();
            match self.format {
                NodeFormat::ArgsKwargs => {
                    let _ = keras3::tensor_walk(v, &mut ConfigPath::root(), &mut found);
                }
                NodeFormat::LegacyList => keras2::kwarg_refs(v, &mut found),
            }
            names.extend(std::iter::repeat_n(k.to_string(), found.len()));
        }
        names
    }
}

#[cfg(test)]
mod tests;
