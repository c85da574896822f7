//! The crate's error type.
//!
//! Every shape problem is an [`Error`] value that carries the shapes, axes and
//! parameters involved, so a caller (a layer, the loader) can attach where the
//! tensor came from. No operation in this crate panics on a bad shape.

use crate::DType;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a tensor operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The element count of a shape does not fit in `usize`.
    #[error("shape {shape:?} has too many elements: the element count overflows usize; use a smaller shape")]
    TooManyElements {
        /// The shape.
        shape: Vec<usize>,
    },

    /// A data buffer does not hold as many elements as the shape needs.
    #[error("{op}: data has {len} elements but shape {shape:?} needs {expected}; pass a buffer of matching length")]
    DataLength {
        /// The constructor.
        op: &'static str,
        /// Elements given.
        len: usize,
        /// Target shape.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
    },

    /// A raw byte buffer does not match `shape` x `dtype` size.
    #[error(
        "raw {dtype} data has {len} bytes but shape {shape:?} needs {expected} bytes ({size} per element); \
         the array's bytes are truncated or its dtype/shape is wrong"
    )]
    ByteLength {
        /// The dtype of the bytes.
        dtype: DType,
        /// Target shape.
        shape: Vec<usize>,
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        expected: usize,
        /// Bytes per element.
        size: usize,
    },

    /// An integer value cannot be held exactly by the f32 compute type.
    #[error(
        "{dtype} value {value} at element {index} cannot be represented exactly in f32 (|value| > 2^24); \
         integer tensors with large values are not supported yet"
    )]
    InexactInteger {
        /// The source dtype.
        dtype: DType,
        /// The offending value.
        value: i64,
        /// Its flat index.
        index: usize,
    },

    /// A value is not an integer, so it cannot be written as an integer dtype.
    #[error("value {value} at element {index} is not an integer in range for {dtype}; round or clip before converting")]
    NotAnInteger {
        /// Target dtype.
        dtype: DType,
        /// The value.
        value: f32,
        /// Its flat index.
        index: usize,
    },

    /// `reshape` to a shape with a different element count.
    #[error("cannot reshape {from:?} ({from_len} elements) to {to:?} ({to_len} elements); element counts must match")]
    Reshape {
        /// Source shape.
        from: Vec<usize>,
        /// Elements of the source.
        from_len: usize,
        /// Requested shape.
        to: Vec<usize>,
        /// Elements of the requested shape.
        to_len: usize,
    },

    /// A permutation is not a permutation of `0..rank`.
    #[error("{perm:?} is not a permutation of the {rank} axes of shape {shape:?}; list every axis exactly once")]
    Permutation {
        /// The permutation given.
        perm: Vec<usize>,
        /// Rank of the tensor.
        rank: usize,
        /// Its shape.
        shape: Vec<usize>,
    },

    /// An axis is outside `-rank..rank`.
    #[error("{op}: axis {axis} is out of range for shape {shape:?} (rank {rank}); use an axis in -{rank}..{rank}")]
    Axis {
        /// The operation.
        op: &'static str,
        /// Axis given (negative counts from the end).
        axis: isize,
        /// Rank of the tensor.
        rank: usize,
        /// Its shape.
        shape: Vec<usize>,
    },

    /// The same axis is listed twice.
    #[error("{op}: axis {axis} is listed more than once for shape {shape:?}")]
    DuplicateAxis {
        /// The operation.
        op: &'static str,
        /// The normalized axis.
        axis: usize,
        /// The shape.
        shape: Vec<usize>,
    },

    /// Two shapes cannot be broadcast together (numpy rules).
    #[error(
        "{op}: shapes {lhs:?} and {rhs:?} cannot be broadcast: aligned from the right, each pair of \
         dimensions must be equal or one of them 1"
    )]
    Broadcast {
        /// The operation.
        op: &'static str,
        /// Left shape.
        lhs: Vec<usize>,
        /// Right shape.
        rhs: Vec<usize>,
    },

    /// A tensor has the wrong rank for an operation.
    #[error("{op}: expected a tensor of rank {expected} ({layout}) but got shape {shape:?}")]
    Rank {
        /// The operation.
        op: &'static str,
        /// What the rank should be, e.g. `4` or `>= 2`.
        expected: &'static str,
        /// The expected layout, e.g. `NHWC`.
        layout: &'static str,
        /// Shape found.
        shape: Vec<usize>,
    },

    /// Inner dimensions of a matrix product differ.
    #[error("matmul: shapes {lhs:?} and {rhs:?} do not chain: lhs has {lhs_k} columns but rhs has {rhs_k} rows")]
    MatmulInner {
        /// Left shape.
        lhs: Vec<usize>,
        /// Right shape.
        rhs: Vec<usize>,
        /// Columns of the left matrix.
        lhs_k: usize,
        /// Rows of the right matrix.
        rhs_k: usize,
    },

    /// Two tensors that must agree on all but one axis do not.
    #[error(
        "{op}: tensor {index} has shape {shape:?} but tensor 0 has {first:?}; all dimensions except axis {axis} must match"
    )]
    Concat {
        /// `concat` or `stack`.
        op: &'static str,
        /// The axis being joined.
        axis: usize,
        /// First tensor's shape.
        first: Vec<usize>,
        /// Index of the mismatching tensor.
        index: usize,
        /// Its shape.
        shape: Vec<usize>,
    },

    /// An operation that needs at least one tensor got none.
    #[error("{op}: no tensors given; pass at least one")]
    Empty {
        /// The operation.
        op: &'static str,
    },

    /// A slice or pad description does not fit the tensor.
    #[error("{op}: range {start}..{end} on axis {axis} does not fit dimension {dim} of shape {shape:?}")]
    Range {
        /// The operation.
        op: &'static str,
        /// The axis.
        axis: usize,
        /// Start (inclusive).
        start: usize,
        /// End (exclusive).
        end: usize,
        /// Size of that axis.
        dim: usize,
        /// The shape.
        shape: Vec<usize>,
    },

    /// One entry per axis was expected.
    #[error("{op}: got {found} per-axis entries for shape {shape:?}; give one per axis ({rank})")]
    AxisCount {
        /// The operation.
        op: &'static str,
        /// Entries given.
        found: usize,
        /// Rank.
        rank: usize,
        /// The shape.
        shape: Vec<usize>,
    },

    /// An index tensor holds a value that is not a valid index.
    #[error(
        "{op}: index {value} at position {position} is not an integer in 0..{dim} (axis {axis} of shape {shape:?}); \
         check the ids against the table size"
    )]
    Index {
        /// The operation.
        op: &'static str,
        /// The offending value.
        value: f32,
        /// Its flat position in the index tensor.
        position: usize,
        /// Size of the indexed axis.
        dim: usize,
        /// The indexed axis.
        axis: usize,
        /// Shape of the indexed tensor.
        shape: Vec<usize>,
    },

    /// Input channels do not match the kernel and group count.
    #[error(
        "{op}: input {input:?} has {channels} channels but kernel {kernel:?} with groups={groups} expects {expected}; \
         the kernel's input-channel axis times groups must equal the input's last axis"
    )]
    Channels {
        /// The operation.
        op: &'static str,
        /// Input shape.
        input: Vec<usize>,
        /// Kernel shape.
        kernel: Vec<usize>,
        /// Groups.
        groups: usize,
        /// Input channels.
        channels: usize,
        /// Channels the kernel expects.
        expected: usize,
    },

    /// Output channels are not divisible by the group count.
    #[error("{op}: {filters} output channels are not divisible by groups={groups}")]
    Groups {
        /// The operation.
        op: &'static str,
        /// Output channels.
        filters: usize,
        /// Groups.
        groups: usize,
    },

    /// A parameter that must be positive is zero.
    #[error("{op}: {name} must be at least 1 but is 0")]
    ZeroParameter {
        /// The operation.
        op: &'static str,
        /// Which parameter (`strides`, `dilation_rate`, `groups`, `pool_size`).
        name: &'static str,
    },

    /// A window (kernel or pool) is larger than the padded input.
    #[error(
        "{op}: window of effective size {window:?} does not fit input of spatial size {input:?} with padding \
         {padding:?}; use padding=\"same\" or a smaller kernel/dilation"
    )]
    WindowTooLarge {
        /// The operation.
        op: &'static str,
        /// Effective window size (after dilation).
        window: Vec<usize>,
        /// Input spatial size.
        input: Vec<usize>,
        /// Total padding per spatial axis.
        padding: Vec<usize>,
    },

    /// A transposed convolution's output size does not convolve back to its input size.
    #[error(
        "{op}: input {input:?} would give output {output:?}, but convolving that output back gives {forward:?}; \
         the output padding must be smaller than the stride (and at least 1 for an even kernel with padding=\"same\")"
    )]
    TransposeShape {
        /// The operation.
        op: &'static str,
        /// Input shape.
        input: Vec<usize>,
        /// Computed output shape.
        output: Vec<usize>,
        /// Shape the forward convolution of the output has.
        forward: Vec<usize>,
    },

    /// A `valid` pooling window is larger than the input along some spatial axis (1-D and 3-D ops).
    #[error(
        "{op}: window {window:?} does not fit input of spatial size {input:?} without padding; use padding=\"same\" \
         or a smaller pool size"
    )]
    WindowTooLargeNd {
        /// The operation.
        op: &'static str,
        /// Window per spatial axis.
        window: Vec<usize>,
        /// Input size per spatial axis.
        input: Vec<usize>,
    },

    /// A gradient or saved tensor has a different shape than its forward counterpart.
    #[error("{op}: gradient shape {found:?} does not match the forward output shape {expected:?}")]
    GradShape {
        /// The operation.
        op: &'static str,
        /// Shape expected.
        expected: Vec<usize>,
        /// Shape found.
        found: Vec<usize>,
    },

    /// Tensors tracked by two different tapes were combined in one operation.
    #[error(
        "{op}: the inputs are tracked by different tapes; watch every trainable tensor of one computation on \
         the same tape, or `detach()` the tensors of the other tape to use them as constants"
    )]
    TapeMismatch {
        /// The operation.
        op: &'static str,
    },

    /// An `einsum` equation is malformed or does not fit its operands.
    #[error("einsum `{equation}`: {problem}")]
    Einsum {
        /// The equation as given.
        equation: String,
        /// What is wrong.
        problem: String,
    },

    /// `backward` was asked for a tensor that no tape tracks (or another tape tracks).
    #[error(
        "{op}: the loss is not tracked by this tape; build it with tensor operations from tensors returned by \
         `Tape::watch` on this tape (code that copies values out with `as_slice`/`to_vec` and back with \
         `from_vec` cuts the graph)"
    )]
    NotTracked {
        /// The operation.
        op: &'static str,
    },

    /// The gradient reached an operation that has no backward yet.
    #[error(
        "no gradient for `{op}` yet: the loss depends on a watched tensor through `{op}`, whose backward is not \
         implemented; detach its inputs if they need no gradient, or add its backward in strata-tensor"
    )]
    NoGradient {
        /// The operation.
        op: &'static str,
    },

    /// An internal invariant did not hold (a bug in this crate).
    #[error("internal error in {op}: {what}; this is a bug in strata-tensor, please report it")]
    Internal {
        /// Where.
        op: &'static str,
        /// Which invariant.
        what: &'static str,
    },
}
