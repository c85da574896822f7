//! A real Keras 3 file (`fixtures/keras3/mlp/model.keras`, compiled with Adam, "mse" and
//! metrics ["mae"], then trained): its `compile_config` round-trips byte-for-byte through
//! strata-train, and its `optimizer/vars/0..N` load into an `Optimizer` built on the model's
//! variables in Keras's order (count and every shape must match).

use strata_format::model::ModelFile;
use strata_tensor::{DType, Tensor};
use strata_train::losses::Loss;
use strata_train::metrics;
use strata_train::optimizers::Optimizer;

fn tensor(mf: &ModelFile, info: &strata_format::weights::TensorInfo) -> Tensor {
    let store = mf.weights.as_ref().expect("weights");
    let bytes = store.read(info).expect("read tensor");
    let dtype = match format!("{:?}", info.dtype).as_str() {
        "F32" => DType::F32,
        "I64" => DType::I64,
        other => panic!("unexpected dtype {other}"),
    };
    let shape: Vec<usize> = info.shape.iter().map(|&d| d as usize).collect();
    Tensor::from_le_bytes(dtype, &shape, &bytes).expect("decode")
}

#[test]
fn keras_compile_config_and_optimizer_state_round_trip() {
    let mf = ModelFile::open(strata_testkit::fixture("keras3/mlp/model.keras")).expect("open mlp fixture");
    let cc = mf.training_config.as_ref().expect("compile_config");

    let opt_json = &cc["optimizer"];
    let mut opt = Optimizer::deserialize(opt_json).expect("optimizer");
    assert_eq!(opt.serialize(), *opt_json, "optimizer config must round-trip exactly");
    let loss = Loss::deserialize(&cc["loss"]).expect("loss");
    assert_eq!(loss.serialize(), cc["loss"]);
    for m in cc["metrics"].as_array().expect("metrics") {
        let name = m.as_str().expect("metric name");
        assert!(metrics::get(name).is_ok(), "metric {name}");
    }

    let store = mf.weights.as_ref().expect("weights");
    let mut model_vars: Vec<_> = store.tensors().filter(|t| t.owner.starts_with("layers/")).collect();
    model_vars.sort_by_key(|t| (t.owner.clone(), t.name.parse::<usize>().unwrap_or(0)));
    let paths: Vec<String> = model_vars
        .iter()
        .map(|t| format!("{}/{}", t.owner.trim_start_matches("layers/"), if t.name == "0" { "kernel" } else { "bias" }))
        .collect();
    let shapes: Vec<Vec<usize>> = model_vars.iter().map(|t| t.shape.iter().map(|&d| d as usize).collect()).collect();
    let spec: Vec<(&str, &[usize])> = paths.iter().map(String::as_str).zip(shapes.iter().map(Vec::as_slice)).collect();
    opt.build(&spec).expect("build");

    let mut saved: Vec<_> = store.optimizer.iter().collect();
    saved.sort_by_key(|t| t.name.parse::<usize>().unwrap_or(usize::MAX));
    let values: Vec<Tensor> = saved.iter().map(|t| tensor(&mf, t)).collect();
    opt.load_variables(&values).expect("Keras's optimizer variables load in order");
    assert_eq!(opt.iterations() as f32, values[0].item().unwrap());
    assert!(opt.iterations() > 0, "the fixture model was trained");
    let back = opt.variables().expect("variables");
    assert_eq!(back.len(), values.len());
    for ((path, got), want) in back.iter().zip(&values) {
        assert_eq!(got.shape(), want.shape(), "{path}");
        assert_eq!(got.to_vec(), want.to_vec(), "{path}");
    }
    assert_eq!(back[2].0, "adam/dense_kernel_momentum");
    assert_eq!(back[0].1.dtype(), DType::I64);
}
