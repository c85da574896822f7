//! Reverse-mode automatic differentiation, transparent at the [`Tensor`] level (PyTorch-autograd style).
//!
//! # Design
//!
//! A [`Tape`] is an append-only list of nodes behind an `Arc<Mutex<..>>`. [`Tape::watch`] returns a
//! *tracked* copy of a tensor: the same values plus a small handle (`Option<Arc<Tracked>>` inside
//! [`Tensor`]: the tape and the id of its node). Every tensor operation runs its forward kernel as
//! usual; then, if one of its inputs is tracked, it appends a node (the operation, the parameters
//! its gradient needs, its inputs' values and node ids, its output value) to that tape and returns a
//! tracked output. Untracked inputs are constants. When no input is tracked, the only cost is one
//! branch per operation, so inference code is unchanged and as fast as before.
//!
//! Because the tape is reached through the inputs, there is no global state: code written with plain
//! `Tensor` operations (every layer of `strata-layers`, a user's custom layer) becomes differentiable
//! by passing it tracked tensors, from any thread.
//!
//! [`Tape::backward`] seeds the loss gradient with ones (a non-scalar loss is treated as the sum of
//! its elements, as `tf.GradientTape` does) and walks the nodes from the loss back to the start;
//! that is a valid reverse topological order because a node only uses nodes recorded before it.
//! [`Gradients::get`] returns the gradient for a watched tensor.
//!
//! # Rules
//!
//! - Only watched tensors (leaves) get gradients back; interior gradients are freed as soon as they
//!   have been propagated, so peak memory stays near one gradient per live activation.
//! - Broadcasting ops reduce the gradient back to each input's shape ([`Tensor::sum_to`]).
//! - [`Tensor::detach`] returns an untracked copy: gradients stop there.
//! - One computation, one tape. An operation whose inputs are tracked by two different tapes fails
//!   with [`Error::TapeMismatch`]; detach the tensors of one tape to use them as constants of the
//!   other. [`Tape::watch`] on a tensor that another tape tracks starts a fresh leaf on this tape
//!   (the old tape does not see what follows). Gradients are not themselves tracked (no
//!   higher-order derivatives).
//! - Operations without a backward still record a node; if a gradient reaches it, `backward` fails
//!   with [`Error::NoGradient`] naming the operation (never silent zeros). Comparisons and `argmax`
//!   return untracked tensors (their gradient is zero almost everywhere).
//! - Code that copies values out (`as_slice`, `to_vec`) and builds a new tensor (`from_vec`) cuts the
//!   graph: the result is untracked. Use tensor operations, or [`custom_op`] to attach a gradient to a
//!   hand-written kernel.
//! - A tape keeps every intermediate value alive; use one tape per training step and drop it (and the
//!   tracked tensors) afterwards. Stored values are untracked, so there are no reference cycles.
//!   Recording takes the tape's mutex briefly; kernels parallelize internally.
//!
//! ```
//! use strata_tensor::{Tape, Tensor};
//!
//! let tape = Tape::new();
//! let w = tape.watch(&Tensor::from_vec(&[2, 1], vec![0.5, -1.0])?);
//! let x = Tensor::from_vec(&[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?; // a constant
//! let loss = x.matmul(&w)?.square().mean(None, false)?;
//! let grads = tape.backward(&loss)?;
//! let gw = grads.get(&w).expect("w is watched");
//! assert_eq!(gw.shape(), &[2, 1]);
//! # Ok::<(), strata_tensor::Error>(())
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use crate::conv::{
    Conv2dParams, ConvParams, Padding, conv_nd_backward, conv_transpose_nd_backward, conv2d_backward,
    depthwise_conv2d_backward, extract_patches_backward,
};
use crate::elementwise::{BinaryOp, UnaryOp, binary_partials, for_each_row};
use crate::layout::take_backward;
use crate::matmul::matmul_ex;
use crate::pool::{
    PoolNdParams, PoolParams, avg_pool_backward, avg_pool2d_backward, max_pool_backward, max_pool2d_backward,
};
use crate::{Error, Result, Tensor};

