//! Recurrent cells (SimpleRNN, LSTM, GRU, ConvLSTM) with their weights in Keras order, and the
//! CuDNN weight layouts converted to the plain layers'.

use crate::activation::{self, Activation};
use crate::cfg::{Meta, bool_of, get, ints_of, padding_of, pair_of};
use crate::error::{Error, Result};
use crate::layers::BuildCtx;
use strata_format::json::Json;
use strata_tensor::{Conv2dParams, Padding, Padding1d, Tensor};

/// The gate equations of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CellKind {
    /// `h = act(x W + h U + b)`
    Simple,
    /// Gates `i, f, c, o`.
    Lstm,
    /// Gates `z, r, h`; `reset_after` applies the reset gate after the recurrent matmul.
    Gru { reset_after: bool },
}

/// How inputs and states are projected onto the gates: a matmul, or a convolution (ConvLSTM).
#[derive(Debug, Clone)]
enum Proj {
    Dense,
    Conv1d {
        stride: usize,
        dilation: usize,
        padding: Padding1d,
    },
    Conv2d(Conv2dParams),
    /// ConvLSTM3D: strides and dilation per `[d, h, w]`, `same` padding or not.
    Conv3d {
        strides: [usize; 3],
        dilation: [usize; 3],
        same: bool,
    },
}

/// One recurrent cell with its weights.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    kind: CellKind,
    /// State size (units or filters).
    pub units: usize,
    kernel: Tensor,
    rec: Tensor,
    /// GRU without `reset_after`: the candidate's recurrent kernel, split off `rec` (which then
    /// holds the `z, r` columns only).
    rec_h: Option<Tensor>,
    bias: Option<Tensor>,
    rec_bias: Option<Tensor>,
    act: Activation,
    ract: Activation,
    proj: Proj,
}

fn gates(kind: CellKind) -> usize {
    match kind {
        CellKind::Simple => 1,
        CellKind::Lstm => 4,
        CellKind::Gru { .. } => 3,
    }
}

