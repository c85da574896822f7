//! tf-keras layers that wrap raw TensorFlow ops called on Keras tensors: `TFOpLambda`
//! (`tf.nn.relu(x)`, `x + 1.0`, `tf.reduce_mean(x, axis=1)`, ...) and `SlicingOpLambda`
//! (`x[:, 1:3]`). The op's arguments come from the graph node: positional tensors, a leading
//! `_CONSTANT_VALUE` argument, and keyword arguments (constants, or tensors the executor appends
//! after the positional ones in sorted-key order).

use crate::cfg::{Meta, get};
use crate::error::Result;
use crate::layers::Layer;
use strata_format::config::LayerConfig;
use strata_format::config::keras2::CONSTANT_VALUE;
use strata_format::json::Json;
use strata_tensor::{Tensor, UnaryOp};

/// An op argument: a tensor from the graph or a constant from the node.
#[derive(Debug, Clone)]
enum Arg {
    T(Tensor),
    C(Json),
}

/// The ops strata maps, by what they do.
#[derive(Debug, Clone, Copy, PartialEq)]
enum OpKind {
    Binary(strata_tensor::BinaryOp),
    SquaredDifference,
    Unary(UnaryOp),
    Relu6,
    Elu,
    Selu,
    Gelu,
    Silu,
    Identity,
    Cast,
    Softmax { log: bool },
    Reduce(Reduce),
    Reshape,
    Transpose,
    Concat,
    Stack,
    ExpandDims,
    Squeeze,
    Matmul,
    Clip,
    GetItem,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Reduce {
    Mean,
    Sum,
    Max,
    Min,
}

/// The op and its parameter names in TensorFlow's order.
fn lookup(function: &str) -> Option<(OpKind, &'static [&'static str])> {
    use OpKind as K;
    use strata_tensor::BinaryOp as B;
    const XY: &[&str] = &["x", "y"];
    const X: &[&str] = &["x"];
    const F: &[&str] = &["features"];
    const RED: &[&str] = &["input_tensor", "axis", "keepdims"];
    let f = function.strip_prefix("tf.").unwrap_or(function);
    Some(match f {
        "__operators__.add" | "math.add" | "add" => (K::Binary(B::Add), XY),
        "math.subtract" | "subtract" | "__operators__.sub" => (K::Binary(B::Sub), XY),
        "math.multiply" | "multiply" | "__operators__.mul" => (K::Binary(B::Mul), XY),
        "math.truediv" | "math.divide" | "truediv" | "divide" | "__operators__.truediv" | "math.divide_no_nan" => {
            (K::Binary(B::Div), XY)
        }
        "math.maximum" | "maximum" => (K::Binary(B::Max), XY),
        "math.minimum" | "minimum" => (K::Binary(B::Min), XY),
        "math.pow" | "pow" => (K::Binary(B::Pow), XY),
        "math.squared_difference" => (K::SquaredDifference, XY),
        "nn.relu" => (K::Unary(UnaryOp::Relu), F),
        "nn.relu6" => (K::Relu6, F),
        "nn.elu" => (K::Elu, F),
        "nn.selu" => (K::Selu, F),
        "nn.gelu" => (K::Gelu, &["features", "approximate"]),
        "nn.silu" | "nn.swish" => (K::Silu, F),
        "math.sigmoid" | "nn.sigmoid" | "sigmoid" => (K::Unary(UnaryOp::Sigmoid), X),
        "math.tanh" | "nn.tanh" | "tanh" => (K::Unary(UnaryOp::Tanh), X),
        "math.exp" | "exp" => (K::Unary(UnaryOp::Exp), X),
        "math.log" => (K::Unary(UnaryOp::Log), X),
        "math.sqrt" | "sqrt" => (K::Unary(UnaryOp::Sqrt), X),
        "math.rsqrt" => (K::Unary(UnaryOp::Rsqrt), X),
        "math.square" | "square" => (K::Unary(UnaryOp::Square), X),
        "math.abs" | "abs" => (K::Unary(UnaryOp::Abs), X),
        "math.negative" | "negative" | "__operators__.neg" => (K::Unary(UnaryOp::Neg), X),
        "math.reciprocal" => (K::Unary(UnaryOp::Recip), X),
        "math.softplus" | "nn.softplus" => (K::Unary(UnaryOp::Softplus), F),
        "math.sin" => (K::Unary(UnaryOp::Sin), X),
        "math.cos" => (K::Unary(UnaryOp::Cos), X),
        "identity" => (K::Identity, &["input"]),
        "cast" | "dtypes.cast" => (K::Cast, &["x", "dtype"]),
        "nn.softmax" | "math.softmax" => (K::Softmax { log: false }, &["logits", "axis"]),
        "nn.log_softmax" | "math.log_softmax" => (K::Softmax { log: true }, &["logits", "axis"]),
        "math.reduce_mean" | "reduce_mean" => (K::Reduce(Reduce::Mean), RED),
        "math.reduce_sum" | "reduce_sum" => (K::Reduce(Reduce::Sum), RED),
        "math.reduce_max" | "reduce_max" => (K::Reduce(Reduce::Max), RED),
        "math.reduce_min" | "reduce_min" => (K::Reduce(Reduce::Min), RED),
        "reshape" => (K::Reshape, &["tensor", "shape"]),
        "compat.v1.transpose" | "transpose" => (K::Transpose, &["a", "perm", "name", "conjugate"]),
        "concat" => (K::Concat, &["values", "axis"]),
        "stack" => (K::Stack, &["values", "axis"]),
        "expand_dims" => (K::ExpandDims, &["input", "axis"]),
        "squeeze" | "compat.v1.squeeze" => (K::Squeeze, &["input", "axis"]),
        "linalg.matmul" | "matmul" => (K::Matmul, &["a", "b", "transpose_a", "transpose_b"]),
        "clip_by_value" => (K::Clip, &["t", "clip_value_min", "clip_value_max"]),
        "__operators__.getitem" => (K::GetItem, &["tensor", "slice_spec"]),
        _ => return None,
    })
}

