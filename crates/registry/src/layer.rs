//! The user-facing custom layer: [`CustomLayer`] (build / call / compute_output_shape),
//! [`WeightBuilder::add_weight`], [`Weights`], and the adapter that runs one inside the engine.

use crate::error::{Error, Result};
use std::sync::{Mutex, OnceLock};
use strata_tensor::Tensor;

/// A Keras shape: `None` for an unknown dimension (the batch).
pub type Shape = Vec<Option<usize>>;

/// The registered name of a Rust type, as `@keras.saving.register_keras_serializable(package,
/// name)` records it. Implemented by `#[derive(KerasLayer)]` from `#[keras(package = "...",
/// name = "...")]` (package default `"Custom"`, name default the struct's name).
pub trait KerasClass {
    /// The package (`my_custom_layers`); empty for `#[keras(unregistered)]`.
    const PACKAGE: &'static str;
    /// The class name (`CustomDense`).
    const NAME: &'static str;
    /// `package>Name`, exactly as Keras writes `registered_name` (the bare `Name` for a type
    /// derived with `#[keras(unregistered)]`, as Keras writes a class it never registered).
    fn registered_name() -> String {
        if Self::PACKAGE.is_empty() { Self::NAME.to_string() } else { format!("{}>{}", Self::PACKAGE, Self::NAME) }
    }
}

/// A custom Keras layer written in Rust.
///
/// The struct's own fields are its config (through serde): `units: usize` <-> `"units": 32`.
/// `name`, `trainable` and `dtype` are handled by the framework. `call` is written with plain
/// [`Tensor`] ops; weights are read from [`Weights`] by the names given to
/// [`WeightBuilder::add_weight`].
pub trait CustomLayer: Send + Sync + 'static {
    /// Creates the layer's weights for these input shapes (one per input), like Keras's
    /// `build(input_shape)`. Call [`WeightBuilder::add_weight`] once per variable, in the order
    /// the Python layer creates them (that is the order Keras stores them in).
    fn build(&mut self, input_shapes: &[Shape], weights: &mut WeightBuilder) -> Result<()>;
    /// Runs the layer: `inputs` one per input, `weights` those created in `build` (loaded from
    /// the file), `training` the mode. Returns one tensor per output.
    fn call(&self, inputs: &[Tensor], weights: &Weights, training: bool) -> Result<Vec<Tensor>>;
    /// The output shapes for these input shapes (Keras's `compute_output_shape`).
    fn compute_output_shape(&self, input_shapes: &[Shape]) -> Result<Vec<Shape>>;
}

/// How a weight's first value is drawn when it is not loaded from a file (Keras initializer names).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Initializer {
    /// `zeros`
    Zeros,
    /// `ones`
    Ones,
    /// `Constant(value)`
    Constant(f32),
    /// `random_normal` (Keras default mean 0, stddev 0.05)
    RandomNormal { mean: f32, stddev: f32 },
    /// `random_uniform` (Keras default -0.05..0.05)
    RandomUniform { min: f32, max: f32 },
    /// `glorot_uniform`: uniform in ±sqrt(6 / (fan_in + fan_out))
    GlorotUniform,
    /// Any other name: kept for the config, refused by [`Initializer::sample`].
    Named(String),
}

impl From<&str> for Initializer {
    fn from(name: &str) -> Initializer {
        match name {
            "zeros" | "Zeros" => Initializer::Zeros,
            "ones" | "Ones" => Initializer::Ones,
            "random_normal" | "RandomNormal" => Initializer::RandomNormal { mean: 0.0, stddev: 0.05 },
            "random_uniform" | "RandomUniform" => Initializer::RandomUniform { min: -0.05, max: 0.05 },
            "glorot_uniform" | "GlorotUniform" => Initializer::GlorotUniform,
            other => Initializer::Named(other.to_string()),
        }
    }
}

