//! `strata train` and `strata demo` as a user runs them.

use std::path::Path;
use std::process::{Command, Output};

use strata_format::npy::{NpyArray, npy_bytes};

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata")).args(args).output().expect("run strata")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    std::fs::write(path, npy_bytes(&NpyArray::from_f32("a", shape, values).unwrap())).unwrap();
}

#[test]
fn train_resumes_a_compiled_keras_model_and_saves_it_beside() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlp.keras");
    std::fs::copy(strata_testkit::fixture("keras3/mlp/model.keras"), &model).unwrap();
    let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    write_npy(&x, &[64, 8], &(0..512).map(|i| ((i * 37 % 17) as f32) / 17.0 - 0.5).collect::<Vec<_>>());
    // the fixture's last Dense has 3 units
    write_npy(&y, &[64, 3], &(0..192).map(|i| ((i * 11 % 7) as f32) / 7.0).collect::<Vec<_>>());
    let png = dir.path().join("curves.png");
    let csv = dir.path().join("log.csv");
    let o = strata(&[
        "train",
        model.to_str().unwrap(),
        "--x",
        x.to_str().unwrap(),
        "--y",
        y.to_str().unwrap(),
        "--epochs",
        "3",
        "--verbose",
        "2",
        "--plot",
        png.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("compiled as saved: resuming at optimizer iteration"), "{t}");
    assert!(t.contains("Epoch 3/3"), "{t}");
    assert!(t.contains(" - loss: ") && t.contains(" - mae: "), "the file's metrics are logged: {t}");
    let out = dir.path().join("mlp.trained.keras");
    assert!(t.contains(&format!("saved {}", out.display())), "{t}");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 4);
    // the saved model carries on: its optimizer is 3 epochs x 2 steps further than the original's
    let reg = strata_registry::Registry::new();
    let mut before = strata_model::Model::load(&model, &reg).unwrap();
    let mut after = strata_model::Model::load(&out, &reg).unwrap();
    assert!(before.compile_from_file().unwrap() && after.compile_from_file().unwrap());
    assert_eq!(after.optimizer().unwrap().iterations(), before.optimizer().unwrap().iterations() + 6);
    // unknown loss: an actionable error
    let o = strata(&[
        "train",
        model.to_str().unwrap(),
        "--x",
        x.to_str().unwrap(),
        "--y",
        y.to_str().unwrap(),
        "--loss",
        "msee",
    ]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("unknown loss `msee`"), "{t}");
}

#[test]
fn train_refuses_custom_objects_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    write_npy(&x, &[4, 10], &[0.0; 40]);
    let model = strata_testkit::fixture("keras3/custom_layer/model.keras");
    let o = strata(&["train", model.to_str().unwrap(), "--x", x.to_str().unwrap(), "--y", x.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("my_custom_layers>CustomDense") && t.contains("write a small Rust program"), "{t}");
}

#[test]
fn demo_runs_the_three_reference_cases() {
    let dir = tempfile::tempdir().unwrap();
    // the Python part runs when the oracle is installed (required in CI)
    let mut args = vec!["demo", "--dir", dir.path().to_str().unwrap()];
    let with_python = strata_testkit::oracle_python().is_some();
    if !with_python {
        args.push("--no-python");
    }
    let o = strata(&args);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("all checks passed"), "{t}");
    assert_eq!(t.matches("fresh process, nothing registered -> refused").count(), 6, "{t}");
    assert!(t.contains("used by compile config `loss`"), "{t}");
    if with_python {
        assert_eq!(t.matches("Keras loads strata's").count(), 6, "{t}");
        assert_eq!(t.matches("strata loads Keras's").count(), 6, "{t}");
        assert!(t.contains("Keras resumed the optimizer at iteration 8, 12"), "{t}");
    }
}
