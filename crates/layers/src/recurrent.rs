//! Recurrent layers: SimpleRNN, LSTM, GRU, RNN over cells, StackedRNNCells, Bidirectional, TimeDistributed, ConvLSTM1D/2D.

use crate::error::Result;
use crate::layers::{BuildCtx, Layer};
use strata_format::config::LayerConfig;
use strata_tensor::Tensor;

/// Classes this family builds.
pub const SUPPORTED: &[&str] = &[];

/// Builds a layer of this family; `Ok(None)` for classes it does not know.
pub fn build(layer: &LayerConfig, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Option<Box<dyn Layer>>> {
    let _ = (layer, w, ctx);
    Ok(None)
}