/// A hand-written backward: `(input values, output value, output gradient) -> one gradient per input`
/// (`None` for inputs that get none). Gradients must have their input's shape.
pub type BackwardFn = dyn Fn(&[Tensor], &Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync;

/// The operation that produced a node, with what its gradient needs.
#[derive(Clone)]
pub(crate) enum Op {
    Leaf,
    Binary(BinaryOp),
    Unary(UnaryOp),
    Sum {
        axes: Vec<usize>,
        keepdims: bool,
    },
    Mean {
        axes: Vec<usize>,
        keepdims: bool,
    },
    Max {
        axes: Vec<usize>,
        keepdims: bool,
    },
    SumTo,
    MatMul {
        ta: bool,
        tb: bool,
    },
    Softmax(usize),
    LogSoftmax(usize),
    Reshape,
    Permute(Vec<usize>),
    Slice(Vec<(usize, usize)>),
    Pad(Vec<(usize, usize)>),
    Concat(usize),
    BroadcastTo,
    Take {
        indices: Vec<usize>,
        axis: usize,
    },
    Select,
    Conv2d(Conv2dParams),
    Depthwise {
        strides: [usize; 2],
        dilation: [usize; 2],
        padding: Padding,
    },
    ConvNd(ConvParams),
    ConvTranspose {
        params: ConvParams,
        output_padding: Option<Vec<usize>>,
    },
    ExtractPatches {
        window: Vec<usize>,
        params: ConvParams,
    },
    MaxPool2d(PoolParams),
    AvgPool2d(PoolParams),
    MaxPool(PoolNdParams),
    AvgPool(PoolNdParams),
    /// A hand-written op; `backward: None` means it has no gradient (an error if one reaches it).
    Custom {
        name: &'static str,
        backward: Option<Arc<BackwardFn>>,
    },
}

/// One input of a node: its node id when tracked (on the same tape), and its value.
struct Input {
    id: Option<usize>,
    value: Tensor,
}

struct Node {
    op: Op,
    inputs: Vec<Input>,
    value: Tensor,
}

type Nodes = Arc<Mutex<Vec<Arc<Node>>>>;

fn lock(nodes: &Nodes) -> MutexGuard<'_, Vec<Arc<Node>>> {
    // A panic while holding the lock cannot leave the node list half-written (pushes are atomic).
    nodes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The tracking handle a tensor carries: its tape and node.
pub(crate) struct Tracked {
    nodes: Nodes,
    pub(crate) id: usize,
}

/// A recording of operations for reverse-mode differentiation. Cloning shares the tape.
#[derive(Clone, Default)]
pub struct Tape {
    nodes: Nodes,
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tape({} nodes)", self.len())
    }
}

/// Gradients from [`Tape::backward`], looked up by watched tensor.
#[derive(Debug)]
pub struct Gradients {
    tape: usize,
    grads: Vec<Option<Tensor>>,
}

impl Gradients {
    /// The gradient of the loss with respect to the watched tensor `t` (a tensor returned by [`Tape::watch`]);
    /// `None` if `t` is untracked, tracked by another tape, not a watched leaf, or the loss does not depend on
    /// it. (Gradients of intermediate results are freed during the backward pass; to get one, `detach` the
    /// intermediate, `watch` it, and build the rest of the computation from that.)
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        let tr = t.track.as_ref()?;
        if Arc::as_ptr(&tr.nodes) as usize != self.tape {
            return None;
        }
        self.grads.get(tr.id).and_then(Option::as_ref)
    }
}

