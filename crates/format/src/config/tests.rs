//! Structure tests on small hand-written configs (shapes as each Keras version writes them; no
//! numbers that would need to come from Keras).

use super::*;
use crate::json::JsonLimits;

fn j(text: &str) -> Json {
    Json::parse(text, &JsonLimits::default()).unwrap()
}

fn parse(text: &str) -> ModelConfig {
    ModelConfig::parse(&j(text)).unwrap()
}

fn err(text: &str) -> String {
    ModelConfig::parse(&j(text)).unwrap_err().to_string()
}

fn assert_round_trip(text: &str) {
    let doc = j(text);
    let m = ModelConfig::parse(&doc).unwrap();
    assert_eq!(m.to_json(), doc);
    assert_eq!(m.to_json().to_string_python(), doc.to_string_python());
}

fn r(layer: &str, node: usize, tensor: usize) -> TensorRef {
    TensorRef { layer: layer.into(), node_index: node, tensor_index: tensor }
}

const KERAS1_SEQ_MERGE: &str = r#"{"class_name": "Sequential", "keras_version": "1.2.2", "config": [
  {"class_name": "Merge", "config": {"name": "merge_1", "mode": "concat", "concat_axis": -1, "layers": [
     {"class_name": "Sequential", "config": [{"class_name": "Dense", "config": {"name": "dense_1", "output_dim": 4, "init": "glorot_uniform", "batch_input_shape": [null, 3], "input_dtype": "float32", "trainable": true}}]},
     {"class_name": "Sequential", "config": [{"class_name": "Dense", "config": {"name": "dense_2", "output_dim": 4, "init": "glorot_uniform", "batch_input_shape": [null, 5], "input_dtype": "float32", "trainable": false}}]}]}},
  {"class_name": "Dense", "config": {"name": "dense_3", "output_dim": 1, "init": "glorot_uniform", "W_regularizer": null, "trainable": true}}]}"#;

#[test]
fn keras1_bare_list_sequential_with_merge_branches() {
    let m = parse(KERAS1_SEQ_MERGE);
    assert_eq!(m.kind, ModelKind::Sequential);
    assert_eq!(m.source, ConfigDialect::Keras1);
    assert_eq!(m.name, "");
    assert_eq!(m.envelope.keras_version.as_deref(), Some("1.2.2"));
    let names: Vec<_> = m.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["merge_1", "dense_3"]);
    let merge = &m.layers[0];
    assert_eq!(merge.branches.len(), 2);
    assert!(!merge.is_model());
    let b1 = &merge.branches[1];
    assert_eq!(b1.kind, ModelKind::Sequential);
    assert_eq!(b1.layers[0].batch_input_shape(), Some(&j("[null, 5]")));
    assert!(!b1.layers[0].trainable());
    let paths: Vec<_> = m.iter_layers_recursive().map(|(p, _)| p).collect();
    assert_eq!(paths, ["merge_1", "merge_1/0/dense_1", "merge_1/1/dense_2", "dense_3"]);
    assert_round_trip(KERAS1_SEQ_MERGE);
    assert!(m.check_graph().is_empty());
}

const KERAS1_FUNCTIONAL: &str = r#"{"class_name": "Model", "config": {"name": "model_1",
  "layers": [
    {"name": "input_1", "class_name": "InputLayer", "config": {"batch_input_shape": [null, 4], "input_dtype": "float32", "sparse": false, "name": "input_1"}, "inbound_nodes": []},
    {"name": "dense_1", "class_name": "Dense", "config": {"name": "dense_1", "output_dim": 2, "init": "glorot_uniform"}, "inbound_nodes": [[["input_1", 0, 0]]]},
    {"name": "dense_2", "class_name": "Dense", "config": {"name": "dense_2", "output_dim": 2, "init": "glorot_uniform"}, "inbound_nodes": [[["input_1", 0, 0]]]},
    {"name": "merge_1", "class_name": "Merge", "config": {"name": "merge_1", "mode": "sum"}, "inbound_nodes": [[["dense_1", 0, 0], ["dense_2", 0, 0]]]}],
  "input_layers": [["input_1", 0, 0]], "output_layers": [["merge_1", 0, 0]]}}"#;

