//! Convolution layers: Conv1D/2D/3D, their Transpose forms, DepthwiseConv1D/2D, SeparableConv1D/2D,
//! LocallyConnected1D/2D.
//!
//! Every layer runs channels-last on the strata-tensor N-d kernels (im2col + gemm; transposed
//! convolutions by gemm + col2im; depthwise by a direct channel-vectorized kernel). A layer with
//! `data_format="channels_first"` permutes its input to channels-last and its output back.
//! Kernels are Keras's: `[k..., in / groups, filters]` for convolutions, `[k..., filters, in]` for
//! transposed ones, `[k..., in, depth_multiplier]` for depthwise ones. Locally connected kernels
//! (tf-keras `implementation` 1, 2 or 3, each with its own layout) are converted on first use to
//! one `[positions, window * in, filters]` layout and applied to sliding-window patches.

use crate::activation::{self, Activation};
use crate::cfg::{Meta, bool_of, get, int_of, ints_of, weights_n};
use crate::error::{Error, Result};
use crate::layers::{BuildCtx, Layer};
use std::sync::OnceLock;
use strata_format::config::LayerConfig;
use strata_format::json::Json;
use strata_tensor::{ConvParams, DType, Padding, PaddingNd, Tensor};

/// Classes this family builds.
pub const SUPPORTED: &[&str] = &[
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Convolution1D",
    "Convolution2D",
    "Convolution3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "Convolution1DTranspose",
    "Convolution2DTranspose",
    "Convolution3DTranspose",
    "Deconvolution2D",
    "Deconvolution3D",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "SeparableConvolution1D",
    "SeparableConvolution2D",
    "LocallyConnected1D",
    "LocallyConnected2D",
];

/// The largest locally connected kernel strata converts (elements), to refuse absurd configs.
const MAX_LOCAL_KERNEL: usize = 1 << 26;

/// Padding modes of the conv family's configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pad {
    Valid,
    Same,
    /// `dilation * (kernel - 1)` zeros on the left (1-D only).
    Causal,
}

/// What a conv-family layer computes.
#[derive(Debug)]
enum Op {
    /// Conv1D/2D/3D.
    Conv { kernel: Tensor, params: ConvParams },
    /// Conv*Transpose.
    Transpose { kernel: Tensor, params: ConvParams, output_padding: Option<Vec<usize>> },
    /// DepthwiseConv1D/2D (1-D runs as a height-1 image); `pointwise` makes it separable.
    Depthwise {
        /// `[kh, kw, c, multiplier]`.
        kernel: Tensor,
        strides: [usize; 2],
        dilation: [usize; 2],
        padding: Padding,
        /// SeparableConv: the `[1.., c * multiplier, filters]` kernel applied after.
        pointwise: Option<Tensor>,
    },
    /// LocallyConnected1D/2D.
    Local(Box<Local>),
}

/// A locally connected layer's kernel as stored, converted on first use.
#[derive(Debug)]
struct Local {
    implementation: isize,
    raw: Tensor,
    window: Vec<usize>,
    strides: Vec<usize>,
    same: bool,
    filters: usize,
    /// Input spatial shape and channels (channels-last order) -> `[positions, window * c, filters]`.
    converted: OnceLock<(Vec<usize>, Tensor)>,
}

/// A conv-family layer.
#[derive(Debug)]
pub struct ConvLayer {
    meta: Meta,
    /// Spatial rank (1, 2 or 3).
    rank: usize,
    channels_first: bool,
    op: Op,
    bias: Option<Tensor>,
    activation: Activation,
    compute: Option<DType>,
}

/// The spatial rank of a class.
fn rank_of(class: &str) -> usize {
    if class.contains("1D") {
        1
    } else if class.contains("3D") {
        3
    } else {
        2
    }
}

/// One positive (or, with `allow_zero`, non-negative) integer per spatial axis, from an int or a
/// list of 1 or `rank` ints.
fn tuple_of(m: &Meta, cfg: &Json, key: &str, rank: usize, default: usize, allow_zero: bool) -> Result<Vec<usize>> {
    let Some(v) = ints_of(m, cfg, key)? else { return Ok(vec![default; rank]) };
    let min = usize::from(!allow_zero);
    let bound = if allow_zero { "non-negative" } else { "positive" };
    let conv = |i: &isize| usize::try_from(*i).ok().filter(|&u| u >= min && u <= (1 << 24));
    let vals: Option<Vec<usize>> = v.iter().map(conv).collect();
    match vals {
        Some(vals) if vals.len() == rank => Ok(vals),
        Some(vals) if vals.len() == 1 => Ok(vec![vals[0]; rank]),
        _ => Err(m.cfg_err(key, format!("must be one or {rank} {bound} integers (at most 2^24), got {v:?}"))),
    }
}

