use serde::{Deserialize, Serialize};
use strata_model::{FitOptions, Sequential, layers::Dense, progress::Verbose};
use strata_registry::{CustomLayer, Error, KerasLayer, Registry, Result, Shape, WeightBuilder, Weights};
use strata_tensor::Tensor;
use strata_train::optimizers::Adam;

#[derive(KerasLayer, Serialize, Deserialize)]
#[keras(package = "my_custom_layers")]
pub struct CustomDense {
    pub units: usize,
}

impl CustomLayer for CustomDense {
    fn build(&mut self, input_shapes: &[Shape], weights: &mut WeightBuilder) -> Result<()> {
        let d = input_shapes.first().and_then(|s| s.last().copied().flatten()).ok_or_else(|| Error::layer("need dim"))?;
        weights.add_weight("w", &[d, self.units], "random_normal", true);
        weights.add_weight("b", &[self.units], "zeros", true);
        Ok(())
    }
    fn call(&self, inputs: &[Tensor], weights: &Weights, _training: bool) -> Result<Vec<Tensor>> {
        Ok(vec![inputs[0].matmul(weights.get("w")?)?.add(weights.get("b")?)?])
    }
    fn compute_output_shape(&self, s: &[Shape]) -> Result<Vec<Shape>> {
        let mut o = s[0].clone();
        *o.last_mut().unwrap() = Some(self.units);
        Ok(vec![o])
    }
}

#[test]
fn seed_model_trains() {
    let registry = Registry::new().layer::<CustomDense>();
    let mut model =
        Sequential::new("seed").input(&[10]).add(CustomDense { units: 32 }).add(Dense::new(1)).build(&registry).unwrap();
    assert_eq!(model.count_params(), 10 * 32 + 32 + 32 + 1);
    model.compile(Adam::default().learning_rate(0.01), "mse", &["mae"]).unwrap();
    let mut rng = strata_train::initializers::Rng::new(1);
    let x = Tensor::from_vec(&[100, 10], (0..1000).map(|_| rng.normal() as f32).collect()).unwrap();
    let y = x.sum(Some(&[1]), true).unwrap();
    let h = model.fit(&x, &y, FitOptions::new(20, 32).verbose(Verbose::Line)).unwrap();
    let loss = h.get("loss").unwrap();
    eprintln!("{loss:?}");
    assert!(loss[19] < loss[0] * 0.5, "{loss:?}");
}
