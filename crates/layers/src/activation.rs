//! Keras activation functions.

use crate::error::{Error, Result};
use strata_format::config::ConfigDialect;
use strata_format::json::Json;
use strata_tensor::Tensor;

/// A Keras activation function.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Activation {
    /// Identity (`linear`, `None`).
    Linear,
    /// `max(x, 0)`
    Relu,
    /// logistic sigmoid
    Sigmoid,
    /// tanh
    Tanh,
    /// softmax over the last axis
    Softmax,
    /// GELU, exact (erf) or tanh approximation
    Gelu { approximate: bool },
    /// `x * sigmoid(x)` (`swish`, `silu`)
    Swish,
    /// ELU with alpha 1
    Elu,
    /// SELU
    Selu,
    /// `log(1 + e^x)`
    Softplus,
    /// `x / (1 + |x|)`
    Softsign,
    /// `min(max(x, 0), 6)`
    Relu6,
    /// leaky relu with this negative slope
    LeakyRelu(f32),
    /// `e^x`
    Exponential,
    /// Keras 3: `relu6(x + 3) / 6`
    HardSigmoid3,
    /// Keras 2: `clip(0.2 x + 0.5, 0, 1)`
    HardSigmoid2,
    /// log-softmax over the last axis
    LogSoftmax,
    /// `x * tanh(softplus(x))`
    Mish,
    /// Keras 3 `hard_silu`/`hard_swish`: `x * relu6(x + 3) / 6`
    HardSwish,
    /// `max(x, 0) + alpha * expm1(min(x, 0) / alpha)` with alpha 1
    Celu,
    /// `x - tanh(x)`
    TanhShrink,
    /// `clip(x, -1, 1)`
    HardTanh,
    /// `x` where `|x| > 0.5`, else 0
    HardShrink,
    /// `x - 0.5` above 0.5, `x + 0.5` below -0.5, else 0
    SoftShrink,
    /// 0 below -1, `x` above 1, `(x + 1)^2 / 4` between
    SparsePlus,
    /// `(x + sqrt(x^2 + 4)) / 2`
    Squareplus,
    /// `-softplus(-x)`
    LogSigmoid,
    /// 0 below -1, 1 above 1, `(x + 1) / 2` between
    SparseSigmoid,
    /// gated linear unit over the last axis: `a * sigmoid(b)` for the two halves `a`, `b`
    Glu,
    /// A registered Rust function (`activation="package>name"`), found through the
    /// [`crate::LayerResolver`] the model is built with.
    Custom(CustomActivation),
}

/// A registered activation: its name and function (compared by name).
#[derive(Clone)]
pub struct CustomActivation {
    /// The registered name (`my_acts>swishy`).
    pub name: String,
    /// The function, written with tensor ops (so it is differentiable).
    pub f: ActivationFn,
}

/// An activation written in Rust.
pub type ActivationFn = std::sync::Arc<dyn Fn(&Tensor) -> strata_tensor::Result<Tensor> + Send + Sync>;

impl std::fmt::Debug for CustomActivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomActivation({})", self.name)
    }
}

