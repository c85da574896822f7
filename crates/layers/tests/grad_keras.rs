//! Layer gradients against Keras: for every engine fixture case `fixtures/engine/keras3/<family>/<case>/`,
//! the gradient of `L = sum_i sum(out_i * c_i)` (`out = model(inputs, training=False)`, `c_i` a fixed
//! random cotangent per output) with respect to each float model input and each trainable weight must
//! match what `tf.GradientTape` computed (`fixtures/engine_grads/keras3/<family>/<case>.{npz,json}`,
//! written by `tools/oracle/gen_grads.sh`; nothing here is typed by hand).
//!
//! The model is built with [`Model::build_with_weight_map`], which hands every loaded weight to the
//! test: float weights are watched on a tape, so the forward records them. Keras's weights are matched
//! to the loaded tensors by value (`w_<j>` in the npz): Keras's variable paths and strata's binding
//! order need not agree, and a stale gradient file (a case regenerated since) then fails loudly.
//!
//! Tolerance: `|got - want| <= ATOL * max(1, max|want|) + RTOL * |want|` per element, RTOL 1e-4, ATOL
//! 1e-5. A gradient is a sum over the batch (and over output positions) of products, so float32
//! summation-order differences between strata's kernels and TensorFlow's grow with the magnitude of
//! the whole array, not of the element: elements that cancel to near zero get the absolute floor
//! scaled by the array's largest value. 1e-4 relative is ~1000 float32 ulps, loose enough for
//! reordered sums over a few hundred terms, tight enough to catch any wrong formula.
//!
//! `STRATA_GRAD_FILTER=conv` (a substring of `<family>/<case>`) runs a subset.
//!
//! Known failures ([`KNOWN`], each must still fail, so a fix makes the test fail until its entry is
//! removed): none. State when written (Keras 3.15.1 fixtures, 74 cases): attention 10/10, conv 12/12,
//! core 6/6, ops 13/13, recurrent 20/20, spatial 13/13 pass, float16 / mixed_float16 policies included
//! (half-precision values meet a float32 consumer through a cast whose gradient is rounded to half, as
//! TensorFlow's `Cast` gradient is; half-precision average pooling and embedding lookups sum their
//! gradients in half precision as TensorFlow's kernels do). Nothing in the fixtures is left without a
//! gradient; ops that have none in TensorFlow either (comparisons, sign, floor, integer casts ...) are
//! untracked, and `output_grad: false` in the gradient file says so.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use strata_format::json::Json;
use strata_layers::{BuildCtx, Model, unsupported_layers};
use strata_tensor::{Tape, Tensor};

const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-5;

/// A case whose gradients strata does not reproduce yet.
struct Known {
    case: &'static str,
    /// Output layers strata cannot differentiate yet (their outputs are untracked): these outputs are
    /// left out of `L` on both sides (Keras's per-output gradients `o<i>/...`), and the rest of the
    /// case must match. Each must still be untracked. Empty: the whole case is expected to fail.
    untracked: &'static [&'static str],
    /// Output layers that are tracked but whose gradient differs from Keras's: left out the same way,
    /// and each must still differ.
    differs: &'static [&'static str],
    reason: &'static str,
}

const KNOWN: &[Known] = &[];

struct Arrays(HashMap<String, (Vec<usize>, Vec<f32>)>);

