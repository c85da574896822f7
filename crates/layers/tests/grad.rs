//! Layers built by `build_layer` from watched weights are differentiable through the tape, with no
//! change to their code: d(sum(output))/d(weights, input) against central finite differences.
//!
//! Each check builds the layer twice: once from tensors watched on a tape (analytic gradients), and
//! for each probed element from perturbed plain tensors (numeric gradients, f64 sums). A layer whose
//! forward leaves the tensor API (copies values out and builds a new tensor) returns an untracked
//! output or no gradient for some weight; `fd` reports that as a failure naming the layer.

use strata_format::config::{ConfigDialect, LayerConfig};
use strata_format::json::Json;
use strata_layers::cfg::{Meta, inner_layer_json};
use strata_layers::{BuildCtx, build_layer};
use strata_tensor::{Tape, Tensor};

fn layer(json: &str) -> LayerConfig {
    let v = Json::parse(json, &Default::default()).expect("test json");
    inner_layer_json(&Meta { name: "t".into(), class: "t".into() }, &v, "layer").expect("layer entry")
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

fn forward(cfg: &LayerConfig, weights: Vec<Tensor>, x: &Tensor) -> Tensor {
    let ctx = BuildCtx::new(ConfigDialect::Keras3);
    let l = build_layer(cfg, weights, &ctx).unwrap().expect("known layer");
    l.forward(std::slice::from_ref(x), false).unwrap().remove(0)
}

fn sum64(t: &Tensor) -> f64 {
    t.as_slice().iter().map(|&v| v as f64).sum()
}

const EPS: f32 = 1e-2;
const RTOL: f64 = 1e-2;
const ATOL: f64 = 2e-3;

/// Fixed positive weights for the summed output (a plain sum is constant for softmax or normalized outputs).
fn loss_weights(shape: &[usize]) -> Tensor {
    uniform(0xabc, shape, 0.5, 1.5)
}

/// Checks d(sum(layer(x) * r))/d(each weight) (`r` fixed, see [`loss_weights`]) and, when `input_grad`, d/dx. Returns an error text
/// instead of panicking so a caller can list every failing layer at once.
fn fd(name: &str, json: &str, weights: &[Tensor], x: &Tensor, input_grad: bool) -> Result<(), String> {
    let cfg = layer(json);
    let tape = Tape::new();
    let watched: Vec<Tensor> = weights.iter().map(|w| tape.watch(w)).collect();
    let xw = if input_grad { tape.watch(x) } else { x.clone() };
    let y = forward(&cfg, watched.clone(), &xw);
    if !y.is_tracked() {
        return Err(format!("{name}: the output is not tracked (the forward leaves the tensor API)"));
    }
    let r = loss_weights(y.shape());
    let grads =
        tape.backward(&y.mul(&r).unwrap().sum(None, false).unwrap()).map_err(|e| format!("{name}: backward: {e}"))?;
    let mut targets: Vec<(String, usize, &Tensor, &Tensor)> =
        watched.iter().zip(weights).enumerate().map(|(i, (w, t))| (format!("weight {i}"), i, w, t)).collect();
    if input_grad {
        targets.push(("input".into(), usize::MAX, &xw, x));
    }
    for (what, wi, tracked, base) in targets {
        let g = grads.get(tracked).ok_or_else(|| format!("{name}: no gradient for {what} (graph cut)"))?;
        assert_eq!(g.shape(), base.shape(), "{name}: {what} gradient shape");
        let n = base.len();
        for j in (0..n).step_by((n / 12).max(1)) {
            let eval = |delta: f32| {
                let mut v = base.to_vec();
                v[j] += delta;
                let t = Tensor::from_vec(base.shape(), v).unwrap();
                let (ws, xi) = if wi == usize::MAX {
                    (weights.to_vec(), t)
                } else {
                    let mut ws = weights.to_vec();
                    ws[wi] = t;
                    (ws, x.clone())
                };
                sum64(&forward(&cfg, ws, &xi).mul(&r).unwrap())
            };
            let numeric = (eval(EPS) - eval(-EPS)) / (2.0 * EPS as f64);
            let analytic = g.as_slice()[j] as f64;
            let tol = ATOL + RTOL * numeric.abs().max(analytic.abs());
            if (numeric - analytic).abs() > tol {
                return Err(format!("{name}: {what} element {j}: analytic {analytic} vs numeric {numeric}"));
            }
        }
    }
    Ok(())
}

#[test]
fn core_layers_are_differentiable() {
    let x = uniform(1, &[2, 4], -1.0, 1.0);
    let mut failures = Vec::new();
    let mut run = |r: Result<(), String>| {
        if let Err(e) = r {
            failures.push(e);
        }
    };
    for act in ["tanh", "sigmoid", "linear", "softmax", "gelu", "swish", "elu", "selu", "softsign", "softplus"] {
        run(fd(
            &format!("Dense({act})"),
            &format!(r#"{{"class_name": "Dense", "config": {{"name": "d", "units": 3, "activation": "{act}"}}}}"#),
            &[uniform(2, &[4, 3], -0.8, 0.8), uniform(3, &[3], -0.5, 0.5)],
            &x,
            true,
        ));
    }
    let img = uniform(4, &[2, 5, 4, 3], -1.0, 1.0);
    run(fd(
        "Conv2D",
        r#"{"class_name": "Conv2D", "config": {"name": "c", "filters": 2, "kernel_size": [2, 3],
            "strides": [1, 2], "padding": "same", "activation": "tanh"}}"#,
        &[uniform(5, &[2, 3, 3, 2], -0.5, 0.5), uniform(6, &[2], -0.5, 0.5)],
        &img,
        true,
    ));
    run(fd(
        "Conv1D",
        r#"{"class_name": "Conv1D", "config": {"name": "c", "filters": 2, "kernel_size": [2],
            "padding": "causal", "dilation_rate": [2], "activation": "linear"}}"#,
        &[uniform(7, &[2, 3, 2], -0.5, 0.5), uniform(8, &[2], -0.5, 0.5)],
        &uniform(9, &[2, 5, 3], -1.0, 1.0),
        true,
    ));
    run(fd(
        "Conv2DTranspose",
        r#"{"class_name": "Conv2DTranspose", "config": {"name": "c", "filters": 2, "kernel_size": [2, 2],
            "strides": [2, 2], "padding": "valid", "activation": "linear"}}"#,
        &[uniform(10, &[2, 2, 2, 3], -0.5, 0.5), uniform(11, &[2], -0.5, 0.5)],
        &img,
        true,
    ));
    run(fd(
        "DepthwiseConv2D",
        r#"{"class_name": "DepthwiseConv2D", "config": {"name": "c", "kernel_size": [2, 2],
            "depth_multiplier": 2, "padding": "valid", "activation": "linear"}}"#,
        &[uniform(12, &[2, 2, 3, 2], -0.5, 0.5), uniform(13, &[6], -0.5, 0.5)],
        &img,
        true,
    ));
    run(fd(
        "BatchNormalization",
        r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "axis": -1, "epsilon": 0.001}}"#,
        &[
            uniform(14, &[3], 0.5, 1.5),
            uniform(15, &[3], -0.5, 0.5),
            uniform(16, &[3], -0.2, 0.2),
            uniform(17, &[3], 0.5, 1.5),
        ],
        &img,
        true,
    ));
    run(fd(
        "LayerNormalization",
        r#"{"class_name": "LayerNormalization", "config": {"name": "ln", "axis": [-1], "epsilon": 0.001}}"#,
        &[uniform(18, &[4], 0.5, 1.5), uniform(19, &[4], -0.5, 0.5)],
        &uniform(20, &[3, 4], -2.0, 2.0),
        true,
    ));
    run(fd(
        "GlobalAveragePooling2D",
        r#"{"class_name": "GlobalAveragePooling2D", "config": {"name": "g"}}"#,
        &[],
        &img,
        true,
    ));
    run(fd(
        "AveragePooling2D",
        r#"{"class_name": "AveragePooling2D", "config": {"name": "p", "pool_size": [2, 2], "padding": "same"}}"#,
        &[],
        &img,
        true,
    ));
    // Maximum-based layers: inputs with distinct values away from ties (step 1e-2 < half the gap).
    let distinct =
        Tensor::from_vec(&[2, 4, 4, 1], (0..32).map(|i| ((i * 13) % 32) as f32 * 0.1 - 1.55).collect()).unwrap();
    run(fd(
        "MaxPooling2D",
        r#"{"class_name": "MaxPooling2D", "config": {"name": "p", "pool_size": [2, 2]}}"#,
        &[],
        &distinct,
        true,
    ));
    for (class, cfg) in [
        ("Flatten", ""),
        ("Reshape", r#", "target_shape": [12, 5]"#),
        ("Permute", r#", "dims": [3, 1, 2]"#),
        ("ZeroPadding2D", r#", "padding": [[1, 0], [0, 2]]"#),
        ("Cropping2D", r#", "cropping": [[1, 1], [0, 1]]"#),
        ("UpSampling2D", r#", "size": [2, 1]"#),
        ("Rescaling", r#", "scale": 0.5, "offset": 0.25"#),
    ] {
        run(fd(class, &format!(r#"{{"class_name": "{class}", "config": {{"name": "l"{cfg}}}}}"#), &[], &img, true));
    }
    run(fd(
        "GroupNormalization",
        r#"{"class_name": "GroupNormalization", "config": {"name": "gn", "groups": 2, "epsilon": 0.001}}"#,
        &[uniform(21, &[4], 0.5, 1.5), uniform(22, &[4], -0.5, 0.5)],
        &uniform(23, &[2, 3, 4], -2.0, 2.0),
        true,
    ));
    run(fd(
        "UnitNormalization",
        r#"{"class_name": "UnitNormalization", "config": {"name": "un", "axis": [-1]}}"#,
        &[],
        &img,
        true,
    ));
    run(fd(
        "SeparableConv2D",
        r#"{"class_name": "SeparableConv2D", "config": {"name": "c", "filters": 2, "kernel_size": [2, 2],
            "depth_multiplier": 1, "padding": "same", "activation": "linear"}}"#,
        &[uniform(24, &[2, 2, 3, 1], -0.5, 0.5), uniform(25, &[1, 1, 3, 2], -0.5, 0.5), uniform(26, &[2], -0.5, 0.5)],
        &img,
        true,
    ));
    run(fd(
        "Conv3D",
        r#"{"class_name": "Conv3D", "config": {"name": "c", "filters": 2, "kernel_size": [2, 2, 2],
            "padding": "valid", "activation": "linear"}}"#,
        &[uniform(27, &[2, 2, 2, 3, 2], -0.5, 0.5), uniform(28, &[2], -0.5, 0.5)],
        &uniform(29, &[1, 3, 3, 3, 3], -1.0, 1.0),
        true,
    ));
    run(fd(
        "LocallyConnected2D",
        r#"{"class_name": "LocallyConnected2D", "config": {"name": "c", "filters": 2, "kernel_size": [2, 2],
            "implementation": 1, "activation": "linear"}}"#,
        &[uniform(41, &[12, 12, 2], -0.5, 0.5), uniform(42, &[4, 3, 2], -0.5, 0.5)],
        &img,
        true,
    ));
    for act in ["relu6", "hard_sigmoid", "leaky_relu", "exponential"] {
        run(fd(
            &format!("Activation({act})"),
            &format!(r#"{{"class_name": "Activation", "config": {{"name": "a", "activation": "{act}"}}}}"#),
            &[],
            &x.scale(1.7),
            true,
        ));
    }
    assert!(failures.is_empty(), "not differentiable yet:\n{}", failures.join("\n"));
}

#[test]
fn recurrent_and_embedding_layers_are_differentiable() {
    let seq = uniform(30, &[2, 3, 4], -1.0, 1.0);
    let mut failures = Vec::new();
    let mut run = |r: Result<(), String>| {
        if let Err(e) = r {
            failures.push(e);
        }
    };
    for return_sequences in [false, true] {
        run(fd(
            &format!("LSTM(return_sequences={return_sequences})"),
            &format!(
                r#"{{"class_name": "LSTM", "config": {{"name": "r", "units": 3, "return_sequences": {return_sequences}}}}}"#
            ),
            &[uniform(31, &[4, 12], -0.5, 0.5), uniform(32, &[3, 12], -0.5, 0.5), uniform(33, &[12], -0.3, 0.3)],
            &seq,
            true,
        ));
    }
    run(fd(
        "GRU",
        r#"{"class_name": "GRU", "config": {"name": "r", "units": 3, "reset_after": true}}"#,
        &[uniform(34, &[4, 9], -0.5, 0.5), uniform(35, &[3, 9], -0.5, 0.5), uniform(36, &[2, 9], -0.3, 0.3)],
        &seq,
        true,
    ));
    run(fd(
        "SimpleRNN",
        r#"{"class_name": "SimpleRNN", "config": {"name": "r", "units": 3}}"#,
        &[uniform(37, &[4, 3], -0.5, 0.5), uniform(38, &[3, 3], -0.5, 0.5), uniform(39, &[3], -0.3, 0.3)],
        &seq,
        true,
    ));
    run(fd(
        "Bidirectional(LSTM)",
        r#"{"class_name": "Bidirectional", "config": {"name": "b", "merge_mode": "concat",
            "layer": {"class_name": "LSTM", "config": {"name": "f", "units": 2, "return_sequences": true}}}}"#,
        &[
            uniform(50, &[4, 8], -0.5, 0.5),
            uniform(51, &[2, 8], -0.5, 0.5),
            uniform(52, &[8], -0.3, 0.3),
            uniform(53, &[4, 8], -0.5, 0.5),
            uniform(54, &[2, 8], -0.5, 0.5),
            uniform(55, &[8], -0.3, 0.3),
        ],
        &seq,
        true,
    ));
    run(fd(
        "TimeDistributed(Dense)",
        r#"{"class_name": "TimeDistributed", "config": {"name": "t",
            "layer": {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "tanh"}}}}"#,
        &[uniform(56, &[4, 2], -0.5, 0.5), uniform(57, &[2], -0.3, 0.3)],
        &seq,
        true,
    ));
    run(fd(
        "ConvLSTM1D",
        r#"{"class_name": "ConvLSTM1D", "config": {"name": "c", "filters": 2, "kernel_size": [2], "padding": "same"}}"#,
        &[uniform(58, &[2, 2, 8], -0.5, 0.5), uniform(59, &[2, 2, 8], -0.5, 0.5), uniform(60, &[8], -0.3, 0.3)],
        &uniform(61, &[1, 3, 4, 2], -1.0, 1.0),
        true,
    ));
    // Ids are not differentiable: only the table gets a gradient (repeated ids accumulate).
    let ids = Tensor::from_vec(&[2, 3], vec![0.0, 4.0, 4.0, 1.0, 2.0, 0.0]).unwrap();
    run(fd(
        "Embedding",
        r#"{"class_name": "Embedding", "config": {"name": "e", "input_dim": 5, "output_dim": 3}}"#,
        &[uniform(40, &[5, 3], -1.0, 1.0)],
        &ids,
        false,
    ));
    assert!(failures.is_empty(), "not differentiable yet:\n{}", failures.join("\n"));
}

