//! `strata doctor` and `strata scan` as a user runs them: text compared with committed golden
//! files (`STRATA_BLESS=1` rewrites them; review the diff like code), JSON and SARIF fields, exit
//! codes (doctor: 0 loads, 1 findings that stop a load, 2 not readable; scan: 0 clean, 1 findings,
//! 2 could not scan), and that scanning the malicious samples runs none of their payloads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strata_format::json::{Json, JsonLimits};

/// This checkout's root (strata-testkit's may be built for another checkout).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn strata_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata")).args(args).current_dir(dir).output().expect("run strata")
}

fn strata(args: &[&str]) -> Output {
    strata_in(&root(), args)
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var("STRATA_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden file {}; run with STRATA_BLESS=1 to create it", path.display()));
    assert_eq!(actual, want, "output differs from {}; run with STRATA_BLESS=1 to accept it", path.display());
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn json(o: &Output) -> Json {
    Json::parse(&o.stdout, &JsonLimits::default()).expect("prints JSON")
}

#[test]
fn doctor_text_matches_golden_files() {
    for (args, gold, want) in [
        (
            &["doctor", "fixtures/doctor/lambda/keras3_py3.10.keras", "--python", "3.11"][..],
            "doctor_lambda_py310_on_311.txt",
            1,
        ),
        (&["doctor", "fixtures/doctor/lambda/keras3_py3.13.h5"][..], "doctor_lambda_py313_h5_table.txt", 1),
        (&["doctor", "fixtures/keras3/custom_layer/model.keras"][..], "doctor_custom_layer_keras.txt", 1),
        (&["doctor", "fixtures/keras3/custom_loss/model.h5"][..], "doctor_custom_loss_h5.txt", 1),
        (&["doctor", "fixtures/hostile/truncated.keras"][..], "doctor_truncated_keras.txt", 2),
        (&["doctor", "fixtures/keras3/mlp/model.keras"][..], "doctor_mlp_keras.txt", 0),
    ] {
        let out = strata(args);
        assert_eq!(code(&out), want, "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        golden(gold, &String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn doctor_json_has_the_documented_fields() {
    let out = strata(&["doctor", "--json", "--python", "3.12", "fixtures/doctor/lambda/keras3_py3.8.keras"]);
    assert_eq!(code(&out), 1);
    let j = json(&out);
    assert_eq!(j["target_python"].as_str(), Some("3.12"));
    let f = j["findings"].as_array().unwrap();
    let cross = f.iter().find(|f| f["id"].as_str() == Some("lambda.cross_version")).expect("cross_version");
    assert_eq!(cross["python_versions"].as_str(), Some("3.8-3.9"));
    assert_eq!(cross["function"]["name"].as_str(), Some("<lambda>"));
    assert_eq!(cross["location"]["layer"].as_str(), Some("lam"));
    assert!(cross["message"].as_str().unwrap().contains("bad marshal data (unknown type code)"));
    // Same-version: no cross_version finding, and still blocked by safe_mode.
    let same = json(&strata(&["doctor", "--json", "--python", "3.8", "fixtures/doctor/lambda/keras3_py3.8.keras"]));
    assert!(same["findings"].as_array().unwrap().iter().all(|f| f["id"].as_str() != Some("lambda.cross_version")));
}

#[test]
fn doctor_refuses_bad_arguments_and_missing_files() {
    let out = strata(&["doctor", "--python", "banana", "fixtures/keras3/mlp/model.keras"]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--python `banana`"));
    assert_eq!(code(&strata(&["doctor", "fixtures/does/not/exist.keras"])), 2);
}

#[test]
fn scan_text_json_and_sarif_on_the_malicious_samples() {
    let out = strata(&["scan", "fixtures/malicious"]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    golden("scan_malicious.txt", &String::from_utf8_lossy(&out.stdout));

    let j = json(&strata(&["scan", "--json", "fixtures/malicious"]));
    assert_eq!(j["scanned"].as_array().unwrap().len(), 12);
    let ids: Vec<&str> = j["findings"].as_array().unwrap().iter().filter_map(|f| f["id"].as_str()).collect();
    for id in [
        "scan.lambda_os_system",
        "scan.module_outside_keras",
        "scan.keras_gadget",
        "scan.safe_mode_flip",
        "scan.pickle_code_execution",
        "archive.path_traversal",
        "archive.zip_bomb",
        "hdf5.external_link",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let s = json(&strata(&["scan", "--sarif", "fixtures/malicious"]));
    assert_eq!(s["version"].as_str(), Some("2.1.0"));
    assert_eq!(s["runs"][0]["results"].as_array().unwrap().len(), ids.len());
}

#[test]
fn scan_exit_codes() {
    assert_eq!(code(&strata(&["scan", "fixtures/keras3/mlp", "fixtures/keras3/conv2d/model.keras"])), 0);
    assert_eq!(code(&strata(&["scan", "fixtures/does/not/exist"])), 2);
    assert_eq!(code(&strata(&["scan", "fixtures/malicious/zip_bomb.keras"])), 1);
}

#[test]
fn doctor_scan_and_inspect_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mal = root().join("fixtures/malicious");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&mal).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let s = strata_in(dir.path(), &["scan", mal.to_str().unwrap()]);
    assert_eq!(code(&s), 1);
    for f in &files {
        let f = f.to_str().unwrap();
        let d = strata_in(dir.path(), &["doctor", f]);
        assert!(matches!(code(&d), 1 | 2), "{f}: {}", String::from_utf8_lossy(&d.stderr));
        let _ = strata_in(dir.path(), &["inspect", f]);
    }
    assert!(!dir.path().join("strata_pwned_marker").exists(), "a payload ran");
    assert!(!root().join("strata_pwned_marker").exists(), "a payload ran");
}
