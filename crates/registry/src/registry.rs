//! The [`Registry`]: custom layer classes and functions under the names Keras writes, looked up
//! with Keras's rules (`keras/src/saving/object_registration.py`, `serialization_lib.py`).

use crate::config::from_config;
use crate::error::Error;
use crate::layer::{Adapter, CustomLayer, KerasClass, shapes_of};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use strata_format::config::LayerConfig;
use strata_layers::{BuildCtx, Layer, LayerResolver};
use strata_tensor::Tensor;

/// What kind of object a registered function (or a missing object) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A layer class.
    Layer,
    /// An activation function.
    Activation,
    /// A loss function.
    Loss,
    /// A metric function.
    Metric,
    /// An initializer.
    Initializer,
    /// A regularizer.
    Regularizer,
    /// A constraint.
    Constraint,
    /// Any other object (found in a config where its kind cannot be told).
    Object,
}

impl Kind {
    /// The word used in messages (`loss function`).
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Layer => "layer class",
            Kind::Activation => "activation function",
            Kind::Loss => "loss function",
            Kind::Metric => "metric function",
            Kind::Initializer => "initializer",
            Kind::Regularizer => "regularizer",
            Kind::Constraint => "constraint",
            Kind::Object => "object",
        }
    }
    /// The variant's Rust spelling (`Kind::Loss`), for fix lines.
    pub fn rust(self) -> &'static str {
        match self {
            Kind::Layer => "Kind::Layer",
            Kind::Activation => "Kind::Activation",
            Kind::Loss => "Kind::Loss",
            Kind::Metric => "Kind::Metric",
            Kind::Initializer => "Kind::Initializer",
            Kind::Regularizer => "Kind::Regularizer",
            Kind::Constraint => "Kind::Constraint",
            Kind::Object => "Kind::Object",
        }
    }
}

type Factory = dyn Fn(&LayerConfig, Vec<Tensor>, &BuildCtx<'_>) -> strata_layers::Result<Box<dyn Layer>> + Send + Sync;
type SpecsFn = dyn Fn(&LayerConfig, &[crate::layer::Shape]) -> crate::Result<crate::layer::WeightBuilder> + Send + Sync;

/// A loss or metric function written in Rust: `(y_true, y_pred) -> per-sample values`, as a
/// Python loss function returns them (Keras reduces them with the sample weights). Written with
/// [`Tensor`] ops, it is differentiated through the tape like any layer.
pub type LossFn = Arc<dyn Fn(&Tensor, &Tensor) -> strata_tensor::Result<Tensor> + Send + Sync>;

/// A function of one tensor written in Rust: an activation (`x -> y`), a regularizer
/// (`weight -> scalar penalty`, differentiated through the tape), or a constraint
/// (`weight -> projected weight`, applied after each update).
pub type TensorFn = Arc<dyn Fn(&Tensor) -> strata_tensor::Result<Tensor> + Send + Sync>;

/// An initializer written in Rust: `shape -> fresh value`.
pub type InitializerFn = Arc<dyn Fn(&[usize]) -> strata_tensor::Result<Tensor> + Send + Sync>;

/// One registered layer class.
#[derive(Clone)]
pub struct LayerEntry {
    /// The key it is found by (`my_custom_layers>CustomDense`, or a `custom_objects`-style name).
    pub key: String,
    /// The Rust type (`my_crate::CustomDense`).
    pub rust_type: &'static str,
    factory: Arc<Factory>,
    specs: Arc<SpecsFn>,
}

impl LayerEntry {
    /// The variables the registered type's `build` creates for a layer with this config and
    /// these input shapes (names, shapes, initializers, trainable), without loading weights.
    pub fn weight_specs(
        &self,
        layer: &LayerConfig,
        input_shapes: &[crate::layer::Shape],
    ) -> crate::Result<crate::layer::WeightBuilder> {
        (self.specs)(layer, input_shapes)
    }
}

impl fmt::Debug for LayerEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerEntry").field("key", &self.key).field("rust_type", &self.rust_type).finish()
    }
}

