//! Defining a model in Rust: [`Sequential`] and the built-in layer definitions in [`layers`].
//!
//! ```no_run
//! use strata_model::{Sequential, layers::Dense};
//! use strata_registry::Registry;
//! let model = Sequential::new("seed")
//!     .input(&[10])
//!     .add(Dense::new(32).activation("relu"))
//!     .add(Dense::new(1))
//!     .build(&Registry::new())?;
//! # Ok::<(), strata_model::Error>(())
//! ```
//!
//! A model is defined the way Keras writes it: each layer becomes its `config.json` entry
//! (`module`, `class_name`, `config`, `registered_name`, `build_config`), weights are drawn from
//! the layer's initializers (strata's seeded generator), and output shapes are found by running
//! the layer on a batch of one. The result is an ordinary [`Model`], saved exactly like a loaded
//! one.

use strata_format::config::ModelConfig;
use strata_format::json::{Json, Object};
use strata_format::naming::ContainerNamer;
use strata_registry::{BaseConfig, CustomLayer, KerasClass, Registry, Shape};
use strata_tensor::Tensor;
use strata_train::initializers::Initializer;

use crate::error::{Error, Result};
use crate::model::{LayerWeights, Model, builtin_names};

/// Something that can be a layer of a [`Sequential`]: produces its Keras object dict.
pub trait LayerDef {
    /// `{"module", "class_name", "config", "registered_name"}`; `config.name` may be empty (the
    /// model names it as Keras would).
    fn keras_object(&self) -> Result<Json>;
}

impl<T: CustomLayer + KerasClass + serde::Serialize> LayerDef for T {
    fn keras_object(&self) -> Result<Json> {
        let base = BaseConfig { name: String::new(), trainable: true, dtype: dtype_policy() };
        strata_registry::serialize_layer(self, &base).map_err(|e| {
            Error::invalid(
                format!("serializing `{}`: {e}", T::registered_name()),
                "make the struct's fields serde-serializable",
            )
        })
    }
}

/// Keras 3's default `DTypePolicy` object.
pub(crate) fn dtype_policy() -> Json {
    Json::object([
        ("module", Json::from("keras")),
        ("class_name", Json::from("DTypePolicy")),
        ("config", Json::object([("name", Json::from("float32"))])),
        ("registered_name", Json::Null),
    ])
}

fn initializer(class: &str) -> Json {
    let config = match class {
        "GlorotUniform" | "Orthogonal" => Json::object([("seed", Json::Null)]),
        "RandomUniform" => {
            Json::object([("seed", Json::Null), ("minval", Json::from(-0.05)), ("maxval", Json::from(0.05))])
        }
        _ => Json::object(Vec::<(&str, Json)>::new()),
    };
    Json::object([
        ("module", Json::from("keras.initializers")),
        ("class_name", Json::from(class)),
        ("config", config),
        ("registered_name", Json::Null),
    ])
}

/// Built-in Keras layers, defined from Rust with Keras's constructor arguments and defaults.
pub mod layers {
    use super::*;

    /// A built-in layer: its class and config keys. The typed constructors below fill it in.
    #[derive(Clone, Debug)]
    pub struct Builtin {
        class: String,
        config: Object,
    }

    impl Builtin {
        /// A layer of Keras class `class` with config `keys` (Keras's defaults for the rest).
        pub fn new(class: &str) -> Builtin {
            Builtin { class: class.to_string(), config: Object::new() }
        }
        /// Sets a config key (any Keras constructor argument).
        pub fn set(mut self, key: &str, value: impl Into<Json>) -> Builtin {
            self.config.insert(key, value.into());
            self
        }
    }

    impl LayerDef for Builtin {
        fn keras_object(&self) -> Result<Json> {
            let mut config = Object::new();
            config.insert("name", self.config.get("name").cloned().unwrap_or(Json::from("")));
            config.insert("trainable", self.config.get("trainable").cloned().unwrap_or(Json::Bool(true)));
            config.insert("dtype", dtype_policy());
            for (k, v) in self.config.iter() {
                if !matches!(k, "name" | "trainable") {
                    config.insert(k, v.clone());
                }
            }
            Ok(Json::object([
                ("module", Json::from("keras.layers")),
                ("class_name", Json::from(self.class.as_str())),
                ("config", Json::Object(config)),
                ("registered_name", Json::Null),
            ]))
        }
    }

