//! Max and average pooling over 1, 2 or 3 spatial axes of channels-last tensors (`[n, w, c]`,
//! `[n, h, w, c]`, `[n, d, h, w, c]`): Keras `MaxPooling1D/2D/3D` and `AveragePooling1D/2D/3D`
//! (`keras/src/layers/pooling/base_pooling.py`, which calls `tf.nn.max_pool`/`tf.nn.avg_pool`).
//!
//! Padded positions never win a max, and `same` average pooling divides by
//! the number of real (unpadded) elements in each window, as TensorFlow does.
//! Gradients: max pooling routes each output gradient to the first maximal
//! element of its window (row-major scan), average pooling spreads it evenly
//! over the real elements.
//!
//! One kernel serves every rank: 1-D and 2-D inputs are handled as 3-D with leading spatial axes
//! of size 1 (the memory layout is the same). The forward pass is parallel over output rows, the
//! backward pass over images; neither allocates per element.

use std::ops::Range;

use rayon::prelude::*;

use crate::conv::{Padding, spatial};
use crate::elementwise::PAR_THRESHOLD;
use crate::{DType, Error, Result, Tensor, bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};

/// Parameters of a 2-D pooling op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolParams {
    /// Window size `[h, w]`.
    pub pool: [usize; 2],
    /// Step `[h, w]` (Keras defaults it to the pool size).
    pub strides: [usize; 2],
    /// Padding.
    pub padding: Padding,
}

impl PoolParams {
    /// Window `pool`, strides equal to the window, valid padding (the Keras defaults).
    pub fn new(pool: [usize; 2]) -> Self {
        PoolParams { pool, strides: pool, padding: Padding::Valid }
    }
    /// Sets the strides.
    pub fn with_strides(mut self, strides: [usize; 2]) -> Self {
        self.strides = strides;
        self
    }
    /// Sets the padding.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
}

/// Parameters of pooling over 1 to 3 spatial axes (`pool.len()` of them); the input has rank
/// `pool.len() + 2`, channels last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolNdParams {
    /// Window size per spatial axis.
    pub pool: Vec<usize>,
    /// Step per spatial axis (Keras defaults it to the pool size).
    pub strides: Vec<usize>,
    /// TF/Keras `same` padding (`ceil(in / stride)` outputs, the odd padding element at the end)
    /// instead of `valid`.
    pub same: bool,
}

impl PoolNdParams {
    /// Window `pool`, strides equal to the window, valid padding (the Keras defaults).
    pub fn new(pool: &[usize]) -> Self {
        PoolNdParams { pool: pool.to_vec(), strides: pool.to_vec(), same: false }
    }
    /// Sets the strides.
    pub fn with_strides(mut self, strides: &[usize]) -> Self {
        self.strides = strides.to_vec();
        self
    }
    /// Sets `same` (true) or `valid` (false) padding.
    pub fn with_same(mut self, same: bool) -> Self {
        self.same = same;
        self
    }
}

/// Validated geometry, always as three spatial axes (leading axes of size 1 for 1-D and 2-D).
#[derive(Clone)]
struct Geo {
    n: usize,
    c: usize,
    /// Input size per spatial axis.
    inp: [usize; 3],
    /// Output size per spatial axis.
    out: [usize; 3],
    /// Leading padding per spatial axis.
    pad: [usize; 3],
    /// Window per spatial axis.
    k: [usize; 3],
    /// Stride per spatial axis.
    s: [usize; 3],
    /// The output shape in the caller's rank (3, 4 or 5).
    out_shape: Vec<usize>,
}

impl Geo {
    /// The geometry of a 2-D op (explicit padding allowed).
    fn new2d(op: &'static str, x: &[usize], p: &PoolParams) -> Result<Geo> {
        let &[n, h, w, c] = x else {
            return Err(Error::Rank { op, expected: "4", layout: "NHWC", shape: x.to_vec() });
        };
        let [a, b] = spatial(op, [h, w], p.pool, p.strides, [1, 1], p.padding)?;
        let [kh, kw] = p.pool;
        let [sh, sw] = p.strides;
        Geo::finish(n, c, [1, h, w], [1, a.out, b.out], [0, a.pad_before, b.pad_before], [1, kh, kw], [1, sh, sw], 2)
    }

