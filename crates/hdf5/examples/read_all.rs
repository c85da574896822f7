//! Reads every dataset of an HDF5 file and prints the best-of-N throughput.
//!
//! `cargo run --release -p strata-hdf5 --example read_all -- FILE [REPEATS]`
//! (used by tools/oracle/hdf5/bench_read.sh).

use std::time::Instant;

use strata_hdf5::{H5File, Limits, NodeKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: read_all FILE [REPEATS]")?;
    let repeats: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let mut best = f64::INFINITY;
    let mut total = 0usize;
    for _ in 0..repeats {
        let t = Instant::now();
        let f = H5File::open(std::path::Path::new(&path), &Limits::default())?;
        total = 0;
        for node in f.walk()? {
            if node.kind == NodeKind::Dataset {
                total += f.dataset(&node.path)?.read_raw()?.len();
            }
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("strata-hdf5: {total} bytes in {best:.4} s (best of {repeats}) = {:.0} MB/s", total as f64 / best / 1e6);
    Ok(())
}
