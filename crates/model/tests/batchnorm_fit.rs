//! The trainer and BatchNormalization: a training step writes the layer's new moving statistics
//! (Keras's `moving * momentum + batch * (1 - momentum)`) into its non-trainable variables; a
//! frozen layer runs in inference mode and keeps them. (Parity with Keras's `fit` of a model with a
//! trainable BatchNormalization: `fit_parity.rs`, model `bn`.)

use strata_model::layers::{BatchNormalization, Dense};
use strata_model::{Model, Sequential};
use strata_registry::Registry;
use strata_tensor::Tensor;
use strata_train::optimizers::Optimizer;

fn data() -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..8 * 3).map(|i| ((i * 7 % 11) as f32) * 0.3 - 1.0).collect();
    let y: Vec<f32> = (0..8).map(|i| (i % 2) as f32).collect();
    (Tensor::from_vec(&[8, 3], x).unwrap(), Tensor::from_vec(&[8, 1], y).unwrap())
}

fn model(bn: BatchNormalization) -> Model {
    let mut m = Sequential::new("m")
        .input(&[3])
        .add(Dense::new(4).name("dense"))
        .add(bn.name("bn"))
        .add(Dense::new(1).name("out"))
        .build(&Registry::new())
        .unwrap();
    // learning rate 0: only the moving statistics change
    let sgd: Optimizer = Optimizer::deserialize(
        &strata_format::json::Json::parse(
            r#"{"module": "keras.optimizers", "class_name": "SGD", "config": {"name": "SGD", "learning_rate": 0.0}, "registered_name": null}"#,
            &Default::default(),
        )
        .unwrap(),
    )
    .unwrap();
    m.compile(sgd, "mse", &[]).unwrap();
    m
}

fn bn_values(m: &Model) -> Vec<Tensor> {
    m.layers().iter().find(|l| l.path == "bn").unwrap().values.clone()
}

#[test]
fn a_step_updates_the_moving_statistics() {
    let mut m = model(BatchNormalization::new().set("momentum", 0.75));
    let (x, y) = data();
    let before = bn_values(&m);
    let names = &m.layers().iter().find(|l| l.path == "bn").unwrap().names;
    assert_eq!(names, &["gamma", "beta", "moving_mean", "moving_variance"]);
    // the Dense output the layer sees (its weights do not move at learning rate 0)
    let dense = &m.layers()[0];
    let h = x.matmul(&dense.values[0]).unwrap().add(&dense.values[1]).unwrap();
    m.train_on_batch(&[x.clone()], &y, None).unwrap();
    let after = bn_values(&m);
    assert_eq!(after[0].as_slice(), before[0].as_slice(), "gamma (lr 0)");
    assert_eq!(after[1].as_slice(), before[1].as_slice(), "beta (lr 0)");
    for c in 0..4 {
        let col: Vec<f64> = (0..8).map(|r| f64::from(h.as_slice()[r * 4 + c])).collect();
        let mean = col.iter().sum::<f64>() / 8.0;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 8.0;
        let mm = f64::from(before[2].as_slice()[c]) * 0.75 + mean * 0.25;
        let mv = f64::from(before[3].as_slice()[c]) * 0.75 + var * 0.25;
        let (gm, gv) = (f64::from(after[2].as_slice()[c]), f64::from(after[3].as_slice()[c]));
        assert!((gm - mm).abs() < 1e-5 * (1.0 + mm.abs()), "moving_mean[{c}]: {gm} vs {mm}");
        assert!((gv - mv).abs() < 1e-5 * (1.0 + mv.abs()), "moving_variance[{c}]: {gv} vs {mv}");
    }
    // predictions use the updated statistics
    let p = m.predict1(&x).unwrap();
    let mut fresh = model(BatchNormalization::new().set("momentum", 0.75));
    fresh.set_weights(&m.get_weights()).unwrap();
    assert_eq!(p.as_slice(), fresh.predict1(&x).unwrap().as_slice());
}

#[test]
fn a_frozen_layer_keeps_its_statistics() {
    let mut m = model(BatchNormalization::new().trainable(false));
    let (x, y) = data();
    let before = bn_values(&m);
    let pred = m.predict1(&x).unwrap();
    m.train_on_batch(&[x.clone()], &y, None).unwrap();
    let after = bn_values(&m);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.as_slice(), a.as_slice());
    }
    // the training forward ran in inference mode: the gradient step saw inference outputs
    let (_, _, y_pred) = m.compute_gradients(&[x.clone()], &y, None).unwrap();
    assert_eq!(y_pred.as_slice(), pred.as_slice());
}
