//! Keras 3 operation nodes: `keras.ops.*` calls made on symbolic tensors inside a functional model.
//!
//! Keras 3 serializes such a call as a layer entry whose `module` is `keras.src.ops.numpy`,
//! `keras.src.ops.nn`, `keras.src.ops.math`, `keras.src.ops.core`, ... and whose `class_name` is
//! the operation class (`NotEqual`, `Any`, `GetItem`, `Einsum`, ...). The entry's `config` holds
//! the operation's constructor arguments (`axis`, `keepdims`, `newshape`, ...); each inbound node's
//! `args` hold the call's tensors *and* constants in order (`[x, 0.0]` for `ops.not_equal(x, 0.0)`,
//! `[2.0, x]` for `2.0 ** x`, `[x, [slice, null, ...]]` for `x[:, None]`).
//!
//! Several op classes share their names with layers (`Add`, `Multiply`, `Maximum`, `Concatenate`,
//! `Softmax`, `Reshape`, ...): this family is chosen by the entry's `module`
//! ([`is_op_module`]), never by the class name alone.
//!
//! Dtypes: strata tensors are f32. Boolean results (comparisons, `any`, `all`, logical ops,
//! `cast(x, "bool")`) are 0/1 f32 values; integer results (`argmax`, `cast(x, "int32")`, integer
//! inputs) are integral f32 values. `cast` to an integer type truncates toward zero like
//! TensorFlow; to `float16`/`bfloat16` it rounds to that precision; to `float64` it keeps f32.
//! Operations on integer tensors follow their float formulas, which agree with Keras for the
//! values f32 holds exactly (|x| < 2^24): `//` floors, `%` takes the divisor's sign, `/` is true
//! division. Operations do not carry Keras masks (outputs are unmasked), as in Keras.

use crate::cfg::{Meta, bool_of, f32_of, get, int_of, ints_of, weights_n};
use crate::error::{Error, Result, Unsupported};
use crate::layers::{BuildCtx, CallArgs, Layer, Masked};
use strata_format::config::LayerConfig;
use strata_format::json::Json;
use strata_tensor::{DType, Tensor};

/// The largest element count an op here may create (tile, repeat, one_hot, einsum work).
const MAX_ELEMENTS: usize = 1 << 28;

/// Operation classes this family runs (matched only for entries whose module is a Keras op module).
pub const SUPPORTED: &[&str] = &[
    // numpy: binary elementwise
    "Add",
    "Subtract",
    "Multiply",
    "Divide",
    "TrueDivide",
    "DivideNoNan",
    "FloorDivide",
    "Mod",
    "Power",
    "Maximum",
    "Minimum",
    "Arctan2",
    "Equal",
    "NotEqual",
    "Greater",
    "GreaterEqual",
    "Less",
    "LessEqual",
    "LogicalAnd",
    "LogicalOr",
    "LogicalXor",
    // numpy: unary elementwise
    "Abs",
    "Absolute",
    "Fabs",
    "Negative",
    "Sqrt",
    "Square",
    "Exp",
    "Exp2",
    "Log",
    "Log2",
    "Log10",
    "Log1p",
    "Expm1",
    "Sin",
    "Cos",
    "Tan",
    "Tanh",
    "Sinh",
    "Cosh",
    "Arcsin",
    "Arccos",
    "Arctan",
    "Arcsinh",
    "Arccosh",
    "Arctanh",
    "Sign",
    "Floor",
    "Ceil",
    "Trunc",
    "Round",
    "Reciprocal",
    "LogicalNot",
    "Isnan",
    "Isinf",
    "Isfinite",
    "Copy",
    "Clip",
    "Where",
    // numpy: reductions and scans
    "Sum",
    "Mean",
    "Max",
    "Min",
    "Amax",
    "Amin",
    "Prod",
    "Any",
    "All",
    "Std",
    "Var",
    "Argmax",
    "Argmin",
    "Cumsum",
    "Cumprod",
    // numpy: shapes
    "Reshape",
    "Transpose",
    "ExpandDims",
    "Squeeze",
    "Concatenate",
    "Stack",
    "Tile",
    "Repeat",
    "Flip",
    "Swapaxes",
    "Moveaxis",
    "GetItem",
    "Pad",
    "ZerosLike",
    "OnesLike",
    "FullLike",
    "Ravel",
    "BroadcastTo",
    "Tril",
    "Triu",
    "Sort",
    "Average",
    "Split",
    "Unstack",
    "Take",
    "Matmul",
    "Einsum",
    // nn
    "Relu",
    "Relu6",
    "Sigmoid",
    "Silu",
    "Gelu",
    "Elu",
    "Selu",
    "Celu",
    "LeakyRelu",
    "Softplus",
    "Softsign",
    "HardSigmoid",
    "HardSilu",
    "HardTanh",
    "LogSigmoid",
    "Softmax",
    "LogSoftmax",
    "OneHot",
    "SoftShrink",
    "HardShrink",
    "TanhShrink",
    "SparsePlus",
    "SparseSigmoid",
    "Squareplus",
    "Threshold",
    "Glu",
    "Moments",
    "TopK",
    "Argsort",
    "Normalize",
    // linalg
    "Norm",
    // math
    "Erf",
    "Erfc",
    "Rsqrt",
    "Logsumexp",
    // image
    "Resize",
    // core
    "Cast",
    "StopGradient",
    "ConvertToTensor",
];

/// Whether a layer entry's `module` marks a Keras operation node (`keras.src.ops.numpy`, ...).
pub fn is_op_module(module: &str) -> bool {
    module == "keras.src.ops" || module.starts_with("keras.src.ops.")
}

/// The error for an op class strata does not run: names the op with its module.
pub fn unsupported(layer: &LayerConfig) -> Unsupported {
    Unsupported {
        layer: layer.name.clone(),
        class: format!("{}.{}", layer.module.as_deref().unwrap_or("keras.src.ops"), layer.class_name),
    }
}

/// Builds an operation node. Unknown op classes are an error naming the op and its module.
pub fn build(layer: &LayerConfig, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Option<Box<dyn Layer>>> {
    let _ = ctx;
    let m = Meta::of(layer);
    weights_n(&m, &w, 0)?;
    let op = parse(&m, layer)?.ok_or_else(|| Error::Unsupported(vec![unsupported(layer)]))?;
    Ok(Some(Box::new(OpLayer { meta: m, op })))
}

/// Elementwise functions of two operands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    DivNoNan,
    FloorDiv,
    Mod,
    Pow,
    Max,
    Min,
    Atan2,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    And,
    Or,
    Xor,
}

/// Elementwise functions of one operand.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Un {
    Abs,
    Neg,
    Sqrt,
    Square,
    Exp,
    Exp2,
    Log,
    Log2,
    Log10,
    Log1p,
    Expm1,
    Sin,
    Cos,
    Tan,
    Tanh,
    Sinh,
    Cosh,
    Asin,
    Acos,
    Atan,
    Asinh,
    Acosh,
    Atanh,
    Sign,
    Floor,
    Ceil,
    Trunc,
    Round(i32),
    Recip,
    Not,
    IsNan,
    IsInf,
    IsFinite,
    Identity,
    Relu,
    Relu6,
    Sigmoid,
    Silu,
    Gelu {
        approximate: bool,
    },
    Elu(f32),
    Selu,
    Celu(f32),
    LeakyRelu(f32),
    Softplus,
    Softsign,
    HardSigmoid,
    HardSilu,
    HardTanh,
    LogSigmoid,
    Erf,
    Erfc,
    Rsqrt,
    Clip(f32, f32),
    SoftShrink(f32),
    HardShrink(f32),
    TanhShrink,
    SparsePlus,
    SparseSigmoid,
    Squareplus(f32),
    /// `x > threshold ? x : default`
    Threshold(f32, f32),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Red {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    Any,
    All,
    Std,
    Var,
    LogSumExp,
}

/// The `ord` of a norm.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NormOrd {
    /// a number (`inf`/`-inf` included)
    P(f32),
    /// `"fro"`
    Fro,
}

/// Target of a `cast`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CastTo {
    /// float32/float64: unchanged
    Keep,
    /// float16 or bfloat16 rounding
    Half(DType),
    /// integer types: truncation toward zero
    Int,
    /// bool: 0/1
    Bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Binary(Bin),
    Unary(Un),
    Reduce {
        red: Red,
        axes: Option<Vec<isize>>,
        keepdims: bool,
    },
    Arg {
        max: bool,
        axis: Option<isize>,
        keepdims: bool,
    },
    Scan {
        prod: bool,
        axis: Option<isize>,
    },
    /// `axis: None` is a softmax over every element
    Softmax {
        log: bool,
        axis: Option<isize>,
    },
    Glu(isize),
    /// `(mean, variance)` over `axes`
    Moments {
        axes: Vec<isize>,
        keepdims: bool,
    },
    /// `(values, indices)` of the `k` largest along the last axis, largest first
    TopK(usize),
    Argsort(isize),
    Reshape(Vec<isize>),
    Transpose(Option<Vec<isize>>),
    ExpandDims(Vec<isize>),
    Squeeze(Option<Vec<isize>>),
    Concatenate(isize),
    Stack(isize),
    Tile(Vec<isize>),
    Repeat {
        repeats: Vec<isize>,
        axis: Option<isize>,
    },
    Flip(Option<Vec<isize>>),
    Swapaxes(isize, isize),
    Moveaxis(Vec<isize>, Vec<isize>),
    GetItem,
    /// `split`: equal sections (one count) or split points (several indices) along an axis
    Split {
        sections: Option<usize>,
        points: Vec<usize>,
        axis: isize,
    },
    /// `unstack` along an axis (`num` checked when given)
    Unstack {
        num: Option<usize>,
        axis: isize,
    },
    /// `linalg.norm`: `ord` (`None` = 2 / Frobenius), over one or two axes
    Norm {
        ord: Option<NormOrd>,
        axes: Option<Vec<isize>>,
        keepdims: bool,
    },
    /// `nn.normalize`: `x / max(norm, epsilon)` (order 2: `x * min(rsqrt(sum x^2), 1/epsilon)`)
    Normalize {
        axis: isize,
        order: f32,
        epsilon: f32,
    },
    Take(Option<isize>),
    /// constant-mode `pad`: `(before, after)` per axis (a single pair applies to every axis)
    Pad(Vec<(usize, usize)>),
    /// `zeros_like` (0), `ones_like` (1), `full_like` (`None`: the call's `fill_value`)
    Like(Option<f32>),
    Ravel,
    BroadcastTo(Vec<usize>),
    /// `tril` (`upper: false`) / `triu` with diagonal offset `k`
    Tri {
        upper: bool,
        k: isize,
    },
    Sort(isize),
    Average(Option<isize>),
    /// `image.resize` to `[height, width]`, bilinear or nearest, half-pixel centers (TensorFlow 2)
    Resize {
        size: [usize; 2],
        bilinear: bool,
        channels_first: bool,
    },
    Matmul,
    Einsum(String),
    Where,
    Cast(CastTo),
    OneHot {
        classes: usize,
        axis: isize,
    },
}

