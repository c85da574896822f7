//! Legacy normalization on its own: Keras 1 configs in, the Keras 2 config and weight layout out,
//! checked against the transforms Keras 2.2.4 documents (`keras/legacy/interfaces.py`,
//! `keras/engine/saving.py` `preprocess_weights_for_loading` / `_convert_rnn_weights`,
//! `conv_utils.convert_kernel`) on small arrays whose expected values are derived by index here.

mod common;

use strata_format::config::{ConfigDialect, LayerConfig, ModelConfig};
use strata_format::json::Json;
use strata_layers::cfg::{Meta, inner_layer_json};
use strata_layers::legacy::{self, weights};
use strata_layers::{BuildCtx, build_layer};
use strata_tensor::Tensor;

fn layer(json: &str) -> LayerConfig {
    let v = Json::parse(json, &Default::default()).expect("test json");
    inner_layer_json(&Meta { name: "t".into(), class: "t".into() }, &v, "layer").expect("layer entry")
}

fn k1() -> BuildCtx<'static> {
    BuildCtx::new(ConfigDialect::Keras1)
}

fn theano(dialect: ConfigDialect) -> BuildCtx<'static> {
    BuildCtx { dialect, backend: Some("theano"), keras_version: None }
}

fn arange(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| i as f32).collect()).unwrap()
}

fn full(shape: &[usize], v: f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, vec![v; n]).unwrap()
}

/// Element of a row-major tensor at `idx`.
fn at(t: &Tensor, idx: &[usize]) -> f32 {
    let mut lin = 0;
    for (i, d) in idx.iter().zip(t.shape()) {
        assert!(i < d, "index {idx:?} out of shape {:?}", t.shape());
        lin = lin * d + i;
    }
    t.as_slice()[lin]
}

fn cfg<'a>(l: &'a LayerConfig, key: &str) -> &'a Json {
    l.config.get(key).unwrap_or_else(|| panic!("no `{key}` in {}", l.config))
}

#[test]
fn legacy_class_names_map_to_keras2_classes() {
    assert_eq!(legacy::renamed("Convolution2D"), Some("Conv2D"));
    assert_eq!(legacy::renamed("AtrousConvolution1D"), Some("Conv1D"));
    assert_eq!(legacy::renamed("Deconvolution2D"), Some("Conv2DTranspose"));
    assert_eq!(legacy::renamed("SeparableConvolution2D"), Some("SeparableConv2D"));
    assert_eq!(legacy::renamed("TimeDistributedDense"), Some("TimeDistributed"));
    assert_eq!(legacy::renamed("CuDNNLSTM"), Some("LSTM"));
    assert_eq!(legacy::renamed("Dense"), None);
    // Keras 1 layers Keras 2 dropped stay unsupported: a clear "unsupported class" error
    assert_eq!(legacy::renamed("Highway"), None);
    assert_eq!(legacy::renamed("MaxoutDense"), None);
    assert!(!strata_layers::is_supported("Highway"));
    assert!(strata_layers::is_supported("Merge"));
}

#[test]
fn keras1_dense_keys_are_renamed() {
    let l = layer(
        r#"{"class_name": "Dense", "config": {"name": "d", "output_dim": 4, "init": "glorot_uniform",
            "activation": "relu", "W_regularizer": null, "b_constraint": null, "bias": false, "input_dim": 3}}"#,
    );
    let (n, w) = legacy::normalize(&l, vec![arange(&[3, 4])], &k1()).unwrap();
    assert_eq!(n.class_name, "Dense");
    assert_eq!(cfg(&n, "units").as_i64(), Some(4));
    assert_eq!(cfg(&n, "use_bias").as_bool(), Some(false));
    assert_eq!(cfg(&n, "kernel_initializer").as_str(), Some("glorot_uniform"));
    assert!(n.config.get("kernel_regularizer").is_some() && n.config.get("bias_constraint").is_some());
    for old in ["output_dim", "init", "bias", "W_regularizer", "b_constraint"] {
        assert!(n.config.get(old).is_none(), "{old} left in {}", n.config);
    }
    assert_eq!(w[0].as_slice(), arange(&[3, 4]).as_slice());
    // and it builds and runs without the bias
    let built = build_layer(&l, vec![full(&[3, 4], 1.0)], &k1()).unwrap().unwrap();
    let y = built.forward(&[full(&[1, 3], 1.0)], false).unwrap();
    assert_eq!(y[0].as_slice(), &[3.0; 4]);
}

