//! Training parity with Keras 3.15.1 (fixtures/train/fit, tools/oracle/gen_fit.py): from the same
//! initial weights and data, `fit` (2 epochs, batch 32, no shuffling) with each optimizer gives
//! the History, final weights, optimizer variables and `evaluate` Keras gives; one
//! `train_on_batch` gives Keras's first step; the first-batch gradients equal
//! `tf.GradientTape`'s. Models: the reference seed model (CustomDense(32) -> Dense(1), mse),
//! a small CNN (Conv2D(4,3,relu) -> MaxPooling2D -> Flatten -> Dense(3, softmax), sparse CE) and
//! `bn` (Dense(16, no bias) -> BatchNormalization -> relu -> Dense(3, softmax), sparse CE: batch
//! statistics in training, moving mean/variance updates, checked in the final weights).

use std::collections::{BTreeMap, HashMap};

use strata_format::json::Json;
use strata_format::limits::Limits;
use strata_format::npy::read_npz;
use strata_model::reference::{CustomDense, custom_loss};
use strata_model::{FitOptions, Model, progress::Verbosity};
use strata_registry::Registry;
use strata_tensor::Tensor;
use strata_train::optimizers::Optimizer;

fn registry() -> Registry {
    Registry::new().layer::<CustomDense>().loss("my_custom_losses", "custom_loss", custom_loss)
}

struct Fixture {
    index: Json,
    arrays: HashMap<String, HashMap<String, Tensor>>,
}

fn fixture() -> Fixture {
    let dir = strata_testkit::fixture("train/fit");
    let index = Json::parse(std::fs::read(dir.join("index.json")).unwrap(), &Default::default()).unwrap();
    let mut arrays = HashMap::new();
    let models = index.get("models").and_then(Json::as_object).unwrap();
    for (m, _) in models.iter() {
        let list = read_npz(&dir.join(format!("{m}.npz")), &Limits::default()).unwrap();
        let map = list.into_iter().map(|a| (a.name.clone(), Tensor::from_vec(&a.shape, a.to_f32()).unwrap())).collect();
        arrays.insert(m.to_string(), map);
    }
    Fixture { index, arrays }
}

/// `|got - want| <= atol + rtol * |want|` elementwise; returns the largest relative error among
/// elements with `|want| >= 1e-3`.
fn check(what: &str, got: &[f32], want: &[f32], rtol: f64, atol: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (f64::from(g), f64::from(w));
        let err = (g - w).abs();
        assert!(err <= atol + rtol * w.abs(), "{what}[{i}]: strata {g} vs Keras {w} (diff {err:e})");
        if w.abs() >= 1e-3 {
            worst = worst.max(err / w.abs());
        }
    }
    worst
}

fn load(m: &str) -> Model {
    Model::load(strata_testkit::fixture(&format!("train/fit/{m}/model.keras")), &registry()).unwrap()
}

fn compile(model: &mut Model, case: &Json) {
    let opt = Optimizer::deserialize(case.get("optimizer").unwrap()).unwrap();
    let loss = case.get("loss").and_then(Json::as_str).unwrap();
    let metrics: Vec<&str> =
        case.get("metrics").and_then(Json::as_array).unwrap_or(&[]).iter().filter_map(Json::as_str).collect();
    model.compile(opt, loss, &metrics).unwrap();
}

// Tolerances: after 2 epochs of float32 updates the two implementations round differently
// (reduction order in matmul and sums); these bounds hold for every case and still catch any
// wrong formula (a wrong slot update or a missing bias correction is off by >1e-2).
const RTOL: f64 = 1e-5;
const ATOL: f64 = 1e-6;