fn parse(m: &Meta, layer: &LayerConfig) -> Result<Option<Op>> {
    let cfg = &layer.config;
    let axes = |key: &str| ints_of(m, cfg, key);
    let one_axis = |key: &str| -> Result<Option<isize>> {
        match ints_of(m, cfg, key)?.as_deref() {
            None => Ok(None),
            Some([a]) if cfg.get(key).is_none_or(|v| v.as_array().is_none()) => Ok(Some(*a)),
            Some(_) => Err(m.cfg_err(key, "must be one integer axis (or null)")),
        }
    };
    let keepdims = || bool_of(m, cfg, "keepdims", false);
    let red = |red: Red| -> Result<Op> { Ok(Op::Reduce { red, axes: axes("axis")?, keepdims: keepdims()? }) };
    let un = |u: Un| Ok(Some(Op::Unary(u)));
    let bin = |b: Bin| Ok(Some(Op::Binary(b)));
    let op = match layer.class_name.as_str() {
        "Add" => return bin(Bin::Add),
        "Subtract" => return bin(Bin::Sub),
        "Multiply" => return bin(Bin::Mul),
        "Divide" | "TrueDivide" => return bin(Bin::Div),
        "DivideNoNan" => return bin(Bin::DivNoNan),
        "FloorDivide" => return bin(Bin::FloorDiv),
        "Mod" => return bin(Bin::Mod),
        "Power" => return bin(Bin::Pow),
        "Maximum" => return bin(Bin::Max),
        "Minimum" => return bin(Bin::Min),
        "Arctan2" => return bin(Bin::Atan2),
        "Equal" => return bin(Bin::Eq),
        "NotEqual" => return bin(Bin::Ne),
        "Greater" => return bin(Bin::Gt),
        "GreaterEqual" => return bin(Bin::Ge),
        "Less" => return bin(Bin::Lt),
        "LessEqual" => return bin(Bin::Le),
        "LogicalAnd" => return bin(Bin::And),
        "LogicalOr" => return bin(Bin::Or),
        "LogicalXor" => return bin(Bin::Xor),
        "Abs" | "Absolute" | "Fabs" => return un(Un::Abs),
        "Negative" => return un(Un::Neg),
        "Sqrt" => return un(Un::Sqrt),
        "Square" => return un(Un::Square),
        "Exp" => return un(Un::Exp),
        "Exp2" => return un(Un::Exp2),
        "Log" => return un(Un::Log),
        "Log2" => return un(Un::Log2),
        "Log10" => return un(Un::Log10),
        "Log1p" => return un(Un::Log1p),
        "Expm1" => return un(Un::Expm1),
        "Sin" => return un(Un::Sin),
        "Cos" => return un(Un::Cos),
        "Tan" => return un(Un::Tan),
        "Tanh" => return un(Un::Tanh),
        "Sinh" => return un(Un::Sinh),
        "Cosh" => return un(Un::Cosh),
        "Arcsin" => return un(Un::Asin),
        "Arccos" => return un(Un::Acos),
        "Arctan" => return un(Un::Atan),
        "Arcsinh" => return un(Un::Asinh),
        "Arccosh" => return un(Un::Acosh),
        "Arctanh" => return un(Un::Atanh),
        "Sign" => return un(Un::Sign),
        "Floor" => return un(Un::Floor),
        "Ceil" => return un(Un::Ceil),
        "Trunc" => return un(Un::Trunc),
        "Round" => {
            let d = int_of(m, cfg, "decimals", 0)?;
            let d = i32::try_from(d)
                .ok()
                .filter(|d| d.abs() <= 30)
                .ok_or_else(|| m.cfg_err("decimals", "is out of range"))?;
            return un(Un::Round(d));
        }
        "Reciprocal" => return un(Un::Recip),
        "LogicalNot" => return un(Un::Not),
        "Isnan" => return un(Un::IsNan),
        "Isinf" => return un(Un::IsInf),
        "Isfinite" => return un(Un::IsFinite),
        "Copy" | "StopGradient" => return un(Un::Identity),
        "ConvertToTensor" => {
            if bool_of(m, cfg, "sparse", false)? || bool_of(m, cfg, "ragged", false)? {
                return Err(m.cfg_err("sparse", "asks for a sparse or ragged tensor, which strata does not have"));
            }
            match get(cfg, "dtype").and_then(Json::as_str) {
                None => return un(Un::Identity),
                Some(d) => Op::Cast(cast_target(m, d)?),
            }
        }
        "Relu" => return un(Un::Relu),
        "Relu6" => return un(Un::Relu6),
        "Sigmoid" => return un(Un::Sigmoid),
        "Silu" => return un(Un::Silu),
        "Gelu" => return un(Un::Gelu { approximate: bool_of(m, cfg, "approximate", true)? }),
        "Elu" => return un(Un::Elu(f32_of(m, cfg, "alpha", 1.0)?)),
        "Selu" => return un(Un::Selu),
        "Celu" => return un(Un::Celu(f32_of(m, cfg, "alpha", 1.0)?)),
        "LeakyRelu" => return un(Un::LeakyRelu(f32_of(m, cfg, "negative_slope", 0.2)?)),
        "Softplus" => return un(Un::Softplus),
        "Softsign" => return un(Un::Softsign),
        "HardSigmoid" => return un(Un::HardSigmoid),
        "HardSilu" => return un(Un::HardSilu),
        "HardTanh" => return un(Un::HardTanh),
        "LogSigmoid" => return un(Un::LogSigmoid),
        "Erf" => return un(Un::Erf),
        "Erfc" => return un(Un::Erfc),
        "Rsqrt" => return un(Un::Rsqrt),
        "Clip" => {
            let lo = get(cfg, "x_min").and_then(Json::as_f64).ok_or_else(|| m.cfg_err("x_min", "must be a number"))?;
            let hi = get(cfg, "x_max").and_then(Json::as_f64).ok_or_else(|| m.cfg_err("x_max", "must be a number"))?;
            return un(Un::Clip(lo as f32, hi as f32));
        }
        "Where" => Op::Where,
        "Sum" => red(Red::Sum)?,
        "Mean" => red(Red::Mean)?,
        "Max" | "Amax" | "Min" | "Amin" => {
            if get(cfg, "initial").is_some() {
                return Err(m.cfg_err("initial", "is set, which strata does not implement for max/min"));
            }
            red(if layer.class_name.contains("ax") { Red::Max } else { Red::Min })?
        }
        "Prod" => red(Red::Prod)?,
        "Any" => red(Red::Any)?,
        "All" => red(Red::All)?,
        "Std" => red(Red::Std)?,
        "Var" => red(Red::Var)?,
        "Logsumexp" => red(Red::LogSumExp)?,
        "Argmax" | "Argmin" => {
            Op::Arg { max: layer.class_name == "Argmax", axis: one_axis("axis")?, keepdims: keepdims()? }
        }
        "Cumsum" | "Cumprod" => Op::Scan { prod: layer.class_name == "Cumprod", axis: one_axis("axis")? },
        "Softmax" | "LogSoftmax" => Op::Softmax { log: layer.class_name == "LogSoftmax", axis: one_axis("axis")? },
        "SoftShrink" => return un(Un::SoftShrink(f32_of(m, cfg, "threshold", 0.5)?)),
        "HardShrink" => return un(Un::HardShrink(f32_of(m, cfg, "threshold", 0.5)?)),
        "TanhShrink" => return un(Un::TanhShrink),
        "SparsePlus" => return un(Un::SparsePlus),
        "SparseSigmoid" => return un(Un::SparseSigmoid),
        "Squareplus" => return un(Un::Squareplus(f32_of(m, cfg, "b", 4.0)?)),
        "Threshold" => {
            let t = get(cfg, "threshold")
                .and_then(Json::as_f64)
                .ok_or_else(|| m.cfg_err("threshold", "must be a number"))?;
            let d = get(cfg, "default_value")
                .and_then(Json::as_f64)
                .ok_or_else(|| m.cfg_err("default_value", "must be a number"))?;
            return un(Un::Threshold(t as f32, d as f32));
        }
        "Glu" => Op::Glu(int_of(m, cfg, "axis", -1)?),
        "Moments" => {
            if bool_of(m, cfg, "synchronized", false)? {
                return Err(m.cfg_err("synchronized", "is true; strata runs on one device"));
            }
            Op::Moments { axes: axes("axes")?.ok_or_else(|| m.cfg_err("axes", "is missing"))?, keepdims: keepdims()? }
        }
        "TopK" => {
            let k = int_of(m, cfg, "k", -1)?;
            Op::TopK(usize::try_from(k).map_err(|_| m.cfg_err("k", format!("is {k}; it must be a count")))?)
        }
        "Argsort" => Op::Argsort(int_of(m, cfg, "axis", -1)?),
        "Reshape" => Op::Reshape(axes("newshape")?.ok_or_else(|| m.cfg_err("newshape", "is missing"))?),
        "Transpose" => Op::Transpose(axes("axes")?),
        "ExpandDims" => Op::ExpandDims(axes("axis")?.ok_or_else(|| m.cfg_err("axis", "is missing"))?),
        "Squeeze" => Op::Squeeze(axes("axis")?),
        "Concatenate" => Op::Concatenate(int_of(m, cfg, "axis", 0)?),
        "Stack" => Op::Stack(int_of(m, cfg, "axis", 0)?),
        "Tile" => Op::Tile(axes("repeats")?.ok_or_else(|| m.cfg_err("repeats", "is missing"))?),
        "Repeat" => Op::Repeat {
            repeats: axes("repeats")?.ok_or_else(|| m.cfg_err("repeats", "is missing"))?,
            axis: one_axis("axis")?,
        },
        "Flip" => Op::Flip(axes("axis")?),
        "Swapaxes" => Op::Swapaxes(int_of(m, cfg, "axis1", 0)?, int_of(m, cfg, "axis2", 1)?),
        "Moveaxis" => Op::Moveaxis(
            axes("source")?.ok_or_else(|| m.cfg_err("source", "is missing"))?,
            axes("destination")?.ok_or_else(|| m.cfg_err("destination", "is missing"))?,
        ),
        "GetItem" => Op::GetItem,
        "Pad" => {
            match get(cfg, "mode").and_then(Json::as_str) {
                None | Some("constant") => {}
                Some(other) => {
                    return Err(m.cfg_err("mode", format!("is `{other}`; strata pads in `constant` mode only")));
                }
            }
            let bad = || m.cfg_err("pad_width", "must be an integer, a pair or a list of (before, after) pairs");
            let u = |v: &Json| v.as_u64().and_then(|x| usize::try_from(x).ok()).ok_or_else(bad);
            let pair = |v: &Json| -> Result<(usize, usize)> {
                match v.as_array() {
                    Some([a, b]) => Ok((u(a)?, u(b)?)),
                    Some([a]) => Ok((u(a)?, u(a)?)),
                    Some(_) => Err(bad()),
                    None => Ok((u(v)?, u(v)?)),
                }
            };
            let pw = get(cfg, "pad_width").ok_or_else(bad)?;
            let pads = match pw.as_array() {
                Some(items) if items.iter().any(|i| i.as_array().is_some()) => {
                    items.iter().map(pair).collect::<Result<Vec<_>>>()?
                }
                _ => vec![pair(pw)?],
            };
            if pads.iter().any(|&(a, b)| a > MAX_ELEMENTS || b > MAX_ELEMENTS) {
                return Err(m.cfg_err("pad_width", "is too large"));
            }
            Op::Pad(pads)
        }
        "ZerosLike" => Op::Like(Some(0.0)),
        "OnesLike" => Op::Like(Some(1.0)),
        "FullLike" => Op::Like(None),
        "Ravel" => Op::Ravel,
        "BroadcastTo" => {
            let shape = axes("shape")?.ok_or_else(|| m.cfg_err("shape", "is missing"))?;
            let shape = shape
                .iter()
                .map(|&d| usize::try_from(d).ok().filter(|&d| d <= MAX_ELEMENTS))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| m.cfg_err("shape", "must hold non-negative sizes"))?;
            Op::BroadcastTo(shape)
        }
        "Tril" | "Triu" => Op::Tri { upper: layer.class_name == "Triu", k: int_of(m, cfg, "k", 0)? },
        "Sort" => Op::Sort(int_of(m, cfg, "axis", -1)?),
        "Average" => Op::Average(one_axis("axis")?),
        "Resize" => {
            let size = crate::cfg::pair_of(m, cfg, "size", [0, 0])?;
            if size.contains(&0) || size.iter().any(|&d| d > MAX_ELEMENTS) {
                return Err(m.cfg_err("size", "must be two positive sizes"));
            }
            let bilinear = match get(cfg, "interpolation").and_then(Json::as_str) {
                None | Some("bilinear") => true,
                Some("nearest") => false,
                Some(other) => {
                    return Err(m.cfg_err(
                        "interpolation",
                        format!("is `{other}`; strata resizes with `bilinear` or `nearest` only"),
                    ));
                }
            };
            for key in ["antialias", "crop_to_aspect_ratio", "pad_to_aspect_ratio"] {
                if bool_of(m, cfg, key, false)? {
                    return Err(m.cfg_err(key, "is true, which strata does not implement for resize"));
                }
            }
            let channels_first = match get(cfg, "data_format").and_then(Json::as_str) {
                None | Some("channels_last") => false,
                Some("channels_first") => true,
                Some(other) => return Err(m.cfg_err("data_format", format!("is `{other}`"))),
            };
            Op::Resize { size, bilinear, channels_first }
        }
        "Split" => {
            let axis = int_of(m, cfg, "axis", 0)?;
            let v = get(cfg, "indices_or_sections");
            let bad = || m.cfg_err("indices_or_sections", "must be a positive count or a list of non-negative indices");
            match v {
                Some(j) if j.as_array().is_none() => {
                    let n = j.as_u64().and_then(|n| usize::try_from(n).ok()).filter(|&n| n > 0).ok_or_else(bad)?;
                    Op::Split { sections: Some(n), points: Vec::new(), axis }
                }
                Some(_) => {
                    let pts = ints_of(m, cfg, "indices_or_sections")?.unwrap_or_default();
                    let points =
                        pts.iter().map(|&p| usize::try_from(p).map_err(|_| bad())).collect::<Result<Vec<_>>>()?;
                    Op::Split { sections: None, points, axis }
                }
                None => return Err(bad()),
            }
        }
        "Unstack" => {
            let num = match get(cfg, "num") {
                None => None,
                Some(n) => Some(n.as_usize().ok_or_else(|| m.cfg_err("num", "must be a count"))?),
            };
            Op::Unstack { num, axis: int_of(m, cfg, "axis", 0)? }
        }
        "Norm" => {
            let ord = match get(cfg, "ord") {
                None => None,
                Some(Json::String(s)) if s == "fro" => Some(NormOrd::Fro),
                Some(v) => Some(NormOrd::P(
                    v.as_f64()
                        .ok_or_else(|| m.cfg_err("ord", "must be a number, `fro` or null (nuc is not implemented)"))?
                        as f32,
                )),
            };
            Op::Norm { ord, axes: axes("axis")?, keepdims: keepdims()? }
        }
        "Normalize" => {
            let order = int_of(m, cfg, "order", 2)?;
            if order < 1 {
                return Err(m.cfg_err("order", format!("is {order}; it must be an integer >= 1")));
            }
            Op::Normalize {
                axis: one_axis("axis")?.unwrap_or(-1),
                order: order as f32,
                epsilon: f32_of(m, cfg, "epsilon", 1e-7)?,
            }
        }
        "Take" => Op::Take(one_axis("axis")?),
        "Matmul" => Op::Matmul,
        "Einsum" => Op::Einsum(
            get(cfg, "subscripts")
                .and_then(Json::as_str)
                .ok_or_else(|| m.cfg_err("subscripts", "must be a string"))?
                .to_string(),
        ),
        "Cast" => {
            let d =
                get(cfg, "dtype").and_then(Json::as_str).ok_or_else(|| m.cfg_err("dtype", "must be a dtype name"))?;
            Op::Cast(cast_target(m, d)?)
        }
        "OneHot" => {
            if bool_of(m, cfg, "sparse", false)? {
                return Err(m.cfg_err("sparse", "is true; strata has no sparse tensors"));
            }
            let n = int_of(m, cfg, "num_classes", -1)?;
            let classes = usize::try_from(n)
                .ok()
                .filter(|&n| n > 0 && n <= MAX_ELEMENTS)
                .ok_or_else(|| m.cfg_err("num_classes", format!("is {n}; it must be a positive integer")))?;
            Op::OneHot { classes, axis: int_of(m, cfg, "axis", -1)? }
        }
        _ => return Ok(None),
    };
    Ok(Some(op))
}

fn cast_target(m: &Meta, dtype: &str) -> Result<CastTo> {
    Ok(match dtype {
        "float32" | "float64" => CastTo::Keep,
        "float16" => CastTo::Half(DType::F16),
        "bfloat16" => CastTo::Half(DType::BF16),
        "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "uint64" => CastTo::Int,
        "bool" => CastTo::Bool,
        other => return Err(m.cfg_err("dtype", format!("is `{other}`, a dtype strata cannot cast to"))),
    })
}

