//! Reverse-mode automatic differentiation on a tape.
//!
//! Design: a [`Tape`] is an append-only list of nodes. Each node holds the
//! forward value, the operation that made it (with the parameters its
//! gradient needs) and the ids of its inputs. A [`Var`] is a handle (tape +
//! node id + a cheap clone of the value). Every operation on `Var`s runs the
//! forward kernel at once (eager, like Keras/TF eager mode) and appends a
//! node. [`Tape::backward`] walks the nodes from the loss back to the start
//! in reverse order, which is a valid reverse topological order because a node
//! can only use nodes recorded before it, and accumulates gradients into a
//! [`Gradients`] table indexed by node id.
//!
//! - Leaves: [`Tape::var`] (trainable: gradients are computed) and
//!   [`Tape::constant`] (no gradient). A node requires a gradient iff one of
//!   its inputs does; branches that do not are skipped in `backward`.
//! - Only leaves' gradients are returned; interior gradients are freed as
//!   soon as they have been propagated, so peak memory stays near one
//!   gradient per live activation.
//! - Broadcasting ops reduce the gradient back to each input's shape
//!   ([`Tensor::sum_to`]).
//! - `backward` seeds the loss gradient with ones, so a non-scalar loss is
//!   treated as the sum of its elements (what `tf.GradientTape` does).
//! - A tape keeps every intermediate value alive; use one tape per training
//!   step and drop it afterwards. The tape is `Send + Sync` (a mutex guards
//!   the node list); kernels parallelize internally.
//!
//! ```
//! use strata_tensor::{Tape, Tensor};
//!
//! let tape = Tape::new();
//! let w = tape.var(Tensor::from_vec(&[2, 1], vec![0.5, -1.0])?);
//! let x = tape.constant(Tensor::from_vec(&[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?);
//! let loss = x.matmul(&w)?.square().mean(None, false)?;
//! let grads = tape.backward(&loss)?;
//! let gw = grads.get(&w).expect("w is trainable");
//! assert_eq!(gw.shape(), &[2, 1]);
//! # Ok::<(), strata_tensor::Error>(())
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use crate::conv::{
    Conv2dParams, Padding, Padding1d, conv1d_as_2d, conv2d, conv2d_backward, depthwise_conv2d,
    depthwise_conv2d_backward,
};
use crate::elementwise::{BinaryOp, UnaryOp, binary, binary_partials, for_each_row, select, unary};
use crate::layout::{concat, stack, take_backward, take_checked, to_indices};
use crate::matmul::matmul_ex;
use crate::pool::{
    PoolNdParams, PoolParams, avg_pool, avg_pool_backward, avg_pool2d, avg_pool2d_backward, max_pool,
    max_pool_backward, max_pool2d, max_pool2d_backward,
};
use crate::shape::{normalize_axes, normalize_axis};
use crate::{Error, Result, Tensor};

/// The operation that produced a node, with what its gradient needs.
#[derive(Debug, Clone)]
enum Op {
    Leaf,
    Binary(BinaryOp),
    Unary(UnaryOp),
    Sum { axes: Vec<usize>, keepdims: bool },
    Mean { axes: Vec<usize>, keepdims: bool },
    Max { axes: Vec<usize>, keepdims: bool },
    MatMul,
    Softmax(usize),
    LogSoftmax(usize),
    Reshape,
    Permute(Vec<usize>),
    Slice(Vec<(usize, usize)>),
    Pad(Vec<(usize, usize)>),
    Concat(usize),
    BroadcastTo,
    Take { indices: Vec<usize>, axis: usize },
    Select,
    Conv2d(Conv2dParams),
    Depthwise { strides: [usize; 2], dilation: [usize; 2], padding: Padding },
    MaxPool2d(PoolParams),
    AvgPool2d(PoolParams),
    MaxPool(PoolNdParams),
    AvgPool(PoolNdParams),
}

#[derive(Debug)]
struct Node {
    op: Op,
    inputs: Vec<usize>,
    value: Tensor,
    requires_grad: bool,
}