impl Tape {
    /// An empty tape.
    pub fn new() -> Tape {
        Tape::default()
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        lock(&self.nodes).len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A tracked copy of `t`, a trainable leaf of this tape: operations on it are recorded, and
    /// [`Gradients::get`] returns its gradient. Shares `t`'s storage. If another tape tracks `t`, the copy
    /// starts afresh on this tape.
    pub fn watch(&self, t: &Tensor) -> Tensor {
        self.push(Op::Leaf, Vec::new(), t.detach())
    }

    fn push(&self, op: Op, inputs: Vec<Input>, mut out: Tensor) -> Tensor {
        let mut nodes = lock(&self.nodes);
        let id = nodes.len();
        nodes.push(Arc::new(Node { op, inputs, value: out.detach() }));
        out.track = Some(Arc::new(Tracked { nodes: Arc::clone(&self.nodes), id }));
        out
    }

    /// Gradients of `loss` (summed over its elements) with respect to every watched tensor it depends on.
    /// Fails if `loss` is not tracked by this tape, or if the gradient reaches an operation without a backward.
    pub fn backward(&self, loss: &Tensor) -> Result<Gradients> {
        let Some(tr) = loss.track.as_ref().filter(|tr| Arc::ptr_eq(&tr.nodes, &self.nodes)) else {
            return Err(Error::NotTracked { op: "backward" });
        };
        // A snapshot (cheap `Arc` clones), so the lock is not held while gradients are computed: a custom
        // backward may then use tensors of this tape without deadlocking.
        let nodes: Vec<Arc<Node>> = lock(&self.nodes).clone();
        let mut grads: Vec<Option<Tensor>> = vec![None; nodes.len()];
        let start = tr.id.min(nodes.len().saturating_sub(1));
        if let Some(slot) = grads.get_mut(start) {
            *slot = Some(Tensor::ones(loss.shape())?);
        }
        for id in (0..=start).rev() {
            let node = &nodes[id];
            if matches!(node.op, Op::Leaf) {
                continue;
            }
            // Interior gradients are released once used: only leaves' gradients are returned.
            let Some(g) = grads[id].take() else { continue };
            let want: Vec<bool> = node.inputs.iter().map(|i| i.id.is_some()).collect();
            let input_grads = node_backward(&node.op, &node.inputs, &want, &node.value, &g)?;
            for ((input, w), ig) in node.inputs.iter().zip(&want).zip(input_grads) {
                if let (true, Some(i), Some(ig)) = (*w, input.id, ig) {
                    if ig.shape() != input.value.shape() {
                        return Err(Error::GradShape {
                            op: op_name(&node.op),
                            expected: input.value.shape().to_vec(),
                            found: ig.shape().to_vec(),
                        });
                    }
                    grads[i] = Some(match grads[i].take() {
                        Some(acc) => acc.add(&ig)?,
                        None => ig,
                    });
                }
            }
        }
        Ok(Gradients { tape: Arc::as_ptr(&self.nodes) as usize, grads })
    }
}

/// Records `out = op(inputs)` when an input is tracked; returns `out` untouched (one branch) otherwise.
/// `op` is only built when recording.
#[inline]
pub(crate) fn record(name: &'static str, inputs: &[&Tensor], out: Tensor, op: impl FnOnce() -> Op) -> Result<Tensor> {
    if inputs.iter().all(|t| t.track.is_none()) {
        return Ok(out);
    }
    record_slow(name, inputs, out, op())
}

#[cold]
#[inline(never)]
fn record_slow(name: &'static str, inputs: &[&Tensor], out: Tensor, op: Op) -> Result<Tensor> {
    let mut tape: Option<&Nodes> = None;
    for tr in inputs.iter().filter_map(|t| t.track.as_ref()) {
        match tape {
            None => tape = Some(&tr.nodes),
            Some(n) if Arc::ptr_eq(n, &tr.nodes) => {}
            Some(_) => return Err(Error::TapeMismatch { op: name }),
        }
    }
    let Some(nodes) = tape else { return Ok(out) };
    let ins = inputs.iter().map(|t| Input { id: t.track.as_ref().map(|tr| tr.id), value: t.detach() }).collect();
    Ok(Tape { nodes: Arc::clone(nodes) }.push(op, ins, out))
}

/// [`record`] for a one-input op (cannot fail: one input cannot mix tapes).
#[inline]
pub(crate) fn record1(x: &Tensor, out: Tensor, op: impl FnOnce() -> Op) -> Tensor {
    match &x.track {
        None => out,
        Some(tr) => {
            let ins = vec![Input { id: Some(tr.id), value: x.detach() }];
            Tape { nodes: Arc::clone(&tr.nodes) }.push(op(), ins, out)
        }
    }
}

/// Attaches a hand-written operation to the tape of its inputs: `output` was computed from `inputs` by code
/// the tape cannot see (a raw loop over `as_slice`, say). If an input is tracked, the result is tracked and
/// `backward` (given the inputs' values, the output value and the output gradient) supplies the input
/// gradients; with `backward: None` the op is recorded as having no gradient, so `Tape::backward` fails
/// naming `name` if a gradient reaches it (instead of silently treating the output as a constant).
/// Untracked inputs: returns `output` unchanged.
///
/// ```
/// use std::sync::Arc;
/// use strata_tensor::{Tape, Tensor, custom_op};
///
/// // y = x^3 computed in a raw loop, with its gradient 3x^2 * g.
/// fn cube(x: &Tensor) -> strata_tensor::Result<Tensor> {
///     let y = Tensor::from_vec(x.shape(), x.as_slice().iter().map(|v| v * v * v).collect())?;
///     custom_op("cube", &[x], y, Some(Arc::new(|ins: &[Tensor], _y: &Tensor, g: &Tensor| {
///         Ok(vec![Some(ins[0].square().scale(3.0).mul(g)?)])
///     })))
/// }
/// let tape = Tape::new();
/// let x = tape.watch(&Tensor::from_vec(&[2], vec![1.0, 2.0])?);
/// let grads = tape.backward(&cube(&x)?)?;
/// assert_eq!(grads.get(&x).unwrap().as_slice(), &[3.0, 12.0]);
/// # Ok::<(), strata_tensor::Error>(())
/// ```
pub fn custom_op(
    name: &'static str,
    inputs: &[&Tensor],
    output: Tensor,
    backward: Option<Arc<BackwardFn>>,
) -> Result<Tensor> {
    record(name, inputs, output.detach(), || Op::Custom { name, backward })
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Leaf => "leaf",
        Op::Binary(b) => b.name(),
        Op::Unary(_) => "unary",
        Op::Sum { .. } => "sum",
        Op::Mean { .. } => "mean",
        Op::Max { .. } => "max",
        Op::SumTo => "sum_to",
        Op::MatMul { .. } => "matmul",
        Op::Softmax(_) => "softmax",
        Op::LogSoftmax(_) => "log_softmax",
        Op::Reshape => "reshape",
        Op::Permute(_) => "permute",
        Op::Slice(_) => "slice",
        Op::Pad(_) => "pad",
        Op::Concat(_) => "concat",
        Op::BroadcastTo => "broadcast_to",
        Op::Take { .. } => "take",
        Op::Select => "select",
        Op::Conv2d(_) => "conv2d",
        Op::Depthwise { .. } => "depthwise_conv2d",
        Op::ConvNd(_) => "conv",
        Op::ConvTranspose { .. } => "conv_transpose",
        Op::ExtractPatches { .. } => "extract_patches",
        Op::MaxPool2d(_) => "max_pool2d",
        Op::AvgPool2d(_) => "avg_pool2d",
        Op::MaxPool(_) => "max_pool",
        Op::AvgPool(_) => "avg_pool",
        Op::Custom { name, .. } => name,
    }
}

