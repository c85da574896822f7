//! `strata predict` as a user runs it: outputs compared with what Keras computed (the `out_*`
//! arrays of each fixture's io.npz, forward tolerance), architecture-only files with --weights,
//! inputs by name and by order, `.npy` inputs, batching, and the error messages (golden files in
//! `tests/golden/predict_*.txt`; `STRATA_BLESS=1` rewrites them; review the diff).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strata_format::json::{Json, JsonLimits};
use strata_format::limits::Limits;
use strata_format::npy::{NpyArray, NpyDType, npy_bytes, read_npz, write_npz};
use strata_testkit::{fixture, repo_root, tol};

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata")).args(args).current_dir(repo_root()).output().expect("run strata")
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

/// Output text with the temporary directory shown as `<tmp>`.
fn text(bytes: &[u8], tmp: &Path) -> String {
    String::from_utf8_lossy(bytes).replace(&tmp.display().to_string(), "<tmp>")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// The arrays of a fixture's io.npz whose names start with `prefix` (`in_` or `out_`).
fn io(case: &str, prefix: &str) -> Vec<NpyArray> {
    read_npz(&fixture(&format!("{case}/io.npz")), &Limits::default())
        .unwrap()
        .into_iter()
        .filter(|a| a.name.starts_with(prefix))
        .collect()
}

/// Writes `arrays` renamed to `names` into `path`.
fn write_inputs(path: &Path, arrays: &[NpyArray], names: &[&str]) {
    let renamed: Vec<NpyArray> =
        arrays.iter().zip(names).map(|(a, n)| NpyArray { name: n.to_string(), ..a.clone() }).collect();
    write_npz(path, &renamed).unwrap();
}

/// Asserts that `out` holds `arr_0..` equal to Keras's `out_*` within the forward tolerance.
fn assert_matches_keras(out: &Path, case: &str) {
    let got = read_npz(out, &Limits::default()).unwrap();
    let want = io(case, "out_");
    assert_eq!(got.len(), want.len(), "{case}: output count");
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.name, format!("arr_{k}"));
        assert_eq!(g.dtype, NpyDType::F32);
        assert_eq!(g.shape, w.shape, "{case}: output {k} shape");
        for (a, b) in g.to_f32().iter().zip(w.to_f32()) {
            assert!(tol::forward_close(f64::from(*a), f64::from(b)), "{case}: output {k}: {a} vs keras {b}");
        }
    }
}

#[test]
fn predictions_match_keras_on_fixture_models() {
    let dir = tempfile::tempdir().unwrap();
    for (case, file) in [
        ("keras3/mlp", "model.keras"),
        ("keras3/functional_multi_io", "model.keras"),
        ("keras3/nested", "model.h5"),
        ("keras3/shared_layer", "model.keras"),
        ("tfkeras/merge", "model.h5"),
        ("keras2_2_4/functional", "model.h5"),
        ("keras1_th/mlp", "model.h5"),
    ] {
        let ins = io(case, "in_");
        let inputs = dir.path().join("x.npz");
        // any names, taken in file order
        let names: Vec<String> = (0..ins.len()).map(|k| format!("arr_{k}")).collect();
        write_inputs(&inputs, &ins, &names.iter().map(String::as_str).collect::<Vec<_>>());
        let out_path = dir.path().join("y.npz");
        let model = format!("fixtures/{case}/{file}");
        let out = strata(&["predict", &model, "--inputs", s(&inputs), "--output", s(&out_path)]);
        assert!(out.status.success(), "{model}: {}", String::from_utf8_lossy(&out.stderr));
        assert_matches_keras(&out_path, case);
        std::fs::remove_file(&out_path).unwrap();
    }
}

