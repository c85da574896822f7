//! Any shapes and parameters, including zero-sized and mismatched ones, give a
//! value or an `Error`, never a panic; and whatever succeeds has the element
//! count its shape says.

use proptest::prelude::*;
use strata_tensor::{
    Conv2dParams, Padding, Padding1d, PoolParams, Tape, Tensor, avg_pool2d, concat, conv1d, conv2d, depthwise_conv2d,
    max_pool2d, stack,
};

fn t(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| (i % 5) as f32 - 2.0).collect()).unwrap()
}

fn ok(r: strata_tensor::Result<Tensor>) {
    if let Ok(t) = r {
        assert_eq!(t.len(), t.shape().iter().product::<usize>());
    }
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4, 0..5)
}

/// Mostly rank 4 (so convolutions get past the rank check), sometimes anything.
fn shape4() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![3 => prop::collection::vec(0usize..5, 4..=4), 1 => shape()]
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        Just(Padding::Valid),
        Just(Padding::Same),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3).prop_map(|(a, b, c, d)| Padding::Explicit([(a, b), (c, d)])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn shape_ops(a in shape(), b in shape(), axis in -5isize..5, perm in prop::collection::vec(0usize..5, 0..5),
                 ranges in prop::collection::vec((0usize..4, 0usize..4), 0..5)) {
        let (x, y) = (t(&a), t(&b));
        ok(x.add(&y));
        ok(x.matmul(&y));
        ok(x.matmul_nt(&y));
        ok(x.sum(Some(&[axis]), true));
        ok(x.max(Some(&[axis, 0]), false));
        ok(x.mean(None, false));
        ok(x.softmax(axis));
        ok(x.log_softmax(axis));
        ok(x.logsumexp(axis, false));
        ok(x.permute(&perm));
        ok(x.reshape(&b));
        ok(x.slice(&ranges));
        ok(x.pad(&ranges, 1.0));
        ok(x.broadcast_to(&b));
        ok(x.sum_to(&b));
        ok(x.unsqueeze(axis));
        ok(x.argmax(axis));
        ok(x.take(&y, axis));
        ok(concat(&[&x, &y], axis));
        ok(stack(&[&x, &y], axis));
        ok(x.transpose());
    }

    #[test]
    fn window_ops(xs in shape4(), ks in shape4(), kernel_hw in (1usize..4, 1usize..4), fit in any::<bool>(),
                  om in 0usize..3, s in (1usize..3, 1usize..3), d in (1usize..3, 1usize..3), pad in padding(),
                  groups in 1usize..3, zero in 0usize..10) {
        // Sometimes one parameter is zero (must be an error, not a panic).
        let z = |i: usize, v: usize| if zero == i { 0 } else { v };
        let (kernel_hw, s, d, groups) = ((z(0, kernel_hw.0), kernel_hw.1), (z(1, s.0), s.1), (d.0, z(2, d.1)), z(3, groups));
        // Half the cases get a kernel that matches the input's channels, so the kernels themselves run.
        let ks = if fit && xs.len() == 4 {
            let g = groups.max(1);
            vec![kernel_hw.0, kernel_hw.1, xs[3] / g, om * g]
        } else {
            ks
        };
        let (x, k) = (t(&xs), t(&ks));
        let p = Conv2dParams { strides: [s.0, s.1], dilation: [d.0, d.1], padding: pad, groups };
        ok(conv2d(&x, &k, &p));
        ok(depthwise_conv2d(&x, &k, [s.0, s.1], [d.0, d.1], pad));
        ok(conv1d(&x, &k, s.0, d.0, Padding1d::Causal, groups));
        let pp = PoolParams { pool: [d.0, d.1 + 1], strides: [s.0, s.1], padding: pad };
        ok(max_pool2d(&x, &pp));
        ok(avg_pool2d(&x, &pp));
        // And through the tape, including backward.
        let tape = Tape::new();
        let (xv, kv) = (tape.watch(&x), tape.watch(&k));
        if let Ok(y) = xv.conv2d(&kv, &p) {
            let g = tape.backward(&y).unwrap();
            prop_assert_eq!(g.get(&kv).map(|g| g.shape().to_vec()), Some(ks.clone()));
            prop_assert_eq!(g.get(&xv).map(|g| g.shape().to_vec()), Some(xs.clone()));
        }
        if let Ok(y) = xv.depthwise_conv2d(&kv, [s.0, s.1], [d.0, d.1], pad) {
            prop_assert!(tape.backward(&y).is_ok());
        }
        if let Ok(y) = xv.max_pool2d(&pp) {
            prop_assert!(tape.backward(&y).is_ok());
        }
        if let Ok(y) = xv.avg_pool2d(&pp) {
            prop_assert!(tape.backward(&y).is_ok());
        }
    }
}