impl PartialEq for CustomActivation {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// Parses an activation by Keras name; `dialect` picks the `hard_sigmoid` definition.
pub fn parse_name(name: &str, dialect: ConfigDialect) -> Option<Activation> {
    let keras3 = matches!(dialect, ConfigDialect::Keras3 | ConfigDialect::Keras3LegacyH5);
    Some(match name {
        "linear" => Activation::Linear,
        "relu" => Activation::Relu,
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "softmax" => Activation::Softmax,
        "gelu" => Activation::Gelu { approximate: false },
        "swish" | "silu" => Activation::Swish,
        "elu" => Activation::Elu,
        "selu" => Activation::Selu,
        "softplus" => Activation::Softplus,
        "softsign" => Activation::Softsign,
        "relu6" => Activation::Relu6,
        "leaky_relu" => Activation::LeakyRelu(if keras3 { 0.2 } else { 0.3 }),
        "exponential" => Activation::Exponential,
        "hard_sigmoid" if keras3 => Activation::HardSigmoid3,
        "hard_sigmoid" => Activation::HardSigmoid2,
        "log_softmax" => Activation::LogSoftmax,
        "mish" => Activation::Mish,
        "hard_silu" | "hard_swish" => Activation::HardSwish,
        "celu" => Activation::Celu,
        "tanh_shrink" => Activation::TanhShrink,
        "hard_tanh" => Activation::HardTanh,
        "hard_shrink" => Activation::HardShrink,
        "soft_shrink" => Activation::SoftShrink,
        "sparse_plus" => Activation::SparsePlus,
        "squareplus" => Activation::Squareplus,
        "log_sigmoid" => Activation::LogSigmoid,
        "sparse_sigmoid" => Activation::SparseSigmoid,
        "glu" => Activation::Glu,
        _ => return None,
    })
}

/// Parses the `activation` value of a layer config (absent or null means linear).
pub fn parse(layer: &str, value: Option<&Json>, dialect: ConfigDialect) -> Result<Activation> {
    let name = match value {
        None | Some(Json::Null) => return Ok(Activation::Linear),
        Some(Json::String(s)) => s.as_str(),
        Some(other) => {
            // Keras 3 may serialize a function as {"class_name": "function", "config": "relu"}.
            match other.get("config").and_then(Json::as_str).or_else(|| other.get("class_name").and_then(Json::as_str))
            {
                Some(s) => s,
                None => {
                    return Err(Error::Config {
                        layer: layer.to_string(),
                        key: "activation".into(),
                        problem: "is neither a string nor a serialized function".into(),
                    });
                }
            }
        }
    };
    if let Some(a) = parse_name(name, dialect) {
        return Ok(a);
    }
    if let Some(f) = CUSTOM.with(|m| m.borrow().get(name).cloned()) {
        return Ok(Activation::Custom(CustomActivation { name: name.to_string(), f }));
    }
    Err(Error::Config {
        layer: layer.to_string(),
        key: "activation".into(),
        problem: format!(
            "names `{name}`, which strata does not implement; register a Rust function under that name (Registry::activation)"
        ),
    })
}

thread_local! {
    /// The custom activations of the model being built (see [`with_custom`]).
    static CUSTOM: std::cell::RefCell<std::collections::HashMap<String, ActivationFn>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The activation name a config value gives (`"relu"`, or `{"class_name": "function", "config": name}`).
pub fn name_of(value: &Json) -> Option<&str> {
    match value {
        Json::String(s) => Some(s),
        other => other.get("config").and_then(Json::as_str).or_else(|| other.get("class_name").and_then(Json::as_str)),
    }
}

/// Runs `f` (a model build, which is single-threaded) with `custom` activations resolvable by
/// name in [`parse`]; the previous set is restored afterwards, so nested builds compose.
pub(crate) fn with_custom<R>(custom: std::collections::HashMap<String, ActivationFn>, f: impl FnOnce() -> R) -> R {
    if custom.is_empty() {
        return f();
    }
    let before = CUSTOM.with(|m| std::mem::replace(&mut *m.borrow_mut(), custom));
    let out = f();
    CUSTOM.with(|m| *m.borrow_mut() = before);
    out
}

/// `log(1 + e^x)`, stable for large |x|.
fn softplus(v: f32) -> f32 {
    v.max(0.0) + (-v.abs()).exp().ln_1p()
}

/// Applies `f` elementwise; when a tape tracks `x`, records the op with derivative `df` so the activation
/// stays differentiable (the forward values are the same either way).
fn map(
    x: &Tensor,
    name: &'static str,
    f: impl Fn(f32) -> f32,
    df: impl Fn(f32) -> f32 + Send + Sync + 'static,
) -> std::result::Result<Tensor, strata_tensor::Error> {
    let y = Tensor::from_vec(x.shape(), x.as_slice().iter().map(|&v| f(v)).collect())?;
    if !x.is_tracked() {
        return Ok(y);
    }
    let backward = move |ins: &[Tensor], _y: &Tensor, g: &Tensor| {
        let x = ins.first().ok_or(strata_tensor::Error::Empty { op: name })?;
        let d = Tensor::from_vec(x.shape(), x.as_slice().iter().map(|&v| df(v)).collect())?;
        Ok(vec![Some(d.mul(g)?)])
    };
    strata_tensor::custom_op(name, &[x], y, Some(std::sync::Arc::new(backward)))
}

fn sigmoid64(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// erf with about 1e-7 relative accuracy (series near 0, continued-fraction style tail via erfc).
fn erf(x: f64) -> f64 {
    // Abramowitz-Stegun 7.1.26 is too coarse; use the Taylor series for |x| < 3 and erfc asymptotics beyond.
    let ax = x.abs();
    let r = if ax < 3.0 {
        let mut sum = ax;
        let mut term = ax;
        let x2 = ax * ax;
        let mut n = 0.0f64;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() < 1e-17 * sum.abs() || n > 200.0 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // continued fraction for erfc (Lentz), converges fast for x >= 3
        let x2 = ax * ax;
        let mut f = ax;
        let mut c = ax;
        let mut d = 0.0f64;
        for k in 1..60 {
            let a = k as f64 * 0.5;
            d = ax + a * d;
            d = if d == 0.0 { 1e-300 } else { 1.0 / d };
            c = ax + a / c;
            let delta = c * d;
            f *= delta;
        }
        1.0 - (-x2).exp() / (f * std::f64::consts::PI.sqrt())
    };
    if x < 0.0 { -r } else { r }
}

impl Activation {
    /// `activation(y + bias)` with `bias` along the last axis, in one pass over `y`'s own buffer
    /// (no new tensor when `y` is not shared, as right after a matmul). Same numbers as
    /// `apply(&y.add(bias))`.
    pub fn apply_with_bias(
        &self,
        y: Tensor,
        bias: Option<&Tensor>,
    ) -> std::result::Result<Tensor, strata_tensor::Error> {
        use Activation as A;
        use strata_tensor::UnaryOp as U;
        // The fused loop writes in place outside the tensor ops: under a tape, take the recorded path.
        if y.is_tracked() || bias.is_some_and(Tensor::is_tracked) {
            let y = match bias {
                Some(b) => y.add(b)?,
                None => y,
            };
            return self.apply(&y);
        }
        match self {
            A::Linear if bias.is_none() => Ok(y),
            A::Linear => y.bias_map(bias, |v| v),
            A::Relu => y.bias_map(bias, |v| if v > 0.0 || v.is_nan() { v } else { 0.0 }),
            A::Sigmoid => y.bias_map(bias, |v| U::Sigmoid.apply(v)),
            A::Tanh => y.bias_map(bias, f32::tanh),
            A::Swish => y.bias_map(bias, |v| v / (1.0 + (-v).exp())),
            A::Relu6 => y.bias_map(bias, |v| v.clamp(0.0, 6.0)),
            A::LeakyRelu(a) => y.bias_map(bias, move |v| if v > 0.0 { v } else { a * v }),
            A::Exponential => y.bias_map(bias, f32::exp),
            A::Softplus => y.bias_map(bias, |v| U::Softplus.apply(v)),
            A::HardSigmoid3 => y.bias_map(bias, |v| (v + 3.0).clamp(0.0, 6.0) / 6.0),
            A::HardSigmoid2 => y.bias_map(bias, |v| (0.2 * v + 0.5).clamp(0.0, 1.0)),
            other => {
                let y = if bias.is_some() { y.bias_map(bias, |v| v)? } else { y };
                other.apply(&y)
            }
        }
    }

    /// Applies the activation.
    pub fn apply(&self, x: &Tensor) -> std::result::Result<Tensor, strata_tensor::Error> {
        use Activation as A;
        match *self {
            A::Custom(ref c) => (c.f)(x),
            A::Linear => Ok(x.clone()),
            A::Relu => Ok(x.relu()),
            A::Sigmoid => Ok(x.sigmoid()),
            A::Tanh => Ok(x.tanh()),
            A::Softmax => x.softmax(-1),
            A::Gelu { approximate: false } => map(
                x,
                "gelu",
                |v| {
                    let v = f64::from(v);
                    (0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2))) as f32
                },
                |v| {
                    let v = f64::from(v);
                    let cdf = 0.5 * (1.0 + erf(v / std::f64::consts::SQRT_2));
                    let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
                    (cdf + v * pdf) as f32
                },
            ),
            A::Gelu { approximate: true } => map(
                x,
                "gelu",
                |v| {
                    let v = f64::from(v);
                    let c = (2.0 / std::f64::consts::PI).sqrt();
                    (0.5 * v * (1.0 + (c * (v + 0.044715 * v * v * v)).tanh())) as f32
                },
                |v| {
                    let v = f64::from(v);
                    let c = (2.0 / std::f64::consts::PI).sqrt();
                    let t = (c * (v + 0.044715 * v * v * v)).tanh();
                    (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * v * v)) as f32
                },
            ),
            A::Swish => map(
                x,
                "swish",
                |v| v / (1.0 + (-v).exp()),
                |v| {
                    let s = sigmoid64(f64::from(v));
                    (s * (1.0 + f64::from(v) * (1.0 - s))) as f32
                },
            ),
            A::Elu => map(x, "elu", |v| if v > 0.0 { v } else { v.exp_m1() }, |v| if v > 0.0 { 1.0 } else { v.exp() }),
            A::Selu => {
                const ALPHA: f32 = 1.673_263_2;
                const SCALE: f32 = 1.050_701;
                map(
                    x,
                    "selu",
                    |v| if v > 0.0 { SCALE * v } else { SCALE * ALPHA * v.exp_m1() },
                    |v| if v > 0.0 { SCALE } else { SCALE * ALPHA * v.exp() },
                )
            }
            A::Softplus => Ok(x.map(strata_tensor::UnaryOp::Softplus)),
            A::Softsign => map(x, "softsign", |v| v / (1.0 + v.abs()), |v| 1.0 / ((1.0 + v.abs()) * (1.0 + v.abs()))),
            A::Relu6 => map(x, "relu6", |v| v.clamp(0.0, 6.0), |v| f32::from(u8::from(v > 0.0 && v < 6.0))),
            A::LeakyRelu(a) => {
                map(x, "leaky_relu", move |v| if v > 0.0 { v } else { a * v }, move |v| if v > 0.0 { 1.0 } else { a })
            }
            A::Exponential => Ok(x.exp()),
            A::HardSigmoid3 => map(
                x,
                "hard_sigmoid",
                |v| (v + 3.0).clamp(0.0, 6.0) / 6.0,
                |v| if v > -3.0 && v < 3.0 { 1.0 / 6.0 } else { 0.0 },
            ),
            A::HardSigmoid2 => map(
                x,
                "hard_sigmoid",
                |v| (0.2 * v + 0.5).clamp(0.0, 1.0),
                |v| if v > -2.5 && v < 2.5 { 0.2 } else { 0.0 },
            ),
            A::LogSoftmax => x.log_softmax(-1),
            A::Mish => map(
                x,
                "mish",
                |v| v * softplus(v).tanh(),
                |v| {
                    let sp = softplus(v).tanh();
                    let s = if v >= 0.0 { 1.0 / (1.0 + (-v).exp()) } else { v.exp() / (1.0 + v.exp()) };
                    sp + v * (1.0 - sp * sp) * s
                },
            ),
            A::HardSwish => map(
                x,
                "hard_swish",
                |v| v * (v + 3.0).clamp(0.0, 6.0) / 6.0,
                |v| (v + 3.0).clamp(0.0, 6.0) / 6.0 + if v > -3.0 && v < 3.0 { v / 6.0 } else { 0.0 },
            ),
            A::Celu => map(
                x,
                "celu",
                |v| v.max(0.0) + v.min(0.0).exp_m1(),
                |v| f32::from(u8::from(v >= 0.0)) + if v <= 0.0 { v.exp() } else { 0.0 },
            ),
            A::TanhShrink => map(x, "tanh_shrink", |v| v - v.tanh(), |v| v.tanh() * v.tanh()),
            A::HardTanh => {
                map(x, "hard_tanh", |v| v.clamp(-1.0, 1.0), |v| f32::from(u8::from((-1.0..=1.0).contains(&v))))
            }
            A::HardShrink => {
                map(x, "hard_shrink", |v| if v.abs() > 0.5 { v } else { 0.0 }, |v| f32::from(u8::from(v.abs() > 0.5)))
            }
            A::SoftShrink => map(
                x,
                "soft_shrink",
                |v| {
                    if v > 0.5 {
                        v - 0.5
                    } else if v < -0.5 {
                        v + 0.5
                    } else {
                        0.0
                    }
                },
                |v| f32::from(u8::from(v.abs() > 0.5)),
            ),
            A::SparsePlus => map(
                x,
                "sparse_plus",
                |v| {
                    if v <= -1.0 {
                        0.0
                    } else if v >= 1.0 {
                        v
                    } else {
                        (v + 1.0) * (v + 1.0) / 4.0
                    }
                },
                |v| {
                    if v <= -1.0 {
                        0.0
                    } else if v >= 1.0 {
                        1.0
                    } else {
                        0.5 * (v + 1.0)
                    }
                },
            ),
            A::Squareplus => {
                map(x, "squareplus", |v| (v + (v * v + 4.0).sqrt()) / 2.0, |v| 0.5 * (1.0 + v / (v * v + 4.0).sqrt()))
            }
            A::LogSigmoid => map(
                x,
                "log_sigmoid",
                |v| -softplus(-v),
                |v| {
                    if v >= 0.0 { (-v).exp() / (1.0 + (-v).exp()) } else { 1.0 / (1.0 + v.exp()) }
                },
            ),
            A::SparseSigmoid => map(
                x,
                "sparse_sigmoid",
                |v| {
                    if v <= -1.0 {
                        0.0
                    } else if v >= 1.0 {
                        1.0
                    } else {
                        0.5 * (v + 1.0)
                    }
                },
                |v| if v > -1.0 && v < 1.0 { 0.5 } else { 0.0 },
            ),
            A::Glu => {
                let last = x.shape().last().copied().unwrap_or(0);
                if last % 2 != 0 {
                    return Err(strata_tensor::Error::Groups { op: "glu", filters: last, groups: 2 });
                }
                let a = x.slice_axis(-1, 0, last / 2)?;
                let b = x.slice_axis(-1, last / 2, last)?;
                a.mul(&b.sigmoid())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // erf(0.5), erf(1), erf(2), erf(3.5) from standard tables (A&S table 7.1).
        assert!((erf(0.5) - 0.520_499_877_8).abs() < 1e-9);
        assert!((erf(1.0) - 0.842_700_792_9).abs() < 1e-9);
        assert!((erf(2.0) - 0.995_322_265_0).abs() < 1e-9);
        assert!((erf(-1.0) + 0.842_700_792_9).abs() < 1e-9);
        assert!((erf(3.5) - 0.999_999_256_9).abs() < 1e-9);
    }

    #[test]
    fn fused_bias_activation_equals_add_then_apply() {
        let y = Tensor::from_vec(&[3, 4], (0..12).map(|v| v as f32 * 0.7 - 4.0).collect()).unwrap();
        let b = Tensor::from_vec(&[4], vec![0.5, -1.0, 2.0, -0.25]).unwrap();
        let all = [
            "linear",
            "relu",
            "sigmoid",
            "tanh",
            "softmax",
            "gelu",
            "swish",
            "elu",
            "selu",
            "softplus",
            "softsign",
            "relu6",
            "leaky_relu",
            "exponential",
            "hard_sigmoid",
        ];
        for name in all {
            let a = parse_name(name, ConfigDialect::Keras3).unwrap();
            let want = a.apply(&y.add(&b).unwrap()).unwrap();
            assert_eq!(a.apply_with_bias(y.clone(), Some(&b)).unwrap(), want, "{name}");
            assert_eq!(a.apply_with_bias(y.clone(), None).unwrap(), a.apply(&y).unwrap(), "{name}");
        }
    }

    #[test]
    fn hard_sigmoid_depends_on_dialect() {
        let x = Tensor::from_vec(&[1], vec![1.0]).unwrap();
        let k3 = parse_name("hard_sigmoid", ConfigDialect::Keras3).unwrap().apply(&x).unwrap();
        let k2 = parse_name("hard_sigmoid", ConfigDialect::Keras2).unwrap().apply(&x).unwrap();
        assert!((k3.as_slice()[0] - 4.0 / 6.0).abs() < 1e-7);
        assert!((k2.as_slice()[0] - 0.7).abs() < 1e-7);
    }
}
