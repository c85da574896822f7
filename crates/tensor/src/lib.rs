//! Tensors, CPU kernels and reverse-mode autodiff for strata. No Keras knowledge.
//!
//! Main types:
//! - [`Tensor`]: an f32 n-dimensional array, row-major and contiguous behind an
//!   `Arc` (clone is cheap, values are immutable). It remembers the [`DType`]
//!   it was decoded from ([`Tensor::from_le_bytes`]) so it can be written back.
//! - Kernels as methods and free functions: broadcasting [`binary`] ops,
//!   [`unary`] maps, reductions ([`Tensor::sum`], [`Tensor::mean`],
//!   [`Tensor::max`]), [`Tensor::matmul`] (batched, on `gemm`),
//!   [`Tensor::softmax`], layout ops ([`concat()`], [`stack()`], [`Tensor::slice`],
//!   [`Tensor::pad`], [`Tensor::permute`]), NHWC convolution ([`conv2d`],
//!   [`conv1d`], [`depthwise_conv2d`]), pooling ([`max_pool2d`], [`avg_pool2d`], and 1-D/3-D
//!   [`max_pool`], [`avg_pool`]) and image [`resize`] (TF half-pixel bilinear / nearest).
//! - [`Tape`]: eager reverse-mode autodiff, transparent at the tensor level. [`Tape::watch`] returns a
//!   tracked tensor; every operation above on tracked inputs is recorded, and [`Tape::backward`]
//!   returns [`Gradients`]. Untracked tensors pay one branch per op. See the `tape` module docs
//!   (design, rules) and [`custom_op`] for hand-written kernels.
//! - [`Error`]: every shape problem, carrying the shapes; nothing panics on a
//!   bad shape.
//!
//! ```
//! use strata_tensor::{Conv2dParams, Padding, PoolParams, Tape, Tensor};
//!
//! // A tiny convnet step: conv -> relu -> max pool -> dense -> softmax cross-entropy.
//! let tape = Tape::new();
//! let x = Tensor::ones(&[2, 6, 6, 1])?; // untracked: a constant
//! let kernel = tape.watch(&Tensor::full(&[3, 3, 1, 4], 0.1)?);
//! let dense = tape.watch(&Tensor::full(&[2 * 2 * 4, 3], 0.05)?);
//! let labels = Tensor::from_vec(&[2, 3], vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0])?;
//!
//! let conv = Conv2dParams::default().with_padding(Padding::Same);
//! let h = x.conv2d(&kernel, &conv)?.relu().max_pool2d(&PoolParams::new([3, 3]))?;
//! let logits = h.reshape(&[2, 16])?.matmul(&dense)?;
//! let loss = logits.log_softmax(-1)?.mul(&labels)?.sum(None, false)?.scale(-0.5);
//!
//! let grads = tape.backward(&loss)?;
//! assert_eq!(grads.get(&kernel).map(|g| g.shape()), Some(&[3, 3, 1, 4][..]));
//! assert_eq!(grads.get(&dense).map(|g| g.shape()), Some(&[16, 3][..]));
//! # Ok::<(), strata_tensor::Error>(())
//! ```
#![warn(missing_docs)]

mod conv;
mod dtype;
mod einsum;
mod elementwise;
mod error;
mod layout;
mod matmul;
mod pool;
mod reduce;
mod resize;
pub mod shape;
mod softmax;
mod tape;
mod tensor;

pub use conv::{
    Conv2dParams, ConvParams, Padding, Padding1d, PaddingNd, conv_nd, conv_nd_backward, conv_transpose_nd,
    conv_transpose_nd_backward, conv_transpose_output_len, conv1d, conv2d, conv2d_backward, depthwise_conv2d,
    depthwise_conv2d_backward, extract_patches, extract_patches_backward,
};
pub use dtype::{DType, bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
pub use einsum::einsum;
pub use elementwise::{BinaryOp, UnaryOp, binary, select, unary};
pub use error::{Error, Result};
pub use layout::{concat, stack};
pub use pool::{
    PoolNdParams, PoolParams, avg_pool_backward, avg_pool_in, avg_pool2d_backward, max_pool_backward,
    max_pool2d_backward,
};
pub use resize::{Interpolation, resize, resize_backward};
pub use tape::{BackwardFn, Gradients, Tape, avg_pool, avg_pool2d, custom_op, max_pool, max_pool2d};
pub use tensor::Tensor;
