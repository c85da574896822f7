//! Attention and the remaining core layers: `Attention`, `AdditiveAttention`,
//! `MultiHeadAttention`, `EinsumDense`, `Identity`, `ActivityRegularization` and the activation
//! layers (`ReLU`, `LeakyReLU`, `PReLU`, `ELU`, `ThresholdedReLU`, `Softmax`).
//!
//! Call arguments: attention layers read `use_causal_mask` and `return_attention_scores` from the
//! keyword arguments recorded in the layer's graph nodes (`Node::kwargs`, the same in Keras 3
//! `{"args", "kwargs"}` nodes and tf-keras entry kwargs); every call of a shared layer must agree.
//! Tensors passed by keyword (tf-keras `mha(q, value=v)`, Keras 3 `key=`) reach the layer after the
//! positional ones, in sorted-key order (the executor appends `Node::kwarg_inputs`); the layer maps
//! them to their roles from the node's kwargs keys.

use crate::activation::{self, Activation};
use crate::cfg::{Meta, bool_of, f32_of, get, ints_of, weights_n};
use crate::error::Result;
use crate::layers::{BuildCtx, Layer, Masked};
use strata_format::config::{ConfigDialect, LayerConfig};
use strata_format::json::Json;
use strata_tensor::{Tensor, einsum};

/// Classes this family builds.
pub const SUPPORTED: &[&str] = &[
    "Identity",
    "ActivityRegularization",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "ThresholdedReLU",
    "Softmax",
    "EinsumDense",
    "Attention",
    "AdditiveAttention",
    "MultiHeadAttention",
    "TFOpLambda",
    "SlicingOpLambda",
    "TensorFlowOpLayer",
];

/// The large negative that Keras adds to masked attention logits (float32).
const LARGE_NEGATIVE: f32 = -1e9;

mod tfop;

type TResult<T> = std::result::Result<T, strata_tensor::Error>;

/// What one call of a layer passes besides its positional tensors.
#[derive(Debug, Clone, Default)]
struct CallArgs {
    /// Roles of the tensors passed by keyword, in the order the executor appends them.
    kw_roles: Vec<String>,
    use_causal_mask: bool,
    return_attention_scores: bool,
}

/// The call arguments of a layer's graph nodes; every node must agree.
fn call_args(m: &Meta, layer: &LayerConfig) -> Result<CallArgs> {
    let mut first: Option<(Vec<String>, bool, bool)> = None;
    for node in &layer.inbound_nodes {
        let kw = &node.kwargs;
        // the keywords that pass tensors, sorted, one per keyword (as the executor hands them over)
        let mut keys = node.kwarg_input_names();
        keys.dedup();
        let flag = |key: &str| -> Result<bool> {
            match get(kw, key) {
                None => Ok(false),
                Some(v) => v.as_bool().ok_or_else(|| m.cfg_err(key, "is a call argument that is not a boolean")),
            }
        };
        let this = (keys, flag("use_causal_mask")?, flag("return_attention_scores")?);
        match &first {
            None => first = Some(this),
            Some(f) if *f != this => {
                return Err(m.cfg_err(
                    "inbound_nodes",
                    "calls the shared layer with different keyword arguments; strata needs every call to agree",
                ));
            }
            Some(_) => {}
        }
    }
    let (kw_roles, use_causal_mask, return_attention_scores) = first.unwrap_or_default();
    Ok(CallArgs { kw_roles, use_causal_mask, return_attention_scores })
}

/// The call's positional tensors followed by its keyword tensors in `roles` order, with their masks
/// (how the attention and TF-op layers read keyword tensors back by role).
pub(crate) fn with_kw_tensors(
    inputs: &[Tensor],
    masks: &[Option<Tensor>],
    roles: &[String],
    args: &crate::layers::CallArgs<'_>,
    m: &Meta,
) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
    let mut all = inputs.to_vec();
    let mut all_masks = masks.to_vec();
    all_masks.resize(inputs.len(), None);
    for role in roles {
        let (t, mask) = args
            .kw_masked(role)
            .ok_or_else(|| m.cfg_err(role, "is a tensor call argument strata does not implement for this layer"))?;
        all.push(t.clone());
        all_masks.push(mask.cloned());
    }
    Ok((all, all_masks))
}

