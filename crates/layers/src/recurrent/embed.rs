//! The mask producers: `Embedding` (with `mask_zero`) and `Masking`.

use crate::cfg::{Meta, bool_of, f32_of, weights_n};
use crate::error::Result;
use crate::layers::{Layer, Masked};
use strata_format::config::LayerConfig;
use strata_format::json::Json;
use strata_tensor::Tensor;

/// `Embedding`: a table lookup of integer ids (given as f32 values); with `mask_zero` id 0 is
/// padding and masks its position.
pub(crate) struct Embedding {
    meta: Meta,
    table: Tensor,
    mask_zero: bool,
    /// Reduced compute dtype of the layer's policy: outputs are rounded to it.
    compute: Option<strata_tensor::DType>,
}

impl Embedding {
    pub(crate) fn build(layer: &LayerConfig, w: Vec<Tensor>) -> Result<Embedding> {
        let m = Meta::of(layer);
        let cfg = &layer.config;
        let mask_zero = bool_of(&m, cfg, "mask_zero", false)?;
        // `input_length` (Keras 2) only fixed the static shape; the lookup does not need it.
        weights_n(&m, &w, 1)?;
        let table = w.into_iter().next().ok_or_else(|| m.cfg_err("input_dim", "has no embedding table"))?;
        if table.rank() != 2 {
            return Err(
                m.cfg_err("input_dim", format!("has an embedding table of shape {:?}, expected 2-D", table.shape()))
            );
        }
        Ok(Embedding { meta: m, table, mask_zero, compute: super::reduced_policy(cfg) })
    }

    fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        let vocab = self.table.shape().first().copied().unwrap_or(0);
        if let Some((pos, &v)) =
            ids.as_slice().iter().enumerate().find(|(_, v)| !(v.fract() == 0.0 && **v >= 0.0 && (**v as usize) < vocab))
        {
            return Err(self.meta.cfg_err(
                "input_dim",
                format!(
                    "is {vocab} but input position {pos} holds id {v}; ids must be integers in 0..{vocab} \
                     (check the tokenizer or raise input_dim)"
                ),
            ));
        }
        let y = self.meta.t(self.table.take(ids, 0))?;
        round_to(&self.meta, y, self.compute)
    }
}

impl Layer for Embedding {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        Ok(vec![self.lookup(self.meta.one(inputs)?)?])
    }
    fn forward_masked(&self, inputs: &[Tensor], _masks: &[Option<Tensor>], _training: bool) -> Result<Masked> {
        let ids = self.meta.one(inputs)?;
        let y = self.lookup(ids)?;
        let mask = if self.mask_zero { Some(ids.ne_scalar(0.0)) } else { None };
        Ok((vec![y], vec![mask]))
    }
}

/// `Masking`: time steps whose features all equal `mask_value` are zeroed and masked.
pub(crate) struct Masking {
    meta: Meta,
    value: f32,
    compute: Option<strata_tensor::DType>,
}

impl Masking {
    pub(crate) fn build(layer: &LayerConfig, w: Vec<Tensor>) -> Result<Masking> {
        let m = Meta::of(layer);
        weights_n(&m, &w, 0)?;
        let value = f32_of(&m, &layer.config, "mask_value", 0.0)?;
        Ok(Masking { meta: m, value, compute: super::reduced_policy(&layer.config) })
    }

    /// The output and its mask (`any(x != mask_value)` over the last axis).
    fn run(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let m = &self.meta;
        let keep = m.t(x.ne_scalar(self.value).max(Some(&[-1]), true))?;
        let y = round_to(m, m.t(x.mul(&keep))?, self.compute)?;
        let mut shape = keep.shape().to_vec();
        shape.pop();
        Ok((y, m.t(keep.reshape(&shape))?))
    }
}

