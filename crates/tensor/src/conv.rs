//! Convolutions in Keras's layout: inputs NHWC (channels last), kernels HWIO
//! (`[kernel_h, kernel_w, in_channels / groups, filters]`), as stored by
//! Keras `Conv2D` (`keras/src/layers/convolutional/base_conv.py`).
//!
//! Padding follows TensorFlow/Keras: `valid` uses no padding; `same` gives
//! `ceil(in / stride)` outputs and splits the total padding with the extra
//! element at the end (bottom/right). Dilation spaces kernel taps.
//!
//! The kernel is im2col + gemm: patches of a chunk of images (bounded to
//! about 4 MiB of scratch, so it stays in cache) are gathered in parallel into a
//! `[rows, kh*kw*cin]` matrix and multiplied with the kernel by `gemm`
//! (parallel). 1x1 stride-1 unpadded convolutions skip im2col. Groups run one
//! gemm per group on strided views of the kernel and output. The backward
//! pass reuses the same patches: `dW = colsᵀ·dY`, `dX = col2im(dY·Wᵀ)`.

use rayon::prelude::*;

use crate::elementwise::for_each_row;
use crate::matmul::{MatRef, gemm_f32};
use crate::tape::{Op, record, record1};
use crate::{Error, Result, Tensor};

/// Scratch budget for im2col, in f32 elements (4 MiB): small enough that the patches stay in cache
/// between im2col and gemm (measured 2x faster than 64 MiB on the 13x13x32 bench).
const COLS_BUDGET: usize = 1 << 20;

/// How a spatial window is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// No padding: windows must fit inside the input.
    #[default]
    Valid,
    /// Keras/TF `same`: `ceil(in / stride)` outputs; the odd padding element goes at the end.
    Same,
    /// Explicit padding in elements: `[(top, bottom), (left, right)]`.
    Explicit([(usize, usize); 2]),
}

/// Padding for 1-D convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding1d {
    /// No padding.
    #[default]
    Valid,
    /// Keras/TF `same`.
    Same,
    /// Keras `causal`: `dilation * (kernel - 1)` zeros on the left only.
    Causal,
}

/// Parameters of a 2-D convolution (Keras `Conv2D` arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between windows, `[h, w]`.
    pub strides: [usize; 2],
    /// Spacing between kernel taps (`dilation_rate`), `[h, w]`.
    pub dilation: [usize; 2],
    /// Padding.
    pub padding: Padding,
    /// Channel groups: input and output channels are split into `groups` independent convolutions.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams { strides: [1, 1], dilation: [1, 1], padding: Padding::Valid, groups: 1 }
    }
}

impl Conv2dParams {
    /// Sets the strides.
    pub fn with_strides(mut self, strides: [usize; 2]) -> Self {
        self.strides = strides;
        self
    }
    /// Sets the dilation rate.
    pub fn with_dilation(mut self, dilation: [usize; 2]) -> Self {
        self.dilation = dilation;
        self
    }
    /// Sets the padding.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    /// Sets the group count.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
}

/// Output size and leading padding of one spatial axis.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis {
    pub out: usize,
    pub pad_before: usize,
}

/// Padding of an N-d window op (1, 2 or 3 spatial axes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PaddingNd {
    /// No padding: windows must fit inside the input.
    #[default]
    Valid,
    /// Keras/TF `same`: `ceil(in / stride)` outputs; the odd padding element goes at the end.
    Same,
    /// Explicit padding in elements, `(before, after)` per spatial axis.
    Explicit(Vec<(usize, usize)>),
}

impl From<Padding> for PaddingNd {
    fn from(p: Padding) -> PaddingNd {
        match p {
            Padding::Valid => PaddingNd::Valid,
            Padding::Same => PaddingNd::Same,
            Padding::Explicit(e) => PaddingNd::Explicit(e.to_vec()),
        }
    }
}

/// Parameters of an N-d convolution (Keras `Conv1D`/`Conv2D`/`Conv3D` arguments). `strides` and
/// `dilation` hold one entry per spatial axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvParams {
    /// Step between windows, per spatial axis.
    pub strides: Vec<usize>,
    /// Spacing between kernel taps (`dilation_rate`), per spatial axis.
    pub dilation: Vec<usize>,
    /// Padding.
    pub padding: PaddingNd,
    /// Channel groups.
    pub groups: usize,
}

impl ConvParams {
    /// Unit strides and dilation, valid padding, one group, for `rank` spatial axes.
    pub fn new(rank: usize) -> ConvParams {
        ConvParams { strides: vec![1; rank], dilation: vec![1; rank], padding: PaddingNd::Valid, groups: 1 }
    }
    /// Sets the strides.
    pub fn with_strides(mut self, strides: &[usize]) -> Self {
        self.strides = strides.to_vec();
        self
    }
    /// Sets the dilation rate.
    pub fn with_dilation(mut self, dilation: &[usize]) -> Self {
        self.dilation = dilation.to_vec();
        self
    }
    /// Sets the padding.
    pub fn with_padding(mut self, padding: PaddingNd) -> Self {
        self.padding = padding;
        self
    }
    /// Sets the group count.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
}

impl From<&Conv2dParams> for ConvParams {
    fn from(p: &Conv2dParams) -> ConvParams {
        ConvParams {
            strides: p.strides.to_vec(),
            dilation: p.dilation.to_vec(),
            padding: p.padding.into(),
            groups: p.groups,
        }
    }
}

/// Computes both spatial axes of a 2-D window op; refuses windows larger than the padded input.
pub(crate) fn spatial(
    op: &'static str,
    input: [usize; 2],
    window: [usize; 2],
    strides: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
) -> Result<[Axis; 2]> {
    let a = spatial_nd(op, &input, &window, &strides, &dilation, &padding.into())?;
    match a.as_slice() {
        [h, w] => Ok([*h, *w]),
        _ => Err(Error::Internal { op, what: "spatial axes lost" }),
    }
}

/// Computes every spatial axis of a window op; refuses windows larger than the padded input.
pub(crate) fn spatial_nd(
    op: &'static str,
    input: &[usize],
    window: &[usize],
    strides: &[usize],
    dilation: &[usize],
    padding: &PaddingNd,
) -> Result<Vec<Axis>> {
    let r = input.len();
    for (len, shape) in [(window.len(), window), (strides.len(), strides), (dilation.len(), dilation)] {
        if len != r {
            return Err(Error::AxisCount { op, found: len, rank: r, shape: shape.to_vec() });
        }
    }
    if let PaddingNd::Explicit(p) = padding
        && p.len() != r
    {
        return Err(Error::AxisCount { op, found: p.len(), rank: r, shape: input.to_vec() });
    }
    if strides.contains(&0) {
        return Err(Error::ZeroParameter { op, name: "strides" });
    }
    if dilation.contains(&0) {
        return Err(Error::ZeroParameter { op, name: "dilation_rate" });
    }
    if window.contains(&0) {
        return Err(Error::ZeroParameter { op, name: "window size" });
    }
    let too_big = || Error::TooManyElements { shape: window.to_vec() };
    let mut eff = Vec::with_capacity(r);
    for i in 0..r {
        eff.push((window[i] - 1).checked_mul(dilation[i]).and_then(|e| e.checked_add(1)).ok_or_else(too_big)?);
    }
    let mut axes = Vec::with_capacity(r);
    for i in 0..r {
        let (inp, s, k) = (input[i], strides[i], eff[i]);
        let (padded, before) = match padding {
            PaddingNd::Valid => (inp, 0),
            PaddingNd::Same => {
                let out = inp.div_ceil(s);
                let need = (out.saturating_sub(1) * s).checked_add(k).ok_or_else(too_big)?.saturating_sub(inp);
                axes.push(Axis { out, pad_before: need / 2 });
                continue;
            }
            PaddingNd::Explicit(p) => {
                (inp.checked_add(p[i].0).and_then(|v| v.checked_add(p[i].1)).ok_or_else(too_big)?, p[i].0)
            }
        };
        if padded < k {
            let padding = match padding {
                PaddingNd::Explicit(p) => p.iter().map(|(a, b)| a.saturating_add(*b)).collect(),
                _ => vec![0; r],
            };
            return Err(Error::WindowTooLarge { op, window: eff, input: input.to_vec(), padding });
        }
        axes.push(Axis { out: (padded - k) / s + 1, pad_before: before });
    }
    Ok(axes)
}

