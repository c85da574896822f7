//! Recurrent layers: SimpleRNN, LSTM, GRU, RNN over cells, StackedRNNCells, Bidirectional,
//! TimeDistributed, ConvLSTM1D/2D/3D, the CuDNN layers of tf.keras/Keras 2, and the mask producers
//! Embedding (`mask_zero`) and Masking.
//!
//! Every recurrent layer runs as a stack of [`cell::Cell`]s over time with Keras's masking rules
//! (the non-unrolled `backend.rnn` loop): at a masked step the states keep their previous value
//! and the output is the previous output (or zeros with `zero_output_for_mask`).

mod cell;
mod embed;
mod wrappers;

use crate::cfg::{Meta, bool_of, get, inner_layer, inner_layer_json};
use crate::error::{Error, Result};
use crate::layers::{BuildCtx, Layer, Masked};
use cell::Cell;
use strata_format::config::{ConfigDialect, LayerConfig};
use strata_format::json::Json;
use strata_tensor::Tensor;

/// Classes this family builds.
pub const SUPPORTED: &[&str] = &[
    "SimpleRNN",
    "LSTM",
    "GRU",
    "LSTMV1",
    "GRUV1",
    "CuDNNLSTM",
    "CuDNNGRU",
    "RNN",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "Bidirectional",
    "TimeDistributed",
    "Embedding",
    "Masking",
];

/// The recurrent layer classes (what `Bidirectional` may wrap).
pub(crate) const RNN_CLASSES: &[&str] = &[
    "SimpleRNN",
    "LSTM",
    "GRU",
    "LSTMV1",
    "GRUV1",
    "CuDNNLSTM",
    "CuDNNGRU",
    "RNN",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
];

/// Builds a layer of this family; `Ok(None)` for classes it does not know.
pub fn build(layer: &LayerConfig, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Option<Box<dyn Layer>>> {
    Ok(Some(match layer.class_name.as_str() {
        c if RNN_CLASSES.contains(&c) => Box::new(Recurrent::build(layer, w, ctx)?),
        "Bidirectional" => Box::new(wrappers::Bidirectional::build(layer, w, ctx)?),
        "TimeDistributed" => Box::new(wrappers::TimeDistributed::build(layer, w, ctx)?),
        "Embedding" => Box::new(embed::Embedding::build(layer, w)?),
        "Masking" => Box::new(embed::Masking::build(layer, w)?),
        _ => return Ok(None),
    }))
}

/// The number of weight tensors a recurrent layer config binds (for wrappers splitting a flat list).
pub(crate) fn weight_count(layer: &LayerConfig) -> Result<usize> {
    let m = Meta::of(layer);
    let cfg = &layer.config;
    match layer.class_name.as_str() {
        "CuDNNLSTM" | "CuDNNGRU" => Ok(3),
        "RNN" => cell_configs(&m, cfg)?.iter().map(|c| cell_weight_count(&Meta::of(c), &c.config)).sum(),
        _ => cell_weight_count(&m, cfg),
    }
}

fn cell_weight_count(m: &Meta, cfg: &Json) -> Result<usize> {
    Ok(if bool_of(m, cfg, "use_bias", true)? { 3 } else { 2 })
}

/// The cell configs of an `RNN` layer (`cell` as one cell, a list, or `StackedRNNCells`).
fn cell_configs(m: &Meta, cfg: &Json) -> Result<Vec<LayerConfig>> {
    let v = get(cfg, "cell").ok_or_else(|| m.cfg_err("cell", "is missing"))?;
    if let Some(list) = v.as_array() {
        return list.iter().map(|c| inner_layer_json(m, c, "cell")).collect();
    }
    let c = inner_layer(m, cfg, "cell")?;
    if c.class_name == "StackedRNNCells" {
        let cells = get(&c.config, "cells")
            .and_then(Json::as_array)
            .ok_or_else(|| m.cfg_err("cell", "is a StackedRNNCells without a `cells` list"))?;
        return cells.iter().map(|c| inner_layer_json(m, c, "cells")).collect();
    }
    Ok(vec![c])
}

/// Options shared by every RNN layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RnnOpts {
    pub return_sequences: bool,
    pub return_state: bool,
    pub go_backwards: bool,
    pub time_major: bool,
    pub zero_output_for_mask: bool,
}

impl RnnOpts {
    fn of(m: &Meta, cfg: &Json) -> Result<RnnOpts> {
        Ok(RnnOpts {
            return_sequences: bool_of(m, cfg, "return_sequences", false)?,
            return_state: bool_of(m, cfg, "return_state", false)?,
            go_backwards: bool_of(m, cfg, "go_backwards", false)?,
            time_major: bool_of(m, cfg, "time_major", false)?,
            zero_output_for_mask: bool_of(m, cfg, "zero_output_for_mask", false)?,
        })
    }
}

