//! BatchNormalization in training mode (Keras 3 `call(training=True)` on a trainable layer):
//! batch statistics, the moving-average update handed back by `take_state_updates`, gradients
//! through the tape, and an unchanged inference path. Checked against a direct f64 computation.

use strata_format::config::{ConfigDialect, LayerConfig, ModelConfig};
use strata_format::json::{Json, JsonLimits};
use strata_layers::cfg::{Meta, inner_layer_json};
use strata_layers::{BuildCtx, Layer, Model, build_layer};
use strata_tensor::{Tape, Tensor};

fn layer(json: &str) -> LayerConfig {
    let v = Json::parse(json, &Default::default()).expect("test json");
    inner_layer_json(&Meta { name: "t".into(), class: "t".into() }, &v, "layer").expect("layer entry")
}

fn build(json: &str, w: Vec<Tensor>) -> Box<dyn Layer> {
    build_layer(&layer(json), w, &BuildCtx::new(ConfigDialect::Keras3)).unwrap().expect("known layer")
}

/// Deterministic values in `[lo, hi)` (splitmix64).
fn uniform(seed: u64, shape: &[usize], lo: f32, hi: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed;
    let data = (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            lo + (hi - lo) * ((z >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect();
    Tensor::from_vec(shape, data).unwrap()
}

/// Per-channel batch mean and biased variance (f64) of `x` with channel axis `axis`.
fn moments(x: &Tensor, axis: usize) -> (Vec<f64>, Vec<f64>) {
    let s = x.shape();
    let c = s[axis];
    let inner: usize = s[axis + 1..].iter().product();
    let ch = |i: usize| (i / inner) % c;
    let mut sum = vec![0.0; c];
    let mut cnt = vec![0.0; c];
    for (i, &v) in x.as_slice().iter().enumerate() {
        sum[ch(i)] += f64::from(v);
        cnt[ch(i)] += 1.0;
    }
    let mean: Vec<f64> = sum.iter().zip(&cnt).map(|(s, n)| s / n).collect();
    let mut var = vec![0.0; c];
    for (i, &v) in x.as_slice().iter().enumerate() {
        var[ch(i)] += (f64::from(v) - mean[ch(i)]).powi(2);
    }
    let var = var.iter().zip(&cnt).map(|(s, n)| s / n).collect();
    (mean, var)
}

fn close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((f64::from(g) - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: {g} vs {w}");
    }
}

/// BN weights `[gamma, beta, moving_mean, moving_variance]` of `c` channels.
fn weights(c: usize) -> Vec<Tensor> {
    vec![
        uniform(1, &[c], 0.5, 1.5),
        uniform(2, &[c], -0.5, 0.5),
        uniform(3, &[c], -0.2, 0.2),
        uniform(4, &[c], 0.5, 1.5),
    ]
}

/// Checks one training forward and its moving-statistic update against the direct computation.
fn check_training(json: &str, x: &Tensor, axis: usize, scale: bool, center: bool, momentum: f64, eps: f64) {
    let c = x.shape()[axis];
    let all = weights(c);
    let mut w = Vec::new();
    if scale {
        w.push(all[0].clone());
    }
    if center {
        w.push(all[1].clone());
    }
    w.extend([all[2].clone(), all[3].clone()]);
    let l = build(json, w.clone());
    let y = l.forward(std::slice::from_ref(x), true).unwrap().remove(0);
    let (mean, var) = moments(x, axis);
    let inner: usize = x.shape()[axis + 1..].iter().product();
    let want: Vec<f64> = x
        .as_slice()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let k = (i / inner) % c;
            let g = if scale { f64::from(all[0].as_slice()[k]) } else { 1.0 };
            let b = if center { f64::from(all[1].as_slice()[k]) } else { 0.0 };
            g * (f64::from(v) - mean[k]) / (var[k] + eps).sqrt() + b
        })
        .collect();
    close(&format!("{json}: training output"), y.as_slice(), &want, 2e-5);

    let updates = l.take_state_updates();
    assert_eq!(updates.len(), 1, "{json}: one updated layer");
    let (path, vars) = &updates[0];
    assert_eq!(path, "", "the layer itself");
    let at = w.len() - 2;
    assert_eq!(vars.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![at, at + 1], "{json}: updated indices");
    let mm: Vec<f64> =
        all[2].as_slice().iter().zip(&mean).map(|(&o, &b)| f64::from(o) * momentum + b * (1.0 - momentum)).collect();
    let mv: Vec<f64> =
        all[3].as_slice().iter().zip(&var).map(|(&o, &b)| f64::from(o) * momentum + b * (1.0 - momentum)).collect();
    close(&format!("{json}: moving_mean"), vars[0].1.as_slice(), &mm, 1e-6);
    close(&format!("{json}: moving_variance"), vars[1].1.as_slice(), &mv, 1e-6);
    assert!(!vars[0].1.is_tracked() && !vars[1].1.is_tracked(), "updates are detached");
    assert!(l.take_state_updates().is_empty(), "taking clears the updates");

    // inference is the folded formula with the stored statistics, and records nothing
    let yi = l.forward(std::slice::from_ref(x), false).unwrap().remove(0);
    let want: Vec<f64> = x
        .as_slice()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let k = (i / inner) % c;
            let g = if scale { f64::from(all[0].as_slice()[k]) } else { 1.0 };
            let b = if center { f64::from(all[1].as_slice()[k]) } else { 0.0 };
            let (m, s) = (f64::from(all[2].as_slice()[k]), f64::from(all[3].as_slice()[k]));
            g * (f64::from(v) - m) / (s + eps).sqrt() + b
        })
        .collect();
    close(&format!("{json}: inference output"), yi.as_slice(), &want, 2e-6);
    assert!(l.take_state_updates().is_empty(), "inference records no update");
}