    /// The geometry of an op over `p.pool.len()` spatial axes.
    fn new(op: &'static str, x: &[usize], p: &PoolNdParams) -> Result<Geo> {
        let nd = p.pool.len();
        if !(1..=3).contains(&nd) {
            return Err(Error::AxisCount { op, found: nd, rank: x.len().saturating_sub(2), shape: x.to_vec() });
        }
        if p.strides.len() != nd {
            return Err(Error::AxisCount { op, found: p.strides.len(), rank: nd, shape: x.to_vec() });
        }
        let (expected, layout) = match nd {
            1 => ("3", "NWC"),
            2 => ("4", "NHWC"),
            _ => ("5", "NDHWC"),
        };
        let (Some(&n), Some(&c), Some(dims)) = (x.first(), x.last(), x.get(1..=nd)) else {
            return Err(Error::Rank { op, expected, layout, shape: x.to_vec() });
        };
        if x.len() != nd + 2 {
            return Err(Error::Rank { op, expected, layout, shape: x.to_vec() });
        }
        if p.strides.contains(&0) {
            return Err(Error::ZeroParameter { op, name: "strides" });
        }
        if p.pool.contains(&0) {
            return Err(Error::ZeroParameter { op, name: "pool_size" });
        }
        let (mut inp, mut out, mut pad, mut k, mut s) = ([1; 3], [1; 3], [0; 3], [1; 3], [1; 3]);
        for (i, ((&d, &kk), &ss)) in dims.iter().zip(&p.pool).zip(&p.strides).enumerate() {
            let j = 3 - nd + i;
            (inp[j], k[j], s[j]) = (d, kk, ss);
            if p.same {
                out[j] = d.div_ceil(ss);
                // (out - 1) * s < d, so only the window can overflow
                pad[j] = (out[j].saturating_sub(1) * ss).saturating_add(kk).saturating_sub(d) / 2;
            } else if d < kk {
                return Err(Error::WindowTooLargeNd { op, window: p.pool.clone(), input: dims.to_vec() });
            } else {
                out[j] = (d - kk) / ss + 1;
            }
        }
        Geo::finish(n, c, inp, out, pad, k, s, nd)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        n: usize,
        c: usize,
        inp: [usize; 3],
        out: [usize; 3],
        pad: [usize; 3],
        k: [usize; 3],
        s: [usize; 3],
        nd: usize,
    ) -> Result<Geo> {
        let mut out_shape = Vec::with_capacity(nd + 2);
        out_shape.push(n);
        out_shape.extend_from_slice(&out[3 - nd..]);
        out_shape.push(c);
        crate::shape::numel(&out_shape)?;
        Ok(Geo { n, c, inp, out, pad, k, s, out_shape })
    }

    /// Input positions along spatial axis `a` covered by output position `o`, clipped to the input.
    fn window(&self, a: usize, o: usize) -> Range<usize> {
        let start = o * self.s[a];
        let end = start.saturating_add(self.k[a]);
        start.saturating_sub(self.pad[a]).min(self.inp[a])..end.saturating_sub(self.pad[a]).min(self.inp[a])
    }

    /// Elements per image.
    fn image(&self) -> usize {
        self.inp.iter().product::<usize>() * self.c
    }

    /// Offset of input pixel `(iz, iy, ix)` within an image.
    fn pixel(&self, iz: usize, iy: usize, ix: usize) -> usize {
        ((iz * self.inp[1] + iy) * self.inp[2] + ix) * self.c
    }
}

