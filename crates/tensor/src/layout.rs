//! Operations that move elements without arithmetic: concat, stack, slice,
//! pad and broadcast_to.

use crate::shape::{broadcast_shapes, broadcast_strides, normalize_axis, numel, split_at_axis};
use crate::tape::{Op, record, record1};
use crate::tensor::gather_strided;
use crate::{Error, Result, Tensor};

/// Joins tensors along an existing axis. All other dimensions must match.
pub fn concat(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
    let first = tensors.first().ok_or(Error::Empty { op: "concat" })?;
    let a = normalize_axis("concat", axis, first.shape())?;
    let mut out_shape = first.shape().to_vec();
    out_shape[a] = 0;
    for (index, t) in tensors.iter().enumerate() {
        let same = t.rank() == first.rank()
            && t.shape().iter().zip(first.shape()).enumerate().all(|(i, (x, y))| i == a || x == y);
        if !same {
            return Err(Error::Concat {
                op: "concat",
                axis: a,
                first: first.shape().to_vec(),
                index,
                shape: t.shape().to_vec(),
            });
        }
        out_shape[a] = out_shape[a]
            .checked_add(t.shape()[a])
            .ok_or_else(|| Error::TooManyElements { shape: out_shape.clone() })?;
    }
    let total = numel(&out_shape)?;
    let (outer, _, inner) = split_at_axis(&out_shape, a);
    let mut out = Vec::with_capacity(total);
    for o in 0..outer {
        for t in tensors {
            let block = t.shape()[a] * inner;
            out.extend_from_slice(&t.as_slice()[o * block..(o + 1) * block]);
        }
    }
    record("concat", tensors, Tensor::from_parts(out_shape, out), || Op::Concat(a))
}

/// Joins tensors of identical shape along a new axis (`0..=rank`).
pub fn stack(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
    let first = tensors.first().ok_or(Error::Empty { op: "stack" })?;
    for (index, t) in tensors.iter().enumerate() {
        if t.shape() != first.shape() {
            let mut probe = first.shape().to_vec();
            probe.push(1);
            let a = normalize_axis("stack", axis, &probe)?;
            return Err(Error::Concat {
                op: "stack",
                axis: a,
                first: first.shape().to_vec(),
                index,
                shape: t.shape().to_vec(),
            });
        }
    }
    let expanded = tensors.iter().map(|t| t.unsqueeze(axis)).collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = expanded.iter().collect();
    let mut probe = first.shape().to_vec();
    probe.push(1);
    concat(&refs, normalize_axis("stack", axis, &probe)? as isize)
}

/// Checks `ranges` (one `start..end` per axis) against `shape`.
pub(crate) fn check_ranges(op: &'static str, shape: &[usize], ranges: &[(usize, usize)]) -> Result<()> {
    if ranges.len() != shape.len() {
        return Err(Error::AxisCount { op, found: ranges.len(), rank: shape.len(), shape: shape.to_vec() });
    }
    for (axis, (&(start, end), &dim)) in ranges.iter().zip(shape).enumerate() {
        if start > end || end > dim {
            return Err(Error::Range { op, axis, start, end, dim, shape: shape.to_vec() });
        }
    }
    Ok(())
}

/// Converts f32 index values to `usize`, refusing non-integers and values outside `0..dim`.
pub(crate) fn to_indices(op: &'static str, idx: &Tensor, x: &[usize], axis: usize) -> Result<Vec<usize>> {
    let dim = x[axis];
    idx.as_slice()
        .iter()
        .enumerate()
        .map(|(position, &v)| {
            if v.fract() == 0.0 && v >= 0.0 && (v as usize) < dim {
                Ok(v as usize)
            } else {
                Err(Error::Index { op, value: v, position, dim, axis, shape: x.to_vec() })
            }
        })
        .collect()
}

/// numpy `take` with already checked indices: output shape `x[..axis] + idx_shape + x[axis+1..]`.
pub(crate) fn take_checked(x: &Tensor, idx: &[usize], idx_shape: &[usize], axis: usize) -> Result<Tensor> {
    let (outer, dim, inner) = split_at_axis(x.shape(), axis);
    let mut shape = x.shape()[..axis].to_vec();
    shape.extend(idx_shape);
    shape.extend(&x.shape()[axis + 1..]);
    let total = numel(&shape)?;
    let mut out = Vec::with_capacity(total);
    let src = x.as_slice();
    for o in 0..outer {
        for &i in idx {
            out.extend_from_slice(&src[(o * dim + i) * inner..][..inner]);
        }
    }
    Ok(Tensor::from_parts(shape, out))
}

