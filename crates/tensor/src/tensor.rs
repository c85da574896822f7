//! The [`Tensor`] type: an f32 array with a shape, stored contiguous and
//! row-major behind an `Arc`, so cloning is cheap and tensors are immutable
//! values (every operation returns a new tensor).

use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::dtype::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use crate::shape::{normalize_axis, numel, strides};
use crate::tape::{Op, record};
use crate::{DType, Error, Result};

/// Largest integer magnitude an f32 holds exactly.
const F32_EXACT_INT: i64 = 1 << 24;

/// An n-dimensional f32 array (row-major, contiguous, shared storage).
///
/// A rank-0 tensor (shape `[]`) is a scalar with one element. Equality compares the shape, the dtype tag
/// and the values with f32 `==` (so a tensor holding NaN is not equal to itself); whether a tape tracks
/// the tensor does not matter.
///
/// A tensor returned by [`crate::Tape::watch`], or computed by an operation from such a tensor, is
/// *tracked*: it carries a handle to its tape and node, and operations on it are recorded for
/// [`crate::Tape::backward`] (see the `tape` module docs). Other tensors carry nothing and cost nothing extra.
#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Arc<Vec<f32>>,
    dtype: DType,
    /// The tape node that produced this value, if a tape tracks it.
    pub(crate) track: Option<Arc<crate::tape::Tracked>>,
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Tensor) -> bool {
        self.shape == other.shape && self.dtype == other.dtype && self.data == other.data
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.data.len().min(8);
        write!(f, "Tensor({:?}, {}, {:?}", self.shape, self.dtype, &self.data[..shown])?;
        if self.data.len() > shown {
            write!(f, " ..{} more", self.data.len() - shown)?;
        }
        if let Some(t) = &self.track {
            write!(f, ", tracked #{}", t.id)?;
        }
        write!(f, ")")
    }
}

impl Tensor {
    /// Builds a tensor from row-major data; `data.len()` must equal the shape's element count.
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Result<Tensor> {
        let expected = numel(shape)?;
        if data.len() != expected {
            return Err(Error::DataLength { op: "from_vec", len: data.len(), shape: shape.to_vec(), expected });
        }
        Ok(Tensor { shape: shape.to_vec(), data: Arc::new(data), dtype: DType::F32, track: None })
    }

    /// Internal constructor for buffers whose length the caller has just computed from `shape`.
    pub(crate) fn from_parts(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data: Arc::new(data), dtype: DType::F32, track: None }
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Result<Tensor> {
        Tensor::full(shape, 0.0)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Result<Tensor> {
        Tensor::full(shape, 1.0)
    }

    /// A tensor filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Result<Tensor> {
        let n = numel(shape)?;
        Ok(Tensor::from_parts(shape.to_vec(), vec![value; n]))
    }

    /// A rank-0 tensor.
    pub fn scalar(value: f32) -> Tensor {
        Tensor::from_parts(Vec::new(), vec![value])
    }

