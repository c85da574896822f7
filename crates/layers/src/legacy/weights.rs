//! Legacy weight layouts in the Keras 2 layout the families build, as Keras 2.2.4's
//! `preprocess_weights_for_loading` and `_convert_rnn_weights` converted them on load:
//! * Keras 1 convolution kernels: Theano ordering `(filters, in, rows, cols)` to
//!   `(rows, cols, in, filters)`, Keras 1 `Conv1D` `(k, 1, in, filters)` (1.1: `(filters, in, k, 1)`)
//!   to `(k, in, filters)`, `Deconvolution2D` to the transposed-conv layout `(rows, cols, filters, in)`;
//! * Keras 1 recurrent weights: LSTM's 12 per-gate arrays (`W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f,
//!   b_f, W_o, U_o, b_o`) to `kernel, recurrent_kernel, bias` in gate order i, f, c, o; GRU's 9
//!   (z, r, h) and ConvLSTM2D's 12 the same way;
//! * kernels written by Theano (a true convolution) flipped on every spatial axis
//!   ([`convert_kernel`]) so that a correlation computes the same;
//! * CuDNN LSTM/GRU weights (told apart by the bias shape) to the native layout.

use crate::cfg::Meta;
use crate::error::{Error, Result};
use strata_format::json::Json;
use strata_tensor::Tensor;

/// The largest element count a legacy weight transform allocates (a file cannot ask for more).
const MAX_ELEMENTS: usize = 1 << 31;

/// Converts a Keras 1 / Theano / CuDNN weight list for a layer whose config is already in Keras 2
/// form (`class`, `cfg`). `keras1`: the weights were written by Keras 1; `theano`: by the Theano
/// backend (convolution kernels get flipped).
pub fn convert(m: &Meta, class: &str, cfg: &Json, w: Vec<Tensor>, keras1: bool, theano: bool) -> Result<Vec<Tensor>> {
    if w.is_empty() {
        return Ok(w);
    }
    let inner = || {
        let v = cfg.get("layer")?;
        Some((v.get("class_name")?.as_str()?.to_string(), v.get("config").cloned().unwrap_or(Json::Null)))
    };
    match class {
        "TimeDistributed" => {
            return match inner() {
                Some((c, ic)) => convert(m, &c, &ic, w, keras1, theano),
                None => Ok(w),
            };
        }
        "Bidirectional" => {
            let Some((c, ic)) = inner() else { return Ok(w) };
            // `backward_layer` (Keras 2.3+/3) may be another class with its own config.
            let (bc, bic) = cfg
                .get("backward_layer")
                .and_then(|v| Some((v.get("class_name")?.as_str()?.to_string(), v.get("config").cloned()?)))
                .unwrap_or_else(|| (c.clone(), ic.clone()));
            // Recurrent layers hold kernel, recurrent kernel and (with use_bias) bias; a Keras 1
            // layer or an unknown class splits in half.
            let rnn_count = |class: &str, c: &Json| -> Option<usize> {
                matches!(class, "LSTM" | "GRU" | "SimpleRNN" | "CuDNNLSTM" | "CuDNNGRU")
                    .then(|| 2 + usize::from(c.get("use_bias").and_then(Json::as_bool).unwrap_or(true)))
            };
            let split = match (keras1, rnn_count(&c, &ic), rnn_count(&bc, &bic)) {
                (false, Some(f), Some(b)) if f + b == w.len() => f,
                // counts that cannot be right: leave them to the family, which names what it expects
                (false, Some(_), Some(_)) => return Ok(w),
                _ if w.len().is_multiple_of(2) => w.len() / 2,
                _ => return Ok(w),
            };
            let mut fw = w;
            let bw = fw.split_off(split);
            let mut out = convert(m, &c, &ic, fw, keras1, theano)?;
            out.extend(convert(m, &bc, &bic, bw, keras1, theano)?);
            return Ok(out);
        }
        _ => {}
    }
    let mut w = w;
    let channels_first = cfg.get("data_format").and_then(Json::as_str) == Some("channels_first");
    if keras1 {
        w = keras1_layout(m, class, cfg, w, channels_first)?;
    }
    if theano && matches!(class, "Conv1D" | "Conv2D" | "Conv3D" | "Conv2DTranspose" | "ConvLSTM2D") {
        let n = if class == "ConvLSTM2D" { 2 } else { 1 };
        for t in w.iter_mut().take(n) {
            *t = m.t(convert_kernel(t))?;
        }
    }
    if matches!(class, "LSTM" | "GRU") && w.len() == 3 {
        w = cudnn(m, class, cfg, w)?;
    }
    Ok(w)
}

fn int_at(cfg: &Json, key: &str) -> Option<usize> {
    let v = cfg.get(key)?;
    v.as_usize().or_else(|| v.at(0).and_then(Json::as_usize))
}

