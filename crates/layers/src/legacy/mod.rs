//! Legacy configs and weight layouts, normalized to what the layer families build: Keras 1 class
//! and key names (`Convolution2D`, `nb_filter`, `border_mode`, `dim_ordering`, `Merge`, ...),
//! Keras 1 weight layouts (Theano-ordered kernels, per-gate recurrent weights), Theano-written
//! kernels (flipped as Keras 2 did on load), CuDNN recurrent weights, and the Keras 2 GRU
//! `reset_after` default.
//!
//! What is mirrored from where (Keras 2.2.4 / 2.3.1, read, not copied):
//! * `keras/legacy/interfaces.py`: the Keras 1 -> 2 argument renames ([`keras1`]);
//! * `keras/engine/saving.py` `preprocess_weights_for_loading`: Keras 1 kernel transposes, the
//!   12-array LSTM / 9-array GRU merges, and `conv_utils.convert_kernel` for Theano-written
//!   convolution kernels; `_convert_rnn_weights`: CuDNN <-> native LSTM/GRU ([`weights`]);
//! * Keras 1.2 `keras/engine/topology.py` `Merge`: the merge modes ([`keras1`]), and Keras 1
//!   Sequential models that start with a `Merge` of whole sub-models ([`BranchMerge`]).
//!
//! One thing Keras 2 could not know and strata guesses: Keras 1 files do not record their backend.
//! Keras 1 on Theano computes a true convolution (`T.nnet.conv2d` flips the filters), so its
//! kernels must be flipped to run as a correlation. [`guess_backend`] reads a Keras 1 model whose
//! layers use `dim_ordering: "th"` as written by Theano (Keras 1's pairing of `th` ordering with
//! Theano) and `"tf"` as TensorFlow; a caller that knows better sets [`BuildCtx::backend`].

mod branch;
pub mod keras1;
pub mod weights;

pub use branch::BranchMerge;

/// Set (to `true`) in the inner layer config of a `TimeDistributed`/`Bidirectional` whose weights
/// [`normalize`] already converted along with the wrapper: a family that builds the inner layer
/// through [`crate::build_layer`] gets it as it is, never converted twice (a Theano flip applied
/// twice would undo itself).
pub const DONE_KEY: &str = "strata_legacy_normalized";

use crate::cfg::Meta;
use crate::error::Result;
use crate::layers::BuildCtx;
use std::borrow::Cow;
use strata_format::config::{ConfigDialect, LayerConfig, ModelConfig};
use strata_format::json::Json;
use strata_tensor::Tensor;

/// The class a legacy class name maps to, for support checks before weights are read
/// (`Convolution2D` -> `Conv2D`); `None` for names that are not legacy spellings. A Keras 1
/// `Merge` maps to one of the core merge layers by its `mode` (reported here as `Concatenate`).
pub fn renamed(class: &str) -> Option<&'static str> {
    Some(match class {
        "Convolution1D" | "AtrousConvolution1D" => "Conv1D",
        "Convolution2D" | "AtrousConvolution2D" => "Conv2D",
        "Convolution3D" => "Conv3D",
        "Deconvolution2D" => "Conv2DTranspose",
        "SeparableConvolution2D" => "SeparableConv2D",
        "TimeDistributedDense" => "TimeDistributed",
        "Merge" => "Concatenate",
        "CuDNNLSTM" => "LSTM",
        "CuDNNGRU" => "GRU",
        _ => return None,
    })
}

/// The backend that most likely wrote a model whose file does not say (Keras 1 files record no
/// backend): `theano` when a Keras 1 layer uses `dim_ordering: "th"`, `tensorflow` when one uses
/// `"tf"`, `None` otherwise (no kernel is flipped then, as Keras 2 did for unknown backends).
pub fn guess_backend(config: &ModelConfig) -> Option<&'static str> {
    fn walk(m: &ModelConfig) -> Option<&'static str> {
        for l in &m.layers {
            let found = match l.config.get("dim_ordering").and_then(Json::as_str) {
                Some("th") => Some("theano"),
                Some("tf") => Some("tensorflow"),
                _ => None,
            };
            let found = found
                .or_else(|| l.nested.as_deref().and_then(walk))
                .or_else(|| l.branches.iter().find_map(walk))
                .or_else(|| {
                    l.config
                        .get("layer")
                        .and_then(|i| i.get("config"))
                        .and_then(|c| c.get("dim_ordering"))
                        .and_then(Json::as_str)
                        .and_then(|d| match d {
                            "th" => Some("theano"),
                            "tf" => Some("tensorflow"),
                            _ => None,
                        })
                });
            if found.is_some() {
                return found;
            }
        }
        None
    }
    if config.source != ConfigDialect::Keras1 {
        return None;
    }
    walk(config)
}

