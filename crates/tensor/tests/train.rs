//! End to end: the tape trains small models with plain SGD. The loss must fall
//! far below its starting value (a broken gradient anywhere on the path stalls it).

use strata_tensor::{Conv2dParams, Padding, PoolParams, Result, Tape, Tensor};

fn init(shape: &[usize], seed: u32, scale: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let data = (0..n as u32).map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 1000.0 - 0.5).collect();
    Tensor::from_vec(shape, data).unwrap().scale(scale)
}

fn sgd(params: &mut [Tensor], grads: &[Tensor], lr: f32) -> Result<()> {
    for (p, g) in params.iter_mut().zip(grads) {
        *p = p.sub(&g.scale(lr))?;
    }
    Ok(())
}

#[test]
fn mlp_learns_xor() -> Result<()> {
    let x = Tensor::from_vec(&[4, 2], vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])?;
    let labels = Tensor::from_vec(&[4, 2], vec![1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0])?;
    let mut params = vec![init(&[2, 16], 1, 2.0), Tensor::zeros(&[16])?, init(&[16, 2], 2, 2.0), Tensor::zeros(&[2])?];
    let mut losses = Vec::new();
    for _ in 0..300 {
        let tape = Tape::new();
        let vars: Vec<_> = params.iter().map(|p| tape.watch(p)).collect();
        let (xv, yv) = (x.clone(), labels.clone());
        let h = xv.matmul(&vars[0])?.add(&vars[1])?.tanh();
        let logits = h.matmul(&vars[2])?.add(&vars[3])?;
        let loss = logits.log_softmax(-1)?.mul(&yv)?.sum(Some(&[-1]), false)?.mean(None, false)?.neg();
        losses.push(loss.item().unwrap());
        let grads = tape.backward(&loss)?;
        let g: Vec<Tensor> = vars.iter().map(|v| grads.get(v).unwrap().clone()).collect();
        sgd(&mut params, &g, 0.5)?;
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.05 * first, "xor loss went from {first} to {last}");
    Ok(())
}

#[test]
fn convnet_fits_a_batch() -> Result<()> {
    // Classify whether the bright square is in the top or bottom half of an 8x8 image.
    let mut images = vec![0f32; 8 * 8 * 8];
    let mut labels = vec![0f32; 8 * 2];
    for i in 0..8 {
        let (top, col) = (i % 2 == 0, i % 6);
        let row = if top { 1 } else { 5 };
        for dy in 0..2 {
            for dx in 0..2 {
                images[i * 64 + (row + dy) * 8 + col + dx] = 1.0;
            }
        }
        labels[i * 2 + usize::from(!top)] = 1.0;
    }
    let x = Tensor::from_vec(&[8, 8, 8, 1], images)?;
    let y = Tensor::from_vec(&[8, 2], labels)?;
    let mut params = vec![init(&[3, 3, 1, 4], 3, 1.0), Tensor::zeros(&[4])?, init(&[4 * 4 * 4, 2], 4, 0.5)];
    let conv = Conv2dParams::default().with_padding(Padding::Same);
    let mut losses = Vec::new();
    for _ in 0..150 {
        let tape = Tape::new();
        let v: Vec<_> = params.iter().map(|p| tape.watch(p)).collect();
        let h = x.conv2d(&v[0], &conv)?.add(&v[1])?.relu();
        let h = h.avg_pool2d(&PoolParams::new([2, 2]))?.reshape(&[8, 64])?;
        let logits = h.matmul(&v[2])?;
        let loss = logits.log_softmax(-1)?.mul(&y)?.sum(None, false)?.scale(-1.0 / 8.0);
        losses.push(loss.item().unwrap());
        let grads = tape.backward(&loss)?;
        let g: Vec<Tensor> = v.iter().map(|p| grads.get(p).unwrap().clone()).collect();
        sgd(&mut params, &g, 0.5)?;
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.1 * first, "convnet loss went from {first} to {last}");
    Ok(())
}