/// One argument of an op call: a tensor, a constant, or a piece of an indexing key.
#[derive(Debug, Clone)]
enum Val {
    T(Tensor),
    Num(f64),
    Null,
    List(Vec<Val>),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Ellipsis,
    Str(String),
}

/// A call's positional values and its keyword values by name.
type CallVals = (Vec<Val>, Vec<(String, Val)>);

/// A Keras operation node.
struct OpLayer {
    meta: Meta,
    op: Op,
}

/// Reads the call's arguments (JSON as written) into values, taking the tensors from `tensors`
/// in order where the `__keras_tensor__` markers stand.
fn read_val(m: &Meta, v: &Json, tensors: &mut std::slice::Iter<'_, Tensor>) -> Result<Val> {
    Ok(match v {
        Json::Null => Val::Null,
        Json::Bool(b) => Val::Num(if *b { 1.0 } else { 0.0 }),
        Json::Number(_) => Val::Num(v.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Val::Str(s.clone()),
        Json::Array(items) => Val::List(items.iter().map(|i| read_val(m, i, tensors)).collect::<Result<_>>()?),
        Json::Object(o) => {
            let class = o.get("class_name").and_then(Json::as_str).unwrap_or("");
            let inner = o.get("config").unwrap_or(&Json::Null);
            match class {
                "__keras_tensor__" => Val::T(
                    tensors
                        .next()
                        .cloned()
                        .ok_or_else(|| m.cfg_err("args", "holds more tensors than the call received"))?,
                ),
                "__slice__" => {
                    let part = |k: &str| -> Result<Option<i64>> {
                        match inner.get(k) {
                            None | Some(Json::Null) => Ok(None),
                            Some(x) => x
                                .as_i64()
                                .map(Some)
                                .ok_or_else(|| m.cfg_err("args", format!("has a slice whose `{k}` is not an integer"))),
                        }
                    };
                    Val::Slice(part("start")?, part("stop")?, part("step")?)
                }
                "__ellipsis__" => Val::Ellipsis,
                "__numpy__" | "__tensor__" => Val::T(const_tensor(m, inner.get("value").unwrap_or(&Json::Null))?),
                other => {
                    return Err(
                        m.cfg_err("args", format!("holds a `{other}` object, which strata cannot pass to an op"))
                    );
                }
            }
        }
    })
}

/// A tensor from a nested list of numbers (`__numpy__` values, python list constants).
fn const_tensor(m: &Meta, v: &Json) -> Result<Tensor> {
    fn walk(v: &Json, depth: usize, shape: &mut Vec<usize>, data: &mut Vec<f32>) -> bool {
        match v {
            Json::Array(items) => {
                match shape.get(depth) {
                    Some(&n) if n != items.len() => return false,
                    Some(_) => {}
                    None if shape.len() == depth => shape.push(items.len()),
                    None => return false,
                }
                items.iter().all(|i| walk(i, depth + 1, shape, data))
            }
            Json::Number(_) => {
                shape.len() == depth && {
                    data.push(v.as_f64().unwrap_or(f64::NAN) as f32);
                    true
                }
            }
            Json::Bool(b) => {
                shape.len() == depth && {
                    data.push(f32::from(u8::from(*b)));
                    true
                }
            }
            _ => false,
        }
    }
    let mut shape = Vec::new();
    let mut data = Vec::new();
    if !walk(v, 0, &mut shape, &mut data) {
        return Err(m.cfg_err("args", "holds a constant array that is not a rectangular list of numbers"));
    }
    m.t(Tensor::from_vec(&shape, data))
}

fn val_list(m: &Meta, v: &Json, tensors: &mut std::slice::Iter<'_, Tensor>) -> Result<Vec<Val>> {
    match read_val(m, v, tensors)? {
        Val::List(items) => Ok(items),
        Val::Null => Ok(Vec::new()),
        _ => Err(m.cfg_err("args", "is not a list")),
    }
}

impl OpLayer {
    /// The call's values: positional arguments then keyword arguments by name.
    fn values(&self, inputs: &[Tensor], args: &CallArgs<'_>) -> Result<CallVals> {
        let m = &self.meta;
        let mut it = inputs.iter();
        let pos = if args.args.is_null() {
            // no call structure recorded (built in Rust): the tensors are the arguments
            inputs.iter().cloned().map(Val::T).collect()
        } else {
            val_list(m, args.args, &mut it)?
        };
        if it.next().is_some() {
            return Err(m.cfg_err("args", "holds fewer tensors than the call received"));
        }
        let mut kw = Vec::new();
        if let Some(o) = args.kwargs.as_object() {
            for (k, v) in o.iter() {
                let val = match args.kw(k) {
                    Some(t) => Val::T(t.clone()),
                    None => read_val(m, v, &mut [].iter())?,
                };
                kw.push((k.to_string(), val));
            }
        }
        Ok((pos, kw))
    }

    fn tensor(&self, v: &Val, what: &str) -> Result<Tensor> {
        match v {
            Val::T(t) => Ok(t.clone()),
            Val::Num(x) => Ok(Tensor::scalar(*x as f32)),
            Val::List(items) => {
                let ts = items.iter().map(|i| self.tensor(i, what)).collect::<Result<Vec<_>>>()?;
                let refs: Vec<&Tensor> = ts.iter().collect();
                if refs.is_empty() {
                    return Err(self.meta.cfg_err("args", format!("passes an empty list as `{what}`")));
                }
                self.meta.t(strata_tensor::stack(&refs, 0))
            }
            Val::Str(s) => Err(self.meta.cfg_err("args", format!("passes the string `{s}` as `{what}`, not a tensor"))),
            _ => Err(self.meta.cfg_err("args", format!("passes {v:?} as `{what}`, which is not a tensor or a number"))),
        }
    }

    /// Runs the op, which has several outputs for `split`/`unstack`.
    fn run_all(&self, inputs: &[Tensor], args: &CallArgs<'_>) -> Result<Vec<Tensor>> {
        let m = &self.meta;
        match &self.op {
            Op::Split { sections, points, axis } => {
                let x = self.tensor(self.values(inputs, args)?.0.first().unwrap_or(&Val::Null), "x")?;
                let a = norm_axis(m, *axis, x.rank())?;
                let dim = x.shape().get(a).copied().unwrap_or(0);
                let bounds: Vec<usize> = match sections {
                    Some(n) => {
                        if dim % n != 0 {
                            return Err(m.cfg_err(
                                "indices_or_sections",
                                format!("is {n}, which does not divide the axis of size {dim} evenly"),
                            ));
                        }
                        (0..=*n).map(|i| i * (dim / n)).collect()
                    }
                    None => {
                        let mut b = vec![0];
                        b.extend(points.iter().map(|&p| p.min(dim)));
                        b.push(dim);
                        b
                    }
                };
                bounds
                    .windows(2)
                    .map(|w| {
                        let (s, e) = (w[0], w[1].max(w[0]));
                        m.t(x.slice_axis(a as isize, s, e))
                    })
                    .collect()
            }
            Op::Unstack { num, axis } => {
                let x = self.tensor(self.values(inputs, args)?.0.first().unwrap_or(&Val::Null), "x")?;
                let a = norm_axis(m, *axis, x.rank())?;
                let dim = x.shape().get(a).copied().unwrap_or(0);
                if num.is_some_and(|n| n != dim) {
                    return Err(m.cfg_err("num", format!("does not match the axis size {dim}")));
                }
                let mut shape = x.shape().to_vec();
                shape.remove(a);
                (0..dim).map(|i| m.t(m.t(x.slice_axis(a as isize, i, i + 1))?.reshape(&shape))).collect()
            }
            Op::Moments { axes, keepdims } => {
                let x = self.tensor(self.values(inputs, args)?.0.first().unwrap_or(&Val::Null), "x")?;
                let mean = m.t(x.mean(Some(axes), true))?;
                let var = m.t(m.t(x.sub(&mean))?.square().mean(Some(axes), *keepdims))?;
                let mean = if *keepdims { mean } else { m.t(mean.reshape(var.shape()))? };
                Ok(vec![mean, var])
            }
            Op::TopK(k) => {
                let x = self.tensor(self.values(inputs, args)?.0.first().unwrap_or(&Val::Null), "x")?;
                let last = x.shape().last().copied().unwrap_or(0);
                if *k > last || x.rank() == 0 {
                    return Err(m.cfg_err("k", format!("is {k}, more than the last axis of shape {:?}", x.shape())));
                }
                let (vals, idx) = sort_with_indices(m, &x, -1, true)?;
                let r = x.rank() as isize;
                Ok(vec![m.t(vals.slice_axis(r - 1, 0, *k))?, m.t(idx.slice_axis(r - 1, 0, *k))?])
            }
            _ => Ok(vec![self.run(inputs, args)?]),
        }
    }

    fn run(&self, inputs: &[Tensor], args: &CallArgs<'_>) -> Result<Tensor> {
        let m = &self.meta;
        let (pos, kw) = self.values(inputs, args)?;
        // argument `i` of the call, also accepted by keyword `name`
        let arg = |i: usize, name: &str| -> Option<&Val> {
            pos.get(i).or_else(|| kw.iter().find(|(k, _)| k == name).map(|(_, v)| v))
        };
        let need = |i: usize, name: &str| -> Result<&Val> {
            arg(i, name).ok_or_else(|| m.cfg_err("args", format!("lacks the op's argument `{name}`")))
        };
        let x = || -> Result<Tensor> { self.tensor(need(0, "x")?, "x") };
        match &self.op {
            Op::Binary(b) => {
                let a = self.tensor(need(0, "x1")?, "x1")?;
                let c = self.tensor(need(1, "x2")?, "x2")?;
                binary(m, *b, &a, &c)
            }
            Op::Unary(u) => Ok(unary(*u, &x()?)),
            Op::Reduce { red, axes, keepdims } => reduce(m, &x()?, *red, axes.as_deref(), *keepdims),
            Op::Arg { max, axis, keepdims } => {
                let x = x()?;
                let (x, axis) = match axis {
                    Some(a) => (x, *a),
                    None => (m.t(x.reshape(&[x.len()]))?, 0),
                };
                let y = if *max { m.t(x.argmax(axis))? } else { m.t(x.neg().argmax(axis))? };
                if *keepdims && x.rank() > 0 {
                    let a = norm_axis(m, axis, x.rank())?;
                    m.t(y.unsqueeze(a as isize))
                } else {
                    Ok(y)
                }
            }
            Op::Scan { prod, axis } => {
                let x = x()?;
                let (x, axis) = match axis {
                    Some(a) => (x, *a),
                    None => (m.t(x.reshape(&[x.len()]))?, 0),
                };
                scan(m, &x, axis, *prod)
            }
            Op::Softmax { log, axis } => {
                let x = x()?;
                let (flat, axis) = match axis {
                    Some(a) => (x.clone(), *a),
                    None => (m.t(x.reshape(&[x.len()]))?, 0),
                };
                let y = if *log { m.t(flat.log_softmax(axis))? } else { m.t(flat.softmax(axis))? };
                m.t(y.reshape(x.shape()))
            }
            Op::Glu(axis) => {
                let x = x()?;
                let a = norm_axis(m, *axis, x.rank())?;
                let d = x.shape().get(a).copied().unwrap_or(0);
                if d % 2 != 0 {
                    return Err(m.cfg_err("axis", format!("has size {d}; glu needs an even size")));
                }
                let x1 = m.t(x.slice_axis(a as isize, 0, d / 2))?;
                let x2 = m.t(x.slice_axis(a as isize, d / 2, d))?;
                m.t(x1.mul(&x2.sigmoid()))
            }
            Op::Moments { .. } | Op::TopK(_) => Err(m.cfg_err("args", "has several outputs")),
            Op::Argsort(axis) => Ok(sort_with_indices(m, &x()?, *axis, false)?.1),
            Op::Reshape(shape) => m.t(x()?.reshape_infer(shape)),
            Op::Transpose(axes) => {
                let x = x()?;
                let perm = match axes {
                    None => (0..x.rank()).rev().collect(),
                    Some(a) => a.iter().map(|&a| norm_axis(m, a, x.rank())).collect::<Result<Vec<_>>>()?,
                };
                m.t(x.permute(&perm))
            }
            Op::ExpandDims(axes) => {
                let x = x()?;
                let rank = x.rank() + axes.len();
                let mut pos = axes.iter().map(|&a| norm_axis(m, a, rank)).collect::<Result<Vec<_>>>()?;
                pos.sort_unstable();
                pos.dedup();
                if pos.len() != axes.len() {
                    return Err(m.cfg_err("axis", "repeats an axis"));
                }
                let mut src = x.shape().iter();
                let shape: Vec<usize> =
                    (0..rank).map(|i| if pos.contains(&i) { 1 } else { src.next().copied().unwrap_or(1) }).collect();
                m.t(x.reshape(&shape))
            }
            Op::Squeeze(axes) => {
                let x = x()?;
                let drop: Vec<usize> = match axes {
                    None => (0..x.rank()).filter(|&i| x.shape().get(i) == Some(&1)).collect(),
                    Some(a) => {
                        let d = a.iter().map(|&a| norm_axis(m, a, x.rank())).collect::<Result<Vec<_>>>()?;
                        if let Some(&bad) = d.iter().find(|&&i| x.shape().get(i) != Some(&1)) {
                            return Err(m.cfg_err(
                                "axis",
                                format!(
                                    "names axis {bad} of an input of shape {:?}, which is not of size 1",
                                    x.shape()
                                ),
                            ));
                        }
                        d
                    }
                };
                let shape: Vec<usize> =
                    x.shape().iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, &d)| d).collect();
                m.t(x.reshape(&shape))
            }
            Op::Concatenate(axis) | Op::Stack(axis) => {
                let list = match need(0, "xs")? {
                    Val::List(items) => items.iter().map(|v| self.tensor(v, "xs")).collect::<Result<Vec<_>>>()?,
                    other => vec![self.tensor(other, "xs")?],
                };
                let refs: Vec<&Tensor> = list.iter().collect();
                if refs.is_empty() {
                    return Err(m.cfg_err("args", "passes no tensors to join"));
                }
                if matches!(self.op, Op::Stack(_)) {
                    m.t(strata_tensor::stack(&refs, *axis))
                } else {
                    m.t(strata_tensor::concat(&refs, *axis))
                }
            }
            Op::Tile(reps) => tile(m, &x()?, reps),
            Op::Repeat { repeats, axis } => repeat(m, &x()?, repeats, *axis),
            Op::Flip(axes) => {
                let x = x()?;
                let flip: Vec<usize> = match axes {
                    None => (0..x.rank()).collect(),
                    Some(a) => a.iter().map(|&a| norm_axis(m, a, x.rank())).collect::<Result<Vec<_>>>()?,
                };
                let idx: Vec<Vec<usize>> = x
                    .shape()
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| if flip.contains(&i) { (0..d).rev().collect() } else { (0..d).collect() })
                    .collect();
                gather(m, &x, &idx)
            }
            Op::Swapaxes(a, b) => {
                let x = x()?;
                let (a, b) = (norm_axis(m, *a, x.rank())?, norm_axis(m, *b, x.rank())?);
                let mut perm: Vec<usize> = (0..x.rank()).collect();
                perm.swap(a, b);
                m.t(x.permute(&perm))
            }
            Op::Moveaxis(src, dst) => {
                let x = x()?;
                let r = x.rank();
                if src.len() != dst.len() {
                    return Err(m.cfg_err("source", "and `destination` differ in length"));
                }
                let s = src.iter().map(|&a| norm_axis(m, a, r)).collect::<Result<Vec<_>>>()?;
                let d = dst.iter().map(|&a| norm_axis(m, a, r)).collect::<Result<Vec<_>>>()?;
                let mut perm: Vec<usize> = (0..r).filter(|i| !s.contains(i)).collect();
                let mut pairs: Vec<(usize, usize)> = d.into_iter().zip(s).collect();
                pairs.sort_unstable();
                for (d, s) in pairs {
                    if d > perm.len() {
                        return Err(m.cfg_err("destination", "names an axis out of range"));
                    }
                    perm.insert(d, s);
                }
                m.t(x.permute(&perm))
            }
            Op::GetItem => get_item(m, &x()?, need(1, "key")?),
            Op::Pad(pads) => {
                let x = x()?;
                let value = match arg(1, "constant_values") {
                    None | Some(Val::Null) => 0.0,
                    Some(Val::Num(v)) => *v as f32,
                    Some(_) => return Err(m.cfg_err("constant_values", "must be one number")),
                };
                let pads = match pads.as_slice() {
                    [p] => vec![*p; x.rank()],
                    p => p.to_vec(),
                };
                let total = x.shape().iter().zip(&pads).try_fold(1usize, |n, (&d, &(b, a))| {
                    d.checked_add(b).and_then(|d| d.checked_add(a)).and_then(|d| n.checked_mul(d))
                });
                if total.is_none_or(|n| n > MAX_ELEMENTS) {
                    return Err(m.cfg_err("pad_width", "would make the padded tensor too large"));
                }
                m.t(x.pad(&pads, value))
            }
            Op::Like(v) => {
                let x = x()?;
                let v = match v {
                    Some(v) => *v,
                    None => match need(1, "fill_value")? {
                        Val::Num(v) => *v as f32,
                        _ => return Err(m.cfg_err("args", "passes a `fill_value` that is not one number")),
                    },
                };
                m.t(Tensor::full(x.shape(), v))
            }
            Op::Ravel => {
                let x = x()?;
                m.t(x.reshape(&[x.len()]))
            }
            Op::BroadcastTo(shape) => {
                if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_none_or(|n| n > MAX_ELEMENTS) {
                    return Err(m.cfg_err("shape", format!("{shape:?} is too large")));
                }
                m.t(x()?.broadcast_to(shape))
            }
            Op::Tri { upper, k } => {
                let x = x()?;
                let r = x.rank();
                if r < 2 {
                    return Err(m.cfg_err(
                        "args",
                        format!("passes a tensor of shape {:?}; tril/triu need rank >= 2", x.shape()),
                    ));
                }
                let (rows, cols) = (x.shape()[r - 2], x.shape()[r - 1]);
                let data = x
                    .as_slice()
                    .iter()
                    .enumerate()
                    .map(|(n, &v)| {
                        let (i, j) = (((n / cols.max(1)) % rows.max(1)) as isize, (n % cols.max(1)) as isize);
                        let keep = if *upper { j >= i + k } else { j <= i + k };
                        if keep { v } else { 0.0 }
                    })
                    .collect();
                let y = m.t(Tensor::from_vec(x.shape(), data))?;
                // the gradient is the output gradient masked the same way
                let kept: Vec<usize> = y
                    .as_slice()
                    .iter()
                    .enumerate()
                    .map(|(n, _)| n)
                    .filter(|&n| {
                        let (i, j) = (((n / cols.max(1)) % rows.max(1)) as isize, (n % cols.max(1)) as isize);
                        if *upper { j >= i + k } else { j <= i + k }
                    })
                    .collect();
                m.t(crate::grad::masked("tri", &x, y, kept))
            }
            Op::Sort(axis) => sort(m, &x()?, *axis),
            Op::Resize { size, bilinear, channels_first } => {
                let x = x()?;
                let r = x.rank();
                if r != 3 && r != 4 {
                    return Err(
                        m.cfg_err("args", format!("passes images of shape {:?}; resize takes rank 3 or 4", x.shape()))
                    );
                }
                let x = if r == 3 { m.t(x.unsqueeze(0))? } else { x };
                let x = if *channels_first { m.t(x.permute(&[0, 2, 3, 1]))? } else { x };
                let y = resize(m, &x, *size, *bilinear)?;
                let y = if *channels_first { m.t(y.permute(&[0, 3, 1, 2]))? } else { y };
                if r == 3 {
                    let s = y.shape().get(1..).unwrap_or(&[]).to_vec();
                    m.t(y.reshape(&s))
                } else {
                    Ok(y)
                }
            }
            Op::Average(axis) => {
                let x = x()?;
                let w = match arg(1, "weights") {
                    None | Some(Val::Null) => None,
                    Some(v) => Some(self.tensor(v, "weights")?),
                };
                let ax = axis.map(|a| [a]);
                match (w, ax) {
                    (None, ax) => m.t(x.mean(ax.as_ref().map(|a| &a[..]), false)),
                    (Some(w), Some([a])) if w.rank() != x.rank() => {
                        // 1-D weights along `axis`
                        let ax = norm_axis(m, a, x.rank())?;
                        if w.rank() != 1 || x.shape().get(ax) != Some(&w.len()) {
                            return Err(m.cfg_err(
                                "args",
                                format!(
                                    "passes weights of shape {:?} for axis {a} of shape {:?}",
                                    w.shape(),
                                    x.shape()
                                ),
                            ));
                        }
                        let mut shape = vec![1usize; x.rank()];
                        shape[ax] = w.len();
                        let wb = m.t(w.reshape(&shape))?;
                        let num = m.t(m.t(x.mul(&wb))?.sum(Some(&[a]), false))?;
                        m.t(num.div(&m.t(w.sum(None, false))?))
                    }
                    (Some(w), ax) => {
                        let ax = ax.as_ref().map(|a| &a[..]);
                        let num = m.t(m.t(x.mul(&w))?.sum(ax, false))?;
                        m.t(num.div(&m.t(w.sum(ax, false))?))
                    }
                }
            }
            Op::Split { .. } | Op::Unstack { .. } => Err(m.cfg_err("args", "has several outputs")),
            Op::Norm { ord, axes, keepdims } => norm(m, &x()?, *ord, axes.as_deref(), *keepdims),
            Op::Normalize { axis, order, epsilon } => {
                let x = x()?;
                let x = if x.rank() == 0 { m.t(x.reshape(&[1]))? } else { x };
                let ax = [*axis];
                if *order == 2.0 {
                    let inv = m.t(x.square().sum(Some(&ax), true))?.rsqrt();
                    m.t(x.mul(&m.t(inv.minimum(&Tensor::scalar(1.0 / epsilon)))?))
                } else {
                    let n = norm(m, &x, Some(NormOrd::P(*order)), Some(&ax), true)?;
                    m.t(x.div(&m.t(n.maximum(&Tensor::scalar(*epsilon)))?))
                }
            }
            Op::Take(axis) => {
                let x = self.tensor(need(0, "x")?, "x")?;
                let idx = self.tensor(need(1, "indices")?, "indices")?;
                let (x, axis) = match axis {
                    Some(a) => (x, *a),
                    None => (m.t(x.reshape(&[x.len()]))?, 0),
                };
                let a = norm_axis(m, axis, x.rank())?;
                let dim = x.shape().get(a).copied().unwrap_or(0) as f32;
                let idx = m.t(Tensor::from_vec(
                    idx.shape(),
                    idx.as_slice().iter().map(|&i| if i < 0.0 { i + dim } else { i }).collect(),
                ))?;
                m.t(x.take(&idx, axis))
            }
            Op::Matmul => {
                let a = self.tensor(need(0, "x1")?, "x1")?;
                let b = self.tensor(need(1, "x2")?, "x2")?;
                matmul(m, &a, &b)
            }
            Op::Einsum(spec) => {
                let ops = pos.iter().map(|v| self.tensor(v, "operands")).collect::<Result<Vec<_>>>()?;
                einsum(m, spec, &ops)
            }
            Op::Where => {
                let c = self.tensor(need(0, "condition")?, "condition")?;
                match (arg(1, "x1"), arg(2, "x2")) {
                    (Some(a), Some(b)) if !matches!(a, Val::Null) && !matches!(b, Val::Null) => {
                        let (a, b) = (self.tensor(a, "x1")?, self.tensor(b, "x2")?);
                        m.t(strata_tensor::select(&c, &a, &b))
                    }
                    _ => Err(m.cfg_err(
                        "args",
                        "calls `where` with only a condition (nonzero indices), which strata does not implement",
                    )),
                }
            }
            Op::Cast(to) => Ok(cast(&x()?, *to)),
            Op::OneHot { classes, axis } => one_hot(m, &x()?, *classes, *axis),
        }
    }
}