/// One registered function (loss, metric, activation, ...), stored type-erased so that other
/// crates (strata-train) can take it back with its concrete type ([`Registry::get_function`]).
#[derive(Clone)]
pub struct FunctionEntry {
    /// The key (`my_custom_losses>custom_loss`).
    pub key: String,
    /// Its kind.
    pub kind: Kind,
    value: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for FunctionEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionEntry").field("key", &self.key).field("kind", &self.kind).finish()
    }
}

/// Custom objects a model may use, by the name Keras writes (see the crate docs).
///
/// Like Keras's `custom_objects` merged with the global registry: one namespace of names;
/// a later registration under the same name replaces the earlier one.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    layers: BTreeMap<String, LayerEntry>,
    functions: BTreeMap<String, FunctionEntry>,
}

impl Registry {
    /// An empty registry: only Keras's built-in objects (which strata always knows) resolve.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The registry of Keras's built-in objects alone: built-in layers, activations, losses and
    /// metrics resolve through the engine without registration, as in Keras. Same as
    /// [`Registry::new`]; add custom objects to it.
    pub fn builtin() -> Registry {
        Registry::default()
    }

    /// Registers a custom layer under its registered name `package>Name`
    /// (`#[derive(KerasLayer)] #[keras(package = "...")]`), like the Python decorator.
    pub fn layer<T>(self) -> Registry
    where
        T: CustomLayer + KerasClass + Serialize + DeserializeOwned,
    {
        let key = T::registered_name();
        self.layer_as::<T>(&key)
    }

    /// Registers a custom layer under an explicit name, like Keras's
    /// `custom_objects={"CustomDense": CustomDense}`: use the name the file holds (the bare class
    /// name for classes that were not registered when saved, `package>Name` otherwise).
    pub fn layer_as<T>(mut self, name: &str) -> Registry
    where
        T: CustomLayer + Serialize + DeserializeOwned,
    {
        let registered = name.to_string();
        let rust_type = std::any::type_name::<T>();
        let factory =
            move |l: &LayerConfig, w: Vec<Tensor>, _ctx: &BuildCtx<'_>| build_custom::<T>(l, w, &registered, rust_type);
        let specs =
            move |l: &LayerConfig, shapes: &[crate::layer::Shape]| -> crate::Result<crate::layer::WeightBuilder> {
                let (mut value, _) = from_config::<T>(&l.config).map_err(|problem| {
                    Error::layer(format!("the config of `{}` does not fit `{rust_type}`: {problem}", l.name))
                })?;
                let mut b = crate::layer::WeightBuilder::default();
                value.build(shapes, &mut b)?;
                Ok(b)
            };
        self.layers.insert(
            name.to_string(),
            LayerEntry { key: name.to_string(), rust_type, factory: Arc::new(factory), specs: Arc::new(specs) },
        );
        self
    }

    /// Registers a function under `package>name` (`registry.function("my_custom_losses",
    /// "custom_loss", Kind::Loss, custom_loss)`), like decorating a Python function. `f` is stored
    /// as given (any `Send + Sync` value, usually a `fn` pointer or closure); the crate that calls
    /// it takes it back with [`Registry::get_function`] and the same type.
    pub fn function<F: Any + Send + Sync>(self, package: &str, name: &str, kind: Kind, f: F) -> Registry {
        self.function_as(&format!("{package}>{name}"), kind, f)
    }

    /// Registers a function under an explicit name (`custom_objects`-style).
    pub fn function_as<F: Any + Send + Sync>(mut self, name: &str, kind: Kind, f: F) -> Registry {
        self.functions.insert(name.to_string(), FunctionEntry { key: name.to_string(), kind, value: Arc::new(f) });
        self
    }

    /// Registers a loss function under `package>name` (Python's
    /// `@register_keras_serializable(package)` on a `def name(y_true, y_pred)`).
    pub fn loss(
        self,
        package: &str,
        name: &str,
        f: impl Fn(&Tensor, &Tensor) -> strata_tensor::Result<Tensor> + Send + Sync + 'static,
    ) -> Registry {
        let f: LossFn = Arc::new(f);
        self.function(package, name, Kind::Loss, f)
    }

