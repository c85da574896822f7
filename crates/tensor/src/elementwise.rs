//! Elementwise operations: numpy-broadcasting binary ops and unary maps.
//!
//! Broadcasting follows numpy (and so `keras.ops`): shapes align from the
//! right, a dimension of 1 stretches. Large tensors are processed in parallel
//! with rayon; results do not depend on the thread count (each element is
//! computed independently).

use rayon::prelude::*;

use crate::shape::{broadcast_shapes, broadcast_strides};
use crate::tape::{Op, record, record1};
use crate::{Result, Tensor};

/// Element count above which elementwise kernels run in parallel.
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;

/// A broadcasting binary operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `max(a, b)` (NaN-propagating like `keras.ops.maximum`)
    Max,
    /// `min(a, b)`
    Min,
    /// `a ^ b`
    Pow,
    /// `1` where `a > b`, else `0` (no gradient)
    Greater,
    /// `1` where `a >= b`, else `0` (no gradient)
    GreaterEqual,
    /// `1` where `a < b`, else `0` (no gradient)
    Less,
    /// `1` where `a <= b`, else `0` (no gradient)
    LessEqual,
    /// `1` where `a == b`, else `0` (no gradient)
    Equal,
    /// `1` where `a != b`, else `0` (no gradient)
    NotEqual,
}

impl BinaryOp {
    /// Lower-case name used in errors.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "maximum",
            BinaryOp::Min => "minimum",
            BinaryOp::Pow => "pow",
            BinaryOp::Greater => "greater",
            BinaryOp::GreaterEqual => "greater_equal",
            BinaryOp::Less => "less",
            BinaryOp::LessEqual => "less_equal",
            BinaryOp::Equal => "equal",
            BinaryOp::NotEqual => "not_equal",
        }
    }

    /// Applies the operation to one pair.
    #[inline]
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Max => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.max(b)
                }
            }
            BinaryOp::Min => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.min(b)
                }
            }
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Greater => (a > b) as u8 as f32,
            BinaryOp::GreaterEqual => (a >= b) as u8 as f32,
            BinaryOp::Less => (a < b) as u8 as f32,
            BinaryOp::LessEqual => (a <= b) as u8 as f32,
            BinaryOp::Equal => (a == b) as u8 as f32,
            BinaryOp::NotEqual => (a != b) as u8 as f32,
        }
    }

    /// Whether the op is a comparison (1.0 / 0.0 result, no gradient).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Greater
                | BinaryOp::GreaterEqual
                | BinaryOp::Less
                | BinaryOp::LessEqual
                | BinaryOp::Equal
                | BinaryOp::NotEqual
        )
    }

    /// Partial derivatives `(d/da, d/db)` at `(a, b)` with output `y`, following TensorFlow's gradients
    /// (maximum: ties go to `a`; pow: the `b` gradient is 0 where `a <= 0`).
    #[inline]
    pub fn partials(self, a: f32, b: f32, y: f32) -> (f32, f32) {
        match self {
            BinaryOp::Add => (1.0, 1.0),
            BinaryOp::Sub => (1.0, -1.0),
            BinaryOp::Mul => (b, a),
            BinaryOp::Div => (1.0 / b, -y / b),
            BinaryOp::Max => {
                if a >= b {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            }
            BinaryOp::Min => {
                if a <= b {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            }
            BinaryOp::Pow => {
                let da = if b == 0.0 { 0.0 } else { b * a.powf(b - 1.0) };
                let db = if a > 0.0 { y * a.ln() } else { 0.0 };
                (da, db)
            }
            BinaryOp::Greater
            | BinaryOp::GreaterEqual
            | BinaryOp::Less
            | BinaryOp::LessEqual
            | BinaryOp::Equal
            | BinaryOp::NotEqual => (0.0, 0.0),
        }
    }
}

/// An elementwise unary operation.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `e^x`
    Exp,
    /// natural log
    Log,
    /// square root
    Sqrt,
    /// `1 / sqrt(x)`
    Rsqrt,
    /// hyperbolic tangent
    Tanh,
    /// logistic sigmoid `1 / (1 + e^-x)`
    Sigmoid,
    /// `max(x, 0)`
    Relu,
    /// `|x|`
    Abs,
    /// `x^2`
    Square,
    /// `1 / x`
    Recip,
    /// sine
    Sin,
    /// cosine
    Cos,
    /// `log(1 + e^x)`, computed stably
    Softplus,
    /// `log(1 + x)`
    Log1p,
    /// `e^x - 1`
    Expm1,
    /// `x` if `x > 0`, else `alpha * x`
    LeakyRelu(f32),
    /// `x` if `x > 0`, else `alpha * (e^x - 1)`
    Elu(f32),
    /// `x * s`
    Scale(f32),
    /// `x + c`
    Shift(f32),
    /// `x ^ p`
    Powf(f32),
    /// `min(max(x, lo), hi)`
    Clip(f32, f32),
}

