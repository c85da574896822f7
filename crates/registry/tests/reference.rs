//! The reference cases (keras-facts appendix): CustomDense registered as
//! `my_custom_layers>CustomDense` and the custom loss `my_custom_losses>custom_loss`, loaded from
//! every Keras-written file of `fixtures/{keras3,tfkeras}/{custom_layer,custom_loss}` and checked
//! against Keras's outputs (`io.npz`); the same files without registration give the all-missing
//! error, tested word for word.

#[allow(dead_code)]
#[path = "../../../examples/custom_dense.rs"]
mod example;

use example::CustomDense;
use std::path::Path;
use strata_format::json::Json;
use strata_format::model::ModelFile;
use strata_registry::{
    BaseConfig, Error, KerasClass, Kind, LoadOptions, Registry, from_config, load_file, load_model, load_model_with,
};
use strata_tensor::Tensor;
use strata_testkit::{fixture, tol};

/// The hand-written MSE of the Python example (`my_custom_losses>custom_loss`).
fn custom_loss(y_true: &Tensor, y_pred: &Tensor) -> strata_tensor::Result<Tensor> {
    let d = y_pred.sub(y_true)?;
    d.mul(&d)?.mean(Some(&[-1]), false)
}
type LossFn = fn(&Tensor, &Tensor) -> strata_tensor::Result<Tensor>;

fn registry() -> Registry {
    Registry::new().layer::<CustomDense>().function(
        "my_custom_losses",
        "custom_loss",
        Kind::Loss,
        custom_loss as LossFn,
    )
}

fn io(dir: &Path) -> (Vec<Tensor>, Vec<Tensor>) {
    let arrays = strata_format::npy::read_npz(&dir.join("io.npz"), &Default::default()).unwrap();
    let get = |prefix: &str| -> Vec<Tensor> {
        let mut v: Vec<_> = arrays.iter().filter(|a| a.name.starts_with(prefix)).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.iter().map(|a| Tensor::from_vec(&a.shape, a.to_f32()).unwrap()).collect()
    };
    (get("in_"), get("out_"))
}

/// Every way Keras's files of a case can be opened: whole files, and `model.json` + weights.
fn files(dir: &Path) -> Vec<(String, ModelFile)> {
    let mut out = Vec::new();
    for f in ["model.keras", "model.h5"] {
        out.push((f.to_string(), ModelFile::open(dir.join(f)).unwrap()));
    }
    for w in ["weights.h5", "model.weights.h5"] {
        if dir.join(w).exists() {
            let mut arch = ModelFile::open(dir.join("model.json")).unwrap();
            let weights = ModelFile::open(dir.join(w)).unwrap();
            arch.weights = weights.weights;
            out.push((format!("model.json+{w}"), arch));
        }
    }
    out
}

fn assert_matches(label: &str, model: &strata_layers::Model, dir: &Path) {
    let (ins, outs) = io(dir);
    let got = model.predict(&ins).unwrap_or_else(|e| panic!("{label}: predict: {e}"));
    assert_eq!(got.len(), outs.len(), "{label}");
    for (g, w) in got.iter().zip(&outs) {
        assert_eq!(g.shape(), w.shape(), "{label}");
        for (a, b) in g.as_slice().iter().zip(w.as_slice()) {
            assert!(tol::forward_close(f64::from(*a), f64::from(*b)), "{label}: {a} vs Keras {b}");
        }
    }
}

#[test]
fn custom_dense_loads_from_every_keras_file_with_keras_outputs() {
    let reg = registry();
    let mut checked = 0;
    for imp in ["keras3", "tfkeras"] {
        let dir = fixture(&format!("{imp}/custom_layer"));
        for (label, file) in files(&dir) {
            let label = format!("{imp}/custom_layer/{label}");
            let model = load_file(&file, &reg, LoadOptions::default()).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_matches(&label, &model, &dir);
            checked += 1;
        }
    }
    // keras3: .keras, .h5, json+model.weights.h5; tfkeras: those and json+weights.h5
    assert_eq!(checked, 7);
    // the path-taking entry point too
    let dir = fixture("keras3/custom_layer");
    assert_matches("load_model", &load_model(dir.join("model.keras"), &reg).unwrap(), &dir);
}