#[test]
fn keras1_functional_three_element_entries() {
    let m = parse(KERAS1_FUNCTIONAL);
    assert_eq!(m.kind, ModelKind::Functional);
    assert_eq!(m.source, ConfigDialect::Keras1);
    let merge = m.layer("merge_1").unwrap();
    assert!(merge.branches.is_empty());
    let node = &merge.inbound_nodes[0];
    assert_eq!(node.format, NodeFormat::LegacyList);
    assert_eq!(node.inputs, [r("dense_1", 0, 0), r("dense_2", 0, 0)]);
    assert_eq!(node.kwargs, j("{}"));
    assert_eq!(m.inputs, [r("input_1", 0, 0)]);
    assert_eq!(m.outputs, [r("merge_1", 0, 0)]);
    assert!(m.check_graph().is_empty());
    assert_round_trip(KERAS1_FUNCTIONAL);
}

const KERAS2_FUNCTIONAL: &str = r#"{"class_name": "Model", "config": {"name": "model_1",
  "layers": [
    {"name": "input_1", "class_name": "InputLayer", "config": {"batch_input_shape": [null, 4], "dtype": "float32", "sparse": false, "name": "input_1"}, "inbound_nodes": []},
    {"name": "shared", "class_name": "Dense", "config": {"name": "shared", "trainable": true, "units": 4, "kernel_initializer": {"class_name": "VarianceScaling", "config": {"scale": 1.0}}}, "inbound_nodes": [[["input_1", 0, 0, {}]], [["shared", 0, 0, {}]]]},
    {"name": "add", "class_name": "TFOpLambda", "config": {"name": "add", "function": "math.add"}, "inbound_nodes": [["shared", 1, 0, {"y": ["input_1", 0, 0], "name": null}]]},
    {"name": "mul", "class_name": "TFOpLambda", "config": {"name": "mul", "function": "math.multiply"}, "inbound_nodes": [[["_CONSTANT_VALUE", -1, 2.0, {"y": ["add", 0, 0]}]]]},
    {"name": "seq", "class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"class_name": "Dense", "config": {"name": "inner", "units": 2, "batch_input_shape": [null, 4]}}]},
     "inbound_nodes": [[["mul", 0, 0, {}]]]}],
  "input_layers": [["input_1", 0, 0]], "output_layers": [["seq", 1, 0], ["shared", 1, 0]]}, "keras_version": "2.2.4", "backend": "tensorflow"}"#;

#[test]
fn keras2_lists_shared_layers_constants_and_kwarg_tensors() {
    let m = parse(KERAS2_FUNCTIONAL);
    assert_eq!(m.source, ConfigDialect::Keras2);
    assert_eq!(m.kind, ModelKind::Functional);
    assert_eq!(m.envelope.backend.as_deref(), Some("tensorflow"));
    let shared = m.layer("shared").unwrap();
    assert_eq!(shared.inbound_nodes.len(), 2);
    assert_eq!(shared.inbound_nodes[1].inputs, [r("shared", 0, 0)]);
    // A preserved-structure node that is a single entry, with a tensor inside kwargs.
    let add = &m.layer("add").unwrap().inbound_nodes[0];
    assert_eq!(add.inputs, [r("shared", 1, 0)]);
    assert_eq!(add.kwarg_inputs, [r("input_1", 0, 0)]);
    // A constant first argument has no tensor input, only the kwarg tensor.
    let mul = &m.layer("mul").unwrap().inbound_nodes[0];
    assert!(mul.inputs.is_empty());
    assert_eq!(mul.kwarg_inputs, [r("add", 0, 0)]);
    // A nested Sequential in Keras 2 counts its built-in node: outputs refer to node 1.
    let seq = m.layer("seq").unwrap();
    assert!(seq.is_model());
    assert_eq!(m.node_index_base(seq, true), 1);
    assert_eq!(m.node_index_base(seq, false), 1);
    assert!(m.check_graph().is_empty(), "{:?}", m.check_graph());
    assert_round_trip(KERAS2_FUNCTIONAL);
}