/// Rewrites a legacy layer config and its weights into the Keras 2/3 form the families build.
/// Configs that need nothing are returned borrowed.
///
/// * Keras 1 configs (`ctx.dialect == Keras1`): class and key renames ([`keras1::normalize_entry`])
///   and Keras 1 weight layouts ([`weights::convert`]);
/// * any dialect: Theano-written convolution kernels flipped when `ctx.backend` is `theano`,
///   CuDNN-layout LSTM/GRU weights converted, `CuDNNLSTM`/`CuDNNGRU` run as `LSTM`/`GRU`, and a
///   Keras 1/2 GRU without `reset_after` given Keras 2's default (`false`).
pub fn normalize<'a>(
    layer: &'a LayerConfig,
    w: Vec<Tensor>,
    ctx: &BuildCtx<'_>,
) -> Result<(Cow<'a, LayerConfig>, Vec<Tensor>)> {
    if layer.config.get(DONE_KEY).and_then(Json::as_bool) == Some(true) {
        return Ok((Cow::Borrowed(layer), w));
    }
    let m = Meta::of(layer);
    let keras1 = ctx.dialect == ConfigDialect::Keras1;
    let legacy_dialect = matches!(ctx.dialect, ConfigDialect::Keras1 | ConfigDialect::Keras2);
    let new_entry = if keras1 || needs_entry_rewrite(layer, legacy_dialect) {
        let (class, config) = keras1::normalize_entry(&m, &layer.class_name, &layer.config, keras1, legacy_dialect)?;
        if class == layer.class_name && config == layer.config {
            None
        } else {
            let mut l = layer.clone();
            l.class_name = class;
            l.config = config;
            Some(l)
        }
    } else {
        None
    };
    let theano = ctx.backend == Some("theano");
    let target = new_entry.as_ref().unwrap_or(layer);
    let w = weights::convert(&m, &target.class_name, &target.config, w, keras1, theano)?;
    let wrapper = matches!(target.class_name.as_str(), "TimeDistributed" | "Bidirectional");
    let mut out = new_entry.map_or(Cow::Borrowed(layer), Cow::Owned);
    if wrapper && (keras1 || theano || wraps_rnn(&out.config)) {
        // the inner layer's weights were converted here: mark them so
        let mut l = out.into_owned();
        if let Some(inner) = l.config.get_mut("layer").and_then(|v| v.get_mut("config")).and_then(Json::as_object_mut) {
            inner.insert(DONE_KEY, Json::from(true));
        }
        out = Cow::Owned(l);
    }
    Ok((out, w))
}

fn wraps_rnn(cfg: &Json) -> bool {
    matches!(cfg.get("layer").and_then(|v| v.get("class_name")).and_then(Json::as_str), Some("LSTM" | "GRU"))
}

/// Whether a non-Keras-1 entry still needs a rewrite: a CuDNN class, a Keras 2 GRU that relies on
/// the Keras 2 `reset_after` default, or a wrapper around one.
fn needs_entry_rewrite(layer: &LayerConfig, legacy_dialect: bool) -> bool {
    fn check(class: &str, cfg: &Json, legacy_dialect: bool) -> bool {
        match class {
            "CuDNNLSTM" | "CuDNNGRU" => true,
            "TimeDistributed" | "Bidirectional" => cfg.get("layer").is_some_and(|inner| {
                let c = inner.get("class_name").and_then(Json::as_str).unwrap_or("");
                check(c, inner.get("config").unwrap_or(&Json::Null), legacy_dialect)
            }),
            _ => false,
        }
    }
    check(&layer.class_name, &layer.config, legacy_dialect)
}