/// A TF 1.x `TensorFlowOpLayer` op name as the matching `tf.*` function, and how its inputs
/// (`NodeDef.input`, in order) and attributes map to that function's parameters.
fn node_op(op: &str) -> Option<(&'static str, &'static [&'static str])> {
    const XY: &[&str] = &["x", "y"];
    const X: &[&str] = &["x"];
    const RED: &[&str] = &["input_tensor", "axis"];
    Some(match op {
        "AddV2" | "Add" => ("math.add", XY),
        "Sub" => ("math.subtract", XY),
        "Mul" => ("math.multiply", XY),
        "RealDiv" | "Div" => ("math.truediv", XY),
        "Maximum" => ("math.maximum", XY),
        "Minimum" => ("math.minimum", XY),
        "Pow" => ("math.pow", XY),
        "SquaredDifference" => ("math.squared_difference", XY),
        "Relu" => ("nn.relu", &["features"]),
        "Relu6" => ("nn.relu6", &["features"]),
        "Elu" => ("nn.elu", &["features"]),
        "Selu" => ("nn.selu", &["features"]),
        "Softplus" => ("nn.softplus", &["features"]),
        "Sigmoid" => ("math.sigmoid", X),
        "Tanh" => ("math.tanh", X),
        "Exp" => ("math.exp", X),
        "Log" => ("math.log", X),
        "Sqrt" => ("math.sqrt", X),
        "Rsqrt" => ("math.rsqrt", X),
        "Square" => ("math.square", X),
        "Neg" => ("math.negative", X),
        "Abs" => ("math.abs", X),
        "Reciprocal" | "Inv" => ("math.reciprocal", X),
        "Identity" => ("identity", &["input"]),
        "Softmax" => ("nn.softmax", &["logits"]),
        "LogSoftmax" => ("nn.log_softmax", &["logits"]),
        "Mean" => ("math.reduce_mean", RED),
        "Sum" => ("math.reduce_sum", RED),
        "Max" => ("math.reduce_max", RED),
        "Min" => ("math.reduce_min", RED),
        "Reshape" => ("reshape", &["tensor", "shape"]),
        "Transpose" => ("transpose", &["a", "perm"]),
        "ExpandDims" => ("expand_dims", &["input", "axis"]),
        "Squeeze" => ("squeeze", &["input"]),
        "MatMul" | "BatchMatMul" | "BatchMatMulV2" => ("linalg.matmul", &["a", "b"]),
        "ConcatV2" => ("concat", &[]),
        _ => return None,
    })
}

/// A built TF 1.x `TensorFlowOpLayer` (a `NodeDef` with constant inputs).
pub(super) struct NodeOp {
    inner: TfOp,
    /// `NodeDef.input` positions: `Some(constant)` or `None` (the next graph tensor).
    slots: Vec<Option<Json>>,
    node_params: &'static [&'static str],
    /// Attributes turned into keyword constants (`keep_dims`, `transpose_a`, `squeeze_dims` ...).
    attrs: Vec<(String, Json)>,
}

