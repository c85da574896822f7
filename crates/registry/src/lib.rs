//! Keras custom objects in Rust: define a custom layer, register it under the name Keras writes
//! (`my_custom_layers>CustomDense`), and load Keras-written models that use it.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use strata_registry::{CustomLayer, KerasLayer, Registry, Result, Shape, Weights, WeightBuilder};
//! use strata_tensor::Tensor;
//!
//! #[derive(KerasLayer, Serialize, Deserialize)]
//! #[keras(package = "my_custom_layers")] // like @register_keras_serializable(package=...)
//! struct CustomDense {
//!     units: usize,
//! }
//!
//! impl CustomLayer for CustomDense {
//!     fn build(&mut self, input_shapes: &[Shape], w: &mut WeightBuilder) -> Result<()> {
//!         let input_dim = input_shapes.first().and_then(|s| s.last().copied().flatten()).unwrap_or(0);
//!         w.add_weight("w", &[input_dim, self.units], "random_normal", true);
//!         w.add_weight("b", &[self.units], "zeros", true);
//!         Ok(())
//!     }
//!     fn call(&self, inputs: &[Tensor], w: &Weights, _training: bool) -> Result<Vec<Tensor>> {
//!         let x = inputs.first().ok_or_else(|| strata_registry::Error::layer("CustomDense takes one input"))?;
//!         Ok(vec![x.matmul(w.get("w")?)?.add(w.get("b")?)?])
//!     }
//!     fn compute_output_shape(&self, s: &[Shape]) -> Result<Vec<Shape>> {
//!         let mut out = s.first().cloned().unwrap_or_default();
//!         if let Some(last) = out.last_mut() { *last = Some(self.units); }
//!         Ok(vec![out])
//!     }
//! }
//!
//! let registry = Registry::new().layer::<CustomDense>();
//! let model = strata_registry::load_model("model.keras", &registry)?;
//! # Ok::<(), strata_registry::Error>(())
//! ```

pub mod config;
pub mod error;
pub mod layer;
pub mod load;
pub mod loss;
pub mod missing;
pub mod registry;

pub use config::{BaseConfig, from_config, get_config};
pub use error::{Error, Result};
pub use layer::{CustomLayer, Initializer, KerasClass, Shape, WeightBuilder, WeightSpec, Weights};
pub use load::{LoadOptions, load_file, load_model, load_model_with, used_by_file};
pub use loss::{CustomLoss, CustomMetric, LossFactory, MetricFactory, serialize_loss, serialize_metric};
pub use missing::{MissingObject, UsedObject, is_custom_layer, used_objects};
pub use registry::{FunctionEntry, InitializerFn, Kind, LayerEntry, LossFn, Registry, TensorFn, layer_key};
pub use strata_derive::KerasLayer;

/// The Keras 3 object dict of a custom layer (`{"module": null, "class_name", "config",
/// "registered_name"}`), as `serialize_keras_object` writes a class defined in `__main__`:
/// the piece a writer puts in `config.json`.
pub fn serialize_layer<T: KerasClass + serde::Serialize>(
    layer: &T,
    base: &BaseConfig,
) -> std::result::Result<strata_format::json::Json, String> {
    use strata_format::json::Json;
    Ok(Json::object([
        ("module", Json::Null),
        ("class_name", Json::from(T::NAME)),
        ("config", get_config(layer, base)?),
        ("registered_name", Json::from(T::registered_name())),
    ]))
}
