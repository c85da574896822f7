//! Inputs found by the `model_build` / `model_file` fuzz targets (fuzz/README.md), reduced to
//! the layer config, weight shapes and input shape that triggered them. Each must be a clear
//! error naming the layer and the problem, never a panic, hang or huge allocation.

use strata_format::config::{ConfigDialect, LayerConfig};
use strata_format::json::Json;
use strata_layers::cfg::{Meta, inner_layer_json};
use strata_layers::{BuildCtx, Layer, build_layer};
use strata_tensor::Tensor;

fn layer(json: &str) -> LayerConfig {
    let v = Json::parse(json, &Default::default()).expect("test json");
    inner_layer_json(&Meta { name: "t".into(), class: "t".into() }, &v, "layer").expect("layer entry")
}

fn ramp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect()).unwrap()
}

fn build(json: &str, weights: &[&[usize]]) -> Result<Box<dyn Layer>, String> {
    let w = weights.iter().map(|s| ramp(s)).collect();
    match build_layer(&layer(json), w, &BuildCtx::new(ConfigDialect::Keras3)) {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err("not supported".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `timeout-221e1e2c`: BatchNormalization with weights of different ranks broadcast them against
/// each other and against the input (a 28M-element product from a 729-element input).
#[test]
fn batch_norm_weights_must_have_one_shape() {
    let json = r#"{"class_name": "BatchNormalization", "config": {"name": "bn"}}"#;
    let err = build(json, &[&[9, 6, 9, 1, 1], &[9, 9, 9], &[9, 9, 9], &[9, 9, 9]]).err().expect("refused");
    assert_eq!(
        err,
        "layer `bn`: config key `axis` needs weights of one shape (the sizes of the normalized axes), but the file \
         binds shapes [[9, 6, 9, 1, 1], [9, 9, 9], [9, 9, 9], [9, 9, 9]] (bad: [9, 6, 9, 1, 1]); fix the model config"
    );
}

#[test]
fn batch_norm_input_channels_must_match_the_weights() {
    let json = r#"{"class_name": "BatchNormalization", "config": {"name": "bn"}}"#;
    let bn = build(json, &[&[3], &[3], &[3], &[3]]).expect("builds");
    let err = bn.forward(&[ramp(&[2, 1])], false).err().expect("refused").to_string();
    assert_eq!(
        err,
        "layer `bn`: config key `axis` is -1: the input of shape [2, 1] must have 3 channels there (the weights' \
         length); fix the model config"
    );
    assert_eq!(bn.forward(&[ramp(&[2, 3])], false).expect("runs")[0].shape(), [2, 3]);
}

/// Review of the same pattern as BatchNormalization: stored statistics broadcast against the
/// input could multiply its size (`[1, 4096]` statistics on a `[4096, 1]` input: 16M elements).
#[test]
fn normalization_statistics_must_broadcast_into_the_input() {
    let json = r#"{"class_name": "Normalization", "config": {"name": "norm"}}"#;
    let n = build(json, &[&[1, 8], &[1, 8], &[]]).expect("builds");
    let err = n.forward(&[ramp(&[8, 1])], false).err().expect("refused").to_string();
    assert_eq!(
        err,
        "layer `norm`: config key `mean` has shape [1, 8], which does not broadcast to the input shape [8, 1]; the \
         stored statistics do not fit this input; fix the model config"
    );
    assert_eq!(n.forward(&[ramp(&[3, 8])], false).expect("runs")[0].shape(), [3, 8]);
}