/// Flat input and kernel gradients, each present when asked for.
type Grads = (Option<Vec<f32>>, Option<Vec<f32>>);

/// Everything the conv kernels need, validated. Spatial axes are lifted to three (`[d, h, w]`);
/// 1-D and 2-D convolutions have leading axes of size 1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    n: usize,
    c: usize,
    cg: usize,
    o: usize,
    og: usize,
    groups: usize,
    /// Input spatial size.
    inp: [usize; 3],
    /// Kernel spatial size.
    k: [usize; 3],
    /// Output spatial size.
    out: [usize; 3],
    /// Leading padding.
    pad: [usize; 3],
    /// Strides.
    s: [usize; 3],
    /// Dilation.
    d: [usize; 3],
}

/// Lifts per-axis values of `r <= 3` spatial axes to three, filling leading axes with `fill`.
fn lift(v: &[usize], fill: usize) -> [usize; 3] {
    let mut a = [fill; 3];
    let r = v.len().min(3);
    a[3 - r..].copy_from_slice(&v[v.len() - r..]);
    a
}

impl Geometry {
    pub(crate) fn new(op: &'static str, x: &[usize], k: &[usize], p: &Conv2dParams) -> Result<Geometry> {
        if x.len() != 4 {
            return Err(Error::Rank { op, expected: "4", layout: "NHWC", shape: x.to_vec() });
        }
        if k.len() != 4 {
            return Err(Error::Rank { op, expected: "4", layout: "HWIO kernel", shape: k.to_vec() });
        }
        Geometry::nd(op, x, k, &ConvParams::from(p))
    }

    /// Validates an N-d convolution: `x` `[n, spatial..., c]`, kernel `[k..., c / groups, o]`.
    pub(crate) fn nd(op: &'static str, x: &[usize], k: &[usize], p: &ConvParams) -> Result<Geometry> {
        let r = spatial_rank(op, x, k, "[k..., in, out] kernel")?;
        let (n, c, cg, o) = (x[0], x[r + 1], k[r], k[r + 1]);
        if p.groups == 0 {
            return Err(Error::ZeroParameter { op, name: "groups" });
        }
        let expected = cg.checked_mul(p.groups).ok_or(Error::TooManyElements { shape: k.to_vec() })?;
        if expected != c {
            return Err(Error::Channels {
                op,
                input: x.to_vec(),
                kernel: k.to_vec(),
                groups: p.groups,
                channels: c,
                expected,
            });
        }
        if o % p.groups != 0 {
            return Err(Error::Groups { op, filters: o, groups: p.groups });
        }
        let axes = spatial_nd(op, &x[1..=r], &k[..r], &p.strides, &p.dilation, &p.padding)?;
        let outs: Vec<usize> = axes.iter().map(|a| a.out).collect();
        let pads: Vec<usize> = axes.iter().map(|a| a.pad_before).collect();
        let mut out_shape = vec![n];
        out_shape.extend(&outs);
        out_shape.push(o);
        crate::shape::numel(&out_shape)?;
        let mut cols_shape = outs.clone();
        cols_shape.extend_from_slice(k);
        crate::shape::numel(&cols_shape)?;
        Ok(Geometry {
            n,
            c,
            cg,
            o,
            og: o / p.groups,
            groups: p.groups,
            inp: lift(&x[1..=r], 1),
            k: lift(&k[..r], 1),
            out: lift(&outs, 1),
            pad: lift(&pads, 0),
            s: lift(&p.strides, 1),
            d: lift(&p.dilation, 1),
        })
    }

    /// Output shape with `r` spatial axes.
    fn out_shape_nd(&self, r: usize) -> Vec<usize> {
        let mut s = vec![self.n];
        s.extend_from_slice(&self.out[3 - r..]);
        s.push(self.o);
        s
    }

    fn out_shape(&self) -> Vec<usize> {
        self.out_shape_nd(2)
    }

    /// Patch length (gemm k).
    fn k(&self) -> usize {
        self.k[0] * self.k[1] * self.k[2] * self.cg
    }

    fn rows_per_image(&self) -> usize {
        self.out[0] * self.out[1] * self.out[2]
    }

    fn images_per_chunk(&self) -> usize {
        let per = self.rows_per_image() * self.k();
        (COLS_BUDGET / per.max(1)).clamp(1, self.n.max(1))
    }

    fn is_pointwise(&self) -> bool {
        self.k == [1, 1, 1] && self.s == [1, 1, 1] && self.groups == 1 && self.out == self.inp
    }

    /// Input coordinate of output `o` and tap `t` on one axis, if inside the input.
    #[inline]
    fn tap(o: usize, t: usize, stride: usize, dil: usize, pad: usize, size: usize) -> Option<usize> {
        (o * stride + t * dil).checked_sub(pad).filter(|&i| i < size)
    }

    /// Input coordinate on spatial axis `a` (0 = depth, 1 = height, 2 = width).
    #[inline]
    fn tap_on(&self, a: usize, o: usize, t: usize) -> Option<usize> {
        Self::tap(o, t, self.s[a], self.d[a], self.pad[a], self.inp[a])
    }

    /// Gathers patches of images `n0..n1`, channels of group `grp`, into `cols` (`rows x k`).
    /// One task fills the patches of one output row (fixed image, depth and `oy`).
    fn im2col(&self, x: &[f32], n0: usize, n1: usize, grp: usize, cols: &mut [f32]) {
        let (k, c0, cg) = (self.k(), grp * self.cg, self.cg);
        let [id, ih, iw] = self.inp;
        let [kd, kh, kw] = self.k;
        let [od, oh, ow] = self.out;
        let cols = &mut cols[..(n1 - n0) * self.rows_per_image() * k];
        let (tap_k, plane_k) = (kw * cg, kh * kw * cg);
        for_each_row(cols, ow * k, |r, out_row| {
            let (oy, oz, n) = (r % oh, (r / oh) % od, n0 + r / (oh * od));
            for kz in 0..kd {
                let Some(iz) = self.tap_on(0, oz, kz) else {
                    for ox in 0..ow {
                        out_row[ox * k + kz * plane_k..][..plane_k].fill(0.0);
                    }
                    continue;
                };
                for ky in 0..kh {
                    let base = kz * plane_k + ky * tap_k;
                    let Some(iy) = self.tap_on(1, oy, ky) else {
                        for ox in 0..ow {
                            out_row[ox * k + base..][..tap_k].fill(0.0);
                        }
                        continue;
                    };
                    let src_row = &x[((n * id + iz) * ih + iy) * iw * self.c..][..iw * self.c];
                    for ox in 0..ow {
                        let dst = &mut out_row[ox * k + base..][..tap_k];
                        for (kx, seg) in dst.chunks_exact_mut(cg).enumerate() {
                            match self.tap_on(2, ox, kx) {
                                Some(ix) if cg == 1 => seg[0] = src_row[ix * self.c + c0],
                                Some(ix) => seg.copy_from_slice(&src_row[ix * self.c + c0..][..cg]),
                                None => seg.fill(0.0),
                            }
                        }
                    }
                }
            }
        });
    }

    /// Output coordinate whose tap `t` on axis `a` reads input coordinate `i`, if any.
    #[inline]
    fn untap(&self, a: usize, i: usize, t: usize) -> Option<usize> {
        let v = (i + self.pad[a]).checked_sub(t * self.d[a])?;
        (v % self.s[a] == 0).then_some(v / self.s[a]).filter(|&o| o < self.out[a])
    }