impl Initializer {
    /// A fresh value of `shape`, drawn with `seed` (a splitmix64 stream: reproducible in strata,
    /// not the numbers Keras's own RNG would draw).
    pub fn sample(&self, shape: &[usize], seed: u64) -> Result<Tensor> {
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| Error::layer(format!("weight shape {shape:?} has too many elements")))?;
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            // 53 random bits -> [0, 1)
            (z >> 11) as f64 / (1u64 << 53) as f64
        };
        let uniform = |lo: f32, hi: f32, next: &mut dyn FnMut() -> f64| {
            (0..n).map(|_| lo + (hi - lo) * next() as f32).collect::<Vec<f32>>()
        };
        let data = match self {
            Initializer::Zeros => vec![0.0; n],
            Initializer::Ones => vec![1.0; n],
            Initializer::Constant(c) => vec![*c; n],
            Initializer::RandomUniform { min, max } => uniform(*min, *max, &mut next),
            Initializer::GlorotUniform => {
                let (fan_in, fan_out) = match shape {
                    [] => (1, 1),
                    [d] => (*d, *d),
                    dims => {
                        let rf: usize = dims.iter().rev().skip(2).product();
                        let i = dims.len() - 2;
                        (dims.get(i).copied().unwrap_or(1) * rf, dims.get(i + 1).copied().unwrap_or(1) * rf)
                    }
                };
                let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32;
                uniform(-limit, limit, &mut next)
            }
            Initializer::RandomNormal { mean, stddev } => (0..n)
                .map(|_| {
                    // Box-Muller
                    let u1 = next().max(f64::MIN_POSITIVE);
                    let u2 = next();
                    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                    mean + stddev * z as f32
                })
                .collect(),
            Initializer::Named(name) => {
                return Err(Error::layer(format!(
                    "initializer `{name}` cannot draw values in strata yet; use zeros, ones, random_normal, random_uniform or glorot_uniform"
                )));
            }
        };
        Ok(Tensor::from_vec(shape, data)?)
    }
}

/// One variable created by `build`.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightSpec {
    /// The name given to `add_weight` (`w`); legacy `.h5` stores it as `<layer>/<name>:0`.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// How a fresh value is drawn.
    pub initializer: Initializer,
    /// Whether training updates it.
    pub trainable: bool,
}

/// Collects the variables a layer's `build` creates (Keras's `self.add_weight`).
#[derive(Debug, Default)]
pub struct WeightBuilder {
    specs: Vec<WeightSpec>,
}

impl WeightBuilder {
    /// Adds a variable; returns its index in creation order.
    pub fn add_weight(
        &mut self,
        name: &str,
        shape: &[usize],
        initializer: impl Into<Initializer>,
        trainable: bool,
    ) -> usize {
        self.specs.push(WeightSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
            initializer: initializer.into(),
            trainable,
        });
        self.specs.len() - 1
    }

    /// The variables in creation order.
    pub fn specs(&self) -> &[WeightSpec] {
        &self.specs
    }

    /// Indices in Keras's storage order: trainable variables first, then non-trainable ones, each
    /// in creation order (`layer.weights`, which both `vars/0..N` and legacy `.h5` follow).
    pub fn keras_order(&self) -> Vec<usize> {
        let (t, nt): (Vec<usize>, Vec<usize>) = (0..self.specs.len()).partition(|&i| self.specs[i].trainable);
        t.into_iter().chain(nt).collect()
    }
}

/// A built layer's variables, in creation order, found by the names given to `add_weight`.
#[derive(Debug, Clone)]
pub struct Weights {
    specs: Vec<WeightSpec>,
    values: Vec<Tensor>,
}

impl Weights {
    /// The variable created as `name`.
    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.specs.iter().position(|s| s.name == name).and_then(|i| self.values.get(i)).ok_or_else(|| {
            let known: Vec<&str> = self.specs.iter().map(|s| s.name.as_str()).collect();
            Error::layer(format!("no weight named `{name}`; build created {known:?}"))
        })
    }
    /// The variable created `index`-th.
    pub fn at(&self, index: usize) -> Result<&Tensor> {
        self.values
            .get(index)
            .ok_or_else(|| Error::layer(format!("no weight at index {index} ({} created)", self.values.len())))
    }
    /// The variables' specs, in creation order.
    pub fn specs(&self) -> &[WeightSpec] {
        &self.specs
    }
    /// The values, in creation order.
    pub fn values(&self) -> &[Tensor] {
        &self.values
    }
    /// The values in Keras's storage order (trainable first), for writers and optimizers.
    pub fn keras_ordered(&self) -> Vec<(&WeightSpec, &Tensor)> {
        let b = WeightBuilder { specs: self.specs.clone() };
        b.keras_order().into_iter().filter_map(|i| Some((self.specs.get(i)?, self.values.get(i)?))).collect()
    }

    /// Binds stored tensors (Keras order) to the specs a build created, checking count and shapes.
    /// With no stored tensors at all, fresh values are drawn from the initializers (`seed`).
    pub fn bind(builder: WeightBuilder, stored: &[Tensor], seed: u64) -> std::result::Result<Weights, String> {
        let order = builder.keras_order();
        let specs = builder.specs;
        if stored.is_empty() && !specs.is_empty() {
            let values = specs
                .iter()
                .enumerate()
                .map(|(i, s)| s.initializer.sample(&s.shape, seed.wrapping_add(i as u64)).map_err(|e| e.to_string()))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            return Ok(Weights { specs, values });
        }
        let describe = |s: &WeightSpec| format!("{} {:?}", s.name, s.shape);
        if stored.len() != specs.len() {
            let want: Vec<String> = order.iter().filter_map(|&i| specs.get(i)).map(describe).collect();
            let got: Vec<Vec<usize>> = stored.iter().map(|t| t.shape().to_vec()).collect();
            return Err(format!(
                "build created {} weight(s) [{}] but the file stores {} with shapes {got:?}; make `build` call add_weight once per variable the Python layer creates, in the same order",
                specs.len(),
                want.join(", "),
                stored.len()
            ));
        }
        let mut values: Vec<Option<Tensor>> = vec![None; specs.len()];
        for (&i, t) in order.iter().zip(stored) {
            let Some(s) = specs.get(i) else { continue };
            if t.shape() != s.shape.as_slice() {
                return Err(format!(
                    "weight `{}` was built with shape {:?} but the file stores shape {:?}; check `build`'s shapes against the Python layer",
                    s.name,
                    s.shape,
                    t.shape()
                ));
            }
            if let Some(slot) = values.get_mut(i) {
                *slot = Some(t.clone());
            }
        }
        let values = values.into_iter().collect::<Option<Vec<_>>>().ok_or("internal: a weight was not bound")?;
        Ok(Weights { specs, values })
    }
}