/// Calls `f(row_index, row)` for each `row_len`-sized row of `out`, in parallel (several rows per
/// task) when the work, `out.len() * cost` with `cost` the reads per output, is large: a few big
/// windows (a pool as large as the image) still spread over the cores.
fn for_each_row_costed(out: &mut [f32], row_len: usize, cost: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if row_len == 0 || out.is_empty() {
        return;
    }
    let cost = cost.max(1);
    if out.len().saturating_mul(cost) >= PAR_THRESHOLD {
        let per_task = (PAR_THRESHOLD / 4 / row_len.saturating_mul(cost)).max(1);
        out.par_chunks_mut(row_len * per_task).enumerate().for_each(|(t, chunk)| {
            for (j, row) in chunk.chunks_mut(row_len).enumerate() {
                f(t * per_task + j, row);
            }
        });
    } else {
        out.chunks_mut(row_len).enumerate().for_each(|(r, row)| f(r, row));
    }
}

/// The pooling forward kernel: rows of `ow * c` outputs in parallel.
fn pool_forward(x: &Tensor, g: &Geo, max: bool) -> Tensor {
    pool_forward_rounded(x, g, max, |v| v)
}

/// [`pool_forward`] with every partial sum and quotient of average pooling passed through `round`.
fn pool_forward_rounded(x: &Tensor, g: &Geo, max: bool, round: impl Fn(f32) -> f32 + Sync) -> Tensor {
    let xs = x.as_slice();
    let [od, oh, ow] = g.out;
    let c = g.c;
    let img = g.image();
    let mut out = vec![0f32; g.n * od * oh * ow * c];
    let plane = od * oh;
    let window: usize = g.k.iter().zip(&g.inp).map(|(&k, &d)| k.min(d)).product();
    for_each_row_costed(&mut out, ow * c, window, |r, row| {
        let (n, rem) = (r / plane, r % plane);
        let (zr, yr) = (g.window(0, rem / oh), g.window(1, rem % oh));
        let base = n * img;
        for (ox, dst) in row.chunks_exact_mut(c).enumerate() {
            let xr = g.window(2, ox);
            if max {
                dst.fill(f32::NEG_INFINITY);
            }
            for iz in zr.clone() {
                for iy in yr.clone() {
                    for ix in xr.clone() {
                        let src = &xs[base + g.pixel(iz, iy, ix)..][..c];
                        if max {
                            // a select without short-circuit (`|`, not `||`) so the loop vectorizes;
                            // NaN wins as in Keras's max
                            dst.iter_mut().zip(src).for_each(|(d, &v)| {
                                let take = (v > *d) | v.is_nan();
                                *d = if take { v } else { *d };
                            });
                        } else {
                            dst.iter_mut().zip(src).for_each(|(d, &v)| *d = round(*d + v));
                        }
                    }
                }
            }
            if !max {
                let count = (zr.len() * yr.len() * xr.len()) as f32;
                dst.iter_mut().for_each(|d| *d = round(*d / count));
            }
        }
    });
    Tensor::from_parts(g.out_shape.clone(), out)
}