#[test]
fn editing_a_legacy_node_patches_only_that_entry() {
    let mut m = parse(KERAS2_FUNCTIONAL);
    let shared = m.layers.iter_mut().find(|l| l.name == "shared").unwrap();
    shared.inbound_nodes[1].inputs[0] = r("input_1", 0, 0);
    shared.inbound_nodes[0].kwargs = j(r#"{"training": false}"#);
    let out = m.to_json();
    assert_eq!(
        out["config"]["layers"][1]["inbound_nodes"].to_string_python(),
        r#"[[["input_1", 0, 0, {"training": false}]], [["input_1", 0, 0, {}]]]"#
    );
    // Everything else is unchanged.
    let mut expected = j(KERAS2_FUNCTIONAL);
    let node = j(r#"[[["input_1", 0, 0, {"training": false}]], [["input_1", 0, 0, {}]]]"#);
    if let Some(layer) = expected
        .get_mut("config")
        .and_then(|c| c.get_mut("layers"))
        .and_then(Json::as_array_mut)
        .and_then(|a| a.get_mut(1))
        .and_then(Json::as_object_mut)
    {
        layer.insert("inbound_nodes", node);
    }
    assert_eq!(out, expected);
}

const KERAS3_DICT_OUTPUTS: &str = r#"{"module": "keras.src.models.functional", "class_name": "Functional", "config": {"name": "func", "trainable": true,
  "layers": [
    {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 3], "dtype": "float32", "sparse": false, "name": "x"}, "registered_name": null, "name": "x", "inbound_nodes": []},
    {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 2], "dtype": "float32", "sparse": false, "name": "y"}, "registered_name": null, "name": "y", "inbound_nodes": []},
    {"module": "keras.src.models.functional", "class_name": "Functional", "config": {"name": "inner", "trainable": true,
        "layers": [
          {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 3], "name": "i"}, "registered_name": null, "name": "i", "inbound_nodes": []},
          {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 3, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float16"}, "registered_name": null}}, "registered_name": null, "build_config": {"input_shape": [null, 3]}, "name": "d",
           "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"shape": [null, 3], "dtype": "float32", "keras_history": ["i", 0, 0]}}], "kwargs": {}}]}],
        "input_layers": ["i", 0, 0], "output_layers": ["d", 0, 0]},
     "registered_name": "Functional", "build_config": {"input_shape": null}, "compile_config": {}, "name": "inner",
     "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"shape": [null, 3], "dtype": "float32", "keras_history": ["x", 0, 0]}}], "kwargs": {"mask": null}}]},
    {"module": "my_pkg", "class_name": "Scale", "config": {"name": "scale", "trainable": false, "dtype": "float32"}, "registered_name": "my_pkg>Scale", "shared_object_id": 139757891404752, "name": "scale",
     "inbound_nodes": [{"args": [[{"class_name": "__keras_tensor__", "config": {"shape": [null, 3], "dtype": "float32", "keras_history": ["inner", 0, 0]}}, {"class_name": "__keras_tensor__", "config": {"shape": [null, 2], "dtype": "float32", "keras_history": ["y", 0, 0]}}]], "kwargs": {"mask": {"class_name": "__keras_tensor__", "config": {"shape": [null, 2], "dtype": "bool", "keras_history": ["y", 0, 0]}}}}]}],
  "input_layers": {"y": ["y", 0, 0], "x": ["x", 0, 0]}, "output_layers": {"b": ["scale", 0, 0], "a": ["inner", 1, 0]}},
  "registered_name": "Functional", "build_config": {"input_shape": null}, "compile_config": {"optimizer": "adam", "loss": "mse"}}"#;

