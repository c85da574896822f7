//! Criterion benchmarks of `Model::predict` on the benchmark models that `bench/engine.sh`
//! (via `tools/oracle/bench_keras.py gen`) saves in `$STRATA_BENCH_DIR` (default
//! `$STRATA_ORACLE_DIR/bench` or `~/.cache/strata/oracle/bench`): one-sample latency and batch
//! throughput for each model found there. Models that are missing or that this build cannot run
//! are skipped with a note.
//!
//! `cargo bench -p strata-layers --bench engine`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::io::Read;
use std::path::{Path, PathBuf};
use strata_layers::Model;
use strata_tensor::{DType, Tensor};

fn bench_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STRATA_BENCH_DIR") {
        return PathBuf::from(d);
    }
    strata_testkit::oracle_dir().join("bench")
}

/// `in_0` of an `io.npz` (float32, C order), or `None` when it cannot be read.
fn input(path: &Path) -> Option<Tensor> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).ok()?).ok()?;
    let mut buf = Vec::new();
    zip.by_name("in_0.npy").ok()?.read_to_end(&mut buf).ok()?;
    let hlen = usize::from(u16::from_le_bytes([*buf.get(8)?, *buf.get(9)?]));
    let header = std::str::from_utf8(buf.get(10..10 + hlen)?).ok()?;
    if !header.contains("'<f4'") || !header.contains("'fortran_order': False") {
        return None;
    }
    let dims = header.split("'shape': (").nth(1)?.split(')').next()?;
    let shape: Vec<usize> =
        dims.split(',').map(str::trim).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect();
    Tensor::from_le_bytes(DType::F32, &shape, buf.get(10 + hlen..)?).ok()
}

fn engine(c: &mut Criterion) {
    let dir = bench_dir();
    for name in ["mlp", "cnn", "mobilenetv2"] {
        let d = dir.join(name);
        let model = match Model::open(d.join("model.keras")) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("skipping {name}: {} ({e}); run bench/engine.sh to create it", d.display());
                continue;
            }
        };
        let Some(x) = input(&d.join("io.npz")) else {
            eprintln!("skipping {name}: no float32 in_0 in {}", d.join("io.npz").display());
            continue;
        };
        let Ok(x1) = x.slice_axis(0, 0, 1) else { continue };
        let mut g = c.benchmark_group(format!("predict/{name}"));
        g.throughput(Throughput::Elements(1));
        let one = [x1];
        g.bench_function("batch1", |b| b.iter(|| model.predict(&one).expect("predict")));
        let n = x.shape().first().copied().unwrap_or(1);
        g.throughput(Throughput::Elements(n as u64));
        let batch = [x];
        g.bench_function(format!("batch{n}"), |b| b.iter(|| model.predict(&batch).expect("predict")));
        g.finish();
    }
}

criterion_group!(benches, engine);
criterion_main!(benches);
