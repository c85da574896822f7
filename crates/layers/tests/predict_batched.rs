//! `Model::input_specs` from configs of several Keras versions, and `Model::predict_batched`
//! against `Model::predict` on fixture models (the same numbers, chunked or not).

use strata_format::limits::Limits;
use strata_format::model::ModelFile;
use strata_format::npy::read_npz;
use strata_layers::Model;
use strata_layers::model::InputSpec;
use strata_tensor::Tensor;
use strata_testkit::{fixture, tol};

fn open(rel: &str) -> (ModelFile, Model) {
    let mf = ModelFile::open(fixture(rel)).unwrap();
    let model = Model::from_file(&mf).unwrap();
    (mf, model)
}

/// The `in_*` arrays of a fixture's io.npz, each tiled along the batch axis `times` times.
fn inputs(rel: &str, times: usize) -> Vec<Tensor> {
    read_npz(&fixture(rel), &Limits::default())
        .unwrap()
        .into_iter()
        .filter(|a| a.name.starts_with("in_"))
        .map(|a| {
            let t = Tensor::from_vec(&a.shape, a.to_f32()).unwrap();
            let copies: Vec<&Tensor> = std::iter::repeat_n(&t, times).collect();
            strata_tensor::concat(&copies, 0).unwrap()
        })
        .collect()
}

fn assert_close(got: &[Tensor], want: &[Tensor]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.shape(), w.shape());
        for (a, b) in g.as_slice().iter().zip(w.as_slice()) {
            assert!(tol::forward_close(f64::from(*a), f64::from(*b)), "{a} vs {b}");
        }
    }
}

#[test]
fn input_specs_come_from_the_config() {
    let spec = |rel: &str| Model::input_specs(ModelFile::open(fixture(rel)).unwrap().config.as_ref().unwrap());
    let s = spec("keras3/mlp/model.keras");
    assert_eq!(
        s,
        vec![InputSpec { name: "input_layer".into(), shape: Some(vec![None, Some(8)]), dtype: "float32".into() }]
    );
    assert_eq!(s[0].shape_text(), "(None, 8)");
    assert!(s[0].accepts(&[5, 8]));
    assert!(!s[0].accepts(&[5, 7]));
    assert!(!s[0].accepts(&[8]));
    let s = spec("keras3/functional_multi_io/model.keras");
    assert_eq!(s.len(), 2);
    assert_eq!(s.iter().map(InputSpec::shape_text).collect::<Vec<_>>(), ["(None, 6)", "(None, 4)"]);
    // Keras 2: no InputLayer, the first layer carries batch_input_shape
    let s = spec("keras2_2_4/mlp/model.json");
    assert_eq!(
        s,
        vec![InputSpec { name: "dense_1_input".into(), shape: Some(vec![None, Some(3)]), dtype: "float32".into() }]
    );
    // Keras 1: bare-list Sequential, `input_dtype`
    let s = spec("keras1_th/mlp/model.json");
    assert_eq!(s[0].shape_text(), "(None, 3)");
    assert_eq!(s[0].dtype, "float32");
}

#[test]
fn predict_batched_equals_predict() {
    for (model, io, times) in [
        ("keras3/mlp/model.keras", "keras3/mlp/io.npz", 13),
        ("keras3/functional_multi_io/model.keras", "keras3/functional_multi_io/io.npz", 7),
    ] {
        let (_, m) = open(model);
        let x = inputs(io, times);
        let whole = m.predict(&x).unwrap();
        for batch in [0, 1, 4, 5, 1000] {
            let got = m.predict_batched(&x, batch).unwrap();
            assert_close(&got, &whole);
        }
    }
}

#[test]
fn predict_batched_refuses_unequal_batches() {
    let (_, m) = open("keras3/functional_multi_io/model.keras");
    let mut x = inputs("keras3/functional_multi_io/io.npz", 2);
    x[1] = x[1].slice_axis(0, 0, 5).unwrap();
    let e = m.predict_batched(&x, 2).unwrap_err().to_string();
    assert!(e.ends_with("input 0 has 6 samples but input 1 has 5; every input needs the same batch size"), "{e}");
}