#[test]
fn fit_matches_keras_for_every_optimizer() {
    let fx = fixture();
    let models = fx.index.get("models").and_then(Json::as_object).unwrap();
    let mut report = Vec::new();
    for (m, spec) in models.iter() {
        let arr = &fx.arrays[m];
        let x = &arr["x"];
        let y = &arr["y"];
        for (name, case) in spec.get("cases").and_then(Json::as_object).unwrap().iter() {
            let mut model = load(m);
            compile(&mut model, case);
            let mut opts = FitOptions::new(2, case.get("batch_size").and_then(Json::as_usize).unwrap())
                .shuffle(false)
                .verbose(Verbosity::Zero);
            let kw = case.get("fit_kwargs").unwrap();
            if let Some(v) = kw.get("validation_split").and_then(Json::as_f64) {
                opts = opts.validation_split(v);
            }
            if let Some(k) = kw.get("sample_weight").and_then(Json::as_str) {
                opts = opts.sample_weight(arr[k].clone());
            }
            if let Some(cw) = kw.get("class_weight").and_then(Json::as_object) {
                let w: BTreeMap<usize, f64> =
                    cw.iter().map(|(k, v)| (k.parse().unwrap(), v.as_f64().unwrap())).collect();
                opts = opts.class_weight(w);
            }
            let h = model.fit(x, y, opts).unwrap_or_else(|e| panic!("{m}/{name}: {e}"));
            let mut worst = 0.0f64;
            for (key, want) in case.get("history").and_then(Json::as_object).unwrap().iter() {
                let want: Vec<f32> = want.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
                let got: Vec<f32> = h
                    .get(key)
                    .unwrap_or_else(|| panic!("{m}/{name}: no `{key}` in History"))
                    .iter()
                    .map(|&v| v as f32)
                    .collect();
                worst = worst.max(check(&format!("{m}/{name} history {key}"), &got, &want, RTOL, ATOL));
            }
            let weights = model.get_weights();
            for (i, w) in weights.iter().enumerate() {
                let want = &arr[&format!("{name}/final_{i}")];
                worst = worst.max(check(
                    &format!("{m}/{name} final weight {i}"),
                    w.as_slice(),
                    want.as_slice(),
                    RTOL,
                    ATOL,
                ));
            }
            let vars = model.optimizer_variables().unwrap();
            let n_opt = case.get("optimizer_variables").and_then(Json::as_array).unwrap().len();
            assert_eq!(vars.len(), n_opt, "{m}/{name}: optimizer variable count");
            for (j, (path, v)) in vars.iter().enumerate() {
                let want = &arr[&format!("{name}/opt_{j}")];
                worst = worst.max(check(
                    &format!("{m}/{name} optimizer var {j} ({path})"),
                    v.as_slice(),
                    want.as_slice(),
                    RTOL,
                    ATOL,
                ));
            }
            let ev = model.evaluate(x, y, 32).unwrap();
            for (key, want) in case.get("evaluate").and_then(Json::as_object).unwrap().iter() {
                let got = ev.get(key).unwrap_or_else(|| panic!("{m}/{name}: evaluate has no `{key}`"));
                worst = worst.max(check(
                    &format!("{m}/{name} evaluate {key}"),
                    &[got as f32],
                    &[want.as_f64().unwrap() as f32],
                    RTOL,
                    ATOL,
                ));
            }
            report.push(format!("{m}/{name}: largest relative error {worst:.2e}"));
        }
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn one_step_and_first_gradients_match_keras() {
    let fx = fixture();
    let models = fx.index.get("models").and_then(Json::as_object).unwrap();
    for (m, spec) in models.iter() {
        let arr = &fx.arrays[m];
        let idx: Vec<usize> = (0..32).collect();
        let take = |t: &Tensor| {
            let row: usize = t.shape()[1..].iter().product();
            let mut shape = t.shape().to_vec();
            shape[0] = idx.len();
            Tensor::from_vec(&shape, t.as_slice()[..idx.len() * row].to_vec()).unwrap()
        };
        let (xb, yb) = (take(&arr["x"]), take(&arr["y"]));
        // gradients at the initial weights
        let g = spec.get("grads").unwrap();
        let mut model = load(m);
        let first = spec.get("cases").and_then(|c| c.get("sgd")).unwrap();
        compile(&mut model, first);
        let (loss, grads, _) = model.compute_gradients(&[xb.clone()], &yb, None).unwrap();
        check(&format!("{m} first-batch loss"), &[loss as f32], arr["grads/loss"].as_slice(), 1e-5, 1e-6);
        for (i, gr) in grads.iter().enumerate() {
            check(&format!("{m} gradient {i}"), gr.as_slice(), arr[&format!("grads/{i}")].as_slice(), 1e-4, 1e-6);
        }
        assert_eq!(grads.len(), g.get("arrays").and_then(Json::as_array).unwrap().len());
        // one train_on_batch per optimizer
        for (name, case) in spec.get("cases").and_then(Json::as_object).unwrap().iter() {
            if !arr.contains_key(&format!("{name}/step1_0")) {
                continue;
            }
            let mut model = load(m);
            compile(&mut model, case);
            let logs = model.train_on_batch(&[xb.clone()], &yb, None).unwrap();
            for (i, w) in model.get_weights().iter().enumerate() {
                check(
                    &format!("{m}/{name} step-1 weight {i}"),
                    w.as_slice(),
                    arr[&format!("{name}/step1_{i}")].as_slice(),
                    1e-5,
                    1e-6,
                );
            }
            if let Some(want) = case.get("step1_logs").and_then(Json::as_object) {
                for (key, v) in want.iter() {
                    check(
                        &format!("{m}/{name} step-1 {key}"),
                        &[logs.get(key).unwrap() as f32],
                        &[v.as_f64().unwrap() as f32],
                        1e-5,
                        1e-6,
                    );
                }
            }
        }
    }
}