impl Layer for OpLayer {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let call = CallArgs { kw_tensors: &[], args: &Json::Null, kwargs: &Json::Null, training };
        self.run_all(inputs, &call)
    }
    /// Operations carry no masks: the outputs are unmasked, as in Keras.
    fn forward_masked(&self, inputs: &[Tensor], _masks: &[Option<Tensor>], training: bool) -> Result<Masked> {
        let outs = self.forward(inputs, training)?;
        let masks = vec![None; outs.len()];
        Ok((outs, masks))
    }
    fn call(&self, inputs: &[Tensor], _masks: &[Option<Tensor>], args: &CallArgs<'_>) -> Result<Masked> {
        let outs = self.run_all(inputs, args)?;
        let masks = vec![None; outs.len()];
        Ok((outs, masks))
    }
}

fn norm_axis(m: &Meta, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(m.cfg_err("axis", format!("is {axis}, out of range for a rank-{rank} tensor")));
    }
    Ok(a as usize)
}

fn b2f(b: bool) -> f32 {
    f32::from(u8::from(b))
}

fn binary(m: &Meta, op: Bin, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let f: fn(f32, f32) -> f32 = match op {
        Bin::Add => return m.t(a.add(b)),
        Bin::Sub => return m.t(a.sub(b)),
        Bin::Mul => return m.t(a.mul(b)),
        Bin::Div => return m.t(a.div(b)),
        Bin::Pow => return m.t(a.pow(b)),
        Bin::Max => return m.t(a.maximum(b)),
        Bin::Min => return m.t(a.minimum(b)),
        Bin::Eq => return m.t(a.equal(b)),
        Bin::Ne => return m.t(a.not_equal(b)),
        Bin::Gt => return m.t(a.greater(b)),
        Bin::Ge => return m.t(a.greater_equal(b)),
        Bin::Lt => return m.t(a.less(b)),
        Bin::Le => return m.t(a.less_equal(b)),
        Bin::DivNoNan => |p, q| if q == 0.0 { 0.0 } else { p / q },
        Bin::FloorDiv => |p, q| (p / q).floor(),
        // floor modulo: the result takes the divisor's sign (TensorFlow `floormod`, Python `%`)
        Bin::Mod => |p, q| {
            let r = p % q;
            if r != 0.0 && ((r < 0.0) != (q < 0.0)) { r + q } else { r }
        },
        Bin::Atan2 => f32::atan2,
        Bin::And => |p, q| b2f(p != 0.0 && q != 0.0),
        Bin::Or => |p, q| b2f(p != 0.0 || q != 0.0),
        Bin::Xor => |p, q| b2f((p != 0.0) != (q != 0.0)),
    };
    let shape = m.t(strata_tensor::shape::broadcast_shapes("op", a.shape(), b.shape()))?;
    let (x, y) = (m.t(a.broadcast_to(&shape))?, m.t(b.broadcast_to(&shape))?);
    let data = x.as_slice().iter().zip(y.as_slice()).map(|(&p, &q)| f(p, q)).collect();
    let out = m.t(Tensor::from_vec(&shape, data))?;
    // TensorFlow's gradients; floor division and the logical ops are piecewise constant (no gradient)
    let df: fn(f32, f32, f32) -> (f32, f32) = match op {
        Bin::Mod => |p, q, _| (1.0, -(p / q).floor()),
        Bin::DivNoNan => |p, q, _| if q == 0.0 { (0.0, 0.0) } else { (1.0 / q, -p / (q * q)) },
        Bin::Atan2 => |p, q, _| {
            let r = p * p + q * q;
            (q / r, -p / r)
        },
        _ => return Ok(out),
    };
    m.t(crate::grad::binary("op_binary", a, b, out, df))
}

/// Round half to even at `d` decimals (TensorFlow / numpy `round`).
fn round_dec(x: f32, d: i32) -> f32 {
    if d == 0 {
        return x.round_ties_even();
    }
    let s = 10f32.powi(d);
    (x * s).round_ties_even() / s
}

fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `erfc` for `x >= 0` in f64 (Chebyshev fit, fractional error below 1.2e-7).
fn erfc_pos(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -x * x - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    t * poly.exp()
}