/// The default `recurrent_activation`: `hard_sigmoid` before tf.keras 2 (Keras 1/2 multi-backend,
/// tf.keras 1.x), `sigmoid` since.
fn ract_default(ctx: &BuildCtx<'_>) -> &'static str {
    if super::tf2_recurrent_defaults(ctx) { "sigmoid" } else { "hard_sigmoid" }
}

/// The CuDNN input-kernel layout to Keras's, per gate (`kernel.T.reshape(kernel.shape, order="F")`
/// in tf-keras `_convert_rnn_weights`): `out[i, j] = k.flat[i + j * rows]`.
pub(crate) fn cudnn_input_kernel(k: &Tensor, n_gates: usize) -> std::result::Result<Tensor, strata_tensor::Error> {
    let (rows, cols) = match k.shape() {
        [r, c] => (*r, *c),
        s => {
            return Err(strata_tensor::Error::Rank {
                op: "cudnn_kernel",
                expected: "2",
                layout: "[input, gates * units]",
                shape: s.to_vec(),
            });
        }
    };
    let u = cols / n_gates.max(1);
    let mut parts = Vec::with_capacity(n_gates);
    for g in 0..n_gates {
        let flat = k.slice_axis(1, g * u, (g + 1) * u)?.into_vec();
        let mut out = vec![0f32; rows * u];
        for i in 0..rows {
            for j in 0..u {
                if let (Some(o), Some(&v)) = (out.get_mut(i * u + j), flat.get(i + j * rows)) {
                    *o = v;
                }
            }
        }
        parts.push(Tensor::from_vec(&[rows, u], out)?);
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    strata_tensor::concat(&refs, 1)
}

/// The CuDNN recurrent-kernel layout to Keras's: each gate's square block transposed.
pub(crate) fn cudnn_recurrent_kernel(k: &Tensor, n_gates: usize) -> std::result::Result<Tensor, strata_tensor::Error> {
    let cols = k.shape().get(1).copied().unwrap_or(0);
    let u = cols / n_gates.max(1);
    let parts = (0..n_gates)
        .map(|g| k.slice_axis(1, g * u, (g + 1) * u)?.transpose())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let refs: Vec<&Tensor> = parts.iter().collect();
    strata_tensor::concat(&refs, 1)
}

impl Cell {
    /// Builds a cell of a layer class (`SimpleRNN`, `LSTM`, `GRU`, `CuDNNLSTM`, `CuDNNGRU`,
    /// `ConvLSTM1D`, `ConvLSTM2D`) from its config and weights (kernel, recurrent kernel, [bias]).
    pub(crate) fn build(m: &Meta, class: &str, cfg: &Json, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Cell> {
        let cudnn = class.starts_with("CuDNN");
        let use_bias = cudnn || bool_of(m, cfg, "use_bias", true)?;
        let expected = if use_bias { 3 } else { 2 };
        if w.len() != expected {
            return Err(Error::WeightCount { layer: m.name.clone(), expected, got: w.len() });
        }
        let mut it = w.into_iter();
        let (Some(mut kernel), Some(mut rec)) = (it.next(), it.next()) else {
            return Err(Error::WeightCount { layer: m.name.clone(), expected, got: 0 });
        };
        let mut bias = it.next();
        let (act, ract) = if cudnn {
            (Activation::Tanh, Activation::Sigmoid)
        } else {
            let act = match get(cfg, "activation") {
                None => activation::parse(&m.name, Some(&Json::String("tanh".into())), ctx.dialect)?,
                v => activation::parse(&m.name, v, ctx.dialect)?,
            };
            let ract = match get(cfg, "recurrent_activation") {
                None => activation::parse(&m.name, Some(&Json::String(ract_default(ctx).into())), ctx.dialect)?,
                v => activation::parse(&m.name, v, ctx.dialect)?,
            };
            (act, ract)
        };
        let conv = class.starts_with("ConvLSTM");
        let kind = match class {
            "SimpleRNN" => CellKind::Simple,
            "LSTM" | "LSTMV1" | "CuDNNLSTM" | "ConvLSTM1D" | "ConvLSTM2D" | "ConvLSTM3D" => CellKind::Lstm,
            "GRU" | "GRUV1" => {
                let inferred = bias.as_ref().map(|b| b.rank() == 2);
                let reset_after = match get(cfg, "reset_after") {
                    Some(v) => v.as_bool().ok_or_else(|| m.cfg_err("reset_after", "is not a boolean"))?,
                    // tf.keras's `GRUV1` (the TF 1 GRU) defaults to false.
                    None => inferred.unwrap_or_else(|| class == "GRU" && super::gru_reset_after_default(ctx)),
                };
                CellKind::Gru { reset_after }
            }
            "CuDNNGRU" => CellKind::Gru { reset_after: true },
            other => return Err(m.cfg_err("cell", format!("has class `{other}`, which is not a recurrent cell"))),
        };
        let g = gates(kind);
        let units = *rec.shape().get(rec.rank().saturating_sub(2)).unwrap_or(&0);
        let gu = units.checked_mul(g).ok_or_else(|| m.cfg_err("units", "is too large"))?;
        if let Some(u) = get(cfg, if conv { "filters" } else { "units" }).and_then(Json::as_u64)
            && u as usize != units
        {
            return Err(m.cfg_err(
                if conv { "filters" } else { "units" },
                format!("is {u} but the recurrent kernel has shape {:?}", rec.shape()),
            ));
        }
        let key_shape_err = |what: &str, t: &Tensor, want: String| {
            m.cfg_err("units", format!("does not match the {what} weight: shape {:?}, expected {want}", t.shape()))
        };
        if kernel.shape().last() != Some(&gu) || (!conv && kernel.rank() != 2) {
            return Err(key_shape_err("kernel", &kernel, format!("[input_dim, {gu}]")));
        }
        if rec.shape().last() != Some(&gu) || (!conv && rec.rank() != 2) {
            return Err(key_shape_err("recurrent kernel", &rec, format!("[{units}, {gu}]")));
        }
        if cudnn {
            kernel = m.t(cudnn_input_kernel(&kernel, g))?;
            rec = m.t(cudnn_recurrent_kernel(&rec, g))?;
        }
        let mut rec_bias = None;
        if let Some(b) = bias.take() {
            let n = b.len();
            match kind {
                CellKind::Gru { reset_after: true } => {
                    if n != 2 * gu {
                        return Err(key_shape_err("bias", &b, format!("[2, {gu}]")));
                    }
                    bias = Some(m.t(m.t(b.reshape(&[2 * gu]))?.slice_axis(0, 0, gu))?);
                    rec_bias = Some(m.t(m.t(b.reshape(&[2 * gu]))?.slice_axis(0, gu, 2 * gu))?);
                }
                CellKind::Lstm if cudnn => {
                    if n != 2 * gu {
                        return Err(key_shape_err("bias", &b, format!("[{}]", 2 * gu)));
                    }
                    bias = Some(m.t(m.t(b.slice_axis(0, 0, gu))?.add(&m.t(b.slice_axis(0, gu, 2 * gu))?))?);
                }
                _ => {
                    if b.shape() != [gu] {
                        return Err(key_shape_err("bias", &b, format!("[{gu}]")));
                    }
                    bias = Some(b);
                }
            }
        }
        let mut rec_h = None;
        if kind == (CellKind::Gru { reset_after: false }) {
            rec_h = Some(m.t(rec.slice_axis(-1, 2 * units, gu))?);
            rec = m.t(rec.slice_axis(-1, 0, 2 * units))?;
        }
        let proj = match class {
            "ConvLSTM3D" => {
                crate::cfg::channels_last(m, cfg)?;
                let same = padding_of(m, cfg)? == Padding::Same;
                Proj::Conv3d { strides: triple(m, cfg, "strides")?, dilation: triple(m, cfg, "dilation_rate")?, same }
            }
            "ConvLSTM1D" | "ConvLSTM2D" => {
                crate::cfg::channels_last(m, cfg)?;
                let padding = padding_of(m, cfg)?;
                if class == "ConvLSTM1D" {
                    let one = |key: &str| -> Result<usize> {
                        match ints_of(m, cfg, key)?.as_deref() {
                            None => Ok(1),
                            Some([v]) => usize::try_from(*v)
                                .ok()
                                .filter(|&v| v > 0)
                                .ok_or_else(|| m.cfg_err(key, "must be a positive integer")),
                            Some(_) => Err(m.cfg_err(key, "must be one positive integer")),
                        }
                    };
                    let padding = if padding == Padding::Same { Padding1d::Same } else { Padding1d::Valid };
                    Proj::Conv1d { stride: one("strides")?, dilation: one("dilation_rate")?, padding }
                } else {
                    Proj::Conv2d(
                        Conv2dParams::default()
                            .with_strides(pair_of(m, cfg, "strides", [1, 1])?)
                            .with_dilation(pair_of(m, cfg, "dilation_rate", [1, 1])?)
                            .with_padding(padding),
                    )
                }
            }
            _ => Proj::Dense,
        };
        Ok(Cell { kind, units, kernel, rec, rec_h, bias, rec_bias, act, ract, proj })
    }

    /// The number of state tensors (LSTM: `h, c`).
    pub(crate) fn n_states(&self) -> usize {
        if self.kind == CellKind::Lstm { 2 } else { 1 }
    }

    fn apply(&self, m: &Meta, x: &Tensor, k: &Tensor, recurrent: bool) -> Result<Tensor> {
        match &self.proj {
            Proj::Dense => m.t(x.matmul(k)),
            Proj::Conv1d { stride, dilation, padding } => {
                if recurrent {
                    m.t(strata_tensor::conv1d(x, k, 1, 1, Padding1d::Same, 1))
                } else {
                    m.t(strata_tensor::conv1d(x, k, *stride, *dilation, *padding, 1))
                }
            }
            Proj::Conv3d { strides, dilation, same } => {
                if recurrent {
                    m.t(conv3d(x, k, [1; 3], [1; 3], true))
                } else {
                    m.t(conv3d(x, k, *strides, *dilation, *same))
                }
            }
            Proj::Conv2d(p) => {
                if recurrent {
                    m.t(strata_tensor::conv2d(x, k, &Conv2dParams::default().with_padding(Padding::Same)))
                } else {
                    m.t(strata_tensor::conv2d(x, k, p))
                }
            }
        }
    }

    /// The input's projection onto all gates, bias included: `x W + b` (or the convolution).
    pub(crate) fn input_proj(&self, m: &Meta, x: &Tensor) -> Result<Tensor> {
        let y = self.apply(m, x, &self.kernel, false)?;
        match &self.bias {
            Some(b) => m.t(y.add(b)),
            None => Ok(y),
        }
    }

    fn gate(&self, m: &Meta, t: &Tensor, k: usize) -> Result<Tensor> {
        m.t(t.slice_axis(-1, k * self.units, (k + 1) * self.units))
    }

    /// One time step from the input projection `xp` and the states; returns the output and new states.
    pub(crate) fn step(&self, m: &Meta, xp: &Tensor, states: &[Tensor]) -> Result<(Tensor, Vec<Tensor>)> {
        let h = states.first().ok_or_else(|| m.cfg_err("units", "has no state"))?;
        let a = |t: &Tensor| m.t(self.act.apply(t));
        let ra = |t: &Tensor| m.t(self.ract.apply(t));
        match self.kind {
            CellKind::Simple => {
                let z = m.t(xp.add(&self.apply(m, h, &self.rec, true)?))?;
                let h = a(&z)?;
                Ok((h.clone(), vec![h]))
            }
            CellKind::Lstm => {
                let c = states.get(1).ok_or_else(|| m.cfg_err("units", "has no cell state"))?;
                let z = m.t(xp.add(&self.apply(m, h, &self.rec, true)?))?;
                let i = ra(&self.gate(m, &z, 0)?)?;
                let f = ra(&self.gate(m, &z, 1)?)?;
                let g = a(&self.gate(m, &z, 2)?)?;
                let o = ra(&self.gate(m, &z, 3)?)?;
                let c = m.t(m.t(f.mul(c))?.add(&m.t(i.mul(&g))?))?;
                let h = m.t(o.mul(&a(&c)?))?;
                Ok((h.clone(), vec![h, c]))
            }
            CellKind::Gru { reset_after } => {
                let mut inner = self.apply(m, h, &self.rec, true)?;
                if let Some(rb) = &self.rec_bias {
                    inner = m.t(inner.add(rb))?;
                }
                let z = ra(&m.t(self.gate(m, xp, 0)?.add(&self.gate(m, &inner, 0)?))?)?;
                let r = ra(&m.t(self.gate(m, xp, 1)?.add(&self.gate(m, &inner, 1)?))?)?;
                let rh = if reset_after {
                    m.t(r.mul(&self.gate(m, &inner, 2)?))?
                } else {
                    let k = self.rec_h.as_ref().ok_or_else(|| m.cfg_err("reset_after", "lost its kernel"))?;
                    self.apply(m, &m.t(r.mul(h))?, k, true)?
                };
                let hh = a(&m.t(self.gate(m, xp, 2)?.add(&rh))?)?;
                // h = z * h_prev + (1 - z) * hh
                let one_minus = m.t(z.neg().add(&Tensor::scalar(1.0)))?;
                let new = m.t(m.t(z.mul(h))?.add(&m.t(one_minus.mul(&hh))?))?;
                Ok((new.clone(), vec![new]))
            }
        }
    }
}

/// One to three positive integers as `[d, h, w]` (default 1).
fn triple(m: &Meta, cfg: &Json, key: &str) -> Result<[usize; 3]> {
    let pos = |i: &isize| usize::try_from(*i).ok().filter(|&u| u > 0);
    match ints_of(m, cfg, key)?.as_deref() {
        None => Some([1; 3]),
        Some([a]) => pos(a).map(|a| [a; 3]),
        Some([a, b, c]) => pos(a).zip(pos(b)).zip(pos(c)).map(|((a, b), c)| [a, b, c]),
        Some(_) => None,
    }
    .ok_or_else(|| m.cfg_err(key, "must be one or three positive integers"))
}

/// 3-D convolution (NDHWC input, DHWIO kernel) as a sum of 2-D convolutions over the kernel's
/// depth taps; `same` pads like TensorFlow (the smaller half in front).
fn conv3d(
    x: &Tensor,
    k: &Tensor,
    strides: [usize; 3],
    dilation: [usize; 3],
    same: bool,
) -> std::result::Result<Tensor, strata_tensor::Error> {
    let (&[n, d, h, w, c], &[kd, kh, kw, kc, o]) = (x.shape(), k.shape()) else {
        let (shape, layout) = if x.rank() != 5 { (x.shape(), "NDHWC") } else { (k.shape(), "DHWIO kernel") };
        return Err(strata_tensor::Error::Rank { op: "conv3d", expected: "5", layout, shape: shape.to_vec() });
    };
    let [sd, sh, sw] = strides;
    let [dd, dh, dw] = dilation;
    let span = kd.saturating_sub(1).saturating_mul(dd).saturating_add(1);
    let (od, front) = if same {
        let od = d.div_ceil(sd.max(1));
        let total = (od.saturating_sub(1) * sd + span).saturating_sub(d);
        (od, total / 2)
    } else {
        (if d >= span { (d - span) / sd.max(1) + 1 } else { 0 }, 0)
    };
    let p2 = Conv2dParams::default().with_strides([sh, sw]).with_dilation([dh, dw]).with_padding(if same {
        Padding::Same
    } else {
        Padding::Valid
    });
    let taps = (0..kd)
        .map(|i| k.slice_axis(0, i, i + 1)?.reshape(&[kh, kw, kc, o]))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let zero_slice = Tensor::zeros(&[n, h, w, c])?;
    let mut planes = Vec::with_capacity(od);
    for z in 0..od {
        let mut acc: Option<Tensor> = None;
        for (i, tap) in taps.iter().enumerate() {
            let pos = (z * sd + i * dd).checked_sub(front).filter(|&p| p < d);
            let Some(p) = pos else { continue };
            let xs = x.slice_axis(1, p, p + 1)?.reshape(&[n, h, w, c])?;
            let y = strata_tensor::conv2d(&xs, tap, &p2)?;
            acc = Some(match acc {
                Some(a) => a.add(&y)?,
                None => y,
            });
        }
        let plane = match acc {
            Some(a) => a,
            None => strata_tensor::conv2d(&zero_slice, taps.first().unwrap_or(k), &p2)?,
        };
        planes.push(plane);
    }
    let refs: Vec<&Tensor> = planes.iter().collect();
    strata_tensor::stack(&refs, 1)
}