#[test]
fn unregistered_custom_layer_reports_the_exact_fix() {
    let path = fixture("keras3/custom_layer/model.keras");
    let err = load_model(&path, &Registry::new()).err().expect("must fail without the registration");
    let expected = format!(
        "cannot load `{}`: 1 custom object(s) used by the model are not registered:
  - layer class `my_custom_layers>CustomDense`, used by layer `custom_dense`
      Rust:   #[derive(KerasLayer, Serialize, Deserialize)] #[keras(package = \"my_custom_layers\")] struct CustomDense {{ .. }}, then registry.layer::<CustomDense>()
      Python: @keras.saving.register_keras_serializable(package=\"my_custom_layers\") on class CustomDense
register them on the Registry passed to strata_model::Model::load(path, &registry) (or strata_registry::load_model); LoadOptions {{ compile: false }} skips the compile config (loss, metrics) like Keras's compile=False",
        path.display()
    );
    assert_eq!(err.to_string(), expected);
    // legacy .h5 (class_name is the registered name there) and the tf-keras files say the same
    for rel in ["keras3/custom_layer/model.h5", "tfkeras/custom_layer/model.h5", "tfkeras/custom_layer/model.keras"] {
        match load_model(fixture(rel), &Registry::new()) {
            Err(Error::Missing { missing, .. }) => {
                assert_eq!(missing.len(), 1, "{rel}");
                assert_eq!(missing[0].name, "my_custom_layers>CustomDense", "{rel}");
                assert_eq!(missing[0].kind, Kind::Layer, "{rel}");
                assert_eq!(missing[0].used_by, "layer `custom_dense`", "{rel}");
            }
            other => panic!("{rel}: expected Missing, got {:?}", other.err()),
        }
    }
}

#[test]
fn custom_loss_resolves_when_registered_and_is_reported_otherwise() {
    let reg = registry();
    for imp in ["keras3", "tfkeras"] {
        let dir = fixture(&format!("{imp}/custom_loss"));
        for f in ["model.keras", "model.h5"] {
            let model = load_model(dir.join(f), &reg).unwrap_or_else(|e| panic!("{imp}/{f}: {e}"));
            assert_matches(&format!("{imp}/{f}"), &model, &dir);
            let err = load_model(dir.join(f), &Registry::new()).err().expect("loss missing");
            let msg = err.to_string();
            assert!(
                msg.contains(
                    "1 custom object(s) used by the model are not registered:
  - loss function `my_custom_losses>custom_loss`, used by compile config `loss`
      Rust:   registry.loss(\"my_custom_losses\", \"custom_loss\", custom_loss) with fn custom_loss(y_true: &Tensor, y_pred: &Tensor) -> strata_tensor::Result<Tensor>
      Python: @keras.saving.register_keras_serializable(package=\"my_custom_losses\") on def custom_loss"
                ),
                "{imp}/{f}: {msg}"
            );
            // compile=False: the loss is not needed to run the model
            let model = load_model_with(dir.join(f), &Registry::new(), LoadOptions { compile: false }).unwrap();
            assert_matches(&format!("{imp}/{f} compile=false"), &model, &dir);
        }
    }
    // strata-train takes the function back with its type; a bare name matches `pkg>name` (Keras >= 3.7)
    let f = reg.get_function::<LossFn>("my_custom_losses>custom_loss").expect("registered");
    let bare = reg.get_function::<LossFn>("custom_loss").expect("suffix fallback");
    let y = Tensor::from_vec(&[1, 2], vec![1.0, 2.0]).unwrap();
    let p = Tensor::from_vec(&[1, 2], vec![0.0, 4.0]).unwrap();
    assert_eq!(f(&y, &p).unwrap().as_slice(), &[2.5]);
    assert_eq!(bare(&y, &p).unwrap().as_slice(), &[2.5]);
    assert!(reg.get_function::<fn(&Tensor) -> Tensor>("custom_loss").is_none(), "wrong type must not downcast");
}

#[test]
fn all_missing_objects_are_reported_at_once() {
    let mut file = ModelFile::open(fixture("keras3/custom_layer/model.keras")).unwrap();
    let mut tc = file.training_config.clone().unwrap();
    tc.as_object_mut().unwrap().insert(
        "loss",
        Json::object([
            ("module", Json::from("builtins")),
            ("class_name", Json::from("function")),
            ("config", Json::from("my_custom_losses>custom_loss")),
            ("registered_name", Json::from("function")),
        ]),
    );
    tc.as_object_mut().unwrap().insert("metrics", Json::array([Json::from("mae"), Json::from("my_metrics>rmse2")]));
    file.training_config = Some(tc);
    let Err(Error::Missing { missing, .. }) = load_file(&file, &Registry::new(), LoadOptions::default()) else {
        panic!("expected Missing")
    };
    let got: Vec<(Kind, &str, &str)> = missing.iter().map(|m| (m.kind, m.name.as_str(), m.used_by.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (Kind::Layer, "my_custom_layers>CustomDense", "layer `custom_dense`"),
            (Kind::Loss, "my_custom_losses>custom_loss", "compile config `loss`"),
            (Kind::Metric, "my_metrics>rmse2", "compile config `metrics[1]`"),
        ]
    );
    // registering the layer and the loss leaves only the metric
    let Err(Error::Missing { missing, .. }) = load_file(&file, &registry(), LoadOptions::default()) else {
        panic!("expected Missing")
    };
    assert_eq!(missing.len(), 1);
    assert!(
        Error::Missing { file: "m.keras".into(), missing }
            .to_string()
            .contains("registry.metric(\"my_metrics\", \"rmse2\", rmse2)")
    );
}

#[test]
fn unregistered_class_saved_under_its_bare_name_needs_a_custom_objects_style_entry() {
    // Keras writes `registered_name: "CustomDense"` for a class that was not registered at save
    // time; only an explicit mapping of that name finds it (a `pkg>CustomDense` entry does not).
    let mut file = ModelFile::open(fixture("keras3/custom_layer/model.keras")).unwrap();
    let cfg = file.config.as_mut().unwrap();
    let l = cfg.layers.iter_mut().find(|l| l.name == "custom_dense").unwrap();
    l.registered_name = Some("CustomDense".into());
    l.module = None;
    let err = load_file(&file, &registry(), LoadOptions::default()).err().expect("bare name is not `pkg>Name`");
    assert!(
        err.to_string().contains(
            "  - layer class `CustomDense`, used by layer `custom_dense`
      Rust:   #[derive(KerasLayer, Serialize, Deserialize)] #[keras(unregistered)] struct CustomDense { .. }, then registry.layer::<CustomDense>() (the file names the class without a package: it was not registered when saved)
      Python: custom_objects={\"CustomDense\": CustomDense}, or register it with @keras.saving.register_keras_serializable() and save again"
        ),
        "{err}"
    );
    let reg = registry().layer_as::<CustomDense>("CustomDense");
    let model = load_file(&file, &reg, LoadOptions::default()).unwrap();
    assert_matches("bare name", &model, &fixture("keras3/custom_layer"));
}

#[test]
fn config_comes_from_the_struct_fields() {
    assert_eq!(CustomDense::registered_name(), "my_custom_layers>CustomDense");
    let file = ModelFile::open(fixture("keras3/custom_layer/model.keras")).unwrap();
    let l = file.config.as_ref().unwrap().layers.iter().find(|l| l.name == "custom_dense").unwrap().clone();
    let (layer, base): (CustomDense, BaseConfig) = from_config(&l.config).unwrap();
    assert_eq!(layer.units, 32);
    assert_eq!(base.name, "custom_dense");
    assert!(base.trainable);
    // get_config gives back what Keras wrote; the object dict is Keras's `__main__` form
    assert!(strata_registry::get_config(&layer, &base).unwrap().eq_unordered(&l.config));
    let dict = strata_registry::serialize_layer(&layer, &base).unwrap();
    assert_eq!(dict.get("module"), Some(&Json::Null));
    assert_eq!(dict.get("class_name").and_then(Json::as_str), Some("CustomDense"));
    assert_eq!(dict.get("registered_name").and_then(Json::as_str), Some("my_custom_layers>CustomDense"));
    // a config without the struct's field names the field
    let bad = Json::object([("name", Json::from("d")), ("unit", Json::from(3))]);
    let e = from_config::<CustomDense>(&bad).err().unwrap();
    assert_eq!(e, "missing field `units`");
}

/// A CustomDense whose `build` disagrees with the file (wrong kernel shape).
#[derive(strata_registry::KerasLayer, serde::Serialize, serde::Deserialize)]
#[keras(package = "my_custom_layers", name = "CustomDense")]
struct WrongDense {
    units: usize,
}

impl strata_registry::CustomLayer for WrongDense {
    fn build(
        &mut self,
        _s: &[strata_registry::Shape],
        w: &mut strata_registry::WeightBuilder,
    ) -> strata_registry::Result<()> {
        w.add_weight("w", &[3, self.units], "random_normal", true);
        w.add_weight("b", &[self.units], "zeros", true);
        Ok(())
    }
    fn call(&self, i: &[Tensor], _w: &strata_registry::Weights, _t: bool) -> strata_registry::Result<Vec<Tensor>> {
        Ok(i.to_vec())
    }
    fn compute_output_shape(
        &self,
        s: &[strata_registry::Shape],
    ) -> strata_registry::Result<Vec<strata_registry::Shape>> {
        Ok(s.to_vec())
    }
}

#[test]
fn weights_that_do_not_fit_build_name_the_weight() {
    assert_eq!(WrongDense::registered_name(), "my_custom_layers>CustomDense");
    let reg = Registry::new().layer::<WrongDense>();
    let err = load_model(fixture("keras3/custom_layer/model.keras"), &reg).err().unwrap().to_string();
    assert_eq!(
        err,
        "layer `custom_dense`: config key `build_config` builds `my_custom_layers>CustomDense` (Rust `reference::WrongDense`): weight `w` was built with shape [3, 32] but the file stores shape [10, 32]; check `build`'s shapes against the Python layer; fix the model config"
    );
    // legacy .h5 has no build_config: the layer builds at its first call, with the same check
    let model = load_model(fixture("keras3/custom_layer/model.h5"), &reg).unwrap();
    let e = model.predict(&[Tensor::zeros(&[1, 10]).unwrap()]).err().unwrap().to_string();
    assert!(e.contains("weight `w` was built with shape [3, 32] but the file stores shape [10, 32]"), "{e}");
}

#[test]
fn derive_defaults_follow_the_decorator() {
    #[derive(strata_registry::KerasLayer)]
    struct Plain;
    #[derive(strata_registry::KerasLayer)]
    #[keras(name = "Renamed")]
    struct Other;
    // Keras's default package is "Custom"; the name defaults to the type's
    assert_eq!(Plain::registered_name(), "Custom>Plain");
    assert_eq!(Other::registered_name(), "Custom>Renamed");
    assert_eq!(WrongDense::NAME, "CustomDense");
}

#[test]
fn custom_objects_inside_layer_configs_are_found() {
    let mut file = ModelFile::open(fixture("keras3/custom_layer/model.keras")).unwrap();
    let cfg = file.config.as_mut().unwrap();
    let out = cfg.layers.iter_mut().find(|l| l.name == "out").unwrap();
    out.config.as_object_mut().unwrap().insert(
        "activation",
        Json::object([
            ("module", Json::from("builtins")),
            ("class_name", Json::from("function")),
            ("config", Json::from("my_acts>swishy")),
            ("registered_name", Json::from("function")),
        ]),
    );
    let used = strata_registry::used_by_file(&file, LoadOptions { compile: false });
    let got: Vec<(Kind, &str, &str)> = used.iter().map(|m| (m.kind, m.name.as_str(), m.used_by.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (Kind::Layer, "my_custom_layers>CustomDense", "layer `custom_dense`"),
            (Kind::Activation, "my_acts>swishy", "layer `out` (config key `activation`)"),
        ]
    );
    let missing = registry().missing(&used);
    assert_eq!(missing.len(), 1);
    assert_eq!(
        strata_registry::missing::fix_lines(&missing[0])[0],
        "registry.activation(\"my_acts\", \"swishy\", swishy) with fn swishy(x: &Tensor) -> strata_tensor::Result<Tensor>"
    );
}

#[test]
fn fresh_weights_come_from_the_initializers() {
    let mut b = strata_registry::WeightBuilder::default();
    b.add_weight("w", &[10, 32], "random_normal", true);
    b.add_weight("moving", &[32], "ones", false);
    b.add_weight("b", &[32], "zeros", true);
    // Keras order: trainable first, each in creation order
    assert_eq!(b.keras_order(), vec![0, 2, 1]);
    let w = strata_registry::Weights::bind(b, &[], 7).unwrap();
    assert_eq!(w.get("b").unwrap().as_slice(), &[0.0; 32]);
    assert_eq!(w.get("moving").unwrap().as_slice(), &[1.0; 32]);
    let k = w.get("w").unwrap().as_slice();
    let mean = k.iter().sum::<f32>() / k.len() as f32;
    let var = k.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / k.len() as f32;
    assert!(mean.abs() < 0.01 && (var.sqrt() - 0.05).abs() < 0.01, "mean {mean} std {}", var.sqrt());
    assert!(w.get("nope").is_err());
    let order: Vec<&str> = w.keras_ordered().iter().map(|(s, _)| s.name.as_str()).collect();
    assert_eq!(order, ["w", "b", "moving"]);
}
