//! Image resizing of NHWC tensors as TensorFlow's `tf.image.resize` computes it without
//! antialiasing (what Keras 3 `Resizing`, `UpSampling2D(interpolation="bilinear")` and
//! `ops.image.resize` run on the TF backend): `ResizeBilinear` and `ResizeNearestNeighbor` with
//! `half_pixel_centers=True`, `align_corners=False`.
//!
//! For output position `o` on an axis of input size `in` and output size `out`, with
//! `scale = in / out` (f32):
//! - bilinear: `src = (o + 0.5) * scale - 0.5`; the neighbours are `max(floor(src), 0)` and
//!   `min(ceil(src), in - 1)`, weighted by `src - floor(src)`; rows are interpolated first, then
//!   the two row results (TF's `compute_lerp` order);
//! - nearest: `min(floor((o + 0.5) * scale), in - 1)`.
//!
//! Index and weight tables are computed once per axis; the kernel is parallel over output rows.

use crate::elementwise::for_each_row;
use crate::{Error, Result, Tensor};

/// How [`resize`] samples the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Nearest neighbour (`tf.image.ResizeMethod.NEAREST_NEIGHBOR`).
    Nearest,
    /// Bilinear (`tf.image.ResizeMethod.BILINEAR`).
    Bilinear,
}

/// One output position's source along an axis: two neighbours and the weight of the upper one.
#[derive(Debug, Clone, Copy)]
struct Tap {
    lower: usize,
    upper: usize,
    lerp: f32,
}

/// The taps of one axis (`in_size >= 1`).
fn taps(in_size: usize, out_size: usize, method: Interpolation) -> Vec<Tap> {
    let scale = in_size as f32 / out_size as f32;
    let last = in_size - 1;
    (0..out_size)
        .map(|o| match method {
            Interpolation::Bilinear => {
                let src = (o as f32 + 0.5) * scale - 0.5;
                let floor = src.floor();
                // float -> usize casts saturate: negative positions clamp to 0
                Tap { lower: (floor as usize).min(last), upper: (src.ceil() as usize).min(last), lerp: src - floor }
            }
            Interpolation::Nearest => {
                let i = (((o as f32 + 0.5) * scale).floor() as usize).min(last);
                Tap { lower: i, upper: i, lerp: 0.0 }
            }
        })
        .collect()
}

fn geometry(op: &'static str, x: &[usize], size: [usize; 2]) -> Result<[usize; 4]> {
    let &[n, h, w, c] = x else {
        return Err(Error::Rank { op, expected: "4", layout: "NHWC", shape: x.to_vec() });
    };
    if size.contains(&0) {
        return Err(Error::ZeroParameter { op, name: "size" });
    }
    if h == 0 || w == 0 {
        return Err(Error::ZeroParameter { op, name: "input height and width" });
    }
    crate::shape::numel(&[n, size[0], size[1], c])?;
    Ok([n, h, w, c])
}

/// Resizes the spatial axes of an NHWC `x` to `size = [height, width]`.
pub fn resize(x: &Tensor, size: [usize; 2], method: Interpolation) -> Result<Tensor> {
    let [n, h, w, c] = geometry("resize", x.shape(), size)?;
    let [oh, ow] = size;
    let (ys, xs) = (taps(h, oh, method), taps(w, ow, method));
    let src = x.as_slice();
    let mut out = vec![0f32; n * oh * ow * c];
    for_each_row(&mut out, ow * c, |r, row| {
        let (b, oy) = (r / oh, r % oh);
        let Some(ty) = ys.get(oy) else { return };
        let top = &src[(b * h + ty.lower) * w * c..][..w * c];
        let bottom = &src[(b * h + ty.upper) * w * c..][..w * c];
        for (dst, tx) in row.chunks_exact_mut(c).zip(&xs) {
            let (l, u) = (tx.lower * c, tx.upper * c);
            match method {
                Interpolation::Nearest => dst.copy_from_slice(&top[l..l + c]),
                Interpolation::Bilinear => {
                    for (ch, d) in dst.iter_mut().enumerate() {
                        let (tl, tr) = (top[l + ch], top[u + ch]);
                        let (bl, br) = (bottom[l + ch], bottom[u + ch]);
                        let t = tl + (tr - tl) * tx.lerp;
                        let bo = bl + (br - bl) * tx.lerp;
                        *d = t + (bo - t) * ty.lerp;
                    }
                }
            }
        }
    });
    let y = Tensor::from_parts(vec![n, oh, ow, c], out);
    // recorded when `x` is tracked, with `resize_backward` as its gradient
    crate::tape::custom_op(
        "resize",
        &[x],
        y,
        Some(std::sync::Arc::new(move |ins: &[Tensor], _: &Tensor, g: &Tensor| {
            let x = ins.first().ok_or(Error::Empty { op: "resize" })?;
            Ok(vec![Some(resize_backward(x, size, method, g)?)])
        })),
    )
}

