//! Reductions over axes (`sum`, `mean`, `max`) and `sum_to`, which folds a
//! broadcast gradient back to an input's shape.
//!
//! Sums accumulate in f64 and round once, so results are the correctly rounded
//! value for all practical sizes; TensorFlow's f32 tree reductions differ from
//! it by a few ulps at most.

use rayon::prelude::*;

use crate::elementwise::PAR_THRESHOLD;
use crate::shape::{normalize_axes, split_at_axis};
use crate::tape::{Op, record1};
use crate::{Error, Result, Tensor};

/// Which reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reduce {
    Sum,
    Max,
}

/// Reduces one axis of a `[outer, dim, inner]` buffer.
fn reduce_axis(data: &[f32], outer: usize, dim: usize, inner: usize, kind: Reduce) -> Vec<f32> {
    let mut out = vec![0f32; outer * inner];
    if out.is_empty() {
        return out;
    }
    let block = |o: usize, dst: &mut [f32]| {
        let src = &data[o * dim * inner..(o + 1) * dim * inner];
        match kind {
            Reduce::Sum => {
                let mut acc = vec![0f64; inner];
                for row in src.chunks_exact(inner) {
                    acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v as f64);
                }
                dst.iter_mut().zip(&acc).for_each(|(d, &a)| *d = a as f32);
            }
            Reduce::Max => {
                dst.fill(f32::NEG_INFINITY);
                for row in src.chunks_exact(inner) {
                    dst.iter_mut().zip(row).for_each(|(d, &v)| {
                        if v > *d || v.is_nan() {
                            *d = v
                        }
                    });
                }
            }
        }
    };
    if data.len() >= PAR_THRESHOLD && outer > 1 {
        out.par_chunks_mut(inner).enumerate().for_each(|(o, d)| block(o, d));
    } else {
        out.chunks_mut(inner).enumerate().for_each(|(o, d)| block(o, d));
    }
    out
}

/// Reduces `axes` (already normalized, sorted ascending) of `x`.
pub(crate) fn reduce(x: &Tensor, axes: &[usize], keepdims: bool, kind: Reduce) -> Tensor {
    let mut shape = x.shape().to_vec();
    let mut data: Option<Vec<f32>> = None;
    for &axis in axes.iter().rev() {
        let (outer, dim, inner) = split_at_axis(&shape, axis);
        let src = data.as_deref().unwrap_or(x.as_slice());
        data = Some(if dim == 0 && kind == Reduce::Max {
            vec![f32::NEG_INFINITY; outer * inner]
        } else {
            reduce_axis(src, outer, dim, inner, kind)
        });
        shape[axis] = 1;
    }
    let data = data.unwrap_or_else(|| x.to_vec());
    let out_shape = if keepdims {
        shape
    } else {
        shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
    };
    Tensor::from_parts(out_shape, data)
}

/// The axes argument: `None` means all axes.
fn axes_or_all(op: &'static str, axes: Option<&[isize]>, shape: &[usize]) -> Result<Vec<usize>> {
    match axes {
        Some(a) => normalize_axes(op, a, shape),
        None => Ok((0..shape.len()).collect()),
    }
}

impl Tensor {
    /// Sum over `axes` (`None`: all axes). Removes the axes unless `keepdims`.
    pub fn sum(&self, axes: Option<&[isize]>, keepdims: bool) -> Result<Tensor> {
        let axes = axes_or_all("sum", axes, self.shape())?;
        let out = reduce(self, &axes, keepdims, Reduce::Sum);
        Ok(record1(self, out, || Op::Sum { axes, keepdims }))
    }

    /// Mean over `axes` (`None`: all axes). The mean of zero elements is NaN.
    pub fn mean(&self, axes: Option<&[isize]>, keepdims: bool) -> Result<Tensor> {
        let axes = axes_or_all("mean", axes, self.shape())?;
        let count: usize = axes.iter().map(|&a| self.shape()[a]).product();
        let s = reduce(self, &axes, keepdims, Reduce::Sum);
        // Divide (not multiply by 1/n) as tf.reduce_mean and its gradient do.
        let out = s.div(&Tensor::scalar(count as f32))?;
        Ok(record1(self, out, || Op::Mean { axes, keepdims }))
    }

    /// Maximum over `axes` (`None`: all axes). The maximum of zero elements is `-inf`; NaN propagates.
    pub fn max(&self, axes: Option<&[isize]>, keepdims: bool) -> Result<Tensor> {
        let axes = axes_or_all("max", axes, self.shape())?;
        let out = reduce(self, &axes, keepdims, Reduce::Max);
        Ok(record1(self, out, || Op::Max { axes, keepdims }))
    }

    /// Minimum over `axes` (`None`: all axes).
    pub fn min(&self, axes: Option<&[isize]>, keepdims: bool) -> Result<Tensor> {
        Ok(self.neg().max(axes, keepdims)?.neg())
    }

    /// Sums a broadcast result back to `shape` (the inverse of broadcasting `shape` to `self.shape()`):
    /// leading extra axes and axes where `shape` has 1 are summed.
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let bad = || Error::Broadcast { op: "sum_to", lhs: self.shape().to_vec(), rhs: shape.to_vec() };
        let rank = self.rank();
        if shape.len() > rank {
            return Err(bad());
        }
        let lead = rank - shape.len();
        let mut axes = Vec::new();
        for (i, &d) in self.shape().iter().enumerate() {
            if i < lead || (shape[i - lead] == 1 && d != 1) {
                axes.push(i);
            } else if shape[i - lead] != d {
                return Err(bad());
            }
        }
        let out = reduce(self, &axes, true, Reduce::Sum).reshape(shape)?;
        Ok(record1(self, out, || Op::SumTo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(shape: &[usize]) -> Tensor {
        let n = shape.iter().product::<usize>();
        Tensor::from_vec(shape, (0..n).map(|x| x as f32).collect()).unwrap()
    }

    #[test]
    fn sum_mean_max_over_axes() {
        let x = iota(&[2, 3, 4]);
        let s = x.sum(Some(&[1]), false).unwrap();
        assert_eq!(s.shape(), &[2, 4]);
        assert_eq!(s.as_slice(), &[12.0, 15.0, 18.0, 21.0, 48.0, 51.0, 54.0, 57.0]);
        let m = x.mean(Some(&[0, -1]), true).unwrap();
        assert_eq!(m.shape(), &[1, 3, 1]);
        assert_eq!(m.as_slice(), &[7.5, 11.5, 15.5]);
        assert_eq!(x.max(None, false).unwrap().item(), Some(23.0));
        assert_eq!(x.min(Some(&[2]), false).unwrap().as_slice(), &[0.0, 4.0, 8.0, 12.0, 16.0, 20.0]);
        assert_eq!(x.sum(Some(&[]), false).unwrap(), x);
    }

    #[test]
    fn sum_to_inverts_broadcast() {
        let g = Tensor::ones(&[2, 3, 4]).unwrap();
        let r = g.sum_to(&[3, 1]).unwrap();
        assert_eq!(r.shape(), &[3, 1]);
        assert_eq!(r.as_slice(), &[8.0, 8.0, 8.0]);
        assert_eq!(
            g.sum_to(&[5]).unwrap_err().to_string(),
            "sum_to: shapes [2, 3, 4] and [5] cannot be broadcast: aligned from the right, each pair of \
             dimensions must be equal or one of them 1"
        );
    }
}