#[test]
fn keras2_configs_are_borrowed_untouched() {
    let l = layer(r#"{"class_name": "Dense", "config": {"name": "d", "units": 2}}"#);
    let (n, _) = legacy::normalize(&l, vec![], &BuildCtx::new(ConfigDialect::Keras2)).unwrap();
    assert!(matches!(n, std::borrow::Cow::Borrowed(_)));
}

#[test]
fn keras1_theano_conv2d_is_transposed_then_flipped() {
    let l = layer(
        r#"{"class_name": "Convolution2D", "config": {"name": "c", "nb_filter": 3, "nb_row": 2, "nb_col": 3,
            "border_mode": "same", "subsample": [1, 2], "dim_ordering": "th", "bias": true, "activation": "relu"}}"#,
    );
    // Keras 1 Theano layout (filters, in, rows, cols)
    let k = arange(&[3, 2, 2, 3]);
    let (n, w) = legacy::normalize(&l, vec![k.clone(), full(&[3], 0.0)], &k1()).unwrap();
    assert_eq!(n.class_name, "Conv2D");
    assert_eq!(cfg(&n, "filters").as_i64(), Some(3));
    assert_eq!(cfg(&n, "kernel_size").to_string(), "[2, 3]");
    assert_eq!(cfg(&n, "strides").to_string(), "[1, 2]");
    assert_eq!(cfg(&n, "padding").as_str(), Some("same"));
    assert_eq!(cfg(&n, "data_format").as_str(), Some("channels_first"));
    // no backend known: transposed only, new[r, c, i, o] = old[o, i, r, c]
    assert_eq!(w[0].shape(), &[2, 3, 2, 3]);
    for (r, c, i, o) in [(0, 0, 0, 0), (1, 2, 1, 2), (0, 1, 1, 0), (1, 0, 0, 1)] {
        assert_eq!(at(&w[0], &[r, c, i, o]), at(&k, &[o, i, r, c]));
    }
    // written by Theano: also flipped on both spatial axes
    let (_, wt) = legacy::normalize(&l, vec![k.clone(), full(&[3], 0.0)], &theano(ConfigDialect::Keras1)).unwrap();
    for (r, c, i, o) in [(0, 0, 0, 0), (1, 2, 1, 2), (0, 1, 1, 0), (1, 0, 0, 1)] {
        assert_eq!(at(&wt[0], &[r, c, i, o]), at(&k, &[o, i, 1 - r, 2 - c]));
    }
}

#[test]
fn keras2_theano_kernels_are_flipped_and_others_are_not() {
    let conv = layer(r#"{"class_name": "Conv1D", "config": {"name": "c", "filters": 2, "kernel_size": 3}}"#);
    let k = arange(&[3, 1, 2]);
    let (_, w) = legacy::normalize(&conv, vec![k.clone()], &theano(ConfigDialect::Keras2)).unwrap();
    for (t, i, o) in [(0, 0, 0), (0, 0, 1), (2, 0, 1), (1, 0, 0)] {
        assert_eq!(at(&w[0], &[t, i, o]), at(&k, &[2 - t, i, o]));
    }
    // TensorFlow-written: untouched
    let tf = BuildCtx { dialect: ConfigDialect::Keras2, backend: Some("tensorflow"), keras_version: None };
    let (_, w) = legacy::normalize(&conv, vec![k.clone()], &tf).unwrap();
    assert_eq!(w[0].as_slice(), k.as_slice());
    // Keras 2 never flipped depthwise kernels (its Theano depthwise conv was already a correlation)
    let dw = layer(r#"{"class_name": "DepthwiseConv2D", "config": {"name": "d", "kernel_size": 2}}"#);
    let k4 = arange(&[2, 2, 1, 1]);
    let (_, w) = legacy::normalize(&dw, vec![k4.clone()], &theano(ConfigDialect::Keras2)).unwrap();
    assert_eq!(w[0].as_slice(), k4.as_slice());
}

#[test]
fn convert_kernel_flips_every_spatial_axis_of_a_3d_kernel() {
    let k = arange(&[2, 2, 2, 1, 2]);
    let f = weights::convert_kernel(&k).unwrap();
    for (a, b, c, o) in [(0, 0, 0, 0), (1, 0, 1, 1), (0, 1, 1, 0), (1, 1, 0, 1)] {
        assert_eq!(at(&f, &[a, b, c, 0, o]), at(&k, &[1 - a, 1 - b, 1 - c, 0, o]));
    }
    // its own inverse
    assert_eq!(weights::convert_kernel(&f).unwrap().as_slice(), k.as_slice());
    assert!(weights::convert_kernel(&arange(&[2, 2])).is_err());
}

#[test]
fn keras1_conv1d_kernels_lose_their_unit_axis() {
    let l = layer(
        r#"{"class_name": "Convolution1D", "config": {"name": "c", "nb_filter": 2, "filter_length": 3,
            "subsample_length": 1, "border_mode": "valid", "atrous_rate": 2}}"#,
    );
    let k = arange(&[3, 1, 4, 2]); // Keras 1.2: (k, 1, in, filters)
    let (n, w) = legacy::normalize(&l, vec![k.clone(), full(&[2], 0.0)], &k1()).unwrap();
    assert_eq!(n.class_name, "Conv1D");
    assert_eq!(cfg(&n, "kernel_size").as_i64(), Some(3));
    assert_eq!(cfg(&n, "dilation_rate").as_i64(), Some(2));
    assert_eq!(w[0].shape(), &[3, 4, 2]);
    assert_eq!(at(&w[0], &[2, 3, 1]), at(&k, &[2, 0, 3, 1]));
    // Keras 1.1: (filters, in, k, 1)
    let k11 = arange(&[2, 4, 3, 1]);
    let (_, w) = legacy::normalize(&l, vec![k11.clone(), full(&[2], 0.0)], &k1()).unwrap();
    assert_eq!(w[0].shape(), &[3, 4, 2]);
    assert_eq!(at(&w[0], &[2, 3, 1]), at(&k11, &[1, 3, 2, 0]));
}