    /// Decodes little-endian bytes of `dtype` (as stored in HDF5 and `.npy`) into an f32 tensor that
    /// remembers `dtype`. Integers must be exactly representable in f32 (|v| <= 2^24).
    pub fn from_le_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
        let n = numel(shape)?;
        let size = dtype.size();
        let expected = n.checked_mul(size).ok_or_else(|| Error::TooManyElements { shape: shape.to_vec() })?;
        if bytes.len() != expected {
            return Err(Error::ByteLength { dtype, shape: shape.to_vec(), len: bytes.len(), expected, size });
        }
        let mut data = Vec::with_capacity(n);
        match dtype {
            DType::F16 => data.extend(bytes.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))),
            DType::BF16 => data.extend(bytes.chunks_exact(2).map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))),
            DType::F32 => data.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
            DType::F64 => data.extend(
                bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32),
            ),
            DType::I32 => {
                for (index, c) in bytes.chunks_exact(4).enumerate() {
                    let v = i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64;
                    data.push(exact_int(dtype, v, index)?);
                }
            }
            DType::I64 => {
                for (index, c) in bytes.chunks_exact(8).enumerate() {
                    let v = i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                    data.push(exact_int(dtype, v, index)?);
                }
            }
        }
        Ok(Tensor { shape: shape.to_vec(), data: Arc::new(data), dtype, track: None })
    }

    /// Encodes the tensor as little-endian bytes of `dtype` (floats round to nearest even; integer
    /// dtypes require integral values in range).
    pub fn to_le_bytes(&self, dtype: DType) -> Result<Vec<u8>> {
        let n = self.data.len();
        let mut out = Vec::with_capacity(n.saturating_mul(dtype.size()));
        match dtype {
            DType::F16 => self.data.iter().for_each(|&x| out.extend_from_slice(&f32_to_f16(x).to_le_bytes())),
            DType::BF16 => self.data.iter().for_each(|&x| out.extend_from_slice(&f32_to_bf16(x).to_le_bytes())),
            DType::F32 => self.data.iter().for_each(|&x| out.extend_from_slice(&x.to_le_bytes())),
            DType::F64 => self.data.iter().for_each(|&x| out.extend_from_slice(&(x as f64).to_le_bytes())),
            DType::I32 | DType::I64 => {
                let (lo, hi) = if dtype == DType::I32 {
                    (i32::MIN as f32, i32::MAX as f32)
                } else {
                    (i64::MIN as f32, i64::MAX as f32)
                };
                for (index, &x) in self.data.iter().enumerate() {
                    if x.fract() != 0.0 || !(lo..hi).contains(&x) {
                        return Err(Error::NotAnInteger { dtype, value: x, index });
                    }
                    if dtype == DType::I32 {
                        out.extend_from_slice(&(x as i32).to_le_bytes());
                    } else {
                        out.extend_from_slice(&(x as i64).to_le_bytes());
                    }
                }
            }
        }
        Ok(out)
    }

    /// Copies an ndarray array (any layout) into a tensor.
    pub fn from_ndarray(a: ArrayViewD<'_, f32>) -> Tensor {
        let shape = a.shape().to_vec();
        let data = match a.as_slice() {
            Some(s) => s.to_vec(),
            None => a.iter().copied().collect(),
        };
        Tensor::from_parts(shape, data)
    }

    /// Borrows the tensor as an ndarray view.
    pub fn as_ndarray(&self) -> ArrayViewD<'_, f32> {
        // Unreachable failure: every constructor (`from_vec`, `from_le_bytes`, `from_parts`, and the
        // ops, which build through them) checks that `data.len()` equals the product of `shape`,
        // and both fields are private and never change afterwards; a contiguous row-major view of
        // exactly that many elements always exists.
        ArrayViewD::from_shape(IxDyn(&self.shape), &self.data)
            .expect("struct invariant: storage length equals the shape's element count")
    }

    /// Copies the tensor into an owned ndarray array.
    pub fn to_ndarray(&self) -> ArrayD<f32> {
        self.as_ndarray().to_owned()
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The dtype the tensor was read as (storage is f32; new tensors are `F32`).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The same values tagged with another dtype (used when writing back).
    pub fn with_dtype(mut self, dtype: DType) -> Tensor {
        self.dtype = dtype;
        self
    }

    /// The elements in row-major order.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Copies the elements out.
    pub fn to_vec(&self) -> Vec<f32> {
        self.data.to_vec()
    }

    /// Takes the elements, copying only if the storage is shared.
    pub fn into_vec(self) -> Vec<f32> {
        Arc::try_unwrap(self.data).unwrap_or_else(|shared| shared.to_vec())
    }

    /// The value of a one-element tensor (any rank).
    pub fn item(&self) -> Option<f32> {
        if self.data.len() == 1 { self.data.first().copied() } else { None }
    }

    /// The element at a multi-index, or `None` if out of range.
    pub fn get(&self, index: &[usize]) -> Option<f32> {
        if index.len() != self.shape.len() {
            return None;
        }
        let mut off = 0usize;
        for (&i, &d) in index.iter().zip(&self.shape) {
            if i >= d {
                return None;
            }
            off = off * d + i;
        }
        self.data.get(off).copied()
    }

    /// Same data, new shape (no copy). The element count must match.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let to_len = numel(shape)?;
        if to_len != self.data.len() {
            return Err(Error::Reshape {
                from: self.shape.clone(),
                from_len: self.data.len(),
                to: shape.to_vec(),
                to_len,
            });
        }
        let out = Tensor { shape: shape.to_vec(), data: Arc::clone(&self.data), dtype: self.dtype, track: None };
        record("reshape", &[self], out, || Op::Reshape)
    }

    /// Reshape where one entry may be `-1` (inferred), as in Keras `Reshape`.
    pub fn reshape_infer(&self, shape: &[isize]) -> Result<Tensor> {
        let bad = || Error::Reshape {
            from: self.shape.clone(),
            from_len: self.data.len(),
            to: shape.iter().map(|&d| d.max(0) as usize).collect(),
            to_len: 0,
        };
        let known: usize = shape
            .iter()
            .filter(|&&d| d >= 0)
            .map(|&d| d as usize)
            .try_fold(1usize, |a, d| a.checked_mul(d))
            .ok_or_else(bad)?;
        let holes = shape.iter().filter(|&&d| d < 0).count();
        let dims: Vec<usize> = match holes {
            0 => shape.iter().map(|&d| d as usize).collect(),
            1 if known != 0 && self.data.len().is_multiple_of(known) => {
                shape.iter().map(|&d| if d < 0 { self.data.len() / known } else { d as usize }).collect()
            }
            _ => return Err(bad()),
        };
        self.reshape(&dims)
    }

    /// Inserts an axis of size 1 at `axis` (`0..=rank`, negative counts from the end).
    pub fn unsqueeze(&self, axis: isize) -> Result<Tensor> {
        let mut probe = self.shape.clone();
        probe.push(1);
        let a = normalize_axis("unsqueeze", axis, &probe)?;
        let mut shape = self.shape.clone();
        shape.insert(a, 1);
        self.reshape(&shape)
    }

    /// Reorders axes: output axis `i` is input axis `perm[i]` (numpy `transpose(perm)`).
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        let valid = perm.len() == rank && perm.iter().all(|&p| p < rank && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(Error::Permutation { perm: perm.to_vec(), rank, shape: self.shape.clone() });
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self.clone());
        }
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
        let in_strides = strides(&self.shape);
        let st: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
        let data = gather_strided(&self.data, &shape, &st);
        record("permute", &[self], Tensor::from_parts(shape, data), || Op::Permute(perm.to_vec()))
    }

    /// Swaps the last two axes (matrix transpose, batched). Rank must be at least 2.
    pub fn transpose(&self) -> Result<Tensor> {
        let r = self.rank();
        if r < 2 {
            return Err(Error::Rank {
                op: "transpose",
                expected: ">= 2",
                layout: "[..., rows, cols]",
                shape: self.shape.clone(),
            });
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.permute(&perm)
    }

    /// Checks `self` and `other` have the same shape and every element differs by at most
    /// `atol + rtol * |other|`.
    pub fn all_close(&self, other: &Tensor, rtol: f32, atol: f32) -> bool {
        self.shape == other.shape
            && self.data.iter().zip(other.data.iter()).all(|(&a, &b)| (a - b).abs() <= atol + rtol * b.abs() || a == b)
    }
}

