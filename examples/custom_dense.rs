//! The reference custom layer: `CustomDense(units)`, `x @ w + b`, registered as
//! `my_custom_layers>CustomDense` exactly as the Python decorator registers it.
//!
//! ```text
//! cargo run -p strata-registry --example custom_dense -- fixtures/keras3/custom_layer/model.keras
//! ```
//! Loads the model with CustomDense registered and predicts on zeros; then loads it again with an
//! empty registry to show the missing-object message.

use serde::{Deserialize, Serialize};
use strata_registry::{CustomLayer, Error, KerasLayer, Registry, Result, Shape, WeightBuilder, Weights};
use strata_tensor::Tensor;

/// `@keras.saving.register_keras_serializable(package="my_custom_layers") class CustomDense(Layer)`
#[derive(KerasLayer, Serialize, Deserialize)]
#[keras(package = "my_custom_layers")]
pub struct CustomDense {
    /// Output features; the config's `"units"`.
    pub units: usize,
}

impl CustomLayer for CustomDense {
    fn build(&mut self, input_shapes: &[Shape], weights: &mut WeightBuilder) -> Result<()> {
        let input_dim = input_shapes
            .first()
            .and_then(|s| s.last().copied().flatten())
            .ok_or_else(|| Error::layer("CustomDense needs a known last input dimension"))?;
        weights.add_weight("w", &[input_dim, self.units], "random_normal", true);
        weights.add_weight("b", &[self.units], "zeros", true);
        Ok(())
    }

    fn call(&self, inputs: &[Tensor], weights: &Weights, _training: bool) -> Result<Vec<Tensor>> {
        let x = inputs.first().ok_or_else(|| Error::layer("CustomDense takes one input"))?;
        Ok(vec![x.matmul(weights.get("w")?)?.add(weights.get("b")?)?])
    }

    fn compute_output_shape(&self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let mut out = input_shapes.first().cloned().ok_or_else(|| Error::layer("CustomDense takes one input"))?;
        if let Some(last) = out.last_mut() {
            *last = Some(self.units);
        }
        Ok(vec![out])
    }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "fixtures/keras3/custom_layer/model.keras".into());
    let registry = Registry::new().layer::<CustomDense>();
    let model = strata_registry::load_model(&path, &registry)?;
    let y = model.predict(&[Tensor::ones(&[2, 10])?])?;
    println!(
        "loaded {path} with my_custom_layers>CustomDense registered; predict(ones[2, 10]) = {:?}",
        y[0].as_slice()
    );
    match strata_registry::load_model(&path, &Registry::new()) {
        Ok(_) => println!("unexpected: loaded without the registration"),
        Err(e) => println!("\nwithout registering it:\n{e}"),
    }
    Ok(())
}