impl UnaryOp {
    /// Applies the operation to one value.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => 1.0 / x.sqrt(),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sigmoid => sigmoid(x),
            UnaryOp::Relu => {
                if x > 0.0 || x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
            UnaryOp::Abs => x.abs(),
            UnaryOp::Square => x * x,
            UnaryOp::Recip => 1.0 / x,
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            UnaryOp::Softplus => {
                // log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
                x.max(0.0) + (-x.abs()).exp().ln_1p()
            }
            UnaryOp::Log1p => x.ln_1p(),
            UnaryOp::Expm1 => x.exp_m1(),
            UnaryOp::LeakyRelu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * x
                }
            }
            UnaryOp::Elu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * x.exp_m1()
                }
            }
            UnaryOp::Scale(s) => x * s,
            UnaryOp::Shift(c) => x + c,
            UnaryOp::Powf(p) => x.powf(p),
            UnaryOp::Clip(lo, hi) => x.max(lo).min(hi),
        }
    }

    /// Derivative `dy/dx` at input `x` with output `y`.
    #[inline]
    pub fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            UnaryOp::Neg => -1.0,
            UnaryOp::Exp => y,
            UnaryOp::Log => 1.0 / x,
            UnaryOp::Sqrt => 0.5 / y,
            UnaryOp::Rsqrt => -0.5 * y * y * y,
            UnaryOp::Tanh => 1.0 - y * y,
            UnaryOp::Sigmoid => y * (1.0 - y),
            UnaryOp::Relu => (x > 0.0) as u8 as f32,
            UnaryOp::Abs => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            UnaryOp::Square => 2.0 * x,
            UnaryOp::Recip => -y * y,
            UnaryOp::Sin => x.cos(),
            UnaryOp::Cos => -x.sin(),
            UnaryOp::Softplus => sigmoid(x),
            UnaryOp::Log1p => 1.0 / (1.0 + x),
            UnaryOp::Expm1 => y + 1.0,
            UnaryOp::LeakyRelu(a) => {
                if x > 0.0 {
                    1.0
                } else {
                    a
                }
            }
            UnaryOp::Elu(a) => {
                if x > 0.0 {
                    1.0
                } else {
                    y + a
                }
            }
            UnaryOp::Scale(s) => s,
            UnaryOp::Shift(_) => 1.0,
            UnaryOp::Powf(p) => {
                if p == 0.0 {
                    0.0
                } else {
                    p * x.powf(p - 1.0)
                }
            }
            UnaryOp::Clip(lo, hi) => (x >= lo && x <= hi) as u8 as f32,
        }
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Calls `f(row_index, row)` for each `row_len`-sized row of `out`, in parallel (several rows per
/// task) when `out` is large. `row_len` 0 is a no-op.
pub(crate) fn for_each_row(out: &mut [f32], row_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if row_len == 0 || out.is_empty() {
        return;
    }
    if out.len() >= PAR_THRESHOLD {
        let per_task = (PAR_THRESHOLD / 4 / row_len).max(1);
        out.par_chunks_mut(row_len * per_task).enumerate().for_each(|(c, chunk)| {
            for (j, row) in chunk.chunks_mut(row_len).enumerate() {
                f(c * per_task + j, row);
            }
        });
    } else {
        out.chunks_mut(row_len).enumerate().for_each(|(r, row)| f(r, row));
    }
}

/// Maps `f` over a slice, in parallel for large inputs.
pub(crate) fn map_slice(src: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    if src.len() >= PAR_THRESHOLD {
        src.par_iter().map(|&x| f(x)).collect()
    } else {
        src.iter().map(|&x| f(x)).collect()
    }
}

/// Visits every output element of a broadcast of two shapes, giving `(out_index, a_index, b_index)`
/// for each, row by row; `visit_row(row, a_start, b_start, a_step, b_step, out_row)` fills one
/// output row of the last axis.
fn broadcast_rows<F>(out_shape: &[usize], sa: &[usize], sb: &[usize], out: &mut [f32], visit_row: F)
where
    F: Fn(usize, usize, usize, usize, usize, &mut [f32]) + Sync,
{
    let rank = out_shape.len();
    if out.is_empty() {
        return;
    }
    if rank == 0 {
        visit_row(0, 0, 0, 0, 0, out);
        return;
    }
    let last = out_shape[rank - 1];
    let (sa_last, sb_last) = (sa[rank - 1], sb[rank - 1]);
    let row = |r: usize, dst: &mut [f32]| {
        let (mut ia, mut ib, mut rem) = (0usize, 0usize, r);
        for k in (0..rank - 1).rev() {
            let i = rem % out_shape[k];
            rem /= out_shape[k];
            ia += i * sa[k];
            ib += i * sb[k];
        }
        visit_row(r, ia, ib, sa_last, sb_last, dst);
    };
    if out.len() >= PAR_THRESHOLD {
        let rows_per_task = (PAR_THRESHOLD / last.max(1)).max(1);
        out.par_chunks_mut(last * rows_per_task).enumerate().for_each(|(c, chunk)| {
            for (j, dst) in chunk.chunks_mut(last).enumerate() {
                row(c * rows_per_task + j, dst);
            }
        });
    } else {
        out.chunks_mut(last).enumerate().for_each(|(r, dst)| row(r, dst));
    }
}

/// When `small` (leading 1s dropped) equals the trailing axes of `out`, its element count: the period
/// with which it repeats through `out`. `None` otherwise (or when it is empty).
fn suffix_period(small: &[usize], out: &[usize]) -> Option<usize> {
    let lead = small.iter().take_while(|&&d| d == 1).count();
    let core = small.get(lead..)?;
    let tail = out.get(out.len().checked_sub(core.len())?..)?;
    let p: usize = core.iter().product();
    (core == tail && p > 0).then_some(p)
}

/// `out[i] = f(big[i], small[i % period])`, in chunks of the period (parallel when large).
fn tiled(big: &[f32], small: &[f32], period: usize, f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    let mut out = vec![0f32; big.len()];
    let row = |dst: &mut [f32], src: &[f32]| {
        for ((d, &p), &q) in dst.iter_mut().zip(src).zip(small) {
            *d = f(p, q);
        }
    };
    if big.len() >= PAR_THRESHOLD {
        let rows_per_task = (PAR_THRESHOLD / period).max(1);
        let chunk = period * rows_per_task;
        out.par_chunks_mut(chunk).zip(big.par_chunks(chunk)).for_each(|(d, s)| {
            d.chunks_mut(period).zip(s.chunks(period)).for_each(|(d, s)| row(d, s));
        });
    } else {
        out.chunks_mut(period).zip(big.chunks(period)).for_each(|(d, s)| row(d, s));
    }
    out
}

/// Applies a broadcasting binary op.
pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = binary_kernel(op, a, b)?;
    if op.is_comparison() {
        // Piecewise constant: the gradient is zero almost everywhere, so the result is a constant.
        return Ok(out);
    }
    record(op.name(), &[a, b], out, || Op::Binary(op))
}