/// The gradient of `take`: `g` scattered (added) back into zeros of `x_shape`.
pub(crate) fn take_backward(x_shape: &[usize], idx: &[usize], axis: usize, g: &Tensor) -> Tensor {
    let (outer, dim, inner) = split_at_axis(x_shape, axis);
    let mut dx = vec![0f32; outer * dim * inner];
    let gs = g.as_slice();
    for o in 0..outer {
        for (j, &i) in idx.iter().enumerate() {
            let src = &gs[(o * idx.len() + j) * inner..][..inner];
            dx[(o * dim + i) * inner..][..inner].iter_mut().zip(src).for_each(|(a, b)| *a += b);
        }
    }
    Tensor::from_parts(x_shape.to_vec(), dx)
}

impl Tensor {
    /// numpy / `keras.ops.take`: selects entries along `axis` by the integer values of `indices` (any shape);
    /// the result has shape `self[..axis] + indices.shape + self[axis+1..]`. `take(ids, 0)` on a `[vocab, dim]`
    /// table is an embedding lookup.
    pub fn take(&self, indices: &Tensor, axis: isize) -> Result<Tensor> {
        let a = normalize_axis("take", axis, self.shape())?;
        let idx = to_indices("take", indices, self.shape(), a)?;
        let out = take_checked(self, &idx, indices.shape(), a)?;
        Ok(record1(self, out, || Op::Take { indices: idx, axis: a }))
    }

    /// Index of the maximum along `axis` (first one on ties; NaN counts as maximal), as f32 values; the axis is removed.
    pub fn argmax(&self, axis: isize) -> Result<Tensor> {
        let a = normalize_axis("argmax", axis, self.shape())?;
        let (outer, dim, inner) = split_at_axis(self.shape(), a);
        let mut out = vec![0f32; outer * inner];
        let src = self.as_slice();
        for o in 0..outer {
            for i in 0..inner {
                let mut best = 0usize;
                for j in 1..dim {
                    let (v, b) = (src[(o * dim + j) * inner + i], src[(o * dim + best) * inner + i]);
                    if (v > b || v.is_nan()) && !b.is_nan() {
                        best = j;
                    }
                }
                out[o * inner + i] = best as f32;
            }
        }
        let mut shape = self.shape().to_vec();
        shape.remove(a);
        Ok(Tensor::from_parts(shape, out))
    }

    /// The sub-tensor `[start0..end0, start1..end1, ...]` (one range per axis, step 1).
    pub fn slice(&self, ranges: &[(usize, usize)]) -> Result<Tensor> {
        check_ranges("slice", self.shape(), ranges)?;
        let shape: Vec<usize> = ranges.iter().map(|&(s, e)| e - s).collect();
        let st = crate::shape::strides(self.shape());
        let offset: usize = ranges.iter().zip(&st).map(|(&(s, _), &k)| s * k).sum();
        let n: usize = shape.iter().product();
        let out = if n == 0 {
            Tensor::from_parts(shape, Vec::new())
        } else {
            Tensor::from_parts(shape.clone(), gather_strided(&self.as_slice()[offset..], &shape, &st))
        };
        Ok(record1(self, out, || Op::Slice(ranges.to_vec())))
    }

    /// Slices one axis, keeping the others whole.
    pub fn slice_axis(&self, axis: isize, start: usize, end: usize) -> Result<Tensor> {
        let a = normalize_axis("slice", axis, self.shape())?;
        let ranges: Vec<(usize, usize)> =
            self.shape().iter().enumerate().map(|(i, &d)| if i == a { (start, end) } else { (0, d) }).collect();
        self.slice(&ranges)
    }

    /// Pads every axis with `pads[i] = (before, after)` copies of `value`.
    pub fn pad(&self, pads: &[(usize, usize)], value: f32) -> Result<Tensor> {
        if pads.len() != self.rank() {
            return Err(Error::AxisCount {
                op: "pad",
                found: pads.len(),
                rank: self.rank(),
                shape: self.shape().to_vec(),
            });
        }
        let mut shape = Vec::with_capacity(self.rank());
        for (&d, &(b, a)) in self.shape().iter().zip(pads) {
            let padded = d.checked_add(b).and_then(|x| x.checked_add(a));
            shape.push(padded.ok_or_else(|| Error::TooManyElements { shape: self.shape().to_vec() })?);
        }
        let total = numel(&shape)?;
        let mut out = vec![value; total];
        let rank = self.rank();
        if self.is_empty() {
            return Ok(record1(self, Tensor::from_parts(shape, out), || Op::Pad(pads.to_vec())));
        }
        if rank == 0 {
            return Ok(self.clone());
        }
        let ost = crate::shape::strides(&shape);
        let last = self.shape()[rank - 1];
        for (r, row) in self.as_slice().chunks_exact(last).enumerate() {
            let (mut rem, mut off) = (r, pads[rank - 1].0);
            for k in (0..rank - 1).rev() {
                off += (rem % self.shape()[k] + pads[k].0) * ost[k];
                rem /= self.shape()[k];
            }
            out[off..off + last].copy_from_slice(row);
        }
        Ok(record1(self, Tensor::from_parts(shape, out), || Op::Pad(pads.to_vec())))
    }