/// Runs a [`CustomLayer`] inside the engine: built from the config's `build_config` when the file
/// has one, else at the first call from the actual input shapes (the batch dimension unknown).
pub(crate) struct Adapter<T: CustomLayer> {
    name: String,
    class: String,
    registered: String,
    unbuilt: Mutex<Option<(T, Vec<Tensor>)>>,
    built: OnceLock<(T, Weights)>,
}

/// Keras's `build_config.input_shape`: one shape or a list of shapes.
pub(crate) fn shapes_of(input_shape: &strata_format::json::Json) -> Option<Vec<Shape>> {
    use strata_format::json::Json;
    let one = |j: &Json| -> Option<Shape> {
        j.as_array()?.iter().map(|d| if d.is_null() { Some(None) } else { d.as_usize().map(Some) }).collect()
    };
    let arr = input_shape.as_array()?;
    if arr.iter().all(|d| d.is_null() || d.as_number().is_some()) {
        return Some(vec![one(input_shape)?]);
    }
    arr.iter().map(one).collect()
}

impl<T: CustomLayer> Adapter<T> {
    pub(crate) fn new(name: String, class: String, registered: String, layer: T, stored: Vec<Tensor>) -> Self {
        Adapter { name, class, registered, unbuilt: Mutex::new(Some((layer, stored))), built: OnceLock::new() }
    }

    fn weights_err(&self, problem: String) -> Error {
        Error::Weights { layer: self.name.clone(), registered: self.registered.clone(), problem }
    }

    /// Builds (once) for these input shapes and binds the stored weights.
    pub(crate) fn ensure(&self, shapes: &[Shape]) -> Result<&(T, Weights)> {
        if let Some(b) = self.built.get() {
            return Ok(b);
        }
        let mut guard = self.unbuilt.lock().map_err(|_| self.weights_err("an earlier build panicked".into()))?;
        if let Some(b) = self.built.get() {
            return Ok(b);
        }
        let Some((mut layer, stored)) = guard.take() else {
            return Err(self.weights_err("the layer could not be built".into()));
        };
        let mut builder = WeightBuilder::default();
        let bound = layer
            .build(shapes, &mut builder)
            .map_err(|e| self.weights_err(format!("build failed: {e}")))
            .and_then(|()| Weights::bind(builder, &stored, 0).map_err(|p| self.weights_err(p)));
        match bound {
            Ok(w) => {
                let _ = self.built.set((layer, w));
                self.built.get().ok_or_else(|| self.weights_err("the layer could not be built".into()))
            }
            Err(e) => {
                // keep the layer so that a call with other shapes can try again
                *guard = Some((layer, stored));
                Err(e)
            }
        }
    }
}

fn engine_err(layer: &str, class: &str, e: Error) -> strata_layers::Error {
    match e {
        Error::Engine(e) => *e,
        Error::Tensor(source) => strata_layers::Error::Tensor {
            layer: layer.to_string(),
            class: class.to_string(),
            source: Box::new(source),
        },
        other => strata_layers::Error::Graph { model: layer.to_string(), problem: other.to_string() },
    }
}

impl<T: CustomLayer> strata_layers::Layer for Adapter<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &str {
        &self.class
    }
    fn forward(&self, inputs: &[Tensor], training: bool) -> strata_layers::Result<Vec<Tensor>> {
        let shapes: Vec<Shape> = inputs
            .iter()
            .map(|t| t.shape().iter().enumerate().map(|(i, &d)| if i == 0 { None } else { Some(d) }).collect())
            .collect();
        let (layer, weights) = self.ensure(&shapes).map_err(|e| engine_err(&self.name, &self.class, e))?;
        layer.call(inputs, weights, training).map_err(|e| engine_err(&self.name, &self.class, e))
    }
}
