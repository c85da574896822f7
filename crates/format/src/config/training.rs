//! Training configs: the legacy `.h5` `training_config` attribute and the Keras 3 `compile_config`.
//!
//! tf-keras `tf_keras/saving/legacy/saving_utils.py` (`model_metadata`) and Keras 3
//! `keras/src/legacy/saving/saving_utils.py` write `{"loss", "metrics", "weighted_metrics",
//! "loss_weights", ..., "optimizer_config": {"class_name", "config"}}`; Keras 3's
//! `compile_config` (`keras/src/trainers/trainer.py`) has the same keys but `optimizer` for the
//! optimizer. Other keys (`sample_weight_mode`, `run_eagerly`, `steps_per_execution`,
//! `jit_compile`) stay in `raw` and are written back untouched.

use super::{ConfigPath, Result, expect_object, put_opt_json};
use crate::json::{Json, Object};

/// A model's training setup as stored. Each field is `Some` exactly when its key is present
/// (`Some(Json::Null)` for a stored `null`).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingConfig {
    /// `optimizer_config` (legacy `.h5`) or `optimizer` (Keras 3 `compile_config`).
    pub optimizer: Option<Json>,
    /// `loss`: a name, an object, or a list/dict of them.
    pub loss: Option<Json>,
    /// `metrics`.
    pub metrics: Option<Json>,
    /// `loss_weights`.
    pub loss_weights: Option<Json>,
    /// `weighted_metrics`.
    pub weighted_metrics: Option<Json>,
    /// The object as read.
    pub raw: Json,
}

const OPTIMIZER_KEYS: [&str; 2] = ["optimizer_config", "optimizer"];

impl TrainingConfig {
    /// Parses a `training_config` or `compile_config` object.
    pub fn parse(json: &Json) -> Result<TrainingConfig> {
        let obj = expect_object(json, &ConfigPath::root())?;
        Ok(TrainingConfig {
            optimizer: OPTIMIZER_KEYS.iter().find_map(|k| obj.get(k)).cloned(),
            loss: obj.get("loss").cloned(),
            metrics: obj.get("metrics").cloned(),
            loss_weights: obj.get("loss_weights").cloned(),
            weighted_metrics: obj.get("weighted_metrics").cloned(),
            raw: json.clone(),
        })
    }

    /// The optimizer's class name (`Adam`), or its name when stored as a string (`"adam"`).
    pub fn optimizer_class_name(&self) -> Option<&str> {
        match self.optimizer.as_ref()? {
            Json::String(s) => Some(s),
            other => other.get("class_name")?.as_str(),
        }
    }

    /// Writes the config back with the typed fields patched in.
    pub fn to_json(&self) -> Json {
        let mut out = self.raw.as_object().cloned().unwrap_or_else(Object::new);
        let key = OPTIMIZER_KEYS.iter().find(|k| out.contains_key(k)).copied().unwrap_or("optimizer_config");
        put_opt_json(&mut out, key, &self.optimizer);
        put_opt_json(&mut out, "loss", &self.loss);
        put_opt_json(&mut out, "metrics", &self.metrics);
        put_opt_json(&mut out, "loss_weights", &self.loss_weights);
        put_opt_json(&mut out, "weighted_metrics", &self.weighted_metrics);
        Json::Object(out)
    }
}