    /// Broadcasts to `shape` (numpy rules; `shape` must be the broadcast result), copying.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        let b = broadcast_shapes("broadcast_to", self.shape(), shape)?;
        if b != shape {
            return Err(Error::Broadcast { op: "broadcast_to", lhs: self.shape().to_vec(), rhs: shape.to_vec() });
        }
        let st = broadcast_strides(self.shape(), shape);
        let out = Tensor::from_parts(shape.to_vec(), gather_strided(self.as_slice(), shape, &st));
        Ok(record1(self, out, || Op::BroadcastTo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(shape: &[usize]) -> Tensor {
        let n = shape.iter().product::<usize>();
        Tensor::from_vec(shape, (0..n).map(|x| x as f32).collect()).unwrap()
    }

    #[test]
    fn concat_and_stack() {
        let a = iota(&[2, 2]);
        let b = iota(&[2, 1]).scale(10.0);
        let c = concat(&[&a, &b], 1).unwrap();
        assert_eq!(c.shape(), &[2, 3]);
        assert_eq!(c.as_slice(), &[0.0, 1.0, 0.0, 2.0, 3.0, 10.0]);
        let s = stack(&[&a, &a], -1).unwrap();
        assert_eq!(s.shape(), &[2, 2, 2]);
        assert_eq!(s.as_slice(), &[0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        assert_eq!(
            concat(&[&a, &b], 0).unwrap_err().to_string(),
            "concat: tensor 1 has shape [2, 1] but tensor 0 has [2, 2]; all dimensions except axis 0 must match"
        );
        assert_eq!(concat(&[], 0).unwrap_err().to_string(), "concat: no tensors given; pass at least one");
    }

    #[test]
    fn slice_and_pad_invert() {
        let x = iota(&[3, 4]);
        let s = x.slice(&[(1, 3), (1, 3)]).unwrap();
        assert_eq!(s.as_slice(), &[5.0, 6.0, 9.0, 10.0]);
        let p = s.pad(&[(1, 0), (1, 1)], 0.0).unwrap();
        assert_eq!(p.shape(), &[3, 4]);
        assert_eq!(p.as_slice(), &[0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 6.0, 0.0, 0.0, 9.0, 10.0, 0.0]);
        assert_eq!(
            x.slice(&[(0, 3), (2, 5)]).unwrap_err().to_string(),
            "slice: range 2..5 on axis 1 does not fit dimension 4 of shape [3, 4]"
        );
        assert_eq!(
            x.pad(&[(0, 0)], 0.0).unwrap_err().to_string(),
            "pad: got 1 per-axis entries for shape [3, 4]; give one per axis (2)"
        );
        assert_eq!(x.slice_axis(-1, 3, 4).unwrap().as_slice(), &[3.0, 7.0, 11.0]);
    }

    #[test]
    fn take_is_an_embedding_lookup() {
        let table = iota(&[4, 2]);
        let ids = Tensor::from_vec(&[2, 2], vec![3.0, 0.0, 1.0, 1.0]).unwrap();
        let e = table.take(&ids, 0).unwrap();
        assert_eq!(e.shape(), &[2, 2, 2]);
        assert_eq!(e.as_slice(), &[6.0, 7.0, 0.0, 1.0, 2.0, 3.0, 2.0, 3.0]);
        let cols = table.take(&Tensor::from_vec(&[1], vec![1.0]).unwrap(), -1).unwrap();
        assert_eq!(cols.as_slice(), &[1.0, 3.0, 5.0, 7.0]);
        let bad = Tensor::from_vec(&[2], vec![1.0, 4.0]).unwrap();
        assert_eq!(
            table.take(&bad, 0).unwrap_err().to_string(),
            "take: index 4 at position 1 is not an integer in 0..4 (axis 0 of shape [4, 2]); check the ids against \
             the table size"
        );
        assert!(table.take(&Tensor::scalar(0.5), 0).is_err());
    }

    #[test]
    fn argmax_takes_first_maximum() {
        let x = Tensor::from_vec(&[2, 3], vec![1.0, 5.0, 5.0, 2.0, 0.0, 9.0]).unwrap();
        assert_eq!(x.argmax(-1).unwrap().as_slice(), &[1.0, 2.0]);
        assert_eq!(x.argmax(0).unwrap().as_slice(), &[1.0, 0.0, 1.0]);
    }

    #[test]
    fn broadcast_to_copies() {
        let x = iota(&[2, 1]);
        assert_eq!(x.broadcast_to(&[2, 3]).unwrap().as_slice(), &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        assert!(x.broadcast_to(&[3]).is_err());
    }
}