#[test]
fn untracked_inference_is_unchanged() {
    // The same layer on plain tensors: nothing tracked, same values as on watched tensors.
    let cfg = layer(r#"{"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "gelu"}}"#);
    let (k, b, x) = (uniform(2, &[4, 3], -0.8, 0.8), uniform(3, &[3], -0.5, 0.5), uniform(1, &[2, 4], -1.0, 1.0));
    let plain = forward(&cfg, vec![k.clone(), b.clone()], &x);
    assert!(!plain.is_tracked());
    let tape = Tape::new();
    let tracked = forward(&cfg, vec![tape.watch(&k), tape.watch(&b)], &x);
    assert!(tracked.is_tracked());
    assert_eq!(plain, tracked);
}

#[test]
fn known_graph_cuts_are_detected() {
    // LocallyConnected2D implementations 2 and 3 rearrange the stored kernel in a raw loop
    // (`conv.rs` `LocalKernel::convert`), so the kernel gets no gradient; the input still does.
    let img = uniform(4, &[2, 5, 4, 3], -1.0, 1.0);
    let cfg = r#"{"class_name": "LocallyConnected2D", "config": {"name": "c", "filters": 2, "kernel_size": [2, 2],
        "implementation": 2, "activation": "linear"}}"#;
    let e = fd(
        "LocallyConnected2D(implementation=2)",
        cfg,
        &[uniform(43, &[5, 4, 3, 4, 3, 2], -0.5, 0.5), uniform(44, &[4, 3, 2], -0.5, 0.5)],
        &img,
        true,
    )
    .unwrap_err();
    assert_eq!(e, "LocallyConnected2D(implementation=2): no gradient for weight 0 (graph cut)");
}