fn keras1_layout(m: &Meta, class: &str, cfg: &Json, w: Vec<Tensor>, cf: bool) -> Result<Vec<Tensor>> {
    let mut w = w;
    match class {
        "Conv1D" => {
            if let Some(k) = w.first_mut() {
                let s = k.shape().to_vec();
                if let [a, b, _, d] = s[..] {
                    let ks = int_at(cfg, "kernel_size");
                    let filters = int_at(cfg, "filters");
                    if Some(a) != ks || b != 1 || Some(d) != filters {
                        // Keras 1.1: (filters, input_dim, filter_length, 1)
                        *k = m.t(k.permute(&[2, 3, 1, 0]))?;
                    }
                    let s = k.shape().to_vec();
                    let [a, b, c, d] = s[..] else {
                        return Err(m.cfg_err("kernel_size", "has a kernel that is not 4-D"));
                    };
                    if b != 1 {
                        return Err(m.cfg_err(
                            "kernel_size",
                            format!(
                                "Keras 1 Conv1D kernel has shape {s:?}; expected (kernel_size, 1, input_dim, filters)"
                            ),
                        ));
                    }
                    *k = m.t(k.reshape(&[a, c, d]))?;
                }
            }
        }
        "Conv2D" if cf => permute_first(m, &mut w, &[2, 3, 1, 0])?,
        "Conv3D" if cf => permute_first(m, &mut w, &[2, 3, 4, 1, 0])?,
        "Conv2DTranspose" => permute_first(m, &mut w, if cf { &[2, 3, 0, 1] } else { &[0, 1, 3, 2] })?,
        "SeparableConv2D" if cf => {
            // depthwise (depth_multiplier, in, rows, cols), pointwise (filters, in * dm, 1, 1)
            for t in w.iter_mut().take(2) {
                if t.rank() == 4 {
                    *t = m.t(t.permute(&[2, 3, 1, 0]))?;
                }
            }
        }
        "LSTM" if w.len() == 12 => w = gates(m, w, &[0, 2, 1, 3])?,
        "GRU" if w.len() == 9 => w = gates(m, w, &[0, 1, 2])?,
        "ConvLSTM2D" if w.len() == 12 => {
            w = gates(m, w, &[0, 2, 1, 3])?;
            if cf {
                for t in w.iter_mut().take(2) {
                    *t = m.t(t.permute(&[2, 3, 1, 0]))?;
                }
            }
        }
        _ => {}
    }
    Ok(w)
}

fn permute_first(m: &Meta, w: &mut [Tensor], perm: &[usize]) -> Result<()> {
    if let Some(k) = w.first_mut()
        && k.rank() == perm.len()
    {
        *k = m.t(k.permute(perm))?;
    }
    Ok(())
}

/// Keras 1 per-gate triples `(W, U, b)` stored in `order` (index of each Keras 2 gate among the
/// stored triples) concatenated into `kernel, recurrent_kernel, bias` along the last axis.
/// LSTM stores i, c, f, o (Keras 2 wants i, f, c, o: `order = [0, 2, 1, 3]`); GRU stores z, r, h.
pub fn gates(m: &Meta, w: Vec<Tensor>, order: &[usize]) -> Result<Vec<Tensor>> {
    if w.len() != order.len() * 3 {
        return Err(Error::WeightCount { layer: m.name.clone(), expected: order.len() * 3, got: w.len() });
    }
    let mut out = Vec::with_capacity(3);
    for part in 0..3 {
        let pick: Vec<&Tensor> = order.iter().filter_map(|&g| w.get(g * 3 + part)).collect();
        out.push(m.t(strata_tensor::concat(&pick, -1))?);
    }
    Ok(out)
}

/// Flips a Keras 2 layout kernel (`(*spatial, in, out)`, rank 3 to 5) on every spatial axis, as
/// Keras 2's `conv_utils.convert_kernel`: a Theano (true convolution) kernel becomes a
/// TensorFlow (correlation) kernel and back.
pub fn convert_kernel(k: &Tensor) -> std::result::Result<Tensor, strata_tensor::Error> {
    let s = k.shape();
    if !(3..=5).contains(&s.len()) {
        return Err(strata_tensor::Error::Rank {
            op: "convert_kernel",
            expected: "3 to 5",
            layout: "(*spatial, in, out)",
            shape: s.to_vec(),
        });
    }
    let (spatial, inner) = s.split_at(s.len() - 2);
    let block: usize = inner.iter().product();
    let n_sp: usize = spatial.iter().product();
    let src = k.as_slice();
    let mut out = vec![0.0f32; src.len()];
    let mut idx = vec![0usize; spatial.len()];
    for lin in 0..n_sp {
        // coordinates of `lin`, and the linear index of the mirrored position
        let mut rem = lin;
        for (i, &d) in spatial.iter().enumerate().rev() {
            idx[i] = rem % d;
            rem /= d;
        }
        let mut dst = 0usize;
        for (i, &d) in spatial.iter().enumerate() {
            dst = dst * d + (d - 1 - idx[i]);
        }
        if let (Some(from), Some(to)) =
            (src.get(lin * block..(lin + 1) * block), out.get_mut(dst * block..(dst + 1) * block))
        {
            to.copy_from_slice(from);
        }
    }
    Tensor::from_vec(s, out)
}