#[test]
fn keras3_dict_io_nested_functional_and_multi_input_nodes() {
    let m = parse(KERAS3_DICT_OUTPUTS);
    assert_eq!(m.source, ConfigDialect::Keras3);
    assert_eq!(m.kind, ModelKind::Functional);
    assert_eq!(m.envelope.module.as_deref(), Some("keras.src.models.functional"));
    assert_eq!(m.envelope.registered_name.as_deref(), Some("Functional"));
    // Flatten order sorts dict keys, as Keras's tree.flatten does.
    assert_eq!(m.inputs, [r("x", 0, 0), r("y", 0, 0)]);
    assert_eq!(m.outputs, [r("inner", 1, 0), r("scale", 0, 0)]);
    let inner = m.layer("inner").unwrap();
    assert!(inner.is_model());
    let nested = inner.nested.as_deref().unwrap();
    assert_eq!(nested.kind, ModelKind::Functional);
    assert_eq!(nested.inputs, [r("i", 0, 0)]);
    assert_eq!(nested.layers[1].dtype(), Some("mixed_float16"));
    // Keras 3: +1 for a nested Functional only in input_layers/output_layers.
    assert_eq!(m.node_index_base(inner, true), 1);
    assert_eq!(m.node_index_base(inner, false), 0);
    let scale = m.layer("scale").unwrap();
    assert_eq!(scale.registered_name.as_deref(), Some("my_pkg>Scale"));
    assert_eq!(scale.module.as_deref(), Some("my_pkg"));
    assert!(!scale.trainable());
    assert_eq!(scale.dtype(), Some("float32"));
    let node = &scale.inbound_nodes[0];
    assert_eq!(node.format, NodeFormat::ArgsKwargs);
    assert_eq!(node.inputs, [r("inner", 0, 0), r("y", 0, 0)]);
    assert_eq!(node.kwarg_inputs, [r("y", 0, 0)]);
    let paths: Vec<_> = m.iter_layers_recursive().map(|(p, _)| p).collect();
    assert_eq!(paths, ["x", "y", "inner", "inner/i", "inner/d", "scale"]);
    assert!(m.check_graph().is_empty(), "{:?}", m.check_graph());
    assert_round_trip(KERAS3_DICT_OUTPUTS);
    let training = TrainingConfig::parse(m.envelope.compile_config.as_ref().unwrap()).unwrap();
    assert_eq!(training.optimizer_class_name(), Some("adam"));
}

#[test]
fn editing_keras3_refs_and_nested_models_round_trips() {
    let mut m = parse(KERAS3_DICT_OUTPUTS);
    m.outputs[0] = r("scale", 0, 0);
    m.layers[3].inbound_nodes[0].inputs[1] = r("x", 0, 0);
    if let Some(nested) = m.layers[2].nested.as_deref_mut() {
        nested.name = "renamed".into();
    }
    let out = m.to_json();
    assert_eq!(out["config"]["output_layers"].to_string_python(), r#"{"b": ["scale", 0, 0], "a": ["scale", 0, 0]}"#);
    assert_eq!(
        out["config"]["layers"][3]["inbound_nodes"][0]["args"][0][1]["config"]["keras_history"].to_string_python(),
        r#"["x", 0, 0]"#
    );
    assert_eq!(out["config"]["layers"][2]["config"]["name"].as_str(), Some("renamed"));
    let again = ModelConfig::parse(&out).unwrap();
    assert_eq!(again.outputs, [r("scale", 0, 0), r("scale", 0, 0)]);
    assert_eq!(again.layers[2].nested.as_ref().unwrap().name, "renamed");
}

#[test]
fn keras3_legacy_h5_hybrid_is_detected() {
    let text = r#"{"class_name": "Sequential", "config": {"name": "seq", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null},
      "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 8], "dtype": "float32", "name": "input_layer"}},
                 {"class_name": "Dense", "config": {"name": "dense", "units": 4}}], "build_input_shape": [null, 8]}}"#;
    let m = parse(text);
    assert_eq!(m.source, ConfigDialect::Keras3LegacyH5);
    assert_eq!(m.kind, ModelKind::Sequential);
    assert_eq!(m.build_input_shape, Some(j("[null, 8]")));
    assert_eq!(m.layers[0].batch_input_shape(), Some(&j("[null, 8]")));
    assert_round_trip(text);
    // The version string decides when it is known.
    let opts = ConfigOptions { keras_version: Some("2.13.1".into()), ..ConfigOptions::default() };
    assert_eq!(ModelConfig::parse_with(&j(text), &opts).unwrap().source, ConfigDialect::TfKeras);
}

#[test]
fn tf_keras_functional_name_and_sequential_input_node() {
    let text = r#"{"class_name": "Functional", "config": {"name": "model", "layers": [
      {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 2], "dtype": "float32", "sparse": false, "ragged": false, "name": "in"}, "name": "in", "inbound_nodes": []},
      {"class_name": "Sequential", "config": {"name": "s", "layers": [
          {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 2], "name": "s_in"}},
          {"class_name": "Dense", "config": {"name": "d", "units": 1}}]},
       "name": "s", "inbound_nodes": [[["in", 0, 0, {}]]]}],
      "input_layers": [["in", 0, 0]], "output_layers": [["s", 1, 0]]}}"#;
    let m = parse(text);
    assert_eq!(m.source, ConfigDialect::TfKeras);
    assert_eq!(m.node_index_base(&m.layers[1], true), 1);
    assert!(m.check_graph().is_empty());
    assert_round_trip(text);
}

