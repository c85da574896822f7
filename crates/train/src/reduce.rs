//! Small shape helpers shared by losses, metrics and constraints.

use crate::error::{Error, Result};

/// Keras's `squeeze_or_expand_to_same_rank(x1, x2)` on shapes (`keras/src/losses/loss.py`).
pub(crate) fn same_rank(a: &[usize], b: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    if a.len() == b.len() + 1 && a.last() == Some(&1) {
        if b.len() == 1 {
            b.push(1);
        } else {
            a.pop();
        }
    } else if b.len() == a.len() + 1 && b.last() == Some(&1) {
        if a.len() == 1 {
            a.push(1);
        } else {
            b.pop();
        }
    }
    (a, b)
}

/// Product of dims, refusing overflow.
pub(crate) fn numel(what: &str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::invalid(what, format!("shape {shape:?} has too many elements")))
}

/// Normalises a possibly negative axis.
pub(crate) fn axis(what: &str, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(Error::invalid(what, format!("axis {axis} is out of range for rank {rank}")));
    }
    Ok(a as usize)
}

/// For each element of `shape` (row-major), the index of its group when the `axes` are reduced
/// (kept as size 1), and the number of groups.
pub(crate) fn group_map(shape: &[usize], axes: &[usize]) -> (Vec<usize>, usize) {
    let kept: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let groups: usize = kept.iter().product();
    let n: usize = shape.iter().product();
    let mut map = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        let mut g = 0usize;
        for (i, &k) in kept.iter().enumerate() {
            g = g * k + if k == 1 { 0 } else { idx[i] };
        }
        map.push(g);
        for i in (0..shape.len()).rev() {
            idx[i] += 1;
            if idx[i] < shape[i] {
                break;
            }
            idx[i] = 0;
        }
    }
    (map, groups)
}

/// Moves `axis` to the end: returns (permuted data, permuted shape, inverse permutation).
pub(crate) fn move_axis_last(data: &[f32], shape: &[usize], axis: usize) -> (Vec<f32>, Vec<usize>, Vec<usize>) {
    let rank = shape.len();
    let mut perm: Vec<usize> = (0..rank).filter(|&i| i != axis).collect();
    perm.push(axis);
    let new_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let out = permute(data, shape, &perm);
    let mut inv = vec![0; rank];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    (out, new_shape, inv)
}

/// Row-major permutation of `data` with `shape` by `perm`.
pub(crate) fn permute(data: &[f32], shape: &[usize], perm: &[usize]) -> Vec<f32> {
    let rank = shape.len();
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let new_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let n = data.len();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    for _ in 0..n {
        let off: usize = idx.iter().zip(perm).map(|(&i, &p)| i * strides[p]).sum();
        out.push(data.get(off).copied().unwrap_or(0.0));
        for i in (0..rank).rev() {
            idx[i] += 1;
            if idx[i] < new_shape[i] {
                break;
            }
            idx[i] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_rank_follows_keras() {
        assert_eq!(same_rank(&[4, 1], &[4]), (vec![4, 1], vec![4, 1]));
        assert_eq!(same_rank(&[4, 3, 1], &[4, 3]), (vec![4, 3], vec![4, 3]));
        assert_eq!(same_rank(&[4], &[4, 1]), (vec![4, 1], vec![4, 1]));
    }

    #[test]
    fn group_map_reduces_axes() {
        let (m, g) = group_map(&[2, 3], &[0]);
        assert_eq!((m, g), (vec![0, 1, 2, 0, 1, 2], 3));
        let (m, g) = group_map(&[2, 3], &[1]);
        assert_eq!((m, g), (vec![0, 0, 0, 1, 1, 1], 2));
    }

    #[test]
    fn permute_transposes() {
        assert_eq!(permute(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], &[1, 0]), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