fn pad_of(m: &Meta, cfg: &Json, causal_ok: bool, class: &str) -> Result<Pad> {
    match get(cfg, "padding").and_then(Json::as_str).map(str::to_ascii_lowercase).as_deref() {
        None | Some("valid") => Ok(Pad::Valid),
        Some("same") => Ok(Pad::Same),
        Some("causal") if causal_ok => Ok(Pad::Causal),
        Some(other) => Err(m.cfg_err(
            "padding",
            format!("is `{other}`; {class} supports `valid`, `same`{}", if causal_ok { " and `causal`" } else { "" }),
        )),
    }
}

/// Whether the config asks for channels-first.
fn channels_first(m: &Meta, cfg: &Json) -> Result<bool> {
    match get(cfg, "data_format").and_then(Json::as_str) {
        None | Some("channels_last") => Ok(false),
        Some("channels_first") => Ok(true),
        Some(other) => {
            Err(m.cfg_err("data_format", format!("is `{other}`, expected `channels_last` or `channels_first`")))
        }
    }
}

/// Padding for the tensor ops: causal pads `dilation * (k - 1)` on the left of the one axis.
fn nd_padding(pad: Pad, kernel: &[usize], dilation: &[usize]) -> PaddingNd {
    match pad {
        Pad::Valid => PaddingNd::Valid,
        Pad::Same => PaddingNd::Same,
        Pad::Causal => PaddingNd::Explicit(
            kernel.iter().zip(dilation).map(|(&k, &d)| (d.saturating_mul(k.saturating_sub(1)), 0)).collect(),
        ),
    }
}

/// Checks a kernel's rank and its spatial axes against `kernel_size` (when given).
fn check_kernel(m: &Meta, cfg: &Json, w: &Tensor, what: &str, rank: usize) -> Result<()> {
    if w.rank() != rank + 2 {
        return Err(m.cfg_err(
            "kernel_size",
            format!("does not fit the {what} weight of shape {:?}: expected rank {}", w.shape(), rank + 2),
        ));
    }
    if get(cfg, "kernel_size").is_some() {
        let ks = tuple_of(m, cfg, "kernel_size", rank, 1, false)?;
        if w.shape().get(..rank) != Some(ks.as_slice()) {
            return Err(m.cfg_err(
                "kernel_size",
                format!("is {ks:?} but the {what} weight has shape {:?}; the file is inconsistent", w.shape()),
            ));
        }
    }
    Ok(())
}

/// Checks the bias is a vector of `n` values (or, for locally connected layers, ends in `n`).
fn check_bias(m: &Meta, b: &Option<Tensor>, n: usize, vector: bool) -> Result<()> {
    if let Some(b) = b {
        let ok = if vector { b.shape() == [n] } else { b.shape().last() == Some(&n) };
        if !ok {
            return Err(m.cfg_err("use_bias", format!("bias has shape {:?} but the layer has {n} filters", b.shape())));
        }
    }
    Ok(())
}