    /// Adds patch gradients of images `n0..n1`, group `grp`, back into `dx` (the inverse of im2col).
    /// Gathers per destination row (image, depth, `iy`), so rows run in parallel even for one image.
    fn col2im(&self, dcols: &[f32], n0: usize, n1: usize, grp: usize, dx: &mut [f32]) {
        let (k, rpi, c0) = (self.k(), self.rows_per_image(), grp * self.cg);
        let [id, ih, iw] = self.inp;
        let [kd, kh, kw] = self.k;
        let [_, oh, ow] = self.out;
        let img = id * ih * iw * self.c;
        if img == 0 || k == 0 {
            return;
        }
        let (cg, tap_k, plane_k) = (self.cg, kw * self.cg, kh * kw * self.cg);
        for_each_row(&mut dx[n0 * img..n1 * img], iw * self.c, |r, dst_row| {
            let (iy, iz, i) = (r % ih, (r / ih) % id, r / (ih * id));
            let base = i * rpi * k;
            for kz in 0..kd {
                let Some(oz) = self.untap(0, iz, kz) else { continue };
                for ky in 0..kh {
                    let Some(oy) = self.untap(1, iy, ky) else { continue };
                    for ox in 0..ow {
                        let row = (oz * oh + oy) * ow + ox;
                        let src = &dcols[base + row * k + kz * plane_k + ky * tap_k..][..tap_k];
                        for (kx, seg) in src.chunks_exact(cg).enumerate() {
                            match self.tap_on(2, ox, kx) {
                                Some(ix) if cg == 1 => dst_row[ix * self.c + c0] += seg[0],
                                Some(ix) => {
                                    let d = &mut dst_row[ix * self.c + c0..][..cg];
                                    d.iter_mut().zip(seg).for_each(|(a, b)| *a += b);
                                }
                                None => {}
                            }
                        }
                    }
                }
            }
        });
    }

    /// Image chunks `(n0, n1)` sized to the scratch budget.
    fn chunks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let step = self.images_per_chunk();
        (0..self.n).step_by(step).map(move |n0| (n0, (n0 + step).min(self.n)))
    }

    /// Input element count.
    fn input_len(&self) -> usize {
        self.n * self.inp[0] * self.inp[1] * self.inp[2] * self.c
    }

    /// The forward convolution of `xs` (input) with `ks` (kernel), flat output.
    fn forward(&self, xs: &[f32], ks: &[f32]) -> Result<Vec<f32>> {
        let g = self;
        let mut out = vec![0f32; g.n * g.rows_per_image() * g.o];
        if g.is_pointwise() {
            gemm_f32(
                g.n * g.rows_per_image(),
                g.o,
                g.c,
                (&mut out, 0, g.o, 1),
                false,
                MatRef { data: xs, offset: 0, rs: g.c, cs: 1 },
                MatRef { data: ks, offset: 0, rs: g.o, cs: 1 },
                true,
            )?;
            return Ok(out);
        }
        let (k, rpi) = (g.k(), g.rows_per_image());
        let mut cols = vec![0f32; g.images_per_chunk() * rpi * k];
        for (n0, n1) in g.chunks() {
            let m = (n1 - n0) * rpi;
            for grp in 0..g.groups {
                g.im2col(xs, n0, n1, grp, &mut cols);
                gemm_f32(
                    m,
                    g.og,
                    k,
                    (&mut out, n0 * rpi * g.o + grp * g.og, g.o, 1),
                    false,
                    MatRef { data: &cols, offset: 0, rs: k, cs: 1 },
                    MatRef { data: ks, offset: grp * g.og, rs: g.o, cs: 1 },
                    true,
                )?;
            }
        }
        Ok(out)
    }

    /// Input and kernel gradients given the output gradient `dys` (each only if asked for). `xs`
    /// is only read for the kernel gradient.
    fn backward(&self, xs: &[f32], ks: &[f32], dys: &[f32], want_dx: bool, want_dw: bool) -> Result<Grads> {
        let g = self;
        let (k, rpi) = (g.k(), g.rows_per_image());
        let mut dx = if want_dx { Some(vec![0f32; g.input_len()]) } else { None };
        let mut dw = if want_dw { Some(vec![0f32; k * g.o]) } else { None };
        let mut cols = vec![0f32; g.images_per_chunk() * rpi * k];
        for (n0, n1) in g.chunks() {
            let m = (n1 - n0) * rpi;
            let dy_off = n0 * rpi * g.o;
            for grp in 0..g.groups {
                if let Some(dw) = dw.as_mut() {
                    g.im2col(xs, n0, n1, grp, &mut cols);
                    gemm_f32(
                        k,
                        g.og,
                        m,
                        (dw, grp * g.og, g.o, 1),
                        true,
                        MatRef { data: &cols, offset: 0, rs: 1, cs: k },
                        MatRef { data: dys, offset: dy_off + grp * g.og, rs: g.o, cs: 1 },
                        true,
                    )?;
                }
                if let Some(dx) = dx.as_mut() {
                    gemm_f32(
                        m,
                        k,
                        g.og,
                        (&mut cols, 0, k, 1),
                        false,
                        MatRef { data: dys, offset: dy_off + grp * g.og, rs: g.o, cs: 1 },
                        MatRef { data: ks, offset: grp * g.og, rs: 1, cs: g.o },
                        true,
                    )?;
                    g.col2im(&cols, n0, n1, grp, dx);
                }
            }
        }
        Ok((dx, dw))
    }
}

/// 2-D convolution: `x` `[n, h, w, c]`, `kernel` `[kh, kw, c / groups, filters]` -> `[n, oh, ow, filters]`.
/// No bias (add it with a broadcasting [`Tensor::add`]).
pub fn conv2d(x: &Tensor, kernel: &Tensor, params: &Conv2dParams) -> Result<Tensor> {
    let g = Geometry::new("conv2d", x.shape(), kernel.shape(), params)?;
    let out = g.forward(x.as_slice(), kernel.as_slice())?;
    record("conv2d", &[x, kernel], Tensor::from_parts(g.out_shape(), out), || Op::Conv2d(*params))
}

/// Gradients of [`conv2d`] with respect to `x` and `kernel` given the output gradient `dy`.
/// Each is computed only if asked for.
pub fn conv2d_backward(
    x: &Tensor,
    kernel: &Tensor,
    params: &Conv2dParams,
    dy: &Tensor,
    want_dx: bool,
    want_dw: bool,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let g = Geometry::new("conv2d_backward", x.shape(), kernel.shape(), params)?;
    if dy.shape() != g.out_shape().as_slice() {
        return Err(Error::GradShape { op: "conv2d", expected: g.out_shape(), found: dy.shape().to_vec() });
    }
    let (dx, dw) = g.backward(x.as_slice(), kernel.as_slice(), dy.as_slice(), want_dx, want_dw)?;
    Ok((
        dx.map(|d| Tensor::from_parts(x.shape().to_vec(), d)),
        dw.map(|d| Tensor::from_parts(kernel.shape().to_vec(), d)),
    ))
}

/// Maps 1-D convolution arguments onto 2-D ones (a height-1 image).
pub(crate) fn conv1d_as_2d(
    kernel_len: usize,
    stride: usize,
    dilation: usize,
    padding: Padding1d,
    groups: usize,
) -> Conv2dParams {
    let padding = match padding {
        Padding1d::Valid => Padding::Valid,
        Padding1d::Same => Padding::Same,
        Padding1d::Causal => Padding::Explicit([(0, 0), (dilation * kernel_len.saturating_sub(1), 0)]),
    };
    Conv2dParams { strides: [1, stride], dilation: [1, dilation], padding, groups }
}

/// 1-D convolution: `x` `[n, len, c]`, `kernel` `[k, c / groups, filters]` -> `[n, out_len, filters]`.
pub fn conv1d(
    x: &Tensor,
    kernel: &Tensor,
    stride: usize,
    dilation: usize,
    padding: Padding1d,
    groups: usize,
) -> Result<Tensor> {
    let (&[n, l, c], &[k, cg, o]) = (x.shape(), kernel.shape()) else {
        let (shape, layout) = if x.rank() != 3 { (x.shape(), "NWC") } else { (kernel.shape(), "WIO kernel") };
        return Err(Error::Rank { op: "conv1d", expected: "3", layout, shape: shape.to_vec() });
    };
    let p = conv1d_as_2d(k, stride, dilation, padding, groups);
    let y = conv2d(&x.reshape(&[n, 1, l, c])?, &kernel.reshape(&[1, k, cg, o])?, &p)?;
    let (ol, o) = (y.shape()[2], y.shape()[3]);
    y.reshape(&[n, ol, o])
}

