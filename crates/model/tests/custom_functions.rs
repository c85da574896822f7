//! Custom regularizers, constraints and initializers registered as Rust functions act exactly as
//! the built-in ones they re-implement.

use strata_model::layers::Dense;
use strata_model::reference::seed_data;
use strata_model::{FitOptions, Model, Registry, Sequential, progress::Verbosity};
use strata_tensor::Tensor;
use strata_train::optimizers::SGD;

fn model(registry: &Registry, reg: &str, con: &str) -> Model {
    Sequential::new("m")
        .input(&[10])
        .add(Dense::new(4).set("kernel_regularizer", reg).set("kernel_constraint", con))
        .add(Dense::new(1))
        .build(registry)
        .unwrap()
}

#[test]
fn registered_regularizer_and_constraint_match_the_builtins() {
    let registry = Registry::new()
        .regularizer("my_regs", "l2", |w: &Tensor| Ok(w.square().sum(None, false)?.scale(0.01)))
        .constraint("my_cons", "non_neg", |w: &Tensor| w.maximum(&Tensor::scalar(0.0)));
    let builtin_reg = strata_train::regularizers::Regularizer::l2(0.01).unwrap().serialize();
    let builtin_con = strata_train::constraints::Constraint::deserialize(&strata_format::json::Json::from("non_neg"))
        .unwrap()
        .serialize();
    let mut a = Sequential::new("m")
        .input(&[10])
        .add(Dense::new(4).set("kernel_regularizer", builtin_reg).set("kernel_constraint", builtin_con))
        .add(Dense::new(1))
        .build(&registry)
        .unwrap();
    let mut b = model(&registry, "my_regs>l2", "my_cons>non_neg");
    b.set_weights(&a.get_weights()).unwrap();
    let (x, y) = seed_data(11).unwrap();
    for m in [&mut a, &mut b] {
        m.compile(SGD::default().learning_rate(0.05), "mse", &[]).unwrap();
    }
    let opts = || FitOptions::new(3, 32).shuffle(false).verbose(Verbosity::Zero);
    let ha = a.fit(&x, &y, opts()).unwrap();
    let hb = b.fit(&x, &y, opts()).unwrap();
    let (la, lb) = (ha.get("loss").unwrap(), hb.get("loss").unwrap());
    for (p, q) in la.iter().zip(lb) {
        assert!((p - q).abs() <= 1e-6 * p.abs().max(1.0), "{la:?} vs {lb:?}");
    }
    for (p, q) in a.get_weights().iter().zip(b.get_weights()) {
        for (u, v) in p.as_slice().iter().zip(q.as_slice()) {
            assert!((u - v).abs() <= 1e-6, "{u} vs {v}");
        }
    }
    assert!(b.get_weights()[0].as_slice().iter().all(|&w| w >= 0.0), "the constraint applied");
}

#[test]
fn registered_initializer_draws_the_first_values() {
    let registry = Registry::new().initializer("my_inits", "halves", |shape: &[usize]| Tensor::full(shape, 0.5));
    let m = Sequential::new("m")
        .input(&[3])
        .add(Dense::new(2).set("kernel_initializer", "my_inits>halves"))
        .build(&registry)
        .unwrap();
    assert!(m.get_weights()[0].as_slice().iter().all(|&w| w == 0.5));
    let err = Sequential::new("m")
        .input(&[3])
        .add(Dense::new(2).set("kernel_initializer", "my_inits>nope"))
        .build(&registry)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
}

#[derive(strata_registry::KerasLayer, serde::Serialize, serde::Deserialize, Clone)]
#[keras(package = "my_losses")]
struct ScaledMse {
    scale: f32,
}

impl strata_registry::CustomLoss for ScaledMse {
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> strata_tensor::Result<Tensor> {
        Ok(y_pred.sub(y_true)?.square().mean(Some(&[-1]), false)?.scale(self.scale))
    }
}

