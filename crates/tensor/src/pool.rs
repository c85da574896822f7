//! 2-D max and average pooling on NHWC tensors (Keras `MaxPooling2D`,
//! `AveragePooling2D`, `keras/src/layers/pooling/base_pooling.py`).
//!
//! Padded positions never win a max, and `same` average pooling divides by
//! the number of real (unpadded) elements in each window, as TensorFlow does.
//! Gradients: max pooling routes each output gradient to the first maximal
//! element of its window (row-major scan), average pooling spreads it evenly
//! over the real elements.

use rayon::prelude::*;

use crate::conv::{Padding, spatial};
use crate::elementwise::for_each_row;
use crate::{Error, Result, Tensor};

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

#[derive(Clone, Copy)]
struct Geo {
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    oh: usize,
    ow: usize,
    pt: usize,
    pl: usize,
    p: PoolParams,
}

impl Geo {
    fn new(op: &'static str, x: &[usize], p: &PoolParams) -> Result<Geo> {
        let &[n, h, w, c] = x else {
            return Err(Error::Rank { op, expected: "4", layout: "NHWC", shape: x.to_vec() });
        };
        let [a, b] = spatial(op, [h, w], p.pool, p.strides, [1, 1], p.padding)?;
        crate::shape::numel(&[n, a.out, b.out, c])?;
        Ok(Geo { n, h, w, c, oh: a.out, ow: b.out, pt: a.pad_before, pl: b.pad_before, p: *p })
    }

    fn out_shape(&self) -> Vec<usize> {
        vec![self.n, self.oh, self.ow, self.c]
    }

    /// Input rows and columns covered by output `(oy, ox)`, clipped to the input.
    fn window(&self, oy: usize, ox: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let clip = |o: usize, s: usize, k: usize, pad: usize, size: usize| {
            let start = o * s;
            (start.saturating_sub(pad).min(size))..((start + k).saturating_sub(pad).min(size))
        };
        (
            clip(oy, self.p.strides[0], self.p.pool[0], self.pt, self.h),
            clip(ox, self.p.strides[1], self.p.pool[1], self.pl, self.w),
        )
    }
}

/// Max pooling: `x` `[n, h, w, c]` -> `[n, oh, ow, c]`.
pub fn max_pool2d(x: &Tensor, p: &PoolParams) -> Result<Tensor> {
    let g = Geo::new("max_pool2d", x.shape(), p)?;
    let xs = x.as_slice();
    let mut out = vec![0f32; g.n * g.oh * g.ow * g.c];
    for_each_row(&mut out, g.ow * g.c, |r, row| {
        let (n, oy) = (r / g.oh, r % g.oh);
        for ox in 0..g.ow {
            let dst = &mut row[ox * g.c..][..g.c];
            dst.fill(f32::NEG_INFINITY);
            let (ys, xr) = g.window(oy, ox);
            for iy in ys {
                for ix in xr.clone() {
                    let src = &xs[((n * g.h + iy) * g.w + ix) * g.c..][..g.c];
                    dst.iter_mut().zip(src).for_each(|(d, &v)| {
                        if v > *d || v.is_nan() {
                            *d = v
                        }
                    });
                }
            }
        }
    });
    Ok(Tensor::from_parts(g.out_shape(), out))
}

/// Average pooling: `x` `[n, h, w, c]` -> `[n, oh, ow, c]`; padded elements are not counted.
pub fn avg_pool2d(x: &Tensor, p: &PoolParams) -> Result<Tensor> {
    let g = Geo::new("avg_pool2d", x.shape(), p)?;
    let xs = x.as_slice();
    let mut out = vec![0f32; g.n * g.oh * g.ow * g.c];
    for_each_row(&mut out, g.ow * g.c, |r, row| {
        let (n, oy) = (r / g.oh, r % g.oh);
        for ox in 0..g.ow {
            let dst = &mut row[ox * g.c..][..g.c];
            let (ys, xr) = g.window(oy, ox);
            let count = (ys.len() * xr.len()) as f32;
            for iy in ys {
                for ix in xr.clone() {
                    let src = &xs[((n * g.h + iy) * g.w + ix) * g.c..][..g.c];
                    dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
                }
            }
            dst.iter_mut().for_each(|d| *d /= count);
        }
    });
    Ok(Tensor::from_parts(g.out_shape(), out))
}

