//! Custom loss *classes* (Keras's `Loss` subclasses with their own config), as opposed to the loss
//! functions of [`crate::Registry::loss`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use strata_format::json::{Json, Object};
use strata_tensor::Tensor;

use crate::config::{BaseConfig, from_config, get_config};
use crate::layer::KerasClass;

/// A loss class written in Rust, like a Python `keras.losses.Loss` subclass: its struct fields are
/// its config (serde), `call` returns per-sample losses (reduced by Keras's
/// `sum_over_batch_size` with sample weights).
///
/// ```ignore
/// #[derive(KerasLayer, Serialize, Deserialize)]   // the derive gives the registered name
/// #[keras(package = "my_losses")]
/// struct ScaledMse { scale: f32 }
/// impl CustomLoss for ScaledMse {
///     fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> strata_tensor::Result<Tensor> {
///         Ok(y_pred.sub(y_true)?.square().mean(Some(&[-1]), false)?.scale(self.scale))
///     }
/// }
/// let registry = Registry::new().loss_class::<ScaledMse>();
/// ```
pub trait CustomLoss: Send + Sync + 'static {
    /// Per-sample losses for a batch.
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> strata_tensor::Result<Tensor>;
}

/// Builds a loss function from a serialized loss object's `config` (what compile configs hold).
pub type LossFactory = std::sync::Arc<dyn Fn(&Json) -> Result<crate::LossFn, String> + Send + Sync>;

/// The Keras base keys of a loss config that are not the struct's fields.
const LOSS_BASE_KEYS: &[&str] = &["name", "reduction", "dtype"];

fn strip_base(config: &Json) -> Json {
    match config.as_object() {
        Some(o) => {
            let mut out = Object::new();
            for (k, v) in o.iter().filter(|(k, _)| !LOSS_BASE_KEYS.contains(k)) {
                out.insert(k, v.clone());
            }
            Json::Object(out)
        }
        None => config.clone(),
    }
}

pub(crate) fn factory<T: CustomLoss + DeserializeOwned>() -> LossFactory {
    std::sync::Arc::new(|config: &Json| {
        let (value, _) = from_config::<T>(&strip_base(config))?;
        let value = std::sync::Arc::new(value);
        let f: crate::LossFn = std::sync::Arc::new(move |t: &Tensor, p: &Tensor| value.call(t, p));
        Ok(f)
    })
}

/// The serialized form Keras writes for a loss object of a registered class:
/// `{"module": null, "class_name": "Name", "config": {"name", "reduction", ..fields}, "registered_name": "pkg>Name"}`.
pub fn serialize_loss<T: KerasClass + Serialize>(loss: &T) -> Result<Json, String> {
    let base = BaseConfig { name: strata_format::naming::to_snake_case(T::NAME), trainable: true, dtype: Json::Null };
    let mut config = get_config(loss, &base)?;
    if let Some(o) = config.as_object_mut() {
        o.remove("trainable");
        o.insert("reduction", Json::from("sum_over_batch_size"));
    }
    Ok(Json::object([
        ("module", Json::Null),
        ("class_name", Json::from(T::NAME)),
        ("config", config),
        ("registered_name", Json::from(T::registered_name())),
    ]))
}

/// A metric class written in Rust, like a Python `keras.metrics.Metric` subclass: its struct
/// fields are its config (serde) *and* its state; `update_state` accumulates a batch, `result`
/// reads the value, `reset_state` clears the state (the config fields stay). Keras's compiled
/// metrics are unweighted, so `update_state` gets no sample weights.
pub trait CustomMetric: Send + 'static {
    /// Accumulates one batch.
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> strata_tensor::Result<()>;
    /// The current value.
    fn result(&self) -> f32;
    /// Clears the accumulated state.
    fn reset_state(&mut self);
}

/// Builds a fresh metric object from a serialized metric's `config`.
pub type MetricFactory = std::sync::Arc<dyn Fn(&Json) -> Result<Box<dyn CustomMetric>, String> + Send + Sync>;

pub(crate) fn metric_factory<T: CustomMetric + DeserializeOwned>() -> MetricFactory {
    std::sync::Arc::new(|config: &Json| {
        let (value, _) = from_config::<T>(&strip_base(config))?;
        Ok(Box::new(value) as Box<dyn CustomMetric>)
    })
}

/// The serialized form Keras writes for a metric object of a registered class (`{"module": null,
/// "class_name", "config": {"name", "dtype": "float32", ..fields}, "registered_name": "pkg>Name"}`).
pub fn serialize_metric<T: KerasClass + Serialize>(metric: &T, name: &str) -> Result<Json, String> {
    let base = BaseConfig { name: name.to_string(), trainable: true, dtype: Json::Null };
    let mut config = get_config(metric, &base)?;
    if let Some(o) = config.as_object_mut() {
        o.remove("trainable");
        o.insert("dtype", Json::from("float32"));
    }
    Ok(Json::object([
        ("module", Json::Null),
        ("class_name", Json::from(T::NAME)),
        ("config", config),
        ("registered_name", Json::from(T::registered_name())),
    ]))
}