#[test]
fn custom_loss_class_round_trips_with_its_config() {
    use strata_model::LossArg;
    let registry = Registry::new().loss_class::<ScaledMse>();
    let mut m = Sequential::new("m").input(&[10]).add(Dense::new(1)).build(&registry).unwrap();
    m.compile(SGD::default().learning_rate(0.01), LossArg::class(ScaledMse { scale: 3.0 }).unwrap(), &[]).unwrap();
    let (x, y) = seed_data(12).unwrap();
    let opts = || FitOptions::new(1, 32).shuffle(false).verbose(Verbosity::Zero);
    m.fit(&x, &y, opts()).unwrap();
    let cc = m.to_config_json();
    let loss = cc.get("compile_config").and_then(|c| c.get("loss")).unwrap();
    assert_eq!(loss.get("registered_name").and_then(|v| v.as_str()), Some("my_losses>ScaledMse"));
    assert_eq!(loss.get("config").and_then(|c| c.get("scale")).and_then(|v| v.as_f64()), Some(3.0));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.keras");
    m.save(&path).unwrap();
    // the loss value with scale 3 is 3x plain mse: the reloaded model must compute the same
    let mut back = Model::load(&path, &registry).unwrap();
    assert!(back.compile_from_file().unwrap());
    let e1 = m.evaluate(&x, &y, 32).unwrap().get("loss").unwrap();
    let e2 = back.evaluate(&x, &y, 32).unwrap().get("loss").unwrap();
    assert_eq!(e1, e2);
    let mut plain = Model::load(&path, &registry).unwrap();
    plain.compile(SGD::default(), "mse", &[]).unwrap();
    let e3 = plain.evaluate(&x, &y, 32).unwrap().get("loss").unwrap();
    assert!((e1 - 3.0 * e3).abs() <= 1e-5 * e1, "{e1} vs 3 x {e3}");
    let err = Model::load(&path, &Registry::new()).unwrap_err().to_string();
    assert!(err.contains("my_losses>ScaledMse") && err.contains("used by compile config `loss`"), "{err}");
    assert!(err.contains("registry.loss_class::<ScaledMse>()"), "{err}");
    // Python Keras compiles the saved model with its own ScaledMse and computes the same loss
    let Some(py) = strata_testkit::oracle_python() else { return };
    let npy = |name: &str, t: &Tensor| {
        let a = strata_format::npy::NpyArray::from_f32("a", t.shape(), t.as_slice()).unwrap();
        std::fs::write(dir.path().join(name), strata_format::npy::npy_bytes(&a)).unwrap();
    };
    npy("x.npy", &x);
    npy("y.npy", &y);
    let code = format!(
        r#"import os, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras
from keras import ops
@keras.saving.register_keras_serializable(package="my_losses")
class ScaledMse(keras.losses.Loss):
    def __init__(self, scale=1.0, **kw):
        super().__init__(**kw)
        self.scale = scale
    def call(self, y_true, y_pred):
        return ops.mean(ops.square(y_pred - y_true), axis=-1) * self.scale
    def get_config(self):
        return {{**super().get_config(), "scale": self.scale}}
d = {d:?}
m = keras.saving.load_model(d + "/m.keras")
print(json.dumps(dict(scale=m.loss.scale, loss=float(m.evaluate(np.load(d + "/x.npy"), np.load(d + "/y.npy"), batch_size=32, verbose=0)))))"#,
        d = dir.path().display().to_string()
    );
    let out = std::process::Command::new(&py).arg("-c").arg(&code).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let j = strata_format::json::Json::parse(stdout.lines().last().unwrap_or_default().as_bytes(), &Default::default())
        .unwrap_or_else(|e| panic!("{stdout} {}: {e}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(j.get("scale").and_then(|v| v.as_f64()), Some(3.0));
    let k = j.get("loss").and_then(|v| v.as_f64()).unwrap();
    assert!((k - e1).abs() <= 1e-5 * e1.abs().max(1e-3), "Keras loss {k} vs strata {e1}");
}

#[test]
fn registered_activation_runs_and_trains_like_the_builtin() {
    let registry = Registry::new().activation("my_acts", "swishy", |x: &Tensor| x.mul(&x.sigmoid()));
    let build = |act: &str| {
        Sequential::new("m")
            .input(&[10])
            .add(Dense::new(8).activation(act))
            .add(Dense::new(1))
            .build(&registry)
            .unwrap()
    };
    let mut a = build("swish");
    let mut b = build("my_acts>swishy");
    b.set_weights(&a.get_weights()).unwrap();
    let (x, y) = seed_data(13).unwrap();
    let (pa, pb) = (a.predict1(&x).unwrap(), b.predict1(&x).unwrap());
    for (u, v) in pa.as_slice().iter().zip(pb.as_slice()) {
        assert!((u - v).abs() <= 1e-6, "{u} vs {v}");
    }
    for m in [&mut a, &mut b] {
        m.compile(SGD::default().learning_rate(0.05), "mse", &[]).unwrap();
        m.fit(&x, &y, FitOptions::new(2, 32).shuffle(false).verbose(Verbosity::Zero)).unwrap();
    }
    for (p, q) in a.get_weights().iter().zip(b.get_weights()) {
        for (u, v) in p.as_slice().iter().zip(q.as_slice()) {
            assert!((u - v).abs() <= 1e-5, "{u} vs {v}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.keras");
    b.save(&path).unwrap();
    let back = Model::load(&path, &registry).unwrap();
    assert_eq!(back.predict1(&x).unwrap().as_slice(), b.predict1(&x).unwrap().as_slice());
    let err = Model::load(&path, &Registry::new()).unwrap_err().to_string();
    assert!(err.contains("activation function `my_acts>swishy`") && err.contains("registry.activation("), "{err}");
}

/// A stateful metric class: `factor` is its config, `total`/`count` its state.
#[derive(strata_registry::KerasLayer, serde::Serialize, serde::Deserialize)]
#[keras(package = "my_metrics")]
struct ScaledMae {
    factor: f32,
    #[serde(skip)]
    total: f64,
    #[serde(skip)]
    count: f64,
}

impl strata_registry::CustomMetric for ScaledMae {
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> strata_tensor::Result<()> {
        let d = y_pred.sub(y_true)?.abs();
        self.total += f64::from(d.sum(None, false)?.item().unwrap_or(0.0)) * f64::from(self.factor);
        self.count += d.len() as f64;
        Ok(())
    }
    fn result(&self) -> f32 {
        if self.count == 0.0 { 0.0 } else { (self.total / self.count) as f32 }
    }
    fn reset_state(&mut self) {
        self.total = 0.0;
        self.count = 0.0;
    }
}

#[test]
fn custom_metric_class_is_logged_saved_and_restored_with_its_config() {
    use strata_model::MetricArg;
    let registry = Registry::new().metric_class::<ScaledMae>();
    let mut m = Sequential::new("m").input(&[10]).add(Dense::new(1)).build(&registry).unwrap();
    let metric = ScaledMae { factor: 2.0, total: 0.0, count: 0.0 };
    m.compile_with_metrics(
        SGD::default(),
        "mse",
        vec![MetricArg::name("mae"), MetricArg::class(&metric, "scaled_mae").unwrap()],
    )
    .unwrap();
    let (x, y) = seed_data(14).unwrap();
    let h = m.fit(&x, &y, FitOptions::new(2, 32).shuffle(false).verbose(Verbosity::Zero)).unwrap();
    let (mae, scaled) = (h.get("mae").unwrap(), h.get("scaled_mae").unwrap());
    for (a, b) in mae.iter().zip(scaled) {
        assert!((2.0 * a - b).abs() <= 1e-5 * b.abs(), "{mae:?} vs {scaled:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.keras");
    m.save(&path).unwrap();
    let mut back = Model::load(&path, &registry).unwrap();
    assert!(back.compile_from_file().unwrap());
    let e = back.evaluate(&x, &y, 32).unwrap();
    assert!((2.0 * e.get("mae").unwrap() - e.get("scaled_mae").unwrap()).abs() <= 1e-5);
    let err = Model::load(&path, &Registry::new()).unwrap_err().to_string();
    assert!(err.contains("my_metrics>ScaledMae") && err.contains("compile config `metrics"), "{err}");
    assert!(err.contains("registry.metric_class::<ScaledMae>()"), "{err}");
}