impl Arrays {
    fn read(path: &Path) -> Arrays {
        let arrays = strata_format::npy::read_npz(path, &Default::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Arrays(arrays.into_iter().map(|a| (a.name.clone(), (a.shape.clone(), a.to_f32()))).collect())
    }
    fn get(&self, name: &str) -> Option<&(Vec<usize>, Vec<f32>)> {
        self.0.get(name)
    }
}

/// Compares one gradient; `Err` describes the worst element.
fn compare(what: &str, got: &Tensor, want: &(Vec<usize>, Vec<f32>)) -> Result<(), String> {
    if got.shape() != want.0.as_slice() {
        return Err(format!("{what}: gradient shape {:?}, Keras {:?}", got.shape(), want.0));
    }
    let scale = want.1.iter().fold(1f64, |m, &v| m.max(f64::from(v).abs()));
    let mut bad = 0usize;
    let mut worst = (0f64, 0usize);
    for (i, (&g, &w)) in got.as_slice().iter().zip(&want.1).enumerate() {
        let d = (f64::from(g) - f64::from(w)).abs();
        let tol = ATOL * scale + RTOL * f64::from(w).abs();
        if d.is_nan() || d > tol {
            bad += 1;
            if d.is_nan() || d > worst.0 {
                worst = (d, i);
            }
        }
    }
    if bad > 0 {
        let i = worst.1;
        return Err(format!(
            "{what}: {bad}/{} elements off, worst [{i}] {} vs Keras {} (max |Keras| {scale:.3e})",
            want.1.len(),
            got.as_slice()[i],
            want.1[i]
        ));
    }
    Ok(())
}

enum Outcome {
    Pass,
    Skip(String),
    Fail(Vec<String>),
}

fn run_case(case_dir: &Path, grads: &Path, excluded: &[&str], differs: &[&str]) -> Outcome {
    let file = match strata_format::model::ModelFile::open(case_dir.join("model.keras")) {
        Ok(f) => f,
        Err(e) => return Outcome::Fail(vec![format!("open: {e}")]),
    };
    let Some(config) = file.config.as_ref() else { return Outcome::Fail(vec!["no config".into()]) };
    let missing = unsupported_layers(config);
    if !missing.is_empty() {
        return Outcome::Skip(format!("unsupported {:?}", missing.iter().map(|u| &u.class).collect::<Vec<_>>()));
    }
    let Some(store) = file.weights.as_ref() else { return Outcome::Fail(vec!["no weights".into()]) };
    let binding = strata_format::bind::bind(config, store);
    let ctx = BuildCtx {
        dialect: config.source,
        backend: file.backend.as_deref(),
        keras_version: file.keras_version.as_deref(),
    };
    let tape = Tape::new();
    // (layer path, watched weight)
    let watched: RefCell<Vec<(String, Tensor)>> = RefCell::new(Vec::new());
    let map = |path: &str, ws: Vec<Tensor>| -> Vec<Tensor> {
        ws.into_iter()
            .map(|w| {
                if w.dtype().is_float() {
                    let t = tape.watch(&w);
                    watched.borrow_mut().push((path.to_string(), t.clone()));
                    t
                } else {
                    w
                }
            })
            .collect()
    };
    let model = match Model::build_with_weight_map(config, &binding, store, &ctx, None, &map) {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(vec![format!("build: {e}")]),
    };
    let watched = watched.into_inner();
    let (ins, _) = common::read_npz(&case_dir.join("io.npz"));
    let ins: Vec<Tensor> = ins.iter().map(|x| if x.dtype().is_float() { tape.watch(x) } else { x.clone() }).collect();
    let outs = match model.predict(&ins) {
        Ok(o) => o,
        Err(e) => return Outcome::Fail(vec![format!("predict: {e}")]),
    };
    let g = Arrays::read(&grads.with_extension("npz"));
    let meta_text = std::fs::read_to_string(grads.with_extension("json")).expect("grads json");
    let meta = Json::parse(&meta_text, &Default::default()).expect("grads json parses");
    let keras_grad =
        |i: usize| meta.get("output_grad").and_then(|v| v.as_array()).and_then(|a| a.get(i)).and_then(|b| b.as_bool());
    let mut problems = Vec::new();
    // a Sequential config lists no outputs: its last layer
    let layer_of = |i: usize| {
        config
            .outputs
            .get(i)
            .map(|r| r.layer.as_str())
            .or_else(|| config.layers.last().map(|l| l.name.as_str()))
            .unwrap_or("?")
    };
    // Outputs whose contribution is checked: all but the known-untracked ones.
    let mut included = vec![true; outs.len()];
    for (i, o) in outs.iter().enumerate() {
        let layer = layer_of(i);
        let class = config.layer(layer).map(|l| l.class_name.as_str()).unwrap_or("?");
        // (Keras's gradient through it is zero or None: an int cast, floor, sign ...: nothing to track)
        let differentiable = keras_grad(i) != Some(false);
        if differs.contains(&layer) {
            included[i] = false;
            if !o.is_tracked() {
                problems.push(format!("output {i} ({layer}: {class}) is listed as differing but is not tracked"));
            }
        } else if excluded.contains(&layer) {
            included[i] = false;
            if o.is_tracked() && differentiable {
                problems.push(format!("output {i} ({layer}: {class}) is tracked now: remove it from KNOWN"));
            }
        } else if !o.is_tracked() && differentiable {
            // The layer whose forward leaves the tape is this one or one before it.
            problems.push(format!("output {i} ({layer}: {class}) is not tracked"));
        }
    }
    let partial = included.iter().any(|&k| !k);
    // Keras's gradient `name` (`gin_<k>` / `gw_<j>`) over the included outputs.
    let expected = |name: &str| -> Option<(Vec<usize>, Vec<f32>)> {
        let (shape, total) = g.get(name)?;
        if !partial {
            return Some((shape.clone(), total.clone()));
        }
        let mut acc = vec![0f32; total.len()];
        for i in (0..outs.len()).filter(|&i| included[i]) {
            if let Some((_, v)) = g.get(&format!("o{i}/{name}")) {
                acc.iter_mut().zip(v).for_each(|(a, b)| *a += b);
            }
        }
        Some((shape.clone(), acc))
    };
    let mut loss: Option<Tensor> = None;
    let mut terms: Vec<(usize, Tensor)> = Vec::new();
    let mut differing: Vec<(usize, Tensor)> = Vec::new();
    for (i, o) in outs.iter().enumerate() {
        let Some((shape, c)) = g.get(&format!("c_{i}")) else {
            return Outcome::Fail(vec![format!("output {i}: no cotangent c_{i} (Keras has fewer outputs)")]);
        };
        let c = Tensor::from_vec(shape, c.clone()).expect("cotangent");
        let term = match o.mul(&c).and_then(|p| p.sum(None, false)) {
            Ok(t) => t,
            Err(e) => return Outcome::Fail(vec![format!("output {i}: sum(out * c): {e}")]),
        };
        if !included[i] {
            if differs.contains(&layer_of(i)) {
                differing.push((i, term));
            }
            continue;
        }
        terms.push((i, term.clone()));
        loss = Some(match loss {
            None => term,
            Some(l) => l.add(&term).expect("scalar add"),
        });
    }
    let Some(loss) = loss else {
        return if problems.is_empty() { Outcome::Pass } else { Outcome::Fail(problems) };
    };
    if !loss.is_tracked() && (0..outs.len()).all(|i| !included[i] || keras_grad(i) == Some(false)) {
        return if problems.is_empty() { Outcome::Pass } else { Outcome::Fail(problems) };
    }
    if !loss.is_tracked() {
        problems.push("the loss is not tracked: no output depends on a watched tensor".into());
        return Outcome::Fail(problems);
    }
    let grads_of = match tape.backward(&loss) {
        Ok(gr) => gr,
        Err(e) => {
            problems.push(format!("backward: {e}"));
            return Outcome::Fail(problems);
        }
    };
    // (gradient name, tracked tensor) of every target that differs, for the per-output diagnosis
    let mut off: Vec<(String, Tensor)> = Vec::new();
    for (k, x) in ins.iter().enumerate() {
        let Some(want) = expected(&format!("gin_{k}")) else { continue };
        let want = &want;
        match grads_of.get(x) {
            Some(got) => {
                if let Err(e) = compare(&format!("input {k}"), got, want) {
                    problems.push(e);
                    off.push((format!("gin_{k}"), x.clone()));
                }
            }
            None if want.1.iter().all(|&v| v == 0.0) => {}
            None => {
                problems.push(format!("input {k}: no gradient (graph cut)"));
                off.push((format!("gin_{k}"), x.clone()));
            }
        }
    }
    let weights: Vec<Json> = meta.get("weights").and_then(|w| w.as_array()).map(<[Json]>::to_vec).unwrap_or_default();
    let mut used = vec![false; watched.len()];
    // (gradient name, tracked tensor) of every input and matched weight
    let mut targets: Vec<(String, Tensor)> =
        ins.iter().enumerate().filter(|(_, x)| x.is_tracked()).map(|(k, x)| (format!("gin_{k}"), x.clone())).collect();
    for (j, w) in weights.iter().enumerate() {
        let path = w.get("path").and_then(|p| p.as_str()).unwrap_or("?").to_string();
        let (Some(value), Some(want)) = (g.get(&format!("w_{j}")), expected(&format!("gw_{j}"))) else {
            problems.push(format!("weight {path}: w_{j}/gw_{j} missing from the gradient file"));
            continue;
        };
        // The loaded tensor with this value: prefer one whose layer path shares a segment with
        // Keras's variable path (equal values in two layers), then the first unused one.
        let segs: Vec<&str> = path.split('/').collect();
        let candidates: Vec<usize> = (0..watched.len())
            .filter(|&i| {
                !used[i] && watched[i].1.shape() == value.0.as_slice() && watched[i].1.as_slice() == value.1.as_slice()
            })
            .collect();
        let pick = candidates
            .iter()
            .copied()
            .find(|&i| watched[i].0.rsplit('/').next().is_some_and(|l| segs.contains(&l)))
            .or_else(|| candidates.first().copied());
        let Some(i) = pick else {
            problems.push(format!(
                "weight {path}: no loaded weight has Keras's value (stale gradients? rerun gen_grads.sh)"
            ));
            continue;
        };
        used[i] = true;
        targets.push((format!("gw_{j}"), watched[i].1.clone()));
        match grads_of.get(&watched[i].1) {
            Some(got) => {
                if let Err(e) = compare(&format!("weight {path}"), got, &want) {
                    problems.push(e);
                    off.push((format!("gw_{j}"), watched[i].1.clone()));
                }
            }
            None if want.1.iter().all(|&v| v == 0.0) => {}
            None => problems.push(format!("weight {path} (layer {}): no gradient (graph cut)", watched[i].0)),
        }
    }
    // Known-differing outputs must still differ somewhere (else: remove them from KNOWN).
    for (i, term) in &differing {
        let layer = layer_of(*i);
        let Ok(gi) = tape.backward(term) else { continue };
        let still = targets.iter().any(|(name, t)| {
            let Some((shape, total)) = g.get(name) else { return false };
            let want = g.get(&format!("o{i}/{name}")).cloned().unwrap_or((shape.clone(), vec![0.0; total.len()]));
            let zero = Tensor::zeros(shape).expect("zeros");
            compare(name, gi.get(t).unwrap_or(&zero), &want).is_err()
        });
        if !still {
            problems.push(format!("output {i} ({layer}) matches Keras now: remove it from KNOWN's `differs`"));
        }
    }
    // Which outputs' gradients differ: each output's term alone against Keras's per-output gradient.
    if !off.is_empty() && terms.len() > 1 {
        for (i, term) in &terms {
            let (layer, i) = (layer_of(*i), *i);
            let class = config.layer(layer).map(|l| l.class_name.as_str()).unwrap_or("?");
            let Ok(gi) = tape.backward(term) else { continue };
            for (name, t) in &off {
                let Some((shape, total)) = g.get(name) else { continue };
                let want = g.get(&format!("o{i}/{name}")).cloned().unwrap_or((shape.clone(), vec![0.0; total.len()]));
                let zero = Tensor::zeros(shape).expect("zeros");
                let got = gi.get(t).unwrap_or(&zero);
                if let Err(e) = compare(name, got, &want) {
                    problems.push(format!("  from output {i} ({layer}: {class}): {e}"));
                }
            }
        }
    }
    if problems.is_empty() { Outcome::Pass } else { Outcome::Fail(problems) }
}

#[test]
fn layer_gradients_match_keras() {
    let root = strata_testkit::fixture("engine/keras3");
    let groot = strata_testkit::fixture("engine_grads/keras3");
    let filter = std::env::var("STRATA_GRAD_FILTER").ok();
    let mut cases = Vec::new();
    for fam in std::fs::read_dir(&root).expect("fixtures/engine/keras3").flatten() {
        for case in std::fs::read_dir(fam.path()).into_iter().flatten().flatten() {
            if case.path().join("io.npz").exists() {
                let rel = format!("{}/{}", fam.file_name().to_string_lossy(), case.file_name().to_string_lossy());
                cases.push(rel);
            }
        }
    }
    cases.sort();
    let mut report = String::new();
    let mut bad = 0usize;
    // family -> (full passes, partial passes, cases)
    let mut per_family: std::collections::BTreeMap<String, (usize, usize, usize)> = Default::default();
    for rel in &cases {
        if filter.as_deref().is_some_and(|f| !rel.contains(f)) {
            continue;
        }
        let family = rel.split('/').next().unwrap_or("").to_string();
        let tally = per_family.entry(family).or_default();
        tally.2 += 1;
        let grads = groot.join(rel);
        if !grads.with_extension("npz").exists() {
            bad += 1;
            report.push_str(&format!("FAIL {rel}: no Keras gradients (run tools/oracle/gen_grads.sh --case {rel})\n"));
            continue;
        }
        let known = KNOWN.iter().find(|k| k.case == rel);
        let excluded = known.map_or(&[][..], |k| k.untracked);
        let differs = known.map_or(&[][..], |k| k.differs);
        let outcome = run_case(&root.join(rel), &grads, excluded, differs);
        // a partly-known case (some outputs left out) must pass on the rest
        let known = known.filter(|k| k.untracked.is_empty() && k.differs.is_empty()).map(|k| k.reason);
        let excluded: Vec<&str> = excluded.iter().chain(differs).copied().collect();
        let outcome = match (outcome, excluded.is_empty()) {
            (Outcome::Pass, false) => {
                report.push_str(&format!("PARTIAL {rel}: outputs of {excluded:?} left out\n"));
                tally.1 += 1;
                continue;
            }
            (o, _) => o,
        };
        match (outcome, known) {
            (Outcome::Pass, None) => {
                tally.0 += 1;
                report.push_str(&format!("PASS {rel}\n"));
            }
            (Outcome::Pass, Some(_)) => {
                bad += 1;
                report.push_str(&format!("FAIL {rel}: now passes; remove it from KNOWN\n"));
            }
            (Outcome::Skip(why), _) => report.push_str(&format!("SKIP {rel}: {why}\n")),
            (Outcome::Fail(p), Some(reason)) => {
                report.push_str(&format!("KNOWN {rel}: {reason}\n    {}\n", p.join("\n    ")))
            }
            (Outcome::Fail(p), None) => {
                bad += 1;
                report.push_str(&format!("FAIL {rel}:\n    {}\n", p.join("\n    ")));
            }
        }
    }
    for (fam, (pass, partial, total)) in &per_family {
        report.push_str(&format!("family {fam}: {pass}/{total} pass, {partial} pass with known outputs left out\n"));
    }
    eprintln!("{report}");
    assert!(!cases.is_empty(), "no engine fixtures under {}", root.display());
    assert_eq!(bad, 0, "{bad} gradient failure(s):\n{report}");
}