/// `ReLU` parameters (Keras `activations.relu`).
#[derive(Debug, Clone, Copy)]
struct ReluParams {
    max_value: Option<f32>,
    negative_slope: f32,
    threshold: f32,
}

fn relu_general(x: &Tensor, p: ReluParams) -> TResult<Tensor> {
    let ReluParams { max_value, negative_slope: s, threshold: th } = p;
    let f = move |v: f32| -> f32 {
        if s != 0.0 && max_value.is_none() && th == 0.0 {
            return if v > 0.0 { v } else { s * v };
        }
        let mut y = if th != 0.0 { if v > th { v } else { 0.0 } } else { v.max(0.0) };
        if let Some(mv) = max_value {
            y = y.clamp(0.0, mv);
        }
        if s != 0.0 {
            y -= s * (th - v).max(0.0);
        }
        y
    };
    let y = Tensor::from_vec(x.shape(), x.as_slice().iter().map(|&v| f(v)).collect())?;
    // the derivative of Keras's `ReLU.static_call` composition, op by op as TensorFlow differentiates it
    let df = move |v: f32, _: f32| -> f32 {
        let b = |c: bool| f32::from(u8::from(c));
        if s != 0.0 && max_value.is_none() && th == 0.0 {
            return if v > 0.0 { 1.0 } else { s };
        }
        let (p, mut d, clip) = if th != 0.0 {
            (if v > th { v } else { 0.0 }, b(v > th), max_value)
        } else if max_value == Some(6.0) {
            (v.clamp(0.0, 6.0), b(v > 0.0 && v < 6.0), None)
        } else {
            (v.max(0.0), b(v > 0.0), max_value)
        };
        if let Some(mv) = clip {
            d *= b(p >= 0.0 && p <= mv);
        }
        if s != 0.0 {
            d += s * b(v < th);
        }
        d
    };
    crate::grad::unary("relu", x, y, df)
}

/// `where(mask, x, fill)` with `mask` (0/1 floats, `> 0.5` keeps) broadcast against `x`.
fn where_mask(mask: &Tensor, x: &Tensor, fill: f32) -> TResult<Tensor> {
    let keep = mask.greater(&Tensor::scalar(0.5))?;
    strata_tensor::select(&keep, x, &Tensor::scalar(fill))
}

/// Softmax over one or several axes.
fn softmax_axes(x: &Tensor, axes: &[isize]) -> TResult<Tensor> {
    match axes {
        [a] => x.softmax(*a),
        _ => {
            let m = x.max(Some(axes), true)?;
            let e = x.sub(&m)?.exp();
            e.div(&e.sum(Some(axes), true)?)
        }
    }
}

/// Elementwise AND of two 0/1 masks (broadcasting).
fn and(a: Option<Tensor>, b: Tensor) -> TResult<Tensor> {
    match a {
        None => Ok(b),
        Some(a) => a.mul(&b),
    }
}

/// `[1, tq, tv]` lower-triangular (row >= column) 0/1 mask.
fn causal_mask(tq: usize, tv: usize) -> TResult<Tensor> {
    let data = (0..tq).flat_map(|i| (0..tv).map(move |j| if i >= j { 1.0 } else { 0.0 })).collect();
    Tensor::from_vec(&[1, tq, tv], data)
}

/// A Keras mask as 0/1 floats (Keras masks are booleans; anything non-zero counts as set).
fn bool_mask(m: &Tensor) -> TResult<Tensor> {
    m.not_equal(&Tensor::scalar(0.0))
}

/// An `EinsumDense` (also the projections inside `MultiHeadAttention`).
#[derive(Debug, Clone)]
struct EinsumDense {
    equation: String,
    kernel: Tensor,
    bias: Option<Tensor>,
    activation: Activation,
}

impl EinsumDense {
    fn apply(&self, x: &Tensor) -> TResult<Tensor> {
        let mut y = einsum(&self.equation, x, &self.kernel)?;
        if let Some(b) = &self.bias {
            y = y.add(b)?;
        }
        self.activation.apply(&y)
    }
}