#[test]
fn subclassed_models_keep_their_config() {
    let text = r#"{"module": "my_models", "class_name": "MyModel", "config": {"name": "my_model", "trainable": true, "units": 3, "layers": 4}, "registered_name": "my_models>MyModel", "build_config": {"input_shape": [null, 4]}}"#;
    let m = parse(text);
    assert_eq!(m.kind, ModelKind::Subclassed("MyModel".into()));
    assert!(m.layers.is_empty());
    assert_eq!(m.name, "my_model");
    assert_eq!(m.envelope.build_config, Some(j(r#"{"input_shape": [null, 4]}"#)));
    assert_round_trip(text);
}

#[test]
fn check_graph_reports_every_broken_reference() {
    let text = r#"{"class_name": "Functional", "config": {"name": "m", "layers": [
      {"class_name": "InputLayer", "config": {"name": "in"}, "name": "in", "inbound_nodes": []},
      {"class_name": "Dense", "config": {"name": "d"}, "name": "d", "inbound_nodes": [[["nope", 0, 0, {}]], [["in", 3, 0, {}]]]}],
      "input_layers": [["in", 0, 0]], "output_layers": [["d", 2, 0]]}}"#;
    let m = parse(text);
    let problems: Vec<String> = m.check_graph().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "layer `d` (inbound_nodes[0]) in the top-level model reads tensor [\"nope\", 0, 0], but the model has no layer `nope`; the graph is broken (edited config?): fix the name or add the layer",
            "layer `d` (inbound_nodes[1]) in the top-level model reads tensor [\"in\", 3, 0], but layer `in` has 1 call(s) in this model, so valid node indices start at 0 and end before 1; the graph is broken (edited config?)",
            "output_layers in the top-level model reads tensor [\"d\", 2, 0], but layer `d` has 2 call(s) in this model, so valid node indices start at 0 and end before 2; the graph is broken (edited config?)",
        ]
    );
}

