//! Property tests: small random configs of the conv, pooling, reshape and recurrent layers build,
//! run without panicking, and give the output shape Keras's `compute_output_shape` gives
//! (formulas from keras/src/ops/operation_utils.py: `compute_conv_output_shape`,
//! `compute_pooling_output_shape`, and keras/src/utils/conv_utils.py / `deconv_output_length`
//! for transposed convolutions). Shapes only, not numbers.

use proptest::prelude::*;
use strata_format::config::{ConfigDialect, LayerConfig};
use strata_format::json::Json;
use strata_layers::cfg::{Meta, inner_layer_json};
use strata_layers::{BuildCtx, build_layer};
use strata_tensor::Tensor;

fn layer(class: &str, config: &str) -> LayerConfig {
    let text = format!(r#"{{"class_name": "{class}", "config": {{"name": "p", {config}}}}}"#);
    let v = Json::parse(&text, &Default::default()).expect("test json");
    inner_layer_json(&Meta { name: "p".into(), class: class.into() }, &v, "layer").expect("layer entry")
}

fn ramp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| ((i % 5) as f32 - 2.0) * 0.1).collect()).unwrap()
}

/// Builds and runs the layer; `Err` with the message when either fails.
fn run(class: &str, config: &str, weights: &[Vec<usize>], input: &[usize]) -> Result<Vec<usize>, String> {
    let w = weights.iter().map(|s| ramp(s)).collect();
    let built = build_layer(&layer(class, config), w, &BuildCtx::new(ConfigDialect::Keras3))
        .map_err(|e| e.to_string())?
        .ok_or("not supported")?;
    let out = built.forward(&[ramp(input)], false).map_err(|e| e.to_string())?;
    Ok(out[0].shape().to_vec())
}

fn dilated(k: usize, d: usize) -> usize {
    k + (k - 1) * (d - 1)
}

/// `compute_conv_output_shape` for one spatial axis (`None`: Keras would give a non-positive size).
fn conv_len(len: usize, k: usize, stride: usize, dilation: usize, padding: &str) -> Option<usize> {
    let kd = dilated(k, dilation);
    match padding {
        "valid" => (len >= kd).then(|| (len - kd) / stride + 1),
        // causal pads `dilation * (k - 1)` on the left, then runs valid
        _ => (len >= 1).then(|| (len - 1) / stride + 1),
    }
}

/// `compute_pooling_output_shape` for one spatial axis.
fn pool_len(len: usize, pool: usize, stride: usize, padding: &str) -> Option<usize> {
    match padding {
        "valid" => (len >= pool).then(|| (len - pool) / stride + 1),
        _ => (len >= 1).then(|| (len - 1) / stride + 1),
    }
}

/// `deconv_output_length` (conv_utils) without `output_padding`.
fn deconv_len(len: usize, k: usize, stride: usize, dilation: usize, padding: &str) -> usize {
    let kd = dilated(k, dilation);
    match padding {
        "valid" => len * stride + kd.saturating_sub(stride),
        _ => len * stride,
    }
}

/// `deconv_output_length` with `output_padding`.
fn deconv_len_op(len: usize, k: usize, stride: usize, dilation: usize, padding: &str, op: usize) -> usize {
    let kd = dilated(k, dilation);
    let pad = if padding == "valid" { 0 } else { kd / 2 };
    ((len - 1) * stride + kd + op).saturating_sub(2 * pad)
}

fn padding1() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("valid"), Just("same"), Just("causal")]
}

