//! Keras 1 specifics: `Merge` layers that hold whole sub-models.
//!
//! In Keras 1 (`keras/engine/topology.py` `Merge`, `keras/models.py` `Sequential.get_config` of
//! Keras 1.2) a Sequential model could start with `Merge([model_a, model_b], mode="concat")`; its
//! config then carries `"layers": [{"class_name": "Sequential", "config": [...]}, ...]`, one full
//! model per branch. Those are parsed into [`super::LayerConfig::branches`]. A `Merge` used inside a
//! functional model takes tensors instead and has no `layers` key.
//!
//! Two other Keras 1 shapes are handled where they occur: a Sequential `config` that is a bare list
//! of layers (also Keras 2.0/2.1), in `ModelConfig` parsing; `batch_input_shape` on the first
//! layer instead of an `InputLayer` entry, through [`super::LayerConfig::batch_input_shape`].

use super::{ConfigPath, Ctx, ModelConfig, Result};
use crate::json::Json;

fn is_model_entry(v: &Json) -> bool {
    v.get("class_name").and_then(Json::as_str).is_some() && v.get("config").is_some()
}

/// The sub-models of a Keras 1 `Merge` layer (`path` points at the layer's `config`).
pub(super) fn merge_branches(
    ctx: &mut Ctx<'_>,
    class_name: &str,
    config: &Json,
    path: &mut ConfigPath,
    depth: usize,
) -> Result<Vec<ModelConfig>> {
    if class_name != "Merge" {
        return Ok(Vec::new());
    }
    let Some(items) = config.get("layers").and_then(Json::as_array) else {
        return Ok(Vec::new());
    };
    if !items.iter().all(is_model_entry) {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(items.len().min(64));
    path.push_key("layers");
    for (i, item) in items.iter().enumerate() {
        path.push_index(i);
        let m = ctx.model(item, path, depth + 1);
        path.pop();
        match m {
            Ok(m) => out.push(m),
            Err(e) => {
                path.pop();
                return Err(e);
            }
        }
    }
    path.pop();
    Ok(out)
}

/// `config` with its `layers` replaced by the branches' JSON (unchanged when there are none).
pub(super) fn write_branches(config: &Json, branches: &[ModelConfig]) -> Json {
    let mut out = config.clone();
    if !branches.is_empty()
        && let Some(o) = out.as_object_mut()
    {
        o.insert("layers", Json::Array(branches.iter().map(ModelConfig::to_json).collect()));
    }
    out
}
