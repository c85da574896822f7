//! Softmax and log-softmax along one axis, computed stably (shifted by the
//! maximum, as `keras.ops.softmax` / `tf.nn.softmax` do).

use rayon::prelude::*;

use crate::elementwise::PAR_THRESHOLD;
use crate::shape::{normalize_axis, split_at_axis};
use crate::tape::{Op, record1};
use crate::{Result, Tensor};

/// Applies `f(lane_in, lane_out)` to every lane (the values along `axis`), where a lane is read
/// with stride `inner`. Lanes of one outer block are processed together.
fn per_lane(x: &Tensor, axis: usize, f: impl Fn(&[f32], &mut [f32]) + Sync) -> Vec<f32> {
    let (outer, dim, inner) = split_at_axis(x.shape(), axis);
    let src = x.as_slice();
    let mut out = vec![0f32; src.len()];
    if out.is_empty() {
        return out;
    }
    let block = |o: usize, dst: &mut [f32]| {
        let s = &src[o * dim * inner..(o + 1) * dim * inner];
        if inner == 1 {
            f(s, dst);
        } else {
            let mut lane = vec![0f32; dim];
            let mut res = vec![0f32; dim];
            for i in 0..inner {
                for (j, l) in lane.iter_mut().enumerate() {
                    *l = s[j * inner + i];
                }
                f(&lane, &mut res);
                for (j, r) in res.iter().enumerate() {
                    dst[j * inner + i] = *r;
                }
            }
        }
    };
    if src.len() >= PAR_THRESHOLD && outer > 1 {
        out.par_chunks_mut(dim * inner).enumerate().for_each(|(o, d)| block(o, d));
    } else {
        out.chunks_mut(dim * inner).enumerate().for_each(|(o, d)| block(o, d));
    }
    out
}

fn lane_max(s: &[f32]) -> f32 {
    s.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m || v.is_nan() { v } else { m })
}

pub(crate) fn softmax_lane(s: &[f32], d: &mut [f32]) {
    let m = lane_max(s);
    let mut sum = 0f32;
    for (o, &v) in d.iter_mut().zip(s) {
        *o = (v - m).exp();
        sum += *o;
    }
    d.iter_mut().for_each(|o| *o /= sum);
}

fn log_softmax_lane(s: &[f32], d: &mut [f32]) {
    let m = lane_max(s);
    let sum: f32 = s.iter().map(|&v| (v - m).exp()).sum();
    let lse = sum.ln();
    for (o, &v) in d.iter_mut().zip(s) {
        *o = v - m - lse;
    }
}

impl Tensor {
    /// Softmax along `axis` (negative counts from the end).
    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        let a = normalize_axis("softmax", axis, self.shape())?;
        let out = Tensor::from_parts(self.shape().to_vec(), per_lane(self, a, softmax_lane));
        Ok(record1(self, out, || Op::Softmax(a)))
    }

    /// Log-softmax along `axis`: `x - max - log(sum(exp(x - max)))`.
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        let a = normalize_axis("log_softmax", axis, self.shape())?;
        let out = Tensor::from_parts(self.shape().to_vec(), per_lane(self, a, log_softmax_lane));
        Ok(record1(self, out, || Op::LogSoftmax(a)))
    }

    /// `log(sum(exp(x)))` along `axis`, computed stably, keeping the axis as size 1 if `keepdims`.
    pub fn logsumexp(&self, axis: isize, keepdims: bool) -> Result<Tensor> {
        let a = normalize_axis("logsumexp", axis, self.shape())?;
        let m = self.max(Some(&[a as isize]), true)?;
        let m = m.map(crate::UnaryOp::Clip(-f32::MAX, f32::MAX));
        let s = self.sub(&m)?.exp().sum(Some(&[a as isize]), true)?.log().add(&m)?;
        if keepdims {
            Ok(s)
        } else {
            let mut shape = self.shape().to_vec();
            shape.remove(a);
            s.reshape(&shape)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_rows_sum_to_one_on_any_axis() {
        let x = Tensor::from_vec(&[2, 3, 2], (0..12).map(|v| v as f32 * 0.7 - 3.0).collect()).unwrap();
        for axis in [0, 1, 2, -1] {
            let s = x.softmax(axis).unwrap();
            let total = s.sum(Some(&[axis]), false).unwrap();
            assert!(total.as_slice().iter().all(|&t| (t - 1.0).abs() < 1e-6), "axis {axis}: {total:?}");
            let ls = x.log_softmax(axis).unwrap();
            assert!(ls.exp().all_close(&s, 1e-5, 1e-7));
        }
        let big = Tensor::from_vec(&[2], vec![1000.0, 1000.0]).unwrap();
        assert_eq!(big.softmax(0).unwrap().as_slice(), &[0.5, 0.5]);
        assert_eq!(
            x.softmax(3).unwrap_err().to_string(),
            "softmax: axis 3 is out of range for shape [2, 3, 2] (rank 3); use an axis in -3..3"
        );
    }

    #[test]
    fn logsumexp_is_stable() {
        let x = Tensor::from_vec(&[1, 2], vec![1000.0, 1000.0]).unwrap();
        let l = x.logsumexp(-1, false).unwrap();
        assert_eq!(l.shape(), &[1]);
        assert!((l.as_slice()[0] - (1000.0 + 2f32.ln())).abs() < 1e-3);
    }
}