/// The error function in f64: a Taylor series near 0, `1 - erfc` elsewhere.
fn erf64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    if a < 0.5 {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        let x2 = x * x;
        let (mut term, mut sum) = (x, x);
        for n in 1..30 {
            term *= -x2 / n as f64;
            let add = term / (2 * n + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 {
                break;
            }
        }
        return sum * std::f64::consts::FRAC_2_SQRT_PI;
    }
    let r = 1.0 - erfc_pos(a);
    if x < 0.0 { -r } else { r }
}

fn erfc64(x: f64) -> f64 {
    if x >= 0.5 { erfc_pos(x) } else { 1.0 - erf64(x) }
}

fn un_apply(op: Un, x: f32) -> f32 {
    const SELU_ALPHA: f32 = 1.673_263_2;
    const SELU_SCALE: f32 = 1.050_701;
    match op {
        Un::Abs => x.abs(),
        Un::Neg => -x,
        Un::Sqrt => x.sqrt(),
        Un::Square => x * x,
        Un::Exp => x.exp(),
        Un::Exp2 => x.exp2(),
        Un::Log => x.ln(),
        Un::Log2 => x.log2(),
        Un::Log10 => x.log10(),
        Un::Log1p => x.ln_1p(),
        Un::Expm1 => x.exp_m1(),
        Un::Sin => x.sin(),
        Un::Cos => x.cos(),
        Un::Tan => x.tan(),
        Un::Tanh => x.tanh(),
        Un::Sinh => x.sinh(),
        Un::Cosh => x.cosh(),
        Un::Asin => x.asin(),
        Un::Acos => x.acos(),
        Un::Atan => x.atan(),
        Un::Asinh => x.asinh(),
        Un::Acosh => x.acosh(),
        Un::Atanh => x.atanh(),
        Un::Sign => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        }
        Un::Floor => x.floor(),
        Un::Ceil => x.ceil(),
        Un::Trunc => x.trunc(),
        Un::Round(d) => round_dec(x, d),
        Un::Recip => 1.0 / x,
        Un::Not => b2f(x == 0.0),
        Un::IsNan => b2f(x.is_nan()),
        Un::IsInf => b2f(x.is_infinite()),
        Un::IsFinite => b2f(x.is_finite()),
        Un::Identity => x,
        Un::Relu => {
            if x > 0.0 || x.is_nan() {
                x
            } else {
                0.0
            }
        }
        Un::Relu6 => x.clamp(0.0, 6.0),
        Un::Sigmoid => sigmoid(x),
        Un::Silu => x * sigmoid(x),
        Un::Gelu { approximate: true } => 0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh()),
        Un::Gelu { approximate: false } => {
            (0.5 * f64::from(x) * (1.0 + erf64(f64::from(x) * std::f64::consts::FRAC_1_SQRT_2))) as f32
        }
        // Keras: `tf.nn.elu(x)`, scaled by alpha on the negative side
        Un::Elu(a) => {
            if x > 0.0 {
                x
            } else {
                a * x.exp_m1()
            }
        }
        Un::Selu => {
            if x > 0.0 {
                SELU_SCALE * x
            } else {
                SELU_SCALE * SELU_ALPHA * x.exp_m1()
            }
        }
        Un::Celu(a) => x.max(0.0) + a * (x.min(0.0) / a).exp_m1(),
        Un::LeakyRelu(a) => {
            if x > 0.0 {
                x
            } else {
                a * x
            }
        }
        Un::Softplus => softplus(x),
        Un::Softsign => x / (1.0 + x.abs()),
        Un::HardSigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
        Un::HardSilu => x * ((x + 3.0).clamp(0.0, 6.0) / 6.0),
        Un::HardTanh => x.clamp(-1.0, 1.0),
        Un::LogSigmoid => -softplus(-x),
        Un::Erf => erf64(f64::from(x)) as f32,
        Un::Erfc => erfc64(f64::from(x)) as f32,
        Un::Rsqrt => 1.0 / x.sqrt(),
        Un::Clip(lo, hi) => x.max(lo).min(hi),
        Un::SoftShrink(t) => {
            if x > t {
                x - t
            } else if x < -t {
                x + t
            } else {
                0.0
            }
        }
        Un::HardShrink(t) => {
            if x.abs() > t {
                x
            } else {
                0.0
            }
        }
        Un::TanhShrink => x - x.tanh(),
        Un::SparsePlus => {
            if x <= -1.0 {
                0.0
            } else if x < 1.0 {
                0.25 * (x + 1.0).powi(2)
            } else {
                x
            }
        }
        Un::SparseSigmoid => {
            if x <= -1.0 {
                0.0
            } else if x >= 1.0 {
                1.0
            } else {
                0.5 * (x + 1.0)
            }
        }
        Un::Squareplus(b) => (x + (x * x + b).sqrt()) / 2.0,
        Un::Threshold(t, d) => {
            if x > t {
                x
            } else {
                d
            }
        }
    }
}

/// `dy/dx` of `op` at input `x` with output `y`, as TensorFlow differentiates it; `None` for ops that are
/// piecewise constant (sign, floor, comparisons ...), whose result is left untracked.
fn un_grad(op: Un, x: f32, y: f32) -> Option<f32> {
    const SELU_ALPHA: f32 = 1.673_263_2;
    const SELU_SCALE: f32 = 1.050_701;
    let step = |b: bool| b2f(b);
    Some(match op {
        Un::Abs => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        Un::Neg => -1.0,
        Un::Sqrt => 0.5 / y,
        Un::Square => 2.0 * x,
        Un::Exp => y,
        Un::Exp2 => y * std::f32::consts::LN_2,
        Un::Log => 1.0 / x,
        Un::Log2 => 1.0 / (x * std::f32::consts::LN_2),
        Un::Log10 => 1.0 / (x * std::f32::consts::LN_10),
        Un::Log1p => 1.0 / (1.0 + x),
        Un::Expm1 => x.exp(),
        Un::Sin => x.cos(),
        Un::Cos => -x.sin(),
        Un::Tan => {
            let c = x.cos();
            1.0 / (c * c)
        }
        Un::Tanh => 1.0 - y * y,
        Un::Sinh => x.cosh(),
        Un::Cosh => x.sinh(),
        Un::Asin => 1.0 / (1.0 - x * x).sqrt(),
        Un::Acos => -1.0 / (1.0 - x * x).sqrt(),
        Un::Atan => 1.0 / (1.0 + x * x),
        Un::Asinh => 1.0 / y.cosh(),
        Un::Acosh => 1.0 / y.sinh(),
        Un::Atanh => 1.0 / (1.0 - x * x),
        Un::Sign | Un::Floor | Un::Ceil | Un::Trunc | Un::Round(_) | Un::Not | Un::IsNan | Un::IsInf | Un::IsFinite => {
            return None;
        }
        Un::Recip => -y * y,
        Un::Identity => 1.0,
        Un::Relu => step(x > 0.0),
        Un::Relu6 => step(x > 0.0 && x < 6.0),
        Un::Sigmoid => y * (1.0 - y),
        Un::Silu => {
            let s = sigmoid(x);
            s * (1.0 + x * (1.0 - s))
        }
        Un::Gelu { approximate: true } => {
            const C: f32 = 0.797_884_6;
            let t = (C * (x + 0.044_715 * x * x * x)).tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * 0.044_715 * x * x)
        }
        Un::Gelu { approximate: false } => {
            let xd = f64::from(x);
            let cdf = 0.5 * (1.0 + erf64(xd * std::f64::consts::FRAC_1_SQRT_2));
            let pdf = (-0.5 * xd * xd).exp() * 0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2;
            (cdf + xd * pdf) as f32
        }
        Un::Elu(a) => {
            if x > 0.0 {
                1.0
            } else {
                a * x.exp()
            }
        }
        Un::Selu => {
            if x > 0.0 {
                SELU_SCALE
            } else {
                SELU_SCALE * SELU_ALPHA * x.exp()
            }
        }
        Un::Celu(a) => step(x >= 0.0) + if x <= 0.0 { (x / a).exp() } else { 0.0 },
        Un::LeakyRelu(a) => {
            if x > 0.0 {
                1.0
            } else {
                a
            }
        }
        Un::Softplus => sigmoid(x),
        Un::Softsign => 1.0 / ((1.0 + x.abs()) * (1.0 + x.abs())),
        Un::HardSigmoid => step(x > -3.0 && x < 3.0) / 6.0,
        Un::HardSilu => (x + 3.0).clamp(0.0, 6.0) / 6.0 + x * step(x > -3.0 && x < 3.0) / 6.0,
        Un::HardTanh => step(x > -1.0 && x < 1.0),
        Un::LogSigmoid => sigmoid(-x),
        Un::Erf => std::f32::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
        Un::Erfc => -std::f32::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
        Un::Rsqrt => -0.5 * y * y * y,
        // tf.clip_by_value: the gradient passes where lo <= x <= hi
        Un::Clip(lo, hi) => step(x >= lo && x <= hi),
        Un::SoftShrink(t) | Un::HardShrink(t) => step(x > t || x < -t),
        Un::TanhShrink => {
            let t = x.tanh();
            t * t
        }
        Un::SparsePlus => {
            if x <= -1.0 {
                0.0
            } else if x < 1.0 {
                0.5 * (x + 1.0)
            } else {
                1.0
            }
        }
        Un::SparseSigmoid => step(x > -1.0 && x < 1.0) * 0.5,
        Un::Squareplus(b) => 0.5 * (1.0 + x / (x * x + b).sqrt()),
        Un::Threshold(t, _) => step(x > t),
    })
}

fn unary(op: Un, x: &Tensor) -> Tensor {
    let data: Vec<f32> = x.as_slice().iter().map(|&v| un_apply(op, v)).collect();
    // the shape is x's own, so this cannot fail; fall back to x itself to stay panic-free
    let y = Tensor::from_vec(x.shape(), data).unwrap_or_else(|_| x.clone());
    if !x.is_tracked() || un_grad(op, 0.0, 0.0).is_none() {
        return y.detach();
    }
    // one input: recording cannot fail
    crate::grad::unary("op_unary", x, y.clone(), move |x, y| un_grad(op, x, y).unwrap_or(0.0)).unwrap_or(y)
}

fn reduce(m: &Meta, x: &Tensor, red: Red, axes: Option<&[isize]>, keepdims: bool) -> Result<Tensor> {
    let ne = |x: &Tensor| unary(Un::Not, &unary(Un::Not, x));
    match red {
        Red::Sum => m.t(x.sum(axes, keepdims)),
        Red::Mean => m.t(x.mean(axes, keepdims)),
        Red::Max => m.t(x.max(axes, keepdims)),
        Red::Min => m.t(x.min(axes, keepdims)),
        Red::Any => m.t(ne(x).max(axes, keepdims)),
        Red::All => m.t(ne(x).min(axes, keepdims)),
        Red::Var | Red::Std => {
            let mean = m.t(x.mean(axes, true))?;
            let v = m.t(m.t(x.sub(&mean))?.square().mean(axes, keepdims))?;
            Ok(if red == Red::Std { v.sqrt() } else { v })
        }
        Red::LogSumExp => {
            let mx = m.t(x.max(axes, true))?;
            let mx = unary(Un::Identity, &mx);
            // an infinite maximum would give inf - inf: shift by 0 there
            let shift = Tensor::from_vec(
                mx.shape(),
                mx.as_slice().iter().map(|&v| if v.is_finite() { v } else { 0.0 }).collect(),
            );
            let shift = m.t(shift)?;
            let s = m.t(m.t(x.sub(&shift))?.exp().sum(axes, true))?.log();
            let y = m.t(s.add(&shift))?;
            if keepdims {
                Ok(y)
            } else {
                let shape = m.t(x.sum(axes, false))?.shape().to_vec();
                m.t(y.reshape(&shape))
            }
        }
        Red::Prod => {
            let rank = x.rank();
            let ax: Vec<usize> = match axes {
                None => (0..rank).collect(),
                Some(a) => a.iter().map(|&a| norm_axis(m, a, rank)).collect::<Result<_>>()?,
            };
            let kshape: Vec<usize> =
                x.shape().iter().enumerate().map(|(i, &d)| if ax.contains(&i) { 1 } else { d }).collect();
            let n: usize = kshape.iter().product();
            let mut out = vec![1f32; n];
            let kstr = strides(&kshape);
            for (flat, &v) in x.as_slice().iter().enumerate() {
                let mut rem = flat;
                let mut o = 0usize;
                for (i, &d) in x.shape().iter().enumerate().rev() {
                    let c = rem % d.max(1);
                    rem /= d.max(1);
                    if !ax.contains(&i) {
                        o += c * kstr.get(i).copied().unwrap_or(0);
                    }
                }
                if let Some(s) = out.get_mut(o) {
                    *s *= v;
                }
            }
            let y = m.t(Tensor::from_vec(&kshape, out))?;
            // the gradient of each element: g times the product of the other elements of its group
            let (xshape, kstr2, ax2) = (x.shape().to_vec(), kstr.clone(), ax.clone());
            let group = move |flat: usize| {
                let mut rem = flat;
                let mut o = 0usize;
                for (i, &d) in xshape.iter().enumerate().rev() {
                    let c = rem % d.max(1);
                    rem /= d.max(1);
                    if !ax2.contains(&i) {
                        o += c * kstr2.get(i).copied().unwrap_or(0);
                    }
                }
                o
            };
            let y = m.t(crate::grad::custom("prod", &[x], y, move |ins, y, g| {
                let x = &ins[0];
                let groups: Vec<usize> = (0..x.len()).map(&group).collect();
                // exclusive products from the left and from the right within each group (no division)
                let mut left = vec![1f32; x.len()];
                let mut acc = vec![1f32; y.len()];
                for (k, &v) in x.as_slice().iter().enumerate() {
                    left[k] = acc[groups[k]];
                    acc[groups[k]] *= v;
                }
                acc.iter_mut().for_each(|a| *a = 1.0);
                let mut d = vec![0f32; x.len()];
                for (k, &v) in x.as_slice().iter().enumerate().rev() {
                    d[k] = left[k] * acc[groups[k]] * g.as_slice()[groups[k]];
                    acc[groups[k]] *= v;
                }
                Ok(vec![Some(Tensor::from_vec(x.shape(), d)?)])
            }))?;
            if keepdims {
                Ok(y)
            } else {
                let shape: Vec<usize> =
                    x.shape().iter().enumerate().filter(|(i, _)| !ax.contains(i)).map(|(_, &d)| d).collect();
                m.t(y.reshape(&shape))
            }
        }
    }
}