impl Layer for Masking {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        Ok(vec![self.run(self.meta.one(inputs)?)?.0])
    }
    fn forward_masked(&self, inputs: &[Tensor], _masks: &[Option<Tensor>], _training: bool) -> Result<Masked> {
        let (y, mask) = self.run(self.meta.one(inputs)?)?;
        Ok((vec![y], vec![Some(mask)]))
    }
}

/// Rounds to a reduced dtype (identity for `None`).
fn round_to(m: &Meta, t: Tensor, d: Option<strata_tensor::DType>) -> Result<Tensor> {
    let Some(d) = d else { return Ok(t) };
    let bytes = m.t(t.to_le_bytes(d))?;
    m.t(Tensor::from_le_bytes(d, t.shape(), &bytes))
}

trait NeScalar {
    fn ne_scalar(&self, v: f32) -> Tensor;
}

impl NeScalar for Tensor {
    /// 1 where `x != v`, else 0 (NaN counts as different).
    fn ne_scalar(&self, v: f32) -> Tensor {
        let data = self.as_slice().iter().map(|&x| if x != v { 1.0 } else { 0.0 }).collect();
        Tensor::from_vec(self.shape(), data).unwrap_or_else(|_| self.clone())
    }
}

/// Keras 3 `NotEqual` op layer (`keras.ops.not_equal`), which Keras 3 functional configs record
/// for the masks of `Embedding(mask_zero=True)` and `Masking`: 1 where the inputs differ, else 0.
/// The second operand is a second input tensor or a number written in the call's arguments.
pub(crate) struct NotEqual {
    meta: Meta,
    scalar: Option<f32>,
}

impl NotEqual {
    pub(crate) fn build(layer: &LayerConfig, w: Vec<Tensor>) -> Result<NotEqual> {
        let m = Meta::of(layer);
        weights_n(&m, &w, 0)?;
        let mut scalar = None;
        for node in &layer.inbound_nodes {
            let lit = node.args_structure.as_array().and_then(|a| a.iter().find_map(Json::as_f64)).map(|v| v as f32);
            match (scalar, lit) {
                (Some(a), Some(b)) if a != b => {
                    return Err(m.cfg_err("args", "compares with different numbers in different calls"));
                }
                (None, Some(b)) => scalar = Some(b),
                _ => {}
            }
        }
        Ok(NotEqual { meta: m, scalar })
    }
}

impl Layer for NotEqual {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let m = &self.meta;
        match (inputs, self.scalar) {
            ([x], Some(v)) => Ok(vec![x.ne_scalar(v)]),
            ([a, b], None) => {
                let shape = m.t(strata_tensor::shape::broadcast_shapes("not_equal", a.shape(), b.shape()))?;
                let (a, b) = (m.t(a.broadcast_to(&shape))?, m.t(b.broadcast_to(&shape))?);
                let data = a.as_slice().iter().zip(b.as_slice()).map(|(x, y)| if x != y { 1.0 } else { 0.0 }).collect();
                Ok(vec![m.t(Tensor::from_vec(&shape, data))?])
            }
            _ => Err(m.arity(if self.scalar.is_some() { "1" } else { "2" }, inputs.len())),
        }
    }
}

/// Keras 3 `Any` op layer (`keras.ops.any`): 1 where any entry along `axis` is non-zero.
pub(crate) struct Any {
    meta: Meta,
    axes: Option<Vec<isize>>,
    keepdims: bool,
}

impl Any {
    pub(crate) fn build(layer: &LayerConfig, w: Vec<Tensor>) -> Result<Any> {
        let m = Meta::of(layer);
        weights_n(&m, &w, 0)?;
        let axes = crate::cfg::ints_of(&m, &layer.config, "axis")?;
        let keepdims = bool_of(&m, &layer.config, "keepdims", false)?;
        Ok(Any { meta: m, axes, keepdims })
    }
}

impl Layer for Any {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let m = &self.meta;
        let x = m.one(inputs)?.ne_scalar(0.0);
        Ok(vec![m.t(x.max(self.axes.as_deref(), self.keepdims))?])
    }
}