fn check_dy(op: &'static str, g: &Geo, dy: &Tensor) -> Result<()> {
    if dy.shape() != g.out_shape().as_slice() {
        return Err(Error::GradShape { op, expected: g.out_shape(), found: dy.shape().to_vec() });
    }
    Ok(())
}

/// Gradient of [`max_pool2d`] with respect to `x`.
pub fn max_pool2d_backward(x: &Tensor, p: &PoolParams, dy: &Tensor) -> Result<Tensor> {
    let g = Geo::new("max_pool2d", x.shape(), p)?;
    check_dy("max_pool2d", &g, dy)?;
    let (xs, dys) = (x.as_slice(), dy.as_slice());
    let img = g.h * g.w * g.c;
    let mut dx = vec![0f32; x.len()];
    if img > 0 {
        dx.par_chunks_mut(img).enumerate().for_each(|(n, dst)| {
            let mut best = vec![0usize; g.c];
            let mut val = vec![0f32; g.c];
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let (ys, xr) = g.window(oy, ox);
                    val.fill(f32::NEG_INFINITY);
                    best.fill(usize::MAX);
                    for iy in ys {
                        for ix in xr.clone() {
                            let pix = (iy * g.w + ix) * g.c;
                            let src = &xs[n * img + pix..][..g.c];
                            for ch in 0..g.c {
                                if best[ch] == usize::MAX || src[ch] > val[ch] {
                                    val[ch] = src[ch];
                                    best[ch] = pix + ch;
                                }
                            }
                        }
                    }
                    let grad = &dys[((n * g.oh + oy) * g.ow + ox) * g.c..][..g.c];
                    for (ch, &gv) in grad.iter().enumerate() {
                        if let Some(d) = dst.get_mut(best[ch]) {
                            *d += gv;
                        }
                    }
                }
            }
        });
    }
    Ok(Tensor::from_parts(x.shape().to_vec(), dx))
}

/// Gradient of [`avg_pool2d`] with respect to `x`.
pub fn avg_pool2d_backward(x: &Tensor, p: &PoolParams, dy: &Tensor) -> Result<Tensor> {
    let g = Geo::new("avg_pool2d", x.shape(), p)?;
    check_dy("avg_pool2d", &g, dy)?;
    let dys = dy.as_slice();
    let img = g.h * g.w * g.c;
    let mut dx = vec![0f32; x.len()];
    if img > 0 {
        dx.par_chunks_mut(img).enumerate().for_each(|(n, dst)| {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let (ys, xr) = g.window(oy, ox);
                    let count = (ys.len() * xr.len()) as f32;
                    let grad = &dys[((n * g.oh + oy) * g.ow + ox) * g.c..][..g.c];
                    for iy in ys {
                        for ix in xr.clone() {
                            let d = &mut dst[(iy * g.w + ix) * g.c..][..g.c];
                            d.iter_mut().zip(grad).for_each(|(a, &b)| *a += b / count);
                        }
                    }
                }
            }
        });
    }
    Ok(Tensor::from_parts(x.shape().to_vec(), dx))
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

    /// Direct reference: TF semantics written out with signed coordinates.
    fn naive(x: &Tensor, p: &PoolParams, max: bool) -> Tensor {
        let g = Geo::new("t", x.shape(), p).unwrap();
        let mut out = Vec::new();
        for n in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for ch in 0..g.c {
                        let (mut acc, mut count) = (if max { f32::NEG_INFINITY } else { 0.0 }, 0);
                        for ky in 0..p.pool[0] {
                            for kx in 0..p.pool[1] {
                                let iy = (oy * p.strides[0] + ky) as isize - g.pt as isize;
                                let ix = (ox * p.strides[1] + kx) as isize - g.pl as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let v = x.get(&[n, iy as usize, ix as usize, ch]).unwrap();
                                acc = if max { acc.max(v) } else { acc + v };
                                count += 1;
                            }
                        }
                        out.push(if max { acc } else { acc / count as f32 });
                    }
                }
            }
        }
        Tensor::from_vec(&g.out_shape(), out).unwrap()
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
}