/// `linalg.norm` (TensorFlow backend formulas): vector norms over one axis, Frobenius / 1 / inf
/// norms over two.
fn norm(m: &Meta, x: &Tensor, ord: Option<NormOrd>, axes: Option<&[isize]>, keepdims: bool) -> Result<Tensor> {
    let all: Vec<isize> = (0..x.rank() as isize).collect();
    let ax = axes.unwrap_or(&all);
    let abs = x.abs();
    match (ax.len(), ord) {
        (1, None | Some(NormOrd::P(2.0))) | (2, None | Some(NormOrd::Fro)) => {
            Ok(m.t(x.square().sum(Some(ax), keepdims))?.sqrt())
        }
        (1, Some(NormOrd::P(p))) if p == f32::INFINITY => m.t(abs.max(Some(ax), keepdims)),
        (1, Some(NormOrd::P(p))) if p == f32::NEG_INFINITY => m.t(abs.min(Some(ax), keepdims)),
        (1, Some(NormOrd::P(0.0))) => m.t(unary(Un::Not, &unary(Un::Not, x)).sum(Some(ax), keepdims)),
        (1, Some(NormOrd::P(p))) => {
            let s = m.t(m.t(abs.pow(&Tensor::scalar(p)))?.sum(Some(ax), keepdims))?;
            m.t(s.pow(&Tensor::scalar(1.0 / p)))
        }
        (2, Some(NormOrd::P(p))) if p.abs() == 1.0 || p.is_infinite() => {
            let r = x.rank();
            let (row, col) = (norm_axis(m, ax[0], r)?, norm_axis(m, ax[1], r)?);
            // ord 1: max over columns of the column sums; inf: max over rows of the row sums
            let (sum_ax, red_ax) = if p.abs() == 1.0 { (row, col) } else { (col, row) };
            let red_ax = if !keepdims && red_ax > sum_ax { red_ax - 1 } else { red_ax };
            let s = m.t(abs.sum(Some(&[sum_ax as isize]), keepdims))?;
            if p > 0.0 {
                m.t(s.max(Some(&[red_ax as isize]), keepdims))
            } else {
                m.t(s.min(Some(&[red_ax as isize]), keepdims))
            }
        }
        (n, o) => Err(m.cfg_err("ord", format!("{o:?} over {n} axes is not a norm strata implements"))),
    }
}

/// Ascending sort along `axis` (NaN last, as TensorFlow and numpy).
fn sort(m: &Meta, x: &Tensor, axis: isize) -> Result<Tensor> {
    Ok(sort_with_indices(m, x, axis, false)?.0)
}

/// Stable sort along `axis`, ascending (NaN last) or descending (NaN first, like `top_k`), with
/// the source indices (as f32).
fn sort_with_indices(m: &Meta, x: &Tensor, axis: isize, descending: bool) -> Result<(Tensor, Tensor)> {
    let a = norm_axis(m, axis, x.rank())?;
    let dim = x.shape().get(a).copied().unwrap_or(1);
    let inner: usize = x.shape().get(a + 1..).unwrap_or(&[]).iter().product();
    let mut data = x.to_vec();
    let mut idx = vec![0f32; data.len()];
    let block = dim * inner;
    if block > 0 {
        let mut lane: Vec<(f32, usize)> = Vec::with_capacity(dim);
        for (chunk, ichunk) in data.chunks_mut(block).zip(idx.chunks_mut(block)) {
            for i in 0..inner {
                lane.clear();
                lane.extend((0..dim).map(|j| (chunk[j * inner + i], j)));
                lane.sort_by(|(p, i), (q, j)| {
                    let asc = p.is_nan().cmp(&q.is_nan()).then(p.partial_cmp(q).unwrap_or(std::cmp::Ordering::Equal));
                    // ties keep the lower index first in both directions
                    if descending { asc.reverse().then(i.cmp(j)) } else { asc.then(i.cmp(j)) }
                });
                for (j, &(v, src)) in lane.iter().enumerate() {
                    chunk[j * inner + i] = v;
                    ichunk[j * inner + i] = src as f32;
                }
            }
        }
    }
    let vals = m.t(Tensor::from_vec(x.shape(), data))?;
    // the flat source offset of every sorted value: the gradient scatters back through it
    let offs: Vec<usize> = if block == 0 {
        Vec::new()
    } else {
        idx.iter()
            .enumerate()
            .map(|(n, &j)| {
                let (outer, i) = (n / block, n % inner.max(1));
                outer * block + j as usize * inner + i
            })
            .collect()
    };
    let vals = m.t(crate::grad::gather("sort", x, vals, offs))?;
    Ok((vals, m.t(Tensor::from_vec(x.shape(), idx))?))
}

/// `tf.image.resize` of NHWC images with half-pixel centers (bilinear or nearest neighbour).
fn resize(m: &Meta, x: &Tensor, size: [usize; 2], bilinear: bool) -> Result<Tensor> {
    let &[n, h, w, c] = x.shape() else {
        return Err(m.cfg_err("args", format!("passes images of shape {:?}", x.shape())));
    };
    let [oh, ow] = size;
    let total = [n, oh, ow, c].iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&t| t <= MAX_ELEMENTS);
    let total = total.ok_or_else(|| m.cfg_err("size", "makes the resized images too large"))?;
    if h == 0 || w == 0 {
        return Err(m.cfg_err("args", "passes empty images"));
    }
    // per output coordinate: (lower, upper, lerp) for bilinear, or the source index for nearest
    let weights = |out: usize, inp: usize| -> Vec<(usize, usize, f32)> {
        let scale = inp as f32 / out as f32;
        (0..out)
            .map(|o| {
                if bilinear {
                    let v = (o as f32 + 0.5) * scale - 0.5;
                    let f = v.floor();
                    let lo = (f.max(0.0) as usize).min(inp - 1);
                    let hi = (v.ceil().max(0.0) as usize).min(inp - 1);
                    (lo, hi, v - f)
                } else {
                    let i = (((o as f32 + 0.5) * scale).floor().max(0.0) as usize).min(inp - 1);
                    (i, i, 0.0)
                }
            })
            .collect()
    };
    let (wy, wx) = (weights(oh, h), weights(ow, w));
    let src = x.as_slice();
    let at = |b: usize, i: usize, j: usize, k: usize| src.get(((b * h + i) * w + j) * c + k).copied().unwrap_or(0.0);
    let mut out = Vec::with_capacity(total);
    let track = x.is_tracked();
    let mut taps: Vec<[(usize, f32); 4]> = Vec::with_capacity(if track { total } else { 0 });
    let off = |b: usize, i: usize, j: usize, k: usize| ((b * h + i) * w + j) * c + k;
    for b in 0..n {
        for &(y0, y1, ly) in &wy {
            for &(x0, x1, lx) in &wx {
                for k in 0..c {
                    if track {
                        // the forward's weights on its four corners, expanded
                        taps.push(if bilinear {
                            [
                                (off(b, y0, x0, k), (1.0 - lx) * (1.0 - ly)),
                                (off(b, y0, x1, k), lx * (1.0 - ly)),
                                (off(b, y1, x0, k), (1.0 - lx) * ly),
                                (off(b, y1, x1, k), lx * ly),
                            ]
                        } else {
                            [(off(b, y0, x0, k), 1.0), (0, 0.0), (0, 0.0), (0, 0.0)]
                        });
                    }
                    let v = if bilinear {
                        let tl = at(b, y0, x0, k);
                        let tr = at(b, y0, x1, k);
                        let bl = at(b, y1, x0, k);
                        let br = at(b, y1, x1, k);
                        let top = tl + (tr - tl) * lx;
                        let bottom = bl + (br - bl) * lx;
                        top + (bottom - top) * ly
                    } else {
                        at(b, y0, x0, k)
                    };
                    out.push(v);
                }
            }
        }
    }
    let y = m.t(Tensor::from_vec(&[n, oh, ow, c], out))?;
    m.t(crate::grad::linear("resize", x, y, taps))
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

fn scan(m: &Meta, x: &Tensor, axis: isize, prod: bool) -> Result<Tensor> {
    let a = norm_axis(m, axis, x.rank())?;
    let dim = x.shape().get(a).copied().unwrap_or(1);
    let inner: usize = x.shape().get(a + 1..).unwrap_or(&[]).iter().product();
    let mut data = x.to_vec();
    let block = dim * inner;
    if block > 0 {
        for chunk in data.chunks_mut(block) {
            for j in 1..dim {
                for i in 0..inner {
                    let prev = chunk[(j - 1) * inner + i];
                    let cur = &mut chunk[j * inner + i];
                    *cur = if prod { prev * *cur } else { prev + *cur };
                }
            }
        }
    }
    let y = m.t(Tensor::from_vec(x.shape(), data))?;
    // TensorFlow: cumsum's gradient is the reversed cumsum of g; cumprod's is reversed-cumsum(y * g) / x
    m.t(crate::grad::custom(if prod { "cumprod" } else { "cumsum" }, &[x], y, move |ins, y, g| {
        let x = &ins[0];
        let mut d: Vec<f32> = if prod { g.mul(y)?.to_vec() } else { g.to_vec() };
        if block > 0 {
            for chunk in d.chunks_mut(block) {
                for j in (0..dim.saturating_sub(1)).rev() {
                    for i in 0..inner {
                        chunk[j * inner + i] += chunk[(j + 1) * inner + i];
                    }
                }
            }
        }
        if prod {
            d.iter_mut().zip(x.as_slice()).for_each(|(d, &v)| *d /= v);
        }
        Ok(vec![Some(Tensor::from_vec(x.shape(), d)?)])
    }))
}

/// `out[i0, i1, ...] = x[idx[0][i0], idx[1][i1], ...]` (one index list per axis, in range).
fn gather(m: &Meta, x: &Tensor, idx: &[Vec<usize>]) -> Result<Tensor> {
    let shape: Vec<usize> = idx.iter().map(Vec::len).collect();
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS);
    let n = n.ok_or_else(|| m.cfg_err("args", format!("would create a tensor of shape {shape:?}, too large")))?;
    if idx.len() != x.rank() || idx.iter().zip(x.shape()).any(|(i, &d)| i.iter().any(|&j| j >= d)) {
        return Err(m.cfg_err("args", format!("indexes outside an input of shape {:?}", x.shape())));
    }
    let st = strides(x.shape());
    let src = x.as_slice();
    // the source offset of every output element
    let mut offs = Vec::with_capacity(n);
    if n > 0 {
        let mut pos = vec![0usize; shape.len()];
        'odometer: loop {
            offs.push(pos.iter().zip(idx).zip(&st).map(|((&p, i), &s)| i[p] * s).sum::<usize>());
            let mut k = shape.len();
            loop {
                if k == 0 {
                    break 'odometer;
                }
                k -= 1;
                pos[k] += 1;
                if pos[k] < shape[k] {
                    break;
                }
                pos[k] = 0;
            }
        }
    }
    let out = offs.iter().map(|&o| src.get(o).copied().unwrap_or(0.0)).collect();
    let y = m.t(Tensor::from_vec(&shape, out))?;
    m.t(crate::grad::gather("gather", x, y, offs))
}

fn tile(m: &Meta, x: &Tensor, reps: &[isize]) -> Result<Tensor> {
    let reps: Vec<usize> = reps
        .iter()
        .map(|&r| usize::try_from(r).map_err(|_| m.cfg_err("repeats", "holds a negative count")))
        .collect::<Result<_>>()?;
    let rank = x.rank().max(reps.len());
    let mut shape = vec![1usize; rank - x.rank()];
    shape.extend_from_slice(x.shape());
    let mut full = vec![1usize; rank - reps.len()];
    full.extend(reps);
    let x = m.t(x.reshape(&shape))?;
    let total = shape.iter().zip(&full).try_fold(1usize, |a, (&d, &r)| d.checked_mul(r).and_then(|n| a.checked_mul(n)));
    if total.is_none_or(|n| n > MAX_ELEMENTS) {
        return Err(m.cfg_err("repeats", format!("{full:?} would make the tiled tensor too large")));
    }
    let idx: Vec<Vec<usize>> =
        shape.iter().zip(&full).map(|(&d, &r)| (0..d * r).map(|i| i % d.max(1)).collect()).collect();
    gather(m, &x, &idx)
}

fn repeat(m: &Meta, x: &Tensor, repeats: &[isize], axis: Option<isize>) -> Result<Tensor> {
    let (x, axis) = match axis {
        Some(a) => (x.clone(), a),
        None => (m.t(x.reshape(&[x.len()]))?, 0),
    };
    let a = norm_axis(m, axis, x.rank())?;
    let dim = x.shape().get(a).copied().unwrap_or(0);
    let reps: Vec<usize> = match repeats {
        [r] => vec![usize::try_from(*r).map_err(|_| m.cfg_err("repeats", "is negative"))?; dim],
        rs if rs.len() == dim => rs
            .iter()
            .map(|&r| usize::try_from(r).map_err(|_| m.cfg_err("repeats", "is negative")))
            .collect::<Result<_>>()?,
        _ => return Err(m.cfg_err("repeats", format!("has {} counts for an axis of size {dim}", repeats.len()))),
    };
    if reps.iter().try_fold(0usize, |s, &r| s.checked_add(r)).is_none_or(|s| s > MAX_ELEMENTS) {
        return Err(m.cfg_err("repeats", "is too large"));
    }
    let idx: Vec<Vec<usize>> = x
        .shape()
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if i == a {
                reps.iter().enumerate().flat_map(|(j, &r)| std::iter::repeat_n(j, r)).collect()
            } else {
                (0..d).collect()
            }
        })
        .collect();
    gather(m, &x, &idx)
}