fn padding2() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("valid"), Just("same")]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn conv1d_shape(b in 1usize..3, len in 1usize..12, c in 1usize..4, f in 1usize..4, k in 1usize..5,
                    s in 1usize..4, d in 1usize..3, pad in padding1()) {
        // Keras refuses strides > 1 together with dilation > 1
        let d = if s > 1 { 1 } else { d };
        let cfg = format!(r#""filters": {f}, "kernel_size": [{k}], "strides": [{s}], "dilation_rate": [{d}], "padding": "{pad}""#);
        let got = run("Conv1D", &cfg, &[vec![k, c, f], vec![f]], &[b, len, c]);
        match conv_len(len, k, s, d, pad) {
            Some(o) => prop_assert_eq!(got, Ok(vec![b, o, f])),
            None => prop_assert!(got.is_err(), "{cfg} on {len}: {got:?}"),
        }
    }

    #[test]
    fn conv2d_shape(h in 1usize..9, w in 1usize..9, c in 1usize..3, f in 1usize..3, kh in 1usize..4, kw in 1usize..4,
                    sh in 1usize..3, sw in 1usize..3, d in 1usize..3, pad in padding2()) {
        let d = if sh > 1 || sw > 1 { 1 } else { d };
        let cfg = format!(r#""filters": {f}, "kernel_size": [{kh}, {kw}], "strides": [{sh}, {sw}], "dilation_rate": [{d}, {d}], "padding": "{pad}""#);
        let got = run("Conv2D", &cfg, &[vec![kh, kw, c, f], vec![f]], &[2, h, w, c]);
        match (conv_len(h, kh, sh, d, pad), conv_len(w, kw, sw, d, pad)) {
            (Some(oh), Some(ow)) => prop_assert_eq!(got, Ok(vec![2, oh, ow, f])),
            _ => prop_assert!(got.is_err(), "{cfg} on {h}x{w}: {got:?}"),
        }
    }

    #[test]
    fn conv_transpose_shape(len in 1usize..8, w in 1usize..6, c in 1usize..3, f in 1usize..3, k in 1usize..5,
                            s in 1usize..4, pad in padding2(), two_d in any::<bool>(), op in proptest::option::of(0usize..3)) {
        // Keras requires output_padding < stride
        let op = op.filter(|&o| o < s);
        let op_json = op.map(|o| if two_d { format!("[{o}, {o}]") } else { format!("[{o}]") }).unwrap_or("null".into());
        let out = |l: usize| match op {
            Some(o) => deconv_len_op(l, k, s, 1, pad, o),
            None => deconv_len(l, k, s, 1, pad),
        };
        // With output_padding, Keras's formula can give a length that TensorFlow then refuses to
        // run (convolving the output back does not give the input length: `conv2d_backprop_input`'s
        // check) or an empty output; strata refuses those too (an error, never a panic).
        let runs = |l: usize| out(l) > 0 && (op.is_none() || conv_len(out(l), k, s, 1, pad) == Some(l));
        if two_d {
            let cfg = format!(r#""filters": {f}, "kernel_size": [{k}, {k}], "strides": [{s}, {s}], "padding": "{pad}", "output_padding": {op_json}"#);
            let got = run("Conv2DTranspose", &cfg, &[vec![k, k, f, c], vec![f]], &[2, len, w, c]);
            if !runs(len) || !runs(w) {
                prop_assert!(got.is_err(), "{cfg}: {got:?}");
            } else {
                prop_assert_eq!(got, Ok(vec![2, out(len), out(w), f]), "{}", cfg);
            }
        } else {
            let cfg = format!(r#""filters": {f}, "kernel_size": [{k}], "strides": [{s}], "padding": "{pad}", "output_padding": {op_json}"#);
            let got = run("Conv1DTranspose", &cfg, &[vec![k, f, c], vec![f]], &[2, len, c]);
            if !runs(len) {
                prop_assert!(got.is_err(), "{cfg}: {got:?}");
            } else {
                prop_assert_eq!(got, Ok(vec![2, out(len), f]), "{}", cfg);
            }
        }
    }

    #[test]
    fn pooling_shape(h in 1usize..10, w in 1usize..10, c in 1usize..3, p in 1usize..4, s in proptest::option::of(1usize..4),
                     pad in padding2(), max in any::<bool>(), two_d in any::<bool>()) {
        let stride = s.unwrap_or(p);
        let s_json = s.map(|v| if two_d { format!("[{v}, {v}]") } else { format!("[{v}]") }).unwrap_or("null".into());
        let kind = if max { "Max" } else { "Average" };
        if two_d {
            let cfg = format!(r#""pool_size": [{p}, {p}], "strides": {s_json}, "padding": "{pad}""#);
            let got = run(&format!("{kind}Pooling2D"), &cfg, &[], &[2, h, w, c]);
            match (pool_len(h, p, stride, pad), pool_len(w, p, stride, pad)) {
                (Some(oh), Some(ow)) => prop_assert_eq!(got, Ok(vec![2, oh, ow, c]), "{}", cfg),
                _ => prop_assert!(got.is_err(), "{cfg} on {h}x{w}: {got:?}"),
            }
        } else {
            let cfg = format!(r#""pool_size": [{p}], "strides": {s_json}, "padding": "{pad}""#);
            let got = run(&format!("{kind}Pooling1D"), &cfg, &[], &[2, h, c]);
            match pool_len(h, p, stride, pad) {
                Some(o) => prop_assert_eq!(got, Ok(vec![2, o, c]), "{}", cfg),
                None => prop_assert!(got.is_err(), "{cfg} on {h}: {got:?}"),
            }
        }
    }

    #[test]
    fn reshape_shape(dims in proptest::collection::vec(1usize..4, 1..4), infer in proptest::option::of(0usize..3),
                     extra in 1usize..3) {
        let n: usize = dims.iter().product();
        let mut target: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
        let infer = infer.filter(|&i| i < target.len());
        if let Some(i) = infer {
            target[i] = -1;
        }
        let cfg = format!(r#""target_shape": {target:?}"#);
        prop_assert_eq!(run("Reshape", &cfg, &[], &[2, n]), Ok([vec![2], dims.clone()].concat()));
        // an element count that does not fit the target is an error, never a panic
        let got = run("Reshape", &cfg, &[], &[2, n * extra + 1]);
        let fits = infer.is_some() && (n * extra + 1) % (n / dims[infer.unwrap_or(0)]) == 0;
        if !fits {
            prop_assert!(got.is_err(), "{cfg} on {}: {got:?}", n * extra + 1);
        }
    }

    #[test]
    fn recurrent_shape(b in 1usize..3, t in 1usize..5, i in 1usize..4, u in 1usize..4, kind in 0usize..3,
                       seq in any::<bool>(), back in any::<bool>()) {
        let (class, gates, bias) = match kind {
            0 => ("SimpleRNN", 1, vec![u]),
            1 => ("LSTM", 4, vec![4 * u]),
            _ => ("GRU", 3, vec![2, 3 * u]),
        };
        let cfg = format!(r#""units": {u}, "return_sequences": {seq}, "go_backwards": {back}"#);
        let got = run(class, &cfg, &[vec![i, gates * u], vec![u, gates * u], bias], &[b, t, i]);
        let want = if seq { vec![b, t, u] } else { vec![b, u] };
        prop_assert_eq!(got, Ok(want), "{} {}", class, cfg);
    }
}