/// The forward kernel of [`binary`] (never recorded).
fn binary_kernel(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out_shape = broadcast_shapes(op.name(), a.shape(), b.shape())?;
    let (x, y) = (a.as_slice(), b.as_slice());
    macro_rules! run {
        ($f:expr) => {{
            let f = $f;
            if a.shape() == b.shape() {
                if x.len() >= PAR_THRESHOLD {
                    x.par_iter().zip(y.par_iter()).map(|(&p, &q)| f(p, q)).collect()
                } else {
                    x.iter().zip(y.iter()).map(|(&p, &q)| f(p, q)).collect()
                }
            } else if let Some(p) = suffix_period(b.shape(), &out_shape).filter(|_| a.shape() == out_shape.as_slice()) {
                // b repeats along the leading axes (a bias over the last axes): contiguous, vectorizable.
                tiled(x, y, p, |p, q| f(p, q))
            } else if let Some(p) = suffix_period(a.shape(), &out_shape).filter(|_| b.shape() == out_shape.as_slice()) {
                tiled(y, x, p, |q, p| f(p, q))
            } else {
                let sa = broadcast_strides(a.shape(), &out_shape);
                let sb = broadcast_strides(b.shape(), &out_shape);
                let mut out = vec![0f32; out_shape.iter().product()];
                broadcast_rows(&out_shape, &sa, &sb, &mut out, |_, ia, ib, da, db, dst| {
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = f(x[ia + j * da], y[ib + j * db]);
                    }
                });
                out
            }
        }};
    }
    let data: Vec<f32> = match op {
        BinaryOp::Add => run!(|p: f32, q: f32| p + q),
        BinaryOp::Sub => run!(|p: f32, q: f32| p - q),
        BinaryOp::Mul => run!(|p: f32, q: f32| p * q),
        BinaryOp::Div => run!(|p: f32, q: f32| p / q),
        other => run!(move |p: f32, q: f32| other.apply(p, q)),
    };
    Ok(Tensor::from_parts(out_shape, data))
}

