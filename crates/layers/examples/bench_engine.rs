//! strata side of `bench/engine.sh`: loads `DIR/<model>/model.keras` (written by
//! `tools/oracle/bench_keras.py gen`), checks the batch outputs against Keras's (`io.npz`), then
//! times one-sample latency and batch throughput of `Model::predict`. One JSON object per model.
//!
//! Usage: `bench_engine DIR [REPEATS] [MODEL...]`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;
use strata_layers::Model;
use strata_tensor::Tensor;

/// Median and best seconds per call over `repeats` rounds, each at least `min_s` long.
fn timed(mut f: impl FnMut(), repeats: usize, min_s: f64) -> (f64, f64) {
    f();
    f();
    let mut per = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let (mut n, t0) = (0u32, Instant::now());
        loop {
            f();
            n += 1;
            let el = t0.elapsed().as_secs_f64();
            if el >= min_s {
                per.push(el / f64::from(n));
                break;
            }
        }
    }
    per.sort_by(f64::total_cmp);
    (per[per.len() / 2], per[0])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: bench_engine DIR [REPEATS] [MODEL...]");
        std::process::exit(2);
    };
    let repeats: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let names: Vec<String> = if args.len() > 3 {
        args[3..].to_vec()
    } else {
        ["mlp", "cnn", "mobilenetv2"].iter().map(|s| s.to_string()).collect()
    };
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    for name in names {
        let d = std::path::Path::new(dir).join(&name);
        if !d.join("model.keras").exists() {
            continue;
        }
        let model = match Model::open(d.join("model.keras")) {
            Ok(m) => m,
            Err(e) => {
                let msg = e.to_string().replace('\\', "\\\\").replace('"', "'").replace('\n', " ");
                println!("{{\"model\": \"{name}\", \"tool\": \"strata\", \"error\": \"{msg}\"}}");
                continue;
            }
        };
        let (ins, outs) = common::read_npz(&d.join("io.npz"));
        let x = &ins[0];
        let got = match model.predict(std::slice::from_ref(x)) {
            Ok(g) => g,
            Err(e) => {
                let msg = e.to_string().replace('\\', "\\\\").replace('"', "'").replace('\n', " ");
                println!("{{\"model\": \"{name}\", \"tool\": \"strata\", \"error\": \"predict: {msg}\"}}");
                continue;
            }
        };
        let diff = got[0].as_slice().iter().zip(outs[0].as_slice()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let batch = x.shape()[0];
        let x1: Tensor = x.slice_axis(0, 0, 1).expect("first sample");
        let x1 = [x1];
        let (lat, lat_best) = timed(
            || {
                std::hint::black_box(model.predict(&x1).expect("predict"));
            },
            repeats,
            0.2,
        );
        let xb = [x.clone()];
        let (bt, bt_best) = timed(
            || {
                std::hint::black_box(model.predict(&xb).expect("predict"));
            },
            repeats,
            0.3,
        );
        println!(
            "{{\"model\": \"{name}\", \"tool\": \"strata {}\", \"max_abs_diff\": {diff:e}, \"latency_s\": {lat:e}, \
             \"latency_best_s\": {lat_best:e}, \"batch\": {batch}, \"batch_s\": {bt:e}, \"batch_best_s\": {bt_best:e}, \
             \"samples_per_s\": {:.1}, \"threads\": \"rayon {threads}\"}}",
            env!("CARGO_PKG_VERSION"),
            batch as f64 / bt
        );
    }
}
