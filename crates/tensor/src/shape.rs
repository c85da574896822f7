//! Shape arithmetic: element counts, row-major strides, axis normalization and
//! numpy broadcasting.

use crate::{Error, Result};

/// Number of elements of `shape`, or [`Error::TooManyElements`] on overflow.
pub fn numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::TooManyElements { shape: shape.to_vec() })
}

/// Row-major (C order) strides in elements.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Maps a possibly negative axis (`-1` is the last) to `0..rank`.
pub fn normalize_axis(op: &'static str, axis: isize, shape: &[usize]) -> Result<usize> {
    let rank = shape.len();
    let a = if axis < 0 { axis + rank as isize } else { axis };
    if a < 0 || a >= rank as isize {
        return Err(Error::Axis { op, axis, rank, shape: shape.to_vec() });
    }
    Ok(a as usize)
}

/// Normalizes a list of axes, refusing duplicates; the result is sorted ascending.
pub fn normalize_axes(op: &'static str, axes: &[isize], shape: &[usize]) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = normalize_axis(op, a, shape)?;
        if out.contains(&n) {
            return Err(Error::DuplicateAxis { op, axis: n, shape: shape.to_vec() });
        }
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

/// The numpy broadcast of two shapes.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::Broadcast { op, lhs: a.to_vec(), rhs: b.to_vec() });
        };
    }
    Ok(out)
}

/// Strides to read a tensor of `shape` as if it had shape `out` (broadcast axes get stride 0).
/// `shape` must broadcast to `out`.
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let lead = out.len() - shape.len();
    (0..out.len()).map(|i| if i < lead || shape[i - lead] == 1 { 0 } else { own[i - lead] }).collect()
}

/// Splits `shape` around `axis` into (outer, dim, inner) element counts.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy() {
        assert_eq!(broadcast_shapes("t", &[2, 1, 3], &[4, 1]).unwrap(), vec![2, 4, 3]);
        assert_eq!(broadcast_shapes("t", &[], &[5]).unwrap(), vec![5]);
        let e = broadcast_shapes("add", &[2, 3], &[4]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add: shapes [2, 3] and [4] cannot be broadcast: aligned from the right, each pair of dimensions \
             must be equal or one of them 1"
        );
    }

    #[test]
    fn axes_normalize_and_refuse_bad_ones() {
        assert_eq!(normalize_axes("sum", &[-1, 0], &[2, 3, 4]).unwrap(), vec![0, 2]);
        assert_eq!(
            normalize_axis("sum", 3, &[2, 3, 4]).unwrap_err().to_string(),
            "sum: axis 3 is out of range for shape [2, 3, 4] (rank 3); use an axis in -3..3"
        );
        assert_eq!(
            normalize_axes("sum", &[1, -2], &[2, 3, 4]).unwrap_err().to_string(),
            "sum: axis 1 is listed more than once for shape [2, 3, 4]"
        );
    }

    #[test]
    fn numel_overflow_is_an_error() {
        assert_eq!(
            numel(&[usize::MAX, 2]).unwrap_err().to_string(),
            format!(
                "shape [{}, 2] has too many elements: the element count overflows usize; use a smaller shape",
                usize::MAX
            )
        );
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
    }
}
