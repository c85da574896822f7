//! Matrix product throughput (GFLOP/s = 2*m*k*n per iteration): square
//! 256/512/1024 and the 128x784x256 first layer of an MNIST MLP.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use strata_tensor::Tensor;

fn filled(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect()).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    for (m, k, n) in [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (128, 784, 256)] {
        let a = filled(&[m, k]);
        let b = filled(&[k, n]);
        // criterion reports "elements/s"; each element here is one floating-point operation.
        group.throughput(Throughput::Elements(2 * (m * k * n) as u64));
        group.bench_function(format!("{m}x{k}x{n}"), |bench| bench.iter(|| black_box(a.matmul(&b).unwrap())));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
