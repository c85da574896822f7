//! Callbacks driven by the real fit loop (their Keras semantics are replayed against Keras in
//! strata-train's tests; here: that fit honours what they ask).

use strata_model::callbacks::{
    CSVLogger, Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint, TerminateOnNaN,
};
use strata_model::reference::{Case, seed_data};
use strata_model::{FitOptions, Model, progress::Verbosity};
use strata_train::optimizers::{Adam, SGD};

fn quiet(epochs: usize) -> FitOptions {
    FitOptions::new(epochs, 32).shuffle(false).verbose(Verbosity::Zero)
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    let mut model = Case::B.model().unwrap();
    // a learning rate so large that the validation loss gets worse after the first epochs
    model.compile(SGD::default().learning_rate(0.3), "mse", &[]).unwrap();
    let (x, y) = seed_data(5).unwrap();
    let mut cbs: Vec<Box<dyn Callback>> =
        vec![Box::new(EarlyStopping::new().monitor("val_loss").patience(1).restore_best_weights(true))];
    let h = model.fit_with(&[x.clone()], &y, quiet(30).validation_split(0.2), &mut cbs).unwrap();
    let val = h.get("val_loss").unwrap();
    assert!(val.len() < 30, "stopped early: {val:?}");
    let best = val.iter().cloned().filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
    // the restored weights give the best validation loss again
    let n = 100;
    let split = 80;
    let idx: Vec<f32> = x.as_slice()[split * 10..n * 10].to_vec();
    let vx = strata_tensor::Tensor::from_vec(&[n - split, 10], idx).unwrap();
    let vy = strata_tensor::Tensor::from_vec(&[n - split, 1], y.as_slice()[split..].to_vec()).unwrap();
    let now = model.evaluate(&vx, &vy, 32).unwrap().get("loss").unwrap();
    assert!((now - best).abs() <= 1e-6 * best.abs().max(1.0), "restored val_loss {now} vs best {best}");
}

#[test]
fn checkpoint_csv_and_scheduler_act_on_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Case::B.model().unwrap();
    model.compile(Adam::default(), "mse", &["mae"]).unwrap();
    let (x, y) = seed_data(6).unwrap();
    let ckpt = dir.path().join("ckpt-{epoch:02d}.keras");
    let csv = dir.path().join("log.csv");
    let mut cbs: Vec<Box<dyn Callback>> = vec![
        Box::new(ModelCheckpoint::new(ckpt.to_str().unwrap()).monitor("loss").save_best_only(true)),
        Box::new(CSVLogger::new(&csv)),
        Box::new(LearningRateScheduler::new(|epoch, lr| if epoch >= 1 { lr * 0.5 } else { lr })),
    ];
    let h = model.fit_with(&[x.clone()], &y, quiet(3), &mut cbs).unwrap();
    // every epoch improved the training loss here, so each wrote a checkpoint that loads
    let files: Vec<_> = (1..=3).map(|e| dir.path().join(format!("ckpt-{e:02}.keras"))).filter(|p| p.exists()).collect();
    assert!(!files.is_empty(), "no checkpoint written");
    let last = Model::load(files.last().unwrap(), &Case::B.registry()).unwrap();
    assert_eq!(last.predict1(&x).unwrap().len(), 100);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("epoch,"), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
    let lr = h.get("learning_rate").expect("the scheduler logs the learning rate");
    assert!((lr[2] - lr[0] * 0.25).abs() < 1e-9, "{lr:?}");
    assert!((model.optimizer().unwrap().current_learning_rate() as f64 - lr[2]).abs() < 1e-9);
}

#[test]
fn terminate_on_nan_stops_a_diverging_run() {
    let mut model = Case::B.model().unwrap();
    model.compile(SGD::default().learning_rate(1e6), "mse", &[]).unwrap();
    let (x, y) = seed_data(7).unwrap();
    let mut cbs: Vec<Box<dyn Callback>> = vec![Box::new(TerminateOnNaN::new())];
    let h = model.fit_with(&[x], &y, quiet(50), &mut cbs).unwrap();
    assert!(h.get("loss").unwrap().len() < 50);
}