/// For `y = op(a, b)` with upstream gradient `g` (shape of `y`), returns the gradients with respect
/// to `a` and `b` at the broadcast shape (before reduction to the input shapes).
pub(crate) fn binary_partials(op: BinaryOp, a: &Tensor, b: &Tensor, y: &Tensor, g: &Tensor) -> (Vec<f32>, Vec<f32>) {
    let out_shape = y.shape();
    let sa = broadcast_strides(a.shape(), out_shape);
    let sb = broadcast_strides(b.shape(), out_shape);
    let (x, w, yv, gv) = (a.as_slice(), b.as_slice(), y.as_slice(), g.as_slice());
    let n = yv.len();
    let mut ga = vec![0f32; n];
    let mut gb = vec![0f32; n];
    // Fill ga with d/da * g, then derive gb on a second pass (the visitor fills one buffer at a time).
    let last = out_shape.last().copied().unwrap_or(1).max(1);
    broadcast_rows(out_shape, &sa, &sb, &mut ga, |r, ia, ib, da, db, dst| {
        for (j, d) in dst.iter_mut().enumerate() {
            let o = r * last + j;
            *d = op.partials(x[ia + j * da], w[ib + j * db], yv[o]).0 * gv[o];
        }
    });
    broadcast_rows(out_shape, &sa, &sb, &mut gb, |r, ia, ib, da, db, dst| {
        for (j, d) in dst.iter_mut().enumerate() {
            let o = r * last + j;
            *d = op.partials(x[ia + j * da], w[ib + j * db], yv[o]).1 * gv[o];
        }
    });
    (ga, gb)
}

/// Applies a unary op.
pub fn unary(op: UnaryOp, x: &Tensor) -> Tensor {
    let data = match op {
        UnaryOp::Relu => map_slice(x.as_slice(), |v| if v > 0.0 || v.is_nan() { v } else { 0.0 }),
        UnaryOp::Exp => map_slice(x.as_slice(), f32::exp),
        UnaryOp::Tanh => map_slice(x.as_slice(), f32::tanh),
        other => map_slice(x.as_slice(), move |v| other.apply(v)),
    };
    record1(x, Tensor::from_parts(x.shape().to_vec(), data), || Op::Unary(op))
}

macro_rules! binary_methods {
    ($($name:ident => $op:ident, $doc:literal;)*) => {
        impl Tensor {
            $(
                #[doc = $doc]
                pub fn $name(&self, other: &Tensor) -> Result<Tensor> {
                    binary(BinaryOp::$op, self, other)
                }
            )*
        }
    };
}

binary_methods! {
    add => Add, "Elementwise `self + other` with numpy broadcasting.";
    sub => Sub, "Elementwise `self - other` with numpy broadcasting.";
    mul => Mul, "Elementwise `self * other` with numpy broadcasting.";
    div => Div, "Elementwise `self / other` with numpy broadcasting.";
    maximum => Max, "Elementwise maximum with numpy broadcasting.";
    minimum => Min, "Elementwise minimum with numpy broadcasting.";
    pow => Pow, "Elementwise `self ^ other` with numpy broadcasting.";
    greater => Greater, "Elementwise `self > other` as 1.0 / 0.0, with numpy broadcasting.";
    greater_equal => GreaterEqual, "Elementwise `self >= other` as 1.0 / 0.0, with numpy broadcasting.";
    less => Less, "Elementwise `self < other` as 1.0 / 0.0, with numpy broadcasting.";
    less_equal => LessEqual, "Elementwise `self <= other` as 1.0 / 0.0, with numpy broadcasting.";
    equal => Equal, "Elementwise `self == other` as 1.0 / 0.0, with numpy broadcasting.";
    not_equal => NotEqual, "Elementwise `self != other` as 1.0 / 0.0, with numpy broadcasting.";
}