/// Python's `slice(start, stop, step).indices(n)` as the list of indices it selects.
fn slice_indices(m: &Meta, n: usize, start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Result<Vec<usize>> {
    let n = n as i64;
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(m.cfg_err("args", "slices with a step of 0"));
    }
    let (lower, upper) = if step > 0 { (0, n) } else { (-1, n - 1) };
    let clampi = |v: Option<i64>, default: i64| match v {
        None => default,
        Some(v) if v < 0 => (v + n).max(lower),
        Some(v) => v.min(upper),
    };
    let (s, e) = if step > 0 {
        (clampi(start, lower), clampi(stop, upper))
    } else {
        (clampi(start, upper), clampi(stop, lower))
    };
    let mut out = Vec::new();
    let mut i = s;
    while (step > 0 && i < e) || (step < 0 && i > e) {
        out.push(i as usize);
        match i.checked_add(step) {
            Some(next) => i = next,
            None => break,
        }
    }
    Ok(out)
}

/// numpy basic indexing: integers, slices, `None` (new axis) and one `...`.
fn get_item(m: &Meta, x: &Tensor, key: &Val) -> Result<Tensor> {
    let mut items: Vec<&Val> = match key {
        Val::List(v) => v.iter().collect(),
        k => vec![k],
    };
    let ellipses = items.iter().filter(|v| matches!(v, Val::Ellipsis)).count();
    if ellipses > 1 {
        return Err(m.cfg_err("args", "indexes with more than one `...`"));
    }
    let consumed = items.iter().filter(|v| matches!(v, Val::Num(_) | Val::Slice(..))).count();
    if consumed > x.rank() {
        return Err(m.cfg_err("args", format!("indexes {consumed} axes of a rank-{} tensor", x.rank())));
    }
    let ell = Val::Ellipsis;
    if ellipses == 0 {
        items.push(&ell);
    }
    let mut idx: Vec<Vec<usize>> = Vec::with_capacity(x.rank());
    let mut out_shape = Vec::new();
    let mut d = 0usize;
    for it in items {
        match it {
            Val::Ellipsis => {
                for _ in 0..x.rank() - consumed {
                    let n = x.shape().get(d).copied().unwrap_or(0);
                    idx.push((0..n).collect());
                    out_shape.push(n);
                    d += 1;
                }
            }
            Val::Null => out_shape.push(1),
            Val::Num(f) => {
                let n = x.shape().get(d).copied().unwrap_or(0) as i64;
                let i = *f as i64;
                if i as f64 != *f {
                    return Err(m.cfg_err("args", format!("indexes with {f}, which is not an integer")));
                }
                let j = if i < 0 { i + n } else { i };
                if j < 0 || j >= n {
                    return Err(m.cfg_err("args", format!("index {i} is out of range for an axis of size {n}")));
                }
                idx.push(vec![j as usize]);
                d += 1;
            }
            Val::Slice(s, e, st) => {
                let n = x.shape().get(d).copied().unwrap_or(0);
                let v = slice_indices(m, n, *s, *e, *st)?;
                out_shape.push(v.len());
                idx.push(v);
                d += 1;
            }
            other => {
                return Err(m.cfg_err(
                    "args",
                    format!(
                        "indexes with {other:?}; strata supports integers, slices, None and `...` (no tensor indices)"
                    ),
                ));
            }
        }
    }
    let y = gather(m, x, &idx)?;
    m.t(y.reshape(&out_shape))
}

fn matmul(m: &Meta, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.rank() == 0 || b.rank() == 0 {
        return Err(m.cfg_err("args", "passes a scalar to matmul"));
    }
    let a1 = a.rank() == 1;
    let b1 = b.rank() == 1;
    let a2 = if a1 { m.t(a.unsqueeze(0))? } else { a.clone() };
    let b2 = if b1 { m.t(b.unsqueeze(1))? } else { b.clone() };
    let y = m.t(a2.matmul(&b2))?;
    let mut shape = y.shape().to_vec();
    let r = shape.len();
    if b1 {
        shape.remove(r - 1);
    }
    if a1 {
        shape.remove(r - 2);
    }
    m.t(y.reshape(&shape))
}

/// `einsum` over explicit subscripts (letters, optional `->`; no `...`).
fn einsum(m: &Meta, spec: &str, ops: &[Tensor]) -> Result<Tensor> {
    let bad = |p: String| m.cfg_err("subscripts", p);
    let spec: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    if spec.contains('.') {
        return Err(bad(format!("`{spec}` uses `...`, which strata's einsum does not implement")));
    }
    let (lhs, rhs) = match spec.split_once("->") {
        Some((l, r)) => (l.to_string(), Some(r.to_string())),
        None => (spec.clone(), None),
    };
    let terms: Vec<Vec<char>> = lhs.split(',').map(|t| t.chars().collect()).collect();
    if terms.len() != ops.len() {
        return Err(bad(format!("`{spec}` names {} operands but the call passes {}", terms.len(), ops.len())));
    }
    let mut letters: Vec<char> = Vec::new();
    let mut dims: Vec<usize> = Vec::new();
    for (t, x) in terms.iter().zip(ops) {
        if t.len() != x.rank() {
            return Err(bad(format!("`{spec}` gives {} subscripts to an operand of shape {:?}", t.len(), x.shape())));
        }
        for (&c, &d) in t.iter().zip(x.shape()) {
            if !c.is_ascii_alphabetic() {
                return Err(bad(format!("`{spec}` has `{c}`, not a letter")));
            }
            match letters.iter().position(|&l| l == c) {
                Some(i) if dims.get(i) != Some(&d) => {
                    return Err(bad(format!("`{spec}`: `{c}` has sizes {:?} and {d}", dims.get(i))));
                }
                Some(_) => {}
                None => {
                    letters.push(c);
                    dims.push(d);
                }
            }
        }
    }
    let out: Vec<char> = match rhs {
        Some(r) => r.chars().collect(),
        None => {
            let mut once: Vec<char> =
                letters.iter().copied().filter(|c| terms.iter().flatten().filter(|x| *x == c).count() == 1).collect();
            once.sort_unstable();
            once
        }
    };
    let mut out_shape = Vec::with_capacity(out.len());
    for c in &out {
        let i =
            letters.iter().position(|l| l == c).ok_or_else(|| bad(format!("`{spec}`: output `{c}` is in no input")))?;
        if out.iter().filter(|x| *x == c).count() > 1 {
            return Err(bad(format!("`{spec}` repeats `{c}` in the output")));
        }
        out_shape.push(dims[i]);
    }
    let total = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS);
    let total = total.ok_or_else(|| bad(format!("`{spec}` needs too much work for sizes {dims:?}")))?;
    // per letter: its stride in each operand (summed for repeated letters: diagonals) and the output
    let op_strides: Vec<Vec<usize>> = terms
        .iter()
        .zip(ops)
        .map(|(t, x)| {
            let st = strides(x.shape());
            letters.iter().map(|l| t.iter().zip(&st).filter(|(c, _)| *c == l).map(|(_, s)| s).sum()).collect()
        })
        .collect();
    let ost = strides(&out_shape);
    let out_str: Vec<usize> = letters
        .iter()
        .map(|l| out.iter().position(|c| c == l).and_then(|p| ost.get(p).copied()).unwrap_or(0))
        .collect();
    let n_out: usize = out_shape.iter().product();
    let mut acc = vec![0f64; n_out];
    if total > 0 {
        let mut pos = vec![0usize; letters.len()];
        'outer: loop {
            let mut p = 1f64;
            for (x, st) in ops.iter().zip(&op_strides) {
                let off: usize = pos.iter().zip(st).map(|(a, b)| a * b).sum();
                p *= f64::from(x.as_slice().get(off).copied().unwrap_or(0.0));
            }
            let o: usize = pos.iter().zip(&out_str).map(|(a, b)| a * b).sum();
            if let Some(s) = acc.get_mut(o) {
                *s += p;
            }
            let mut k = letters.len();
            loop {
                if k == 0 {
                    break 'outer;
                }
                k -= 1;
                pos[k] += 1;
                if pos[k] < dims[k] {
                    break;
                }
                pos[k] = 0;
            }
        }
    }
    let y = m.t(Tensor::from_vec(&out_shape, acc.into_iter().map(|v| v as f32).collect()))?;
    // d/d operand k at an index assignment: g[out] times the product of the other operands there
    let refs: Vec<&Tensor> = ops.iter().collect();
    m.t(crate::grad::custom("einsum", &refs, y, move |ins, _y, g| {
        let mut grads: Vec<Vec<f64>> = ins.iter().map(|x| vec![0f64; x.len()]).collect();
        if total > 0 {
            let mut pos = vec![0usize; dims.len()];
            let mut vals = vec![0f64; ins.len()];
            let mut offs = vec![0usize; ins.len()];
            'outer: loop {
                for (j, (x, st)) in ins.iter().zip(&op_strides).enumerate() {
                    offs[j] = pos.iter().zip(st).map(|(a, b)| a * b).sum();
                    vals[j] = f64::from(x.as_slice().get(offs[j]).copied().unwrap_or(0.0));
                }
                let o: usize = pos.iter().zip(&out_str).map(|(a, b)| a * b).sum();
                let gv = f64::from(g.as_slice().get(o).copied().unwrap_or(0.0));
                for k in 0..ins.len() {
                    let others: f64 = vals.iter().enumerate().filter(|&(j, _)| j != k).map(|(_, v)| v).product();
                    if let Some(d) = grads[k].get_mut(offs[k]) {
                        *d += gv * others;
                    }
                }
                let mut k = dims.len();
                loop {
                    if k == 0 {
                        break 'outer;
                    }
                    k -= 1;
                    pos[k] += 1;
                    if pos[k] < dims[k] {
                        break;
                    }
                    pos[k] = 0;
                }
            }
        }
        grads
            .into_iter()
            .zip(ins)
            .map(|(d, x)| Tensor::from_vec(x.shape(), d.into_iter().map(|v| v as f32).collect()).map(Some))
            .collect()
    }))
}

fn cast(x: &Tensor, to: CastTo) -> Tensor {
    let y = cast_values(x, to);
    match to {
        // a float-to-float cast passes the gradient through (TensorFlow's `Cast` gradient)
        CastTo::Half(d) => crate::grad::cast_through("cast", x, y.clone(), d).unwrap_or(y),
        _ => y,
    }
}

fn cast_values(x: &Tensor, to: CastTo) -> Tensor {
    match to {
        CastTo::Keep => x.clone(),
        CastTo::Int => unary(Un::Trunc, x),
        CastTo::Bool => unary(Un::Not, &unary(Un::Not, x)),
        CastTo::Half(DType::BF16) => {
            let d = x.as_slice().iter().map(|&v| strata_tensor::bf16_to_f32(strata_tensor::f32_to_bf16(v))).collect();
            Tensor::from_vec(x.shape(), d).unwrap_or_else(|_| x.clone())
        }
        CastTo::Half(_) => {
            let d = x.as_slice().iter().map(|&v| strata_tensor::f16_to_f32(strata_tensor::f32_to_f16(v))).collect();
            Tensor::from_vec(x.shape(), d).unwrap_or_else(|_| x.clone())
        }
    }
}