/// Gradient of [`resize`] with respect to `x` (each output's gradient goes back to the input
/// elements it was computed from, with their interpolation weights).
pub fn resize_backward(x: &Tensor, size: [usize; 2], method: Interpolation, dy: &Tensor) -> Result<Tensor> {
    let [n, h, w, c] = geometry("resize", x.shape(), size)?;
    let [oh, ow] = size;
    if dy.shape() != [n, oh, ow, c] {
        return Err(Error::GradShape { op: "resize", expected: vec![n, oh, ow, c], found: dy.shape().to_vec() });
    }
    let (ys, xs) = (taps(h, oh, method), taps(w, ow, method));
    let g = dy.as_slice();
    let mut dx = vec![0f32; x.len()];
    // rows of the input image receive contributions from several output rows: go image by image
    let img = h * w * c;
    for_each_row(&mut dx, img, |b, dst| {
        for (oy, ty) in ys.iter().enumerate() {
            for (ox, tx) in xs.iter().enumerate() {
                let grad = &g[((b * oh + oy) * ow + ox) * c..][..c];
                let wy = [(ty.lower, 1.0 - ty.lerp), (ty.upper, ty.lerp)];
                let wx = [(tx.lower, 1.0 - tx.lerp), (tx.upper, tx.lerp)];
                for &(iy, fy) in &wy {
                    for &(ix, fx) in &wx {
                        let f = fy * fx;
                        if f == 0.0 {
                            continue;
                        }
                        let d = &mut dst[(iy * w + ix) * c..][..c];
                        d.iter_mut().zip(grad).for_each(|(a, &gv)| *a += gv * f);
                    }
                }
            }
        }
    });
    Ok(Tensor::from_parts(x.shape().to_vec(), dx))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: TF's formulas per output element with signed arithmetic, no tables.
    fn naive(x: &Tensor, size: [usize; 2], method: Interpolation) -> Tensor {
        let s = x.shape();
        let (n, h, w, c) = (s[0], s[1], s[2], s[3]);
        let mut out = Vec::new();
        let src = |b: usize, i: i64, j: i64, ch: usize| x.get(&[b, i as usize, j as usize, ch]).unwrap();
        for b in 0..n {
            for oy in 0..size[0] {
                for ox in 0..size[1] {
                    for ch in 0..c {
                        let sy = h as f32 / size[0] as f32;
                        let sx = w as f32 / size[1] as f32;
                        let v = match method {
                            Interpolation::Nearest => {
                                let i = (((oy as f32 + 0.5) * sy).floor() as i64).clamp(0, h as i64 - 1);
                                let j = (((ox as f32 + 0.5) * sx).floor() as i64).clamp(0, w as i64 - 1);
                                src(b, i, j, ch)
                            }
                            Interpolation::Bilinear => {
                                let fy = (oy as f32 + 0.5) * sy - 0.5;
                                let fx = (ox as f32 + 0.5) * sx - 0.5;
                                let (y0, y1) = ((fy.floor() as i64).max(0), (fy.ceil() as i64).min(h as i64 - 1));
                                let (x0, x1) = ((fx.floor() as i64).max(0), (fx.ceil() as i64).min(w as i64 - 1));
                                let (ly, lx) = (fy - fy.floor(), fx - fx.floor());
                                let top = src(b, y0, x0, ch) + (src(b, y0, x1, ch) - src(b, y0, x0, ch)) * lx;
                                let bot = src(b, y1, x0, ch) + (src(b, y1, x1, ch) - src(b, y1, x0, ch)) * lx;
                                top + (bot - top) * ly
                            }
                        };
                        out.push(v);
                    }
                }
            }
        }
        Tensor::from_vec(&[n, size[0], size[1], c], out).unwrap()
    }

    fn data(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|i| ((i * 29) % 17) as f32 * 0.25 - 2.0).collect()).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn matches_naive(n in 1usize..3, h in 1usize..6, w in 1usize..6, c in 1usize..3,
                         oh in 1usize..9, ow in 1usize..9, bilinear in proptest::bool::ANY) {
            let x = data(&[n, h, w, c]);
            let m = if bilinear { Interpolation::Bilinear } else { Interpolation::Nearest };
            proptest::prop_assert_eq!(resize(&x, [oh, ow], m).unwrap(), naive(&x, [oh, ow], m));
        }
    }

    #[test]
    fn upsampling_by_two_matches_hand_weights() {
        // 1-D ramp [0, 4] upsampled x2: src positions -0.25, 0.25, 0.75, 1.25 -> 0, 1, 3, 4
        let x = Tensor::from_vec(&[1, 1, 2, 1], vec![0.0, 4.0]).unwrap();
        let y = resize(&x, [1, 4], Interpolation::Bilinear).unwrap();
        assert_eq!(y.as_slice(), &[0.0, 1.0, 3.0, 4.0]);
        let y = resize(&x, [1, 4], Interpolation::Nearest).unwrap();
        assert_eq!(y.as_slice(), &[0.0, 0.0, 4.0, 4.0]);
        // downsampling 4 -> 2 averages neighbour pairs
        let x = Tensor::from_vec(&[1, 1, 4, 1], vec![0.0, 2.0, 4.0, 6.0]).unwrap();
        assert_eq!(resize(&x, [1, 2], Interpolation::Bilinear).unwrap().as_slice(), &[1.0, 5.0]);
        assert_eq!(resize(&x, [1, 2], Interpolation::Nearest).unwrap().as_slice(), &[2.0, 6.0]);
    }

    #[test]
    fn errors_name_the_problem() {
        let x = data(&[1, 2, 2, 1]);
        assert_eq!(
            resize(&x, [0, 2], Interpolation::Bilinear).unwrap_err().to_string(),
            "resize: size must be at least 1 but is 0"
        );
        assert!(matches!(resize(&data(&[2, 2, 1]), [2, 2], Interpolation::Nearest), Err(Error::Rank { .. })));
        assert!(resize(&data(&[1, 0, 2, 1]), [2, 2], Interpolation::Nearest).is_err());
        assert!(matches!(resize_backward(&x, [3, 3], Interpolation::Nearest, &x), Err(Error::GradShape { .. })));
    }

    #[test]
    fn backward_matches_finite_differences() {
        // resize is linear in x: the gradient of sum(resize(x) * w) is exact under central differences
        for m in [Interpolation::Bilinear, Interpolation::Nearest] {
            let x = data(&[2, 3, 4, 2]);
            let size = [5, 3];
            let w = data(&[2, 5, 3, 2]).scale(0.3);
            let loss = |x: &Tensor| -> f64 {
                let y = resize(x, size, m).unwrap();
                y.as_slice().iter().zip(w.as_slice()).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum()
            };
            let g = resize_backward(&x, size, m, &w).unwrap();
            for j in 0..x.len() {
                let (mut p, mut q) = (x.to_vec(), x.to_vec());
                p[j] += 0.5;
                q[j] -= 0.5;
                let num =
                    loss(&Tensor::from_vec(x.shape(), p).unwrap()) - loss(&Tensor::from_vec(x.shape(), q).unwrap());
                assert!(
                    (num - f64::from(g.as_slice()[j])).abs() < 1e-4,
                    "{m:?} element {j}: {num} vs {}",
                    g.as_slice()[j]
                );
            }
        }
    }

    #[test]
    fn resize_is_recorded_with_its_backward() {
        let x = Tensor::from_vec(&[1, 2, 3, 1], vec![0.1, 0.7, -0.4, 1.2, 0.3, 0.9]).unwrap();
        for method in [Interpolation::Bilinear, Interpolation::Nearest] {
            let tape = crate::Tape::new();
            let xw = tape.watch(&x);
            let y = resize(&xw, [3, 5], method).unwrap();
            assert_eq!(y, resize(&x, [3, 5], method).unwrap(), "same forward");
            let g = tape.backward(&y).unwrap();
            let want = resize_backward(&x, [3, 5], method, &Tensor::ones(&[1, 3, 5, 1]).unwrap()).unwrap();
            assert_eq!(g.get(&xw).unwrap(), &want);
        }
    }
}