    /// Registers a metric function under `package>name` (same signature as [`Registry::loss`]).
    pub fn metric(
        self,
        package: &str,
        name: &str,
        f: impl Fn(&Tensor, &Tensor) -> strata_tensor::Result<Tensor> + Send + Sync + 'static,
    ) -> Registry {
        let f: LossFn = Arc::new(f);
        self.function(package, name, Kind::Metric, f)
    }

    /// The layer class registered under `name`.
    /// Registers a loss class (a [`crate::CustomLoss`] with its config in its fields) under its
    /// derived `package>Name`, like `@register_keras_serializable` on a `keras.losses.Loss` subclass.
    pub fn loss_class<T>(self) -> Registry
    where
        T: crate::CustomLoss + KerasClass + Serialize + DeserializeOwned,
    {
        let key = T::registered_name();
        let f: crate::LossFactory = crate::loss::factory::<T>();
        self.function_as(&key, Kind::Loss, f)
    }

    /// Registers a metric class (a [`crate::CustomMetric`]: fields = config + state) under its
    /// derived `package>Name`, like `@register_keras_serializable` on a `keras.metrics.Metric`.
    pub fn metric_class<T>(self) -> Registry
    where
        T: crate::CustomMetric + KerasClass + Serialize + DeserializeOwned,
    {
        let key = T::registered_name();
        let f: crate::MetricFactory = crate::loss::metric_factory::<T>();
        self.function_as(&key, Kind::Metric, f)
    }

    /// Registers an activation function under `package>name` (`activation="package>name"`).
    pub fn activation(
        self,
        package: &str,
        name: &str,
        f: impl Fn(&Tensor) -> strata_tensor::Result<Tensor> + Send + Sync + 'static,
    ) -> Registry {
        self.tensor_fn(package, name, Kind::Activation, Arc::new(f))
    }

    /// Registers a regularizer function (`weight -> scalar penalty`) under `package>name`.
    pub fn regularizer(
        self,
        package: &str,
        name: &str,
        f: impl Fn(&Tensor) -> strata_tensor::Result<Tensor> + Send + Sync + 'static,
    ) -> Registry {
        self.tensor_fn(package, name, Kind::Regularizer, Arc::new(f))
    }

    /// Registers a constraint function (`weight -> constrained weight`) under `package>name`.
    pub fn constraint(
        self,
        package: &str,
        name: &str,
        f: impl Fn(&Tensor) -> strata_tensor::Result<Tensor> + Send + Sync + 'static,
    ) -> Registry {
        self.tensor_fn(package, name, Kind::Constraint, Arc::new(f))
    }

    /// Stores a one-tensor function under `package>name` as a [`TensorFn`] (what the engine and the
    /// fit loop look up for activations, regularizers and constraints).
    fn tensor_fn(self, package: &str, name: &str, kind: Kind, f: TensorFn) -> Registry {
        self.function(package, name, kind, f)
    }

    /// Registers an initializer function (`shape -> value`) under `package>name`.
    pub fn initializer(
        self,
        package: &str,
        name: &str,
        f: impl Fn(&[usize]) -> strata_tensor::Result<Tensor> + Send + Sync + 'static,
    ) -> Registry {
        let f: InitializerFn = Arc::new(f);
        self.function(package, name, Kind::Initializer, f)
    }

    /// The registered function a config value names, with its kind: a `"package>name"` string,
    /// or Keras's `{"class_name": "function", "config": "package>name"}` object.
    pub fn function_named(&self, value: &strata_format::json::Json) -> Option<&FunctionEntry> {
        use strata_format::json::Json;
        let name = match value {
            Json::String(s) => s.as_str(),
            j if j.get("class_name").and_then(Json::as_str) == Some("function") => {
                j.get("config").and_then(Json::as_str)?
            }
            j => j
                .get("registered_name")
                .and_then(Json::as_str)
                .or_else(|| j.get("class_name").and_then(Json::as_str))?,
        };
        self.function_entry(name)
    }

