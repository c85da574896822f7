//! The doctor's predictions against what real interpreters did (fixtures/doctor/lambda/, written
//! by tools/doctor/gen_lambda_files.sh): Keras 3.15.1 on CPython 3.11.7 loading Lambda files whose
//! bytecode came from CPython 2.7 and 3.6-3.14, and `marshal.loads` + call of each writer's blob in
//! every reader CPython 3.6-3.13.

use std::path::PathBuf;

use strata_doctor::lambda::{self, Outcome};
use strata_doctor::{KerasVersion, Options};
use strata_format::json::{Json, JsonLimits};
use strata_marshal::PyVersion;

/// `fixtures/<rel>` of this checkout (not strata-testkit's, which may be built for another one).
fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel)
}

fn load_json(rel: &str) -> Json {
    let bytes = std::fs::read(fixture(rel)).unwrap();
    Json::parse(bytes, &JsonLimits::default()).unwrap()
}

fn version(s: &str) -> PyVersion {
    strata_doctor::parse_python(s).unwrap_or_else(|| panic!("bad version {s}"))
}

/// `ok`, `crash`, or the error class plus its last clause (`ValueError|bad marshal data (unknown
/// type code)`), so that line numbers inside CPython's messages do not matter.
fn normalize(recorded: &str) -> String {
    if recorded.starts_with("ok") {
        return "ok".into();
    }
    if recorded.contains("signal 11") || recorded.contains("segmentation fault") {
        return "crash".into();
    }
    let class = recorded.split(':').next().unwrap_or("").trim();
    let tail = recorded.rsplit(": ").next().unwrap_or("").trim();
    format!("{class}|{tail}")
}

fn predicted(o: &Outcome) -> String {
    match o {
        Outcome::Loads => "ok".into(),
        Outcome::Crash => "crash".into(),
        Outcome::MarshalError(e) | Outcome::CallError(e) => normalize(e),
        Outcome::Undefined => "undefined".into(),
    }
}

#[test]
fn marshal_matrix_matches_every_reader_and_writer() {
    let m = load_json("doctor/lambda/marshal_matrix.json");
    let mut checked = 0;
    for reader in m.as_array().unwrap() {
        let r = version(reader["python"].as_str().unwrap());
        for (w, rec) in reader["writers"].as_object().unwrap().iter() {
            let got = predicted(&lambda::outcome(version(w), r));
            assert_eq!(got, normalize(rec.as_str().unwrap()), "writer {w} read by {r}");
            checked += 1;
        }
    }
    assert!(checked >= 80, "only {checked} pairs");
}

#[test]
fn keras_load_results_match_doctor_predictions() {
    let results = load_json("doctor/lambda/results.json");
    let mut n = 0;
    for (file, rec) in results.as_object().unwrap().iter() {
        let py = rec["python"].as_str().unwrap();
        let opts = Options {
            python: Some(version(py)),
            keras: KerasVersion::parse(rec["keras"].as_str().unwrap()).unwrap(),
            ..Options::default()
        };
        let path: PathBuf = fixture(&format!("doctor/lambda/{file}"));
        let report = strata_doctor::doctor(&path, &opts);
        assert!(report.readable, "{file}");

        // Default safe_mode: Keras refuses every Lambda, and the doctor says so.
        let safe = rec["safe_mode_default"].as_str().unwrap();
        let bytecode = report.findings.iter().find(|f| f.id == "lambda.bytecode").expect("lambda.bytecode finding");
        assert!(safe.contains("Requested the deserialization of a `Lambda` layer"), "{file}: {safe}");
        assert!(bytecode.blocks_load, "{file}");
        assert!(bytecode.message.contains("Requested the deserialization of a `Lambda` layer"), "{file}");
        assert_eq!(bytecode.location.layer.as_deref(), Some("lam"));
        assert!(bytecode.function.is_some(), "{file}: function info");

        // safe_mode=False: the marshal/bytecode outcome.
        let unsafe_ = rec["safe_mode_false"].as_str().unwrap();
        let cross = report.findings.iter().find(|f| f.id == "lambda.cross_version");
        match normalize(unsafe_).as_str() {
            "ok" => assert!(cross.is_none(), "{file}: predicted {cross:?} but Keras loaded it"),
            "crash" => {
                let c = cross.unwrap_or_else(|| panic!("{file}: no prediction for a crash"));
                assert!(c.message.contains("segmentation fault"), "{file}: {}", c.message);
            }
            other => {
                let c = cross.unwrap_or_else(|| panic!("{file}: Keras said {unsafe_} but no finding"));
                let class = other.split('|').next().unwrap();
                assert!(c.message.contains(class), "{file}: {} vs {unsafe_}", c.message);
                for phrase in
                    ["bad marshal data (unknown type code)", "EOF read where object expected", "Layer count mismatch"]
                {
                    if unsafe_.contains(phrase) {
                        assert!(c.message.contains(phrase), "{file}: {} vs {unsafe_}", c.message);
                    }
                }
                assert!(c.blocks_load);
                assert!(c.python_versions.is_some());
            }
        }
        n += 1;
    }
    assert!(n >= 20, "only {n} files");
}

