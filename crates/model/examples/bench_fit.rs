//! strata side of `bench/train.sh` (see tools/oracle/bench_fit.py for the Keras side and what
//! each benchmark does): `bench_fit DIR REPEATS`, one JSON object per benchmark on stdout.

use std::path::Path;
use std::time::Instant;

use strata_format::limits::Limits;
use strata_format::npy::read_npy;
use strata_model::reference::CustomDense;
use strata_model::{FitOptions, Model, Registry, progress::Verbosity};
use strata_tensor::Tensor;
use strata_train::optimizers::Adam;

fn npy(path: &Path) -> Tensor {
    let a = read_npy(path, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tensor::from_vec(&a.shape, a.to_f32()).unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = Path::new(args.get(1).map(String::as_str).unwrap_or("."));
    let repeats: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    // an optional third argument runs one benchmark (seed, mlp or cnn), for profiling
    let only = args.get(3).cloned();
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let fit = root.join("fit");
    let threads = rayon::current_num_threads();
    let tool = "strata";
    let registry = Registry::new().layer::<CustomDense>();
    // seed: warm 2-epoch fit calls
    if run("seed") {
        let (x, y) = (npy(&fit.join("seed_x.npy")), npy(&fit.join("seed_y.npy")));
        let mut model = Model::load(fit.join("seed.keras"), &registry).unwrap();
        model.compile(Adam::default(), "mse", &[]).unwrap();
        let opts = || FitOptions::new(2, 32).verbose(Verbosity::Zero);
        model.fit(&x, &y, opts()).unwrap();
        let per: Vec<f64> = (0..repeats)
            .map(|_| {
                let t = Instant::now();
                model.fit(&x, &y, opts()).unwrap();
                t.elapsed().as_secs_f64()
            })
            .collect();
        let best = per.iter().cloned().fold(f64::INFINITY, f64::min);
        println!(
            "{{\"bench\": \"seed\", \"tool\": \"{tool}\", \"seconds\": {}, \"best_seconds\": {best}, \"threads\": {threads}}}",
            median(per.clone())
        );
    }
    for name in ["mlp", "cnn"].into_iter().filter(|n| run(n)) {
        let x = npy(&fit.join(format!("{name}_x.npy")));
        let y = npy(&fit.join(format!("{name}_y.npy")));
        let n = x.shape()[0] as f64;
        let mut model = Model::load(root.join(name).join("model.keras"), &Registry::new()).unwrap();
        model.compile(Adam::default(), "sparse_categorical_crossentropy", &[]).unwrap();
        let opts = || FitOptions::new(1, 128).shuffle(false).verbose(Verbosity::Zero);
        model.fit(&x, &y, opts()).unwrap();
        let per: Vec<f64> = (0..repeats)
            .map(|_| {
                let t = Instant::now();
                model.fit(&x, &y, opts()).unwrap();
                t.elapsed().as_secs_f64()
            })
            .collect();
        let best = per.iter().cloned().fold(f64::INFINITY, f64::min);
        let med = median(per);
        println!(
            "{{\"bench\": \"{name}\", \"tool\": \"{tool}\", \"seconds\": {med}, \"samples_per_s\": {}, \"best_samples_per_s\": {}, \"threads\": {threads}}}",
            n / med,
            n / best
        );
    }
}
