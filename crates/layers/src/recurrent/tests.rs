use super::*;
use crate::layers::build_layer;
use strata_format::json::JsonLimits;

fn cfg(class: &str, config: &str) -> LayerConfig {
    let text = format!(r#"{{"class_name": "{class}", "config": {config}}}"#);
    let json = Json::parse(text, &JsonLimits::default()).expect("test json");
    inner_layer_json(&Meta { name: "t".into(), class: "T".into() }, &json, "layer").expect("layer config")
}

/// Deterministic pseudo-random values in [-1, 1).
fn det(shape: &[usize], seed: u32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    let v = (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((s >> 8) % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    Tensor::from_vec(shape, v).expect("det tensor")
}

fn run(layer: &LayerConfig, w: Vec<Tensor>, dialect: ConfigDialect, x: &Tensor) -> Vec<Tensor> {
    let ctx = BuildCtx::new(dialect);
    let l = build_layer(layer, w, &ctx).expect("build").expect("supported");
    l.forward(std::slice::from_ref(x), false).expect("forward")
}

/// Inverse of the CuDNN input-kernel transform (tf-keras `transpose_input(from_cudnn=False)`:
/// `k.T.reshape(k.shape, order="C")` per gate): `out[i, j] = k[p % rows, p / rows]`, `p = i * u + j`.
fn to_cudnn_input(k: &Tensor, gates: usize) -> Tensor {
    let [rows, cols] = k.shape() else { panic!("2-D") };
    let (rows, u) = (*rows, *cols / gates);
    let parts: Vec<Tensor> = (0..gates)
        .map(|g| {
            let kg = k.slice_axis(1, g * u, (g + 1) * u).unwrap();
            let mut out = vec![0f32; rows * u];
            for i in 0..rows {
                for j in 0..u {
                    let p = i * u + j;
                    out[i * u + j] = kg.get(&[p % rows, p / rows]).unwrap();
                }
            }
            Tensor::from_vec(&[rows, u], out).unwrap()
        })
        .collect();
    strata_tensor::concat(&parts.iter().collect::<Vec<_>>(), 1).unwrap()
}

#[test]
fn cudnn_input_kernel_inverts_the_keras_layout() {
    let k = det(&[3, 8], 1);
    let back = cell::cudnn_input_kernel(&to_cudnn_input(&k, 4), 4).unwrap();
    assert_eq!(back.as_slice(), k.as_slice());
    // and it is not the identity for a non-square gate block
    assert_ne!(to_cudnn_input(&k, 4).as_slice(), k.as_slice());
}

#[test]
fn cudnn_lstm_matches_the_converted_lstm() {
    let (f, u) = (3, 2);
    let (k, r, b) = (det(&[f, 4 * u], 2), det(&[u, 4 * u], 3), det(&[4 * u], 4));
    let x = det(&[2, 5, f], 5);
    let plain = run(
        &cfg("LSTM", r#"{"name": "l", "units": 2, "return_sequences": true}"#),
        vec![k.clone(), r.clone(), b.clone()],
        ConfigDialect::TfKeras,
        &x,
    );
    // CuDNN layout: kernels per gate in cuDNN order, biases split into input and recurrent halves.
    let half = b.scale(0.5);
    let cb = strata_tensor::concat(&[&half, &half], 0).unwrap();
    let cr = cell::cudnn_recurrent_kernel(&r, 4).unwrap(); // the per-gate transpose is its own inverse
    let cudnn = run(
        &cfg("CuDNNLSTM", r#"{"name": "c", "units": 2, "return_sequences": true}"#),
        vec![to_cudnn_input(&k, 4), cr, cb],
        ConfigDialect::TfKeras,
        &x,
    );
    assert!(plain[0].all_close(&cudnn[0], 1e-6, 1e-6), "{:?} vs {:?}", plain[0], cudnn[0]);
}

#[test]
fn cudnn_gru_matches_the_converted_gru() {
    let (f, u) = (4, 3);
    let (k, r, b) = (det(&[f, 3 * u], 6), det(&[u, 3 * u], 7), det(&[2, 3 * u], 8));
    let x = det(&[2, 5, f], 9);
    let plain = run(
        &cfg("GRU", r#"{"name": "g", "units": 3, "reset_after": true}"#),
        vec![k.clone(), r.clone(), b.clone()],
        ConfigDialect::TfKeras,
        &x,
    );
    let cudnn = run(
        &cfg("CuDNNGRU", r#"{"name": "c", "units": 3}"#),
        vec![to_cudnn_input(&k, 3), cell::cudnn_recurrent_kernel(&r, 3).unwrap(), b.reshape(&[6 * u]).unwrap()],
        ConfigDialect::TfKeras,
        &x,
    );
    assert!(plain[0].all_close(&cudnn[0], 1e-6, 1e-6));
}

#[test]
fn gru_reset_after_is_inferred_from_the_bias_shape() {
    let (f, u) = (2, 2);
    let (k, r) = (det(&[f, 3 * u], 10), det(&[u, 3 * u], 11));
    let x = det(&[1, 3, f], 12);
    let b2 = det(&[2, 3 * u], 13);
    // No `reset_after` key and a Keras 2 dialect (default false): the (2, 3u) bias says true.
    let inferred = run(
        &cfg("GRU", r#"{"name": "g", "units": 2}"#),
        vec![k.clone(), r.clone(), b2.clone()],
        ConfigDialect::Keras2,
        &x,
    );
    let explicit = run(
        &cfg("GRU", r#"{"name": "g", "units": 2, "reset_after": true}"#),
        vec![k.clone(), r.clone(), b2],
        ConfigDialect::Keras2,
        &x,
    );
    assert_eq!(inferred[0].as_slice(), explicit[0].as_slice());
    // and a flat bias means reset_after false, which computes something else
    let flat = det(&[3 * u], 14);
    let other = run(&cfg("GRU", r#"{"name": "g", "units": 2}"#), vec![k, r, flat], ConfigDialect::Keras2, &x);
    assert_ne!(other[0].as_slice(), explicit[0].as_slice());
}

#[test]
fn gru_default_reset_after_follows_the_dialect() {
    assert!(!gru_reset_after_default(&BuildCtx::new(ConfigDialect::Keras2)));
    assert!(!gru_reset_after_default(&BuildCtx::new(ConfigDialect::Keras1)));
    assert!(gru_reset_after_default(&BuildCtx::new(ConfigDialect::TfKeras)));
    assert!(gru_reset_after_default(&BuildCtx::new(ConfigDialect::Keras3)));
    let with = |d, v| BuildCtx { dialect: d, backend: None, keras_version: Some(v) };
    assert!(!gru_reset_after_default(&with(ConfigDialect::TfKeras, "2.2.4-tf")));
    assert!(gru_reset_after_default(&with(ConfigDialect::Keras2, "2.4.0-tf")));
    assert!(!gru_reset_after_default(&with(ConfigDialect::Keras2, "2.3.1")));
    assert!(gru_reset_after_default(&with(ConfigDialect::TfKeras, "2.15.0")));
}

#[test]
fn masked_steps_keep_state_and_repeat_the_output() {
    let (f, u) = (2, 3);
    let layer = cfg("SimpleRNN", r#"{"name": "s", "units": 3, "return_sequences": true}"#);
    let ctx = BuildCtx::new(ConfigDialect::Keras3);
    let l = build_layer(&layer, vec![det(&[f, u], 15), det(&[u, u], 16), det(&[u], 17)], &ctx).unwrap().unwrap();
    let x = det(&[1, 4, f], 18);
    let mask = Tensor::from_vec(&[1, 4], vec![1.0, 0.0, 1.0, 0.0]).unwrap();
    let (y, masks) = l.forward_masked(std::slice::from_ref(&x), &[Some(mask.clone())], false).unwrap();
    let y = &y[0];
    let step = |t: usize| y.slice_axis(1, t, t + 1).unwrap().into_vec();
    assert_eq!(step(1), step(0));
    assert_eq!(step(3), step(2));
    assert_ne!(step(2), step(0));
    // Step 2 equals running the unmasked steps [0, 2] alone.
    let x02 = strata_tensor::concat(&[&x.slice_axis(1, 0, 1).unwrap(), &x.slice_axis(1, 2, 3).unwrap()], 1).unwrap();
    let y02 = l.forward(&[x02], false).unwrap();
    assert!(Tensor::from_vec(&[u], step(2)).unwrap().all_close(
        &y02[0].slice_axis(1, 1, 2).unwrap().reshape(&[u]).unwrap(),
        1e-6,
        1e-6
    ));
    assert_eq!(masks[0].as_ref().map(Tensor::as_slice), Some(mask.as_slice()));
}

#[test]
fn embedding_rejects_out_of_range_ids() {
    let layer = cfg("Embedding", r#"{"name": "emb", "input_dim": 3, "output_dim": 2, "mask_zero": true}"#);
    let ctx = BuildCtx::new(ConfigDialect::Keras3);
    let l = build_layer(&layer, vec![det(&[3, 2], 19)], &ctx).unwrap().unwrap();
    let ids = Tensor::from_vec(&[1, 3], vec![1.0, 3.0, 0.0]).unwrap();
    let err = l.forward(&[ids], false).expect_err("id 3 is out of range");
    assert_eq!(
        err.to_string(),
        "layer `emb`: config key `input_dim` is 3 but input position 1 holds id 3; ids must be integers in 0..3 \
         (check the tokenizer or raise input_dim); fix the model config"
    );
    let ids = Tensor::from_vec(&[1, 3], vec![1.0, 2.0, 0.0]).unwrap();
    let (_, masks) = l.forward_masked(&[ids], &[None], false).unwrap();
    assert_eq!(masks[0].as_ref().map(Tensor::as_slice), Some(&[1.0, 1.0, 0.0][..]));
}

#[test]
fn bidirectional_weight_count_is_checked() {
    let layer =
        cfg("Bidirectional", r#"{"name": "bi", "layer": {"class_name": "LSTM", "config": {"name": "l", "units": 2}}}"#);
    let ctx = BuildCtx::new(ConfigDialect::Keras3);
    let err = build_layer(&layer, vec![det(&[3, 8], 1)], &ctx).err().expect("too few weights");
    assert_eq!(
        err.to_string(),
        "layer `bi` expects 6 weight tensor(s) but the file binds 1; the weights do not match the config"
    );
}

#[test]
fn unsupported_cells_are_named() {
    let layer = cfg("RNN", r#"{"name": "r", "cell": {"class_name": "MinimalRNNCell", "config": {"units": 2}}}"#);
    let ctx = BuildCtx::new(ConfigDialect::Keras3);
    let err =
        build_layer(&layer, vec![det(&[2, 2], 1), det(&[2, 2], 2), det(&[2], 3)], &ctx).err().expect("custom cell");
    assert!(err.to_string().contains("holds a `MinimalRNNCell` cell"), "{err}");
}

#[test]
fn keras3_keyword_initial_state_is_refused() {
    let kt = |layer: &str, shape: &str| {
        format!(
            r#"{{"class_name": "__keras_tensor__", "config": {{"shape": {shape}, "dtype": "float32", "keras_history": ["{layer}", 0, 0]}}}}"#
        )
    };
    let text = format!(
        r#"{{"module": "keras", "class_name": "Functional", "config": {{"name": "f", "layers": [
          {{"module": "keras.layers", "class_name": "InputLayer", "name": "x", "config": {{"batch_shape": [null, 5, 2], "name": "x"}}, "inbound_nodes": []}},
          {{"module": "keras.layers", "class_name": "InputLayer", "name": "h", "config": {{"batch_shape": [null, 3], "name": "h"}}, "inbound_nodes": []}},
          {{"module": "keras.layers", "class_name": "GRU", "name": "g", "config": {{"name": "g", "units": 3}},
            "inbound_nodes": [{{"args": [{x}], "kwargs": {{"initial_state": [{h}]}}}}]}}],
          "input_layers": [["x", 0, 0], ["h", 0, 0]], "output_layers": [["g", 0, 0]]}}}}"#,
        x = kt("x", "[null, 5, 2]"),
        h = kt("h", "[null, 3]")
    );
    let json = Json::parse(text, &JsonLimits::default()).expect("test json");
    let model = strata_format::config::ModelConfig::parse(&json).expect("config");
    let g = model.layers.iter().find(|l| l.name == "g").expect("gru");
    let ctx = BuildCtx::new(ConfigDialect::Keras3);
    let w = vec![det(&[2, 9], 1), det(&[3, 9], 2), det(&[2, 9], 3)];
    let err = build_layer(g, w, &ctx).err().expect("keyword initial_state");
    assert_eq!(
        err.to_string(),
        "layer `g`: config key `initial_state` is passed as a keyword tensor in the model graph, which strata does \
         not run yet; call the layer without it; fix the model config"
    );
}

#[test]
fn reduced_precision_rnn_policy_is_refused() {
    let layer = cfg("LSTM", r#"{"name": "l", "units": 2, "dtype": "mixed_float16"}"#);
    let ctx = BuildCtx::new(ConfigDialect::TfKeras);
    let err = build_layer(&layer, vec![det(&[3, 8], 1), det(&[2, 8], 2), det(&[8], 3)], &ctx).err().expect("f16");
    assert!(err.to_string().contains("config key `dtype` is a F16 compute policy"), "{err}");
}

#[test]
fn rank_two_input_is_refused() {
    let layer = cfg("SimpleRNN", r#"{"name": "s", "units": 2}"#);
    let ctx = BuildCtx::new(ConfigDialect::Keras3);
    let l = build_layer(&layer, vec![det(&[3, 2], 1), det(&[2, 2], 2), det(&[2], 3)], &ctx).unwrap().unwrap();
    let err = l.forward(&[det(&[2, 3], 4)], false).expect_err("rank 2");
    let text = err.to_string();
    assert!(text.starts_with("layer `s` (SimpleRNN) failed:") && text.contains("[batch, time, features...]"), "{text}");
}