/// Input gradients of one node (`None` where not wanted).
fn node_backward(op: &Op, inputs: &[Input], want: &[bool], y: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    let x = |i: usize| -> Result<&Tensor> {
        inputs
            .get(i)
            .map(|n| &n.value)
            .ok_or(Error::Internal { op: "backward", what: "node has fewer inputs than its op" })
    };
    let w = |i: usize| want.get(i).copied().unwrap_or(false);
    let one = |t: Tensor| Ok(vec![Some(t)]);
    match op {
        Op::Leaf => Ok(Vec::new()),
        Op::Binary(b) => {
            let (a, bv) = (x(0)?, x(1)?);
            let (ga, gb) = match b {
                BinaryOp::Add => (g.clone(), g.clone()),
                BinaryOp::Sub => (g.clone(), g.neg()),
                _ => {
                    let (ga, gb) = binary_partials(*b, a, bv, y, g);
                    (Tensor::from_parts(y.shape().to_vec(), ga), Tensor::from_parts(y.shape().to_vec(), gb))
                }
            };
            Ok(vec![
                if w(0) { Some(ga.sum_to(a.shape())?) } else { None },
                if w(1) { Some(gb.sum_to(bv.shape())?) } else { None },
            ])
        }
        Op::Unary(u) => {
            let xv = x(0)?;
            let (xs, ys, gs) = (xv.as_slice(), y.as_slice(), g.as_slice());
            let mut data = vec![0f32; xs.len()];
            for_each_row(&mut data, 4096, |r, dst| {
                let o = r * 4096;
                let (gs, xs, ys) = (&gs[o..o + dst.len()], &xs[o..o + dst.len()], &ys[o..o + dst.len()]);
                match u {
                    // the common activation, without the per-element dispatch (vectorizes)
                    UnaryOp::Relu => {
                        for ((d, &gv), &xv) in dst.iter_mut().zip(gs).zip(xs) {
                            *d = if xv > 0.0 { gv } else { 0.0 };
                        }
                    }
                    _ => {
                        for (((d, &gv), &xv), &yv) in dst.iter_mut().zip(gs).zip(xs).zip(ys) {
                            *d = gv * u.derivative(xv, yv);
                        }
                    }
                }
            });
            one(Tensor::from_parts(xv.shape().to_vec(), data))
        }
        Op::Sum { axes, keepdims } | Op::Mean { axes, keepdims } => {
            let xv = x(0)?;
            let gk = g.reshape(&kept_shape(xv.shape(), axes, *keepdims, g.shape()))?;
            let mut gx = gk.broadcast_to(xv.shape())?;
            if let Op::Mean { .. } = op {
                let count: usize = axes.iter().map(|&a| xv.shape()[a]).product();
                gx = gx.div(&Tensor::scalar(count as f32))?;
            }
            one(gx)
        }
        Op::Max { axes, keepdims } => {
            // TensorFlow's rule: ties share the gradient equally.
            let xv = x(0)?;
            let shape = kept_shape(xv.shape(), axes, *keepdims, g.shape());
            let yk = y.reshape(&shape)?;
            let mask = binary_mask_eq(xv, &yk)?;
            let count = crate::reduce::reduce(&mask, axes, true, crate::reduce::Reduce::Sum);
            let gk = g.reshape(&shape)?.div(&count)?;
            one(mask.mul(&gk)?)
        }
        Op::SumTo => one(g.broadcast_to(x(0)?.shape())?),
        Op::MatMul { ta, tb } => {
            let (a, b) = (x(0)?, x(1)?);
            let (ta, tb) = (*ta, *tb);
            // C = op(A) @ op(B): dop(A) = G @ op(B)^T, dop(B) = op(A)^T @ G, transposed back where op transposes.
            let ga = if !w(0) {
                None
            } else if ta {
                Some(matmul_ex(b, tb, g, true)?.sum_to(a.shape())?)
            } else {
                Some(matmul_ex(g, false, b, !tb)?.sum_to(a.shape())?)
            };
            let gb = if !w(1) {
                None
            } else if b.rank() == 2 && a.rank() > 2 && !ta {
                // Fold a's batch into rows: [B*m, k]^T @ [B*m, n] (or its transpose).
                let k = a.shape()[a.rank() - 1];
                let n = g.shape()[g.rank() - 1];
                let a2 = a.reshape(&[a.len() / k.max(1), k])?;
                let g2 = g.reshape(&[g.len() / n.max(1), n])?;
                Some(if tb { matmul_ex(&g2, true, &a2, false)? } else { matmul_ex(&a2, true, &g2, false)? })
            } else if tb {
                Some(matmul_ex(g, true, a, ta)?.sum_to(b.shape())?)
            } else {
                Some(matmul_ex(a, !ta, g, false)?.sum_to(b.shape())?)
            };
            Ok(vec![ga, gb])
        }
        Op::Softmax(axis) => {
            let ax = [*axis as isize];
            let dot = g.mul(y)?.sum(Some(&ax), true)?;
            one(y.mul(&g.sub(&dot)?)?)
        }
        Op::LogSoftmax(axis) => {
            let ax = [*axis as isize];
            let total = g.sum(Some(&ax), true)?;
            one(g.sub(&y.exp().mul(&total)?)?)
        }
        Op::Reshape => one(g.reshape(x(0)?.shape())?),
        Op::Permute(perm) => {
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            one(g.permute(&inv)?)
        }
        Op::Slice(ranges) => {
            let xs = x(0)?.shape();
            let pads: Vec<(usize, usize)> = ranges.iter().zip(xs).map(|(&(s, e), &d)| (s, d - e)).collect();
            one(g.pad(&pads, 0.0)?)
        }
        Op::Pad(pads) => {
            let xs = x(0)?.shape();
            let ranges: Vec<(usize, usize)> = pads.iter().zip(xs).map(|(&(b, _), &d)| (b, b + d)).collect();
            one(g.slice(&ranges)?)
        }
        Op::Concat(axis) => {
            let mut start = 0;
            let mut out = Vec::with_capacity(inputs.len());
            for (i, n) in inputs.iter().enumerate() {
                let len = n.value.shape()[*axis];
                out.push(if w(i) { Some(g.slice_axis(*axis as isize, start, start + len)?) } else { None });
                start += len;
            }
            Ok(out)
        }
        Op::BroadcastTo => one(g.sum_to(x(0)?.shape())?),
        Op::Select => {
            // inputs: cond, a, b
            let (c, a, b) = (x(0)?, x(1)?, x(2)?);
            let mask = c.not_equal(&Tensor::scalar(0.0))?;
            let ga = if w(1) { Some(g.mul(&mask)?.sum_to(a.shape())?) } else { None };
            let gb = if w(2) {
                Some(g.mul(&mask.map(UnaryOp::Scale(-1.0)).map(UnaryOp::Shift(1.0)))?.sum_to(b.shape())?)
            } else {
                None
            };
            Ok(vec![None, ga, gb])
        }
        Op::Take { indices, axis } => one(take_backward(x(0)?.shape(), indices, *axis, g)),
        Op::Conv2d(p) => {
            let (dx, dw) = conv2d_backward(x(0)?, x(1)?, p, g, w(0), w(1))?;
            Ok(vec![dx, dw])
        }
        Op::Depthwise { strides, dilation, padding } => {
            let (dx, dw) = depthwise_conv2d_backward(x(0)?, x(1)?, *strides, *dilation, *padding, g, w(0), w(1))?;
            Ok(vec![dx, dw])
        }
        Op::ConvNd(p) => {
            let (dx, dw) = conv_nd_backward(x(0)?, x(1)?, p, g, w(0), w(1))?;
            Ok(vec![dx, dw])
        }
        Op::ConvTranspose { params, output_padding } => {
            let (dx, dw) = conv_transpose_nd_backward(x(0)?, x(1)?, params, output_padding.as_deref(), g, w(0), w(1))?;
            Ok(vec![dx, dw])
        }
        Op::ExtractPatches { window, params } => one(extract_patches_backward(x(0)?, window, params, g)?),
        Op::MaxPool2d(p) => one(max_pool2d_backward(x(0)?, p, g)?),
        Op::AvgPool2d(p) => one(avg_pool2d_backward(x(0)?, p, g)?),
        Op::MaxPool(p) => one(max_pool_backward(x(0)?, p, g)?),
        Op::AvgPool(p) => one(avg_pool_backward(x(0)?, p, g)?),
        Op::Custom { name, backward } => match backward {
            None => Err(Error::NoGradient { op: name }),
            Some(f) => {
                let values: Vec<Tensor> = inputs.iter().map(|i| i.value.clone()).collect();
                let grads = f(&values, y, g)?;
                if grads.len() != inputs.len() {
                    return Err(Error::Internal {
                        op: "custom_op backward",
                        what: "the backward returned a different number of gradients than the op has inputs",
                    });
                }
                // Gradients are plain values (no higher-order tracking).
                Ok(grads.into_iter().map(|g| g.map(|g| g.detach())).collect())
            }
        },
    }
}