    pub fn layer_entry(&self, name: &str) -> Option<&LayerEntry> {
        self.layers.get(name)
    }

    /// The layer class a config names, by Keras's rule: `registered_name` when the file has one
    /// (Keras 3 `.keras`/JSON), else `class_name` (legacy `.h5`, where `class_name` is the
    /// registered name, e.g. `my_custom_layers>CustomDense`).
    pub fn layer_for(&self, layer: &LayerConfig) -> Option<&LayerEntry> {
        self.layers.get(layer_key(layer))
    }

    /// The function registered under `name`. A name without `>` also matches a key ending in
    /// `>name` (Keras >= 3.7's fallback for files from Keras <= 3.6, which saved bare names).
    pub fn function_entry(&self, name: &str) -> Option<&FunctionEntry> {
        self.functions.get(name).or_else(|| {
            if name.contains('>') {
                return None;
            }
            let suffix = format!(">{name}");
            self.functions.values().find(|e| e.key.ends_with(&suffix))
        })
    }

    /// The function registered under `name` (same rules as [`Registry::function_entry`]), if it
    /// was registered with type `F`.
    pub fn get_function<F: Any + Send + Sync>(&self, name: &str) -> Option<&F> {
        self.function_entry(name)?.value.downcast_ref::<F>()
    }

    /// Every registered layer key and function key, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.layers.keys().chain(self.functions.keys()).map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

/// The name a layer config is looked up by (see [`Registry::layer_for`]).
pub fn layer_key(layer: &LayerConfig) -> &str {
    layer.registered_name.as_deref().unwrap_or(&layer.class_name)
}

fn build_custom<T: CustomLayer + DeserializeOwned>(
    l: &LayerConfig,
    w: Vec<Tensor>,
    registered: &str,
    rust_type: &str,
) -> strata_layers::Result<Box<dyn Layer>> {
    let (value, base) = from_config::<T>(&l.config).map_err(|problem| strata_layers::Error::Config {
        layer: l.name.clone(),
        key: "config".into(),
        problem: format!(
            "does not fit the Rust type `{rust_type}` registered as `{registered}`: {problem}; make the struct's fields match the config keys Keras wrote"
        ),
    })?;
    let name = if base.name.is_empty() { l.name.clone() } else { base.name };
    let adapter = Adapter::new(name, l.class_name.clone(), registered.to_string(), value, w);
    // build now when the file records the input shape (Keras 3 `build_config`); else at the first call
    if let Some(shapes) = l.build_config.as_ref().and_then(|b| b.get("input_shape")).and_then(shapes_of) {
        adapter.ensure(&shapes).map_err(|e| strata_layers::Error::Config {
            layer: l.name.clone(),
            key: "build_config".into(),
            problem: match e {
                Error::Weights { problem, .. } => format!("builds `{registered}` (Rust `{rust_type}`): {problem}"),
                other => other.to_string(),
            },
        })?;
    }
    Ok(Box::new(adapter))
}

impl LayerResolver for Registry {
    fn resolves(&self, layer: &LayerConfig) -> bool {
        self.layer_for(layer).is_some()
    }
    fn activation(&self, name: &str) -> Option<strata_layers::activation::ActivationFn> {
        let e = self.function_entry(name).filter(|e| e.kind == Kind::Activation)?;
        self.get_function::<TensorFn>(&e.key).cloned()
    }
    fn build(
        &self,
        layer: &LayerConfig,
        weights: Vec<Tensor>,
        ctx: &BuildCtx<'_>,
    ) -> strata_layers::Result<Box<dyn Layer>> {
        match self.layer_for(layer) {
            Some(e) => (e.factory)(layer, weights, ctx),
            None => Err(strata_layers::Error::Unsupported(vec![strata_layers::Unsupported {
                layer: layer.name.clone(),
                class: layer.class_name.clone(),
            }])),
        }
    }
}
