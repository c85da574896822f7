//! Wrappers: `Bidirectional` over a recurrent layer, and `TimeDistributed` over any layer.

use super::{Recurrent, RnnOpts, split_weights, weight_count};
use crate::cfg::{Meta, get, inner_layer};
use crate::error::{Error, Result, Unsupported};
use crate::layers::{BuildCtx, Layer, Masked};
use strata_format::config::LayerConfig;
use strata_format::json::Json;
use strata_tensor::Tensor;

/// How `Bidirectional` combines the two directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    Concat,
    Sum,
    Mul,
    Ave,
    /// `merge_mode=None`: both outputs, forward first.
    Both,
}

/// `Bidirectional`: a forward and a backward recurrent layer over the same input.
pub(crate) struct Bidirectional {
    meta: Meta,
    fwd: Recurrent,
    bwd: Recurrent,
    merge: Merge,
}

/// Reverses axis `axis`.
fn flip(m: &Meta, x: &Tensor, axis: usize) -> Result<Tensor> {
    let n = x.shape().get(axis).copied().unwrap_or(0);
    let idx: Vec<f32> = (0..n).rev().map(|i| i as f32).collect();
    let idx = m.t(Tensor::from_vec(&[n], idx))?;
    m.t(x.take(&idx, axis as isize))
}

impl Bidirectional {
    pub(crate) fn build(layer: &LayerConfig, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Bidirectional> {
        let m = Meta::of(layer);
        let cfg = &layer.config;
        let merge = match cfg.get("merge_mode") {
            None => Merge::Concat,
            Some(Json::Null) => Merge::Both,
            Some(v) => match v.as_str() {
                Some("concat") => Merge::Concat,
                Some("sum") => Merge::Sum,
                Some("mul") => Merge::Mul,
                Some("ave") => Merge::Ave,
                _ => return Err(m.cfg_err("merge_mode", "must be `concat`, `sum`, `mul`, `ave` or null")),
            },
        };
        let fcfg = inner_layer(&m, cfg, "layer")?;
        let bcfg = match get(cfg, "backward_layer") {
            Some(_) => inner_layer(&m, cfg, "backward_layer")?,
            None => {
                let mut b = fcfg.clone();
                let gb = crate::cfg::bool_of(&m, &fcfg.config, "go_backwards", false)?;
                if let Json::Object(o) = &mut b.config {
                    o.insert(String::from("go_backwards"), Json::Bool(!gb));
                } else {
                    return Err(m.cfg_err("layer", "has no config object"));
                }
                b.name = format!("backward_{}", fcfg.name);
                b
            }
        };
        for c in [&fcfg, &bcfg] {
            if !super::RNN_CLASSES.contains(&c.class_name.as_str()) {
                return Err(m.cfg_err(
                    "layer",
                    format!("wraps a `{}`; strata runs Bidirectional over recurrent layers only", c.class_name),
                ));
            }
        }
        let sizes = [weight_count(&fcfg)?, weight_count(&bcfg)?];
        let mut parts = split_weights(&m, w, &sizes)?.into_iter();
        let (Some(wf), Some(wb)) = (parts.next(), parts.next()) else {
            return Err(Error::WeightCount { layer: m.name.clone(), expected: sizes.iter().sum(), got: 0 });
        };
        let mut fwd = Recurrent::build(&fcfg, wf, ctx)?;
        let mut bwd = Recurrent::build(&bcfg, wb, ctx)?;
        // Keras forces zero outputs at masked steps when the wrapper returns sequences.
        fwd.opts.zero_output_for_mask = fwd.opts.return_sequences;
        bwd.opts.zero_output_for_mask = bwd.opts.return_sequences;
        super::refuse_keyword_states(&m, layer)?;
        super::refuse_reduced_policy(&m, cfg)?;
        Ok(Bidirectional { meta: m, fwd, bwd, merge })
    }

    /// `init`: the forward layer's initial states then the backward layer's, or empty.
    fn run(&self, x: &Tensor, mask: Option<&Tensor>, init: &[Tensor]) -> Result<Masked> {
        let m = &self.meta;
        let o: &RnnOpts = &self.fwd.opts;
        let (fi, bi) = if init.is_empty() {
            (init, init)
        } else {
            let nf = self.fwd.n_states();
            if init.len() != nf + self.bwd.n_states() {
                return Err(m.arity(&format!("1, or 1 + {} initial states", nf + self.bwd.n_states()), 1 + init.len()));
            }
            init.split_at(nf)
        };
        let mut y = self.fwd.run(x, mask, &self.fwd.opts, fi)?;
        let mut yr = self.bwd.run(x, mask, &self.bwd.opts, bi)?;
        if y.is_empty() || yr.is_empty() {
            return Err(m.cfg_err("layer", "produced no output"));
        }
        let f = y.remove(0);
        let mut b = yr.remove(0);
        if o.return_sequences {
            b = flip(m, &b, if o.time_major { 0 } else { 1 })?;
        }
        let mut outs = match self.merge {
            Merge::Concat => vec![m.t(strata_tensor::concat(&[&f, &b], -1))?],
            Merge::Sum => vec![m.t(f.add(&b))?],
            Merge::Mul => vec![m.t(f.mul(&b))?],
            Merge::Ave => vec![m.t(f.add(&b))?.scale(0.5)],
            Merge::Both => vec![f, b],
        };
        let n_main = outs.len();
        if o.return_state {
            outs.extend(y);
            outs.extend(yr);
        }
        let seq_mask = if o.return_sequences { mask.cloned() } else { None };
        let masks = (0..outs.len()).map(|i| if i < n_main { seq_mask.clone() } else { None }).collect();
        Ok((outs, masks))
    }
}

impl Layer for Bidirectional {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let (x, init) = inputs.split_first().ok_or_else(|| self.meta.arity("1", 0))?;
        Ok(self.run(x, None, init)?.0)
    }
    fn forward_masked(&self, inputs: &[Tensor], masks: &[Option<Tensor>], _training: bool) -> Result<Masked> {
        let (x, init) = inputs.split_first().ok_or_else(|| self.meta.arity("1", 0))?;
        self.run(x, masks.first().and_then(Option::as_ref), init)
    }
}