/// The shape of a reduction's output with the reduced axes kept as 1.
fn kept_shape(x: &[usize], axes: &[usize], keepdims: bool, g: &[usize]) -> Vec<usize> {
    if keepdims {
        return g.to_vec();
    }
    x.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect()
}

/// 1 where `x` equals the (broadcast) reduced maximum `yk`, else 0.
fn binary_mask_eq(x: &Tensor, yk: &Tensor) -> Result<Tensor> {
    let yb = yk.broadcast_to(x.shape())?;
    let data = x.as_slice().iter().zip(yb.as_slice()).map(|(&a, &b)| (a == b) as u8 as f32).collect();
    Ok(Tensor::from_parts(x.shape().to_vec(), data))
}

impl Tensor {
    /// An untracked copy (same storage): operations on it are not recorded and gradients stop here.
    pub fn detach(&self) -> Tensor {
        let mut t = self.clone();
        t.track = None;
        t
    }

    /// Whether a tape tracks this tensor (it was watched, or computed from a watched tensor).
    pub fn is_tracked(&self) -> bool {
        self.track.is_some()
    }

    /// The tape that tracks this tensor, if any.
    pub fn tape(&self) -> Option<Tape> {
        self.track.as_ref().map(|tr| Tape { nodes: Arc::clone(&tr.nodes) })
    }