/// Builds a layer of this family; `Ok(None)` for classes it does not know.
pub fn build(layer: &LayerConfig, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Option<Box<dyn Layer>>> {
    let class = layer.class_name.as_str();
    if !SUPPORTED.contains(&class) {
        return Ok(None);
    }
    let m = Meta::of(layer);
    let cfg = &layer.config;
    let rank = rank_of(class);
    let cf = channels_first(&m, cfg)?;
    let activation = activation::parse(&m.name, get(cfg, "activation"), ctx.dialect)?;
    let use_bias = bool_of(&m, cfg, "use_bias", true)?;
    let strides = tuple_of(&m, cfg, "strides", rank, 1, false)?;
    let dilation = tuple_of(&m, cfg, "dilation_rate", rank, 1, false)?;
    let transpose = class.contains("Transpose") || class.starts_with("Deconvolution");
    let local = class.starts_with("LocallyConnected");
    let causal_ok = rank == 1 && !transpose && !local;
    let pad = pad_of(&m, cfg, causal_ok, class)?;
    let nw = |base: usize| base + usize::from(use_bias);
    let filters = || -> Result<Option<usize>> {
        match get(cfg, "filters") {
            None => Ok(None),
            Some(_) => usize::try_from(int_of(&m, cfg, "filters", 0)?)
                .ok()
                .filter(|&f| f > 0)
                .map(Some)
                .ok_or_else(|| m.cfg_err("filters", "must be a positive integer")),
        }
    };
    let check_filters = |n: usize| -> Result<()> {
        match filters()? {
            Some(f) if f != n => Err(m.cfg_err("filters", format!("is {f} but the kernel has {n} output channels"))),
            _ => Ok(()),
        }
    };
    let (op, bias) = if class.starts_with("Depthwise") || class.starts_with("Separable") {
        let separable = class.starts_with("Separable");
        weights_n(&m, &w, nw(if separable { 2 } else { 1 }))?;
        let mut it = w.into_iter();
        let dk = it.next().ok_or_else(|| m.cfg_err("kernel_size", "has no depthwise kernel"))?;
        check_kernel(&m, cfg, &dk, "depthwise kernel", rank)?;
        if let Some(dm) = get(cfg, "depth_multiplier") {
            let want = dm.as_i64().and_then(|v| usize::try_from(v).ok());
            if want != dk.shape().last().copied() {
                return Err(m.cfg_err(
                    "depth_multiplier",
                    format!("is {dm:?} but the depthwise kernel has shape {:?}", dk.shape()),
                ));
            }
        }
        let cm = dk.shape().iter().rev().take(2).product::<usize>();
        let pointwise = if separable {
            let pk = it.next().ok_or_else(|| m.cfg_err("filters", "has no pointwise kernel"))?;
            let ones = pk.shape().get(..rank).is_some_and(|s| s.iter().all(|&d| d == 1));
            if pk.rank() != rank + 2 || !ones || pk.shape().get(rank) != Some(&cm) {
                return Err(m.cfg_err(
                    "filters",
                    format!(
                        "pointwise kernel has shape {:?}; expected [1.., {cm}, filters] after depthwise kernel {:?}",
                        pk.shape(),
                        dk.shape()
                    ),
                ));
            }
            check_filters(pk.shape().last().copied().unwrap_or(0))?;
            Some(pk)
        } else {
            None
        };
        let bias = it.next();
        let out_c = pointwise.as_ref().and_then(|p| p.shape().last().copied()).unwrap_or(cm);
        check_bias(&m, &bias, out_c, true)?;
        let (kernel, strides2, dilation2, padding) = if rank == 1 {
            let (k, c, mult) = (dk.shape()[0], dk.shape()[1], dk.shape()[2]);
            let padding = match pad {
                Pad::Valid => Padding::Valid,
                Pad::Same => Padding::Same,
                Pad::Causal => Padding::Explicit([(0, 0), (dilation[0].saturating_mul(k.saturating_sub(1)), 0)]),
            };
            (m.t(dk.reshape(&[1, k, c, mult]))?, [1, strides[0]], [1, dilation[0]], padding)
        } else {
            let padding = if pad == Pad::Same { Padding::Same } else { Padding::Valid };
            (dk, [strides[0], strides[1]], [dilation[0], dilation[1]], padding)
        };
        (Op::Depthwise { kernel, strides: strides2, dilation: dilation2, padding, pointwise }, bias)
    } else if local {
        let implementation = int_of(&m, cfg, "implementation", 1)?;
        if !(1..=3).contains(&implementation) {
            return Err(m.cfg_err("implementation", format!("is {implementation}; expected 1, 2 or 3")));
        }
        if implementation == 1 && pad != Pad::Valid {
            return Err(m.cfg_err("padding", "must be `valid` with implementation=1 (as in Keras)"));
        }
        if dilation.iter().any(|&d| d != 1) {
            return Err(m.cfg_err("dilation_rate", "is not supported by locally connected layers"));
        }
        weights_n(&m, &w, nw(1))?;
        let mut it = w.into_iter();
        let raw = it.next().ok_or_else(|| m.cfg_err("kernel_size", "has no kernel"))?;
        let window = tuple_of(&m, cfg, "kernel_size", rank, 0, false).and_then(|k| {
            if get(cfg, "kernel_size").is_some() { Ok(k) } else { Err(m.cfg_err("kernel_size", "is missing")) }
        })?;
        let f = filters()?.ok_or_else(|| m.cfg_err("filters", "is missing"))?;
        let mut bias = it.next();
        check_bias(&m, &bias, f, false)?;
        if let (true, Some(b)) = (cf, &bias) {
            // tf-keras `bias_add` with channels_first *reshapes* the `(out..., filters)` bias to
            // `(filters, out...)` (no transpose); in channels-last terms that is this permutation.
            let mut s = vec![f];
            s.extend(b.shape().get(..b.rank().saturating_sub(1)).unwrap_or(&[]));
            let mut perm: Vec<usize> = (1..s.len()).collect();
            perm.push(0);
            bias = Some(m.t(m.t(b.reshape(&s))?.permute(&perm))?);
        }
        let local = Local {
            implementation,
            raw,
            window,
            strides,
            same: pad == Pad::Same,
            filters: f,
            converted: OnceLock::new(),
        };
        (Op::Local(Box::new(local)), bias)
    } else {
        weights_n(&m, &w, nw(1))?;
        let mut it = w.into_iter();
        let kernel = it.next().ok_or_else(|| m.cfg_err("filters", "has no kernel"))?;
        check_kernel(&m, cfg, &kernel, "kernel", rank)?;
        let bias = it.next();
        let padding = nd_padding(pad, kernel.shape().get(..rank).unwrap_or(&[]), &dilation);
        if transpose {
            let out_c = kernel.shape().get(rank).copied().unwrap_or(0);
            check_filters(out_c)?;
            check_bias(&m, &bias, out_c, true)?;
            let output_padding = match get(cfg, "output_padding") {
                None => None,
                Some(_) => {
                    let op = tuple_of(&m, cfg, "output_padding", rank, 0, true)?;
                    if let Some(i) = (0..rank).find(|&i| op[i] >= strides[i]) {
                        return Err(m.cfg_err(
                            "output_padding",
                            format!("is {op:?}; each entry must be smaller than the stride ({:?}), axis {i}", strides),
                        ));
                    }
                    Some(op)
                }
            };
            let params = ConvParams { strides, dilation, padding, groups: 1 };
            (Op::Transpose { kernel, params, output_padding }, bias)
        } else {
            let groups = usize::try_from(int_of(&m, cfg, "groups", 1)?)
                .ok()
                .filter(|&g| g > 0)
                .ok_or_else(|| m.cfg_err("groups", "must be a positive integer"))?;
            let out_c = kernel.shape().last().copied().unwrap_or(0);
            check_filters(out_c)?;
            check_bias(&m, &bias, out_c, true)?;
            (Op::Conv { kernel, params: ConvParams { strides, dilation, padding, groups } }, bias)
        }
    };
    let compute = crate::cfg::compute_dtype(&m, cfg.get("dtype"))?;
    Ok(Some(Box::new(ConvLayer { meta: m, rank, channels_first: cf, op, bias, activation, compute })))
}

/// Output sizes and `(before, after)` padding per spatial axis.
type LocalAxes = (Vec<usize>, Vec<(usize, usize)>);

impl Local {
    /// Output spatial size and leading padding per axis (tf-keras rule: `same` pads `k // 2` first).
    fn axes(&self, input: &[usize]) -> Option<LocalAxes> {
        let mut outs = Vec::new();
        let mut pads = Vec::new();
        for ((&n, &k), &s) in input.iter().zip(&self.window).zip(&self.strides) {
            if self.same {
                let out = n.div_ceil(s);
                let before = k / 2;
                let after = ((out.checked_sub(1)? * s) + k).saturating_sub(n + before);
                outs.push(out);
                pads.push((before, after));
            } else {
                outs.push(n.checked_sub(k)? / s + 1);
                pads.push((0, 0));
            }
        }
        Some((outs, pads))
    }

    /// The kernel as `[positions, window * c, filters]` for a channels-last input of spatial shape
    /// `input` and `c` channels; `cf` says the stored layout is the channels-first one.
    fn convert(&self, m: &Meta, input: &[usize], c: usize, cf: bool) -> Result<Tensor> {
        let (outs, pads) = self
            .axes(input)
            .ok_or_else(|| m.cfg_err("kernel_size", format!("{:?} does not fit input {input:?}", self.window)))?;
        let r = input.len();
        let f = self.filters;
        let numel = |s: &[usize]| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let (p, kw) = (numel(&outs), numel(&self.window));
        let size = p.zip(kw).and_then(|(p, kw)| p.checked_mul(kw)?.checked_mul(c)?.checked_mul(f).map(|t| (p, kw, t)));
        let (p, kw, total) = size
            .filter(|t| t.2 <= MAX_LOCAL_KERNEL)
            .ok_or_else(|| m.cfg_err("kernel_size", format!("gives a kernel too large for input {input:?}")))?;
        let shape_err = |expected: String| {
            m.cfg_err(
                "implementation",
                format!(
                    "{}: kernel has shape {:?} but input {input:?} x {c} channels needs {expected}",
                    self.implementation,
                    self.raw.shape()
                ),
            )
        };
        let raw = self.raw.as_slice();
        if self.implementation == 1 {
            let want = [p, kw * c, f];
            if self.raw.shape() != want {
                return Err(shape_err(format!("{want:?}")));
            }
            if !cf {
                return Ok(self.raw.clone());
            }
            // channels-first patches are ordered (c, window...): move c last.
            let mut s = vec![p, c];
            s.extend(&self.window);
            s.push(f);
            let mut perm = vec![0];
            perm.extend(2..r + 2);
            perm.extend([1, r + 2]);
            let t = m.t(m.t(self.raw.reshape(&s))?.permute(&perm))?;
            return m.t(t.reshape(&want));
        }
        // Implementations 2 and 3: visit every (position, tap, in channel, filter) whose tap lies
        // inside the input, with the flat input and output offsets in the stored layout.
        let in_spatial = numel(input).unwrap_or(0);
        let mut out = vec![0f32; total];
        let visit = |g: &mut dyn FnMut(usize, usize, usize)| {
            let mut pos = vec![0usize; r];
            for pi in 0..p {
                let mut rem = pi;
                for a in (0..r).rev() {
                    pos[a] = rem % outs[a];
                    rem /= outs[a];
                }
                for t in 0..kw {
                    let mut rem = t;
                    let mut flat_in = 0usize;
                    let mut inside = true;
                    let mut tap = vec![0usize; r];
                    for a in (0..r).rev() {
                        tap[a] = rem % self.window[a];
                        rem /= self.window[a];
                    }
                    for a in 0..r {
                        match (pos[a] * self.strides[a] + tap[a]).checked_sub(pads[a].0).filter(|&i| i < input[a]) {
                            Some(i) => flat_in = flat_in * input[a] + i,
                            None => inside = false,
                        }
                    }
                    if inside {
                        // dst offset of (pi, t, ci=0, f=0) in [p, kw, c, f].
                        g(pi, t, flat_in);
                    }
                }
            }
        };
        if self.implementation == 2 {
            let mut want = if cf { vec![c] } else { vec![] };
            want.extend(input);
            if cf {
                want.push(f);
                want.extend(&outs);
            } else {
                want.push(c);
                want.extend(&outs);
                want.push(f);
            }
            if self.raw.shape() != want.as_slice() {
                return Err(shape_err(format!("{want:?}")));
            }
            visit(&mut |pi, t, flat_in| {
                for ci in 0..c {
                    for fi in 0..f {
                        let src = if cf {
                            ((ci * in_spatial + flat_in) * f + fi) * p + pi
                        } else {
                            ((flat_in * c + ci) * p + pi) * f + fi
                        };
                        out[((pi * kw + t) * c + ci) * f + fi] = raw[src];
                    }
                }
            });
        } else {
            // Implementation 3: values of the sparse [p * f, in * c] matrix at its sorted indices.
            let mut entries: Vec<(usize, usize, usize)> = Vec::new();
            visit(&mut |pi, t, flat_in| {
                for ci in 0..c {
                    for fi in 0..f {
                        let (oi, ii) =
                            if cf { (fi * p + pi, ci * in_spatial + flat_in) } else { (pi * f + fi, flat_in * c + ci) };
                        entries.push((oi, ii, ((pi * kw + t) * c + ci) * f + fi));
                    }
                }
            });
            if self.raw.shape() != [entries.len()] {
                return Err(shape_err(format!("[{}]", entries.len())));
            }
            entries.sort_unstable();
            for (&(_, _, dst), &v) in entries.iter().zip(raw) {
                out[dst] = v;
            }
        }
        m.t(Tensor::from_vec(&[p, kw * c, f], out))
    }

    /// Runs on a channels-last input.
    fn forward(&self, m: &Meta, x: &Tensor, cf: bool) -> Result<Tensor> {
        let r = self.window.len();
        let s = x.shape();
        if s.len() != r + 2 {
            return Err(m.cfg_err("kernel_size", format!("needs a rank-{} input, got shape {s:?}", r + 2)));
        }
        let (n, input, c) = (s[0], &s[1..=r], s[r + 1]);
        let mut key = input.to_vec();
        key.push(c);
        let (seen, kernel) = match self.converted.get() {
            Some(v) => v,
            None => {
                let k = self.convert(m, input, c, cf)?;
                self.converted.get_or_init(|| (key.clone(), k))
            }
        };
        if *seen != key {
            return Err(m.cfg_err(
                "kernel_size",
                format!("the layer was first run on spatial shape x channels {seen:?}, now {key:?}; it needs a fixed input shape"),
            ));
        }
        let (outs, pads) = self.axes(input).ok_or_else(|| m.cfg_err("kernel_size", "does not fit the input"))?;
        let params = ConvParams::new(r).with_strides(&self.strides).with_padding(PaddingNd::Explicit(pads));
        let patches = m.t(strata_tensor::extract_patches(x, &self.window, &params))?;
        let (p, kc) = (kernel.shape()[0], kernel.shape()[1]);
        let cols = m.t(m.t(patches.reshape(&[n, p, kc]))?.permute(&[1, 0, 2]))?;
        let y = m.t(m.t(cols.matmul(kernel))?.permute(&[1, 0, 2]))?;
        let mut shape = vec![n];
        shape.extend(&outs);
        shape.push(self.filters);
        m.t(y.reshape(&shape))
    }
}

impl ConvLayer {
    fn rnd(&self, t: Tensor) -> Result<Tensor> {
        crate::cfg::round_to(&self.meta, t, self.compute)
    }

    /// The layer on a channels-last input, before bias and activation.
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let m = &self.meta;
        match &self.op {
            Op::Conv { kernel, params } => m.t(strata_tensor::conv_nd(x, kernel, params)),
            Op::Transpose { kernel, params, output_padding } => {
                m.t(strata_tensor::conv_transpose_nd(x, kernel, params, output_padding.as_deref()))
            }
            Op::Depthwise { kernel, strides, dilation, padding, pointwise } => {
                let y = if self.rank == 1 {
                    let s = x.shape();
                    let &[n, l, c] = s else {
                        return Err(m.cfg_err("kernel_size", format!("needs a rank-3 input, got shape {s:?}")));
                    };
                    let y = m.t(strata_tensor::depthwise_conv2d(
                        &m.t(x.reshape(&[n, 1, l, c]))?,
                        kernel,
                        *strides,
                        *dilation,
                        *padding,
                    ))?;
                    let ys = y.shape().to_vec();
                    m.t(y.reshape(&[n, ys[2], ys[3]]))?
                } else {
                    m.t(strata_tensor::depthwise_conv2d(x, kernel, *strides, *dilation, *padding))?
                };
                match pointwise {
                    Some(pk) => m.t(strata_tensor::conv_nd(&y, pk, &ConvParams::new(self.rank))),
                    None => Ok(y),
                }
            }
            Op::Local(l) => l.forward(m, x, self.channels_first),
        }
    }
}