#[test]
fn keras1_lstm_gates_are_merged_in_ifco_order() {
    let l = layer(
        r#"{"class_name": "LSTM", "config": {"name": "r", "output_dim": 2, "inner_activation": "hard_sigmoid",
            "inner_init": "orthogonal", "forget_bias_init": "one", "consume_less": "mem", "dropout_W": 0.0,
            "dropout_U": 0.5, "U_regularizer": null}}"#,
    );
    // stored i, c, f, o: each (W, U, b) filled with its gate's number
    let mut w = Vec::new();
    for gate in [1.0f32, 2.0, 3.0, 4.0] {
        w.extend([full(&[3, 2], gate), full(&[2, 2], gate + 10.0), full(&[2], gate + 20.0)]);
    }
    let (n, out) = legacy::normalize(&l, w, &k1()).unwrap();
    assert_eq!(cfg(&n, "units").as_i64(), Some(2));
    assert_eq!(cfg(&n, "recurrent_activation").as_str(), Some("hard_sigmoid"));
    assert_eq!(cfg(&n, "implementation").as_i64(), Some(1));
    assert_eq!(cfg(&n, "unit_forget_bias").as_bool(), Some(true));
    assert_eq!(cfg(&n, "recurrent_dropout").as_f64(), Some(0.5));
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].shape(), &[3, 8]);
    // i, f, c, o = stored gates 1, 3, 2, 4
    let firsts: Vec<f32> = (0..4).map(|g| at(&out[0], &[0, g * 2])).collect();
    assert_eq!(firsts, [1.0, 3.0, 2.0, 4.0]);
    let rec: Vec<f32> = (0..4).map(|g| at(&out[1], &[1, g * 2 + 1])).collect();
    assert_eq!(rec, [11.0, 13.0, 12.0, 14.0]);
    assert_eq!(out[2].as_slice(), &[21.0, 21.0, 23.0, 23.0, 22.0, 22.0, 24.0, 24.0]);
}