/// A recurrent layer: a stack of cells run over the time axis.
pub(crate) struct Recurrent {
    meta: Meta,
    cells: Vec<Cell>,
    pub(crate) opts: RnnOpts,
}

/// Splits `w` into consecutive chunks of the given sizes.
pub(crate) fn split_weights(m: &Meta, w: Vec<Tensor>, sizes: &[usize]) -> Result<Vec<Vec<Tensor>>> {
    let total: usize = sizes.iter().sum();
    if w.len() != total {
        return Err(Error::WeightCount { layer: m.name.clone(), expected: total, got: w.len() });
    }
    let mut it = w.into_iter();
    Ok(sizes.iter().map(|&n| it.by_ref().take(n).collect()).collect())
}

impl Recurrent {
    pub(crate) fn build(layer: &LayerConfig, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Recurrent> {
        let m = Meta::of(layer);
        let cfg = &layer.config;
        let opts = RnnOpts::of(&m, cfg)?;
        // `unroll`, `stateful` (a fresh call starts from zeros), `dropout` and `recurrent_dropout`
        // (inference) do not change the numbers.
        let cells = match layer.class_name.as_str() {
            "RNN" => {
                let cfgs = cell_configs(&m, cfg)?;
                let sizes =
                    cfgs.iter().map(|c| cell_weight_count(&Meta::of(c), &c.config)).collect::<Result<Vec<_>>>()?;
                let parts = split_weights(&m, w, &sizes)?;
                cfgs.iter()
                    .zip(parts)
                    .map(|(c, w)| {
                        let kind = match c.class_name.as_str() {
                            "SimpleRNNCell" => "SimpleRNN",
                            "LSTMCell" => "LSTM",
                            "GRUCell" => "GRU",
                            other => {
                                return Err(m.cfg_err(
                                    "cell",
                                    format!(
                                        "holds a `{other}` cell; strata runs SimpleRNNCell, LSTMCell, GRUCell and \
                                         StackedRNNCells of them"
                                    ),
                                ));
                            }
                        };
                        Cell::build(&m, kind, &c.config, w, ctx)
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            class => vec![Cell::build(&m, class, cfg, w, ctx)?],
        };
        if cells.is_empty() {
            return Err(m.cfg_err("cell", "holds no cells"));
        }
        refuse_keyword_states(&m, layer)?;
        refuse_reduced_policy(&m, cfg)?;
        Ok(Recurrent { meta: m, cells, opts })
    }

    /// Runs the layer: outputs (sequence or last output, then the final states when `return_state`).
    /// `init` holds initial states (all cells' states in Keras order), or is empty for zeros.
    pub(crate) fn run(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        opts: &RnnOpts,
        init: &[Tensor],
    ) -> Result<Vec<Tensor>> {
        let m = &self.meta;
        let x = if opts.time_major { m.t(swap01(x))? } else { x.clone() };
        let s = x.shape().to_vec();
        let (Some(&b), Some(&t), true) = (s.first(), s.get(1), s.len() >= 3) else {
            return m.t(Err(strata_tensor::Error::Rank {
                op: "rnn",
                expected: ">= 3",
                layout: "[batch, time, features...]",
                shape: s.clone(),
            }));
        };
        if t == 0 {
            return Err(m.cfg_err("input", "has no time steps (a sequence of length 0); feed at least one step"));
        }
        if let Some(mk) = mask
            && mk.shape() != [b, t]
        {
            return Err(m.cfg_err("mask", format!("has shape {:?}, expected [{b}, {t}]", mk.shape())));
        }
        // Input projection of the first cell for all steps at once: [b * t, ...] -> [b, t, ...].
        let first = self.cells.first().ok_or_else(|| m.cfg_err("cell", "holds no cells"))?;
        let bt = b.checked_mul(t).ok_or_else(|| m.cfg_err("units", "got an input too large to flatten"))?;
        let mut flat = vec![bt];
        flat.extend_from_slice(s.get(2..).unwrap_or(&[]));
        let xp = first.input_proj(m, &m.t(x.reshape(&flat))?)?;
        let mut ps = vec![b, t];
        ps.extend_from_slice(xp.shape().get(1..).unwrap_or(&[]));
        let xp = m.t(xp.reshape(&ps))?;
        let steps: Vec<Tensor> = (0..t).map(|i| step_at(m, &xp, i)).collect::<Result<_>>()?;
        let mask_steps: Option<Vec<Tensor>> =
            mask.map(|mk| (0..t).map(|i| m.t(mk.slice_axis(1, i, i + 1))).collect::<Result<_>>()).transpose()?;

        // Initial states: zeros shaped like each cell's state.
        let mut states: Vec<Vec<Tensor>> = Vec::with_capacity(self.cells.len());
        let first_step = steps
            .first()
            .ok_or_else(|| m.cfg_err("input", "has no time steps (a sequence of length 0); feed at least one step"))?;
        let mut lead = first_step.shape().to_vec();
        for c in &self.cells {
            if let Some(l) = lead.last_mut() {
                *l = c.units;
            }
            let z = m.t(Tensor::zeros(&lead))?;
            states.push(vec![z; c.n_states()]);
        }
        if !init.is_empty() {
            let n = self.n_states();
            if init.len() != n {
                return Err(self.meta.arity(&format!("1, or 1 + {n} initial states"), 1 + init.len()));
            }
            let mut it = init.iter();
            for st in states.iter_mut().flat_map(|v| v.iter_mut()) {
                let Some(v) = it.next() else { break };
                if v.shape() != st.shape() {
                    return Err(m.cfg_err(
                        "initial_state",
                        format!("got a state of shape {:?}, expected {:?}", v.shape(), st.shape()),
                    ));
                }
                *st = v.clone();
            }
        }

        let order: Vec<usize> = if opts.go_backwards { (0..t).rev().collect() } else { (0..t).collect() };
        let mut outputs = Vec::with_capacity(if opts.return_sequences { t } else { 1 });
        let mut prev: Option<Tensor> = None;
        for &i in &order {
            let mut inp = steps.get(i).cloned().ok_or_else(|| m.cfg_err("units", "lost a time step"))?;
            let mut new_states = Vec::with_capacity(self.cells.len());
            for (k, (c, st)) in self.cells.iter().zip(&states).enumerate() {
                let xp = if k == 0 { inp.clone() } else { c.input_proj(m, &inp)? };
                let (out, ns) = c.step(m, &xp, st)?;
                inp = out;
                new_states.push(ns);
            }
            let mut out = inp;
            match mask_steps.as_ref().and_then(|ms| ms.get(i)) {
                Some(mt) => {
                    let mt = m.t(bcast_mask(mt, out.rank()))?;
                    let fallback = match (&prev, opts.zero_output_for_mask) {
                        (Some(p), false) => p.clone(),
                        _ => m.t(Tensor::zeros(out.shape()))?,
                    };
                    out = m.t(strata_tensor::select(&mt, &out, &fallback))?;
                    for (old, new) in states.iter_mut().zip(new_states) {
                        for (o, n) in old.iter_mut().zip(new) {
                            let mk = m.t(bcast_mask(&mt, n.rank()))?;
                            *o = m.t(strata_tensor::select(&mk, &n, o))?;
                        }
                    }
                }
                None => states = new_states,
            }
            if opts.return_sequences {
                outputs.push(out.clone());
            }
            prev = Some(out);
        }
        let last = prev
            .ok_or_else(|| m.cfg_err("input", "has no time steps (a sequence of length 0); feed at least one step"))?;
        let y = if opts.return_sequences {
            let refs: Vec<&Tensor> = outputs.iter().collect();
            let seq = m.t(strata_tensor::stack(&refs, 1))?;
            if opts.time_major { m.t(swap01(&seq))? } else { seq }
        } else {
            last
        };
        let mut outs = vec![y];
        if opts.return_state {
            outs.extend(states.into_iter().flatten());
        }
        Ok(outs)
    }

    /// The number of state tensors over all cells.
    pub(crate) fn n_states(&self) -> usize {
        self.cells.iter().map(Cell::n_states).sum()
    }

    /// The masks of [`Recurrent::run`]'s outputs.
    pub(crate) fn out_masks(&self, n: usize, mask: Option<&Tensor>, opts: &RnnOpts) -> Vec<Option<Tensor>> {
        let mut v = vec![None; n];
        if opts.return_sequences
            && let Some(first) = v.first_mut()
        {
            *first = mask.cloned();
        }
        v
    }
}

/// The reduced-precision compute dtype of a layer's policy ([`crate::cfg::compute_dtype`]); a
/// malformed policy counts as full precision here (the other families report it).
pub(crate) fn reduced_policy(m: &Meta, cfg: &Json) -> Option<strata_tensor::DType> {
    crate::cfg::compute_dtype(m, get(cfg, "dtype")).ok().flatten()
}

/// Recurrent layers compute in f32 only: refuse a reduced-precision policy by name.
fn refuse_reduced_policy(m: &Meta, cfg: &Json) -> Result<()> {
    match reduced_policy(m, cfg) {
        Some(d) => Err(m.cfg_err(
            "dtype",
            format!(
                "is a {d:?} compute policy; strata runs recurrent layers in float32 only (set the policy to float32)"
            ),
        )),
        None => Ok(()),
    }
}

/// Keras 3 records `initial_state` (and `constants`) as keyword tensors, which the executor does
/// not pass to layers: refuse them rather than silently start from zeros.
pub(crate) fn refuse_keyword_states(m: &Meta, layer: &LayerConfig) -> Result<()> {
    for node in &layer.inbound_nodes {
        for key in ["initial_state", "constants"] {
            if node.kwargs.get(key).is_some_and(|v| !v.is_null()) {
                return Err(m.cfg_err(
                    key,
                    "is passed as a keyword tensor in the model graph, which strata does not run yet; \
                     call the layer without it",
                ));
            }
        }
    }
    Ok(())
}

/// `x[:, i]` of a `[b, t, ...]` tensor.
fn step_at(m: &Meta, x: &Tensor, i: usize) -> Result<Tensor> {
    let s = m.t(x.slice_axis(1, i, i + 1))?;
    let mut shape = x.shape().to_vec();
    shape.remove(1);
    m.t(s.reshape(&shape))
}

/// A `[b, 1]` mask reshaped to `[b, 1, ..., 1]` of `rank`.
fn bcast_mask(mask: &Tensor, rank: usize) -> std::result::Result<Tensor, strata_tensor::Error> {
    let b = mask.shape().first().copied().unwrap_or(1);
    let mut shape = vec![1usize; rank.max(1)];
    if let Some(s) = shape.first_mut() {
        *s = b;
    }
    mask.reshape(&shape)
}

/// Swaps the first two axes.
fn swap01(x: &Tensor) -> std::result::Result<Tensor, strata_tensor::Error> {
    let mut perm: Vec<usize> = (0..x.rank()).collect();
    if perm.len() >= 2 {
        perm.swap(0, 1);
    }
    x.permute(&perm)
}

impl Layer for Recurrent {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let (x, init) = inputs.split_first().ok_or_else(|| self.meta.arity("1", 0))?;
        self.run(x, None, &self.opts, init)
    }
    fn forward_masked(&self, inputs: &[Tensor], masks: &[Option<Tensor>], _training: bool) -> Result<Masked> {
        // Inputs after the first are initial states (tf.keras records `initial_state` so).
        let (x, init) = inputs.split_first().ok_or_else(|| self.meta.arity("1", 0))?;
        let mask = masks.first().and_then(Option::as_ref);
        let outs = self.run(x, mask, &self.opts, init)?;
        let out_masks = self.out_masks(outs.len(), mask, &self.opts);
        Ok((outs, out_masks))
    }
}

/// Whether the file comes from the TF 2 generation of recurrent layers (tf.keras 2 / Keras 3:
/// GRU `reset_after=True`, `recurrent_activation="sigmoid"`) rather than Keras 1/2 multi-backend
/// or tf.keras 1.x (TF 1 wrote `keras_version` `2.2.4-tf` and kept `reset_after=False`,
/// `hard_sigmoid`).
pub(crate) fn tf2_recurrent_defaults(ctx: &BuildCtx<'_>) -> bool {
    // `Some(true)`: a tf.keras version string (`2.x.y-tf`) of TF 2; `Some(false)`: one of TF 1.
    // TF 2.0/2.1 also wrote `2.2.4-tf`; their configs always carry both keys (and a GRU's bias
    // shape tells `reset_after`), so only hand-written configs meet this ambiguity.
    let tf_suffix = ctx.keras_version.filter(|v| v.contains("tf")).map(|v| {
        let mut it = v.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
        (it.next().unwrap_or(0), it.next().unwrap_or(0)) >= (2, 3)
    });
    match ctx.dialect {
        ConfigDialect::Keras1 => false,
        ConfigDialect::Keras2 => tf_suffix.unwrap_or(false),
        ConfigDialect::TfKeras => tf_suffix.unwrap_or(true),
        ConfigDialect::Keras3 | ConfigDialect::Keras3LegacyH5 => true,
    }
}

/// Whether the dialect's GRU defaults to `reset_after=True` (tf.keras 2 and Keras 3).
pub(crate) fn gru_reset_after_default(ctx: &BuildCtx<'_>) -> bool {
    tf2_recurrent_defaults(ctx)
}

#[cfg(test)]
mod tests;
