//! Define -> fit -> save -> load -> resume, in strata alone (the Keras side is in tests/interop.rs).

use strata_model::reference::{Case, seed_data};
use strata_model::{FitOptions, Model, progress::Verbosity};
use strata_tensor::Tensor;
use strata_train::optimizers::Adam;

fn trained(case: Case) -> (Model, Tensor, Tensor) {
    let mut model = case.model().unwrap();
    model.compile(Adam::default(), case.loss(), &["mae"]).unwrap();
    let (x, y) = seed_data(7).unwrap();
    let h = model.fit(&x, &y, FitOptions::new(2, 32).shuffle(false).verbose(Verbosity::Zero)).unwrap();
    assert_eq!(h.get("loss").unwrap().len(), 2);
    (model, x, y)
}

#[test]
fn fit_reduces_the_loss() {
    let mut model = Case::B.model().unwrap();
    model.compile(Adam::default().learning_rate(0.01), "mse", &["mae"]).unwrap();
    let (x, _) = seed_data(1).unwrap();
    let y = x.sum(Some(&[1]), true).unwrap();
    let h = model.fit(&x, &y, FitOptions::new(20, 32).verbose(Verbosity::Zero)).unwrap();
    let loss = h.get("loss").unwrap();
    assert!(loss[19] < loss[0] * 0.1, "{loss:?}");
    assert_eq!(h.get("mae").unwrap().len(), 20, "metrics are logged under the name they were given");
}

#[test]
fn saved_models_reload_with_equal_predictions_and_resume_training() {
    for case in [Case::A, Case::B, Case::C] {
        let (mut model, x, y) = trained(case);
        let dir = tempfile::tempdir().unwrap();
        for name in ["m.keras", "m.h5"] {
            let path = dir.path().join(name);
            model.save(&path).unwrap();
            let mut back = Model::load(&path, &case.registry()).unwrap_or_else(|e| panic!("{case:?} {name}: {e}"));
            let p0 = model.predict1(&x).unwrap();
            let p1 = back.predict1(&x).unwrap();
            assert_eq!(p0.as_slice(), p1.as_slice(), "{case:?} {name}: predictions after reload");
            assert!(back.compile_from_file().unwrap(), "{case:?} {name}: compile config kept");
            let it0 = model.optimizer().unwrap().iterations();
            assert_eq!(back.optimizer().unwrap().iterations(), it0, "{case:?} {name}: optimizer iterations restored");
            // one more step from the same state gives the same weights on both sides
            let mut again = Model::load(&path, &case.registry()).unwrap();
            again.compile_from_file().unwrap();
            let xb = strata_tensor::Tensor::from_vec(&[4, 10], x.as_slice()[..40].to_vec()).unwrap();
            let yb = strata_tensor::Tensor::from_vec(&[4, 1], y.as_slice()[..4].to_vec()).unwrap();
            let mut reference = Model::load(&path, &case.registry()).unwrap();
            reference.compile_from_file().unwrap();
            reference.train_on_batch(&[xb.clone()], &yb, None).unwrap();
            again.train_on_batch(&[xb], &yb, None).unwrap();
            assert_eq!(reference.get_weights(), again.get_weights());
        }
        // the weights-only file
        let wpath = dir.path().join("m.weights.h5");
        model.save_weights(&wpath).unwrap();
        model.set_weights(&model.get_weights()).unwrap();
    }
}

#[test]
fn unregistered_layer_is_reported_with_the_fix() {
    let (model, _, _) = trained(Case::B);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.keras");
    model.save(&path).unwrap();
    let err = Model::load(&path, &strata_registry::Registry::new()).unwrap_err().to_string();
    assert!(err.contains("layer class `my_custom_layers>CustomDense`, used by layer `custom_dense`"), "{err}");
    assert!(err.contains("#[keras(package = \"my_custom_layers\")] struct CustomDense"), "{err}");
    assert!(err.contains("@keras.saving.register_keras_serializable(package=\"my_custom_layers\")"), "{err}");
}

#[test]
fn fit_refuses_bad_arguments_with_a_fix() {
    let mut model = Case::B.model().unwrap();
    let (x, y) = seed_data(1).unwrap();
    let err = model.fit(&x, &y, FitOptions::new(1, 32)).unwrap_err().to_string();
    assert!(err.contains("is not compiled") && err.contains("model.compile("), "{err}");
    model.compile(Adam::default(), "mse", &[]).unwrap();
    let short = Tensor::zeros(&[50, 1]).unwrap();
    let err = model.fit(&x, &short, FitOptions::new(1, 32)).unwrap_err().to_string();
    assert!(err.contains("input 0 has 100 rows but y has 50"), "{err}");
    let err = model.compile(Adam::default(), "nope", &[]).unwrap_err().to_string();
    assert!(err.contains("unknown loss `nope`") && err.contains("Registry::loss"), "{err}");
}