/// `_build_proj_equation` of Keras's multi-head attention: `free` free axes, `bound` contracted
/// axes, `out` kernel output axes.
fn proj_equation(free: usize, bound: usize, out: usize) -> Option<String> {
    let letter = |i: usize| (i < 26).then(|| char::from(b'a' + i as u8));
    let mut input = String::new();
    let mut kernel = String::new();
    let mut output = String::new();
    for i in 0..free {
        let c = letter(i)?;
        input.push(c);
        output.push(c);
    }
    for i in free..free + bound {
        let c = letter(i)?;
        input.push(c);
        kernel.push(c);
    }
    for i in free + bound..free + bound + out {
        let c = letter(i)?;
        kernel.push(c);
        output.push(c);
    }
    Some(format!("{input},{kernel}->{output}"))
}

/// `_build_attention_equation`: (dot-product equation, combine equation, scores rank).
fn attention_equations(rank: usize, attn_axes: &[usize]) -> Option<(String, String, usize)> {
    let letter = |i: usize| (i < 26).then(|| char::from(b'a' + i as u8));
    let target: Vec<char> = (0..rank).map(letter).collect::<Option<_>>()?;
    let batch: Vec<usize> = (0..rank).filter(|i| !attn_axes.contains(i) && *i != rank - 1).collect();
    let mut offset = rank;
    let mut source = Vec::with_capacity(rank);
    for i in 0..rank {
        if batch.contains(&i) || i == rank - 1 {
            source.push(*target.get(i)?);
        } else {
            source.push(letter(offset)?);
            offset += 1;
        }
    }
    let mut product = String::new();
    for &i in &batch {
        product.push(*target.get(i)?);
    }
    for &i in attn_axes {
        product.push(*target.get(i)?);
    }
    for &i in attn_axes {
        product.push(*source.get(i)?);
    }
    let (s, t): (String, String) = (source.iter().collect(), target.iter().collect());
    Some((format!("{s},{t}->{product}"), format!("{product},{s}->{t}"), product.len()))
}

#[derive(Debug, Clone)]
struct Mha {
    key_dim: usize,
    attention_axes: Option<Vec<isize>>,
    /// Kernels and biases in Keras order: query, key, value, output.
    query: (Tensor, Option<Tensor>),
    key: (Tensor, Option<Tensor>),
    value: (Tensor, Option<Tensor>),
    output: (Tensor, Option<Tensor>),
    dropout: f32,
}

#[derive(Debug, Clone)]
enum Op {
    Identity,
    Relu(ReluParams),
    PRelu(Tensor),
    Elu(f32),
    Thresholded(f32),
    Softmax(Vec<isize>),
    EinsumDense(EinsumDense),
    /// `Attention`: scale weight, concat score weight.
    Dot {
        scale: Option<Tensor>,
        concat: Option<Tensor>,
    },
    /// `AdditiveAttention`: scale weight `[dim]`.
    Additive {
        scale: Option<Tensor>,
    },
    Mha(Box<Mha>),
}

/// A layer of this family.
struct AttnLayer {
    meta: Meta,
    op: Op,
    call: CallArgs,
    keras3: bool,
}

fn num(m: &Meta, cfg: &Json, key: &str) -> Result<Option<f32>> {
    match get(cfg, key) {
        None => Ok(None),
        Some(v) => v.as_f64().map(|f| Some(f as f32)).ok_or_else(|| m.cfg_err(key, "is not a number")),
    }
}

fn positive(m: &Meta, cfg: &Json, key: &str) -> Result<Option<usize>> {
    match get(cfg, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|u| usize::try_from(u).ok())
            .filter(|&u| u > 0 && u <= 1 << 20)
            .map(Some)
            .ok_or_else(|| m.cfg_err(key, "must be a positive integer")),
    }
}

