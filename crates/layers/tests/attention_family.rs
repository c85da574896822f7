//! The attention family built from config JSON: error messages and structural behaviour that the
//! Keras fixtures cannot cover (TF 1.x op layers, the old tf-keras `causal` key, masked Softmax).

use strata_format::config::{ConfigDialect, ModelConfig};
use strata_format::json::{Json, JsonLimits};
use strata_layers::layers::{BuildCtx, build_layer};
use strata_tensor::Tensor;

/// A tf-keras style Sequential config holding one layer after an InputLayer.
fn model(class: &str, config: &str) -> ModelConfig {
    let text = format!(
        r#"{{"class_name": "Sequential", "config": {{"name": "m", "layers": [
            {{"class_name": "InputLayer", "config": {{"batch_input_shape": [null, 3], "dtype": "float32", "name": "in"}}}},
            {{"class_name": "{class}", "config": {config}}}]}}, "keras_version": "2.15.0", "backend": "tensorflow"}}"#
    );
    let json = Json::parse(text, &JsonLimits::default()).expect("test json");
    ModelConfig::parse(&json).expect("test config")
}

fn build(
    class: &str,
    config: &str,
    w: Vec<Tensor>,
    dialect: ConfigDialect,
) -> strata_layers::Result<Box<dyn strata_layers::Layer>> {
    let m = model(class, config);
    build_layer(&m.layers[1], w, &BuildCtx::new(dialect)).map(|l| l.expect("class is supported"))
}

fn t(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_vec(shape, v.to_vec()).unwrap()
}

#[test]
fn unknown_tf_op_is_named() {
    let m = model("TFOpLambda", r#"{"name": "tf.math.foo", "function": "math.foo"}"#);
    let err = build_layer(&m.layers[1], vec![], &BuildCtx::new(ConfigDialect::Keras2)).err().expect("unmapped op");
    let msg = err.to_string();
    assert!(msg.contains("TFOpLambda `tf.math.foo` is not one strata maps"), "{msg}");
    assert!(msg.contains("tf.math.foo"), "{msg}");
}

#[test]
fn tensorflow_op_layer_uses_constants_and_attrs() {
    let add = build(
        "TensorFlowOpLayer",
        r#"{"name": "AddV2", "node_def": {"name": "AddV2", "op": "AddV2", "input": ["x", "AddV2/y"]}, "constants": {"1": 2.0}}"#,
        vec![],
        ConfigDialect::Keras2,
    )
    .unwrap();
    let x = t(&[1, 3], &[1.0, -1.0, 0.5]);
    let y = add.forward(std::slice::from_ref(&x), false).unwrap();
    assert!(y[0].all_close(&x.add(&Tensor::scalar(2.0)).unwrap(), 0.0, 0.0));

    let mean = build(
        "TensorFlowOpLayer",
        r#"{"name": "Mean", "node_def": {"name": "Mean", "op": "Mean", "input": ["x", "Mean/reduction_indices"],
            "attr": {"keep_dims": {"b": true}}}, "constants": {"1": [1]}}"#,
        vec![],
        ConfigDialect::Keras2,
    )
    .unwrap();
    let y = mean.forward(std::slice::from_ref(&x), false).unwrap();
    assert_eq!(y[0].shape(), &[1, 1]);
    assert!(y[0].all_close(&x.mean(Some(&[1]), true).unwrap(), 1e-7, 1e-7));

    let err = build(
        "TensorFlowOpLayer",
        r#"{"name": "q", "node_def": {"op": "Qr", "input": ["x"]}}"#,
        vec![],
        ConfigDialect::Keras2,
    )
    .err()
    .expect("unmapped op");
    assert!(err.to_string().contains("has op `Qr`"), "{err}");
}

#[test]
fn einsum_dense_refuses_an_equation_that_does_not_fit_its_kernel() {
    let k = Tensor::zeros(&[3, 4]).unwrap();
    let err = build(
        "EinsumDense",
        r#"{"name": "e", "equation": "ab,bcd->acd", "output_shape": [4, 2]}"#,
        vec![k.clone()],
        ConfigDialect::Keras3,
    )
    .err()
    .expect("kernel rank mismatch");
    assert!(err.to_string().contains("gives the kernel 3 axes but the kernel weight has shape [3, 4]"), "{err}");
    let err = build(
        "EinsumDense",
        r#"{"name": "e", "equation": "ab->b", "output_shape": [4]}"#,
        vec![k],
        ConfigDialect::Keras3,
    )
    .err()
    .expect("one operand");
    assert!(err.to_string().contains("needs two operands"), "{err}");
}

#[test]
fn tf_keras_causal_config_key_masks_the_future() {
    // Query 0 may only attend to value 0, so its output is value 0 exactly.
    let att = build("Attention", r#"{"name": "a", "causal": true, "use_scale": false}"#, vec![], ConfigDialect::Keras2)
        .unwrap();
    let q = t(&[1, 2, 2], &[1.0, 0.0, 0.0, 1.0]);
    let v = t(&[1, 2, 2], &[3.0, 4.0, -5.0, 6.0]);
    let y = att.forward(&[q, v], false).unwrap();
    assert_eq!(&y[0].as_slice()[..2], &[3.0, 4.0]);
    assert!(y[0].as_slice()[2] < 3.0 && y[0].as_slice()[2] > -5.0);
}

#[test]
fn masked_softmax_differs_by_dialect_only_on_masked_positions() {
    let x = t(&[1, 3], &[1.0, 2.0, 3.0]);
    let mask = t(&[1, 3], &[1.0, 1.0, 0.0]);
    let k3 = build("Softmax", r#"{"name": "s", "axis": -1}"#, vec![], ConfigDialect::Keras3).unwrap();
    let k2 = build("Softmax", r#"{"name": "s", "axis": -1}"#, vec![], ConfigDialect::Keras2).unwrap();
    let (a, _) = k3.forward_masked(std::slice::from_ref(&x), &[Some(mask.clone())], false).unwrap();
    let (b, _) = k2.forward_masked(std::slice::from_ref(&x), &[Some(mask)], false).unwrap();
    let want = x.slice_axis(-1, 0, 2).unwrap().softmax(-1).unwrap();
    assert!(a[0].slice_axis(-1, 0, 2).unwrap().all_close(&want, 1e-6, 1e-7));
    assert!(b[0].slice_axis(-1, 0, 2).unwrap().all_close(&want, 1e-6, 1e-7));
    assert_eq!(a[0].as_slice()[2], 0.0);
    assert!(b[0].as_slice()[2] < 1e-30);
}