/// Depthwise 2-D convolution (Keras `DepthwiseConv2D`): `kernel` `[kh, kw, c, multiplier]`, output
/// channel `c * multiplier + m`. A direct kernel vectorized over channels (no im2col): each
/// output pixel accumulates `kh * kw` channel-wise products.
pub fn depthwise_conv2d(
    x: &Tensor,
    kernel: &Tensor,
    strides: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
) -> Result<Tensor> {
    let (k2, params) = depthwise_as_grouped(x, kernel, strides, dilation, padding)?;
    let g = Geometry::new("depthwise_conv2d", x.shape(), k2.shape(), &params)?;
    let (xs, ks) = (x.as_slice(), kernel.as_slice());
    let (c, m, o) = (g.c, g.og, g.o);
    let mut out = vec![0f32; g.n * g.out[1] * g.out[2] * o];
    for_each_row(&mut out, g.out[2] * o, |r, row| {
        let (n, oy) = (r / g.out[1], r % g.out[1]);
        for ky in 0..g.k[1] {
            let Some(iy) = Geometry::tap(oy, ky, g.s[1], g.d[1], g.pad[1], g.inp[1]) else { continue };
            let src_row = &xs[(n * g.inp[1] + iy) * g.inp[2] * c..][..g.inp[2] * c];
            for kx in 0..g.k[2] {
                let taps = &ks[(ky * g.k[2] + kx) * o..][..o];
                for ox in 0..g.out[2] {
                    let Some(ix) = Geometry::tap(ox, kx, g.s[2], g.d[2], g.pad[2], g.inp[2]) else { continue };
                    let px = &src_row[ix * c..][..c];
                    let acc = &mut row[ox * o..][..o];
                    if m == 1 {
                        acc.iter_mut().zip(px).zip(taps).for_each(|((a, &xv), &kv)| *a += xv * kv);
                    } else {
                        for (ci, &xv) in px.iter().enumerate() {
                            let (a, t) = (&mut acc[ci * m..][..m], &taps[ci * m..][..m]);
                            a.iter_mut().zip(t).for_each(|(a, &kv)| *a += xv * kv);
                        }
                    }
                }
            }
        }
    });
    record("depthwise_conv2d", &[x, kernel], Tensor::from_parts(g.out_shape(), out), || Op::Depthwise {
        strides,
        dilation,
        padding,
    })
}

/// Gradients of [`depthwise_conv2d`] with respect to `x` and `kernel`. The kernel gradient is summed
/// over fixed blocks of images in a fixed order, so results do not depend on thread scheduling.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_backward(
    x: &Tensor,
    kernel: &Tensor,
    strides: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
    dy: &Tensor,
    want_dx: bool,
    want_dw: bool,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let (k2, params) = depthwise_as_grouped(x, kernel, strides, dilation, padding)?;
    let g = Geometry::new("depthwise_conv2d_backward", x.shape(), k2.shape(), &params)?;
    if dy.shape() != g.out_shape().as_slice() {
        return Err(Error::GradShape { op: "depthwise_conv2d", expected: g.out_shape(), found: dy.shape().to_vec() });
    }
    let (xs, ks, dys) = (x.as_slice(), kernel.as_slice(), dy.as_slice());
    let (c, m, o) = (g.c, g.og, g.o);
    let img = g.inp[1] * g.inp[2] * c;
    // Visits every valid (image, output pixel, tap) with the input pixel offset and the tap index.
    let visit = |n: usize, f: &mut dyn FnMut(usize, usize, &[f32])| {
        for oy in 0..g.out[1] {
            for ky in 0..g.k[1] {
                let Some(iy) = Geometry::tap(oy, ky, g.s[1], g.d[1], g.pad[1], g.inp[1]) else { continue };
                for ox in 0..g.out[2] {
                    let grad = &dys[((n * g.out[1] + oy) * g.out[2] + ox) * o..][..o];
                    for kx in 0..g.k[2] {
                        let Some(ix) = Geometry::tap(ox, kx, g.s[2], g.d[2], g.pad[2], g.inp[2]) else { continue };
                        f((iy * g.inp[2] + ix) * c, ky * g.k[2] + kx, grad);
                    }
                }
            }
        }
    };
    let dx = if want_dx && img > 0 {
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(img).enumerate().for_each(|(n, dst)| {
            visit(n, &mut |pix, tap, grad| {
                let taps = &ks[tap * o..][..o];
                let d = &mut dst[pix..][..c];
                for (ci, dv) in d.iter_mut().enumerate() {
                    *dv += grad[ci * m..][..m].iter().zip(&taps[ci * m..][..m]).map(|(a, b)| a * b).sum::<f32>();
                }
            });
        });
        Some(Tensor::from_parts(x.shape().to_vec(), dx))
    } else if want_dx {
        Some(Tensor::from_parts(x.shape().to_vec(), vec![0f32; x.len()]))
    } else {
        None
    };
    let dw = if want_dw {
        let blocks = g.n.clamp(1, 32);
        let per = g.n.div_ceil(blocks).max(1);
        let partials: Vec<Vec<f32>> = (0..blocks)
            .into_par_iter()
            .map(|b| {
                let mut acc = vec![0f32; kernel.len()];
                for n in (b * per)..((b + 1) * per).min(g.n) {
                    let xi = &xs[n * img..][..img];
                    visit(n, &mut |pix, tap, grad| {
                        let px = &xi[pix..][..c];
                        let a = &mut acc[tap * o..][..o];
                        for (ci, &xv) in px.iter().enumerate() {
                            a[ci * m..][..m].iter_mut().zip(&grad[ci * m..][..m]).for_each(|(a, &gv)| *a += xv * gv);
                        }
                    });
                }
                acc
            })
            .collect();
        let mut dw = vec![0f32; kernel.len()];
        for p in &partials {
            dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        Some(Tensor::from_parts(kernel.shape().to_vec(), dw))
    } else {
        None
    };
    Ok((dx, dw))
}

pub(crate) fn depthwise_as_grouped(
    x: &Tensor,
    kernel: &Tensor,
    strides: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
) -> Result<(Tensor, Conv2dParams)> {
    let &[kh, kw, kc, mult] = kernel.shape() else {
        return Err(Error::Rank {
            op: "depthwise_conv2d",
            expected: "4",
            layout: "[kh, kw, channels, multiplier] kernel",
            shape: kernel.shape().to_vec(),
        });
    };
    let c = if x.rank() == 4 { x.shape()[3] } else { kc };
    if c != kc {
        return Err(Error::Channels {
            op: "depthwise_conv2d",
            input: x.shape().to_vec(),
            kernel: kernel.shape().to_vec(),
            groups: 1,
            channels: c,
            expected: kc,
        });
    }
    let k2 = kernel.detach().reshape(&[kh, kw, 1, kc * mult])?;
    Ok((k2, Conv2dParams { strides, dilation, padding, groups: kc.max(1) }))
}

/// N-d convolution (Keras `Conv1D`/`Conv2D`/`Conv3D`): `x` `[n, spatial..., c]` with 1 to 3 spatial
/// axes, `kernel` `[k..., c / groups, filters]` -> `[n, out..., filters]`. No bias.
pub fn conv_nd(x: &Tensor, kernel: &Tensor, params: &ConvParams) -> Result<Tensor> {
    let g = Geometry::nd("conv", x.shape(), kernel.shape(), params)?;
    let out = g.forward(x.as_slice(), kernel.as_slice())?;
    let out = Tensor::from_parts(g.out_shape_nd(x.rank() - 2), out);
    record("conv", &[x, kernel], out, || Op::ConvNd(params.clone()))
}

