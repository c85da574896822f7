//! The three reference cases of `../shared/docs/keras-facts.md` (appendix 1), as a Rust user writes
//! them; `strata demo` runs them and `examples/reference_*.rs` show them one by one.
//!
//! * (a) [`UnregisteredCustomDense`]: the class saved without registration (registered name
//!   `CustomDense`), loadable only where it is passed in (`custom_objects`, here [`Registry::layer`]).
//! * (b) [`CustomDense`] registered as `my_custom_layers>CustomDense`.
//! * (c) (b) plus the loss function [`custom_loss`] registered as `my_custom_losses>custom_loss`.
//!
//! The Python counterparts (same names, configs and weights layout) are in
//! `tools/oracle/reference.py`.

use serde::{Deserialize, Serialize};
use strata_registry::{CustomLayer, Error, KerasLayer, Registry, Result, Shape, WeightBuilder, Weights};
use strata_tensor::Tensor;

use crate::sequential::Sequential;

/// `x @ w + b`: `build` adds `w` (input_dim x units, `random_normal`) and `b` (units, `zeros`).
fn dense_build(units: usize, input_shapes: &[Shape], weights: &mut WeightBuilder) -> Result<()> {
    let input_dim = input_shapes
        .first()
        .and_then(|s| s.last().copied().flatten())
        .ok_or_else(|| Error::layer("CustomDense needs a known last input dimension"))?;
    weights.add_weight("w", &[input_dim, units], "random_normal", true);
    weights.add_weight("b", &[units], "zeros", true);
    Ok(())
}

fn dense_call(inputs: &[Tensor], weights: &Weights) -> Result<Vec<Tensor>> {
    let x = inputs.first().ok_or_else(|| Error::layer("CustomDense takes one input"))?;
    Ok(vec![x.matmul(weights.get("w")?)?.add(weights.get("b")?)?])
}

fn dense_shape(units: usize, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
    let mut out = input_shapes.first().cloned().ok_or_else(|| Error::layer("CustomDense takes one input"))?;
    if let Some(last) = out.last_mut() {
        *last = Some(units);
    }
    Ok(vec![out])
}

/// Case (b)/(c): `@keras.saving.register_keras_serializable(package="my_custom_layers") class CustomDense`.
#[derive(KerasLayer, Serialize, Deserialize, Clone, Debug)]
#[keras(package = "my_custom_layers")]
pub struct CustomDense {
    /// Output features (`"units"` in the config).
    pub units: usize,
}

impl CustomLayer for CustomDense {
    fn build(&mut self, input_shapes: &[Shape], weights: &mut WeightBuilder) -> Result<()> {
        dense_build(self.units, input_shapes, weights)
    }
    fn call(&self, inputs: &[Tensor], weights: &Weights, _training: bool) -> Result<Vec<Tensor>> {
        dense_call(inputs, weights)
    }
    fn compute_output_shape(&self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        dense_shape(self.units, input_shapes)
    }
}

/// Case (a): the same layer never registered; Keras saves it as plain `CustomDense`.
#[derive(KerasLayer, Serialize, Deserialize, Clone, Debug)]
#[keras(unregistered, name = "CustomDense")]
pub struct UnregisteredCustomDense {
    /// Output features.
    pub units: usize,
}

impl CustomLayer for UnregisteredCustomDense {
    fn build(&mut self, input_shapes: &[Shape], weights: &mut WeightBuilder) -> Result<()> {
        dense_build(self.units, input_shapes, weights)
    }
    fn call(&self, inputs: &[Tensor], weights: &Weights, _training: bool) -> Result<Vec<Tensor>> {
        dense_call(inputs, weights)
    }
    fn compute_output_shape(&self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        dense_shape(self.units, input_shapes)
    }
}

/// Case (c): mean squared error written by hand, `mean((y_true - y_pred)^2, axis=-1)`.
pub fn custom_loss(y_true: &Tensor, y_pred: &Tensor) -> strata_tensor::Result<Tensor> {
    y_pred.sub(y_true)?.square().mean(Some(&[-1]), false)
}

/// Which reference case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// (a) unregistered custom layer.
    A,
    /// (b) registered custom layer.
    B,
    /// (c) registered custom layer and custom loss.
    C,
}

impl Case {
    /// The registry the saving side uses (what the case defines).
    pub fn registry(self) -> Registry {
        match self {
            Case::A => Registry::new().layer::<UnregisteredCustomDense>(),
            Case::B => Registry::new().layer::<CustomDense>(),
            Case::C => Registry::new().layer::<CustomDense>().loss("my_custom_losses", "custom_loss", custom_loss),
        }
    }

    /// The loss the case compiles with.
    pub fn loss(self) -> &'static str {
        match self {
            Case::C => "my_custom_losses>custom_loss",
            _ => "mse",
        }
    }

    /// `Input(10) -> CustomDense(32) -> Dense(1)`.
    pub fn model(self) -> crate::Result<crate::Model> {
        let seq = Sequential::new("sequential").input(&[10]);
        let seq = match self {
            Case::A => seq.add(UnregisteredCustomDense { units: 32 }),
            _ => seq.add(CustomDense { units: 32 }),
        };
        seq.add(crate::layers::Dense::new(1)).build(&self.registry())
    }
}

/// 100 random-normal samples of 10 features and 1 target (seeded).
pub fn seed_data(seed: u64) -> crate::Result<(Tensor, Tensor)> {
    let mut rng = strata_train::initializers::Rng::new(seed);
    let x: Vec<f32> = (0..1000).map(|_| rng.normal() as f32).collect();
    let y: Vec<f32> = (0..100).map(|_| rng.normal() as f32).collect();
    Ok((Tensor::from_vec(&[100, 10], x)?, Tensor::from_vec(&[100, 1], y)?))
}
