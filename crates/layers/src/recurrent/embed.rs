//! The mask producers: `Embedding` (with `mask_zero`) and `Masking`.

use crate::cfg::{Meta, bool_of, f32_of, weights_n};
use crate::error::Result;
use crate::layers::{Layer, Masked};
use strata_format::config::LayerConfig;
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
        let compute = super::reduced_policy(&m, cfg);
        Ok(Embedding { meta: m, table, mask_zero, compute })
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
        let y = match self.table.dtype() {
            // a half-precision table: TensorFlow sums its gradient rows in that precision
            d @ (strata_tensor::DType::F16 | strata_tensor::DType::BF16) if self.table.is_tracked() => {
                self.meta.t(rounded_take_grad(&self.table, ids, y, d))?
            }
            _ => y,
        };
        crate::cfg::round_to(&self.meta, y, self.compute)
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
        let mask = if self.mask_zero { Some(self.meta.t(ids.not_equal(&Tensor::scalar(0.0)))?) } else { None };
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
        let compute = super::reduced_policy(&m, &layer.config);
        Ok(Masking { meta: m, value, compute })
    }

    /// The output and its mask (`any(x != mask_value)` over the last axis).
    fn run(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let m = &self.meta;
        let keep = m.t(m.t(x.not_equal(&Tensor::scalar(self.value)))?.max(Some(&[-1]), true))?;
        let y = crate::cfg::round_to(m, m.t(x.mul(&keep))?, self.compute)?;
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

/// Records `y = table.take(ids, 0)` for a half-precision `table` with the gradient TensorFlow gives it:
/// the rows of the output gradient added into the table's rows in index order (`unsorted_segment_sum`),
/// each sum rounded to `d`.
fn rounded_take_grad(
    table: &Tensor,
    ids: &Tensor,
    y: Tensor,
    d: strata_tensor::DType,
) -> strata_tensor::Result<Tensor> {
    let round = move |v: f32| match d {
        strata_tensor::DType::BF16 => strata_tensor::bf16_to_f32(strata_tensor::f32_to_bf16(v)),
        _ => strata_tensor::f16_to_f32(strata_tensor::f32_to_f16(v)),
    };
    // `y` is recorded as the take on the tape; wrap the untracked value instead
    let ids = ids.detach();
    let y = y.detach();
    crate::grad::custom("embedding_lookup", &[table], y, move |ins, _y, g| {
        let t = &ins[0];
        let dim: usize = t.shape().get(1..).unwrap_or(&[]).iter().product();
        let mut dt = vec![0f32; t.len()];
        for (row, &id) in g.as_slice().chunks(dim.max(1)).zip(ids.as_slice()) {
            let at = id as usize * dim;
            if let Some(dst) = dt.get_mut(at..at + dim) {
                dst.iter_mut().zip(row).for_each(|(a, &b)| *a = round(*a + round(b)));
            }
        }
        Ok(vec![Some(Tensor::from_vec(t.shape(), dt)?)])
    })
}