/// Each of the `n` column blocks of a `(rows, n * u)` matrix through `f` (a `(rows, u)` block in,
/// a `(rows, u)` block out).
fn per_gate(m: &Meta, k: &Tensor, n: usize, f: impl Fn(&[f32], usize, usize) -> Vec<f32>) -> Result<Tensor> {
    let s = k.shape();
    let [rows, cols] = s[..] else {
        return Err(m.cfg_err("units", format!("recurrent kernel has shape {s:?}, expected 2-D")));
    };
    if n == 0 || !cols.is_multiple_of(n) {
        return Err(m.cfg_err("units", format!("kernel of shape {s:?} does not split into {n} gates")));
    }
    let u = cols / n;
    let src = k.as_slice();
    let mut out = vec![0.0f32; src.len()];
    for g in 0..n {
        let mut block = Vec::with_capacity(rows * u);
        for r in 0..rows {
            block.extend_from_slice(src.get(r * cols + g * u..r * cols + (g + 1) * u).unwrap_or(&[]));
        }
        let conv = f(&block, rows, u);
        for r in 0..rows {
            if let (Some(to), Some(from)) =
                (out.get_mut(r * cols + g * u..r * cols + (g + 1) * u), conv.get(r * u..(r + 1) * u))
            {
                to.copy_from_slice(from);
            }
        }
    }
    m.t(Tensor::from_vec(s, out))
}

/// CuDNN input kernel block -> Keras: the `(rows, u)` block's row-major values are CuDNN's
/// `(u, rows)` matrix; Keras wants its transpose (`kernel.T.reshape(shape, order='F')`).
fn from_cudnn_input(b: &[f32], rows: usize, u: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; b.len()];
    for a in 0..rows {
        for c in 0..u {
            if let (Some(o), Some(&v)) = (out.get_mut(a * u + c), b.get(c * rows + a)) {
                *o = v;
            }
        }
    }
    out
}

/// A square `(u, u)` block transposed.
fn transpose_block(b: &[f32], rows: usize, u: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; b.len()];
    for a in 0..rows {
        for c in 0..u {
            if let (Some(o), Some(&v)) = (out.get_mut(c * rows + a), b.get(a * u + c)) {
                *o = v;
            }
        }
    }
    out
}

/// CuDNN LSTM/GRU weights (told apart by the bias shape, as `_convert_rnn_weights`) in the native
/// layout; native weights pass through.
pub fn cudnn(m: &Meta, class: &str, cfg: &Json, w: Vec<Tensor>) -> Result<Vec<Tensor>> {
    let [k, rk, b] = &w[..] else { return Ok(w) };
    let Some(&units) = rk.shape().first() else { return Ok(w) };
    let n = if class == "LSTM" { 4 } else { 3 };
    let gates_u =
        units.checked_mul(n).filter(|&g| g < MAX_ELEMENTS).ok_or_else(|| m.cfg_err("units", "is too large"))?;
    let flat_cudnn = b.shape() == [2 * gates_u];
    // absent: the family picks the dialect's default, and the stored bias decides below
    let reset_after = cfg.get("reset_after").and_then(Json::as_bool);
    if class == "LSTM" {
        if b.shape() == [gates_u] {
            return Ok(w);
        }
        if !flat_cudnn {
            return Err(m.cfg_err(
                "units",
                format!("LSTM bias has shape {:?}; expected ({gates_u},) or CuDNN's ({},)", b.shape(), 2 * gates_u),
            ));
        }
        let kernel = per_gate(m, k, n, from_cudnn_input)?;
        let rec = per_gate(m, rk, n, transpose_block)?;
        let halves = b.as_slice().split_at(gates_u);
        let bias: Vec<f32> = halves.0.iter().zip(halves.1).map(|(x, y)| x + y).collect();
        return Ok(vec![kernel, rec, m.t(Tensor::from_vec(&[gates_u], bias))?]);
    }
    // GRU
    let source_reset_after = match b.shape() {
        s if s == [gates_u] => false,
        s if s == [2, gates_u] => true,
        _ if flat_cudnn => {
            if reset_after == Some(false) {
                return Err(m.cfg_err(
                    "reset_after",
                    "is false, but the weights are CuDNNGRU's, which only GRU(reset_after=True) can run",
                ));
            }
            let kernel = per_gate(m, k, n, from_cudnn_input)?;
            let rec = per_gate(m, rk, n, transpose_block)?;
            let bias = m.t(b.reshape(&[2, gates_u]))?;
            return Ok(vec![kernel, rec, bias]);
        }
        s => {
            return Err(m.cfg_err(
                "units",
                format!(
                    "GRU bias has shape {s:?}; expected ({gates_u},), (2, {gates_u}) or CuDNN's ({},)",
                    2 * gates_u
                ),
            ));
        }
    };
    if let Some(reset_after) = reset_after
        && source_reset_after != reset_after
    {
        return Err(m.cfg_err(
            "reset_after",
            format!(
                "is {reset_after}, but the stored bias of shape {:?} belongs to a GRU with reset_after={source_reset_after}; the two compute different things",
                b.shape()
            ),
        ));
    }
    Ok(w)
}