#[test]
fn keras1_gru_gates_are_merged_and_reset_after_is_off() {
    let l = layer(r#"{"class_name": "GRU", "config": {"name": "g", "output_dim": 1, "inner_activation": "sigmoid"}}"#);
    let mut w = Vec::new();
    for gate in [1.0f32, 2.0, 3.0] {
        w.extend([full(&[2, 1], gate), full(&[1, 1], gate + 10.0), full(&[1], gate + 20.0)]);
    }
    let (n, out) = legacy::normalize(&l, w, &k1()).unwrap();
    assert_eq!(cfg(&n, "reset_after").as_bool(), Some(false));
    assert_eq!(out[0].as_slice(), &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    assert_eq!(out[1].as_slice(), &[11.0, 12.0, 13.0]);
    assert_eq!(out[2].as_slice(), &[21.0, 22.0, 23.0]);
}

#[test]
fn gru_reset_after_is_left_to_the_recurrent_family_after_keras1() {
    let l = layer(r#"{"class_name": "GRU", "config": {"name": "g", "units": 1}}"#);
    // Keras 2 (default false) and tf.keras 2.x / Keras 3 (default true): the recurrent family
    // decides from the stored bias shape, then the dialect
    let (n, _) = legacy::normalize(&l, vec![], &BuildCtx::new(ConfigDialect::Keras2)).unwrap();
    assert!(n.config.get("reset_after").is_none());
    let (n, _) = legacy::normalize(&l, vec![], &BuildCtx::new(ConfigDialect::TfKeras)).unwrap();
    assert!(n.config.get("reset_after").is_none());
}

#[test]
fn cudnn_lstm_weights_become_native() {
    let l = layer(r#"{"class_name": "CuDNNLSTM", "config": {"name": "c", "units": 2}}"#);
    // input kernel (in=2, 4 gates x u=2): gate block g holds CuDNN's (u, in) matrix row-major
    let k = arange(&[2, 8]);
    let rk = arange(&[2, 8]);
    let b = arange(&[16]);
    let ctx = BuildCtx::new(ConfigDialect::Keras2);
    let (n, w) = legacy::normalize(&l, vec![k.clone(), rk.clone(), b], &ctx).unwrap();
    assert_eq!(n.class_name, "LSTM");
    assert_eq!(cfg(&n, "recurrent_activation").as_str(), Some("sigmoid"));
    for g in 0..4 {
        // the block's values in row-major order
        let vals: Vec<f32> =
            (0..2).flat_map(|a| (0..2).map(move |c| (a, c))).map(|(a, c)| at(&k, &[a, g * 2 + c])).collect();
        for a in 0..2 {
            for c in 0..2 {
                // Keras[a, c] = CuDNN matrix (u, in) [c, a] = vals[c * in + a]
                assert_eq!(at(&w[0], &[a, g * 2 + c]), vals[c * 2 + a]);
                // recurrent blocks are transposed
                assert_eq!(at(&w[1], &[a, g * 2 + c]), at(&rk, &[c, g * 2 + a]));
            }
        }
    }
    // the two bias halves are summed
    let want: Vec<f32> = (0..8).map(|i| (i + i + 8) as f32).collect();
    assert_eq!(w[2].as_slice(), want.as_slice());
}

#[test]
fn cudnn_gru_bias_is_split_and_reset_after_false_is_refused() {
    let l = layer(r#"{"class_name": "CuDNNGRU", "config": {"name": "c", "units": 1}}"#);
    let ctx = BuildCtx::new(ConfigDialect::Keras2);
    let w = vec![arange(&[2, 3]), arange(&[1, 3]), arange(&[6])];
    let (n, out) = legacy::normalize(&l, w.clone(), &ctx).unwrap();
    assert_eq!((n.class_name.as_str(), cfg(&n, "reset_after").as_bool()), ("GRU", Some(true)));
    assert_eq!(out[2].shape(), &[2, 3]);
    let plain = layer(r#"{"class_name": "GRU", "config": {"name": "g", "units": 1, "reset_after": false}}"#);
    let err = legacy::normalize(&plain, w, &ctx).unwrap_err().to_string();
    assert!(err.contains("reset_after") && err.contains("CuDNNGRU"), "{err}");
}

#[test]
fn keras1_merge_modes_become_merge_layers() {
    let merge = |mode: &str, extra: &str| {
        let mode_type = if extra.contains("mode_type") { "" } else { r#""mode_type": "raw","# };
        let l = layer(&format!(
            r#"{{"class_name": "Merge", "config": {{"name": "m", "mode": "{mode}", {mode_type} {extra} "output_shape": null}}}}"#
        ));
        legacy::normalize(&l, vec![], &k1()).map(|(n, _)| (n.class_name.clone(), n.config.clone()))
    };
    for (mode, class) in [("sum", "Add"), ("mul", "Multiply"), ("ave", "Average"), ("max", "Maximum")] {
        assert_eq!(merge(mode, "").unwrap().0, class);
    }
    let (c, j) = merge("concat", r#""concat_axis": 1,"#).unwrap();
    assert_eq!((c.as_str(), j.get("axis").and_then(Json::as_i64)), ("Concatenate", Some(1)));
    let (c, j) = merge("cos", r#""dot_axes": [1, 1],"#).unwrap();
    assert_eq!(c, "Dot");
    assert_eq!(j.get("normalize").and_then(Json::as_bool), Some(true));
    assert_eq!(j.get("axes").map(|a| a.to_string()).as_deref(), Some("[1, 1]"));
    let (_, j) = merge("dot", r#""dot_axes": -1,"#).unwrap();
    assert_eq!(j.get("normalize").and_then(Json::as_bool), Some(false));
    let err = merge("\\u00e3\\u0001bytecode", r#""mode_type": "lambda","#).unwrap_err().to_string();
    assert!(err.contains("layer `m`") && err.contains("Python function"), "{err}");
    let err = merge("median", "").unwrap_err().to_string();
    assert!(err.contains("`median`"), "{err}");
}

#[test]
fn keras1_batchnorm_modes_other_than_0_are_refused() {
    let l = layer(r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "mode": 2, "axis": -1}}"#);
    let err = legacy::normalize(&l, vec![], &k1()).unwrap_err().to_string();
    assert!(err.contains("layer `bn`") && err.contains("`mode`") && err.contains("only mode 0"), "{err}");
    let ok = layer(r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "mode": 0, "beta_init": "zero"}}"#);
    let (n, _) = legacy::normalize(&ok, vec![], &k1()).unwrap();
    assert!(n.config.get("mode").is_none());
    assert_eq!(cfg(&n, "beta_initializer").as_str(), Some("zero"));
}

#[test]
fn keras1_small_renames() {
    let one = |json: &str| legacy::normalize(&layer(json), vec![], &k1()).unwrap().0.into_owned();
    let d = one(r#"{"class_name": "Dropout", "config": {"name": "d", "p": 0.3}}"#);
    assert_eq!(cfg(&d, "rate").as_f64(), Some(0.3));
    let p = one(
        r#"{"class_name": "MaxPooling1D", "config": {"name": "p", "pool_length": 2, "stride": 1, "border_mode": "same"}}"#,
    );
    assert_eq!((cfg(&p, "pool_size").as_i64(), cfg(&p, "strides").as_i64()), (Some(2), Some(1)));
    assert_eq!(cfg(&p, "padding").as_str(), Some("same"));
    let e = one(
        r#"{"class_name": "Embedding", "config": {"name": "e", "input_dim": 5, "output_dim": 2, "init": "uniform", "dropout": 0.1}}"#,
    );
    assert_eq!(cfg(&e, "embeddings_initializer").as_str(), Some("uniform"));
    assert!(e.config.get("dropout").is_none());
    let z = one(
        r#"{"class_name": "ZeroPadding2D", "config": {"name": "z", "padding": {"top_pad": 1, "bottom_pad": 2, "left_pad": 3, "right_pad": 4}, "dim_ordering": "tf"}}"#,
    );
    assert_eq!(cfg(&z, "padding").to_string(), "[[1, 2], [3, 4]]");
    assert_eq!(cfg(&z, "data_format").as_str(), Some("channels_last"));
    let err = legacy::normalize(
        &layer(r#"{"class_name": "Flatten", "config": {"name": "f", "dim_ordering": "xy"}}"#),
        vec![],
        &k1(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("dim_ordering") && err.contains("`th`"), "{err}");
}

#[test]
fn time_distributed_dense_wraps_a_dense() {
    let l = layer(
        r#"{"class_name": "TimeDistributedDense", "config": {"name": "td", "output_dim": 3, "bias": true,
            "activation": "linear", "batch_input_shape": [null, 4, 2], "input_dim": null, "input_length": null}}"#,
    );
    let (n, w) = legacy::normalize(&l, vec![arange(&[2, 3]), full(&[3], 1.0)], &k1()).unwrap();
    assert_eq!(n.class_name, "TimeDistributed");
    let inner = cfg(&n, "layer");
    assert_eq!(inner.get("class_name").and_then(Json::as_str), Some("Dense"));
    assert_eq!(inner.get("config").and_then(|c| c.get("units")).and_then(Json::as_i64), Some(3));
    assert_eq!(w.len(), 2);
    // a Keras 1 TimeDistributed's inner layer is renamed too
    let td = layer(
        r#"{"class_name": "TimeDistributed", "config": {"name": "t", "layer": {"class_name": "Dense", "config": {"name": "d", "output_dim": 2}}}}"#,
    );
    let (n, _) = legacy::normalize(&td, vec![], &k1()).unwrap();
    assert_eq!(cfg(&n, "layer").get("config").and_then(|c| c.get("units")).and_then(Json::as_i64), Some(2));
}

#[test]
fn backend_is_guessed_for_keras1_files_only() {
    let cfg_of = |generation: &str| {
        let f = strata_format::model::ModelFile::open(strata_testkit::fixture(&format!("{generation}/cnn/model.h5")))
            .unwrap();
        f.config.unwrap()
    };
    let guess = |c: &ModelConfig| legacy::guess_backend(c);
    assert_eq!(guess(&cfg_of("keras1_th")), Some("theano"));
    assert_eq!(guess(&cfg_of("keras1_tf")), Some("tensorflow"));
    assert_eq!(guess(&cfg_of("keras2_2_4_th")), None);
}

#[test]
fn keras1_sequential_merge_of_models_runs_its_branches() {
    let file = strata_format::model::ModelFile::open(strata_testkit::fixture("keras1_th/merge_seq/model.h5")).unwrap();
    let model = strata_layers::Model::from_file(&file).unwrap();
    assert_eq!(model.input_count(), 2);
    let x = full(&[1, 2], 0.5);
    let Err(err) = model.predict(std::slice::from_ref(&x)) else { panic!("one input for two branches must fail") };
    let err = err.to_string();
    assert!(err.contains('2'), "{err}");
    let y = model.predict(&[x.clone(), x]).unwrap();
    assert_eq!(y[0].shape(), &[1, 2]);
}

/// The weights a legacy `.h5` binds to the layer at `path`, as f32 tensors.
fn bound_weights(file: &strata_format::model::ModelFile, path: &str) -> Vec<Tensor> {
    let config = file.config.as_ref().unwrap();
    let store = file.weights.as_ref().unwrap();
    let binding = strata_format::bind::bind(config, store);
    let l = binding.layers.iter().find(|l| l.path == path).unwrap_or_else(|| panic!("no layer {path}"));
    l.tensors
        .iter()
        .map(|t| {
            let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
            Tensor::from_le_bytes(strata_tensor::DType::F32, &shape, &store.read(t).unwrap()).unwrap()
        })
        .collect()
}

/// The Keras 1 Theano CNN fixtures (`Convolution2D` th-ordered, `MaxPooling2D`, `Flatten`, `Dense`
/// softmax) computed with a channels-last convolution on kernels normalized here: only the
/// transposed *and flipped* kernel reproduces the outputs Keras 1 on Theano computed. This checks
/// the weight transform before the conv family runs channels_first models itself.
#[test]
fn keras1_theano_cnn_kernels_reproduce_keras() {
    for generation in ["keras1_th", "keras1_0_th"] {
        let dir = strata_testkit::fixture(&format!("{generation}/cnn"));
        let file = strata_format::model::ModelFile::open(dir.join("model.h5")).unwrap();
        let config = file.config.as_ref().unwrap();
        let ctx = BuildCtx { dialect: config.source, backend: legacy::guess_backend(config), keras_version: None };
        assert_eq!(ctx.backend, Some("theano"));
        let conv = &config.layers[0];
        let (n, w) = legacy::normalize(conv, bound_weights(&file, &conv.name), &ctx).unwrap();
        assert_eq!(cfg(&n, "data_format").as_str(), Some("channels_first"));
        let (ins, outs) = common::read_npz(&dir.join("io.npz"));
        let x = ins[0].permute(&[0, 2, 3, 1]).unwrap(); // NCHW -> NHWC
        let y = strata_tensor::conv2d(&x, &w[0], &Default::default()).unwrap().add(&w[1]).unwrap();
        let y = y.maximum(&Tensor::scalar(0.0)).unwrap();
        let y = strata_tensor::max_pool2d(&y, &strata_tensor::PoolParams::new([2, 2])).unwrap();
        // Keras 1 Flatten flattens the channels-first tensor as it is
        let y = y.permute(&[0, 3, 1, 2]).unwrap();
        let b = y.shape()[0];
        let y = y.reshape(&[b, y.len() / b]).unwrap();
        let dense = &config.layers[3];
        let d = build_layer(dense, bound_weights(&file, &dense.name), &ctx).unwrap().unwrap();
        let got = &d.forward(&[y], false).unwrap()[0];
        let worst = got.as_slice().iter().zip(outs[0].as_slice()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{generation}: max abs diff {worst}");
        // without the flip the numbers are wrong: the flip is what Theano needs
        let tf_ctx = BuildCtx { backend: Some("tensorflow"), ..ctx };
        let (_, w) = legacy::normalize(conv, bound_weights(&file, &conv.name), &tf_ctx).unwrap();
        let y = strata_tensor::conv2d(&x, &w[0], &Default::default()).unwrap();
        let y0 =
            strata_tensor::conv2d(&x, &legacy::weights::convert_kernel(&w[0]).unwrap(), &Default::default()).unwrap();
        assert!(y.as_slice().iter().zip(y0.as_slice()).any(|(a, b)| (a - b).abs() > 1e-3));
    }
}

fn hard_sigmoid(x: f32) -> f32 {
    (0.2 * x + 0.5).clamp(0.0, 1.0)
}

/// `x[b, t, :] @ k` for a row-major `(in, n)` matrix.
fn row_matmul(x: &[f32], k: &Tensor) -> Vec<f32> {
    let n = k.shape()[1];
    let mut out = vec![0.0; n];
    for (i, xi) in x.iter().enumerate() {
        for (j, o) in out.iter_mut().enumerate() {
            *o += xi * at(k, &[i, j]);
        }
    }
    out
}

/// A Keras 2 LSTM (gates i, f, c, o; hard_sigmoid) or GRU (z, r, h; reset_after=False) over `x`
/// (batch, time, in), written out by hand, on weights normalized from Keras 1's per-gate arrays:
/// it reproduces the Keras 1 fixtures only if the gates were merged in Keras 2's order.
fn run_rnn(lstm: bool, w: &[Tensor], x: &Tensor, units: usize) -> Vec<Vec<f32>> {
    let [b, t, d] = x.shape()[..] else { panic!("rank-3 input") };
    let (k, rk, bias) = (&w[0], &w[1], w[2].as_slice());
    let mut outs = Vec::new();
    for bi in 0..b {
        let mut h = vec![0.0f32; units];
        let mut c = vec![0.0f32; units];
        for ti in 0..t {
            let xs = &x.as_slice()[(bi * t + ti) * d..(bi * t + ti + 1) * d];
            let xk = row_matmul(xs, k);
            if lstm {
                let hk = row_matmul(&h, rk);
                let g = |gate: usize, j: usize| xk[gate * units + j] + hk[gate * units + j] + bias[gate * units + j];
                for j in 0..units {
                    let (i, f, cc, o) =
                        (hard_sigmoid(g(0, j)), hard_sigmoid(g(1, j)), g(2, j).tanh(), hard_sigmoid(g(3, j)));
                    c[j] = f * c[j] + i * cc;
                    h[j] = o * c[j].tanh();
                }
            } else {
                let hk = row_matmul(&h, rk);
                let z: Vec<f32> = (0..units).map(|j| hard_sigmoid(xk[j] + hk[j] + bias[j])).collect();
                let r: Vec<f32> =
                    (0..units).map(|j| hard_sigmoid(xk[units + j] + hk[units + j] + bias[units + j])).collect();
                let rh: Vec<f32> = h.iter().zip(&r).map(|(a, b)| a * b).collect();
                // the candidate's recurrent part: (r * h) @ U_h
                let mut u_h = vec![0.0f32; units];
                for (i, v) in rh.iter().enumerate() {
                    for (j, o) in u_h.iter_mut().enumerate() {
                        *o += v * at(rk, &[i, 2 * units + j]);
                    }
                }
                for j in 0..units {
                    let hh = (xk[2 * units + j] + u_h[j] + bias[2 * units + j]).tanh();
                    h[j] = z[j] * h[j] + (1.0 - z[j]) * hh;
                }
            }
        }
        outs.push(h);
    }
    outs
}

#[test]
fn keras1_recurrent_gates_reproduce_keras() {
    for (case, lstm) in [
        ("keras1_th/lstm", true),
        ("keras1_0_th/lstm", true),
        ("keras1_1_tf/lstm", true),
        ("keras1_tf/gru", false),
        ("keras1_th/gru", false),
    ] {
        let dir = strata_testkit::fixture(case);
        let file = strata_format::model::ModelFile::open(dir.join("model.h5")).unwrap();
        let config = file.config.as_ref().unwrap();
        let ctx = BuildCtx::new(config.source);
        let rnn = &config.layers[0];
        let (n, w) = legacy::normalize(rnn, bound_weights(&file, &rnn.name), &ctx).unwrap();
        assert_eq!(w.len(), 3, "{case}");
        assert_eq!(cfg(&n, "recurrent_activation").as_str(), Some("hard_sigmoid"));
        let units = cfg(&n, "units").as_u64().unwrap() as usize;
        let (ins, outs) = common::read_npz(&dir.join("io.npz"));
        let hs = run_rnn(lstm, &w, &ins[0], units);
        let h = Tensor::from_vec(&[hs.len(), units], hs.concat()).unwrap();
        let dense = &config.layers[1];
        let d = build_layer(dense, bound_weights(&file, &dense.name), &ctx).unwrap().unwrap();
        let got = &d.forward(&[h], false).unwrap()[0];
        let worst = got.as_slice().iter().zip(outs[0].as_slice()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{case}: max abs diff {worst}");
    }
}

/// The Keras 2.2.4 Theano CNN (`Conv2D` channels_first, `BatchNormalization(axis=1)`,
/// `MaxPooling2D`, `Flatten(data_format=channels_first)`, `Dense`): its kernel, flipped because the
/// file says `backend: theano`, reproduces Keras with a channels-last convolution.
#[test]
fn keras2_theano_cnn_kernels_reproduce_keras() {
    let dir = strata_testkit::fixture("keras2_2_4_th/cnn");
    let file = strata_format::model::ModelFile::open(dir.join("model.h5")).unwrap();
    let config = file.config.as_ref().unwrap();
    assert_eq!(file.backend.as_deref(), Some("theano"));
    let ctx = BuildCtx { dialect: config.source, backend: file.backend.as_deref(), keras_version: None };
    let layer = |i: usize| {
        let l = &config.layers[i];
        build_layer(l, bound_weights(&file, &l.name), &ctx).unwrap().unwrap()
    };
    let conv = &config.layers[0];
    let (_, w) = legacy::normalize(conv, bound_weights(&file, &conv.name), &ctx).unwrap();
    let (ins, outs) = common::read_npz(&dir.join("io.npz"));
    let x = ins[0].permute(&[0, 2, 3, 1]).unwrap();
    let y = strata_tensor::conv2d(&x, &w[0], &Default::default()).unwrap().add(&w[1]).unwrap();
    let y = y.maximum(&Tensor::scalar(0.0)).unwrap().permute(&[0, 3, 1, 2]).unwrap();
    let y = layer(1).forward(&[y], false).unwrap().remove(0); // BatchNormalization(axis=1)
    let y = strata_tensor::max_pool2d(&y.permute(&[0, 2, 3, 1]).unwrap(), &strata_tensor::PoolParams::new([2, 2]))
        .unwrap()
        .permute(&[0, 3, 1, 2])
        .unwrap();
    let y = layer(3).forward(&[y], false).unwrap().remove(0); // Flatten(channels_first)
    let got = layer(4).forward(&[y], false).unwrap().remove(0);
    let worst = got.as_slice().iter().zip(outs[0].as_slice()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "max abs diff {worst}");
}

#[test]
fn gru_bias_shape_must_match_reset_after_when_the_config_says() {
    let w = || vec![arange(&[2, 3]), arange(&[1, 3]), arange(&[2, 3])];
    let ctx = BuildCtx::new(ConfigDialect::TfKeras);
    // reset_after bias (2, 3u) with reset_after unspecified: left to the family's default
    let open = layer(r#"{"class_name": "GRU", "config": {"name": "g", "units": 1}}"#);
    assert_eq!(legacy::normalize(&open, w(), &ctx).unwrap().1[2].shape(), &[2, 3]);
    let off = layer(r#"{"class_name": "GRU", "config": {"name": "g", "units": 1, "reset_after": false}}"#);
    let err = legacy::normalize(&off, w(), &ctx).unwrap_err().to_string();
    assert!(err.contains("layer `g`") && err.contains("reset_after=true"), "{err}");
}

#[test]
fn wrapped_weights_are_converted_once() {
    // Keras 1 Theano TimeDistributed(Convolution2D th): the wrapper converts the inner kernel
    let td = layer(
        r#"{"class_name": "TimeDistributed", "config": {"name": "t", "layer": {"class_name": "Convolution2D",
            "config": {"name": "c", "nb_filter": 2, "nb_row": 2, "nb_col": 2, "dim_ordering": "th"}}}}"#,
    );
    let k = arange(&[2, 1, 2, 2]);
    let ctx = theano(ConfigDialect::Keras1);
    let (n, w) = legacy::normalize(&td, vec![k.clone(), full(&[2], 0.0)], &ctx).unwrap();
    assert_eq!(at(&w[0], &[0, 1, 0, 1]), at(&k, &[1, 0, 1, 0]));
    // a family building the inner layer through build_layer/normalize gets it unchanged
    let inner =
        inner_layer_json(&Meta { name: "t".into(), class: "TimeDistributed".into() }, cfg(&n, "layer"), "layer")
            .unwrap();
    assert_eq!(inner.class_name, "Conv2D");
    let (again, w2) = legacy::normalize(&inner, w.clone(), &ctx).unwrap();
    assert!(matches!(again, std::borrow::Cow::Borrowed(_)));
    assert_eq!(w2[0].as_slice(), w[0].as_slice());
}