    macro_rules! layer_type {
        ($(#[$doc:meta])* $name:ident) => {
            $(#[$doc])*
            #[derive(Clone, Debug)]
            pub struct $name(pub Builtin);
            impl $name {
                /// Sets the layer's name (default: Keras's, e.g. `dense_1`).
                pub fn name(self, name: &str) -> Self {
                    $name(self.0.set("name", name))
                }
                /// Sets any config key (a Keras constructor argument).
                pub fn set(self, key: &str, value: impl Into<Json>) -> Self {
                    $name(self.0.set(key, value))
                }
                /// Freezes (or unfreezes) the layer's weights.
                pub fn trainable(self, t: bool) -> Self {
                    $name(self.0.set("trainable", t))
                }
            }
            impl LayerDef for $name {
                fn keras_object(&self) -> Result<Json> {
                    self.0.keras_object()
                }
            }
        };
    }

    fn ints(v: &[usize]) -> Json {
        Json::array(v.iter().map(|&d| Json::from(d as i64)))
    }

    layer_type!(
        /// `keras.layers.Dense(units, activation=None, use_bias=True, ...)`.
        Dense
    );
    impl Dense {
        /// `Dense(units)`, with Keras's defaults.
        pub fn new(units: usize) -> Dense {
            Dense(
                Builtin::new("Dense")
                    .set("units", units as i64)
                    .set("activation", "linear")
                    .set("use_bias", true)
                    .set("kernel_initializer", initializer("GlorotUniform"))
                    .set("bias_initializer", initializer("Zeros"))
                    .set("kernel_regularizer", Json::Null)
                    .set("bias_regularizer", Json::Null)
                    .set("kernel_constraint", Json::Null)
                    .set("bias_constraint", Json::Null),
            )
        }
        /// `activation=` (a Keras activation name).
        pub fn activation(self, a: &str) -> Dense {
            self.set("activation", a)
        }
        /// `use_bias=`.
        pub fn use_bias(self, b: bool) -> Dense {
            self.set("use_bias", b)
        }
    }

    macro_rules! conv_type {
        ($(#[$doc:meta])* $name:ident, $rank:literal) => {
            layer_type!($(#[$doc])* $name);
            impl $name {
                /// `filters` filters of size `kernel_size`, stride 1, `valid` padding, Keras's defaults.
                pub fn new(filters: usize, kernel_size: [usize; $rank]) -> $name {
                    $name(
                        Builtin::new(stringify!($name))
                            .set("filters", filters as i64)
                            .set("kernel_size", ints(&kernel_size))
                            .set("strides", ints(&[1; $rank]))
                            .set("padding", "valid")
                            .set("data_format", "channels_last")
                            .set("dilation_rate", ints(&[1; $rank]))
                            .set("groups", 1i64)
                            .set("activation", "linear")
                            .set("use_bias", true)
                            .set("kernel_initializer", initializer("GlorotUniform"))
                            .set("bias_initializer", initializer("Zeros"))
                            .set("kernel_regularizer", Json::Null)
                            .set("bias_regularizer", Json::Null)
                            .set("activity_regularizer", Json::Null)
                            .set("kernel_constraint", Json::Null)
                            .set("bias_constraint", Json::Null),
                    )
                }
                /// `activation=`.
                pub fn activation(self, a: &str) -> $name {
                    self.set("activation", a)
                }
                /// `padding=` (`valid` or `same`).
                pub fn padding(self, p: &str) -> $name {
                    self.set("padding", p)
                }
                /// `strides=`.
                pub fn strides(self, s: [usize; $rank]) -> $name {
                    self.set("strides", ints(&s))
                }
            }
        };
    }
    conv_type!(
        /// `keras.layers.Conv1D(filters, kernel_size, ...)` (channels last).
        Conv1D, 1
    );
    conv_type!(
        /// `keras.layers.Conv2D(filters, kernel_size, ...)` (channels last).
        Conv2D, 2
    );

    macro_rules! pool_type {
        ($(#[$doc:meta])* $name:ident, $rank:literal) => {
            layer_type!($(#[$doc])* $name);
            impl $name {
                /// Pool size `pool`, strides = pool size, `valid` padding.
                pub fn new(pool: [usize; $rank]) -> $name {
                    $name(
                        Builtin::new(stringify!($name))
                            .set("pool_size", ints(&pool))
                            .set("padding", "valid")
                            .set("strides", ints(&pool))
                            .set("data_format", "channels_last"),
                    )
                }
            }
        };
    }
    pool_type!(
        /// `keras.layers.MaxPooling1D(pool_size)`.
        MaxPooling1D, 1
    );
    pool_type!(
        /// `keras.layers.MaxPooling2D(pool_size)`.
        MaxPooling2D, 2
    );
    pool_type!(
        /// `keras.layers.AveragePooling2D(pool_size)`.
        AveragePooling2D, 2
    );

    layer_type!(
        /// `keras.layers.Flatten()`.
        Flatten
    );
    impl Flatten {
        /// `Flatten()`.
        pub fn new() -> Flatten {
            Flatten(Builtin::new("Flatten").set("data_format", "channels_last"))
        }
    }
    impl Default for Flatten {
        fn default() -> Flatten {
            Flatten::new()
        }
    }

    layer_type!(
        /// `keras.layers.GlobalAveragePooling2D()`.
        GlobalAveragePooling2D
    );
    impl GlobalAveragePooling2D {
        /// `GlobalAveragePooling2D()`.
        pub fn new() -> GlobalAveragePooling2D {
            GlobalAveragePooling2D(
                Builtin::new("GlobalAveragePooling2D").set("data_format", "channels_last").set("keepdims", false),
            )
        }
    }

    layer_type!(
        /// `keras.layers.Dropout(rate)`.
        Dropout
    );
    impl Dropout {
        /// `Dropout(rate)`.
        pub fn new(rate: f64) -> Dropout {
            Dropout(Builtin::new("Dropout").set("rate", rate).set("seed", Json::Null).set("noise_shape", Json::Null))
        }
    }

    layer_type!(
        /// `keras.layers.Activation(name)`.
        Activation
    );
    impl Activation {
        /// `Activation("relu")`.
        pub fn new(activation: &str) -> Activation {
            Activation(Builtin::new("Activation").set("activation", activation))
        }
    }

    layer_type!(
        /// `keras.layers.BatchNormalization()` (last axis).
        BatchNormalization
    );
    impl BatchNormalization {
        /// `BatchNormalization()` with Keras's defaults.
        pub fn new() -> BatchNormalization {
            BatchNormalization(
                Builtin::new("BatchNormalization")
                    .set("axis", -1i64)
                    .set("momentum", 0.99)
                    .set("epsilon", 0.001)
                    .set("center", true)
                    .set("scale", true),
            )
        }
    }

    layer_type!(
        /// `keras.layers.LayerNormalization()` (last axis).
        LayerNormalization
    );
    impl LayerNormalization {
        /// `LayerNormalization()` with Keras's defaults.
        pub fn new() -> LayerNormalization {
            LayerNormalization(
                Builtin::new("LayerNormalization")
                    .set("axis", -1i64)
                    .set("epsilon", 0.001)
                    .set("center", true)
                    .set("scale", true),
            )
        }
    }

    layer_type!(
        /// `keras.layers.Embedding(input_dim, output_dim)`.
        Embedding
    );
    impl Embedding {
        /// `Embedding(input_dim, output_dim)`.
        pub fn new(input_dim: usize, output_dim: usize) -> Embedding {
            Embedding(
                Builtin::new("Embedding")
                    .set("input_dim", input_dim as i64)
                    .set("output_dim", output_dim as i64)
                    .set("embeddings_initializer", initializer("RandomUniform"))
                    .set("mask_zero", false),
            )
        }
    }

    layer_type!(
        /// `keras.layers.Reshape(target_shape)`.
        Reshape
    );
    impl Reshape {
        /// `Reshape(target_shape)` (without the batch dimension).
        pub fn new(target_shape: &[usize]) -> Reshape {
            Reshape(Builtin::new("Reshape").set("target_shape", ints(target_shape)))
        }
    }
}

/// A weight a built-in layer creates for an input shape.
struct Spec {
    shape: Vec<usize>,
    init: Json,
    default_init: &'static str,
}

fn dim(d: Option<&Option<usize>>, what: &str, layer: &str) -> Result<usize> {
    d.copied().flatten().ok_or_else(|| {
        Error::invalid(
            format!("layer `{layer}` needs a known {what} to create its weights"),
            "give the model a fully known input shape with .input(&[...])",
        )
    })
}

/// The weights a built-in layer creates for `input` (Keras's `build`), in Keras order.
fn builtin_specs(class: &str, cfg: &Json, input: &Shape, layer: &str) -> Result<Option<Vec<Spec>>> {
    let int = |k: &str| cfg.get(k).and_then(Json::as_usize);
    let flag = |k: &str, d: bool| cfg.get(k).and_then(Json::as_bool).unwrap_or(d);
    let init = |k: &str| cfg.get(k).cloned().unwrap_or(Json::Null);
    let last = || dim(input.last(), "last input dimension", layer);
    let spec = |shape: Vec<usize>, key: &str, default_init: &'static str| Spec { shape, init: init(key), default_init };
    Ok(Some(match class {
        "Dense" => {
            let units = int("units").unwrap_or(1);
            let mut v = vec![spec(vec![last()?, units], "kernel_initializer", "glorot_uniform")];
            if flag("use_bias", true) {
                v.push(spec(vec![units], "bias_initializer", "zeros"));
            }
            v
        }
        "Conv1D" | "Conv2D" | "Conv3D" => {
            let filters = int("filters").unwrap_or(1);
            let groups = int("groups").unwrap_or(1).max(1);
            let ks: Vec<usize> = cfg
                .get("kernel_size")
                .and_then(Json::as_array)
                .map(|a| a.iter().filter_map(Json::as_usize).collect())
                .unwrap_or_default();
            let mut kshape = ks;
            kshape.push(last()? / groups);
            kshape.push(filters);
            let mut v = vec![spec(kshape, "kernel_initializer", "glorot_uniform")];
            if flag("use_bias", true) {
                v.push(spec(vec![filters], "bias_initializer", "zeros"));
            }
            v
        }
        "BatchNormalization" => {
            let d = last()?;
            let mut v = Vec::new();
            if flag("scale", true) {
                v.push(spec(vec![d], "gamma_initializer", "ones"));
            }
            if flag("center", true) {
                v.push(spec(vec![d], "beta_initializer", "zeros"));
            }
            v.push(spec(vec![d], "moving_mean_initializer", "zeros"));
            v.push(spec(vec![d], "moving_variance_initializer", "ones"));
            v
        }
        "LayerNormalization" => {
            let d = last()?;
            let mut v = Vec::new();
            if flag("scale", true) {
                v.push(spec(vec![d], "gamma_initializer", "ones"));
            }
            if flag("center", true) {
                v.push(spec(vec![d], "beta_initializer", "zeros"));
            }
            v
        }
        "Embedding" => vec![spec(
            vec![int("input_dim").unwrap_or(1), int("output_dim").unwrap_or(1)],
            "embeddings_initializer",
            "uniform",
        )],
        _ => return Ok(None),
    }))
}

fn draw(init: &Json, default: &str, shape: &[usize], registry: &Registry) -> Result<Tensor> {
    if !init.is_null()
        && let Some(e) = registry.function_named(init).filter(|e| e.kind == strata_registry::Kind::Initializer)
        && let Some(f) = registry.get_function::<strata_registry::InitializerFn>(&e.key)
    {
        let t = f(shape)?;
        if t.shape() != shape {
            return Err(Error::invalid(
                format!("the registered initializer `{}` returned shape {:?} for {shape:?}", e.key, t.shape()),
                "return a tensor of the shape it is given",
            ));
        }
        return Ok(t);
    }
    let i = match init {
        Json::Null => Initializer::get(default)?,
        Json::String(s) => Initializer::get(s)?,
        j => Initializer::deserialize(j)?,
    };
    Ok(i.call(shape)?)
}

fn registry_init(i: &strata_registry::Initializer, shape: &[usize], registry: &Registry) -> Result<Tensor> {
    use strata_registry::Initializer as R;
    if let R::Named(n) = i {
        return draw(&Json::from(n.as_str()), "zeros", shape, registry);
    }
    let init = match i {
        R::Zeros => Initializer::get("zeros")?,
        R::Ones => Initializer::get("ones")?,
        R::Constant(c) => Initializer::from_config("Constant", &Json::object([("value", Json::from(f64::from(*c)))]))?,
        R::RandomNormal { mean, stddev } => Initializer::from_config(
            "RandomNormal",
            &Json::object([("mean", Json::from(f64::from(*mean))), ("stddev", Json::from(f64::from(*stddev)))]),
        )?,
        R::RandomUniform { min, max } => Initializer::from_config(
            "RandomUniform",
            &Json::object([("minval", Json::from(f64::from(*min))), ("maxval", Json::from(f64::from(*max)))]),
        )?,
        R::GlorotUniform => Initializer::get("glorot_uniform")?,
        R::Named(n) => Initializer::get(n)?,
        other => {
            return Err(Error::invalid(
                format!("initializer {other:?} is not supported"),
                "use a Keras initializer name",
            ));
        }
    };
    Ok(init.call(shape)?)
}

/// Fresh variables for layer `lc` built on `in_shapes` (Keras's `build`): a registered custom
/// layer's `add_weight` calls, or a built-in's own variables, drawn from their initializers.
/// Returns (names, values, trainable) in Keras order.
fn fresh_weights(
    config: &ModelConfig,
    lc: &strata_format::config::LayerConfig,
    in_shapes: &[Shape],
    registry: &Registry,
    what: &str,
) -> Result<(Vec<String>, Vec<Tensor>, Vec<bool>)> {
    let class = lc.class_name.as_str();
    if let Some(entry) = registry.layer_for(lc) {
        let b = entry.weight_specs(lc, in_shapes)?;
        let order = b.keras_order();
        let specs = b.specs();
        let mut values = Vec::new();
        for &i in &order {
            values.push(registry_init(&specs[i].initializer, &specs[i].shape, registry)?);
        }
        let t = lc.trainable();
        return Ok((
            order.iter().map(|&i| specs[i].name.clone()).collect(),
            values,
            order.iter().map(|&i| specs[i].trainable && t).collect(),
        ));
    }
    if strata_registry::is_custom_layer(lc) {
        return Err(strata_registry::Error::Missing {
            file: what.to_string(),
            missing: registry.missing(&strata_registry::used_objects(config, None)),
        }
        .into());
    }
    let first = in_shapes.first().cloned().unwrap_or_default();
    Ok(match builtin_specs(class, &lc.config, &first, &lc.name)? {
        Some(specs) => {
            let n = specs.len();
            let values =
                specs.iter().map(|s| draw(&s.init, s.default_init, &s.shape, registry)).collect::<Result<Vec<_>>>()?;
            let tail = strata_format::bind::non_trainable_tail(class, n);
            let t = lc.trainable();
            (builtin_names(class, n, &lc.config), values, (0..n).map(|i| t && i + tail < n).collect())
        }
        None => (Vec::new(), Vec::new(), Vec::new()),
    })
}

/// A stack of layers (`keras.Sequential`).
pub struct Sequential {
    name: String,
    input: Option<Vec<usize>>,
    layers: Vec<Result<Json>>,
}

impl Sequential {
    /// An empty model named `name` (Keras's default is `sequential`).
    pub fn new(name: &str) -> Sequential {
        Sequential { name: name.to_string(), input: None, layers: Vec::new() }
    }

    /// `keras.Input(shape)`: the input shape without the batch dimension.
    pub fn input(mut self, shape: &[usize]) -> Sequential {
        self.input = Some(shape.to_vec());
        self
    }

    /// Appends a layer: a built-in from [`layers`] or a registered [`CustomLayer`].
    pub fn add(mut self, layer: impl LayerDef) -> Sequential {
        self.layers.push(layer.keras_object());
        self
    }

    /// Builds the model: names the layers as Keras would, draws initial weights, and checks that
    /// every custom layer is registered in `registry`.
    pub fn build(self, registry: &Registry) -> Result<Model> {
        let input = self.input.clone().ok_or_else(|| {
            Error::invalid(
                format!("Sequential `{}` has no input shape", self.name),
                "call .input(&[features]) before adding layers (keras.Input(shape=...))",
            )
        })?;
        let mut namer = ContainerNamer::new();
        let batch_shape =
            |s: &[usize]| Json::array(std::iter::once(Json::Null).chain(s.iter().map(|&d| Json::from(d as i64))));
        let input_name = namer.next("InputLayer");
        let mut entries = vec![Json::object([
            ("module", Json::from("keras.layers")),
            ("class_name", Json::from("InputLayer")),
            (
                "config",
                Json::object([
                    ("batch_shape", batch_shape(&input)),
                    ("dtype", Json::from("float32")),
                    ("sparse", Json::from(false)),
                    ("ragged", Json::from(false)),
                    ("name", Json::from(input_name.as_str())),
                    ("optional", Json::from(false)),
                ]),
            ),
            ("registered_name", Json::Null),
        ])];
        let mut weights: Vec<LayerWeights> = Vec::new();
        let mut shape = input.clone();
        for layer in self.layers {
            let mut obj = layer?;
            let class = obj.get("class_name").and_then(Json::as_str).unwrap_or_default().to_string();
            if let Some(cfg) = obj.get_mut("config").and_then(Json::as_object_mut) {
                let given = cfg.get("name").and_then(Json::as_str).unwrap_or_default().to_string();
                let name = if given.is_empty() { namer.next(&class) } else { given };
                cfg.insert("name", Json::from(name));
            }
            if let Some(o) = obj.as_object_mut() {
                o.insert("build_config", Json::object([("input_shape", batch_shape(&shape))]));
            }
            entries.push(obj);
            let config_json = sequential_json(&self.name, &input, &entries);
            let config = ModelConfig::parse(&config_json).map_err(|e| {
                Error::invalid(format!("the config of layer `{class}` does not parse: {e}"), "check its arguments")
            })?;
            let Some(lc) = config.layers.last() else { continue };
            let in_shape: Shape = std::iter::once(None).chain(shape.iter().map(|&d| Some(d))).collect();
            let (names, values, trainable) = fresh_weights(
                &config,
                lc,
                std::slice::from_ref(&in_shape),
                registry,
                &format!("Sequential `{}`", self.name),
            )?;
            if !values.is_empty() {
                weights.push(LayerWeights {
                    path: lc.name.clone(),
                    class_name: class.clone(),
                    names,
                    values,
                    trainable,
                });
            }
            // the output shape: run the model so far on a batch of one
            let engine = crate::model::build_engine(&config, None, None, registry, &weights, None).map_err(|e| {
                Error::invalid(
                    format!("layer `{}` ({class}) cannot be built from Rust: {e}", lc.name),
                    "strata creates fresh weights for Dense, Conv1D/2D, BatchNormalization, LayerNormalization, Embedding and registered custom layers; build other layers in Keras and load the file",
                )
            })?;
            let mut probe_shape = vec![1];
            probe_shape.extend(&input);
            let out = engine.predict(&[Tensor::zeros(&probe_shape)?])?;
            shape = out.first().map(|t| t.shape()[1..].to_vec()).unwrap_or_default();
        }
        let config_json = sequential_json(&self.name, &input, &entries);
        Model::from_parts(config_json, weights, registry)
    }
}

fn sequential_json(name: &str, input: &[usize], layers: &[Json]) -> Json {
    let shape = Json::array(std::iter::once(Json::Null).chain(input.iter().map(|&d| Json::from(d as i64))));
    Json::object([
        ("module", Json::from("keras")),
        ("class_name", Json::from("Sequential")),
        (
            "config",
            Json::object([
                ("name", Json::from(name)),
                ("trainable", Json::from(true)),
                ("dtype", dtype_policy()),
                ("layers", Json::array(layers.iter().cloned())),
                ("build_input_shape", shape.clone()),
            ]),
        ),
        ("registered_name", Json::Null),
        ("build_config", Json::object([("input_shape", shape)])),
    ])
}

/// A symbolic tensor of a [`Functional`] definition (Keras's `KerasTensor`): which layer made it,
/// and its shape without the batch dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    layer: String,
    node_index: usize,
    shape: Vec<usize>,
}

/// A layer added to a [`Functional`] graph, to be called (possibly several times) with
/// [`Functional::apply`].
#[derive(Clone, Debug)]
pub struct SharedLayer {
    name: String,
    class: String,
}

impl SharedLayer {
    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Node {
    /// The shape without the batch dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// The layer that produced it.
    pub fn layer(&self) -> &str {
        &self.layer
    }
    fn keras_tensor(&self) -> Json {
        Json::object([
            ("class_name", Json::from("__keras_tensor__")),
            (
                "config",
                Json::object([
                    ("shape", batch_shape(&self.shape)),
                    ("dtype", Json::from("float32")),
                    (
                        "keras_history",
                        Json::array([Json::from(self.layer.as_str()), Json::from(0i64), Json::from(0i64)]),
                    ),
                ]),
            ),
        ])
    }
    fn history(&self) -> Json {
        Json::array([Json::from(self.layer.as_str()), Json::from(self.node_index as i64), Json::from(0i64)])
    }
}

fn batch_shape(s: &[usize]) -> Json {
    Json::array(std::iter::once(Json::Null).chain(s.iter().map(|&d| Json::from(d as i64))))
}

/// A graph of layers (Keras's functional API): inputs, layers called on nodes, outputs.
///
/// ```no_run
/// use strata_model::{Functional, layers::{Builtin, Dense}};
/// let mut f = Functional::new("two_towers");
/// let a = f.input("a", &[8]);
/// let b = f.input("b", &[8]);
/// let ha = f.call(Dense::new(16).activation("relu"), &[&a])?;
/// let hb = f.call(Dense::new(16).activation("relu"), &[&b])?;
/// let h = f.call(Builtin::new("Concatenate").set("axis", -1i64), &[&ha, &hb])?;
/// let y = f.call(Dense::new(1), &[&h])?;
/// let model = f.build(&[&a, &b], &[&y])?;
/// # Ok::<(), strata_model::Error>(())
/// ```
/// A layer called twice shares its weights: add it with [`Functional::layer`] and call it with
/// [`Functional::apply`]. A layer's output shape is found by running the graph so far on a batch
/// of one.
pub struct Functional {
    name: String,
    registry: Registry,
    namer: ContainerNamer,
    layers: Vec<Json>,
    /// Layers added with [`Functional::layer`] and not called yet.
    pending: Vec<(String, Json)>,
    inputs: Vec<Node>,
    weights: Vec<LayerWeights>,
}

impl Functional {
    /// An empty graph named `name`.
    pub fn new(name: &str) -> Functional {
        Functional::with_registry(name, &Registry::new())
    }

    /// An empty graph whose custom layers come from `registry`.
    pub fn with_registry(name: &str, registry: &Registry) -> Functional {
        Functional {
            name: name.to_string(),
            registry: registry.clone(),
            namer: ContainerNamer::new(),
            layers: Vec::new(),
            pending: Vec::new(),
            inputs: Vec::new(),
            weights: Vec::new(),
        }
    }

    /// `keras.Input(shape, name=name)`.
    pub fn input(&mut self, name: &str, shape: &[usize]) -> Node {
        let name = if name.is_empty() { self.namer.next("InputLayer") } else { name.to_string() };
        self.layers.push(Json::object([
            ("module", Json::from("keras.layers")),
            ("class_name", Json::from("InputLayer")),
            (
                "config",
                Json::object([
                    ("batch_shape", batch_shape(shape)),
                    ("dtype", Json::from("float32")),
                    ("sparse", Json::from(false)),
                    ("ragged", Json::from(false)),
                    ("name", Json::from(name.as_str())),
                    ("optional", Json::from(false)),
                ]),
            ),
            ("registered_name", Json::Null),
            ("name", Json::from(name.as_str())),
            ("inbound_nodes", Json::array([])),
        ]));
        let node = Node { layer: name, node_index: 0, shape: shape.to_vec() };
        self.inputs.push(node.clone());
        node
    }

    /// Calls `layer` on `inputs` (one node, or several for merge layers such as `Add`), returning
    /// its output node.
    pub fn call(&mut self, layer: impl LayerDef, inputs: &[&Node]) -> Result<Node> {
        let handle = self.layer(layer)?;
        self.apply(&handle, inputs)
    }

    /// Adds a layer without calling it; call it (once or several times, sharing its weights as a
    /// Keras layer object called twice does) with [`Functional::apply`].
    pub fn layer(&mut self, layer: impl LayerDef) -> Result<SharedLayer> {
        let mut obj = layer.keras_object()?;
        let class = obj.get("class_name").and_then(Json::as_str).unwrap_or_default().to_string();
        let name = match obj.get("config").and_then(|c| c.get("name")).and_then(Json::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => self.namer.next(&class),
        };
        if self.layers.iter().any(|l| l.get("name").and_then(Json::as_str) == Some(name.as_str())) {
            return Err(Error::invalid(
                format!("two layers are named `{name}`"),
                "give each layer its own name (Keras requires unique names in a model)",
            ));
        }
        if let Some(o) = obj.as_object_mut() {
            if let Some(cfg) = o.get_mut("config").and_then(Json::as_object_mut) {
                cfg.insert("name", Json::from(name.as_str()));
            }
            o.insert("name", Json::from(name.as_str()));
            o.insert("inbound_nodes", Json::array([]));
        }
        self.pending.push((name.clone(), obj));
        Ok(SharedLayer { name, class })
    }

    /// Calls a layer added with [`Functional::layer`] on `inputs`: its first call builds it (and
    /// creates its weights), later calls reuse them.
    pub fn apply(&mut self, layer: &SharedLayer, inputs: &[&Node]) -> Result<Node> {
        let SharedLayer { name, class } = layer;
        if inputs.is_empty() {
            return Err(Error::invalid(format!("layer `{name}` was called on no inputs"), "pass the nodes it takes"));
        }
        let args = if inputs.len() == 1 {
            Json::array([inputs[0].keras_tensor()])
        } else {
            Json::array([Json::array(inputs.iter().map(|n| n.keras_tensor()))])
        };
        let node_json = Json::object([("args", args), ("kwargs", Json::object(Vec::<(&str, Json)>::new()))]);
        let first = if let Some(i) = self.pending.iter().position(|(n, _)| n == name) {
            // first call: the layer joins the graph, built on these inputs
            let (_, mut obj) = self.pending.remove(i);
            let build_input = if inputs.len() == 1 {
                batch_shape(&inputs[0].shape)
            } else {
                Json::array(inputs.iter().map(|n| batch_shape(&n.shape)))
            };
            if let Some(o) = obj.as_object_mut() {
                o.insert("build_config", Json::object([("input_shape", build_input)]));
            }
            self.layers.push(obj);
            true
        } else {
            false
        };
        let Some(pos) = self.layers.iter().position(|l| l.get("name").and_then(Json::as_str) == Some(name.as_str()))
        else {
            return Err(Error::invalid(
                format!("layer `{name}` is not part of this graph"),
                "add it with Functional::layer",
            ));
        };
        let node_index = {
            let Some(nodes) = self.layers[pos].get_mut("inbound_nodes").and_then(Json::as_array_mut) else {
                return Err(Error::invalid(format!("layer `{name}` has no call list"), "please report this"));
            };
            nodes.push(node_json);
            nodes.len() - 1
        };
        let node = Node { layer: name.clone(), node_index, shape: Vec::new() };
        let undo = |f: &mut Functional| {
            if let Some(nodes) = f.layers[pos].get_mut("inbound_nodes").and_then(Json::as_array_mut) {
                nodes.pop();
            }
            if first {
                let obj = f.layers.remove(pos);
                f.pending.push((name.clone(), obj));
            }
        };
        let config_json = self.config_json(&self.inputs.iter().collect::<Vec<_>>(), &[&node]);
        let config = match ModelConfig::parse(&config_json) {
            Ok(c) => c,
            Err(e) => {
                undo(self);
                return Err(Error::invalid(
                    format!("the config of layer `{name}` ({class}) does not parse: {e}"),
                    "check its arguments and inputs",
                ));
            }
        };
        if first {
            let in_shapes: Vec<Shape> = inputs
                .iter()
                .map(|n| std::iter::once(None).chain(n.shape.iter().map(|&d| Some(d))).collect())
                .collect();
            let Some(lc) = config.layers.iter().find(|l| &l.name == name) else {
                return Err(Error::invalid(
                    format!("layer `{name}` vanished from its own config"),
                    "please report this",
                ));
            };
            let (names, values, trainable) =
                fresh_weights(&config, lc, &in_shapes, &self.registry, &format!("Functional `{}`", self.name))?;
            if !values.is_empty() {
                self.weights.push(LayerWeights {
                    path: name.clone(),
                    class_name: class.clone(),
                    names,
                    values,
                    trainable,
                });
            }
        }
        let engine = crate::model::build_engine(&config, None, None, &self.registry, &self.weights, None).map_err(|e| {
            Error::invalid(
                format!("layer `{name}` ({class}) cannot be built from Rust: {e}"),
                "strata creates fresh weights for Dense, Conv1D/2D, BatchNormalization, LayerNormalization, Embedding and registered custom layers; build other layers in Keras and load the file",
            )
        })?;
        let probes = self
            .inputs
            .iter()
            .map(|n| {
                let mut s = vec![1];
                s.extend(&n.shape);
                Tensor::zeros(&s)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let out = engine.predict(&probes)?;
        let shape = out.first().map(|t| t.shape()[1..].to_vec()).unwrap_or_default();
        Ok(Node { layer: name.clone(), node_index, shape })
    }

    fn config_json(&self, inputs: &[&Node], outputs: &[&Node]) -> Json {
        let io = |nodes: &[&Node]| {
            if nodes.len() == 1 { nodes[0].history() } else { Json::array(nodes.iter().map(|n| n.history())) }
        };
        Json::object([
            ("module", Json::from("keras.src.models.functional")),
            ("class_name", Json::from("Functional")),
            (
                "config",
                Json::object([
                    ("name", Json::from(self.name.as_str())),
                    ("trainable", Json::from(true)),
                    ("layers", Json::array(self.layers.iter().cloned())),
                    ("input_layers", io(inputs)),
                    ("output_layers", io(outputs)),
                ]),
            ),
            ("registered_name", Json::from("Functional")),
            ("build_config", Json::object([("input_shape", Json::Null)])),
        ])
    }

    /// The model from `inputs` to `outputs` (`keras.Model(inputs, outputs)`).
    pub fn build(self, inputs: &[&Node], outputs: &[&Node]) -> Result<Model> {
        if outputs.is_empty() || inputs.is_empty() {
            return Err(Error::invalid("a model needs at least one input and one output", "pass the nodes"));
        }
        let config_json = self.config_json(inputs, outputs);
        Model::from_parts(config_json, self.weights, &self.registry)
    }
}
