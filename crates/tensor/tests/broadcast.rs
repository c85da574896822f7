//! Broadcasting binary ops against a naive numpy-rule reference, and
//! incompatible shapes against the error.

use proptest::prelude::*;
use strata_tensor::{BinaryOp, Error, Tensor, binary};

/// numpy's rule, written out the slow way: multi-index over the output,
/// each input reads index 0 on its size-1 axes and ignores missing leading axes.
fn naive(op: BinaryOp, a: &Tensor, b: &Tensor) -> Option<Tensor> {
    let rank = a.rank().max(b.rank());
    let pad = |s: &[usize]| -> Vec<usize> {
        let mut v = vec![1; rank - s.len()];
        v.extend(s);
        v
    };
    let (pa, pb) = (pad(a.shape()), pad(b.shape()));
    let mut out_shape = Vec::new();
    for (&x, &y) in pa.iter().zip(&pb) {
        if x != y && x != 1 && y != 1 {
            return None;
        }
        out_shape.push(if x == 1 { y } else { x });
    }
    let n: usize = out_shape.iter().product();
    let a2 = a.reshape(&pa).unwrap();
    let b2 = b.reshape(&pb).unwrap();
    let mut data = Vec::with_capacity(n);
    for flat in 0..n {
        let mut idx = vec![0; rank];
        let mut rem = flat;
        for k in (0..rank).rev() {
            idx[k] = rem % out_shape[k];
            rem /= out_shape[k];
        }
        let ia: Vec<usize> = idx.iter().zip(&pa).map(|(&i, &d)| if d == 1 { 0 } else { i }).collect();
        let ib: Vec<usize> = idx.iter().zip(&pb).map(|(&i, &d)| if d == 1 { 0 } else { i }).collect();
        data.push(op.apply(a2.get(&ia).unwrap(), b2.get(&ib).unwrap()));
    }
    Some(Tensor::from_vec(&out_shape, data).unwrap())
}

fn filled(shape: &[usize], seed: u32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(
        shape,
        (0..n).map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 97) as f32 / 16.0 - 3.0).collect(),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn matches_naive_reference(a in prop::collection::vec(0usize..4, 0..5), b in prop::collection::vec(0usize..4, 0..5),
                               seed in any::<u32>()) {
        let (ta, tb) = (filled(&a, seed), filled(&b, seed.rotate_left(7)));
        for op in [
            BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min, BinaryOp::Pow,
            BinaryOp::Greater, BinaryOp::GreaterEqual, BinaryOp::Less, BinaryOp::LessEqual, BinaryOp::Equal,
            BinaryOp::NotEqual,
        ] {
            match (binary(op, &ta, &tb), naive(op, &ta, &tb)) {
                (Ok(got), Some(want)) => {
                    prop_assert_eq!(got.shape(), want.shape());
                    for (g, w) in got.as_slice().iter().zip(want.as_slice()) {
                        prop_assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()), "{:?}: {} vs {}", op, g, w);
                    }
                }
                (Err(Error::Broadcast { lhs, rhs, .. }), None) => {
                    prop_assert_eq!(lhs, a.clone());
                    prop_assert_eq!(rhs, b.clone());
                }
                (got, want) => prop_assert!(false, "{:?} {:?} {:?}: got {:?}, reference {:?}", op, a, b, got, want),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn large_broadcasts_take_the_parallel_path(rows in 1usize..300, seed in any::<u32>()) {
        // > 32k elements so the rayon path runs; compare with the naive reference.
        let a = filled(&[rows, 1, 128], seed);
        let b = filled(&[3, 1], seed ^ 5);
        let got = a.mul(&b).unwrap();
        let want = naive(BinaryOp::Mul, &a, &b).unwrap();
        prop_assert_eq!(got, want);
    }
}

proptest! {
    #[test]
    fn select_broadcasts_all_three(c in prop::collection::vec(1usize..3, 0..3), a in prop::collection::vec(1usize..3, 0..3),
                                   seed in any::<u32>()) {
        let cond = filled(&c, seed).greater(&Tensor::scalar(0.0)).unwrap();
        let (x, y) = (filled(&a, seed ^ 1), filled(&[1], seed ^ 2));
        if let Ok(got) = strata_tensor::select(&cond, &x, &y) {
            // Reference: cond * x + (1 - cond) * y through the (already checked) broadcasting ops.
            let want = cond.mul(&x).unwrap().add(&cond.neg().map(strata_tensor::UnaryOp::Shift(1.0)).mul(&y).unwrap()).unwrap();
            prop_assert_eq!(got, want);
        } else {
            prop_assert!(naive(BinaryOp::Add, &cond, &x).is_none());
        }
    }
}