macro_rules! unary_methods {
    ($($name:ident => $op:ident, $doc:literal;)*) => {
        impl Tensor {
            $(
                #[doc = $doc]
                pub fn $name(&self) -> Tensor {
                    unary(UnaryOp::$op, self)
                }
            )*
        }
    };
}

unary_methods! {
    neg => Neg, "Elementwise negation.";
    exp => Exp, "Elementwise `e^x`.";
    log => Log, "Elementwise natural logarithm.";
    sqrt => Sqrt, "Elementwise square root.";
    rsqrt => Rsqrt, "Elementwise `1 / sqrt(x)`.";
    tanh => Tanh, "Elementwise hyperbolic tangent.";
    sigmoid => Sigmoid, "Elementwise logistic sigmoid.";
    relu => Relu, "Elementwise `max(x, 0)`.";
    abs => Abs, "Elementwise absolute value.";
    square => Square, "Elementwise `x^2`.";
    recip => Recip, "Elementwise `1 / x`.";
    sin => Sin, "Elementwise sine.";
    cos => Cos, "Elementwise cosine.";
    softplus => Softplus, "Elementwise `log(1 + e^x)`.";
    log1p => Log1p, "Elementwise `log(1 + x)`.";
    expm1 => Expm1, "Elementwise `e^x - 1`.";
}

/// `where(cond, a, b)`: `a` where `cond != 0`, else `b`; all three broadcast together (numpy rules).
pub fn select(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = broadcast_shapes("select", a.shape(), b.shape())?;
    let shape = broadcast_shapes("select", cond.shape(), &shape)?;
    let (c, x, y) =
        (cond.detach().broadcast_to(&shape)?, a.detach().broadcast_to(&shape)?, b.detach().broadcast_to(&shape)?);
    let data = c
        .as_slice()
        .iter()
        .zip(x.as_slice())
        .zip(y.as_slice())
        .map(|((&c, &p), &q)| if c != 0.0 { p } else { q })
        .collect();
    record("select", &[cond, a, b], Tensor::from_parts(shape, data), || Op::Select)
}

impl Tensor {
    /// `f(self + bias)` in one pass, with `bias` (shape `[c]`, or `None`) added along the last axis
    /// of size `c`. The result reuses `self`'s buffer when it is not shared (the usual case right
    /// after a matmul or convolution), so no new tensor is allocated. Large tensors run in parallel.
    pub fn bias_map(self, bias: Option<&Tensor>, f: impl Fn(f32) -> f32 + Sync) -> Result<Tensor> {
        let c = self.shape().last().copied().unwrap_or(1);
        if let Some(b) = bias
            && (b.len() != c || self.rank() == 0)
        {
            return Err(crate::Error::Broadcast {
                op: "bias_map",
                lhs: self.shape().to_vec(),
                rhs: b.shape().to_vec(),
            });
        }
        let shape = self.shape().to_vec();
        let mut data = self.into_vec();
        let row = |dst: &mut [f32]| match bias {
            Some(b) => dst.iter_mut().zip(b.as_slice()).for_each(|(d, &q)| *d = f(*d + q)),
            None => dst.iter_mut().for_each(|d| *d = f(*d)),
        };
        let c = c.max(1);
        if data.len() >= PAR_THRESHOLD {
            let chunk = c * (PAR_THRESHOLD / c).max(1);
            data.par_chunks_mut(chunk).for_each(|d| d.chunks_mut(c).for_each(row));
        } else {
            data.chunks_mut(c).for_each(row);
        }
        Ok(Tensor::from_parts(shape, data))
    }

    /// Applies any [`UnaryOp`].
    pub fn map(&self, op: UnaryOp) -> Tensor {
        unary(op, self)
    }

