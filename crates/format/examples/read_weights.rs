//! Opens a model or weights file with strata-format and reads every stored tensor, the way
//! `strata convert` and (later) the engine do; prints the best time of N runs as JSON.
//!
//!     cargo run --release -p strata-format --example read_weights -- FILE [REPEATS]

use std::time::Instant;

use strata_format::model::ModelFile;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: read_weights FILE [REPEATS]")?;
    let repeats: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let mut best = f64::INFINITY;
    let mut bytes = 0u64;
    for _ in 0..repeats {
        let t = Instant::now();
        let mf = ModelFile::open(&path)?;
        let store = mf.weights.as_ref().ok_or("the file has no weights")?;
        bytes = 0;
        for info in store.tensors() {
            bytes += store.read(info)?.len() as u64;
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{{\"tool\": \"strata\", \"bytes\": {bytes}, \"seconds\": {best:.6}, \"mb_per_s\": {:.1}}}",
        bytes as f64 / best / 1e6
    );
    Ok(())
}