    /// Gradients of this tensor (summed if not a scalar) with respect to the watched tensors of its tape.
    pub fn backward(&self) -> Result<Gradients> {
        match self.tape() {
            Some(t) => t.backward(self),
            None => Err(Error::NotTracked { op: "backward" }),
        }
    }
}

/// 2-D max pooling (NHWC), recorded on the tape when `x` is tracked (see [`crate::pool`]).
pub fn max_pool2d(x: &Tensor, p: &PoolParams) -> Result<Tensor> {
    let y = crate::pool::max_pool2d(x, p)?;
    Ok(record1(x, y, || Op::MaxPool2d(*p)))
}

/// 2-D average pooling (NHWC, padded elements not counted), recorded on the tape when `x` is tracked.
pub fn avg_pool2d(x: &Tensor, p: &PoolParams) -> Result<Tensor> {
    let y = crate::pool::avg_pool2d(x, p)?;
    Ok(record1(x, y, || Op::AvgPool2d(*p)))
}

/// Max pooling over 1 to 3 spatial axes, channels last (see [`crate::pool`]), recorded on the tape
/// when `x` is tracked.
pub fn max_pool(x: &Tensor, p: &PoolNdParams) -> Result<Tensor> {
    let y = crate::pool::max_pool(x, p)?;
    Ok(record1(x, y, || Op::MaxPool(p.clone())))
}

