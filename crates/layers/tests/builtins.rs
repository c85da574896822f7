//! Layer construction from config JSON: typed configs, error messages, structural behaviour.

use strata_format::config::{ConfigDialect, LayerConfig, ModelConfig};
use strata_format::json::{Json, JsonLimits};
use strata_layers::layers::build;
use strata_layers::{BuildCtx, Error, Layer, build_layer, unsupported_layers};
use strata_tensor::Tensor;

/// A Keras 3 Sequential config holding one layer `{class, config}` after an InputLayer.
fn model(class: &str, config: &str) -> ModelConfig {
    let text = format!(
        r#"{{"module": "keras", "class_name": "Sequential", "config": {{"name": "m", "layers": [
            {{"module": "keras.layers", "class_name": "InputLayer", "config": {{"batch_shape": [null, 4], "dtype": "float32", "name": "in"}}}},
            {{"module": "keras.layers", "class_name": "{class}", "config": {config}}}]}}}}"#
    );
    let json = Json::parse(text, &JsonLimits::default()).expect("test json");
    ModelConfig::parse(&json).expect("test config")
}

fn layer(m: &ModelConfig) -> &LayerConfig {
    &m.layers[1]
}

#[test]
fn unknown_class_is_named_with_its_layer() {
    let m = model("Frobnicate", r#"{"name": "frob", "trainable": true}"#);
    let missing = unsupported_layers(&m);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].to_string(), "layer `frob` has class `Frobnicate`, which strata cannot run yet");
    assert!(build(layer(&m), vec![], ConfigDialect::Keras3).unwrap().is_none());
}

#[test]
fn dense_weight_count_is_checked() {
    let m = model("Dense", r#"{"name": "d", "units": 2, "use_bias": true, "activation": "relu"}"#);
    let k = Tensor::zeros(&[4, 2]).unwrap();
    let err = build(layer(&m), vec![k], ConfigDialect::Keras3).expect_err("bias missing");
    assert!(matches!(err, Error::WeightCount { expected: 2, got: 1, .. }));
    assert_eq!(
        err.to_string(),
        "layer `d` expects 2 weight tensor(s) but the file binds 1; the weights do not match the config"
    );
}

#[test]
fn unknown_activation_is_reported() {
    let m = model("Activation", r#"{"name": "a", "activation": "mish_v9"}"#);
    let err = build(layer(&m), vec![], ConfigDialect::Keras3).expect_err("unknown activation");
    assert_eq!(
        err.to_string(),
        "layer `a`: config key `activation` names `mish_v9`, which strata does not implement; register a Rust function under that name (Registry::activation); fix the model config"
    );
}

#[test]
fn unimplemented_upsampling_interpolation_is_refused_by_name() {
    let m = model("UpSampling2D", r#"{"name": "up", "size": [2, 2], "interpolation": "bicubic"}"#);
    let err = build_layer(layer(&m), vec![], &BuildCtx::new(ConfigDialect::Keras3)).err().expect("bicubic");
    assert!(
        err.to_string().contains("`interpolation` is `bicubic`; strata implements `nearest` and `bilinear` only"),
        "{err}"
    );
}

#[test]
fn conv2d_with_identity_kernel_returns_its_input() {
    let m =
        model("Conv2D", r#"{"name": "c", "filters": 2, "kernel_size": [1, 1], "padding": "same", "use_bias": false}"#);
    let mut k = vec![0.0f32; 4];
    k[0] = 1.0; // in 0 -> out 0
    k[3] = 1.0; // in 1 -> out 1
    let kernel = Tensor::from_vec(&[1, 1, 2, 2], k).unwrap();
    let ctx = strata_layers::layers::BuildCtx::new(ConfigDialect::Keras3);
    let l = strata_layers::layers::build_layer(layer(&m), vec![kernel], &ctx).unwrap().unwrap();
    let x = Tensor::from_vec(&[1, 3, 3, 2], (0..18).map(|v| v as f32 * 0.5 - 3.0).collect()).unwrap();
    let y = l.forward(std::slice::from_ref(&x), false).unwrap();
    assert_eq!(y[0].shape(), x.shape());
    assert_eq!(y[0].as_slice(), x.as_slice());
}

#[test]
fn global_max_pool_picks_the_channel_maximum() {
    let m = model("GlobalMaxPooling2D", r#"{"name": "g", "keepdims": false}"#);
    let l = build_layer(layer(&m), vec![], &BuildCtx::new(ConfigDialect::Keras3)).unwrap().unwrap();
    let data: Vec<f32> = (0..8).map(|v| ((v * 37) % 11) as f32).collect();
    let x = Tensor::from_vec(&[1, 2, 2, 2], data.clone()).unwrap();
    let y = l.forward(&[x], false).unwrap();
    let want0 = data.iter().step_by(2).cloned().fold(f32::MIN, f32::max);
    let want1 = data.iter().skip(1).step_by(2).cloned().fold(f32::MIN, f32::max);
    assert_eq!(y[0].shape(), &[1, 2]);
    assert_eq!(y[0].as_slice(), &[want0, want1]);
}

#[test]
fn embedding_looks_rows_up() {
    let m = model("Embedding", r#"{"name": "e", "input_dim": 3, "output_dim": 2}"#);
    let table = Tensor::from_vec(&[3, 2], vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0]).unwrap();
    // Embedding lives in the recurrent family (it makes masks), so it builds through build_layer.
    let ctx = strata_layers::BuildCtx::new(ConfigDialect::Keras3);
    let l = strata_layers::build_layer(layer(&m), vec![table], &ctx).unwrap().unwrap();
    let ids = Tensor::from_vec(&[1, 2], vec![2.0, 0.0]).unwrap();
    let y = l.forward(&[ids], false).unwrap();
    assert_eq!(y[0].shape(), &[1, 2, 2]);
    assert_eq!(y[0].as_slice(), &[20.0, 21.0, 0.0, 1.0]);
}

#[test]
fn subtract_needs_exactly_two_inputs() {
    let m = model("Subtract", r#"{"name": "s"}"#);
    let l = build(layer(&m), vec![], ConfigDialect::Keras3).unwrap().unwrap();
    let x = Tensor::zeros(&[1, 2]).unwrap();
    let err = l.forward(&[x.clone(), x.clone(), x], false).expect_err("three inputs");
    assert_eq!(err.to_string(), "layer `s` (Subtract) takes 2 input(s) but got 3; check the model graph");
}