/// Builds a layer of this family; `Ok(None)` for classes it does not know.
pub fn build(layer: &LayerConfig, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Option<Box<dyn Layer>>> {
    if matches!(layer.class_name.as_str(), "TFOpLambda" | "SlicingOpLambda") {
        weights_n(&Meta::of(layer), &w, 0)?;
        return Ok(Some(Box::new(tfop::build(layer)?)));
    }
    if layer.class_name == "TensorFlowOpLayer" {
        weights_n(&Meta::of(layer), &w, 0)?;
        return Ok(Some(Box::new(tfop::build_node(layer)?)));
    }
    let m = Meta::of(layer);
    let cfg = &layer.config;
    let keras3 = matches!(ctx.dialect, ConfigDialect::Keras3 | ConfigDialect::Keras3LegacyH5);
    let op = match layer.class_name.as_str() {
        "Identity" | "ActivityRegularization" => {
            weights_n(&m, &w, 0)?;
            Op::Identity
        }
        "ReLU" => {
            weights_n(&m, &w, 0)?;
            let max_value = num(&m, cfg, "max_value")?;
            if max_value.is_some_and(|v| v < 0.0) {
                return Err(m.cfg_err("max_value", "must be >= 0"));
            }
            Op::Relu(ReluParams {
                max_value,
                negative_slope: f32_of(&m, cfg, "negative_slope", 0.0)?,
                threshold: f32_of(&m, cfg, "threshold", 0.0)?,
            })
        }
        "LeakyReLU" => {
            weights_n(&m, &w, 0)?;
            let slope = match num(&m, cfg, "negative_slope")? {
                Some(s) => s,
                None => f32_of(&m, cfg, "alpha", 0.3)?,
            };
            Op::Relu(ReluParams { max_value: None, negative_slope: slope, threshold: 0.0 })
        }
        "PReLU" => {
            weights_n(&m, &w, 1)?;
            Op::PRelu(w.into_iter().next().ok_or_else(|| m.cfg_err("alpha", "has no weight"))?)
        }
        "ELU" => {
            weights_n(&m, &w, 0)?;
            Op::Elu(f32_of(&m, cfg, "alpha", 1.0)?)
        }
        "ThresholdedReLU" => {
            weights_n(&m, &w, 0)?;
            Op::Thresholded(f32_of(&m, cfg, "theta", 1.0)?)
        }
        "Softmax" => {
            weights_n(&m, &w, 0)?;
            let axes = ints_of(&m, cfg, "axis")?.unwrap_or_else(|| vec![-1]);
            if axes.is_empty() {
                return Err(m.cfg_err("axis", "is an empty list"));
            }
            Op::Softmax(axes)
        }
        "EinsumDense" => Op::EinsumDense(einsum_dense(&m, cfg, w, ctx.dialect)?),
        "Attention" => {
            let use_scale = bool_of(&m, cfg, "use_scale", false)?;
            let concat = match get(cfg, "score_mode").and_then(Json::as_str) {
                None | Some("dot") => false,
                Some("concat") => true,
                Some(o) => return Err(m.cfg_err("score_mode", format!("is `{o}`, expected `dot` or `concat`"))),
            };
            weights_n(&m, &w, usize::from(use_scale) + usize::from(concat))?;
            let mut it = w.into_iter();
            let scale = if use_scale { it.next() } else { None };
            let concat = if concat { it.next() } else { None };
            Op::Dot { scale, concat }
        }
        "AdditiveAttention" => {
            let use_scale = bool_of(&m, cfg, "use_scale", true)?;
            weights_n(&m, &w, usize::from(use_scale))?;
            Op::Additive { scale: w.into_iter().next() }
        }
        "MultiHeadAttention" => Op::Mha(Box::new(mha(&m, cfg, w)?)),
        _ => return Ok(None),
    };
    let mut call = call_args(&m, layer)?;
    // tf.keras 2.x before `use_causal_mask` (call argument) wrote `causal` into the config.
    if layer.class_name == "Attention" && bool_of(&m, cfg, "causal", false)? {
        call.use_causal_mask = true;
    }
    let attention = matches!(op, Op::Dot { .. } | Op::Additive { .. } | Op::Mha(_));
    if !attention && (call.use_causal_mask || call.return_attention_scores || !call.kw_roles.is_empty()) {
        return Err(m.cfg_err(
            "inbound_nodes",
            format!("passes call arguments {:?} that strata does not implement for this layer", call.kw_roles),
        ));
    }
    Ok(Some(Box::new(AttnLayer { meta: m, op, call, keras3 })))
}

fn einsum_dense(m: &Meta, cfg: &Json, w: Vec<Tensor>, dialect: ConfigDialect) -> Result<EinsumDense> {
    let equation =
        get(cfg, "equation").and_then(Json::as_str).ok_or_else(|| m.cfg_err("equation", "is missing"))?.to_string();
    if get(cfg, "lora_rank").is_some() {
        return Err(m.cfg_err("lora_rank", "is set; strata does not implement LoRA EinsumDense (merge it first)"));
    }
    let bias_axes = get(cfg, "bias_axes").and_then(Json::as_str).filter(|s| !s.is_empty());
    weights_n(m, &w, if bias_axes.is_some() { 2 } else { 1 })?;
    let mut it = w.into_iter();
    let kernel = it.next().ok_or_else(|| m.cfg_err("equation", "has no kernel"))?;
    // Validate the equation against the kernel now (input rank is checked per call).
    let (ins, _) = equation
        .split_once("->")
        .ok_or_else(|| m.cfg_err("equation", format!("`{equation}` has no `->`; expected e.g. `ab,bc->ac`")))?;
    let Some((_, kspec)) = ins.split_once(',') else {
        return Err(m.cfg_err("equation", format!("`{equation}` needs two operands, input and kernel")));
    };
    if !kspec.contains("...") && kspec.chars().count() != kernel.rank() {
        return Err(m.cfg_err(
            "equation",
            format!(
                "`{equation}` gives the kernel {} axes but the kernel weight has shape {:?}",
                kspec.len(),
                kernel.shape()
            ),
        ));
    }
    Ok(EinsumDense {
        equation,
        kernel,
        bias: it.next(),
        activation: activation::parse(&m.name, get(cfg, "activation"), dialect)?,
    })
}

fn mha(m: &Meta, cfg: &Json, w: Vec<Tensor>) -> Result<Mha> {
    let num_heads = positive(m, cfg, "num_heads")?.ok_or_else(|| m.cfg_err("num_heads", "is missing"))?;
    let key_dim = positive(m, cfg, "key_dim")?.ok_or_else(|| m.cfg_err("key_dim", "is missing"))?;
    if bool_of(m, cfg, "use_gate", false)? {
        return Err(m.cfg_err("use_gate", "is true; strata does not implement gated MultiHeadAttention"));
    }
    if get(cfg, "sliding_window").is_some() {
        return Err(m.cfg_err("sliding_window", "is set; strata does not implement sliding-window attention"));
    }
    let use_bias = bool_of(m, cfg, "use_bias", true)?;
    let per = if use_bias { 2 } else { 1 };
    weights_n(m, &w, 4 * per)?;
    let mut it = w.into_iter();
    let mut next = |what: &str| -> Result<(Tensor, Option<Tensor>)> {
        let k = it.next().ok_or_else(|| m.cfg_err(what, "has no kernel"))?;
        let b = if use_bias { Some(it.next().ok_or_else(|| m.cfg_err(what, "has no bias"))?) } else { None };
        Ok((k, b))
    };
    let (query, key, value, output) = (next("query")?, next("key")?, next("value")?, next("attention_output")?);
    for (what, (k, _)) in [("query", &query), ("key", &key)] {
        let s = k.shape();
        if s.len() != 3 || s.get(1) != Some(&num_heads) || s.get(2) != Some(&key_dim) {
            return Err(m.cfg_err(
                what,
                format!("kernel has shape {s:?}, expected [dim, num_heads={num_heads}, key_dim={key_dim}]"),
            ));
        }
    }
    Ok(Mha {
        key_dim,
        attention_axes: ints_of(m, cfg, "attention_axes")?,
        query,
        key,
        value,
        output,
        dropout: f32_of(m, cfg, "dropout", 0.0)?,
    })
}

impl AttnLayer {
    /// Splits the call's tensors (positional, then keyword tensors) into roles.
    fn roles<'a>(
        &self,
        inputs: &'a [Tensor],
        masks: &'a [Option<Tensor>],
        positional: &[&str],
    ) -> Result<Vec<(String, &'a Tensor, Option<&'a Tensor>)>> {
        let m = &self.meta;
        let n_kw = self.call.kw_roles.len();
        let n_pos = inputs.len().checked_sub(n_kw).ok_or_else(|| {
            m.arity(&format!("at least {n_kw} (keyword tensors {:?})", self.call.kw_roles), inputs.len())
        })?;
        if n_pos > positional.len() {
            return Err(m.arity(&format!("at most {} positional tensors", positional.len()), inputs.len()));
        }
        let names = positional.iter().take(n_pos).map(|s| s.to_string()).chain(self.call.kw_roles.iter().cloned());
        Ok(names.zip(inputs).enumerate().map(|(i, (n, t))| (n, t, masks.get(i).and_then(Option::as_ref))).collect())
    }

    fn dot_attention(&self, inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Masked> {
        let m = &self.meta;
        let roles = self.roles(inputs, masks, &["query", "value", "key"])?;
        let pick = |r: &str| roles.iter().find(|(n, _, _)| n == r);
        for (n, _, _) in &roles {
            if !["query", "value", "key"].contains(&n.as_str()) {
                return Err(m.cfg_err(n, "is a tensor call argument strata does not implement for this layer"));
            }
        }
        let (Some((_, q, q_mask)), Some((_, v, v_mask))) = (pick("query"), pick("value")) else {
            return Err(m.arity("2 or 3 ([query, value] or [query, value, key])", inputs.len()));
        };
        let k = pick("key").map(|(_, k, _)| *k).unwrap_or(v);
        if q.rank() != 3 || v.rank() != 3 || k.rank() != 3 {
            return Err(m.cfg_err(
                "inputs",
                format!("needs rank-3 query/value/key, got {:?}, {:?}, {:?}", q.shape(), v.shape(), k.shape()),
            ));
        }
        let scores = match &self.op {
            Op::Dot { scale, concat: None } => {
                let s = m.t(q.matmul_nt(k))?;
                match scale {
                    Some(sc) => m.t(s.mul(sc))?,
                    None => s,
                }
            }
            Op::Dot { scale, concat: Some(cw) } => {
                let mut sum = m.t(m.t(q.unsqueeze(-2))?.add(&m.t(k.unsqueeze(-3))?))?;
                if let Some(sc) = scale {
                    sum = m.t(sum.mul(sc))?;
                }
                m.t(m.t(sum.tanh().sum(Some(&[-1]), false))?.mul(cw))?
            }
            Op::Additive { scale } => {
                let mut t = m.t(m.t(q.unsqueeze(-2))?.add(&m.t(k.unsqueeze(-3))?))?.tanh();
                if let Some(sc) = scale {
                    t = m.t(t.mul(sc))?;
                }
                m.t(t.sum(Some(&[-1]), false))?
            }
            _ => return Err(m.cfg_err("class_name", "is not a dense attention layer")),
        };
        let (tq, tv) = (q.shape().get(1).copied().unwrap_or(0), k.shape().get(1).copied().unwrap_or(0));
        let mut smask = match v_mask {
            Some(vm) => Some(m.t(m.t(bool_mask(vm))?.unsqueeze(-2))?),
            None => None,
        };
        if self.call.use_causal_mask {
            smask = Some(m.t(and(smask, m.t(causal_mask(tq, tv))?))?);
        }
        let scores = match &smask {
            Some(sm) => {
                // Keras: where(mask, scores, scores - 1e9)
                let keep = m.t(sm.broadcast_to(scores.shape()))?;
                let shifted = m.t(scores.add(&Tensor::scalar(LARGE_NEGATIVE)))?;
                m.t(strata_tensor::select(&m.t(keep.greater(&Tensor::scalar(0.5)))?, &scores, &shifted))?
            }
            None => scores,
        };
        let weights = m.t(scores.softmax(-1))?;
        let mut out = m.t(weights.matmul(v))?;
        if let Some(qm) = q_mask {
            out = m.t(out.mul(&m.t(m.t(bool_mask(qm))?.unsqueeze(-1))?))?;
        }
        let qm = q_mask.cloned();
        if self.call.return_attention_scores {
            Ok((vec![out, weights], vec![qm.clone(), qm]))
        } else {
            Ok((vec![out], vec![qm]))
        }
    }

    fn mha(&self, p: &Mha, inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Masked> {
        let m = &self.meta;
        let roles = self.roles(inputs, masks, &["query", "value", "key"])?;
        let pick = |r: &str| roles.iter().find(|(n, _, _)| n == r);
        for (n, _, _) in &roles {
            if !["query", "value", "key", "attention_mask"].contains(&n.as_str()) {
                return Err(m.cfg_err(n, "is a tensor call argument strata does not implement for MultiHeadAttention"));
            }
        }
        let (Some((_, q, q_mask)), Some((_, v, v_mask))) = (pick("query"), pick("value")) else {
            return Err(m.arity("query and value", inputs.len()));
        };
        let (k, k_mask) = match pick("key") {
            Some((_, k, km)) => (*k, *km),
            None => (*v, None),
        };
        let r = q.rank();
        if r < 3 || v.rank() != k.rank() {
            return Err(m.cfg_err(
                "inputs",
                format!("needs query/value/key of rank >= 3, got {:?}, {:?}, {:?}", q.shape(), v.shape(), k.shape()),
            ));
        }
        let proj = |x: &Tensor, (kern, bias): &(Tensor, Option<Tensor>), bound: usize, out: usize| -> Result<Tensor> {
            let free = x.rank().saturating_sub(bound);
            let eq = proj_equation(free, bound, out)
                .ok_or_else(|| m.cfg_err("inputs", format!("rank {} is too large", x.rank())))?;
            let mut y = m.t(einsum(&eq, x, kern))?;
            if let Some(b) = bias {
                y = m.t(y.add(b))?;
            }
            Ok(y)
        };
        let qp = proj(q, &p.query, 1, 2)?;
        let kp = proj(k, &p.key, 1, 2)?;
        let vp = proj(v, &p.value, 1, 2)?;
        let rank = qp.rank();
        let attn_axes: Vec<usize> = match &p.attention_axes {
            None => (1..rank.saturating_sub(2)).collect(),
            Some(a) => a
                .iter()
                .map(|&x| {
                    let n = if x < 0 { (rank as isize - 1) + x } else { x };
                    usize::try_from(n).ok().filter(|&n| n >= 1 && n + 2 < rank)
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| m.cfg_err("attention_axes", format!("{a:?} are not valid axes of a rank-{r} query")))?,
        };
        let (dot_eq, combine_eq, scores_rank) = attention_equations(rank, &attn_axes)
            .ok_or_else(|| m.cfg_err("inputs", format!("rank {r} is too large")))?;
        let norm_axes: Vec<isize> = (scores_rank - attn_axes.len()..scores_rank).map(|a| a as isize).collect();
        // Mask [B, T, S] from the Keras masks, the causal mask and an explicit attention_mask.
        let mut mask: Option<Tensor> = None;
        if let Some(qm) = q_mask {
            mask = Some(m.t(m.t(bool_mask(qm))?.unsqueeze(-1))?);
        }
        for vm in [*v_mask, k_mask].into_iter().flatten() {
            mask = Some(m.t(and(mask, m.t(m.t(bool_mask(vm))?.unsqueeze(-2))?))?);
        }
        if self.call.use_causal_mask {
            let (tq, tv) = (q.shape().get(1).copied().unwrap_or(0), v.shape().get(1).copied().unwrap_or(0));
            mask = Some(m.t(and(mask, m.t(causal_mask(tq, tv))?))?);
        }
        if let Some((_, am, _)) = pick("attention_mask") {
            mask = Some(m.t(and(mask, m.t(bool_mask(am))?))?);
        }
        let scale = 1.0 / (p.key_dim as f32).sqrt();
        let scores = m.t(einsum(&dot_eq, &kp, &qp.scale(scale)))?;
        let weights = match mask {
            None => m.t(softmax_axes(&scores, &norm_axes))?,
            Some(mut mk) => {
                let axis = -(attn_axes.len() as isize) * 2 - 1;
                while mk.rank() < scores.rank() {
                    let a = (mk.rank() as isize + 1 + axis).max(0);
                    mk = m.t(mk.unsqueeze(a))?;
                }
                let x = m.t(where_mask(&mk, &scores, LARGE_NEGATIVE))?;
                let y = m.t(softmax_axes(&x, &norm_axes))?;
                // Keras 3's Softmax layer zeroes masked positions; its fused dot-product path (rank-4
                // projections, no dropout, no scores returned) and tf-keras leave them.
                let fused = rank == 4 && p.dropout <= 0.0 && !self.call.return_attention_scores;
                if self.keras3 && !fused { m.t(where_mask(&mk, &y, 0.0))? } else { y }
            }
        };
        let ctx = m.t(einsum(&combine_eq, &weights, &vp))?;
        let out_dims = p.output.0.rank().checked_sub(2).filter(|&d| d >= 1).ok_or_else(|| {
            m.cfg_err("attention_output", format!("kernel has shape {:?}, expected rank >= 3", p.output.0.shape()))
        })?;
        let out = proj(&ctx, &p.output, 2, out_dims)?;
        let qm = q_mask.cloned();
        if self.call.return_attention_scores {
            Ok((vec![out, weights], vec![qm, None]))
        } else {
            Ok((vec![out], vec![qm]))
        }
    }
}

impl Layer for AttnLayer {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        Ok(self.forward_masked(inputs, &[], training)?.0)
    }
    /// Keyword tensors (`value=`, `key=`, `attention_mask=`) follow the positional ones in the
    /// order of `kw_roles` (sorted keys), which is how the roles are read back.
    fn call(&self, inputs: &[Tensor], masks: &[Option<Tensor>], args: &crate::layers::CallArgs<'_>) -> Result<Masked> {
        if self.call.kw_roles.is_empty() {
            if let Some((k, _, _)) = args.kw_tensors.first() {
                return Err(self.meta.cfg_err(k, "is a tensor call argument strata does not implement for this layer"));
            }
            return self.forward_masked(inputs, masks, args.training);
        }
        let (all, all_masks) = with_kw_tensors(inputs, masks, &self.call.kw_roles, args, &self.meta)?;
        self.forward_masked(&all, &all_masks, args.training)
    }
    fn forward_masked(&self, inputs: &[Tensor], masks: &[Option<Tensor>], _training: bool) -> Result<Masked> {
        let m = &self.meta;
        let y = match &self.op {
            Op::Dot { .. } | Op::Additive { .. } => return self.dot_attention(inputs, masks),
            Op::Mha(p) => return self.mha(p, inputs, masks),
            Op::Identity => m.one(inputs)?.clone(),
            Op::Relu(p) => m.t(relu_general(m.one(inputs)?, *p))?,
            Op::PRelu(alpha) => {
                let x = m.one(inputs)?;
                let pos = x.relu();
                let neg = m.t(alpha.mul(&x.neg().relu()))?;
                m.t(pos.sub(&neg))?
            }
            Op::Elu(a) => {
                let x = m.one(inputs)?;
                let a = *a;
                let y = m.t(Tensor::from_vec(
                    x.shape(),
                    x.as_slice().iter().map(|&v| if v > 0.0 { v } else { a * v.exp_m1() }).collect(),
                ))?;
                m.t(crate::grad::unary("elu", x, y, move |v, _| if v > 0.0 { 1.0 } else { a * v.exp() }))?
            }
            Op::Thresholded(th) => {
                let x = m.one(inputs)?;
                let th = *th;
                let y = m.t(Tensor::from_vec(
                    x.shape(),
                    x.as_slice().iter().map(|&v| if v > th { v } else { 0.0 }).collect(),
                ))?;
                m.t(crate::grad::unary("thresholded_relu", x, y, move |v, _| f32::from(u8::from(v > th))))?
            }
            Op::Softmax(axes) => {
                let x = m.one(inputs)?;
                match masks.first().and_then(Option::as_ref) {
                    None => m.t(softmax_axes(x, axes))?,
                    Some(mk) => {
                        if self.keras3 {
                            let y = m.t(softmax_axes(&m.t(where_mask(mk, x, LARGE_NEGATIVE))?, axes))?;
                            m.t(where_mask(mk, &y, 0.0))?
                        } else {
                            // tf-keras: inputs += (1 - mask) * -1e9
                            let adder = m.t(m.t(Tensor::scalar(1.0).sub(mk))?.mul(&Tensor::scalar(LARGE_NEGATIVE)))?;
                            m.t(softmax_axes(&m.t(x.add(&adder))?, axes))?
                        }
                    }
                }
            }
            Op::EinsumDense(e) => m.t(e.apply(m.one(inputs)?))?,
        };
        let mask = masks.first().cloned().flatten();
        Ok((vec![y], vec![mask]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_attention_equations() {
        // MultiHeadAttention on rank-3 inputs: projected rank 4, attention over axis 1.
        let (dot, combine, r) = attention_equations(4, &[1]).unwrap();
        assert_eq!(dot, "aecd,abcd->acbe");
        assert_eq!(combine, "acbe,aecd->abcd");
        assert_eq!(r, 4);
        assert_eq!(proj_equation(2, 1, 2).unwrap(), "abc,cde->abde");
        assert_eq!(proj_equation(2, 2, 1).unwrap(), "abcd,cde->abe");
    }

    #[test]
    fn relu_options_follow_keras() {
        let x = Tensor::from_vec(&[5], vec![-2.0, -0.5, 0.5, 2.0, 8.0]).unwrap();
        let p = ReluParams { max_value: Some(6.0), negative_slope: 0.1, threshold: 1.0 };
        let y = relu_general(&x, p).unwrap();
        assert_eq!(y.as_slice(), &[-0.3, -0.15, -0.05, 2.0, 6.0]);
    }
}