/// Average pooling over 1 to 3 spatial axes, channels last, padded elements not counted; recorded
/// on the tape when `x` is tracked.
pub fn avg_pool(x: &Tensor, p: &PoolNdParams) -> Result<Tensor> {
    let y = crate::pool::avg_pool(x, p)?;
    Ok(record1(x, y, || Op::AvgPool(p.clone())))
}

impl Tensor {
    /// 2-D max pooling (NHWC); see [`max_pool2d`].
    pub fn max_pool2d(&self, p: &PoolParams) -> Result<Tensor> {
        max_pool2d(self, p)
    }

    /// 2-D average pooling (NHWC); see [`avg_pool2d`].
    pub fn avg_pool2d(&self, p: &PoolParams) -> Result<Tensor> {
        avg_pool2d(self, p)
    }

    /// 2-D convolution of this NHWC input with an HWIO `kernel`; see [`crate::conv2d`].
    pub fn conv2d(&self, kernel: &Tensor, params: &Conv2dParams) -> Result<Tensor> {
        crate::conv::conv2d(self, kernel, params)
    }

    /// 1-D convolution of this `[n, len, c]` input with a `[k, c / groups, filters]` kernel; see [`crate::conv1d`].
    pub fn conv1d(
        &self,
        kernel: &Tensor,
        stride: usize,
        dilation: usize,
        padding: crate::Padding1d,
        groups: usize,
    ) -> Result<Tensor> {
        crate::conv::conv1d(self, kernel, stride, dilation, padding, groups)
    }

    /// Depthwise 2-D convolution with a `[kh, kw, c, multiplier]` kernel; see [`crate::depthwise_conv2d`].
    pub fn depthwise_conv2d(
        &self,
        kernel: &Tensor,
        strides: [usize; 2],
        dilation: [usize; 2],
        padding: Padding,
    ) -> Result<Tensor> {
        crate::conv::depthwise_conv2d(self, kernel, strides, dilation, padding)
    }

    /// N-d convolution; see [`crate::conv_nd`].
    pub fn conv_nd(&self, kernel: &Tensor, params: &ConvParams) -> Result<Tensor> {
        crate::conv::conv_nd(self, kernel, params)
    }

