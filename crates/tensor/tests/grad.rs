//! Every differentiable op's gradient against central finite differences.
//!
//! The loss is `sum(op(inputs) * w)` with a fixed random `w`, accumulated in
//! f64. Tolerance tiers:
//! - `POLY`: ops that are polynomial of degree <= 2 in each input element
//!   (add, mul, matmul, conv, reshapes, sums, average pooling): central
//!   differences are exact up to rounding, so a large step and tight tolerance.
//! - `SMOOTH`: transcendental ops; step 1e-2, tolerance covers the O(step^2)
//!   truncation error.
//! - `PIECEWISE`: relu/abs/max/min/max-pooling; inputs are distinct multiples
//!   of 0.1 offset from zero, and the step is smaller than half the gap, so
//!   no kink is crossed and differences are exact up to rounding.

#![allow(clippy::cloned_ref_to_slice_refs)]

use proptest::prelude::*;
use strata_tensor::{
    BinaryOp, Conv2dParams, ConvParams, Padding, Padding1d, PaddingNd, PoolNdParams, PoolParams, Result, Tape, Tensor,
    UnaryOp, binary, concat, select, stack,
};

#[derive(Clone, Copy, Debug)]
struct Tier {
    eps: f32,
    rtol: f64,
    atol: f64,
}

const POLY: Tier = Tier { eps: 0.25, rtol: 1e-4, atol: 3e-4 };
const SMOOTH: Tier = Tier { eps: 1e-2, rtol: 1e-2, atol: 2e-3 };
const PIECEWISE: Tier = Tier { eps: 1e-2, rtol: 1e-3, atol: 3e-4 };