fn one_hot(m: &Meta, x: &Tensor, classes: usize, axis: isize) -> Result<Tensor> {
    let rank = x.rank() + 1;
    let a = norm_axis(m, axis, rank)?;
    let n = x.len().checked_mul(classes).filter(|&n| n <= MAX_ELEMENTS);
    let n = n.ok_or_else(|| m.cfg_err("num_classes", "makes the one-hot tensor too large"))?;
    // build with the class axis last, then move it
    let mut data = vec![0f32; n];
    for (i, &v) in x.as_slice().iter().enumerate() {
        if v >= 0.0
            && (v as usize) < classes
            && v.fract() == 0.0
            && let Some(s) = data.get_mut(i * classes + v as usize)
        {
            *s = 1.0;
        }
    }
    let mut shape = x.shape().to_vec();
    shape.push(classes);
    let y = m.t(Tensor::from_vec(&shape, data))?;
    if a == rank - 1 {
        return Ok(y);
    }
    let mut perm: Vec<usize> = (0..rank - 1).collect();
    perm.insert(a, rank - 1);
    m.t(y.permute(&perm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_format::json::JsonLimits;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }

    fn op_layer(class: &str, module: &str, cfg: &str) -> Result<Option<Box<dyn Layer>>> {
        let l = LayerConfig {
            class_name: class.into(),
            module: Some(module.into()),
            registered_name: Some(class.into()),
            name: "op".into(),
            config: Json::parse(cfg, &JsonLimits::default()).unwrap(),
            inbound_nodes: Vec::new(),
            build_config: None,
            shared_object_id: None,
            nested: None,
            branches: Vec::new(),
            raw: Json::Null,
        };
        build(&l, Vec::new(), &BuildCtx::new(strata_format::config::ConfigDialect::Keras3))
    }

    fn call(layer: &dyn Layer, inputs: &[Tensor], args: &str) -> Tensor {
        let args = Json::parse(args, &JsonLimits::default()).unwrap();
        let kwargs = Json::Null;
        let c = CallArgs { kw_tensors: &[], args: &args, kwargs: &kwargs, training: false };
        let (outs, masks) = layer.call(inputs, &[], &c).unwrap();
        assert!(masks.iter().all(Option::is_none));
        outs.into_iter().next().unwrap()
    }

    const T: &str = r#"{"class_name": "__keras_tensor__", "config": {"keras_history": ["x", 0, 0]}}"#;

    #[test]
    fn mask_ops_not_equal_then_any() {
        // Masking(mask_value=0.0) as Keras 3 writes it: any(not_equal(x, 0.0), axis=-1)
        let ne = op_layer("NotEqual", "keras.src.ops.numpy", r#"{"name": "not_equal"}"#).unwrap().unwrap();
        let any = op_layer("Any", "keras.src.ops.numpy", r#"{"name": "any", "axis": -1, "keepdims": false}"#)
            .unwrap()
            .unwrap();
        let x = t(&[1, 3, 2], &[0.0, 0.0, 1.5, 0.0, 0.0, -2.0]);
        let b = call(ne.as_ref(), &[x], &format!("[{T}, 0.0]"));
        assert_eq!(b.to_vec(), vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
        let mask = call(any.as_ref(), &[b], &format!("[{T}]"));
        assert_eq!(mask.shape(), &[1, 3]);
        assert_eq!(mask.to_vec(), vec![0.0, 1.0, 1.0]);
        // Embedding(mask_zero=True): not_equal(tokens, 0), the constant first works too
        let tokens = t(&[1, 4], &[3.0, 0.0, 1.0, 0.0]);
        let m2 = call(ne.as_ref(), &[tokens], &format!("[0, {T}]"));
        assert_eq!(m2.to_vec(), vec![1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn constants_on_either_side() {
        let sub = op_layer("Subtract", "keras.src.ops.numpy", r#"{"name": "s"}"#).unwrap().unwrap();
        let x = t(&[2], &[1.0, 4.0]);
        assert_eq!(call(sub.as_ref(), std::slice::from_ref(&x), &format!("[3.0, {T}]")).to_vec(), vec![2.0, -1.0]);
        assert_eq!(call(sub.as_ref(), &[x], &format!("[{T}, 3.0]")).to_vec(), vec![-2.0, 1.0]);
    }

    #[test]
    fn mod_and_floor_divide_follow_python() {
        let m = Meta { name: "m".into(), class: "Mod".into() };
        let a = t(&[4], &[7.0, -7.0, 7.0, -7.0]);
        let b = t(&[4], &[3.0, 3.0, -3.0, -3.0]);
        assert_eq!(binary(&m, Bin::Mod, &a, &b).unwrap().to_vec(), vec![1.0, 2.0, -2.0, -1.0]);
        assert_eq!(binary(&m, Bin::FloorDiv, &a, &b).unwrap().to_vec(), vec![2.0, -3.0, -3.0, 2.0]);
    }

    #[test]
    fn getitem_slices() {
        let gi = op_layer("GetItem", "keras.src.ops.numpy", r#"{"name": "g"}"#).unwrap().unwrap();
        let x = t(&[2, 5], &[0., 1., 2., 3., 4., 5., 6., 7., 8., 9.]);
        let sl = |s: &str, e: &str, st: &str| {
            format!(r#"{{"class_name": "__slice__", "config": {{"start": {s}, "stop": {e}, "step": {st}}}}}"#)
        };
        let all = sl("null", "null", "null");
        let rev = sl("null", "null", "-2");
        let y = call(gi.as_ref(), std::slice::from_ref(&x), &format!("[{T}, [{all}, {rev}]]"));
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(y.to_vec(), vec![4., 2., 0., 9., 7., 5.]);
        let ell = r#"{"class_name": "__ellipsis__", "config": {}}"#;
        let y = call(gi.as_ref(), std::slice::from_ref(&x), &format!("[{T}, [{ell}, -1, null]]"));
        assert_eq!(y.shape(), &[2, 1]);
        assert_eq!(y.to_vec(), vec![4., 9.]);
        let y = call(gi.as_ref(), &[x], &format!("[{T}, 1]"));
        assert_eq!(y.to_vec(), vec![5., 6., 7., 8., 9.]);
    }

    #[test]
    fn einsum_and_matmul_vectors() {
        let m = Meta { name: "e".into(), class: "Einsum".into() };
        let a = t(&[2, 2], &[1., 2., 3., 4.]);
        assert_eq!(einsum(&m, "ii->i", std::slice::from_ref(&a)).unwrap().to_vec(), vec![1., 4.]);
        assert_eq!(einsum(&m, "ij->ji", std::slice::from_ref(&a)).unwrap().to_vec(), vec![1., 3., 2., 4.]);
        assert_eq!(einsum(&m, "ij,jk", &[a.clone(), a.clone()]).unwrap().to_vec(), vec![7., 10., 15., 22.]);
        let v = t(&[2], &[1., 1.]);
        assert_eq!(matmul(&m, &a, &v).unwrap().to_vec(), vec![3., 7.]);
        assert_eq!(matmul(&m, &v, &a).unwrap().to_vec(), vec![4., 6.]);
        let e = einsum(&m, "...i->i", &[a]).unwrap_err().to_string();
        assert!(e.contains("`...`"), "{e}");
    }

    #[test]
    fn unknown_op_names_module() {
        let e = match op_layer("Foo", "keras.src.ops.numpy", r#"{"name": "foo"}"#) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("Foo built"),
        };
        assert!(e.contains("Keras op `keras.src.ops.numpy.Foo` is not one strata runs yet"), "{e}");
    }

    #[test]
    fn embedding_masking_fixture_ops_are_recognized() {
        // Keras 3 writes the masks of Embedding(mask_zero) and Masking as NotEqual / Any op nodes
        // (module keras.src.ops.numpy): none of them may be reported unsupported, whatever the
        // state of the layers around them.
        let path = strata_testkit::fixture("keras3/embedding_masking/model.keras");
        let file = strata_format::model::ModelFile::open(&path).unwrap();
        let config = file.config.as_ref().unwrap();
        let ops: Vec<&str> = config
            .layers
            .iter()
            .filter(|l| l.module.as_deref().is_some_and(is_op_module))
            .map(|l| l.class_name.as_str())
            .collect();
        assert_eq!(ops, ["NotEqual", "NotEqual", "Any"]);
        let missing = crate::model::unsupported_layers(config);
        assert!(missing.iter().all(|u| !u.class.contains("ops")), "{missing:?}");
        // a layer class of the same name is still a layer (Add the merge layer, not the op)
        assert!(crate::layers::is_supported_in("Add", Some("keras.layers")));
        assert!(crate::layers::is_supported_in("Add", Some("keras.src.ops.numpy")));
        assert!(crate::layers::is_supported_in("Embedding", None));
        assert!(!crate::layers::is_supported_in("Embedding", Some("keras.src.ops.numpy")));
        assert!(!crate::layers::is_supported_in("NotEqual", Some("keras.layers")));
    }

    #[test]
    fn unsupported_op_listed_with_module() {
        let mut l = LayerConfig {
            class_name: "Median".into(),
            module: Some("keras.src.ops.numpy".into()),
            registered_name: None,
            name: "median".into(),
            config: Json::Null,
            inbound_nodes: Vec::new(),
            build_config: None,
            shared_object_id: None,
            nested: None,
            branches: Vec::new(),
            raw: Json::Null,
        };
        let u = unsupported(&l);
        assert_eq!(u.to_string(), "layer `median`: Keras op `keras.src.ops.numpy.Median` is not one strata runs yet");
        l.module = Some("keras.layers".into());
        assert!(!crate::layers::is_supported_in(&l.class_name, l.module.as_deref()));
    }

    #[test]
    fn tile_and_slices_refuse_absurd_sizes() {
        let m = Meta { name: "t".into(), class: "Tile".into() };
        let x = t(&[2, 2], &[1., 2., 3., 4.]);
        let e = tile(&m, &x, &[1 << 20, 1 << 20]).unwrap_err().to_string();
        assert!(e.contains("too large"), "{e}");
        assert_eq!(tile(&m, &x, &[1, 2]).unwrap().to_vec(), vec![1., 2., 1., 2., 3., 4., 3., 4.]);
        // a huge step selects the start only, without overflow
        assert_eq!(slice_indices(&m, 5, Some(1), None, Some(i64::MAX)).unwrap(), vec![1]);
        assert_eq!(slice_indices(&m, 5, None, None, Some(i64::MIN + 1)).unwrap(), vec![4]);
        assert_eq!(slice_indices(&m, 5, Some(-1), Some(0), Some(-2)).unwrap(), vec![4, 2]);
    }

    #[test]
    fn erf_is_accurate() {
        for (x, want) in [
            (0.1f64, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.5, 0.9661051464753108),
            (-2.0, -0.9953222650189527),
        ] {
            assert!((erf64(x) - want).abs() < 2e-7, "erf({x}) = {}", erf64(x));
        }
    }

    /// The tape's gradient of `sum(f(x) * c)` against central differences in f64-free f32 (loose
    /// tolerance: it checks formulas, not rounding).
    fn check_grad(what: &str, x: &Tensor, f: &dyn Fn(&Tensor) -> Tensor) {
        let tape = strata_tensor::Tape::new();
        let xw = tape.watch(x);
        let y = f(&xw);
        let c: Vec<f32> = (0..y.len()).map(|i| 0.5 + (i % 5) as f32 * 0.3).collect();
        let c = Tensor::from_vec(y.shape(), c).unwrap();
        let loss = |y: &Tensor| y.mul(&c).unwrap().sum(None, false).unwrap();
        let g = tape.backward(&loss(&y)).unwrap();
        let got = g.get(&xw).unwrap_or_else(|| panic!("{what}: no gradient")).to_vec();
        let h = 1e-2f32;
        for i in 0..x.len() {
            let mut p = x.to_vec();
            p[i] += h;
            let mut q = x.to_vec();
            q[i] -= h;
            let fp = loss(&f(&Tensor::from_vec(x.shape(), p).unwrap())).item().unwrap();
            let fq = loss(&f(&Tensor::from_vec(x.shape(), q).unwrap())).item().unwrap();
            let fd = (fp - fq) / (2.0 * h);
            assert!(
                (fd - got[i]).abs() <= 2e-2 * (1.0 + fd.abs()),
                "{what}: d/dx[{i}] tape {} vs differences {fd}",
                got[i]
            );
        }
    }

    #[test]
    fn unary_op_gradients_match_differences() {
        let general = t(&[5], &[-2.3, -0.7, 0.4, 1.6, 2.9]);
        let positive = t(&[4], &[0.3, 0.9, 1.7, 4.2]);
        let above_one = t(&[3], &[1.3, 2.2, 4.5]);
        let unit = t(&[4], &[-0.8, -0.3, 0.2, 0.7]);
        let ops: &[(Un, &Tensor)] = &[
            (Un::Abs, &general),
            (Un::Neg, &general),
            (Un::Sqrt, &positive),
            (Un::Square, &general),
            (Un::Exp, &general),
            (Un::Exp2, &general),
            (Un::Log, &positive),
            (Un::Log2, &positive),
            (Un::Log10, &positive),
            (Un::Log1p, &positive),
            (Un::Expm1, &general),
            (Un::Sin, &general),
            (Un::Cos, &general),
            (Un::Tan, &unit),
            (Un::Tanh, &general),
            (Un::Sinh, &general),
            (Un::Cosh, &general),
            (Un::Asin, &unit),
            (Un::Acos, &unit),
            (Un::Atan, &general),
            (Un::Asinh, &general),
            (Un::Acosh, &above_one),
            (Un::Atanh, &unit),
            (Un::Recip, &positive),
            (Un::Identity, &general),
            (Un::Relu, &general),
            (Un::Relu6, &general),
            (Un::Sigmoid, &general),
            (Un::Silu, &general),
            (Un::Gelu { approximate: true }, &general),
            (Un::Gelu { approximate: false }, &general),
            (Un::Elu(0.7), &general),
            (Un::Selu, &general),
            (Un::Celu(1.3), &general),
            (Un::LeakyRelu(0.2), &general),
            (Un::Softplus, &general),
            (Un::Softsign, &general),
            (Un::HardSigmoid, &general),
            (Un::HardSilu, &general),
            (Un::HardTanh, &unit),
            (Un::LogSigmoid, &general),
            (Un::Erf, &general),
            (Un::Erfc, &general),
            (Un::Rsqrt, &positive),
            (Un::Clip(-1.0, 1.5), &general),
            (Un::SoftShrink(0.5), &general),
            (Un::HardShrink(0.5), &general),
            (Un::TanhShrink, &general),
            (Un::SparsePlus, &general),
            (Un::SparseSigmoid, &unit),
            (Un::Squareplus(4.0), &general),
            (Un::Threshold(0.1, -1.0), &general),
        ];
        for &(op, x) in ops {
            check_grad(&format!("{op:?}"), x, &|x| unary(op, x));
        }
        // piecewise-constant ops stay untracked
        let tape = strata_tensor::Tape::new();
        assert!(!unary(Un::Floor, &tape.watch(&general)).is_tracked());
    }

    #[test]
    fn raw_kernel_gradients_match_differences() {
        let m = Meta { name: "t".into(), class: "T".into() };
        let x = t(&[2, 3], &[0.5, -1.2, 2.0, 1.5, 0.8, -0.6]);
        let y = t(&[2, 3], &[1.5, 2.2, -1.3, 0.7, -0.9, 2.4]);
        check_grad("mod", &x, &|x| binary(&m, Bin::Mod, x, &y).unwrap());
        check_grad("mod divisor", &y, &|y| binary(&m, Bin::Mod, &x, y).unwrap());
        check_grad("atan2", &x, &|x| binary(&m, Bin::Atan2, x, &y).unwrap());
        check_grad("div_no_nan", &y, &|y| binary(&m, Bin::DivNoNan, &x, y).unwrap());
        check_grad("cumsum", &x, &|x| scan(&m, x, 1, false).unwrap());
        check_grad("cumprod", &x, &|x| scan(&m, x, 0, true).unwrap());
        check_grad("prod", &x, &|x| reduce(&m, x, Red::Prod, Some(&[1]), false).unwrap());
        check_grad("prod all", &x, &|x| reduce(&m, x, Red::Prod, None, true).unwrap());
        check_grad("sort", &x, &|x| sort(&m, x, 1).unwrap());
        check_grad("tile", &x, &|x| tile(&m, x, &[2, 1]).unwrap());
        check_grad("repeat", &x, &|x| repeat(&m, x, &[1, 3, 2], Some(1)).unwrap());
        check_grad("einsum matmul", &x, &|x| einsum(&m, "ij,kj->ik", &[x.clone(), y.clone()]).unwrap());
        check_grad("einsum trace", &t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]), &|x| {
            einsum(&m, "ii->i", std::slice::from_ref(x)).unwrap()
        });
        let img = Tensor::from_vec(&[1, 2, 3, 1], vec![0.1, 0.7, -0.4, 1.2, 0.3, 0.9]).unwrap();
        check_grad("resize bilinear", &img, &|x| resize(&m, x, [3, 5], true).unwrap());
        check_grad("resize nearest", &img, &|x| resize(&m, x, [4, 2], false).unwrap());
        check_grad("cast f16", &x, &|x| cast(x, CastTo::Half(DType::F16)));
    }
}
