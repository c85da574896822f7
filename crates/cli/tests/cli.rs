//! The `strata` binary as a user runs it: output compared with committed golden files
//! (`STRATA_BLESS=1` rewrites them; review the diff like code), JSON fields, exit codes and
//! the messages for files that are not models.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strata_format::json::{Json, JsonLimits};

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .current_dir(strata_testkit::repo_root())
        .output()
        .expect("run strata")
}

fn golden(name: &str, actual: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var("STRATA_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden file {}; run with STRATA_BLESS=1 to create it", path.display()));
    assert_eq!(actual, want, "output differs from {}; run with STRATA_BLESS=1 to accept it", path.display());
}

#[test]
fn inspect_text_matches_golden_files() {
    for (file, gold) in [
        ("fixtures/keras3/mlp/model.keras", "inspect_keras3_mlp_keras.txt"),
        ("fixtures/keras3/nested/model.h5", "inspect_keras3_nested_h5.txt"),
        ("fixtures/tfkeras/custom_layer/model.h5", "inspect_tfkeras_custom_layer_h5.txt"),
        ("fixtures/keras3/lambda/model.keras", "inspect_keras3_lambda_keras.txt"),
        ("fixtures/keras1_th/merge_seq/model.h5", "inspect_keras1_th_merge_seq_h5.txt"),
        ("fixtures/keras3/normalization/model.weights.h5", "inspect_keras3_normalization_weights.txt"),
    ] {
        let out = strata(&["inspect", file]);
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        golden(gold, &String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn inspect_json_has_the_documented_fields() {
    let out = strata(&["inspect", "--json", "fixtures/keras3/nested/model.keras"]);
    assert!(out.status.success());
    let j = Json::parse(&out.stdout, &JsonLimits::default()).expect("inspect --json prints JSON");
    assert_eq!(j.get("format").and_then(Json::as_str), Some("keras_v3"));
    assert_eq!(j.get("keras_version").and_then(Json::as_str), Some("3.15.1"));
    assert!(j.get("backend").is_some());
    let meta = Json::parse(
        &std::fs::read(strata_testkit::fixture("keras3/nested/meta.json")).unwrap(),
        &JsonLimits::default(),
    )
    .unwrap();
    assert_eq!(j.get("total_params").and_then(Json::as_u64), meta.get("total_params").and_then(Json::as_u64));
    let layers = j.get("layers").and_then(Json::as_array).expect("layers");
    let inner = layers
        .iter()
        .find(|l| l.get("path").and_then(Json::as_str) == Some("inner_seq/seq_dense_1"))
        .expect("nested layer listed with its path");
    assert_eq!(inner.get("class_name").and_then(Json::as_str), Some("Dense"));
    assert!(inner.get("params").and_then(Json::as_u64).is_some());
    let weights = j.get("weights").and_then(Json::as_array).expect("weights");
    assert!(weights.iter().all(|w| w.get("path").is_some() && w.get("shape").is_some() && w.get("dtype").is_some()));
    // registered_name appears for custom classes
    let out = strata(&["inspect", "--json", "fixtures/keras3/custom_layer/model.keras"]);
    let j = Json::parse(&out.stdout, &JsonLimits::default()).unwrap();
    let custom = j
        .get("layers")
        .and_then(Json::as_array)
        .unwrap()
        .iter()
        .find(|l| l.get("class_name").and_then(Json::as_str) == Some("CustomDense"))
        .cloned()
        .expect("custom layer row");
    assert_eq!(custom.get("registered_name").and_then(Json::as_str), Some("my_custom_layers>CustomDense"));
    assert_eq!(custom.get("kind").and_then(Json::as_str), Some("custom"));
}

#[test]
fn files_that_are_not_models_exit_2_with_what_to_do() {
    let out = strata(&["inspect", "fixtures/hostile/lfs_pointer.keras"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a Git LFS pointer") && err.contains("git lfs pull"), "{err}");

    let out = strata(&["inspect", "fixtures/hostile/zip_bomb.keras"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("looks like a zip bomb"));

    // a truncated HDF5 file says where it should end
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(strata_testkit::fixture("keras3/mlp/model.h5")).unwrap();
    let cut = dir.path().join("cut.h5");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let out = strata(&["inspect", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("is {} bytes", full.len() / 2)) && err.contains("cut short"), "{err}");
}

#[test]
fn hdf5_behind_a_keras_name_is_read_as_hdf5_with_a_note() {
    let out = strata(&["inspect", "fixtures/hostile/hdf5_named.keras"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("legacy_h5_model") && text.contains("HDF5 bytes behind a `.keras` name"), "{text}");
}

#[test]
fn convert_round_trips_bit_identical_weights() {
    let dir = tempfile::tempdir().unwrap();
    let src = "fixtures/keras3/normalization/model.keras";
    let h5 = dir.path().join("m.h5");
    let back = dir.path().join("m.keras");
    assert!(strata(&["convert", src, h5.to_str().unwrap()]).status.success());
    assert!(strata(&["convert", h5.to_str().unwrap(), back.to_str().unwrap()]).status.success());
    let a = strata_format::model::ModelFile::open(strata_testkit::repo_root().join(src)).unwrap();
    let b = strata_format::model::ModelFile::open(&back).unwrap();
    let (wa, wb) = (a.weights.as_ref().unwrap(), b.weights.as_ref().unwrap());
    let ta: Vec<_> = wa.tensors().collect();
    let tb: Vec<_> = wb.tensors().collect();
    assert_eq!(ta.len(), tb.len());
    for t in &ta {
        let u = tb
            .iter()
            .find(|u| u.h5_path == t.h5_path)
            .unwrap_or_else(|| panic!("{} missing after the round trip", t.h5_path));
        assert_eq!((&t.shape, &t.dtype), (&u.shape, &u.dtype));
        assert_eq!(wa.read(t).unwrap(), wb.read(u).unwrap(), "{} changed", t.h5_path);
    }
    // saving twice gives identical bytes (SOURCE_DATE_EPOCH pins date_saved)
    let again = dir.path().join("m2.keras");
    let run = |out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["convert", h5.to_str().unwrap(), out.to_str().unwrap()])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap()
    };
    assert!(run(&back).status.success() && run(&again).status.success());
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn convert_refuses_weights_without_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        strata(&["convert", "fixtures/keras3/mlp/model.weights.h5", dir.path().join("x.keras").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a weights-only file") && err.contains("--weights"), "{err}");
    assert!(!dir.path().join("x.keras").exists(), "nothing is written on failure");
}

#[test]
fn bit_flips_are_reported_not_crashed_on() {
    let dir = tempfile::tempdir().unwrap();
    // the HDF5 signature damaged: the bytes are no longer recognisable, and the message says what they are
    let mut h5 = std::fs::read(strata_testkit::fixture("keras3/mlp/model.h5")).unwrap();
    h5[1] ^= 0x01;
    let p = dir.path().join("flipped.h5");
    std::fs::write(&p, &h5).unwrap();
    let out = strata(&["inspect", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a file kind strata knows") && err.contains("89 48 44 46"), "{err}");

    // a flipped byte inside config.json of a .keras: the CRC catches it
    let mut k = std::fs::read(strata_testkit::fixture("keras3/mlp/model.keras")).unwrap();
    let at = k.windows(7).position(|w| w == b"\"units\"").expect("config.json text is stored uncompressed");
    k[at + 2] ^= 0x20;
    let p = dir.path().join("flipped.keras");
    std::fs::write(&p, &k).unwrap();
    let out = strata(&["inspect", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("member `config.json` is corrupt") && err.contains("CRC-32"), "{err}");

    // every single-bit flip of the first 2 KiB of a weights file: an answer or an error, never a crash
    let w = std::fs::read(strata_testkit::fixture("keras3/mlp/model.weights.h5")).unwrap();
    let p = dir.path().join("w.weights.h5");
    for i in (0..w.len().min(2048)).step_by(7) {
        let mut b = w.clone();
        b[i] ^= 0x10;
        std::fs::write(&p, &b).unwrap();
        let out = strata(&["inspect", "--json", p.to_str().unwrap()]);
        assert!(matches!(out.status.code(), Some(0) | Some(2)), "byte {i}: {:?}", out.status);
    }
}

#[test]
fn convert_refuses_weights_that_do_not_fit_the_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("x.keras");
    let out = strata(&[
        "convert",
        "fixtures/keras3/mlp/model.keras",
        out_path.to_str().unwrap(),
        "--weights",
        "fixtures/keras3/normalization/model.weights.h5",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("layer `dense` (Dense) needs weights (*, 4), (4,) by its config, but the file has (6, 8), (8,)"),
        "{err}"
    );
    assert!(err.contains("weights group `layers/batch_normalization` (4 tensors) belongs to no layer"), "{err}");
    assert!(!out_path.exists(), "nothing is written on failure");
}