/// Gradients of [`conv_nd`] with respect to `x` and `kernel` given the output gradient `dy`.
pub fn conv_nd_backward(
    x: &Tensor,
    kernel: &Tensor,
    params: &ConvParams,
    dy: &Tensor,
    want_dx: bool,
    want_dw: bool,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let g = Geometry::nd("conv_backward", x.shape(), kernel.shape(), params)?;
    let expected = g.out_shape_nd(x.rank() - 2);
    if dy.shape() != expected.as_slice() {
        return Err(Error::GradShape { op: "conv", expected, found: dy.shape().to_vec() });
    }
    let (dx, dw) = g.backward(x.as_slice(), kernel.as_slice(), dy.as_slice(), want_dx, want_dw)?;
    Ok((
        dx.map(|d| Tensor::from_parts(x.shape().to_vec(), d)),
        dw.map(|d| Tensor::from_parts(kernel.shape().to_vec(), d)),
    ))
}

/// Output length of one axis of a transposed convolution, as Keras computes it
/// (`compute_conv_transpose_output_shape`): `valid` gives `(in - 1) * s + k + output_padding`
/// (default output padding `max(k, s) - k`), `same` gives `in * s`, or with an output padding
/// `(in - 1) * s + k % 2 + output_padding`; `k` is the dilated kernel size.
pub fn conv_transpose_output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    same: bool,
    output_padding: Option<usize>,
) -> Option<usize> {
    let k = kernel.checked_sub(1)?.checked_mul(dilation)?.checked_add(1)?;
    let base = input.checked_sub(1)?.checked_mul(stride)?;
    match (same, output_padding) {
        (false, op) => base.checked_add(k)?.checked_add(op.unwrap_or(k.max(stride) - k)),
        (true, None) => input.checked_mul(stride),
        (true, Some(op)) => base.checked_add(k % 2)?.checked_add(op),
    }
}
/// The number of spatial axes (1 to 3) of a channels-last input `x`, checking that `kernel` has
/// the same rank (`layout` names the kernel layout in the error).
fn spatial_rank(op: &'static str, x: &[usize], kernel: &[usize], layout: &'static str) -> Result<usize> {
    let r = x.len().wrapping_sub(2);
    if !(1..=3).contains(&r) {
        return Err(Error::Rank { op, expected: "3, 4 or 5", layout: "channels-last input", shape: x.to_vec() });
    }
    if kernel.len() != x.len() {
        return Err(Error::Rank { op, expected: "input rank", layout, shape: kernel.to_vec() });
    }
    Ok(r)
}

/// The forward geometry whose input gradient is the transposed convolution of `x` `[n, in..., cin]`
/// with `kernel` `[k..., cout, cin]`, and the transposed output shape.
fn transpose_geometry(
    op: &'static str,
    x: &[usize],
    kernel: &[usize],
    params: &ConvParams,
    output_padding: Option<&[usize]>,
) -> Result<(Geometry, Vec<usize>)> {
    let r = spatial_rank(op, x, kernel, "[k..., out, in] kernel")?;
    if params.groups != 1 {
        return Err(Error::Groups { op, filters: kernel[r], groups: params.groups });
    }
    if params.strides.len() != r || params.dilation.len() != r {
        let found = if params.strides.len() != r { params.strides.len() } else { params.dilation.len() };
        return Err(Error::AxisCount { op, found, rank: r, shape: x.to_vec() });
    }
    if params.strides.contains(&0) {
        return Err(Error::ZeroParameter { op, name: "strides" });
    }
    if params.dilation.contains(&0) {
        return Err(Error::ZeroParameter { op, name: "dilation_rate" });
    }
    if kernel[..r].contains(&0) {
        return Err(Error::ZeroParameter { op, name: "kernel size" });
    }
    let same = match params.padding {
        PaddingNd::Valid => false,
        PaddingNd::Same => true,
        PaddingNd::Explicit(_) => return Err(Error::Internal { op, what: "explicit padding is not defined here" }),
    };
    if let Some(op_pad) = output_padding
        && op_pad.len() != r
    {
        return Err(Error::AxisCount { op, found: op_pad.len(), rank: r, shape: x.to_vec() });
    }
    let mut full = vec![x[0]];
    for i in 0..r {
        let len = conv_transpose_output_len(
            x[i + 1],
            kernel[i],
            params.strides[i],
            params.dilation[i],
            same,
            output_padding.map(|p| p[i]),
        )
        .ok_or(Error::TooManyElements { shape: x.to_vec() })?;
        full.push(len);
    }
    full.push(kernel[r]);
    crate::shape::numel(&full)?;
    let g = Geometry::nd(op, &full, kernel, params)?;
    if g.out_shape_nd(r) != x {
        return Err(Error::TransposeShape { op, input: x.to_vec(), output: full, forward: g.out_shape_nd(r) });
    }
    Ok((g, full))
}

/// N-d transposed convolution (Keras `Conv1DTranspose`/`Conv2DTranspose`/`Conv3DTranspose`):
/// `x` `[n, in..., cin]`, `kernel` `[k..., filters, cin]` -> `[n, out..., filters]` with the output
/// length of [`conv_transpose_output_len`]. `params.padding` is `Valid` or `Same` (TensorFlow's
/// rule for the forward convolution of the output size); `output_padding` has one entry per axis.
/// Computed as the input gradient of that forward convolution: `gemm` then col2im. No bias.
pub fn conv_transpose_nd(
    x: &Tensor,
    kernel: &Tensor,
    params: &ConvParams,
    output_padding: Option<&[usize]>,
) -> Result<Tensor> {
    let (g, full) = transpose_geometry("conv_transpose", x.shape(), kernel.shape(), params, output_padding)?;
    let (dx, _) = g.backward(&[], kernel.as_slice(), x.as_slice(), true, false)?;
    let dx = dx.ok_or(Error::Internal { op: "conv_transpose", what: "no result" })?;
    record("conv_transpose", &[x, kernel], Tensor::from_parts(full, dx), || Op::ConvTranspose {
        params: params.clone(),
        output_padding: output_padding.map(<[usize]>::to_vec),
    })
}

/// Gradients of [`conv_transpose_nd`] with respect to `x` and `kernel` given the output gradient
/// `dy`: `dx` is the forward convolution of `dy`, `dkernel` the kernel gradient of that convolution.
pub fn conv_transpose_nd_backward(
    x: &Tensor,
    kernel: &Tensor,
    params: &ConvParams,
    output_padding: Option<&[usize]>,
    dy: &Tensor,
    want_dx: bool,
    want_dw: bool,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let op = "conv_transpose_backward";
    let (g, full) = transpose_geometry(op, x.shape(), kernel.shape(), params, output_padding)?;
    if dy.shape() != full.as_slice() {
        return Err(Error::GradShape { op: "conv_transpose", expected: full, found: dy.shape().to_vec() });
    }
    let dx = if want_dx {
        Some(Tensor::from_parts(x.shape().to_vec(), g.forward(dy.as_slice(), kernel.as_slice())?))
    } else {
        None
    };
    let dw = if want_dw {
        let (_, dw) = g.backward(dy.as_slice(), kernel.as_slice(), x.as_slice(), false, true)?;
        dw.map(|d| Tensor::from_parts(kernel.shape().to_vec(), d))
    } else {
        None
    };
    Ok((dx, dw))
}

/// Sliding-window patches (im2col) of `x` `[n, spatial..., c]`: `[n, out..., prod(window) * c]`,
/// each patch ordered `(window..., c)` like an HWIO kernel's first axes, zeros where a tap falls
/// in the padding. Used by locally connected layers.
pub fn extract_patches(x: &Tensor, window: &[usize], params: &ConvParams) -> Result<Tensor> {
    let r = x.rank().wrapping_sub(2);
    let c = x.shape().last().copied().unwrap_or(0);
    let mut kshape = window.to_vec();
    kshape.extend([c, 1]);
    if window.len() != r {
        return Err(Error::AxisCount {
            op: "extract_patches",
            found: window.len(),
            rank: r,
            shape: x.shape().to_vec(),
        });
    }
    let p = ConvParams { groups: 1, ..params.clone() };
    let g = Geometry::nd("extract_patches", x.shape(), &kshape, &p)?;
    let k = g.k();
    let total = g.n.checked_mul(g.rows_per_image()).and_then(|v| v.checked_mul(k));
    let total = total.ok_or(Error::TooManyElements { shape: x.shape().to_vec() })?;
    let mut cols = vec![0f32; total];
    if g.n > 0 {
        g.im2col(x.as_slice(), 0, g.n, 0, &mut cols);
    }
    let mut shape = g.out_shape_nd(r);
    if let Some(last) = shape.last_mut() {
        *last = k;
    }
    Ok(record1(x, Tensor::from_parts(shape, cols), || Op::ExtractPatches {
        window: window.to_vec(),
        params: params.clone(),
    }))
}

