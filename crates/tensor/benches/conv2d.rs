//! Convolution throughput on the two layers of the Keras MNIST convnet example, batch 128:
//! 28x28x1 -> 32 (3x3) and 13x13x32 -> 64 (3x3), valid padding; forward and backward.
//! Throughput is in FLOPs (2 * outputs * kh * kw * cin).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use strata_tensor::{Conv2dParams, Tensor, conv2d, conv2d_backward};

fn filled(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect()).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d");
    group.sample_size(20);
    let p = Conv2dParams::default();
    for (name, x_shape, k_shape) in
        [("28x28x1-32", [128, 28, 28, 1], [3, 3, 1, 32]), ("13x13x32-64", [128, 13, 13, 32], [3, 3, 32, 64])]
    {
        let x = filled(&x_shape);
        let k = filled(&k_shape);
        let y = conv2d(&x, &k, &p).unwrap();
        let flops = 2 * y.len() as u64 * (k_shape[0] * k_shape[1] * k_shape[2]) as u64;
        group.throughput(Throughput::Elements(flops));
        group.bench_function(format!("forward/{name}"), |b| b.iter(|| black_box(conv2d(&x, &k, &p).unwrap())));
        group.throughput(Throughput::Elements(2 * flops));
        group.bench_function(format!("backward/{name}"), |b| {
            b.iter(|| black_box(conv2d_backward(&x, &k, &p, &y, true, true).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