/// Builds a `TensorFlowOpLayer` from its `node_def` and `constants`.
pub(super) fn build_node(layer: &LayerConfig) -> Result<NodeOp> {
    let m = Meta::of(layer);
    let nd = get(&layer.config, "node_def").ok_or_else(|| m.cfg_err("node_def", "is missing"))?;
    let op = nd.get("op").and_then(Json::as_str).ok_or_else(|| m.cfg_err("node_def", "has no `op`"))?;
    let (function, node_params) = node_op(op).ok_or_else(|| {
        m.cfg_err(
            "node_def",
            format!(
                "has op `{op}`, a TensorFlowOpLayer op strata does not map; strata maps elementwise math, \
                 activations, Mean/Sum/Max/Min, Reshape, Transpose, ExpandDims, Squeeze, MatMul and ConcatV2"
            ),
        )
    })?;
    let n_inputs = nd.get("input").and_then(Json::as_array).map_or(0, |a| a.len());
    let constants = get(&layer.config, "constants");
    let slots = (0..n_inputs)
        .map(|i| constants.and_then(|c| c.get(&i.to_string())).filter(|v| !v.is_null()).cloned())
        .collect();
    let (kind, params) = lookup(function).ok_or_else(|| m.cfg_err("node_def", format!("op `{op}` has no mapping")))?;
    let attr = |k: &str| nd.get("attr").and_then(|a| a.get(k));
    let mut attrs = Vec::new();
    for (key, field, to) in [
        ("keep_dims", "b", "keepdims"),
        ("transpose_a", "b", "transpose_a"),
        ("transpose_b", "b", "transpose_b"),
        ("adj_x", "b", "transpose_a"),
        ("adj_y", "b", "transpose_b"),
    ] {
        if let Some(v) = attr(key).and_then(|a| a.get(field)) {
            attrs.push((to.to_string(), v.clone()));
        }
    }
    if let Some(dims) = attr("squeeze_dims").and_then(|a| a.get("list")).and_then(|l| l.get("i")) {
        // protobuf JSON writes int64 lists as strings
        let ints: Vec<Json> = dims
            .as_array()
            .unwrap_or(&[])
            .iter()
            .filter_map(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
            .map(Json::from)
            .collect();
        attrs.push(("axis".to_string(), Json::Array(ints)));
    }
    if op == "Softmax" || op == "LogSoftmax" {
        attrs.push(("axis".to_string(), Json::from(-1i64)));
    }
    let inner = TfOp {
        meta: m,
        function: function.to_string(),
        kind,
        params,
        leading_const: None,
        kw_consts: Vec::new(),
        kw_tensors: Vec::new(),
    };
    Ok(NodeOp { inner, slots, node_params, attrs })
}

impl Layer for NodeOp {
    fn name(&self) -> &str {
        &self.inner.meta.name
    }
    fn class_name(&self) -> &str {
        &self.inner.meta.class
    }
    fn forward(&self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let m = &self.inner.meta;
        let need = self.slots.iter().filter(|s| s.is_none()).count();
        if inputs.len() != need {
            return Err(m.arity(&need.to_string(), inputs.len()));
        }
        let mut tensors = inputs.iter();
        let full: Vec<Arg> = self
            .slots
            .iter()
            .map(|s| match s {
                Some(c) => Arg::C(c.clone()),
                None => Arg::T(tensors.next().cloned().unwrap_or_else(|| Tensor::scalar(0.0))),
            })
            .collect();
        let mut args: Vec<(String, Arg)> = Vec::new();
        let mut values = Vec::new();
        if self.inner.kind == OpKind::Concat {
            let (axis, vals) = full.split_last().ok_or_else(|| m.arity("2 or more", 0))?;
            for v in vals {
                values.push(self.inner.tensor("values", v)?);
            }
            args.push(("axis".to_string(), axis.clone()));
        } else {
            if full.len() > self.node_params.len() {
                return Err(m.arity(&self.node_params.len().to_string(), full.len()));
            }
            args.extend(self.node_params.iter().map(|s| s.to_string()).zip(full));
        }
        let axis_tensor = args.iter().position(|(k, a)| k == "axis" && matches!(a, Arg::T(_)));
        if let Some(i) = axis_tensor {
            return Err(self.inner.err(&args.get(i).map_or("axis".into(), |a| a.0.clone()), "is a graph tensor"));
        }
        args.extend(self.attrs.iter().map(|(k, v)| (k.clone(), Arg::C(v.clone()))));
        Ok(vec![self.inner.eval(&args, &values)?])
    }
}

/// A built `TFOpLambda` / `SlicingOpLambda`.
pub(super) struct TfOp {
    meta: Meta,
    function: String,
    kind: OpKind,
    params: &'static [&'static str],
    /// A constant first positional argument (`_CONSTANT_VALUE`).
    leading_const: Option<Json>,
    /// Keyword constants.
    kw_consts: Vec<(String, Json)>,
    /// Keyword tensors, in the order the executor appends them.
    kw_tensors: Vec<String>,
}

