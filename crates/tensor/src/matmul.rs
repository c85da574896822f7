//! Matrix products on the `gemm` crate.
//!
//! `gemm` picks its micro-kernel at run time (AVX-512 when the CPU has it,
//! AVX2/FMA otherwise), so one binary runs everywhere. [`gemm_f32`] is the one
//! place that calls it: it checks every strided extent against the slice
//! lengths before the `unsafe` call, so callers cannot cause out-of-bounds
//! access. Batched products parallelize over the batch when there are enough
//! matrices, otherwise inside each product.

use rayon::prelude::*;

use crate::shape::{broadcast_shapes, broadcast_strides};
use crate::{Error, Result, Tensor};

/// A read-only strided matrix inside a slice.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

/// Products with fewer multiply-adds than this run on one thread.
const PAR_FLOPS: usize = 1 << 18;

fn extent_ok(len: usize, offset: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1).checked_mul(rs).and_then(|a| (cols - 1).checked_mul(cs).and_then(|b| a.checked_add(b)));
    matches!(last.and_then(|l| l.checked_add(offset)), Some(end) if end < len)
}

/// `dst[m x n] (+)= lhs[m x k] * rhs[k x n]` with arbitrary non-negative strides.
/// `dst` is `(slice, offset, row stride, col stride)`. With `accumulate` the product is added to `dst`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    dst: (&mut [f32], usize, usize, usize),
    accumulate: bool,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    parallel: bool,
) -> Result<()> {
    let (dst, doff, drs, dcs) = dst;
    let ok = extent_ok(dst.len(), doff, m, n, drs, dcs)
        && (k == 0 || extent_ok(lhs.data.len(), lhs.offset, m, k, lhs.rs, lhs.cs))
        && (k == 0 || extent_ok(rhs.data.len(), rhs.offset, k, n, rhs.rs, rhs.cs));
    if !ok {
        return Err(Error::Internal { op: "gemm", what: "strided extent outside its buffer" });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[doff + i * drs + j * dcs] = 0.0;
                }
            }
        }
        return Ok(());
    }
    let par = if parallel && m.saturating_mul(n).saturating_mul(k) >= PAR_FLOPS {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the extents of dst, lhs and rhs were checked above to lie inside their slices; dst is
    // exclusively borrowed and cannot alias the shared lhs/rhs borrows. Strides fit isize because the
    // checked extents fit in a slice length (<= isize::MAX).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(doff),
            dcs as isize,
            drs as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

/// Batched matrix product with optional transposes of the last two axes:
/// `op(a)[..., m, k] @ op(b)[..., k, n]`, batch axes broadcast (numpy `matmul`).
pub(crate) fn matmul_ex(a: &Tensor, ta: bool, b: &Tensor, tb: bool) -> Result<Tensor> {
    let out = matmul_kernel(a, ta, b, tb)?;
    crate::tape::record("matmul", &[a, b], out, || crate::tape::Op::MatMul { ta, tb })
}

fn matmul_kernel(a: &Tensor, ta: bool, b: &Tensor, tb: bool) -> Result<Tensor> {
    let (ra, rb) = (a.rank(), b.rank());
    if ra < 2 {
        return Err(Error::Rank { op: "matmul", expected: ">= 2", layout: "[..., m, k]", shape: a.shape().to_vec() });
    }
    if rb < 2 {
        return Err(Error::Rank { op: "matmul", expected: ">= 2", layout: "[..., k, n]", shape: b.shape().to_vec() });
    }
    let (a0, a1) = (a.shape()[ra - 2], a.shape()[ra - 1]);
    let (b0, b1) = (b.shape()[rb - 2], b.shape()[rb - 1]);
    let (m, ka, a_rs, a_cs) = if ta { (a1, a0, 1, a1) } else { (a0, a1, a1, 1) };
    let (kb, n, b_rs, b_cs) = if tb { (b1, b0, 1, b1) } else { (b0, b1, b1, 1) };
    if ka != kb {
        return Err(Error::MatmulInner { lhs: a.shape().to_vec(), rhs: b.shape().to_vec(), lhs_k: ka, rhs_k: kb });
    }
    let k = ka;
    let batch = broadcast_shapes("matmul", &a.shape()[..ra - 2], &b.shape()[..rb - 2])?;
    let nbatch: usize = batch.iter().product();
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    let total = crate::shape::numel(&out_shape)?;
    let mut out = vec![0f32; total];

    // Fast path: b is one matrix and a's batch folds into its rows (Dense on [..., features]).
    if rb == 2 && !ta {
        let rows = a.len() / k.max(1);
        let rows = if k == 0 { nbatch * m } else { rows };
        gemm_f32(
            rows,
            n,
            k,
            (&mut out, 0, n, 1),
            false,
            MatRef { data: a.as_slice(), offset: 0, rs: a_rs, cs: a_cs },
            MatRef { data: b.as_slice(), offset: 0, rs: b_rs, cs: b_cs },
            true,
        )?;
        return Ok(Tensor::from_parts(out_shape, out));
    }

    let sa = broadcast_strides(&a.shape()[..ra - 2], &batch);
    let sb = broadcast_strides(&b.shape()[..rb - 2], &batch);
    let (mat_a, mat_b) = (a0 * a1, b0 * b1);
    let offsets = |bi: usize| {
        let (mut oa, mut ob, mut rem) = (0usize, 0usize, bi);
        for d in (0..batch.len()).rev() {
            let i = rem % batch[d];
            rem /= batch[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
        (oa * mat_a, ob * mat_b)
    };
    let one = |bi: usize, dst: &mut [f32], parallel: bool| {
        let (oa, ob) = offsets(bi);
        gemm_f32(
            m,
            n,
            k,
            (dst, 0, n, 1),
            false,
            MatRef { data: a.as_slice(), offset: oa, rs: a_rs, cs: a_cs },
            MatRef { data: b.as_slice(), offset: ob, rs: b_rs, cs: b_cs },
            parallel,
        )
    };
    let mn = m * n;
    if mn == 0 {
        return Ok(Tensor::from_parts(out_shape, out));
    }
    if nbatch >= 2 * rayon::current_num_threads() {
        out.par_chunks_mut(mn).enumerate().try_for_each(|(bi, dst)| one(bi, dst, false))?;
    } else {
        for (bi, dst) in out.chunks_mut(mn).enumerate() {
            one(bi, dst, true)?;
        }
    }
    Ok(Tensor::from_parts(out_shape, out))
}

impl Tensor {
    /// Matrix product `self @ other` over the last two axes; leading (batch) axes broadcast.
    /// Both operands need rank >= 2 (reshape vectors to `[1, k]` / `[k, 1]`).
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        matmul_ex(self, false, other, false)
    }

    /// `self @ other^T` (other's last two axes swapped) without materializing the transpose.
    pub fn matmul_nt(&self, other: &Tensor) -> Result<Tensor> {
        matmul_ex(self, false, other, true)
    }

    /// `self^T @ other` without materializing the transpose.
    pub fn matmul_tn(&self, other: &Tensor) -> Result<Tensor> {
        matmul_ex(self, true, other, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &Tensor, b: &Tensor) -> Vec<f32> {
        let (m, k) = (a.shape()[0], a.shape()[1]);
        let n = b.shape()[1];
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a.as_slice()[i * k + p] * b.as_slice()[p * n + j]).sum();
            }
        }
        out
    }

    fn seq(shape: &[usize], scale: f32) -> Tensor {
        let n = shape.iter().product::<usize>();
        Tensor::from_vec(shape, (0..n).map(|x| ((x * 7 % 11) as f32 - 5.0) * scale).collect()).unwrap()
    }

    #[test]
    fn matches_naive_and_transposes() {
        let a = seq(&[5, 7], 0.5);
        let b = seq(&[7, 3], 0.25);
        let c = a.matmul(&b).unwrap();
        assert_eq!(c.shape(), &[5, 3]);
        assert!(c.all_close(&Tensor::from_vec(&[5, 3], naive(&a, &b)).unwrap(), 1e-6, 1e-6));
        let bt = b.transpose().unwrap();
        assert!(a.matmul_nt(&bt).unwrap().all_close(&c, 1e-6, 1e-6));
        let at = a.transpose().unwrap();
        assert!(at.matmul_tn(&b).unwrap().all_close(&c, 1e-6, 1e-6));
    }

    #[test]
    fn batched_broadcasts_batch_axes() {
        let a = seq(&[2, 1, 4, 3], 1.0);
        let b = seq(&[3, 3, 2], 1.0);
        let c = a.matmul(&b).unwrap();
        assert_eq!(c.shape(), &[2, 3, 4, 2]);
        for i in 0..2 {
            for j in 0..3 {
                let ai = Tensor::from_vec(&[4, 3], a.as_slice()[i * 12..(i + 1) * 12].to_vec()).unwrap();
                let bj = Tensor::from_vec(&[3, 2], b.as_slice()[j * 6..(j + 1) * 6].to_vec()).unwrap();
                let off = (i * 3 + j) * 8;
                assert_eq!(&c.as_slice()[off..off + 8], naive(&ai, &bj).as_slice());
            }
        }
        // Folded fast path: [2, 4, 3] @ [3, 2].
        let d = seq(&[2, 4, 3], 1.0).matmul(&seq(&[3, 2], 1.0)).unwrap();
        assert_eq!(d.shape(), &[2, 4, 2]);
    }

    #[test]
    fn shape_errors() {
        let e = seq(&[2, 3], 1.0).matmul(&seq(&[4, 2], 1.0)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "matmul: shapes [2, 3] and [4, 2] do not chain: lhs has 3 columns but rhs has 4 rows"
        );
        let e = seq(&[3], 1.0).matmul(&seq(&[3, 2], 1.0)).unwrap_err();
        assert_eq!(e.to_string(), "matmul: expected a tensor of rank >= 2 ([..., m, k]) but got shape [3]");
        let z = seq(&[2, 0], 1.0).matmul(&seq(&[0, 3], 1.0)).unwrap();
        assert_eq!(z.as_slice(), &[0.0; 6]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn batched_transposed_products_match_naive(
            m in 1usize..6, k in 0usize..6, n in 1usize..6, ba in proptest::collection::vec(1usize..3, 0..3),
            b_ones in proptest::bool::ANY, ta in proptest::bool::ANY, tb in proptest::bool::ANY,
        ) {
            let bb: Vec<usize> = if b_ones { ba.iter().map(|_| 1).collect() } else { ba.clone() };
            let mut sa = ba.clone();
            sa.extend(if ta { [k, m] } else { [m, k] });
            let mut sb = bb.clone();
            sb.extend(if tb { [n, k] } else { [k, n] });
            let (a, b) = (seq(&sa, 0.5), seq(&sb, 0.25));
            let got = matmul_ex(&a, ta, &b, tb).unwrap();
            let nb: usize = ba.iter().product();
            let mut want = Vec::new();
            for i in 0..nb {
                let ai = Tensor::from_vec(&sa[sa.len() - 2..], a.as_slice()[i * m * k..(i + 1) * m * k].to_vec()).unwrap();
                let j = if b_ones { 0 } else { i };
                let bj = Tensor::from_vec(&sb[sb.len() - 2..], b.as_slice()[j * k * n..(j + 1) * k * n].to_vec()).unwrap();
                let ai = if ta { ai.transpose().unwrap() } else { ai };
                let bj = if tb { bj.transpose().unwrap() } else { bj };
                want.extend(naive(&ai, &bj));
            }
            let mut shape = ba.clone();
            shape.extend([m, n]);
            proptest::prop_assert!(got.all_close(&Tensor::from_vec(&shape, want).unwrap(), 1e-5, 1e-5));
        }
    }
}
