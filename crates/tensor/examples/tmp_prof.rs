use std::time::Instant;
use strata_tensor::*;
fn main() {
    let x = Tensor::full(&[128, 28, 28, 1], 0.3).unwrap();
    for o in [1usize, 8, 32] {
        let k = Tensor::full(&[3, 3, 1, o], 0.2).unwrap();
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..20 {
                std::hint::black_box(conv2d(&x, &k, &Conv2dParams::default()).unwrap());
            }
            println!("conv o={o}: {:?}", t.elapsed() / 20);
        }
    }
    let a = Tensor::full(&[86528, 9], 0.3).unwrap();
    for o in [1usize, 8, 32] {
        let b = Tensor::full(&[9, o], 0.2).unwrap();
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..20 {
                std::hint::black_box(a.matmul(&b).unwrap());
            }
            println!("gemm o={o}: {:?}", t.elapsed() / 20);
        }
    }
}