/// The pooling backward kernel: images in parallel.
fn pool_backward(op: &'static str, x: &Tensor, g: &Geo, dy: &Tensor, max: bool) -> Result<Tensor> {
    if dy.shape() != g.out_shape.as_slice() {
        return Err(Error::GradShape { op, expected: g.out_shape.clone(), found: dy.shape().to_vec() });
    }
    let (xs, dys) = (x.as_slice(), dy.as_slice());
    let [od, oh, ow] = g.out;
    let c = g.c;
    let img = g.image();
    let mut dx = vec![0f32; x.len()];
    if img > 0 && c > 0 {
        dx.par_chunks_mut(img).enumerate().for_each(|(n, dst)| {
            let src = &xs[n * img..][..img];
            // per image, not per element: the running argmax of each channel
            let (mut best, mut val) = if max { (vec![0usize; c], vec![0f32; c]) } else { (Vec::new(), Vec::new()) };
            let mut grads = dys[n * od * oh * ow * c..][..od * oh * ow * c].chunks_exact(c);
            for oz in 0..od {
                let zr = g.window(0, oz);
                for oy in 0..oh {
                    let yr = g.window(1, oy);
                    for ox in 0..ow {
                        let xr = g.window(2, ox);
                        let Some(grad) = grads.next() else { return };
                        if max {
                            best.fill(usize::MAX);
                            let mut first = true;
                            for iz in zr.clone() {
                                for iy in yr.clone() {
                                    for ix in xr.clone() {
                                        let pix = g.pixel(iz, iy, ix);
                                        let window = &src[pix..][..c];
                                        if first {
                                            // the window's first pixel holds every channel's max so far
                                            val.copy_from_slice(window);
                                            best.iter_mut().enumerate().for_each(|(ch, b)| *b = pix + ch);
                                            first = false;
                                            continue;
                                        }
                                        // selects, not branches, so the channel loop vectorizes; a
                                        // later equal value does not win (the first max gets the gradient)
                                        for (ch, ((&v, m), b)) in
                                            window.iter().zip(val.iter_mut()).zip(best.iter_mut()).enumerate()
                                        {
                                            let take = v > *m;
                                            *m = if take { v } else { *m };
                                            *b = if take { pix + ch } else { *b };
                                        }
                                    }
                                }
                            }
                            for (&b, &gv) in best.iter().zip(grad) {
                                if let Some(d) = dst.get_mut(b) {
                                    *d += gv;
                                }
                            }
                        } else {
                            let count = (zr.len() * yr.len() * xr.len()) as f32;
                            for iz in zr.clone() {
                                for iy in yr.clone() {
                                    for ix in xr.clone() {
                                        let d = &mut dst[g.pixel(iz, iy, ix)..][..c];
                                        d.iter_mut().zip(grad).for_each(|(a, &b)| *a += b / count);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        });
    }
    Ok(Tensor::from_parts(x.shape().to_vec(), dx))
}

/// Max pooling: `x` `[n, h, w, c]` -> `[n, oh, ow, c]`.
pub fn max_pool2d(x: &Tensor, p: &PoolParams) -> Result<Tensor> {
    Ok(pool_forward(x, &Geo::new2d("max_pool2d", x.shape(), p)?, true))
}

/// Average pooling: `x` `[n, h, w, c]` -> `[n, oh, ow, c]`; padded elements are not counted.
pub fn avg_pool2d(x: &Tensor, p: &PoolParams) -> Result<Tensor> {
    Ok(pool_forward(x, &Geo::new2d("avg_pool2d", x.shape(), p)?, false))
}

/// Gradient of [`max_pool2d`] with respect to `x`.
pub fn max_pool2d_backward(x: &Tensor, p: &PoolParams, dy: &Tensor) -> Result<Tensor> {
    pool_backward("max_pool2d", x, &Geo::new2d("max_pool2d", x.shape(), p)?, dy, true)
}

/// Gradient of [`avg_pool2d`] with respect to `x`.
pub fn avg_pool2d_backward(x: &Tensor, p: &PoolParams, dy: &Tensor) -> Result<Tensor> {
    pool_backward("avg_pool2d", x, &Geo::new2d("avg_pool2d", x.shape(), p)?, dy, false)
}

/// Max pooling over the `p.pool.len()` (1 to 3) spatial axes of a channels-last `x`
/// (`[n, w, c]`, `[n, h, w, c]` or `[n, d, h, w, c]`).
pub fn max_pool(x: &Tensor, p: &PoolNdParams) -> Result<Tensor> {
    Ok(pool_forward(x, &Geo::new("max_pool", x.shape(), p)?, true))
}

/// Average pooling over the `p.pool.len()` (1 to 3) spatial axes of a channels-last `x`; padded
/// elements are not counted.
pub fn avg_pool(x: &Tensor, p: &PoolNdParams) -> Result<Tensor> {
    Ok(pool_forward(x, &Geo::new("avg_pool", x.shape(), p)?, false))
}

/// [`avg_pool`] computed in the precision of `dtype` (`float16`, `bfloat16`; other dtypes compute
/// in f32): the running sum of each window and the quotient are rounded to it after every
/// operation, in the window's row-major order, as TensorFlow's CPU `AvgPool` kernel does for
/// half-precision tensors (Keras `mixed_float16` layers). `x` should already hold values of that
/// precision.
pub fn avg_pool_in(x: &Tensor, p: &PoolNdParams, dtype: DType) -> Result<Tensor> {
    let g = Geo::new("avg_pool", x.shape(), p)?;
    let y = match dtype {
        DType::F16 => pool_forward_rounded(x, &g, false, |v| f16_to_f32(f32_to_f16(v))),
        DType::BF16 => pool_forward_rounded(x, &g, false, |v| bf16_to_f32(f32_to_bf16(v))),
        _ => pool_forward(x, &g, false),
    };
    let round: fn(f32) -> f32 = match dtype {
        DType::F16 => |v| f16_to_f32(f32_to_f16(v)),
        DType::BF16 => |v| bf16_to_f32(f32_to_bf16(v)),
        _ => return Ok(crate::tape::record1(x, y, || crate::tape::Op::AvgPool(p.clone()))),
    };
    // the gradient in the reduced dtype too, as TensorFlow's `AvgPoolGrad` kernel computes it
    let p = p.clone();
    crate::tape::custom_op(
        "avg_pool",
        &[x],
        y,
        Some(std::sync::Arc::new(move |ins: &[Tensor], _: &Tensor, dy: &Tensor| {
            let x = ins.first().ok_or(Error::Empty { op: "avg_pool" })?;
            Ok(vec![Some(avg_pool_backward_rounded(x, &p, dy, round)?)])
        })),
    )
}

/// Gradient of [`avg_pool_in`] in a reduced float dtype, in the order of TensorFlow's CPU `AvgPoolGrad`
/// kernel: per output position, `dx += dy * (1 / count)` with the coefficient, each product and each sum
/// rounded (`round`).
fn avg_pool_backward_rounded(x: &Tensor, p: &PoolNdParams, dy: &Tensor, round: fn(f32) -> f32) -> Result<Tensor> {
    let g = Geo::new("avg_pool", x.shape(), p)?;
    if dy.shape() != g.out_shape.as_slice() {
        return Err(Error::GradShape { op: "avg_pool", expected: g.out_shape.clone(), found: dy.shape().to_vec() });
    }
    let dys = dy.as_slice();
    let [od, oh, ow] = g.out;
    let c = g.c;
    let img = g.image();
    let mut dx = vec![0f32; x.len()];
    if img > 0 && c > 0 {
        dx.par_chunks_mut(img).enumerate().for_each(|(n, dst)| {
            let mut grads = dys[n * od * oh * ow * c..][..od * oh * ow * c].chunks_exact(c);
            for oz in 0..od {
                let zr = g.window(0, oz);
                for oy in 0..oh {
                    let yr = g.window(1, oy);
                    for ox in 0..ow {
                        let xr = g.window(2, ox);
                        let Some(grad) = grads.next() else { return };
                        let coeff = round((1.0 / (zr.len() * yr.len() * xr.len()) as f64) as f32);
                        for iz in zr.clone() {
                            for iy in yr.clone() {
                                for ix in xr.clone() {
                                    let d = &mut dst[g.pixel(iz, iy, ix)..][..c];
                                    d.iter_mut().zip(grad).for_each(|(a, &b)| *a = round(*a + round(b * coeff)));
                                }
                            }
                        }
                    }
                }
            }
        });
    }
    Ok(Tensor::from_parts(x.shape().to_vec(), dx))
}

/// Gradient of [`max_pool`] with respect to `x`.
pub fn max_pool_backward(x: &Tensor, p: &PoolNdParams, dy: &Tensor) -> Result<Tensor> {
    pool_backward("max_pool", x, &Geo::new("max_pool", x.shape(), p)?, dy, true)
}

/// Gradient of [`avg_pool`] with respect to `x`.
pub fn avg_pool_backward(x: &Tensor, p: &PoolNdParams, dy: &Tensor) -> Result<Tensor> {
    pool_backward("avg_pool", x, &Geo::new("avg_pool", x.shape(), p)?, dy, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(shape: &[usize]) -> Tensor {
        let n = shape.iter().product::<usize>();
        Tensor::from_vec(shape, (0..n).map(|x| x as f32).collect()).unwrap()
    }

    #[test]
    fn max_and_avg_valid() {
        let x = iota(&[1, 4, 4, 1]);
        let m = max_pool2d(&x, &PoolParams::new([2, 2])).unwrap();
        assert_eq!(m.as_slice(), &[5.0, 7.0, 13.0, 15.0]);
        let a = avg_pool2d(&x, &PoolParams::new([2, 2])).unwrap();
        assert_eq!(a.as_slice(), &[2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn same_avg_counts_only_real_elements() {
        // 3x3 input, 2x2 window, stride 2, same: out 2x2, pad 1 at the end.
        let x = iota(&[1, 3, 3, 1]);
        let p = PoolParams::new([2, 2]).with_padding(Padding::Same);
        let a = avg_pool2d(&x, &p).unwrap();
        assert_eq!(a.as_slice(), &[2.0, 3.5, 6.5, 8.0]);
        let m = max_pool2d(&x.neg(), &p).unwrap();
        assert_eq!(m.as_slice(), &[0.0, -2.0, -6.0, -8.0]);
    }

    #[test]
    fn backward_routes_to_argmax_and_spreads_average() {
        let x = iota(&[1, 2, 2, 1]);
        let p = PoolParams::new([2, 2]);
        let dy = Tensor::from_vec(&[1, 1, 1, 1], vec![4.0]).unwrap();
        assert_eq!(max_pool2d_backward(&x, &p, &dy).unwrap().as_slice(), &[0.0, 0.0, 0.0, 4.0]);
        assert_eq!(avg_pool2d_backward(&x, &p, &dy).unwrap().as_slice(), &[1.0; 4]);
        let e = max_pool2d_backward(&x, &p, &x).unwrap_err();
        assert_eq!(
            e.to_string(),
            "max_pool2d: gradient shape [1, 2, 2, 1] does not match the forward output shape [1, 1, 1, 1]"
        );
    }

    /// Direct reference: TF semantics written out with signed coordinates, any rank.
    fn naive_nd(x: &Tensor, pool: &[usize], strides: &[usize], pads: &[usize], out: &[usize], max: bool) -> Tensor {
        let nd = pool.len();
        let s = x.shape();
        let (n, c) = (s[0], s[nd + 1]);
        let mut out_shape = vec![n];
        out_shape.extend_from_slice(out);
        out_shape.push(c);
        let mut data = Vec::new();
        let outs: usize = out.iter().product();
        let wins: usize = pool.iter().product();
        for b in 0..n {
            for o in 0..outs {
                // unravel the output position
                let mut opos = vec![0usize; nd];
                let mut r = o;
                for a in (0..nd).rev() {
                    opos[a] = r % out[a];
                    r /= out[a];
                }
                for ch in 0..c {
                    let (mut acc, mut count) = (if max { f32::NEG_INFINITY } else { 0.0 }, 0);
                    for w in 0..wins {
                        let mut kpos = vec![0usize; nd];
                        let mut r = w;
                        for a in (0..nd).rev() {
                            kpos[a] = r % pool[a];
                            r /= pool[a];
                        }
                        let mut idx = vec![b];
                        let mut inside = true;
                        for a in 0..nd {
                            let i = (opos[a] * strides[a] + kpos[a]) as isize - pads[a] as isize;
                            inside &= i >= 0 && (i as usize) < s[a + 1];
                            idx.push(i.max(0) as usize);
                        }
                        if !inside {
                            continue;
                        }
                        idx.push(ch);
                        let v = x.get(&idx).unwrap();
                        acc = if max { acc.max(v) } else { acc + v };
                        count += 1;
                    }
                    data.push(if max { acc } else { acc / count as f32 });
                }
            }
        }
        Tensor::from_vec(&out_shape, data).unwrap()
    }

    fn naive(x: &Tensor, p: &PoolParams, max: bool) -> Tensor {
        let g = Geo::new2d("t", x.shape(), p).unwrap();
        naive_nd(x, &p.pool, &p.strides, &g.pad[1..], &g.out[1..], max)
    }

    proptest::proptest! {
        #[test]
        fn random_geometry_matches_naive(n in 1usize..3, h in 1usize..8, w in 1usize..8, c in 1usize..4,
                                         ph in 1usize..4, pw in 1usize..4, sh in 1usize..4, sw in 1usize..4,
                                         same in proptest::bool::ANY) {
            let x = Tensor::from_vec(&[n, h, w, c], (0..n * h * w * c).map(|i| ((i * 37) % 19) as f32 - 9.0).collect()).unwrap();
            let p = PoolParams::new([ph, pw]).with_strides([sh, sw]).with_padding(if same { Padding::Same } else { Padding::Valid });
            match (max_pool2d(&x, &p), avg_pool2d(&x, &p)) {
                (Ok(m), Ok(a)) => {
                    proptest::prop_assert_eq!(m, naive(&x, &p, true));
                    proptest::prop_assert!(a.all_close(&naive(&x, &p, false), 1e-6, 1e-6));
                }
                (Err(e), Err(_)) => proptest::prop_assert!(matches!(e, Error::WindowTooLarge { .. }), "{e}"),
                other => proptest::prop_assert!(false, "{other:?}"),
            }
        }
    }

    /// TF's `same` rule per axis: `(out, pad_before)`.
    fn same_axis(d: usize, k: usize, s: usize) -> (usize, usize) {
        let out = d.div_ceil(s);
        (out, ((out - 1) * s + k).saturating_sub(d) / 2)
    }

    proptest::proptest! {
        #[test]
        fn nd_geometry_matches_naive(nd in 1usize..4, dims in proptest::collection::vec(1usize..6, 3),
                                     pool in proptest::collection::vec(1usize..4, 3),
                                     strides in proptest::collection::vec(1usize..4, 3),
                                     n in 1usize..3, c in 1usize..3, same in proptest::bool::ANY) {
            let (dims, pool, strides) = (&dims[..nd], &pool[..nd], &strides[..nd]);
            let mut shape = vec![n];
            shape.extend_from_slice(dims);
            shape.push(c);
            let len: usize = shape.iter().product();
            let x = Tensor::from_vec(&shape, (0..len).map(|i| ((i * 37) % 23) as f32 - 11.0).collect()).unwrap();
            let p = PoolNdParams::new(pool).with_strides(strides).with_same(same);
            let geo: Option<Vec<(usize, usize)>> = dims.iter().zip(pool).zip(strides).map(|((&d, &k), &s)| {
                if same { Some(same_axis(d, k, s)) } else if d >= k { Some(((d - k) / s + 1, 0)) } else { None }
            }).collect();
            match (geo, max_pool(&x, &p), avg_pool(&x, &p)) {
                (Some(geo), Ok(m), Ok(a)) => {
                    let (out, pads): (Vec<usize>, Vec<usize>) = geo.into_iter().unzip();
                    proptest::prop_assert_eq!(m, naive_nd(&x, pool, strides, &pads, &out, true));
                    proptest::prop_assert!(a.all_close(&naive_nd(&x, pool, strides, &pads, &out, false), 1e-6, 1e-6));
                }
                (None, Err(e), Err(_)) => proptest::prop_assert!(matches!(e, Error::WindowTooLargeNd { .. }), "{e}"),
                (g, m, a) => proptest::prop_assert!(false, "{g:?} {m:?} {a:?}"),
            }
        }
    }

    #[test]
    fn nd_matches_2d_and_checks_its_arguments() {
        let x = iota(&[2, 5, 4, 3]);
        let p2 = PoolParams::new([2, 3]).with_strides([2, 1]).with_padding(Padding::Same);
        let pn = PoolNdParams::new(&[2, 3]).with_strides(&[2, 1]).with_same(true);
        assert_eq!(max_pool(&x, &pn).unwrap(), max_pool2d(&x, &p2).unwrap());
        assert_eq!(avg_pool(&x, &pn).unwrap(), avg_pool2d(&x, &p2).unwrap());
        let dy = max_pool(&x, &pn).unwrap().scale(0.5);
        assert_eq!(max_pool_backward(&x, &pn, &dy).unwrap(), max_pool2d_backward(&x, &p2, &dy).unwrap());
        assert_eq!(avg_pool_backward(&x, &pn, &dy).unwrap(), avg_pool2d_backward(&x, &p2, &dy).unwrap());
        // 1-D pooling is 2-D pooling with a unit height
        let x1 = iota(&[2, 7, 3]);
        let p1 = PoolNdParams::new(&[3]).with_strides(&[2]);
        let want =
            max_pool2d(&x1.reshape(&[2, 1, 7, 3]).unwrap(), &PoolParams::new([1, 3]).with_strides([1, 2])).unwrap();
        assert_eq!(max_pool(&x1, &p1).unwrap().as_slice(), want.as_slice());
        assert_eq!(max_pool(&x1, &p1).unwrap().shape(), &[2, 3, 3]);

        let e = max_pool(&x1, &PoolNdParams::new(&[8])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "max_pool: window [8] does not fit input of spatial size [7] without padding; use padding=\"same\" or a \
             smaller pool size"
        );
        assert!(matches!(max_pool(&x, &PoolNdParams::new(&[2])), Err(Error::Rank { expected: "3", .. })));
        assert!(matches!(
            avg_pool(&x1, &PoolNdParams::new(&[0]).with_strides(&[1])),
            Err(Error::ZeroParameter { name: "pool_size", .. })
        ));
        assert!(matches!(
            avg_pool(&x1, &PoolNdParams::new(&[1]).with_strides(&[1, 1])),
            Err(Error::AxisCount { found: 2, .. })
        ));
        assert!(matches!(avg_pool(&x1, &PoolNdParams::new(&[])), Err(Error::AxisCount { found: 0, .. })));
        assert!(matches!(max_pool_backward(&x1, &p1, &x1), Err(Error::GradShape { .. })));
    }

    #[test]
    fn backward_3d_routes_and_spreads() {
        // one 2x2x2 window over an iota volume: the max is the last element
        let x = iota(&[1, 2, 2, 2, 1]);
        let p = PoolNdParams::new(&[2, 2, 2]);
        let dy = Tensor::from_vec(&[1, 1, 1, 1, 1], vec![8.0]).unwrap();
        let mut want = vec![0.0; 8];
        want[7] = 8.0;
        assert_eq!(max_pool_backward(&x, &p, &dy).unwrap().as_slice(), want.as_slice());
        assert_eq!(avg_pool_backward(&x, &p, &dy).unwrap().as_slice(), &[1.0; 8]);
        assert_eq!(max_pool(&x, &p).unwrap().as_slice(), &[7.0]);
        assert_eq!(avg_pool(&x, &p).unwrap().as_slice(), &[3.5]);
    }

    #[test]
    fn parallel_paths_match_naive() {
        // few outputs with image-sized windows, and many outputs: both run on several tasks
        for (shape, pool, strides, same) in
            [([4, 20, 20, 8], [20, 20], [20, 20], false), ([8, 34, 32, 16], [3, 2], [2, 2], true)]
        {
            let n: usize = shape.iter().product();
            let x = Tensor::from_vec(&shape, (0..n).map(|i| ((i * 7919) % 101) as f32 - 50.0).collect()).unwrap();
            let p = PoolParams::new(pool).with_strides(strides).with_padding(if same {
                Padding::Same
            } else {
                Padding::Valid
            });
            assert_eq!(max_pool2d(&x, &p).unwrap(), naive(&x, &p, true));
            assert!(avg_pool2d(&x, &p).unwrap().all_close(&naive(&x, &p, false), 1e-5, 1e-5));
        }
    }

    #[test]
    fn half_precision_average_rounds_every_partial_sum() {
        // 2048 + 1 + 1 in float16: each +1 rounds back to 2048 (spacing 2 there); f32 gives 2050
        let x = Tensor::from_vec(&[1, 3, 1], vec![2048.0, 1.0, 1.0]).unwrap();
        let p = PoolNdParams::new(&[3]);
        assert_eq!(avg_pool_in(&x, &p, DType::F16).unwrap().as_slice(), &[f16_to_f32(f32_to_f16(2048.0 / 3.0))]);
        assert_eq!(avg_pool_in(&x, &p, DType::F32).unwrap().as_slice(), &[2050.0 / 3.0]);
        assert_eq!(avg_pool_in(&x, &p, DType::F32).unwrap(), avg_pool(&x, &p).unwrap());
    }
}