/// Deterministic values in `[lo, hi)` from a seed (splitmix64).
fn uniform(seed: u64, shape: &[usize], lo: f32, hi: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed;
    let data = (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            lo + (hi - lo) * ((z >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect();
    Tensor::from_vec(shape, data).unwrap()
}

/// Distinct values `k * 0.1 + 0.03` in shuffled order: no ties, no zeros, gaps of 0.1.
fn distinct(seed: u64, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let keys = uniform(seed, &[n], 0.0, 1.0);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| keys.as_slice()[a].total_cmp(&keys.as_slice()[b]));
    let mut data = vec![0f32; n];
    for (rank, &i) in order.iter().enumerate() {
        data[i] = (rank as f32 - (n / 2) as f32) * 0.1 + 0.03;
    }
    Tensor::from_vec(shape, data).unwrap()
}

type Op = dyn Fn(&[Tensor]) -> Result<Tensor>;

/// `sum(f(inputs) * w)` in f64 on untracked inputs (no tape).
fn loss_value(f: &Op, inputs: &[Tensor], w: &Tensor) -> f64 {
    let y = f(inputs).unwrap();
    assert!(!y.is_tracked());
    y.as_slice().iter().zip(w.as_slice()).map(|(&a, &b)| a as f64 * b as f64).sum()
}

fn check(name: &str, f: &Op, inputs: &[Tensor], tier: Tier) {
    let tape = Tape::new();
    let vars: Vec<Tensor> = inputs.iter().map(|t| tape.watch(t)).collect();
    let y = f(&vars).unwrap();
    assert!(y.is_tracked(), "{name}: output not tracked");
    let w = uniform(0xabc, y.shape(), -1.0, 1.0);
    let loss = y.mul(&w).unwrap().sum(None, false).unwrap();
    let grads = tape.backward(&loss).unwrap();
    for (i, (v, x)) in vars.iter().zip(inputs).enumerate() {
        let g = grads.get(v).unwrap_or_else(|| panic!("{name}: no gradient for input {i}"));
        assert_eq!(g.shape(), x.shape(), "{name}: gradient shape of input {i}");
        let n = x.len();
        let step = (n / 48).max(1);
        for j in (0..n).step_by(step) {
            let mut plus = x.to_vec();
            let mut minus = x.to_vec();
            plus[j] += tier.eps;
            minus[j] -= tier.eps;
            let h = plus[j] as f64 - minus[j] as f64;
            let mut ins_p = inputs.to_vec();
            ins_p[i] = Tensor::from_vec(x.shape(), plus).unwrap();
            let mut ins_m = inputs.to_vec();
            ins_m[i] = Tensor::from_vec(x.shape(), minus).unwrap();
            let numeric = (loss_value(f, &ins_p, &w) - loss_value(f, &ins_m, &w)) / h;
            let analytic = g.as_slice()[j] as f64;
            let tol = tier.atol + tier.rtol * numeric.abs().max(analytic.abs());
            assert!(
                (numeric - analytic).abs() <= tol,
                "{name}: input {i} element {j}: analytic {analytic} vs numeric {numeric} (tol {tol}, {tier:?})"
            );
        }
    }
}

fn shape_strategy(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..4, 0..=max_rank)
}

/// A shape `b` that broadcasts with `a`: a suffix of `a` with some dims set to 1, plus maybe extra leading dims.
fn broadcast_partner(a: &[usize], keep: usize, ones_mask: u8, extra: Vec<usize>) -> Vec<usize> {
    let keep = keep.min(a.len());
    let mut b: Vec<usize> =
        a[a.len() - keep..].iter().enumerate().map(|(i, &d)| if ones_mask & (1 << i) != 0 { 1 } else { d }).collect();
    if keep == a.len() {
        let mut e = extra;
        e.extend(b);
        b = e;
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn binary_ops(a_shape in shape_strategy(3), keep in 0usize..4, mask in any::<u8>(),
                  extra in prop::collection::vec(1usize..3, 0..2), seed in any::<u64>(), swap in any::<bool>()) {
        let b_shape = broadcast_partner(&a_shape, keep, mask, extra);
        let (sa, sb) = if swap { (b_shape, a_shape) } else { (a_shape, b_shape) };
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul] {
            let f = move |v: &[Tensor]| binary(op, &v[0], &v[1]);
            check(op.name(), &f, &[uniform(seed, &sa, -1.0, 1.0), uniform(seed ^ 1, &sb, -1.0, 1.0)], POLY);
        }
        let f = |v: &[Tensor]| v[0].div(&v[1]);
        check("div", &f, &[uniform(seed, &sa, -1.0, 1.0), uniform(seed ^ 1, &sb, 0.5, 2.0)], SMOOTH);
        let f = |v: &[Tensor]| v[0].pow(&v[1]);
        check("pow", &f, &[uniform(seed, &sa, 0.5, 2.0), uniform(seed ^ 1, &sb, -1.5, 1.5)], SMOOTH);
        // maximum/minimum: draw both operands from one distinct set so no pair ties.
        let na: usize = sa.iter().product();
        let nb: usize = sb.iter().product();
        let all = distinct(seed, &[na + nb]);
        let a = Tensor::from_vec(&sa, all.as_slice()[..na].to_vec()).unwrap();
        let b = Tensor::from_vec(&sb, all.as_slice()[na..].to_vec()).unwrap();
        for op in [BinaryOp::Max, BinaryOp::Min] {
            let f = move |v: &[Tensor]| binary(op, &v[0], &v[1]);
            check(op.name(), &f, &[a.clone(), b.clone()], PIECEWISE);
        }
        // where(a > b, a * 2, b): the condition is recomputed from constants of the unperturbed inputs.
        let cond = a.greater(&b).unwrap();
        let f = move |v: &[Tensor]| select(&cond, &v[0].scale(2.0), &v[1]);
        check("select", &f, &[a.clone(), b.clone()], POLY);
    }

    #[test]
    fn unary_ops(shape in shape_strategy(3), seed in any::<u64>()) {
        let x = uniform(seed, &shape, -1.5, 1.5);
        let pos = uniform(seed, &shape, 0.5, 2.0);
        let d = distinct(seed, &shape);
        for (op, input, tier) in [
            (UnaryOp::Neg, &x, POLY), (UnaryOp::Square, &x, POLY), (UnaryOp::Scale(-1.5), &x, POLY),
            (UnaryOp::Shift(0.5), &x, POLY),
            (UnaryOp::Exp, &x, SMOOTH), (UnaryOp::Tanh, &x, SMOOTH), (UnaryOp::Sigmoid, &x, SMOOTH),
            (UnaryOp::Sin, &x, SMOOTH), (UnaryOp::Cos, &x, SMOOTH), (UnaryOp::Softplus, &x, SMOOTH),
            (UnaryOp::Expm1, &x, SMOOTH), (UnaryOp::Log, &pos, SMOOTH), (UnaryOp::Sqrt, &pos, SMOOTH),
            (UnaryOp::Rsqrt, &pos, SMOOTH), (UnaryOp::Recip, &pos, SMOOTH), (UnaryOp::Log1p, &pos, SMOOTH),
            (UnaryOp::Powf(1.7), &pos, SMOOTH),
            (UnaryOp::Relu, &d, PIECEWISE), (UnaryOp::Abs, &d, PIECEWISE), (UnaryOp::LeakyRelu(0.2), &d, PIECEWISE),
            (UnaryOp::Elu(1.0), &d, SMOOTH), (UnaryOp::Clip(-0.25, 0.35), &d, PIECEWISE),
        ] {
            let f = move |v: &[Tensor]| Ok(v[0].map(op));
            check(&format!("{op:?}"), &f, &[input.clone()], tier);
        }
    }

    #[test]
    fn reductions_and_softmax(shape in prop::collection::vec(1usize..4, 1..4), axis_pick in any::<u8>(),
                              keepdims in any::<bool>(), seed in any::<u64>()) {
        let rank = shape.len();
        let axis = (axis_pick as usize % rank) as isize;
        let axes: Vec<isize> = (0..rank as isize).filter(|a| axis_pick & (1 << (4 + a)) != 0).collect();
        let x = uniform(seed, &shape, -1.0, 1.0);
        let ax = axes.clone();
        let f = move |v: &[Tensor]| v[0].sum(Some(&ax), keepdims);
        check("sum", &f, &[x.clone()], POLY);
        let ax = axes.clone();
        let f = move |v: &[Tensor]| v[0].mean(Some(&ax), keepdims);
        check("mean", &f, &[x.clone()], POLY);
        let f = move |v: &[Tensor]| v[0].max(None, keepdims);
        check("max all", &f, &[distinct(seed, &shape)], PIECEWISE);
        let f = move |v: &[Tensor]| v[0].max(Some(&[axis]), keepdims);
        check("max axis", &f, &[distinct(seed, &shape)], PIECEWISE);
        let f = move |v: &[Tensor]| v[0].softmax(axis);
        check("softmax", &f, &[x.scale(2.0)], SMOOTH);
        let f = move |v: &[Tensor]| v[0].log_softmax(axis);
        check("log_softmax", &f, &[x.scale(2.0)], SMOOTH);
    }

    #[test]
    fn matmul(m in 1usize..5, k in 1usize..5, n in 1usize..5, batch in prop::collection::vec(1usize..3, 0..3),
              b_batched in any::<bool>(), seed in any::<u64>()) {
        let mut sa = batch.clone();
        sa.extend([m, k]);
        let mut sb = if b_batched { batch.iter().map(|&d| if d == 2 && seed % 2 == 0 { 1 } else { d }).collect() } else { Vec::new() };
        sb.extend([k, n]);
        let f = |v: &[Tensor]| v[0].matmul(&v[1]);
        check("matmul", &f, &[uniform(seed, &sa, -1.0, 1.0), uniform(seed ^ 7, &sb, -1.0, 1.0)], POLY);
    }

    #[test]
    fn layout_ops(shape in prop::collection::vec(1usize..4, 1..4), seed in any::<u64>(), pick in any::<u32>()) {
        let rank = shape.len();
        let x = uniform(seed, &shape, -1.0, 1.0);
        let total: usize = shape.iter().product();
        let f = move |v: &[Tensor]| v[0].reshape(&[total]);
        check("reshape", &f, &[x.clone()], POLY);
        let mut perm: Vec<usize> = (0..rank).collect();
        perm.rotate_left(pick as usize % rank);
        let p = perm.clone();
        let f = move |v: &[Tensor]| v[0].permute(&p);
        check("permute", &f, &[x.clone()], POLY);
        let ranges: Vec<(usize, usize)> = shape.iter().enumerate().map(|(i, &d)| {
            let s = (pick as usize >> i) % d;
            (s, d)
        }).collect();
        let r = ranges.clone();
        let f = move |v: &[Tensor]| v[0].slice(&r);
        check("slice", &f, &[x.clone()], POLY);
        let pads: Vec<(usize, usize)> = (0..rank).map(|i| ((pick as usize >> i) % 2, (pick as usize >> (i + 3)) % 3)).collect();
        let f = move |v: &[Tensor]| v[0].pad(&pads, 0.5);
        check("pad", &f, &[x.clone()], POLY);
        let axis = (pick % rank as u32) as usize;
        let mut other_shape = shape.clone();
        other_shape[axis] = 1 + (pick as usize >> 8) % 3;
        let f = move |v: &[Tensor]| concat(&[&v[0], &v[1]], axis as isize);
        check("concat", &f, &[x.clone(), uniform(seed ^ 3, &other_shape, -1.0, 1.0)], POLY);
        let f = move |v: &[Tensor]| stack(&[&v[0], &v[1]], -1);
        check("stack", &f, &[x.clone(), uniform(seed ^ 5, &shape, -1.0, 1.0)], POLY);
        let ids = Tensor::from_vec(&[2, 2], vec![0.0, (shape[0] - 1) as f32, 0.0, (pick as usize % shape[0]) as f32]).unwrap();
        let f = move |v: &[Tensor]| v[0].take(&ids, 0);
        check("take", &f, &[x.clone()], POLY);
        let mut big = vec![2];
        big.extend(&shape);
        let f = move |v: &[Tensor]| v[0].broadcast_to(&big);
        check("broadcast_to", &f, &[x.clone()], POLY);
        if rank >= 2 {
            let f = |v: &[Tensor]| v[0].transpose();
            check("transpose", &f, &[x.clone()], POLY);
        }
    }

    #[test]
    fn conv2d(h in 2usize..6, w in 2usize..6, kh in 1usize..4, kw in 1usize..4, s in 1usize..3, d in 1usize..3,
              same in any::<bool>(), groups in 1usize..3, seed in any::<u64>()) {
        let (c, o) = (2 * groups, 2 * groups);
        let padding = if same { Padding::Same } else { Padding::Explicit([(1, 0), (0, 2)]) };
        let p = Conv2dParams::default().with_strides([s, 1]).with_dilation([1, d]).with_padding(padding).with_groups(groups);
        let x = uniform(seed, &[2, h, w, c], -1.0, 1.0);
        let k = uniform(seed ^ 9, &[kh, kw, c / groups, o], -1.0, 1.0);
        if strata_tensor::conv2d(&x, &k, &p).is_ok() {
            let f = move |v: &[Tensor]| v[0].conv2d(&v[1], &p);
            check("conv2d", &f, &[x, k], POLY);
        }
    }

    #[test]
    fn conv1d_depthwise_and_pooling(l in 3usize..7, k in 1usize..4, seed in any::<u64>(), same in any::<bool>()) {
        let x = uniform(seed, &[2, l, 3], -1.0, 1.0);
        let kern = uniform(seed ^ 1, &[k, 3, 2], -1.0, 1.0);
        for padding in [Padding1d::Causal, Padding1d::Same] {
            let f = move |v: &[Tensor]| v[0].conv1d(&v[1], 1, 2, padding, 1);
            check("conv1d", &f, &[x.clone(), kern.clone()], POLY);
        }
        let padding = if same { Padding::Same } else { Padding::Valid };
        let img = uniform(seed, &[2, l, 4, 3], -1.0, 1.0);
        for (mult, strides, dilation) in [(2, [1, 2], [1, 1]), (1, [1, 1], [2, 1])] {
            let dk = uniform(seed ^ 2, &[k.min(3), 2, 3, mult], -1.0, 1.0);
            if strata_tensor::depthwise_conv2d(&img, &dk, strides, dilation, padding).is_ok() {
                let f = move |v: &[Tensor]| v[0].depthwise_conv2d(&v[1], strides, dilation, padding);
                check("depthwise_conv2d", &f, &[img.clone(), dk], POLY);
            }
        }
        let p = PoolParams::new([2, 2]).with_strides([1, 2]).with_padding(padding);
        let f = move |v: &[Tensor]| v[0].avg_pool2d(&p);
        check("avg_pool2d", &f, &[img], POLY);
        let f = move |v: &[Tensor]| v[0].max_pool2d(&p);
        check("max_pool2d", &f, &[distinct(seed, &[2, l, 4, 3])], PIECEWISE);
    }

    #[test]
    fn pooling_1d_and_3d(l in 2usize..6, k in 1usize..4, s in 1usize..3, seed in any::<u64>(), same in any::<bool>()) {
        for shape in [vec![2, l, 3], vec![1, l, 3, 2, 2]] {
            let nd = shape.len() - 2;
            let mut pool = vec![2; nd];
            pool[0] = k;
            let mut strides = vec![1; nd];
            strides[0] = s;
            let p = PoolNdParams::new(&pool).with_strides(&strides).with_same(same);
            let x = uniform(seed, &shape, -1.0, 1.0);
            if strata_tensor::avg_pool(&x, &p).is_err() {
                continue;
            }
            let q = p.clone();
            let f = move |v: &[Tensor]| strata_tensor::avg_pool(&v[0], &q);
            check("avg_pool", &f, &[x], POLY);
            let f = move |v: &[Tensor]| strata_tensor::max_pool(&v[0], &p);
            check("max_pool", &f, &[distinct(seed, &shape)], PIECEWISE);
        }
    }

    #[test]
    fn matmul_transposed_variants(m in 1usize..4, k in 1usize..4, n in 1usize..4, batched in any::<bool>(),
                                  seed in any::<u64>()) {
        let lead: Vec<usize> = if batched { vec![2] } else { Vec::new() };
        let shape = |a: usize, b: usize| { let mut s = lead.clone(); s.extend([a, b]); s };
        let f = |v: &[Tensor]| v[0].matmul_nt(&v[1]);
        check("matmul_nt", &f, &[uniform(seed, &shape(m, k), -1.0, 1.0), uniform(seed ^ 1, &shape(n, k), -1.0, 1.0)], POLY);
        let f = |v: &[Tensor]| v[0].matmul_tn(&v[1]);
        check("matmul_tn", &f, &[uniform(seed, &shape(k, m), -1.0, 1.0), uniform(seed ^ 1, &shape(k, n), -1.0, 1.0)], POLY);
        // Rank-3 times rank-2 (the folded kernel gradient), both orientations.
        let f = |v: &[Tensor]| v[0].matmul_nt(&v[1]);
        check("matmul_nt fold", &f, &[uniform(seed, &[2, m, k], -1.0, 1.0), uniform(seed ^ 2, &[n, k], -1.0, 1.0)], POLY);
    }

    #[test]
    fn conv_nd_1d_2d_3d(l in 3usize..6, k in 1usize..3, s in 1usize..3, d in 1usize..3, same in any::<bool>(),
                        groups in 1usize..3, seed in any::<u64>()) {
        let padding = if same { PaddingNd::Same } else { PaddingNd::Valid };
        let (c, o) = (2 * groups, 2 * groups);
        for rank in 1..=3usize {
            let mut xs = vec![2];
            xs.extend((0..rank).map(|i| l - (i % 2)));
            xs.push(c);
            let mut ks: Vec<usize> = (0..rank).map(|i| if i == 0 { k } else { 2 }).collect();
            ks.extend([c / groups, o]);
            let p = ConvParams::new(rank).with_strides(&vec![s; rank]).with_dilation(&vec![d; rank])
                .with_padding(padding.clone()).with_groups(groups);
            let x = uniform(seed, &xs, -1.0, 1.0);
            let kern = uniform(seed ^ 9, &ks, -1.0, 1.0);
            if strata_tensor::conv_nd(&x, &kern, &p).is_ok() {
                let pc = p.clone();
                let f = move |v: &[Tensor]| v[0].conv_nd(&v[1], &pc);
                check(&format!("conv_nd {rank}d"), &f, &[x, kern], POLY);
            }
            // Transposed: kernel [k..., filters, cin], groups 1.
            let pt = ConvParams { groups: 1, ..p.clone() };
            let mut ts = vec![2];
            ts.extend((0..rank).map(|i| 2 + (i % 2)));
            ts.push(3);
            let mut tk: Vec<usize> = (0..rank).map(|i| if i == 0 { k } else { 2 }).collect();
            tk.extend([2, 3]);
            let x = uniform(seed ^ 4, &ts, -1.0, 1.0);
            let kern = uniform(seed ^ 5, &tk, -1.0, 1.0);
            for op in [None, Some(vec![s - 1; rank])] {
                if strata_tensor::conv_transpose_nd(&x, &kern, &pt, op.as_deref()).is_ok() {
                    let pc = pt.clone();
                    let f = move |v: &[Tensor]| v[0].conv_transpose_nd(&v[1], &pc, op.as_deref());
                    check(&format!("conv_transpose_nd {rank}d"), &f, &[x.clone(), kern.clone()], POLY);
                }
            }
        }
    }

    #[test]
    fn patches_sum_to_and_composed_ops(l in 3usize..6, k in 1usize..3, same in any::<bool>(), seed in any::<u64>()) {
        let padding = if same { PaddingNd::Same } else { PaddingNd::Valid };
        let p = ConvParams::new(2).with_padding(padding);
        let x = uniform(seed, &[2, l, 4, 2], -1.0, 1.0);
        let f = move |v: &[Tensor]| strata_tensor::extract_patches(&v[0], &[k, 2], &p);
        check("extract_patches", &f, &[x.clone()], POLY);
        let f = |v: &[Tensor]| v[0].sum_to(&[1, 4, 1]);
        check("sum_to", &f, &[uniform(seed, &[2, 3, 4, 2], -1.0, 1.0)], POLY);
        // Ops defined by composition of recorded ops.
        let f = |v: &[Tensor]| v[0].logsumexp(-1, false);
        check("logsumexp", &f, &[x.clone()], SMOOTH);
        let f = |v: &[Tensor]| v[0].min(Some(&[1]), true);
        check("min", &f, &[distinct(seed, &[2, l, 3])], PIECEWISE);
        let f = |v: &[Tensor]| v[0].unsqueeze(1)?.reshape_infer(&[2, -1]);
        check("unsqueeze+reshape_infer", &f, &[x.clone()], POLY);
        let f = |v: &[Tensor]| v[0].slice_axis(1, 1, 3);
        check("slice_axis", &f, &[x], POLY);
    }
}