/// Gradient of [`extract_patches`] with respect to `x`: the patch gradients `dy` added back into the input
/// positions they were copied from (col2im).
pub fn extract_patches_backward(x: &Tensor, window: &[usize], params: &ConvParams, dy: &Tensor) -> Result<Tensor> {
    let r = x.rank().wrapping_sub(2);
    let c = x.shape().last().copied().unwrap_or(0);
    if window.len() != r {
        return Err(Error::AxisCount {
            op: "extract_patches_backward",
            found: window.len(),
            rank: r,
            shape: x.shape().to_vec(),
        });
    }
    let mut kshape = window.to_vec();
    kshape.extend([c, 1]);
    let p = ConvParams { groups: 1, ..params.clone() };
    let g = Geometry::nd("extract_patches_backward", x.shape(), &kshape, &p)?;
    let mut expected = g.out_shape_nd(r);
    if let Some(last) = expected.last_mut() {
        *last = g.k();
    }
    if dy.shape() != expected.as_slice() {
        return Err(Error::GradShape { op: "extract_patches", expected, found: dy.shape().to_vec() });
    }
    let mut dx = vec![0f32; x.len()];
    if g.n > 0 {
        g.col2im(dy.as_slice(), 0, g.n, 0, &mut dx);
    }
    Ok(Tensor::from_parts(x.shape().to_vec(), dx))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct 2-D convolution used as the reference.
    pub(crate) fn naive(x: &Tensor, k: &Tensor, p: &Conv2dParams) -> Tensor {
        naive_nd(x, k, &ConvParams::from(p))
    }

    /// Direct N-d convolution (lifted to 3 spatial axes) used as the reference.
    pub(crate) fn naive_nd(x: &Tensor, k: &Tensor, p: &ConvParams) -> Tensor {
        let g = Geometry::nd("t", x.shape(), k.shape(), p).unwrap();
        let r = x.rank() - 2;
        let x3 = x.reshape(&[g.n, g.inp[0], g.inp[1], g.inp[2], g.c]).unwrap();
        let k3 = k.reshape(&[g.k[0], g.k[1], g.k[2], g.cg, g.o]).unwrap();
        let [od, oh, ow] = g.out;
        let mut out = vec![0f32; g.n * od * oh * ow * g.o];
        for n in 0..g.n {
            for (oz, oy, ox) in (0..od).flat_map(|a| (0..oh).flat_map(move |b| (0..ow).map(move |c| (a, b, c)))) {
                for o in 0..g.o {
                    let grp = o / g.og;
                    let mut acc = 0f64;
                    for (kz, ky, kx) in
                        (0..g.k[0]).flat_map(|a| (0..g.k[1]).flat_map(move |b| (0..g.k[2]).map(move |c| (a, b, c))))
                    {
                        let (Some(iz), Some(iy), Some(ix)) =
                            (g.tap_on(0, oz, kz), g.tap_on(1, oy, ky), g.tap_on(2, ox, kx))
                        else {
                            continue;
                        };
                        for ci in 0..g.cg {
                            let xv = x3.get(&[n, iz, iy, ix, grp * g.cg + ci]).unwrap();
                            let kv = k3.get(&[kz, ky, kx, ci, o]).unwrap();
                            acc += (xv * kv) as f64;
                        }
                    }
                    out[(((n * od + oz) * oh + oy) * ow + ox) * g.o + o] = acc as f32;
                }
            }
        }
        Tensor::from_vec(&g.out_shape_nd(r), out).unwrap()
    }

    /// Direct transposed convolution: scatters every input element through the kernel.
    fn naive_transpose(x: &Tensor, k: &Tensor, p: &ConvParams, op: Option<&[usize]>) -> Tensor {
        let (g, full) = transpose_geometry("t", x.shape(), k.shape(), p, op).unwrap();
        // Forward geometry: input = transposed output (c = filters), output = x (o = cin).
        let [od, oh, ow] = g.out;
        let [id, ih, iw] = g.inp;
        let k3 = k.reshape(&[g.k[0], g.k[1], g.k[2], g.c, g.o]).unwrap();
        let x3 = x.reshape(&[g.n, od, oh, ow, g.o]).unwrap();
        let mut y = vec![0f64; g.n * id * ih * iw * g.c];
        for n in 0..g.n {
            for (oz, oy, ox) in (0..od).flat_map(|a| (0..oh).flat_map(move |b| (0..ow).map(move |c| (a, b, c)))) {
                for (kz, ky, kx) in
                    (0..g.k[0]).flat_map(|a| (0..g.k[1]).flat_map(move |b| (0..g.k[2]).map(move |c| (a, b, c))))
                {
                    let (Some(iz), Some(iy), Some(ix)) =
                        (g.tap_on(0, oz, kz), g.tap_on(1, oy, ky), g.tap_on(2, ox, kx))
                    else {
                        continue;
                    };
                    for f in 0..g.c {
                        for ci in 0..g.o {
                            y[(((n * id + iz) * ih + iy) * iw + ix) * g.c + f] +=
                                (x3.get(&[n, oz, oy, ox, ci]).unwrap() * k3.get(&[kz, ky, kx, f, ci]).unwrap()) as f64;
                        }
                    }
                }
            }
        }
        Tensor::from_vec(&full, y.into_iter().map(|v| v as f32).collect()).unwrap()
    }

    fn seq(shape: &[usize], seed: usize) -> Tensor {
        let n = shape.iter().product::<usize>();
        Tensor::from_vec(shape, (0..n).map(|i| (((i * 37 + seed * 11) % 23) as f32 - 11.0) / 8.0).collect()).unwrap()
    }

    #[test]
    fn matches_naive_over_parameter_grid() {
        for (hw, k, s, d, pad, groups) in [
            ([5, 6], [3, 3], [1, 1], [1, 1], Padding::Valid, 1),
            ([5, 6], [3, 2], [2, 2], [1, 1], Padding::Same, 1),
            ([7, 7], [3, 3], [1, 2], [2, 1], Padding::Same, 2),
            ([6, 5], [2, 2], [3, 1], [1, 1], Padding::Explicit([(1, 0), (2, 1)]), 1),
            ([4, 4], [1, 1], [1, 1], [1, 1], Padding::Valid, 1),
            ([4, 4], [3, 3], [2, 2], [1, 1], Padding::Same, 4),
        ] {
            let (c, o) = (4, 4);
            let x = seq(&[2, hw[0], hw[1], c], 1);
            let kern = seq(&[k[0], k[1], c / groups, o], 2);
            let p = Conv2dParams { strides: s, dilation: d, padding: pad, groups };
            let got = conv2d(&x, &kern, &p).unwrap();
            let want = naive(&x, &kern, &p);
            assert!(got.all_close(&want, 1e-5, 1e-5), "{p:?}\n{got:?}\n{want:?}");
        }
    }

    #[test]
    fn several_scratch_chunks_agree_with_one_image_at_a_time() {
        // Two images' patches (2 * 48*48 rows x 3*3*32) exceed COLS_BUDGET, so each image is its own chunk.
        let p = Conv2dParams::default().with_padding(Padding::Same);
        let x = seq(&[3, 48, 48, 32], 1);
        let k = seq(&[3, 3, 32, 4], 2);
        let g = Geometry::new("t", x.shape(), k.shape(), &p).unwrap();
        assert_eq!(g.images_per_chunk(), 1);
        let y = conv2d(&x, &k, &p).unwrap();
        assert!(y.all_close(&naive(&x, &k, &p), 1e-4, 1e-4));
        let dy = seq(y.shape(), 3);
        let (dx, dw) = conv2d_backward(&x, &k, &p, &dy, true, true).unwrap();
        let (dx, dw) = (dx.unwrap(), dw.unwrap());
        let mut dw_sum = Tensor::zeros(k.shape()).unwrap();
        for i in 0..3 {
            let xi = x.slice_axis(0, i, i + 1).unwrap();
            let dyi = dy.slice_axis(0, i, i + 1).unwrap();
            let (dxi, dwi) = conv2d_backward(&xi, &k, &p, &dyi, true, true).unwrap();
            assert_eq!(dxi.unwrap(), dx.slice_axis(0, i, i + 1).unwrap());
            dw_sum = dw_sum.add(&dwi.unwrap()).unwrap();
        }
        assert!(dw.all_close(&dw_sum, 1e-4, 1e-3));
    }

    #[test]
    fn same_padding_puts_the_extra_element_at_the_end() {
        // 4 wide, kernel 2, stride 1: total pad 1, all of it on the right.
        let a = spatial("t", [4, 4], [2, 2], [1, 1], [1, 1], Padding::Same).unwrap();
        assert_eq!((a[1].out, a[1].pad_before), (4, 0));
        // 5 wide, kernel 4, stride 2: out 3, total pad 3 -> 1 before, 2 after.
        let a = spatial("t", [5, 5], [4, 4], [2, 2], [1, 1], Padding::Same).unwrap();
        assert_eq!((a[0].out, a[0].pad_before), (3, 1));
    }

    #[test]
    fn errors_name_shapes() {
        let x = seq(&[1, 2, 2, 3], 0);
        let e = conv2d(&x, &seq(&[3, 3, 3, 1], 0), &Conv2dParams::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv2d: window of effective size [3, 3] does not fit input of spatial size [2, 2] with padding [0, 0]; \
             use padding=\"same\" or a smaller kernel/dilation"
        );
        let e = conv2d(&x, &seq(&[1, 1, 2, 1], 0), &Conv2dParams::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv2d: input [1, 2, 2, 3] has 3 channels but kernel [1, 1, 2, 1] with groups=1 expects 2; the kernel's \
             input-channel axis times groups must equal the input's last axis"
        );
        let e = conv2d(&x, &seq(&[1, 1, 1, 2], 0), &Conv2dParams::default().with_groups(3)).unwrap_err();
        assert_eq!(e.to_string(), "conv2d: 2 output channels are not divisible by groups=3");
        let e = conv2d(&x, &seq(&[1, 1, 3, 2], 0), &Conv2dParams::default().with_strides([0, 1])).unwrap_err();
        assert_eq!(e.to_string(), "conv2d: strides must be at least 1 but is 0");
        let e = conv2d(&seq(&[2, 3], 0), &seq(&[1, 1, 3, 2], 0), &Conv2dParams::default()).unwrap_err();
        assert_eq!(e.to_string(), "conv2d: expected a tensor of rank 4 (NHWC) but got shape [2, 3]");
    }

    #[test]
    fn depthwise_matches_grouped_conv() {
        for (mult, s, d, pad) in [
            (1, [1, 1], [1, 1], Padding::Valid),
            (1, [2, 1], [1, 2], Padding::Same),
            (3, [1, 2], [2, 1], Padding::Same),
            (2, [2, 2], [1, 1], Padding::Explicit([(0, 1), (2, 0)])),
        ] {
            let x = seq(&[3, 6, 5, 4], 7);
            let k = seq(&[3, 2, 4, mult], 8);
            let got = depthwise_conv2d(&x, &k, s, d, pad).unwrap();
            let (k2, p) = depthwise_as_grouped(&x, &k, s, d, pad).unwrap();
            let want = naive(&x, &k2, &p);
            assert!(got.all_close(&want, 1e-5, 1e-5), "{mult} {s:?} {d:?} {pad:?}");
            let dy = seq(got.shape(), 9);
            let (dx, dw) = depthwise_conv2d_backward(&x, &k, s, d, pad, &dy, true, true).unwrap();
            let (gx, gw) = conv2d_backward(&x, &k2, &p, &dy, true, true).unwrap();
            assert!(dx.unwrap().all_close(&gx.unwrap(), 1e-5, 1e-5));
            assert!(dw.unwrap().all_close(&gw.unwrap().reshape(k.shape()).unwrap(), 1e-5, 1e-5));
        }
        let e = depthwise_conv2d(&seq(&[1, 4, 4, 3], 0), &seq(&[2, 2, 2, 1], 0), [1, 1], [1, 1], Padding::Valid);
        assert_eq!(
            e.unwrap_err().to_string(),
            "depthwise_conv2d: input [1, 4, 4, 3] has 3 channels but kernel [2, 2, 2, 1] with groups=1 expects 2; the \
             kernel's input-channel axis times groups must equal the input's last axis"
        );
    }

    #[test]
    fn conv1d_causal_and_depthwise() {
        let x = seq(&[2, 6, 2], 3);
        let k = seq(&[3, 2, 3], 4);
        let y = conv1d(&x, &k, 1, 2, Padding1d::Causal, 1).unwrap();
        assert_eq!(y.shape(), &[2, 6, 3]);
        // Causal: output t depends on inputs t, t-2, t-4 only; position 0 sees only x[0] * k[2].
        let first: f32 = (0..2).map(|c| x.get(&[0, 0, c]).unwrap() * k.get(&[2, c, 0]).unwrap()).sum();
        assert!((y.get(&[0, 0, 0]).unwrap() - first).abs() < 1e-6);

        let x = seq(&[1, 4, 4, 3], 5);
        let k = seq(&[2, 2, 3, 2], 6);
        let y = depthwise_conv2d(&x, &k, [1, 1], [1, 1], Padding::Valid).unwrap();
        assert_eq!(y.shape(), &[1, 3, 3, 6]);
        // Output channel c * 2 + m uses only input channel c.
        let mut want = 0f32;
        for ky in 0..2 {
            for kx in 0..2 {
                want += x.get(&[0, 1 + ky, 2 + kx, 1]).unwrap() * k.get(&[ky, kx, 1, 1]).unwrap();
            }
        }
        assert!((y.get(&[0, 1, 2, 3]).unwrap() - want).abs() < 1e-5);
    }

    #[test]
    fn conv_nd_matches_naive_in_1d_2d_3d() {
        for (sp, k, s, d, pad, groups) in [
            (vec![9], vec![3], vec![2], vec![1], PaddingNd::Same, 1),
            (vec![9], vec![2], vec![1], vec![3], PaddingNd::Explicit(vec![(3, 0)]), 2),
            (vec![5, 6], vec![3, 2], vec![2, 1], vec![1, 2], PaddingNd::Same, 2),
            (vec![5, 6, 4], vec![2, 2, 2], vec![1, 1, 1], vec![1, 1, 1], PaddingNd::Valid, 1),
            (vec![5, 6, 4], vec![3, 2, 2], vec![2, 1, 2], vec![1, 2, 1], PaddingNd::Same, 2),
            (vec![4, 3, 5], vec![1, 1, 1], vec![1, 1, 1], vec![1, 1, 1], PaddingNd::Valid, 1),
            (
                vec![6, 5, 4],
                vec![2, 3, 2],
                vec![3, 2, 1],
                vec![2, 1, 1],
                PaddingNd::Explicit(vec![(1, 0), (0, 2), (1, 1)]),
                1,
            ),
        ] {
            let (c, o) = (4, 6);
            let mut xs = vec![2];
            xs.extend(&sp);
            xs.push(c);
            let mut ks = k.clone();
            ks.extend([c / groups, o]);
            let x = seq(&xs, 1);
            let kern = seq(&ks, 2);
            let p = ConvParams { strides: s, dilation: d, padding: pad, groups };
            let got = conv_nd(&x, &kern, &p).unwrap();
            let want = naive_nd(&x, &kern, &p);
            assert_eq!(got.shape(), want.shape());
            assert!(got.all_close(&want, 1e-5, 1e-5), "{p:?}");
        }
    }

    /// Central finite difference of `sum(f(t) * w)` along every element of `t`.
    fn finite_diff(t: &Tensor, w: &Tensor, f: &dyn Fn(&Tensor) -> Tensor) -> Vec<f32> {
        let eps = 1e-2f32;
        (0..t.len())
            .map(|i| {
                let mut v = t.as_slice().to_vec();
                v[i] += eps;
                let up = f(&Tensor::from_vec(t.shape(), v.clone()).unwrap()).mul(w).unwrap().sum(None, false).unwrap();
                v[i] -= 2.0 * eps;
                let dn = f(&Tensor::from_vec(t.shape(), v).unwrap()).mul(w).unwrap().sum(None, false).unwrap();
                (up.as_slice()[0] - dn.as_slice()[0]) / (2.0 * eps)
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
    }

    #[test]
    fn conv3d_backward_matches_finite_differences() {
        let p = ConvParams::new(3).with_strides(&[2, 1, 1]).with_padding(PaddingNd::Same).with_groups(2);
        let x = seq(&[1, 3, 3, 2, 4], 3);
        let k = seq(&[2, 2, 1, 2, 2], 4);
        let y = conv_nd(&x, &k, &p).unwrap();
        let dy = seq(y.shape(), 5);
        let (dx, dw) = conv_nd_backward(&x, &k, &p, &dy, true, true).unwrap();
        let fx = finite_diff(&x, &dy, &|t| conv_nd(t, &k, &p).unwrap());
        let fw = finite_diff(&k, &dy, &|t| conv_nd(&x, t, &p).unwrap());
        assert!(close(dx.unwrap().as_slice(), &fx, 1e-2));
        assert!(close(dw.unwrap().as_slice(), &fw, 1e-2));
    }

    #[test]
    fn conv_transpose_matches_scatter_reference() {
        for (sp, k, s, d, same, op) in [
            (vec![6], vec![3], vec![1], vec![1], false, None),
            (vec![6], vec![3], vec![2], vec![1], true, None),
            (vec![6], vec![3], vec![2], vec![1], false, Some(vec![1])),
            (vec![6], vec![4], vec![3], vec![1], true, Some(vec![2])),
            (vec![6], vec![2], vec![2], vec![1], false, None),
            (vec![6], vec![3], vec![1], vec![2], true, None),
            (vec![5, 4], vec![3, 2], vec![2, 3], vec![1, 1], false, Some(vec![1, 2])),
            (vec![5, 4], vec![3, 3], vec![2, 2], vec![2, 1], true, None),
            (vec![3, 4, 3], vec![2, 3, 2], vec![2, 1, 2], vec![1, 1, 1], true, None),
            (vec![3, 4, 3], vec![2, 2, 2], vec![2, 2, 2], vec![1, 2, 1], false, Some(vec![1, 0, 1])),
        ] {
            let (cin, f) = (3, 4);
            let mut xs = vec![2];
            xs.extend(&sp);
            xs.push(cin);
            let mut ks = k.clone();
            ks.extend([f, cin]);
            let x = seq(&xs, 6);
            let kern = seq(&ks, 7);
            let pad = if same { PaddingNd::Same } else { PaddingNd::Valid };
            let p = ConvParams { strides: s.clone(), dilation: d.clone(), padding: pad, groups: 1 };
            let got = conv_transpose_nd(&x, &kern, &p, op.as_deref()).unwrap();
            let want = naive_transpose(&x, &kern, &p, op.as_deref());
            // Output length per Keras.
            for i in 0..sp.len() {
                let len = conv_transpose_output_len(sp[i], k[i], s[i], d[i], same, op.as_ref().map(|o| o[i])).unwrap();
                assert_eq!(got.shape()[i + 1], len);
            }
            assert!(got.all_close(&want, 1e-5, 1e-5), "{p:?} {op:?}");
        }
        // 1-D valid, kernel 3, stride 2, no output padding: (6 - 1) * 2 + 3 = 13.
        assert_eq!(conv_transpose_output_len(6, 3, 2, 1, false, None), Some(13));
        assert_eq!(conv_transpose_output_len(6, 2, 3, 1, false, None), Some(18));
        assert_eq!(conv_transpose_output_len(6, 4, 3, 1, true, Some(2)), Some(17));
    }

    #[test]
    fn conv_transpose_backward_matches_finite_differences() {
        let p = ConvParams::new(2).with_strides(&[2, 1]).with_padding(PaddingNd::Same).with_dilation(&[1, 2]);
        let x = seq(&[1, 3, 3, 2], 8);
        let k = seq(&[3, 2, 3, 2], 9);
        let y = conv_transpose_nd(&x, &k, &p, None).unwrap();
        let dy = seq(y.shape(), 10);
        let (dx, dw) = conv_transpose_nd_backward(&x, &k, &p, None, &dy, true, true).unwrap();
        let fx = finite_diff(&x, &dy, &|t| conv_transpose_nd(t, &k, &p, None).unwrap());
        let fw = finite_diff(&k, &dy, &|t| conv_transpose_nd(&x, t, &p, None).unwrap());
        assert!(close(dx.unwrap().as_slice(), &fx, 1e-2));
        assert!(close(dw.unwrap().as_slice(), &fw, 1e-2));
    }

    #[test]
    fn conv_transpose_rejects_inconsistent_output_padding() {
        let p = ConvParams::new(1).with_strides(&[2]);
        let e = conv_transpose_nd(&seq(&[1, 4, 2], 0), &seq(&[3, 1, 2], 0), &p, Some(&[2])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv_transpose: input [1, 4, 2] would give output [1, 11, 1], but convolving that output back gives \
             [1, 5, 2]; the output padding must be smaller than the stride (and at least 1 for an even kernel with \
             padding=\"same\")"
        );
        let e = conv_nd(&seq(&[1, 2, 2, 2, 1], 0), &seq(&[3, 1, 1, 1, 1], 0), &ConvParams::new(3)).unwrap_err();
        assert!(
            e.to_string().contains("window of effective size [3, 1, 1] does not fit input of spatial size [2, 2, 2]")
        );
    }

    #[test]
    fn patches_feed_a_conv() {
        // conv = patches · kernel reshaped to [k*c, o].
        let p = ConvParams::new(2).with_strides(&[2, 1]).with_padding(PaddingNd::Explicit(vec![(1, 0), (0, 1)]));
        let x = seq(&[2, 5, 4, 3], 11);
        let k = seq(&[2, 3, 3, 4], 12);
        let patches = extract_patches(&x, &[2, 3], &p).unwrap();
        assert_eq!(patches.shape(), &[2, 3, 3, 18]);
        let via = patches.reshape(&[18, 18]).unwrap().matmul(&k.reshape(&[18, 4]).unwrap()).unwrap();
        let want = conv_nd(&x, &k, &p).unwrap();
        assert!(via.reshape(want.shape()).unwrap().all_close(&want, 1e-5, 1e-5));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn random_geometry_matches_naive(
            n in 1usize..3, h in 1usize..8, w in 1usize..8, cg in 1usize..4, og in 1usize..4, groups in 1usize..4,
            kh in 1usize..4, kw in 1usize..4, sh in 1usize..4, sw in 1usize..4, dh in 1usize..3, dw in 1usize..3,
            pad in 0usize..3, seed in 0usize..100,
        ) {
            let padding = [Padding::Valid, Padding::Same, Padding::Explicit([(1, 2), (0, 1)])][pad];
            let p = Conv2dParams { strides: [sh, sw], dilation: [dh, dw], padding, groups };
            let x = seq(&[n, h, w, cg * groups], seed);
            let k = seq(&[kh, kw, cg, og * groups], seed + 1);
            match conv2d(&x, &k, &p) {
                Ok(got) => proptest::prop_assert!(got.all_close(&naive(&x, &k, &p), 1e-5, 1e-5)),
                Err(e) => proptest::prop_assert!(matches!(e, Error::WindowTooLarge { .. }), "{e}"),
            }
        }
    }
}