fn is_tensor_ref(v: &Json) -> bool {
    matches!(v.as_array(), Some([Json::String(_), n, t]) if n.as_u64().is_some() && t.as_u64().is_some())
}

/// Builds a `TFOpLambda`/`SlicingOpLambda` from its config and first graph node.
pub(super) fn build(layer: &LayerConfig) -> Result<TfOp> {
    let m = Meta::of(layer);
    let function = get(&layer.config, "function")
        .and_then(Json::as_str)
        .ok_or_else(|| m.cfg_err("function", "is missing"))?
        .to_string();
    let (kind, params) = lookup(&function).ok_or_else(|| {
        m.cfg_err(
            "function",
            format!(
                "names `tf.{function}`, a TFOpLambda `tf.{}` is not one strata maps; strata maps elementwise math, \
                 nn activations, reductions, reshape/transpose/concat/stack/expand_dims/squeeze, matmul and slicing \
                 (rebuild the model with Keras layers for other ops)",
                function.strip_prefix("tf.").unwrap_or(&function)
            ),
        )
    })?;
    let node = layer.inbound_nodes.first();
    let mut kw_consts = Vec::new();
    let mut kw_tensors = Vec::new();
    if let Some(Json::Object(o)) = node.map(|n| &n.kwargs) {
        let mut keys: Vec<&str> = o.iter().map(|(k, _)| k).collect();
        keys.sort_unstable();
        for k in keys {
            let Some(v) = o.get(k) else { continue };
            if k == "name" {
                continue;
            }
            if is_tensor_ref(v) {
                kw_tensors.push(k.to_string());
            } else if v.as_array().is_some_and(|a| a.iter().any(is_tensor_ref)) {
                return Err(m.cfg_err(k, "mixes tensors and constants in one argument, which strata does not map"));
            } else {
                kw_consts.push((k.to_string(), v.clone()));
            }
        }
    }
    // `[["_CONSTANT_VALUE", -1, value, kwargs]]`: the first positional argument is a constant.
    let leading_const = node.and_then(|n| {
        let entries = n.args_structure.as_array()?;
        let first = entries.first()?.as_array()?;
        (first.first()?.as_str() == Some(CONSTANT_VALUE)).then(|| first.get(2).cloned()).flatten()
    });
    if layer.inbound_nodes.len() > 1 {
        return Err(m.cfg_err("inbound_nodes", "calls the op layer more than once; strata maps single-call op layers"));
    }
    Ok(TfOp { meta: m, function, kind, params, leading_const, kw_consts, kw_tensors })
}

impl TfOp {
    fn err(&self, key: &str, problem: impl Into<String>) -> crate::error::Error {
        self.meta.cfg_err(key, format!("of `tf.{}` {}", self.function, problem.into()))
    }

    fn int(&self, key: &str, v: &Json) -> Result<isize> {
        v.as_i64().and_then(|i| isize::try_from(i).ok()).ok_or_else(|| self.err(key, "is not an integer"))
    }

    fn ints(&self, key: &str, v: &Json) -> Result<Vec<isize>> {
        match v {
            Json::Array(a) => a.iter().map(|e| self.int(key, e)).collect(),
            other => Ok(vec![self.int(key, other)?]),
        }
    }

