//! Gradients for layer kernels written as raw loops: each helper takes the forward result (computed as
//! before, so the numbers do not change) and attaches a backward through [`strata_tensor::custom_op`]
//! when an input is tracked. Untracked inputs: the result is returned as is.

use std::sync::Arc;

use strata_tensor::{DType, Error, Result, Tensor, bf16_to_f32, custom_op, f16_to_f32, f32_to_bf16, f32_to_f16};

/// `y = f(x)` elementwise, with derivative `dy/dx = df(x, y)` (TensorFlow's gradient of the op).
pub(crate) fn unary(
    name: &'static str,
    x: &Tensor,
    y: Tensor,
    df: impl Fn(f32, f32) -> f32 + Send + Sync + 'static,
) -> Result<Tensor> {
    if !x.is_tracked() {
        return Ok(y);
    }
    let backward = move |ins: &[Tensor], y: &Tensor, g: &Tensor| {
        let x = ins.first().ok_or(Error::Empty { op: name })?;
        let d = x.as_slice().iter().zip(y.as_slice()).zip(g.as_slice()).map(|((&x, &y), &g)| g * df(x, y)).collect();
        Ok(vec![Some(Tensor::from_vec(x.shape(), d)?)])
    };
    custom_op(name, &[x], y, Some(Arc::new(backward)))
}

/// `y = f(a, b)` with numpy broadcasting, with partials `(dy/da, dy/db) = df(a, b, y)`; the gradients are
/// summed back to each input's shape.
pub(crate) fn binary(
    name: &'static str,
    a: &Tensor,
    b: &Tensor,
    y: Tensor,
    df: impl Fn(f32, f32, f32) -> (f32, f32) + Send + Sync + 'static,
) -> Result<Tensor> {
    if !a.is_tracked() && !b.is_tracked() {
        return Ok(y);
    }
    let backward = move |ins: &[Tensor], y: &Tensor, g: &Tensor| {
        let [a, b] = ins else { return Err(Error::Empty { op: name }) };
        let (ab, bb) = (a.broadcast_to(y.shape())?, b.broadcast_to(y.shape())?);
        let n = y.len();
        let (mut ga, mut gb) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (((&p, &q), &v), &g) in ab.as_slice().iter().zip(bb.as_slice()).zip(y.as_slice()).zip(g.as_slice()) {
            let (da, db) = df(p, q, v);
            ga.push(g * da);
            gb.push(g * db);
        }
        let ga = Tensor::from_vec(y.shape(), ga)?.sum_to(a.shape())?;
        let gb = Tensor::from_vec(y.shape(), gb)?.sum_to(b.shape())?;
        Ok(vec![Some(ga), Some(gb)])
    };
    custom_op(name, &[a, b], y, Some(Arc::new(backward)))
}

/// `y` is `x` rounded to the reduced float dtype `d` (a float cast, a reduced-precision policy): the
/// gradient passes straight through, as TensorFlow's `Cast` gradient does, but as a gradient of a `d`
/// tensor it is itself a `d` value, so it is rounded to `d` the same way.
pub(crate) fn cast_through(name: &'static str, x: &Tensor, y: Tensor, d: DType) -> Result<Tensor> {
    if !x.is_tracked() {
        return Ok(y);
    }
    let backward = move |_: &[Tensor], _: &Tensor, g: &Tensor| {
        let r: Vec<f32> = match d {
            DType::F16 => g.as_slice().iter().map(|&v| f16_to_f32(f32_to_f16(v))).collect(),
            DType::BF16 => g.as_slice().iter().map(|&v| bf16_to_f32(f32_to_bf16(v))).collect(),
            _ => return Ok(vec![Some(g.clone())]),
        };
        Ok(vec![Some(Tensor::from_vec(g.shape(), r)?)])
    };
    custom_op(name, &[x], y, Some(Arc::new(backward)))
}

/// `y[i] = x[src[i]]` (`src` one flat source offset per output element): the gradient scatters back,
/// adding where an element was read several times.
pub(crate) fn gather(name: &'static str, x: &Tensor, y: Tensor, src: Vec<usize>) -> Result<Tensor> {
    if !x.is_tracked() {
        return Ok(y);
    }
    let backward = move |ins: &[Tensor], _: &Tensor, g: &Tensor| {
        let x = ins.first().ok_or(Error::Empty { op: name })?;
        let mut d = vec![0f32; x.len()];
        for (&o, &gv) in src.iter().zip(g.as_slice()) {
            if let Some(s) = d.get_mut(o) {
                *s += gv;
            }
        }
        Ok(vec![Some(Tensor::from_vec(x.shape(), d)?)])
    };
    custom_op(name, &[x], y, Some(Arc::new(backward)))
}

/// `y[i] = sum_k w[i][k] * x[src[i][k]]` (a linear map: bilinear resizing): the gradient is the transpose.
pub(crate) fn linear(name: &'static str, x: &Tensor, y: Tensor, taps: Vec<[(usize, f32); 4]>) -> Result<Tensor> {
    if !x.is_tracked() {
        return Ok(y);
    }
    let backward = move |ins: &[Tensor], _: &Tensor, g: &Tensor| {
        let x = ins.first().ok_or(Error::Empty { op: name })?;
        let mut d = vec![0f32; x.len()];
        for (t, &gv) in taps.iter().zip(g.as_slice()) {
            for &(o, w) in t {
                if let Some(s) = d.get_mut(o) {
                    *s += w * gv;
                }
            }
        }
        Ok(vec![Some(Tensor::from_vec(x.shape(), d)?)])
    };
    custom_op(name, &[x], y, Some(Arc::new(backward)))
}

/// `y` is `x` with every element outside `kept` (flat offsets) replaced by a constant: the gradient
/// passes at `kept` only.
pub(crate) fn masked(name: &'static str, x: &Tensor, y: Tensor, kept: Vec<usize>) -> Result<Tensor> {
    if !x.is_tracked() {
        return Ok(y);
    }
    let backward = move |ins: &[Tensor], _: &Tensor, g: &Tensor| {
        let x = ins.first().ok_or(Error::Empty { op: name })?;
        let gs = g.as_slice();
        let mut d = vec![0f32; x.len()];
        for &o in &kept {
            if let (Some(s), Some(&gv)) = (d.get_mut(o), gs.get(o)) {
                *s = gv;
            }
        }
        Ok(vec![Some(Tensor::from_vec(x.shape(), d)?)])
    };
    custom_op(name, &[x], y, Some(Arc::new(backward)))
}

/// A hand-written op with a backward `f(inputs, output, output gradient)`, recorded when an input is tracked.
pub(crate) fn custom(
    name: &'static str,
    inputs: &[&Tensor],
    y: Tensor,
    f: impl Fn(&[Tensor], &Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Result<Tensor> {
    if inputs.iter().all(|t| !t.is_tracked()) {
        return Ok(y);
    }
    custom_op(name, inputs, y, Some(Arc::new(f)))
}