#[test]
fn error_messages_name_the_config_path() {
    assert_eq!(
        err("[]"),
        "expected an object at `(root)`, found an array; no Keras version writes this, so the config was edited or is not a Keras model config"
    );
    assert_eq!(
        err(r#"{"class_name": "Sequential"}"#),
        "missing key `config` at `(root)`; every Keras version writes it, so the config is truncated or edited"
    );
    assert_eq!(
        err(r#"{"config": {}}"#),
        "missing key `class_name` at `(root)`; every Keras version writes it, so the config is truncated or edited"
    );
    assert_eq!(
        err(r#"{"class_name": "Sequential", "config": 3}"#),
        "expected an object or a list of layers at `config`, found a number; no Keras version writes this, so the config was edited or is not a Keras model config"
    );
    assert_eq!(
        err(r#"{"class_name": "Sequential", "module": 5, "config": {}}"#),
        "expected a string or null at `module`, found a number; no Keras version writes this, so the config was edited or is not a Keras model config"
    );
    assert_eq!(
        err(r#"{"class_name": "Sequential", "config": {"layers": {}}}"#),
        "expected a list of layers at `config.layers`, found an object; no Keras version writes this, so the config was edited or is not a Keras model config"
    );
    assert_eq!(
        err(r#"{"class_name": "Sequential", "config": {"name": "s"}}"#),
        "missing key `layers` at `config`; every Keras version writes it, so the config is truncated or edited"
    );
    assert_eq!(
        err(r#"{"class_name": "Functional", "config": {"layers": [], "input_layers": []}}"#),
        "missing key `output_layers` at `config`; every Keras version writes it, so the config is truncated or edited"
    );
    assert_eq!(
        err(
            r#"{"class_name": "Functional", "config": {"layers": [], "input_layers": [["a", -1, 0]], "output_layers": []}}"#
        ),
        "invalid tensor reference at `config.input_layers[0]`: expected [layer_name, node_index, tensor_index] with non-negative integer indices, found [\"a\", -1, 0]"
    );
    assert_eq!(
        err(r#"{"class_name": "Functional", "config": {"layers": [], "input_layers": 7, "output_layers": []}}"#),
        "expected a [layer, node, tensor] triple or a list/dict of them at `config.input_layers`, found a number; no Keras version writes this, so the config was edited or is not a Keras model config"
    );
    assert_eq!(
        err(
            r#"{"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {}, "name": "a"}, {"class_name": "Dense", "config": {}, "name": "a"}], "input_layers": [], "output_layers": []}}"#
        ),
        "duplicate layer name `a` at `config.layers[1]` (already used by layers[0]); tensor references name layers, so names in a functional model must be unique: rename one of them"
    );
    assert_eq!(
        err(
            r#"{"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {}, "name": "a", "inbound_nodes": [[["x", 0, 0, {}], ["y", 0, "z", {}]]]}], "input_layers": [], "output_layers": []}}"#
        ),
        "invalid tensor reference at `config.layers[0].inbound_nodes[0][1]`: expected [layer_name, node_index, tensor_index] with non-negative integer indices, found [\"y\", 0, \"z\", {}]"
    );
    assert_eq!(
        err(
            r#"{"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {}, "name": "a", "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["x", 0]}}], "kwargs": {}}]}], "input_layers": [], "output_layers": []}}"#
        ),
        "invalid tensor reference at `config.layers[0].inbound_nodes[0].args[0].config.keras_history`: expected [layer_name, node_index, tensor_index] with non-negative integer indices, found [\"x\", 0]"
    );
    assert_eq!(
        err(
            r#"{"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {}, "name": "a", "inbound_nodes": ["x"]}], "input_layers": [], "output_layers": []}}"#
        ),
        "expected a node: a list of [layer, node, tensor, kwargs] entries (Keras 1/2) or an object with `args` and `kwargs` (Keras 3) at `config.layers[0].inbound_nodes[0]`, found a string; no Keras version writes this, so the config was edited or is not a Keras model config"
    );
    assert_eq!(
        err(
            r#"{"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {}, "name": "a", "inbound_nodes": [{"other": 1}]}], "input_layers": [], "output_layers": []}}"#
        ),
        "missing key `args` at `config.layers[0].inbound_nodes[0]`; every Keras version writes it, so the config is truncated or edited"
    );
    assert_eq!(
        err(
            r#"{"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {}, "name": "a", "inbound_nodes": [[["x", 0, 0, {}], 5]]}], "input_layers": [], "output_layers": []}}"#
        ),
        "expected a [layer, node, tensor, kwargs] entry at `config.layers[0].inbound_nodes[0][1]`, found a number; no Keras version writes this, so the config was edited or is not a Keras model config"
    );
}

#[test]
fn limits_are_enforced() {
    let opts = ConfigOptions { max_layers: 2, ..ConfigOptions::default() };
    let e = ModelConfig::parse_with(&j(KERAS1_SEQ_MERGE), &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the config has more than 2 layers (nested models included) at `config[0].config.layers[1].config[0]`; raise ConfigOptions::max_layers if the file is trusted"
    );
    let opts = ConfigOptions { max_model_depth: 0, ..ConfigOptions::default() };
    let e = ModelConfig::parse_with(&j(KERAS1_SEQ_MERGE), &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "models are nested more than 0 levels deep at `config[0].config.layers[0]`; raise ConfigOptions::max_model_depth if the file is trusted"
    );
}

fn lambda_layer(config: &str) -> LayerConfig {
    LayerConfig {
        class_name: "Lambda".into(),
        module: None,
        registered_name: None,
        name: "lambda".into(),
        config: j(config),
        inbound_nodes: Vec::new(),
        build_config: None,
        shared_object_id: None,
        nested: None,
        branches: Vec::new(),
        raw: Json::Null,
    }
}

#[test]
fn lambda_functions_are_reported_not_decoded() {
    let k3 = lambda_layer(
        r#"{"name": "lambda", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAA\n", "defaults": null, "closure": null}}, "output_shape": {"class_name": "__lambda__", "config": {"value": ["4wEAAAAB\n", [1], null]}}, "arguments": {}}"#,
    );
    assert_eq!(
        k3.lambda_function(),
        Some(LambdaFunction::Keras3Lambda { code_b64: "4wEAAAAA\n".into(), defaults: Json::Null, closure: Json::Null })
    );
    assert_eq!(
        k3.lambda_output_shape(),
        Some(LambdaFunction::Keras3Lambda { code_b64: "4wEAAAAB\n".into(), defaults: j("[1]"), closure: Json::Null })
    );
    let named = lambda_layer(
        r#"{"function": {"module": "builtins", "class_name": "function", "config": "my_pkg>fn", "registered_name": "function"}}"#,
    );
    assert_eq!(
        named.lambda_function(),
        Some(LambdaFunction::NamedFunction {
            module: Some("builtins".into()),
            name: "my_pkg>fn".into(),
            registered_name: Some("function".into())
        })
    );
    let k2 = lambda_layer(
        r#"{"function": ["4wEAAAAA\n", null, null], "function_type": "lambda", "module": "__main__", "output_shape": [3], "output_shape_type": "raw"}"#,
    );
    assert_eq!(
        k2.lambda_function(),
        Some(LambdaFunction::Keras2 {
            code_b64: "4wEAAAAA\n".into(),
            defaults: Json::Null,
            closure: Json::Null,
            function_type: "lambda".into(),
            module: Some("__main__".into())
        })
    );
    assert_eq!(k2.lambda_output_shape(), None);
    let k1 = lambda_layer(r#"{"function": ["c\u0001\u0000\u0000", null, null], "function_type": "lambda"}"#);
    assert_eq!(
        k1.lambda_function(),
        Some(LambdaFunction::Keras1Raw { text: "c\u{1}\u{0}\u{0}".into(), defaults: Json::Null, closure: Json::Null })
    );
    let by_name = lambda_layer(r#"{"function": "double", "function_type": "function", "module": "helpers"}"#);
    assert_eq!(
        by_name.lambda_function(),
        Some(LambdaFunction::NamedFunction {
            module: Some("helpers".into()),
            name: "double".into(),
            registered_name: None
        })
    );
    assert_eq!(lambda_layer(r#"{"units": 3}"#).lambda_function(), None);
}

#[test]
fn training_config_reads_both_spellings_and_writes_back() {
    let legacy = j(
        r#"{"loss": "mse", "metrics": ["mae"], "weighted_metrics": null, "loss_weights": null, "sample_weight_mode": null, "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}}}"#,
    );
    let mut t = TrainingConfig::parse(&legacy).unwrap();
    assert_eq!(t.optimizer_class_name(), Some("Adam"));
    assert_eq!(t.loss, Some(j(r#""mse""#)));
    assert_eq!(t.loss_weights, Some(Json::Null));
    assert_eq!(t.to_json(), legacy);
    t.loss = Some(Json::from("mae"));
    t.weighted_metrics = None;
    assert_eq!(
        t.to_json().to_string_python(),
        r#"{"loss": "mae", "metrics": ["mae"], "loss_weights": null, "sample_weight_mode": null, "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}}}"#
    );
    assert_eq!(
        TrainingConfig::parse(&j("[]")).unwrap_err().to_string(),
        "expected an object at `(root)`, found an array; no Keras version writes this, so the config was edited or is not a Keras model config"
    );
}

#[test]
fn sequential_inside_sequential_named_and_bare() {
    let keras2 = r#"{"class_name": "Sequential", "config": {"name": "outer", "layers": [
      {"class_name": "Sequential", "config": {"name": "inner", "layers": [{"class_name": "Dense", "config": {"name": "d1", "units": 2, "batch_input_shape": [null, 3]}}]}},
      {"class_name": "Dense", "config": {"name": "d2", "units": 1}}]}}"#;
    let m = parse(keras2);
    assert_eq!(m.layers[0].name, "inner");
    assert!(m.layers[0].is_model());
    let paths: Vec<_> = m.iter_layers_recursive().map(|(p, _)| p).collect();
    assert_eq!(paths, ["inner", "inner/d1", "d2"]);
    assert_round_trip(keras2);
    let keras1 = r#"{"class_name": "Sequential", "config": [
      {"class_name": "Sequential", "config": [{"class_name": "Dense", "config": {"name": "dense_1", "output_dim": 2, "init": "glorot_uniform", "batch_input_shape": [null, 3]}}]},
      {"class_name": "Dense", "config": {"name": "dense_2", "output_dim": 1, "init": "glorot_uniform"}}]}"#;
    let m = parse(keras1);
    assert_eq!(m.source, ConfigDialect::Keras1);
    assert_eq!(m.layers[0].name, "");
    let paths: Vec<_> = m.iter_layers_recursive().map(|(p, _)| p).collect();
    assert_eq!(paths, ["#0", "#0/dense_1", "dense_2"]);
    assert_round_trip(keras1);
}