/// `TimeDistributed`: any layer applied to every time step (the input reshaped to
/// `[batch * time, ...]` and the outputs reshaped back).
pub(crate) struct TimeDistributed {
    meta: Meta,
    inner: Box<dyn Layer>,
}

impl TimeDistributed {
    pub(crate) fn build(layer: &LayerConfig, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<TimeDistributed> {
        let m = Meta::of(layer);
        let icfg = inner_layer(&m, &layer.config, "layer")?;
        let class = icfg.class_name.clone();
        let inner = crate::layers::build_layer(&icfg, w, ctx)?.ok_or_else(|| {
            Error::Unsupported(vec![Unsupported { layer: format!("{}/{}", m.name, icfg.name), class }])
        })?;
        Ok(TimeDistributed { meta: m, inner })
    }
}

impl Layer for TimeDistributed {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let m = &self.meta;
        let x = m.one(inputs)?;
        let s = x.shape();
        let (Some(&b), Some(&t)) = (s.first(), s.get(1)) else {
            return Err(m.cfg_err("layer", format!("needs a [batch, time, ...] input, got shape {s:?}")));
        };
        let bt = b.checked_mul(t).ok_or_else(|| m.cfg_err("layer", "got an input too large to flatten"))?;
        let mut flat = vec![bt];
        flat.extend_from_slice(s.get(2..).unwrap_or(&[]));
        let ys = self.inner.forward(&[m.t(x.reshape(&flat))?], training)?;
        ys.into_iter()
            .map(|y| {
                let mut shape = vec![b, t];
                shape.extend_from_slice(y.shape().get(1..).unwrap_or(&[]));
                m.t(y.reshape(&shape))
            })
            .collect()
    }
    fn take_state_updates(&self) -> Vec<crate::layers::StateUpdate> {
        // the wrapper holds the inner layer's weights under its own path
        self.inner.take_state_updates()
    }
}