impl Layer for ConvLayer {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let m = &self.meta;
        let x = self.rnd(m.one(inputs)?.clone())?;
        let r = self.rank;
        if x.rank() != r + 2 {
            return Err(Error::Config {
                layer: m.name.clone(),
                key: "kernel_size".into(),
                problem: format!(
                    "{} needs a rank-{} input (batch, {r} spatial axes, channels), got shape {:?}",
                    m.class,
                    r + 2,
                    x.shape()
                ),
            });
        }
        let x = if self.channels_first {
            let mut perm = vec![0];
            perm.extend(2..r + 2);
            perm.push(1);
            m.t(x.permute(&perm))?
        } else {
            x
        };
        let mut y = self.apply(&x)?;
        let vector_bias = self.bias.as_ref().is_none_or(|b| b.rank() == 1);
        let mut y = if self.compute.is_none() && vector_bias {
            // float32 with a per-channel bias: bias + activation fused in place on the channels-last
            // result (falls back to the recorded ops when a tape tracks the tensors).
            m.t(self.activation.apply_with_bias(y, self.bias.as_ref()))?
        } else {
            if let Some(b) = &self.bias {
                y = m.t(y.add(b))?;
            }
            m.t(self.activation.apply(&y))?
        };
        if self.channels_first {
            let mut perm = vec![0, r + 1];
            perm.extend(1..r + 1);
            y = m.t(y.permute(&perm))?;
        }
        Ok(vec![self.rnd(y)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_format::config::ConfigDialect;
    use strata_format::json::JsonLimits;

    fn cfg(class: &str, config: &str) -> LayerConfig {
        let text = format!(r#"{{"class_name": "{class}", "config": {config}}}"#);
        let json = Json::parse(text, &JsonLimits::default()).unwrap();
        crate::cfg::inner_layer_json(&Meta { name: "t".into(), class: "t".into() }, &json, "layer").unwrap()
    }

    fn seq(shape: &[usize], seed: usize) -> Tensor {
        let n = shape.iter().product::<usize>();
        Tensor::from_vec(shape, (0..n).map(|i| (((i * 37 + seed * 11) % 23) as f32 - 11.0) / 8.0).collect()).unwrap()
    }

    fn err(class: &str, config: &str, w: Vec<Tensor>) -> Error {
        match make(class, config, w) {
            Ok(_) => panic!("{class} {config} built"),
            Err(e) => e,
        }
    }

    fn make(class: &str, config: &str, w: Vec<Tensor>) -> Result<Box<dyn Layer>> {
        build(&cfg(class, config), w, &BuildCtx::new(ConfigDialect::Keras3)).map(|l| l.unwrap())
    }

    #[test]
    fn channels_first_equals_permuted_channels_last() {
        for (class, xs, ks, extra) in [
            ("Conv1D", vec![2, 9, 3], vec![3, 3, 4], r#""strides": 2, "padding": "same""#),
            ("Conv2D", vec![2, 7, 6, 3], vec![3, 3, 3, 4], r#""strides": [2, 1], "padding": "same""#),
            ("Conv2D", vec![2, 7, 6, 3], vec![3, 3, 3, 4], r#""dilation_rate": 2"#),
            ("Conv3D", vec![2, 5, 4, 4, 2], vec![2, 2, 2, 2, 4], r#""padding": "same""#),
            ("Conv2DTranspose", vec![2, 4, 5, 3], vec![3, 3, 4, 3], r#""strides": 2, "padding": "same""#),
            ("DepthwiseConv2D", vec![2, 6, 5, 3], vec![3, 3, 3, 2], r#""strides": 2"#),
        ] {
            let r = xs.len() - 2;
            let x = seq(&xs, 1);
            let k = seq(&ks, 2);
            let b = seq(&[if class.starts_with("Depthwise") { 6 } else { 4 }], 3);
            let last = make(class, &format!("{{\"name\": \"a\", {extra}}}"), vec![k.clone(), b.clone()]).unwrap();
            let first =
                make(class, &format!("{{\"name\": \"b\", \"data_format\": \"channels_first\", {extra}}}"), vec![k, b])
                    .unwrap();
            let mut to_cf = vec![0, r + 1];
            to_cf.extend(1..r + 1);
            let y_last = last.forward(std::slice::from_ref(&x), false).unwrap().remove(0);
            let y_first = first.forward(&[x.permute(&to_cf).unwrap()], false).unwrap().remove(0);
            assert!(y_first.all_close(&y_last.permute(&to_cf).unwrap(), 1e-6, 1e-6), "{class} {extra}");
        }
    }

    #[test]
    fn keras2_aliases_build_like_their_keras3_classes() {
        for (alias, class, xs, ws) in [
            ("Convolution1D", "Conv1D", vec![2, 6, 3], vec![vec![3, 3, 4], vec![4]]),
            ("Convolution3D", "Conv3D", vec![1, 3, 3, 3, 2], vec![vec![2, 2, 2, 2, 4], vec![4]]),
            ("Deconvolution2D", "Conv2DTranspose", vec![2, 3, 3, 3], vec![vec![2, 2, 4, 3], vec![4]]),
            (
                "SeparableConvolution2D",
                "SeparableConv2D",
                vec![2, 4, 4, 3],
                vec![vec![2, 2, 3, 1], vec![1, 1, 3, 5], vec![5]],
            ),
        ] {
            let w: Vec<Tensor> = ws.iter().enumerate().map(|(i, s)| seq(s, i)).collect();
            let a = make(alias, r#"{"name": "a", "strides": 2, "padding": "same"}"#, w.clone()).unwrap();
            let b = make(class, r#"{"name": "b", "strides": 2, "padding": "same"}"#, w).unwrap();
            let x = seq(&xs, 9);
            let (ya, yb) = (a.forward(std::slice::from_ref(&x), false).unwrap(), b.forward(&[x], false).unwrap());
            assert_eq!(ya, yb, "{alias}");
            assert!(crate::layers::is_supported(alias));
        }
    }

    #[test]
    fn conv2d_with_identity_kernel_returns_its_input() {
        let mut k = vec![0.0f32; 4];
        k[0] = 1.0;
        k[3] = 1.0;
        let kernel = Tensor::from_vec(&[1, 1, 2, 2], k).unwrap();
        let l =
            make("Conv2D", r#"{"name": "c", "filters": 2, "kernel_size": [1, 1], "use_bias": false}"#, vec![kernel])
                .unwrap();
        let x = seq(&[1, 3, 3, 2], 4);
        assert_eq!(l.forward(std::slice::from_ref(&x), false).unwrap()[0], x);
    }

    #[test]
    fn errors_name_the_key() {
        let k = seq(&[3, 3, 4], 0);
        let e = err("Conv1D", r#"{"name": "c", "padding": "full"}"#, vec![k.clone(), seq(&[4], 0)]);
        assert_eq!(
            e.to_string(),
            "layer `c`: config key `padding` is `full`; Conv1D supports `valid`, `same` and `causal`; fix the model config"
        );
        let e = err("Conv1D", r#"{"name": "c", "kernel_size": [2]}"#, vec![k.clone(), seq(&[4], 0)]);
        assert!(e.to_string().contains("`kernel_size` is [2] but the kernel weight has shape [3, 3, 4]"), "{e}");
        let e = err("Conv1D", r#"{"name": "c"}"#, vec![k.clone()]);
        assert!(matches!(e, Error::WeightCount { expected: 2, got: 1, .. }));
        let e = err(
            "Conv1DTranspose",
            r#"{"name": "c", "strides": 2, "output_padding": 2}"#,
            vec![k.clone(), seq(&[3], 0)],
        );
        assert!(e.to_string().contains("each entry must be smaller than the stride"), "{e}");
        let e = err("Conv2D", r#"{"name": "c", "data_format": "channels_middle"}"#, vec![]);
        assert!(e.to_string().contains("`data_format` is `channels_middle`"), "{e}");
        let l = make("Conv1D", r#"{"name": "c"}"#, vec![k, seq(&[4], 0)]).unwrap();
        let e = l.forward(&[seq(&[2, 5, 3, 1], 0)], false).unwrap_err();
        assert!(e.to_string().contains("Conv1D needs a rank-3 input"), "{e}");
    }

    #[test]
    fn locally_connected_refuses_a_kernel_that_does_not_fit() {
        let l = make(
            "LocallyConnected1D",
            r#"{"name": "lc", "filters": 2, "kernel_size": [3], "implementation": 1}"#,
            vec![seq(&[4, 9, 2], 0), seq(&[4, 2], 0)],
        )
        .unwrap();
        // Input of length 6 gives 4 positions of 3 taps x 3 channels = 9: fits.
        assert_eq!(l.forward(&[seq(&[1, 6, 3], 1)], false).unwrap()[0].shape(), &[1, 4, 2]);
        // Now a different length: refused.
        let e = l.forward(&[seq(&[1, 7, 3], 1)], false).unwrap_err();
        assert!(e.to_string().contains("needs a fixed input shape"), "{e}");
        let l = make(
            "LocallyConnected1D",
            r#"{"name": "lc", "filters": 2, "kernel_size": [3], "implementation": 1}"#,
            vec![seq(&[4, 9, 2], 0), seq(&[4, 2], 0)],
        )
        .unwrap();
        let e = l.forward(&[seq(&[1, 6, 4], 1)], false).unwrap_err();
        assert!(
            e.to_string().contains("kernel has shape [4, 9, 2] but input [6] x 4 channels needs [4, 12, 2]"),
            "{e}"
        );
    }
}