#[test]
fn human_summary_matches_golden() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("x.npz");
    write_inputs(&inputs, &io("keras3/functional_multi_io", "in_"), &["first", "second"]);
    let out = strata(&["predict", "fixtures/keras3/functional_multi_io/model.keras", "--inputs", s(&inputs)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    golden("predict_multi_io.txt", &text(&out.stdout, dir.path()));
    // the default output sits beside the inputs
    assert_matches_keras(&dir.path().join("x.pred.npz"), "keras3/functional_multi_io");
}

#[test]
fn architecture_only_files_run_with_weights() {
    let dir = tempfile::tempdir().unwrap();
    for (case, model, weights) in [
        ("keras3/mlp", "model.json", "model.weights.h5"),
        ("keras3/functional_multi_io", "model.json", "model.weights.h5"),
        ("keras2_2_4/functional", "model.json", "weights.h5"),
        ("tfkeras/shared_layer", "model.json", "weights.h5"),
        ("keras1_th/mlp", "model.json", "weights.h5"),
        // a full model with its weights replaced by the same weights from another file
        ("keras3/mlp", "model.keras", "model.weights.h5"),
    ] {
        let ins = io(case, "in_");
        let inputs = dir.path().join("x.npz");
        let names: Vec<String> = (0..ins.len()).map(|k| format!("arr_{k}")).collect();
        write_inputs(&inputs, &ins, &names.iter().map(String::as_str).collect::<Vec<_>>());
        let out_path = dir.path().join("y.npz");
        let (m, w) = (format!("fixtures/{case}/{model}"), format!("fixtures/{case}/{weights}"));
        let out = strata(&["predict", &m, "--weights", &w, "--inputs", s(&inputs), "--output", s(&out_path)]);
        assert!(out.status.success(), "{m} + {w}: {}", String::from_utf8_lossy(&out.stderr));
        assert_matches_keras(&out_path, case);
    }
}

#[test]
fn inputs_by_name_in_any_order_with_unused_arrays_noted() {
    let dir = tempfile::tempdir().unwrap();
    let ins = io("keras3/functional_multi_io", "in_");
    let extra = NpyArray::from_f32("labels", &[3], &[0.0, 1.0, 2.0]).unwrap();
    // in_b first, then in_a: matched by name, not position
    let arrays = vec![
        NpyArray { name: "labels".into(), ..extra },
        NpyArray { name: "in_b".into(), ..ins[1].clone() },
        NpyArray { name: "in_a".into(), ..ins[0].clone() },
    ];
    let inputs = dir.path().join("named.npz");
    write_npz(&inputs, &arrays).unwrap();
    let out_path = dir.path().join("y.npz");
    let out = strata(&[
        "predict",
        "fixtures/keras3/functional_multi_io/model.keras",
        "--inputs",
        s(&inputs),
        "--output",
        s(&out_path),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    golden("predict_by_name.txt", &text(&out.stdout, dir.path()));
    assert_matches_keras(&out_path, "keras3/functional_multi_io");
}

#[test]
fn npy_input_of_another_dtype_is_cast() {
    let dir = tempfile::tempdir().unwrap();
    let x = &io("keras3/mlp", "in_")[0];
    // the same values as float64, big-endian: exact in f64, cast back to the same f32
    let be: Vec<u8> = x.to_f32().iter().flat_map(|v| f64::from(*v).to_be_bytes()).collect();
    let mut bytes = npy_bytes(&NpyArray { name: "x".into(), dtype: NpyDType::F64, shape: x.shape.clone(), data: be });
    let at = bytes.windows(3).position(|w| w == b"<f8").unwrap();
    bytes[at] = b'>';
    let inputs = dir.path().join("x.npy");
    std::fs::write(&inputs, bytes).unwrap();
    let out = strata(&["predict", "fixtures/keras3/mlp/model.keras", "--inputs", s(&inputs)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    golden("predict_npy_cast.txt", &text(&out.stdout, dir.path()));
    assert_matches_keras(&dir.path().join("x.pred.npz"), "keras3/mlp");
}

#[test]
fn batch_size_does_not_change_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let x = &io("keras3/mlp", "in_")[0];
    // 3 samples tiled to 39
    let values: Vec<f32> = std::iter::repeat_n(x.to_f32(), 13).flatten().collect();
    let big = NpyArray::from_f32("arr_0", &[39, 8], &values).unwrap();
    let inputs = dir.path().join("big.npz");
    write_npz(&inputs, &[big]).unwrap();
    let mut results = Vec::new();
    for bs in ["0", "1", "5", "32"] {
        let out_path = dir.path().join(format!("o{bs}.npz"));
        let out = strata(&[
            "predict",
            "fixtures/keras3/mlp/model.keras",
            "--inputs",
            s(&inputs),
            "--output",
            s(&out_path),
            "--batch-size",
            bs,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let got = read_npz(&out_path, &Limits::default()).unwrap();
        assert_eq!(got[0].shape, vec![39, 3]);
        results.push(got[0].to_f32());
    }
    let want = io("keras3/mlp", "out_")[0].to_f32();
    for r in &results {
        for (i, v) in r.iter().enumerate() {
            let (a, b) = (f64::from(*v), f64::from(want[i % want.len()]));
            assert!(tol::forward_close(a, b), "sample {}: {a} vs keras {b}", i / 3);
        }
    }
}

#[test]
fn json_summary_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("x.npz");
    write_inputs(&inputs, &io("keras3/mlp", "in_"), &["input_layer"]);
    let out_path = dir.path().join("y.npz");
    let out = strata(&[
        "predict",
        "fixtures/keras3/mlp/model.json",
        "--weights",
        "fixtures/keras3/mlp/model.weights.h5",
        "--inputs",
        s(&inputs),
        "--output",
        s(&out_path),
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j = Json::parse(&out.stdout, &JsonLimits::default()).expect("--json prints JSON");
    assert_eq!(j.get("weights").and_then(Json::as_str), Some("fixtures/keras3/mlp/model.weights.h5"));
    assert_eq!(j.get("output").and_then(Json::as_str), Some(s(&out_path)));
    assert_eq!(j.get("samples").and_then(Json::as_u64), Some(3));
    assert_eq!(j.get("batch_size").and_then(Json::as_u64), Some(32));
    let input = j.get("inputs").and_then(|v| v.at(0)).expect("inputs[0]");
    assert_eq!(input.get("name").and_then(Json::as_str), Some("input_layer"));
    assert_eq!(input.get("expected_shape").and_then(Json::as_str), Some("(None, 8)"));
    assert_eq!(input.get("dtype").and_then(Json::as_str), Some("float32"));
    let output = j.get("outputs").and_then(|v| v.at(0)).expect("outputs[0]");
    assert_eq!(output.get("name").and_then(Json::as_str), Some("arr_0"));
    assert_eq!(output.get("layer").and_then(Json::as_str), Some("dense_1"));
    assert_eq!(output.get("shape").and_then(Json::as_array).map(<[Json]>::len), Some(2));
    assert_eq!(j.get("unused_arrays").and_then(Json::as_array).map(<[Json]>::len), Some(0));
}

/// Runs a failing predict: exit code 2, nothing written, stderr compared with a golden file.
fn refused(dir: &Path, args: &[&str], gold: &str) {
    let out_path = dir.join("never.npz");
    let mut all = vec!["predict"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", s(&out_path)]);
    let out = strata(&all);
    assert_eq!(out.status.code(), Some(2), "{gold}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!out_path.exists(), "{gold}: nothing is written on failure");
    golden(gold, &text(&out.stderr, dir));
}

#[test]
fn errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let multi = "fixtures/keras3/functional_multi_io/model.keras";
    let one = d.join("one.npz");
    write_inputs(&one, &io("keras3/mlp", "in_"), &["arr_0"]);
    // wrong input count: the inputs and their expected shapes are named
    refused(d, &[multi, "--inputs", s(&one)], "predict_err_count.txt");
    // a single .npy for a two-input model
    let npy = d.join("x.npy");
    std::fs::write(&npy, npy_bytes(&io("keras3/mlp", "in_")[0])).unwrap();
    refused(d, &[multi, "--inputs", s(&npy)], "predict_err_npy_multi.txt");
    // a shape that does not fit
    let ins = io("keras3/functional_multi_io", "in_");
    let swapped = d.join("swapped.npz");
    write_inputs(&swapped, &[ins[1].clone(), ins[0].clone()], &["a", "b"]);
    refused(d, &[multi, "--inputs", s(&swapped)], "predict_err_shape.txt");
    // some arrays named after inputs, one missing
    let partial = d.join("partial.npz");
    write_inputs(&partial, &[ins[0].clone(), ins[1].clone()], &["in_a", "other"]);
    refused(d, &[multi, "--inputs", s(&partial)], "predict_err_missing_name.txt");
    // different batch sizes
    let rows = NpyArray::from_f32("b", &[2, 4], &[0.0; 8]).unwrap();
    let uneven = d.join("uneven.npz");
    write_npz(&uneven, &[NpyArray { name: "a".into(), ..ins[0].clone() }, rows]).unwrap();
    refused(d, &[multi, "--inputs", s(&uneven)], "predict_err_batch.txt");
    // architecture only, no --weights
    refused(d, &["fixtures/keras3/mlp/model.json", "--inputs", s(&one)], "predict_err_no_weights.txt");
    // a weights-only file as MODEL
    refused(d, &["fixtures/keras3/mlp/model.weights.h5", "--inputs", s(&one)], "predict_err_weights_as_model.txt");
    // weights that belong to another model
    refused(
        d,
        &[
            "fixtures/keras3/mlp/model.json",
            "--weights",
            "fixtures/keras3/functional_multi_io/model.weights.h5",
            "--inputs",
            s(&one),
        ],
        "predict_err_wrong_weights.txt",
    );
    // an unsupported dtype: a string array
    let mut strings =
        npy_bytes(&NpyArray { name: "s".into(), dtype: NpyDType::U8, shape: vec![3, 8], data: vec![0; 24] });
    let at = strings.windows(3).position(|w| w == b"|u1").unwrap();
    strings.splice(at..at + 3, b"<U1".iter().copied());
    // the descr is the same length, so the header stays valid; 24 bytes are short of 3*8*4
    let str_path = d.join("strings.npy");
    std::fs::write(&str_path, strings).unwrap();
    refused(d, &["fixtures/keras3/mlp/model.keras", "--inputs", s(&str_path)], "predict_err_dtype.txt");
    // inputs that are not arrays at all
    refused(
        d,
        &["fixtures/keras3/mlp/model.keras", "--inputs", "fixtures/keras3/mlp/model.json"],
        "predict_err_not_arrays.txt",
    );
    // a truncated .npz
    let full = std::fs::read(&one).unwrap();
    let cut = d.join("cut.npz");
    std::fs::write(&cut, &full[..full.len() - 30]).unwrap();
    refused(d, &["fixtures/keras3/mlp/model.keras", "--inputs", s(&cut)], "predict_err_truncated.txt");
}