    /// Multiplies every element by `s`.
    pub fn scale(&self, s: f32) -> Tensor {
        unary(UnaryOp::Scale(s), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }

    #[test]
    fn broadcast_add_row_and_column() {
        let a = t(&[2, 1], &[10.0, 20.0]);
        let b = t(&[3], &[1.0, 2.0, 3.0]);
        let c = a.add(&b).unwrap();
        assert_eq!(c.shape(), &[2, 3]);
        assert_eq!(c.as_slice(), &[11.0, 12.0, 13.0, 21.0, 22.0, 23.0]);
        let e = a.add(&t(&[3, 1], &[0.0; 3])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add: shapes [2, 1] and [3, 1] cannot be broadcast: aligned from the right, each pair of dimensions must \
             be equal or one of them 1"
        );
    }

    #[test]
    fn suffix_broadcast_fast_path_matches_general_path() {
        // [2, 3, 4] + [3, 4] and [1, 4] (suffix fast path) vs the same through a [2, 3, 4] copy.
        let n = 2 * 3 * 4;
        let a = t(&[2, 3, 4], &(0..n).map(|v| v as f32 * 0.5).collect::<Vec<_>>());
        for bs in [&[3usize, 4][..], &[1, 4], &[4], &[1, 1, 4]] {
            let m: usize = bs.iter().product();
            let b = t(bs, &(0..m).map(|v| 10.0 - v as f32).collect::<Vec<_>>());
            let full = b.broadcast_to(&[2, 3, 4]).unwrap();
            assert_eq!(a.sub(&b).unwrap(), a.sub(&full).unwrap(), "{bs:?}");
            assert_eq!(b.sub(&a).unwrap(), full.sub(&a).unwrap(), "{bs:?}");
        }
        // Large enough for the parallel path.
        let big = Tensor::from_vec(&[3000, 16], (0..48000).map(|v| (v % 97) as f32).collect()).unwrap();
        let bias = t(&[16], &(0..16).map(|v| v as f32).collect::<Vec<_>>());
        let want: Vec<f32> = big.as_slice().iter().enumerate().map(|(i, &v)| v * (i % 16) as f32).collect();
        assert_eq!(big.mul(&bias).unwrap().as_slice(), want.as_slice());
    }

    #[test]
    fn bias_map_adds_along_last_axis_then_maps() {
        let x = t(&[2, 3], &[1.0, -2.0, 3.0, -4.0, 5.0, -6.0]);
        let y = x.clone().bias_map(Some(&t(&[3], &[1.0, 1.0, -10.0])), |v| v.max(0.0)).unwrap();
        assert_eq!(y.as_slice(), &[2.0, 0.0, 0.0, 0.0, 6.0, 0.0]);
        assert_eq!(x.as_slice()[0], 1.0, "a shared input is not modified");
        let y = x.clone().bias_map(None, |v| v * 2.0).unwrap();
        assert_eq!(y.as_slice(), &[2.0, -4.0, 6.0, -8.0, 10.0, -12.0]);
        let big = Tensor::from_vec(&[5000, 8], vec![1.0; 40000]).unwrap();
        let y = big.bias_map(Some(&t(&[8], &[1.0; 8])), |v| v).unwrap();
        assert!(y.as_slice().iter().all(|&v| v == 2.0));
        let e = x.bias_map(Some(&t(&[2], &[0.0; 2])), |v| v).unwrap_err();
        assert!(e.to_string().contains("bias_map: shapes [2, 3] and [2]"), "{e}");
    }

    #[test]
    fn max_propagates_nan_and_relu_keeps_it() {
        let a = t(&[2], &[f32::NAN, 1.0]);
        let m = a.maximum(&Tensor::scalar(0.0)).unwrap();
        assert!(m.as_slice()[0].is_nan());
        assert!(a.relu().as_slice()[0].is_nan());
    }

    #[test]
    fn stable_sigmoid_and_softplus() {
        let x = t(&[3], &[-100.0, 0.0, 100.0]);
        let s = x.sigmoid();
        let tiny = (-100f32).exp();
        assert_eq!(s.as_slice(), &[tiny / (1.0 + tiny), 0.5, 1.0]);
        assert!(s.as_slice()[0] > 0.0, "no underflow to 0 for large negative inputs");
        let sp = x.softplus();
        assert_eq!(sp.as_slice()[2], 100.0);
        assert!(sp.as_slice()[0] > 0.0 && sp.as_slice()[0] < 1e-40);
    }
}
