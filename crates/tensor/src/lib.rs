//! Tensors, CPU kernels and reverse-mode autodiff for strata. No Keras knowledge.
//!
//! TODO docs
#![warn(missing_docs)]

mod conv;
mod dtype;
mod elementwise;
mod error;
mod layout;
mod matmul;
mod reduce;
pub mod shape;
mod softmax;
mod tensor;

pub use dtype::{DType, bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
pub use elementwise::{BinaryOp, UnaryOp, binary, unary};
pub use error::{Error, Result};
pub use layout::{concat, stack};
pub use tensor::Tensor;
pub use conv::{Conv2dParams, Padding, Padding1d, conv1d, conv2d, conv2d_backward, depthwise_conv2d};