fn exact_int(dtype: DType, v: i64, index: usize) -> Result<f32> {
    if !(-F32_EXACT_INT..=F32_EXACT_INT).contains(&v) {
        return Err(Error::InexactInteger { dtype, value: v, index });
    }
    Ok(v as f32)
}

/// Copies a strided view (`shape`, element `strides`, offset 0) of `src` into a row-major vector.
/// Every index `sum(i_k * strides_k)` must lie inside `src` (callers derive strides from `src`'s shape).
pub(crate) fn gather_strided(src: &[f32], shape: &[usize], st: &[usize]) -> Vec<f32> {
    use rayon::prelude::*;
    let n: usize = shape.iter().product();
    if n == 0 {
        return Vec::new();
    }
    let rank = shape.len();
    if rank == 0 {
        return src.first().copied().into_iter().collect();
    }
    let last = shape[rank - 1];
    let last_stride = st[rank - 1];
    let mut out = vec![0f32; n];
    let fill_row = |row: usize, dst: &mut [f32]| {
        let mut rem = row;
        let mut base = 0usize;
        for k in (0..rank - 1).rev() {
            base += (rem % shape[k]) * st[k];
            rem /= shape[k];
        }
        for (j, d) in dst.iter_mut().enumerate() {
            *d = src.get(base + j * last_stride).copied().unwrap_or(0.0);
        }
    };
    if last == 0 {
        return out;
    }
    if n >= crate::elementwise::PAR_THRESHOLD {
        out.par_chunks_mut(last).enumerate().for_each(|(r, d)| fill_row(r, d));
    } else {
        out.chunks_mut(last).enumerate().for_each(|(r, d)| fill_row(r, d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_checks_length() {
        let e = Tensor::from_vec(&[2, 3], vec![0.0; 5]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "from_vec: data has 5 elements but shape [2, 3] needs 6; pass a buffer of matching length"
        );
    }

    #[test]
    fn le_bytes_round_trip_each_dtype() {
        let t = Tensor::from_vec(&[2, 2], vec![1.0, -2.5, 0.0, 65504.0]).unwrap();
        for d in [DType::F16, DType::BF16, DType::F32, DType::F64] {
            let b = t.to_le_bytes(d).unwrap();
            assert_eq!(b.len(), 4 * d.size());
            let back = Tensor::from_le_bytes(d, &[2, 2], &b).unwrap();
            assert_eq!(back.dtype(), d);
            if d == DType::BF16 {
                assert_eq!(back.as_slice()[..3], [1.0, -2.5, 0.0]);
            } else {
                assert_eq!(back.as_slice(), t.as_slice());
            }
        }
        let ints = Tensor::from_vec(&[3], vec![-7.0, 0.0, 16_777_216.0]).unwrap();
        for d in [DType::I32, DType::I64] {
            let back = Tensor::from_le_bytes(d, &[3], &ints.to_le_bytes(d).unwrap()).unwrap();
            assert_eq!(back.as_slice(), ints.as_slice());
        }
    }

    #[test]
    fn le_bytes_errors_name_the_problem() {
        let e = Tensor::from_le_bytes(DType::F16, &[3], &[0; 5]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "raw float16 data has 5 bytes but shape [3] needs 6 bytes (2 per element); the array's bytes are \
             truncated or its dtype/shape is wrong"
        );
        let big = (1i64 << 24) + 1;
        let e = Tensor::from_le_bytes(DType::I64, &[1], &big.to_le_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "int64 value 16777217 at element 0 cannot be represented exactly in f32 (|value| > 2^24); integer \
             tensors with large values are not supported yet"
        );
        let e = Tensor::scalar(0.5).to_le_bytes(DType::I32).unwrap_err();
        assert_eq!(
            e.to_string(),
            "value 0.5 at element 0 is not an integer in range for int32; round or clip before converting"
        );
        let e = Tensor::from_le_bytes(DType::F64, &[usize::MAX, 2], &[]).unwrap_err();
        assert!(matches!(e, Error::TooManyElements { .. }));
    }

    #[test]
    fn reshape_shares_and_checks() {
        let t = Tensor::from_vec(&[2, 3], (0..6).map(|x| x as f32).collect()).unwrap();
        let r = t.reshape(&[3, 2]).unwrap();
        assert_eq!(r.as_slice(), t.as_slice());
        assert_eq!(t.reshape_infer(&[-1, 2]).unwrap().shape(), &[3, 2]);
        assert_eq!(
            t.reshape(&[4]).unwrap_err().to_string(),
            "cannot reshape [2, 3] (6 elements) to [4] (4 elements); element counts must match"
        );
        assert!(t.reshape_infer(&[-1, -1]).is_err());
        assert!(t.reshape_infer(&[-1, 4]).is_err());
    }

    #[test]
    fn permute_matches_ndarray() {
        let t = Tensor::from_vec(&[2, 3, 4], (0..24).map(|x| x as f32).collect()).unwrap();
        let p = t.permute(&[2, 0, 1]).unwrap();
        let want = t.to_ndarray().permuted_axes(vec![2, 0, 1]);
        assert_eq!(p.shape(), &[4, 2, 3]);
        assert_eq!(p.to_vec(), want.iter().copied().collect::<Vec<_>>());
        assert_eq!(t.transpose().unwrap().get(&[0, 3, 2]), t.get(&[0, 2, 3]));
        assert_eq!(
            t.permute(&[0, 0, 1]).unwrap_err().to_string(),
            "[0, 0, 1] is not a permutation of the 3 axes of shape [2, 3, 4]; list every axis exactly once"
        );
    }
}