#[test]
fn training_forward_uses_batch_statistics_and_updates_moving_ones() {
    let x = uniform(9, &[6, 3], -2.0, 3.0);
    check_training(r#"{"class_name": "BatchNormalization", "config": {"name": "bn"}}"#, &x, 1, true, true, 0.99, 1e-3);
    check_training(
        r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "momentum": 0.9, "epsilon": 0.01, "center": false}}"#,
        &x,
        1,
        true,
        false,
        0.9,
        0.01,
    );
    check_training(
        r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "scale": false, "center": false}}"#,
        &x,
        1,
        false,
        false,
        0.99,
        1e-3,
    );
    // channels-first image: statistics over batch and space
    let img = uniform(10, &[4, 3, 2, 5], -1.0, 2.0);
    check_training(
        r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "axis": 1, "momentum": 0.5}}"#,
        &img,
        1,
        true,
        true,
        0.5,
        1e-3,
    );
    // channels-last image
    let img = uniform(11, &[2, 3, 2, 4], -1.0, 2.0);
    check_training(
        r#"{"class_name": "BatchNormalization", "config": {"name": "bn"}}"#,
        &img,
        3,
        true,
        true,
        0.99,
        1e-3,
    );
}

#[test]
fn inference_output_is_unchanged_by_a_training_forward() {
    let json = r#"{"class_name": "BatchNormalization", "config": {"name": "bn"}}"#;
    let x = uniform(12, &[5, 3], -2.0, 2.0);
    let l = build(json, weights(3));
    let before = l.forward(std::slice::from_ref(&x), false).unwrap().remove(0);
    l.forward(std::slice::from_ref(&x), true).unwrap();
    let after = l.forward(std::slice::from_ref(&x), false).unwrap().remove(0);
    assert_eq!(before.as_slice(), after.as_slice(), "the layer's own statistics stay as built");
    // bit-identical to the folded `x * mul + add` with mul = gamma * rsqrt(var + eps)
    let w = weights(3);
    let inv = w[3].add(&Tensor::scalar(1e-3)).unwrap().rsqrt().mul(&w[0]).unwrap();
    let add = w[2].mul(&inv).unwrap().neg().add(&w[1]).unwrap();
    let want = x.mul(&inv).unwrap().add(&add).unwrap();
    assert_eq!(before.as_slice(), want.as_slice());
}

#[test]
fn a_frozen_layer_runs_in_inference_mode_in_training() {
    let json = r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "trainable": false}}"#;
    let x = uniform(13, &[5, 3], -2.0, 2.0);
    let l = build(json, weights(3));
    let t = l.forward(std::slice::from_ref(&x), true).unwrap().remove(0);
    let i = l.forward(std::slice::from_ref(&x), false).unwrap().remove(0);
    assert_eq!(t.as_slice(), i.as_slice());
    assert!(l.take_state_updates().is_empty());
}