    fn tensor(&self, key: &str, a: &Arg) -> Result<Tensor> {
        match a {
            Arg::T(t) => Ok(t.clone()),
            Arg::C(v) => match v {
                Json::Array(_) => {
                    let flat = flatten_numbers(v).ok_or_else(|| self.err(key, "is a constant that is not numeric"))?;
                    let shape = nested_shape(v);
                    self.meta.t(Tensor::from_vec(&shape, flat))
                }
                _ => {
                    let f = v.as_f64().ok_or_else(|| self.err(key, "is a constant that is not a number"))?;
                    Ok(Tensor::scalar(f as f32))
                }
            },
        }
    }

    fn run(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let m = &self.meta;
        let n_pos = inputs
            .len()
            .checked_sub(self.kw_tensors.len())
            .ok_or_else(|| m.arity(&format!("at least {}", self.kw_tensors.len()), inputs.len()))?;
        let (pos, kw) = inputs.split_at(n_pos);
        let mut args: Vec<(String, Arg)> = Vec::new();
        let list_op = matches!(self.kind, OpKind::Concat | OpKind::Stack);
        if list_op {
            // values: the positional tensors (a list), axis from kwargs.
            for (i, t) in pos.iter().enumerate() {
                args.push((format!("values{i}"), Arg::T(t.clone())));
            }
        } else {
            let mut names = self.params.iter();
            if let Some(c) = &self.leading_const
                && let Some(n) = names.next()
            {
                args.push((n.to_string(), Arg::C(c.clone())));
            }
            for t in pos {
                let n = names.next().ok_or_else(|| m.arity(&format!("at most {}", self.params.len()), inputs.len()))?;
                args.push((n.to_string(), Arg::T(t.clone())));
            }
        }
        for (k, t) in self.kw_tensors.iter().zip(kw) {
            args.push((k.clone(), Arg::T(t.clone())));
        }
        for (k, v) in &self.kw_consts {
            args.push((k.clone(), Arg::C(v.clone())));
        }
        self.eval(&args, pos)
    }

