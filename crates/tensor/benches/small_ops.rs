//! Per-op overhead on small tensors, where a tape check would show: elementwise ops, a reduction and
//! a 3-layer MLP forward (batch 32, 64-128-128-10) on untracked tensors.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use strata_tensor::Tensor;

fn filled(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect()).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("small_ops");
    let a = filled(&[16, 16]);
    let b = filled(&[16]);
    group.bench_function("add_broadcast_16x16", |bench| bench.iter(|| black_box(a.add(&b).unwrap())));
    group.bench_function("relu_16x16", |bench| bench.iter(|| black_box(a.relu())));
    group.bench_function("sum_axis_16x16", |bench| bench.iter(|| black_box(a.sum(Some(&[-1]), false).unwrap())));
    group.bench_function("reshape_16x16", |bench| bench.iter(|| black_box(a.reshape(&[256]).unwrap())));
    let x = filled(&[32, 64]);
    let ws = [filled(&[64, 128]), filled(&[128, 128]), filled(&[128, 10])];
    let bs = [filled(&[128]), filled(&[128]), filled(&[10])];
    group.bench_function("mlp_forward_32x64", |bench| {
        bench.iter(|| {
            let mut h = x.clone();
            for (w, b) in ws.iter().zip(&bs) {
                h = h.matmul(w).unwrap().add(b).unwrap().relu();
            }
            black_box(h.softmax(-1).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
