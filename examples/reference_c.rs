//! Reference case (c): case (b) plus a custom loss function registered as
//! `my_custom_losses>custom_loss` (mean squared error written by hand). The loss is part of the
//! saved compile config: loading with `compile` needs it registered too.
//!
//! ```text
//! cargo run --release -p strata-model --example reference_c
//! ```

use serde::{Deserialize, Serialize};
use strata_model::{FitOptions, Model, Sequential, layers::Dense};
use strata_registry::{CustomLayer, Error, KerasLayer, Registry, Result, Shape, WeightBuilder, Weights};
use strata_tensor::Tensor;
use strata_train::optimizers::Adam;

/// `x @ w + b`; the struct's fields are its Keras config (`{"units": 32}`).
#[derive(KerasLayer, Serialize, Deserialize)]
#[keras(package = "my_custom_layers")] // registered name: my_custom_layers>CustomDense
pub struct CustomDense {
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

/// `@keras.saving.register_keras_serializable(package="my_custom_losses") def custom_loss`:
/// per-sample losses, which Keras averages (with any sample weights).
fn custom_loss(y_true: &Tensor, y_pred: &Tensor) -> strata_tensor::Result<Tensor> {
    y_pred.sub(y_true)?.square().mean(Some(&[-1]), false)
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let registry = Registry::new().layer::<CustomDense>().loss("my_custom_losses", "custom_loss", custom_loss);
    let mut model = Sequential::new("sequential")
        .input(&[10])
        .add(CustomDense { units: 32 })
        .add(Dense::new(1))
        .build(&registry)?;
    model.compile(Adam::default(), "my_custom_losses>custom_loss", &[])?;
    let (x, y) = strata_model::reference::seed_data(0)?; // 100 random-normal samples
    model.fit(&x, &y, FitOptions::new(2, 32))?;
    let dir = std::env::temp_dir();
    for name in ["my_model.keras", "my_model.h5"] {
        let path = dir.join(name);
        model.save(&path)?;
        let mut loaded = Model::load(&path, &registry)?;
        loaded.compile_from_file()?; // the custom loss and the optimizer state come back
        let same = loaded.predict1(&x)?.as_slice() == model.predict1(&x)?.as_slice();
        println!("saved and reloaded {}: predictions identical: {same}", path.display());
        match Model::load(&path, &Registry::new().layer::<CustomDense>()) {
            Ok(_) => println!("unexpected: loaded without the loss"),
            Err(e) => println!("with the layer but without the loss:\n{e}\n"),
        }
    }
    Ok(())
}