#[test]
fn writer_versions_are_detected_from_the_spliced_blobs() {
    for (file, range) in [
        ("keras3_py3.10.keras", "3.10"),
        ("keras3_py3.8.h5", "3.8-3.9"),
        ("keras3_py3.13.keras", "3.13"),
        ("keras3_py3.14.keras", "3.14"),
        ("keras3_py2.7.h5", "2.7"),
    ] {
        let r = strata_doctor::doctor(&fixture(&format!("doctor/lambda/{file}")), &Options::default());
        let f = r.findings.iter().find(|f| f.id == "lambda.bytecode").unwrap();
        assert_eq!(f.python_versions.as_deref(), Some(range), "{file}");
        // Without --python: a table for 3.8 to 3.14.
        assert_eq!(f.details.iter().filter(|d| d.starts_with("CPython 3.")).count(), 7, "{file}");
    }
}

/// The committed legacy Lambda fixtures (Keras 1.0-2.3 on CPython 2.7 and 3.6, tf-keras 2.21 and
/// Keras 3.15.1 on CPython 3.11) as four real Keras/CPython pairs loaded them
/// (`legacy_results.json`, tools/doctor/record_legacy.py).
#[test]
fn legacy_loads_match_doctor_predictions() {
    let results = load_json("doctor/lambda/legacy_results.json");
    let mut n = 0;
    for (file, loaders) in results.as_object().unwrap().iter() {
        for (loader, rec) in loaders.as_object().unwrap().iter() {
            let keras = loader.trim_start_matches("tfkeras").trim_start_matches("keras").trim_start_matches("tf");
            let keras = KerasVersion::parse(keras.split('-').next().unwrap()).unwrap();
            let python = version(rec["python"].as_str().unwrap());
            let opts = Options { python: Some(python), keras, ..Options::default() };
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(file);
            let r = strata_doctor::doctor(&path, &opts);
            let cross = r.findings.iter().find(|f| f.id == "lambda.cross_version");
            let skew = r.findings.iter().find(|f| f.id == "keras.version_skew");
            let load = rec["load"].as_str().unwrap();
            let ctx = format!("{file} with {loader}: Keras said {load}");
            let marshal_level = ["bad marshal data", "EOF read where object expected", "SystemError", "signal"]
                .iter()
                .any(|p| load.contains(p));
            if load == "ok" {
                assert!(cross.is_none() && skew.is_none(), "{ctx}; doctor: {cross:?} {skew:?}");
            } else if marshal_level {
                assert!(skew.is_none(), "{ctx}; doctor: {skew:?}");
                let c = cross.unwrap_or_else(|| panic!("{ctx}; no lambda.cross_version"));
                let phrase = normalize(load);
                let tail = phrase.split('|').nth(1).unwrap_or("");
                assert!(c.message.contains(tail), "{ctx}; doctor: {}", c.message);
            } else {
                let s = skew.unwrap_or_else(|| panic!("{ctx}; no keras.version_skew"));
                let head = load.split(" using config=").next().unwrap();
                assert!(s.message.contains(head), "{ctx}; doctor: {}", s.message);
            }
            n += 1;
        }
    }
    assert!(n >= 30, "only {n} loads");
}