    /// Evaluates the op on named arguments; `values` are the tensors of a list argument (concat/stack).
    fn eval(&self, args: &[(String, Arg)], values: &[Tensor]) -> Result<Tensor> {
        let m = &self.meta;
        let list_op = matches!(self.kind, OpKind::Concat | OpKind::Stack);
        let known = |k: &str| self.params.contains(&k) || (list_op && k.starts_with("values"));
        if let Some((k, _)) = args.iter().find(|(k, _)| !known(k)) {
            return Err(self.err(k, "is an argument strata does not map"));
        }
        let arg = |k: &str| args.iter().find(|(n, _)| n == k).map(|(_, a)| a);
        let need = |k: &str| arg(k).ok_or_else(|| self.err(k, "is missing"));
        let constant = |k: &str| -> Result<Option<&Json>> {
            match arg(k) {
                None => Ok(None),
                Some(Arg::C(v)) if v.is_null() => Ok(None),
                Some(Arg::C(v)) => Ok(Some(v)),
                Some(Arg::T(_)) => Err(self.err(k, "is a tensor; strata needs a constant here")),
            }
        };
        let flag = |k: &str| -> Result<bool> {
            Ok(match constant(k)? {
                None => false,
                Some(v) => v.as_bool().ok_or_else(|| self.err(k, "is not a boolean"))?,
            })
        };
        let first = || -> Result<Tensor> {
            let k = self.params.first().copied().unwrap_or("x");
            self.tensor(k, need(k)?)
        };
        // elementwise `f` with derivative `df(x)` (recorded on the tape when `x` is tracked)
        let map = |x: &Tensor, f: &dyn Fn(f32) -> f32, df: fn(f32) -> f32| {
            let y = m.t(Tensor::from_vec(x.shape(), x.as_slice().iter().map(|&v| f(v)).collect()))?;
            m.t(crate::grad::unary("tf_op", x, y, move |v, _| df(v)))
        };
        use OpKind as K;
        Ok(match self.kind {
            K::Binary(op) => {
                let (x, y) = (self.tensor("x", need("x")?)?, self.tensor("y", need("y")?)?);
                m.t(strata_tensor::binary(op, &x, &y))?
            }
            K::SquaredDifference => {
                let (x, y) = (self.tensor("x", need("x")?)?, self.tensor("y", need("y")?)?);
                m.t(x.sub(&y))?.square()
            }
            K::Unary(op) => first()?.map(op),
            K::Relu6 => map(&first()?, &|v| v.clamp(0.0, 6.0), |v| f32::from(u8::from(v > 0.0 && v < 6.0)))?,
            K::Elu => {
                map(&first()?, &|v| if v > 0.0 { v } else { v.exp_m1() }, |v| if v > 0.0 { 1.0 } else { v.exp() })?
            }
            K::Selu => m.t(crate::activation::Activation::Selu.apply(&first()?))?,
            K::Gelu => {
                let approximate = flag("approximate")?;
                m.t(crate::activation::Activation::Gelu { approximate }.apply(&first()?))?
            }
            K::Silu => m.t(crate::activation::Activation::Swish.apply(&first()?))?,
            K::Identity => first()?,
            K::Cast => {
                let dtype = constant("dtype")?.and_then(Json::as_str).unwrap_or("float32");
                if !matches!(dtype, "float32" | "float64" | "float16" | "bfloat16") {
                    return Err(self.err("dtype", format!("is `{dtype}`; strata maps casts between float types only")));
                }
                first()?
            }
            K::Softmax { log } => {
                let axis = match constant("axis")? {
                    None => -1,
                    Some(v) => self.int("axis", v)?,
                };
                let x = first()?;
                if log { m.t(x.log_softmax(axis))? } else { m.t(x.softmax(axis))? }
            }
            K::Reduce(r) => {
                let x = first()?;
                let axes = constant("axis")?.map(|v| self.ints("axis", v)).transpose()?;
                let keep = flag("keepdims")?;
                let axes = axes.as_deref();
                m.t(match r {
                    Reduce::Mean => x.mean(axes, keep),
                    Reduce::Sum => x.sum(axes, keep),
                    Reduce::Max => x.max(axes, keep),
                    Reduce::Min => x.min(axes, keep),
                })?
            }
            K::Reshape => {
                let shape = constant("shape")?.ok_or_else(|| self.err("shape", "is missing"))?;
                let shape = self.ints("shape", shape)?;
                let x = first()?;
                m.t(x.reshape_infer(&shape))?
            }
            K::Transpose => {
                let x = first()?;
                let perm: Vec<usize> = match constant("perm")? {
                    None => (0..x.rank()).rev().collect(),
                    Some(v) => self
                        .ints("perm", v)?
                        .into_iter()
                        .map(|p| usize::try_from(p).map_err(|_| self.err("perm", "holds a negative axis")))
                        .collect::<Result<_>>()?,
                };
                m.t(x.permute(&perm))?
            }
            K::Concat | K::Stack => {
                let axis = match constant("axis")? {
                    None => 0,
                    Some(v) => self.int("axis", v)?,
                };
                let ts: Vec<&Tensor> = values.iter().collect();
                if self.kind == K::Concat {
                    m.t(strata_tensor::concat(&ts, axis))?
                } else {
                    m.t(strata_tensor::stack(&ts, axis))?
                }
            }
            K::ExpandDims => {
                let axis = constant("axis")?.ok_or_else(|| self.err("axis", "is missing"))?;
                m.t(first()?.unsqueeze(self.int("axis", axis)?))?
            }
            K::Squeeze => {
                let x = first()?;
                let axes = match constant("axis")? {
                    None => x.shape().iter().enumerate().filter(|(_, d)| **d == 1).map(|(i, _)| i as isize).collect(),
                    Some(v) => self.ints("axis", v)?,
                };
                let norm = m.t(strata_tensor::shape::normalize_axes("squeeze", &axes, x.shape()))?;
                if norm.iter().any(|&a| x.shape().get(a) != Some(&1)) {
                    return Err(
                        self.err("axis", format!("{axes:?} names an axis of {:?} whose size is not 1", x.shape()))
                    );
                }
                let shape: Vec<usize> =
                    x.shape().iter().enumerate().filter(|(i, _)| !norm.contains(i)).map(|(_, &d)| d).collect();
                m.t(x.reshape(&shape))?
            }
            K::Matmul => {
                let (a, b) = (self.tensor("a", need("a")?)?, self.tensor("b", need("b")?)?);
                let swap = |t: Tensor, on: bool| -> Result<Tensor> {
                    if !on {
                        return Ok(t);
                    }
                    let r = t.rank();
                    if r < 2 {
                        return Err(self.err("transpose_a", "needs rank >= 2 operands"));
                    }
                    let mut p: Vec<usize> = (0..r).collect();
                    p.swap(r - 1, r - 2);
                    m.t(t.permute(&p))
                };
                let a = swap(a, flag("transpose_a")?)?;
                let b = swap(b, flag("transpose_b")?)?;
                m.t(a.matmul(&b))?
            }
            K::Clip => {
                let x = first()?;
                let lo = self.tensor("clip_value_min", need("clip_value_min")?)?;
                let hi = self.tensor("clip_value_max", need("clip_value_max")?)?;
                m.t(m.t(x.maximum(&lo))?.minimum(&hi))?
            }
            K::GetItem => {
                let spec = constant("slice_spec")?.ok_or_else(|| self.err("slice_spec", "is missing"))?;
                self.getitem(&first()?, spec)?
            }
        })
    }