type Nodes = Arc<Mutex<Vec<Node>>>;

fn lock(nodes: &Nodes) -> MutexGuard<'_, Vec<Node>> {
    // A panic while holding the lock cannot leave the node list half-written (pushes are atomic).
    nodes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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

/// A tensor recorded on a [`Tape`].
#[derive(Clone)]
pub struct Var {
    nodes: Nodes,
    id: usize,
    value: Tensor,
    requires_grad: bool,
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var(#{}, grad={}, {:?})", self.id, self.requires_grad, self.value)
    }
}

/// Gradients from [`Tape::backward`], looked up by variable.
#[derive(Debug)]
pub struct Gradients {
    tape: usize,
    grads: Vec<Option<Tensor>>,
}

impl Gradients {
    /// The gradient of the loss with respect to the leaf `v`; `None` if `v` is on another tape, is not a
    /// leaf made by [`Tape::var`], or the loss does not depend on it. (Gradients of intermediate results
    /// are freed during the backward pass; to get one, record its value as a leaf with [`Tape::var`] and build
    /// the rest of the computation from that leaf.)
    pub fn get(&self, v: &Var) -> Option<&Tensor> {
        if Arc::as_ptr(&v.nodes) as usize != self.tape {
            return None;
        }
        self.grads.get(v.id).and_then(Option::as_ref)
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

    fn push(&self, value: Tensor, op: Op, inputs: Vec<usize>, requires_grad: bool) -> Var {
        let mut nodes = lock(&self.nodes);
        let id = nodes.len();
        nodes.push(Node { op, inputs, value: value.clone(), requires_grad });
        Var { nodes: Arc::clone(&self.nodes), id, value, requires_grad }
    }

    /// Records a trainable leaf (its gradient is computed).
    pub fn var(&self, value: Tensor) -> Var {
        self.push(value, Op::Leaf, Vec::new(), true)
    }

    /// Records a constant leaf (no gradient).
    pub fn constant(&self, value: Tensor) -> Var {
        self.push(value, Op::Leaf, Vec::new(), false)
    }

    /// Gradients of `loss` (summed over its elements) with respect to every node that requires one.
    pub fn backward(&self, loss: &Var) -> Result<Gradients> {
        if !Arc::ptr_eq(&self.nodes, &loss.nodes) {
            return Err(Error::TapeMismatch { op: "backward" });
        }
        let nodes = lock(&self.nodes);
        let mut grads: Vec<Option<Tensor>> = vec![None; nodes.len()];
        if loss.requires_grad {
            grads[loss.id] = Some(Tensor::ones(loss.value.shape())?);
        }
        for id in (0..=loss.id).rev() {
            let node = &nodes[id];
            if !node.requires_grad || matches!(node.op, Op::Leaf) {
                continue;
            }
            // Interior gradients are released once used: only leaves' gradients are returned.
            let Some(g) = grads[id].take() else { continue };
            let inputs: Vec<&Node> = node.inputs.iter().map(|&i| &nodes[i]).collect();
            let want: Vec<bool> = inputs.iter().map(|n| n.requires_grad).collect();
            let input_grads = node_backward(&node.op, &inputs, &want, &node.value, &g)?;
            for ((&i, w), ig) in node.inputs.iter().zip(&want).zip(input_grads) {
                if let (true, Some(ig)) = (*w, ig) {
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

/// Input gradients of one node (`None` where not wanted).
fn node_backward(op: &Op, inputs: &[&Node], want: &[bool], y: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
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
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = gs[o + j] * u.derivative(xs[o + j], ys[o + j]);
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
        Op::MatMul => {
            let (a, b) = (x(0)?, x(1)?);
            let ga = if w(0) { Some(matmul_ex(g, false, b, true)?.sum_to(a.shape())?) } else { None };
            let gb = if !w(1) {
                None
            } else if b.rank() == 2 && a.rank() > 2 {
                // Fold a's batch into rows: [B*m, k]^T @ [B*m, n].
                let k = a.shape()[a.rank() - 1];
                let n = g.shape()[g.rank() - 1];
                let a2 = a.reshape(&[a.len() / k.max(1), k])?;
                let g2 = g.reshape(&[g.len() / n.max(1), n])?;
                Some(matmul_ex(&a2, true, &g2, false)?)
            } else {
                Some(matmul_ex(a, true, g, false)?.sum_to(b.shape())?)
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
        Op::MaxPool2d(p) => one(max_pool2d_backward(x(0)?, p, g)?),
        Op::AvgPool2d(p) => one(avg_pool2d_backward(x(0)?, p, g)?),
        Op::MaxPool(p) => one(max_pool_backward(x(0)?, p, g)?),
        Op::AvgPool(p) => one(avg_pool_backward(x(0)?, p, g)?),
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

impl Var {
    /// The forward value.
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// The value's shape.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// Whether gradients flow to this variable.
    pub fn requires_grad(&self) -> bool {
        self.requires_grad
    }

    /// The tape this variable is recorded on.
    pub fn tape(&self) -> Tape {
        Tape { nodes: Arc::clone(&self.nodes) }
    }

    /// Gradients of this variable (summed if not a scalar) with respect to every trainable leaf.
    pub fn backward(&self) -> Result<Gradients> {
        self.tape().backward(self)
    }

    /// A constant copy of this value on the same tape (gradients stop here).
    pub fn detach(&self) -> Var {
        self.tape().constant(self.value.clone())
    }

    fn record(&self, op_name: &'static str, value: Tensor, op: Op, others: &[&Var]) -> Result<Var> {
        let mut inputs = vec![self.id];
        let mut requires_grad = self.requires_grad;
        for o in others {
            if !Arc::ptr_eq(&self.nodes, &o.nodes) {
                return Err(Error::TapeMismatch { op: op_name });
            }
            inputs.push(o.id);
            requires_grad |= o.requires_grad;
        }
        let op = if requires_grad { op } else { Op::Leaf };
        Ok(self.tape().push(value, op, inputs, requires_grad))
    }

    /// Any broadcasting binary op.
    pub fn binary(&self, op: BinaryOp, other: &Var) -> Result<Var> {
        let v = binary(op, &self.value, &other.value)?;
        self.record(op.name(), v, Op::Binary(op), &[other])
    }

    /// Any unary op.
    pub fn map(&self, op: UnaryOp) -> Var {
        let v = unary(op, &self.value);
        let requires_grad = self.requires_grad;
        let op = if requires_grad { Op::Unary(op) } else { Op::Leaf };
        self.tape().push(v, op, vec![self.id], requires_grad)
    }

    /// Sum over `axes` (`None`: all).
    pub fn sum(&self, axes: Option<&[isize]>, keepdims: bool) -> Result<Var> {
        let v = self.value.sum(axes, keepdims)?;
        let axes = all_axes("sum", axes, self.shape())?;
        self.record("sum", v, Op::Sum { axes, keepdims }, &[])
    }

    /// Mean over `axes` (`None`: all).
    pub fn mean(&self, axes: Option<&[isize]>, keepdims: bool) -> Result<Var> {
        let v = self.value.mean(axes, keepdims)?;
        let axes = all_axes("mean", axes, self.shape())?;
        self.record("mean", v, Op::Mean { axes, keepdims }, &[])
    }

    /// Maximum over `axes` (`None`: all); tied maxima share the gradient equally.
    pub fn max(&self, axes: Option<&[isize]>, keepdims: bool) -> Result<Var> {
        let v = self.value.max(axes, keepdims)?;
        let axes = all_axes("max", axes, self.shape())?;
        self.record("max", v, Op::Max { axes, keepdims }, &[])
    }

    /// Batched matrix product (see [`Tensor::matmul`]).
    pub fn matmul(&self, other: &Var) -> Result<Var> {
        let v = self.value.matmul(&other.value)?;
        self.record("matmul", v, Op::MatMul, &[other])
    }

    /// Softmax along `axis`.
    pub fn softmax(&self, axis: isize) -> Result<Var> {
        let v = self.value.softmax(axis)?;
        let a = normalize_axis("softmax", axis, self.shape())?;
        self.record("softmax", v, Op::Softmax(a), &[])
    }

    /// Log-softmax along `axis`.
    pub fn log_softmax(&self, axis: isize) -> Result<Var> {
        let v = self.value.log_softmax(axis)?;
        let a = normalize_axis("log_softmax", axis, self.shape())?;
        self.record("log_softmax", v, Op::LogSoftmax(a), &[])
    }

    /// Reshape (element count must match).
    pub fn reshape(&self, shape: &[usize]) -> Result<Var> {
        let v = self.value.reshape(shape)?;
        self.record("reshape", v, Op::Reshape, &[])
    }

    /// Reorders axes (see [`Tensor::permute`]).
    pub fn permute(&self, perm: &[usize]) -> Result<Var> {
        let v = self.value.permute(perm)?;
        self.record("permute", v, Op::Permute(perm.to_vec()), &[])
    }

    /// Swaps the last two axes.
    pub fn transpose(&self) -> Result<Var> {
        let r = self.value.rank();
        if r < 2 {
            return Err(Error::Rank {
                op: "transpose",
                expected: ">= 2",
                layout: "[..., rows, cols]",
                shape: self.shape().to_vec(),
            });
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.permute(&perm)
    }

    /// Sub-tensor, one `start..end` per axis.
    pub fn slice(&self, ranges: &[(usize, usize)]) -> Result<Var> {
        let v = self.value.slice(ranges)?;
        self.record("slice", v, Op::Slice(ranges.to_vec()), &[])
    }

    /// Constant padding, one `(before, after)` per axis.
    pub fn pad(&self, pads: &[(usize, usize)], value: f32) -> Result<Var> {
        let v = self.value.pad(pads, value)?;
        self.record("pad", v, Op::Pad(pads.to_vec()), &[])
    }

    /// Broadcasts to `shape` (copying).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Var> {
        let v = self.value.broadcast_to(shape)?;
        self.record("broadcast_to", v, Op::BroadcastTo, &[])
    }

    /// Selects entries along `axis` by integer-valued `indices` (see [`Tensor::take`]); the gradient is
    /// scatter-added back (repeated indices accumulate).
    pub fn take(&self, indices: &Tensor, axis: isize) -> Result<Var> {
        let a = normalize_axis("take", axis, self.shape())?;
        let idx = to_indices("take", indices, self.shape(), a)?;
        let v = take_checked(&self.value, &idx, indices.shape(), a)?;
        self.record("take", v, Op::Take { indices: idx, axis: a }, &[])
    }

    /// `where(cond, a, b)` (see [`crate::select`]); the gradient flows to `a` where `cond != 0`, else to `b`,
    /// never to `cond`.
    pub fn select(cond: &Var, a: &Var, b: &Var) -> Result<Var> {
        let v = select(&cond.value, &a.value, &b.value)?;
        cond.record("select", v, Op::Select, &[a, b])
    }

    /// Joins variables along an existing axis.
    pub fn concat(vars: &[&Var], axis: isize) -> Result<Var> {
        let first = vars.first().ok_or(Error::Empty { op: "concat" })?;
        let values: Vec<&Tensor> = vars.iter().map(|v| &v.value).collect();
        let v = concat(&values, axis)?;
        let a = normalize_axis("concat", axis, first.shape())?;
        first.record("concat", v, Op::Concat(a), &vars[1..])
    }

    /// Joins same-shape variables along a new axis.
    pub fn stack(vars: &[&Var], axis: isize) -> Result<Var> {
        let first = vars.first().ok_or(Error::Empty { op: "stack" })?;
        let values: Vec<&Tensor> = vars.iter().map(|v| &v.value).collect();
        stack(&values, axis)?; // validates shapes and axis before recording anything
        let mut probe = first.shape().to_vec();
        probe.push(1);
        let a = normalize_axis("stack", axis, &probe)?;
        let expanded = vars
            .iter()
            .map(|v| {
                let mut s = v.shape().to_vec();
                s.insert(a, 1);
                v.reshape(&s)
            })
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Var> = expanded.iter().collect();
        Var::concat(&refs, a as isize)
    }

    /// 2-D convolution of this NHWC input with an HWIO `kernel` (see [`conv2d`]).
    pub fn conv2d(&self, kernel: &Var, params: &Conv2dParams) -> Result<Var> {
        let v = conv2d(&self.value, &kernel.value, params)?;
        self.record("conv2d", v, Op::Conv2d(*params), &[kernel])
    }

    /// 1-D convolution of this `[n, len, c]` input with a `[k, c / groups, filters]` kernel.
    pub fn conv1d(
        &self,
        kernel: &Var,
        stride: usize,
        dilation: usize,
        padding: Padding1d,
        groups: usize,
    ) -> Result<Var> {
        let (&[n, l, c], &[k, cg, o]) = (self.shape(), kernel.shape()) else {
            let (shape, layout) =
                if self.value.rank() != 3 { (self.shape(), "NWC") } else { (kernel.shape(), "WIO kernel") };
            return Err(Error::Rank { op: "conv1d", expected: "3", layout, shape: shape.to_vec() });
        };
        let p = conv1d_as_2d(k, stride, dilation, padding, groups);
        let y = self.reshape(&[n, 1, l, c])?.conv2d(&kernel.reshape(&[1, k, cg, o])?, &p)?;
        let (ol, oc) = (y.shape()[2], y.shape()[3]);
        y.reshape(&[n, ol, oc])
    }

    /// Depthwise 2-D convolution with a `[kh, kw, c, multiplier]` kernel.
    pub fn depthwise_conv2d(
        &self,
        kernel: &Var,
        strides: [usize; 2],
        dilation: [usize; 2],
        padding: Padding,
    ) -> Result<Var> {
        let v = depthwise_conv2d(&self.value, &kernel.value, strides, dilation, padding)?;
        self.record("depthwise_conv2d", v, Op::Depthwise { strides, dilation, padding }, &[kernel])
    }

    /// 2-D max pooling (NHWC).
    pub fn max_pool2d(&self, params: &PoolParams) -> Result<Var> {
        let v = max_pool2d(&self.value, params)?;
        self.record("max_pool2d", v, Op::MaxPool2d(*params), &[])
    }

    /// 2-D average pooling (NHWC), padded elements not counted.
    pub fn avg_pool2d(&self, params: &PoolParams) -> Result<Var> {
        let v = avg_pool2d(&self.value, params)?;
        self.record("avg_pool2d", v, Op::AvgPool2d(*params), &[])
    }

    /// Max pooling over 1 to 3 spatial axes, channels last (see [`max_pool`]).
    pub fn max_pool(&self, params: &PoolNdParams) -> Result<Var> {
        let v = max_pool(&self.value, params)?;
        self.record("max_pool", v, Op::MaxPool(params.clone()), &[])
    }

    /// Average pooling over 1 to 3 spatial axes, channels last, padded elements not counted.
    pub fn avg_pool(&self, params: &PoolNdParams) -> Result<Var> {
        let v = avg_pool(&self.value, params)?;
        self.record("avg_pool", v, Op::AvgPool(params.clone()), &[])
    }
}

fn all_axes(op: &'static str, axes: Option<&[isize]>, shape: &[usize]) -> Result<Vec<usize>> {
    match axes {
        Some(a) => normalize_axes(op, a, shape),
        None => Ok((0..shape.len()).collect()),
    }
}

macro_rules! var_binary {
    ($($name:ident => $op:ident;)*) => {
        impl Var {
            $(
                #[doc = concat!("Elementwise `", stringify!($name), "` with numpy broadcasting.")]
                pub fn $name(&self, other: &Var) -> Result<Var> {
                    self.binary(BinaryOp::$op, other)
                }
            )*
        }
    };
}

var_binary! {
    add => Add; sub => Sub; mul => Mul; div => Div; maximum => Max; minimum => Min; pow => Pow;
    greater => Greater; greater_equal => GreaterEqual; less => Less; less_equal => LessEqual; equal => Equal;
    not_equal => NotEqual;
}

macro_rules! var_unary {
    ($($name:ident => $op:ident;)*) => {
        impl Var {
            $(
                #[doc = concat!("Elementwise `", stringify!($name), "`.")]
                pub fn $name(&self) -> Var {
                    self.map(UnaryOp::$op)
                }
            )*
        }
    };
}

var_unary! {
    neg => Neg; exp => Exp; log => Log; sqrt => Sqrt; rsqrt => Rsqrt; tanh => Tanh; sigmoid => Sigmoid;
    relu => Relu; abs => Abs; square => Square; recip => Recip; sin => Sin; cos => Cos; softplus => Softplus;
    log1p => Log1p; expm1 => Expm1;
}

impl Var {
    /// Multiplies by a constant.
    pub fn scale(&self, s: f32) -> Var {
        self.map(UnaryOp::Scale(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_rule_through_shared_subexpression() {
        // y = x * x + x  => dy/dx = 2x + 1
        let tape = Tape::new();
        let x = tape.var(Tensor::from_vec(&[3], vec![1.0, -2.0, 0.5]).unwrap());
        let y = x.mul(&x).unwrap().add(&x).unwrap();
        let g = tape.backward(&y).unwrap();
        assert_eq!(g.get(&x).unwrap().as_slice(), &[3.0, -3.0, 2.0]);
    }

    #[test]
    fn constants_get_no_gradient_and_tapes_do_not_mix() {
        let tape = Tape::new();
        let c = tape.constant(Tensor::scalar(2.0));
        let x = tape.var(Tensor::scalar(3.0));
        let y = c.mul(&x).unwrap();
        let g = y.backward().unwrap();
        assert_eq!(g.get(&x).unwrap().item(), Some(2.0));
        assert!(g.get(&c).is_none());
        let other = Tape::new().var(Tensor::scalar(1.0));
        assert_eq!(
            x.add(&other).unwrap_err().to_string(),
            "add: variables come from different tapes; build every variable of one computation on the same tape"
        );
        assert!(g.get(&other).is_none());
        assert_eq!(tape.backward(&other).unwrap_err(), Error::TapeMismatch { op: "backward" });
    }

    #[test]
    fn tape_types_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Tape>();
        send_sync::<Var>();
        send_sync::<Gradients>();
        send_sync::<Tensor>();
    }

    #[test]
    fn only_leaf_gradients_are_kept() {
        let tape = Tape::new();
        let x = tape.var(Tensor::scalar(2.0));
        let h = x.square();
        let y = h.scale(3.0);
        let g = y.backward().unwrap();
        assert_eq!(g.get(&x).unwrap().item(), Some(12.0));
        assert!(g.get(&h).is_none());
        assert_eq!(tape.len(), 3);
    }

    #[test]
    fn max_ties_share_gradient() {
        let tape = Tape::new();
        let x = tape.var(Tensor::from_vec(&[4], vec![1.0, 3.0, 3.0, 0.0]).unwrap());
        let g = x.max(None, false).unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().as_slice(), &[0.0, 0.5, 0.5, 0.0]);
    }

    #[test]
    fn broadcast_gradient_is_reduced() {
        let tape = Tape::new();
        let a = tape.var(Tensor::ones(&[2, 3]).unwrap());
        let b = tape.var(Tensor::from_vec(&[3], vec![1.0, 2.0, 3.0]).unwrap());
        let g = a.mul(&b).unwrap().backward().unwrap();
        assert_eq!(g.get(&b).unwrap().as_slice(), &[2.0, 2.0, 2.0]);
        assert_eq!(g.get(&a).unwrap().as_slice(), &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    }
}