#[test]
fn a_shared_layer_updates_from_its_previous_call() {
    let json = r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "momentum": 0.5}}"#;
    let (a, b) = (uniform(14, &[4, 3], -1.0, 1.0), uniform(15, &[4, 3], 0.0, 3.0));
    let l = build(json, weights(3));
    l.forward(std::slice::from_ref(&a), true).unwrap();
    l.forward(std::slice::from_ref(&b), true).unwrap();
    let u = l.take_state_updates();
    let ((ma, _), (mb, _)) = (moments(&a, 1), moments(&b, 1));
    let want: Vec<f64> = weights(3)[2]
        .as_slice()
        .iter()
        .zip(ma.iter().zip(&mb))
        .map(|(&o, (&x, &y))| (f64::from(o) * 0.5 + x * 0.5) * 0.5 + y * 0.5)
        .collect();
    close("moving_mean after two calls", u[0].1[0].1.as_slice(), &want, 1e-6);
}

/// d(sum(y * r))/d(x, gamma, beta) in training mode against central differences (f64 sums).
#[test]
fn training_forward_is_differentiable() {
    let json = r#"{"class_name": "BatchNormalization", "config": {"name": "bn"}}"#;
    let x = uniform(16, &[6, 3], -2.0, 2.0);
    let w = weights(3);
    let r = uniform(17, &[6, 3], 0.5, 1.5);
    let tape = Tape::new();
    let xw = tape.watch(&x);
    let ww: Vec<Tensor> = w.iter().enumerate().map(|(i, t)| if i < 2 { tape.watch(t) } else { t.clone() }).collect();
    let y = build(json, ww.clone()).forward(std::slice::from_ref(&xw), true).unwrap().remove(0);
    let grads = tape.backward(&y.mul(&r).unwrap().sum(None, false).unwrap()).unwrap();
    let f = |x: &Tensor, w: Vec<Tensor>| -> f64 {
        let y = build(json, w).forward(std::slice::from_ref(x), true).unwrap().remove(0);
        y.mul(&r).unwrap().as_slice().iter().map(|&v| f64::from(v)).sum()
    };
    let eps = 1e-2f32;
    let bump = |t: &Tensor, j: usize, d: f32| {
        let mut v = t.to_vec();
        v[j] += d;
        Tensor::from_vec(t.shape(), v).unwrap()
    };
    for j in 0..x.len() {
        let num = (f(&bump(&x, j, eps), w.clone()) - f(&bump(&x, j, -eps), w.clone())) / (2.0 * f64::from(eps));
        let ana = f64::from(grads.get(&xw).unwrap().as_slice()[j]);
        assert!((num - ana).abs() <= 2e-3 + 1e-2 * num.abs(), "dx[{j}]: {ana} vs {num}");
    }
    for wi in 0..2 {
        for j in 0..3 {
            let mut up = w.clone();
            up[wi] = bump(&w[wi], j, eps);
            let mut dn = w.clone();
            dn[wi] = bump(&w[wi], j, -eps);
            let num = (f(&x, up) - f(&x, dn)) / (2.0 * f64::from(eps));
            let ana = f64::from(grads.get(&ww[wi]).unwrap().as_slice()[j]);
            assert!((num - ana).abs() <= 2e-3 + 1e-2 * num.abs(), "d weight {wi}[{j}]: {ana} vs {num}");
        }
    }
}

#[test]
fn a_model_collects_updates_with_layer_paths_through_nested_models() {
    let text = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "outer", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 3], "dtype": "float32", "name": "in"}},
        {"module": "keras.layers", "class_name": "BatchNormalization", "config": {"name": "bn_a", "trainable": true}},
        {"module": "keras", "class_name": "Sequential", "config": {"name": "inner", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 3], "dtype": "float32", "name": "in2"}},
            {"module": "keras.layers", "class_name": "BatchNormalization", "config": {"name": "bn_b", "trainable": true}}]}}]}}"#;
    let json = Json::parse(text, &JsonLimits::default()).unwrap();
    let config = ModelConfig::parse(&json).unwrap();
    let source = |path: &str| -> strata_layers::Result<Vec<Tensor>> {
        Ok(if path == "bn_a" || path == "inner/bn_b" { weights(3) } else { Vec::new() })
    };
    let model = Model::build_from_weights(&config, &BuildCtx::new(ConfigDialect::Keras3), None, &source).unwrap();
    let x = uniform(18, &[4, 3], -1.0, 1.0);
    model.forward(std::slice::from_ref(&x), false).unwrap();
    assert!(model.take_state_updates().is_empty());
    model.forward(std::slice::from_ref(&x), true).unwrap();
    let u = model.take_state_updates();
    let paths: Vec<&str> = u.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["bn_a", "inner/bn_b"]);
    assert!(u.iter().all(|(_, v)| v.iter().map(|(i, _)| *i).collect::<Vec<_>>() == [2, 3]));
    assert!(model.take_state_updates().is_empty());
}