    /// `x[spec]` for slices (`{"start", "stop", "step"}` with a positive step) and integer indices.
    fn getitem(&self, x: &Tensor, spec: &Json) -> Result<Tensor> {
        let m = &self.meta;
        let items: Vec<&Json> = match spec {
            Json::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        if items.len() > x.rank() {
            return Err(self.err("slice_spec", format!("indexes {} axes of a rank-{} tensor", items.len(), x.rank())));
        }
        let mut y = x.clone();
        let mut drop = Vec::new();
        for (axis, it) in items.iter().enumerate() {
            let d = x.shape().get(axis).copied().unwrap_or(0) as isize;
            let clampi = |v: isize| if v < 0 { (v + d).clamp(0, d) } else { v.clamp(0, d) } as usize;
            match it {
                Json::Object(o) => {
                    let field = |k: &str| -> Result<Option<isize>> {
                        match o.get(k) {
                            None | Some(Json::Null) => Ok(None),
                            Some(v) => self.int("slice_spec", v).map(Some),
                        }
                    };
                    let step = field("step")?.unwrap_or(1);
                    if step <= 0 {
                        return Err(self.err("slice_spec", format!("has step {step}; strata maps positive steps only")));
                    }
                    let start = field("start")?.map(clampi).unwrap_or(0);
                    let stop = field("stop")?.map(clampi).unwrap_or(d as usize).max(start);
                    let idx: Vec<f32> = (start..stop).step_by(step as usize).map(|i| i as f32).collect();
                    let idx = m.t(Tensor::from_vec(&[idx.len()], idx))?;
                    y = m.t(y.take(&idx, axis as isize))?;
                }
                v => {
                    let i = self.int("slice_spec", v)?;
                    let j = if i < 0 { i + d } else { i };
                    if j < 0 || j >= d {
                        return Err(
                            self.err("slice_spec", format!("index {i} is out of range for axis {axis} of size {d}"))
                        );
                    }
                    y = m.t(y.slice_axis(axis as isize, j as usize, j as usize + 1))?;
                    drop.push(axis);
                }
            }
        }
        if drop.is_empty() {
            return Ok(y);
        }
        let shape: Vec<usize> =
            y.shape().iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, &d)| d).collect();
        m.t(y.reshape(&shape))
    }
}

fn flatten_numbers(v: &Json) -> Option<Vec<f32>> {
    match v {
        Json::Array(a) => {
            let mut out = Vec::new();
            for e in a {
                out.extend(flatten_numbers(e)?);
            }
            Some(out)
        }
        other => other.as_f64().map(|f| vec![f as f32]),
    }
}

fn nested_shape(v: &Json) -> Vec<usize> {
    let mut shape = Vec::new();
    let mut cur = v;
    while let Some(a) = cur.as_array() {
        shape.push(a.len());
        match a.first() {
            Some(f) => cur = f,
            None => break,
        }
    }
    shape
}

impl Layer for TfOp {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        Ok(vec![self.run(inputs)?])
    }
    /// Keyword tensors (`y=`, `b=`, ...) follow the positional ones in `kw_tensors` order.
    fn call(
        &self,
        inputs: &[Tensor],
        masks: &[Option<Tensor>],
        args: &crate::layers::CallArgs<'_>,
    ) -> Result<crate::layers::Masked> {
        let (all, all_masks) = super::with_kw_tensors(inputs, masks, &self.kw_tensors, args, &self.meta)?;
        self.forward_masked(&all, &all_masks, args.training)
    }
}