    /// N-d transposed convolution; see [`crate::conv_transpose_nd`].
    pub fn conv_transpose_nd(
        &self,
        kernel: &Tensor,
        params: &ConvParams,
        output_padding: Option<&[usize]>,
    ) -> Result<Tensor> {
        crate::conv::conv_transpose_nd(self, kernel, params, output_padding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_rule_through_shared_subexpression() {
        // y = x * x + x  => dy/dx = 2x + 1
        let tape = Tape::new();
        let x = tape.watch(&Tensor::from_vec(&[3], vec![1.0, -2.0, 0.5]).unwrap());
        let y = x.mul(&x).unwrap().add(&x).unwrap();
        let g = tape.backward(&y).unwrap();
        assert_eq!(g.get(&x).unwrap().as_slice(), &[3.0, -3.0, 2.0]);
    }

    #[test]
    fn constants_get_no_gradient_and_tapes_do_not_mix() {
        let tape = Tape::new();
        let c = Tensor::scalar(2.0);
        let x = tape.watch(&Tensor::scalar(3.0));
        let y = c.mul(&x).unwrap();
        let g = y.backward().unwrap();
        assert_eq!(g.get(&x).unwrap().item(), Some(2.0));
        assert!(g.get(&c).is_none());
        let other = Tape::new().watch(&Tensor::scalar(1.0));
        assert_eq!(
            x.add(&other).unwrap_err().to_string(),
            "add: the inputs are tracked by different tapes; watch every trainable tensor of one computation on the \
             same tape, or `detach()` the tensors of the other tape to use them as constants"
        );
        // Detaching makes the other tape's tensor a constant.
        assert_eq!(x.add(&other.detach()).unwrap().item(), Some(4.0));
        assert!(g.get(&other).is_none());
        assert_eq!(tape.backward(&other).unwrap_err(), Error::NotTracked { op: "backward" });
        assert_eq!(tape.backward(&c).unwrap_err(), Error::NotTracked { op: "backward" });
    }

    #[test]
    fn tape_types_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Tape>();
        send_sync::<Gradients>();
        send_sync::<Tensor>();
        // Recording from another thread: the tape is found through the inputs.
        let tape = Tape::new();
        let x = tape.watch(&Tensor::scalar(3.0));
        let y = std::thread::spawn(move || x.square()).join().unwrap();
        assert_eq!(tape.backward(&y).unwrap().grads.iter().flatten().count(), 1);
    }

    #[test]
    fn only_leaf_gradients_are_kept() {
        let tape = Tape::new();
        let x = tape.watch(&Tensor::scalar(2.0));
        let h = x.square();
        let y = h.scale(3.0);
        let g = y.backward().unwrap();
        assert_eq!(g.get(&x).unwrap().item(), Some(12.0));
        assert!(g.get(&h).is_none());
        assert_eq!(tape.len(), 3);
    }

    #[test]
    fn untracked_ops_record_nothing_and_detach_stops_gradients() {
        let tape = Tape::new();
        let a = Tensor::from_vec(&[2], vec![1.0, 2.0]).unwrap();
        let b = a.square().add(&a).unwrap().sum(None, false).unwrap();
        assert!(!b.is_tracked());
        assert!(tape.is_empty());
        let x = tape.watch(&a);
        assert!(x.is_tracked() && x == a, "equality ignores tracking");
        let y = x.square().add(&x.detach().scale(10.0)).unwrap().sum(None, false).unwrap();
        let g = tape.backward(&y).unwrap();
        assert_eq!(g.get(&x).unwrap().as_slice(), &[2.0, 4.0]);
    }

    #[test]
    fn ops_without_gradient_fail_by_name() {
        let tape = Tape::new();
        let x = tape.watch(&Tensor::from_vec(&[2], vec![1.0, 2.0]).unwrap());
        let y = custom_op("resize_bilinear", &[&x], x.detach().scale(2.0), None).unwrap();
        assert!(y.is_tracked());
        let e = tape.backward(&y.sum(None, false).unwrap()).unwrap_err();
        assert_eq!(e, Error::NoGradient { op: "resize_bilinear" });
        assert!(e.to_string().starts_with("no gradient for `resize_bilinear` yet"));
        // A branch the loss does not depend on is never visited.
        let z = x.square().sum(None, false).unwrap();
        assert!(tape.backward(&z).is_ok());
    }

    #[test]
    fn custom_backward_may_use_tensors_of_the_same_tape() {
        let tape = Tape::new();
        let x = tape.watch(&Tensor::from_vec(&[2], vec![1.0, 2.0]).unwrap());
        let w = tape.watch(&Tensor::from_vec(&[2], vec![3.0, 4.0]).unwrap());
        let wc = w.clone();
        let y = custom_op(
            "times_w",
            &[&x],
            x.detach().mul(&w.detach()).unwrap(),
            Some(Arc::new(move |_: &[Tensor], _: &Tensor, g: &Tensor| Ok(vec![Some(g.mul(&wc)?)]))),
        )
        .unwrap();
        let g = tape.backward(&y).unwrap();
        assert_eq!(g.get(&x).unwrap().as_slice(), &[3.0, 4.0]);
    }

    #[test]
    fn watching_a_tensor_of_another_tape_starts_afresh() {
        let outer = Tape::new();
        let a = outer.watch(&Tensor::scalar(2.0));
        let inner = Tape::new();
        let b = inner.watch(&a.square());
        let y = b.scale(3.0);
        assert_eq!(inner.backward(&y).unwrap().get(&b).unwrap().item(), Some(3.0));
        assert_eq!(outer.backward(&y).unwrap_err(), Error::NotTracked { op: "backward" });
        assert!(a.square().mul(&b).is_err(), "mixing the two tapes in one op is refused");
    }

    #[test]
    fn max_ties_share_gradient() {
        let tape = Tape::new();
        let x = tape.watch(&Tensor::from_vec(&[4], vec![1.0, 3.0, 3.0, 0.0]).unwrap());
        let g = x.max(None, false).unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().as_slice(), &[0.0, 0.5, 0.5, 0.0]);
    }

    #[test]
    fn broadcast_gradient_is_reduced() {
        let tape = Tape::new();
        let a = tape.watch(&Tensor::ones(&[2, 3]).unwrap());
        let b = tape.watch(&Tensor::from_vec(&[3], vec![1.0, 2.0, 3.0]).unwrap());
        let g = a.mul(&b).unwrap().backward().unwrap();
        assert_eq!(g.get(&b).unwrap().as_slice(), &[2.0, 2.0, 2.0]);
        assert_eq!(g.get(&a).unwrap().as_slice(), &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    }
}
