//! Findings per fixture: malicious samples (fixtures/malicious/, tools/doctor/gen_malicious.py),
//! hostile files, custom objects, legacy compile configs; JSON fields and SARIF basics. Scanning
//! must run nothing: every payload would write `strata_pwned_marker`.

use std::path::{Path, PathBuf};

use strata_doctor::{Category, Finding, Options, Severity, output};
use strata_format::json::{Json, JsonLimits};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel)
}

fn doctor(rel: &str) -> strata_doctor::FileReport {
    strata_doctor::doctor(&fixture(rel), &Options::default())
}

fn find<'a>(r: &'a strata_doctor::FileReport, id: &str) -> &'a Finding {
    r.findings.iter().find(|f| f.id == id).unwrap_or_else(|| {
        panic!("{}: no `{id}` among {:?}", r.file, r.findings.iter().map(|f| f.id).collect::<Vec<_>>())
    })
}

#[test]
fn every_malicious_sample_is_flagged_with_its_id_severity_and_cve() {
    let cases: &[(&str, &str, Severity, Option<&str>)] = &[
        ("lambda_os_system.keras", "scan.lambda_os_system", Severity::Critical, Some("CVE-2024-3660")),
        ("lambda_os_system.keras", "scan.lambda_import", Severity::Critical, Some("CVE-2024-3660")),
        ("lambda_os_system.keras", "lambda.bytecode", Severity::High, Some("CVE-2024-3660")),
        ("lambda_os_system.h5", "scan.lambda_os_system", Severity::Critical, Some("CVE-2024-3660")),
        ("module_outside_keras.keras", "scan.module_outside_keras", Severity::Critical, Some("CVE-2025-1550")),
        ("get_file_gadget.keras", "scan.keras_gadget", Severity::Critical, Some("CVE-2025-8747")),
        ("safe_mode_flip.keras", "scan.safe_mode_flip", Severity::Critical, Some("CVE-2025-9906")),
        ("safe_mode_flip.keras", "scan.lambda_os_system", Severity::Critical, Some("CVE-2024-3660")),
        ("tfsm_layer.keras", "scan.external_savedmodel", Severity::High, Some("CVE-2026-1462")),
        ("vocabulary_path.keras", "scan.vocabulary_path", Severity::Medium, Some("CVE-2025-12058")),
        ("npz_pickle.keras", "scan.pickle_code_execution", Severity::Critical, None),
        ("pickle_os_system.pkl", "scan.pickle_code_execution", Severity::Critical, None),
        ("path_traversal.keras", "archive.path_traversal", Severity::High, Some("CVE-2026-12479")),
        ("zip_bomb.keras", "archive.zip_bomb", Severity::High, None),
        ("hdf5_external_link.h5", "hdf5.external_link", Severity::High, None),
    ];
    for (file, id, sev, cve) in cases {
        let r = doctor(&format!("malicious/{file}"));
        let f = find(&r, id);
        assert_eq!(f.severity, *sev, "{file} {id}");
        assert_eq!(f.cve, *cve, "{file} {id}");
        assert_eq!(f.category, Category::Security, "{file} {id}");
        assert!(!f.fix.is_empty());
    }
    // What the payload is, named without running it.
    let r = doctor("malicious/lambda_os_system.keras");
    let f = find(&r, "scan.lambda_os_system");
    assert!(f.message.contains("system") && f.message.contains("echo pwned > strata_pwned_marker"), "{}", f.message);
    let p = find(&doctor("malicious/npz_pickle.keras"), "scan.pickle_code_execution").clone();
    assert!(p.message.contains("posix.system"), "{}", p.message);
    assert_eq!(p.location.member.as_deref(), Some("model.weights.npz/arr_0.npy"));
    let h = find(&doctor("malicious/hdf5_external_link.h5"), "hdf5.external_link").clone();
    assert_eq!(h.location.hdf5_path.as_deref(), Some("/model_weights/leak"));
    assert!(h.message.contains("/etc/passwd"));
}

#[test]
fn scanning_runs_nothing() {
    let dir = std::env::temp_dir().join(format!("strata-doctor-scan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_current_dir(&dir).unwrap();
    let report = strata_doctor::scan(&[fixture("malicious")], &Options::default());
    assert_eq!(report.scanned.len(), 12, "{:?} {:?}", report.skipped, report.errors);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.exit_code(), 1);
    for f in [dir.join("strata_pwned_marker"), fixture("strata_pwned_marker"), fixture("malicious/strata_pwned_marker")]
    {
        assert!(!f.exists(), "{} exists: something ran", f.display());
    }
    // Every file has at least one security finding.
    for s in &report.scanned {
        assert!(report.findings.iter().any(|f| &f.location.file == s), "{s} has no finding");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clean_models_scan_clean() {
    let r = strata_doctor::scan(&[fixture("keras3/mlp"), fixture("keras3/conv2d/model.keras")], &Options::default());
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.exit_code(), 0);
    assert!(r.scanned.iter().any(|s| s.ends_with("model.keras")));
    // io.npz (plain arrays) is scanned; meta.json (not a model) is skipped, not an error.
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn custom_objects_are_named_with_both_registration_lines() {
    let r = doctor("keras3/custom_layer/model.keras");
    let f = find(&r, "custom.unregistered");
    assert!(f.blocks_load);
    assert_eq!(f.location.layer.as_deref(), Some("custom_dense"));
    assert!(f.message.contains("Could not locate class"), "{}", f.message);
    assert!(f.fix.contains("@keras.saving.register_keras_serializable(package="), "{}", f.fix);
    assert!(f.fix.contains("registry.layer::<CustomDense>()"), "{}", f.fix);
    assert!(f.fix.contains("#[keras(package = \"my_custom_layers\")]"), "{}", f.fix);
    let h5 = doctor("tfkeras/custom_layer/model.h5");
    assert!(find(&h5, "custom.unregistered").message.contains("Unknown layer:"));
    let loss = doctor("keras3/custom_loss/model.h5");
    let f = find(&loss, "custom.function");
    assert!(f.message.contains("string indices must be integers"), "{}", f.message);
}

#[test]
fn keras3_cannot_compile_its_own_legacy_h5_with_mse() {
    let r = doctor("keras3/mlp/model.h5");
    let f = find(&r, "keras3.legacy_h5_compile");
    assert!(f.message.contains("Could not deserialize 'keras.metrics."), "{}", f.message);
    assert!(f.fix.contains("compile=False"));
    let old = strata_doctor::doctor(
        &fixture("keras3/mlp/model.h5"),
        &Options { keras: strata_doctor::KerasVersion::new(3, 10, 0), ..Options::default() },
    );
    assert!(old.findings.iter().all(|f| f.id != "keras3.legacy_h5_compile"));
}

#[test]
fn damaged_files_name_the_damage() {
    let t = doctor("hostile/truncated.keras");
    assert!(!t.readable);
    let f = find(&t, "file.truncated");
    assert!(f.message.contains("model.weights.h5"), "{}", f.message);
    assert!(find(&doctor("hostile/lfs_pointer.keras"), "file.lfs_pointer").message.contains("Git LFS pointer"));
    let h = doctor("hostile/hdf5_named.keras");
    assert!(h.readable);
    assert!(find(&h, "file.hdf5_as_keras").message.contains("File not found"));
    assert!(find(&doctor("hostile/pickle.keras"), "file.not_a_model").blocks_load);
    assert!(find(&doctor("hostile/duplicate_member.keras"), "archive.duplicate_member").severity == Severity::High);
}

#[test]
fn cross_version_lambda_with_python_names_the_error_and_the_writer() {
    let opts = Options { python: strata_doctor::parse_python("3.11"), ..Options::default() };
    let r = strata_doctor::doctor(&fixture("doctor/lambda/keras3_py3.10.keras"), &opts);
    let f = find(&r, "lambda.cross_version");
    assert_eq!(
        f.message,
        "Lambda `lam` was marshaled by CPython 3.10 and CPython 3.11 fails: ValueError: bad marshal data (unknown type code) (with safe_mode=False); the marshal format of code objects differs between Python versions"
    );
    assert_eq!(f.python_versions.as_deref(), Some("3.10"));
    let func = f.function.as_ref().unwrap();
    assert_eq!((func.name.as_str(), func.file.as_str(), func.line), ("<lambda>", "fixture.py", 1));
    let b = find(&r, "lambda.bytecode");
    assert!(b.message.contains("lambda x: (x * 2.0) + 1.0"), "{}", b.message);
}

fn parse(j: &Json) -> Json {
    Json::parse(j.to_string_pretty(), &JsonLimits::default()).unwrap()
}

#[test]
fn json_findings_have_the_documented_fields() {
    let opts = Options::default();
    let r = doctor("doctor/lambda/keras3_py3.10.h5");
    let j = parse(&output::doctor_json(&r, &opts));
    assert_eq!(j["readable"].as_bool(), Some(true));
    assert_eq!(j["loads"].as_bool(), Some(false));
    let findings = j["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for f in findings {
        for key in ["id", "severity", "location", "message", "fix", "cve", "blocks_load"] {
            assert!(f.get(key).is_some(), "missing {key} in {f}");
        }
        assert!(matches!(f["severity"].as_str(), Some("low" | "medium" | "high" | "critical")));
        assert!(f["location"].get("file").is_some() && f["location"].get("layer").is_some());
    }
    let lam = findings.iter().find(|f| f["id"].as_str() == Some("lambda.bytecode")).unwrap();
    assert_eq!(lam["python_versions"].as_str(), Some("3.10"));
    assert_eq!(lam["function"]["name"].as_str(), Some("<lambda>"));
    assert_eq!(lam["function"]["line"].as_i64(), Some(1));
    assert_eq!(lam["function"]["file"].as_str(), Some("fixture.py"));
}

#[test]
fn scan_json_and_sarif_are_well_formed() {
    let r = strata_doctor::scan(&[fixture("malicious"), fixture("keras3/mlp/meta.json")], &Options::default());
    let j = parse(&output::scan_json(&r));
    for key in ["findings", "scanned", "skipped", "errors"] {
        assert!(j[key].as_array().is_some(), "{key}");
    }
    assert_eq!(j["findings"].as_array().unwrap().len(), r.findings.len());
    // An explicitly named file that is not a model is an error, not a skip.
    assert_eq!(j["errors"].as_array().unwrap().len(), 1);
    let s = parse(&output::scan_sarif(&r));
    assert_eq!(s["version"].as_str(), Some("2.1.0"));
    let run = &s["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"].as_str(), Some("strata scan"));
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), r.findings.len());
    for res in results {
        let idx = res["ruleIndex"].as_usize().unwrap();
        assert_eq!(rules[idx]["id"].as_str(), res["ruleId"].as_str());
        assert!(matches!(res["level"].as_str(), Some("note" | "warning" | "error")));
        assert!(res["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        let uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap();
        assert!(Path::new(uri).exists() || uri.contains("fixtures"), "{uri}");
    }
}

/// `fixtures/doctor/lambda/keras3_native.keras` (Input(4) -> Lambda `lam` -> Dense(2)) with its
/// config edited, written to `dir/model.keras`.
fn keras_with(dir: &Path, edit: impl FnOnce(&mut Vec<Json>)) -> PathBuf {
    use strata_format::archive::{ArchiveWriter, KerasArchive};
    let src = KerasArchive::open(&fixture("doctor/lambda/keras3_native.keras"), &Default::default()).unwrap();
    let config = String::from_utf8(src.config_bytes().unwrap().into_owned()).unwrap();
    let mut j = Json::parse(&config, &JsonLimits::default()).unwrap();
    let layers = j.get_mut("config").and_then(|c| c.get_mut("layers")).and_then(Json::as_array_mut).unwrap();
    edit(layers);
    let meta = src.metadata().unwrap().unwrap().into_owned();
    let weights = src.weights_bytes().unwrap().into_owned();
    let text = j.to_string();
    let out = dir.join("model.keras");
    ArchiveWriter::new(&meta, text.as_bytes(), &weights).save(&out).unwrap();
    out
}

/// The same file with its Lambda's code text replaced.
fn keras_with_code(code: &str, dir: &Path) -> PathBuf {
    keras_with(dir, |layers| {
        let lam = layers.iter_mut().find(|l| l["class_name"].as_str() == Some("Lambda")).unwrap();
        let cfg = lam.get_mut("config").and_then(|c| c.get_mut("function")).and_then(|f| f.get_mut("config")).unwrap();
        cfg.as_object_mut().unwrap().insert("code", Json::from(code));
    })
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn windows_rewritten_bytecode_is_named_and_repaired() {
    let dir = std::env::temp_dir().join(format!("strata-doctor-win-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let blob = std::fs::read(fixture("marshal/3.11/backslash.win.bin")).unwrap();
    let path = keras_with_code(&b64(&blob), &dir);
    let r = strata_doctor::doctor(&path, &Options::default());
    let f = find(&r, "lambda.windows_corruption");
    assert!(f.message.contains("0x5C"), "{}", f.message);
    assert_eq!(find(&r, "lambda.bytecode").python_versions.as_deref(), Some("3.11"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keras3_lambdas_that_use_module_globals_raise_name_error() {
    let dir = std::env::temp_dir().join(format!("strata-doctor-glob-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(fixture("doctor/lambda/blob_globals_py3.11.b64")).unwrap();
    let path = keras_with_code(&text, &dir);
    let r = strata_doctor::doctor(&path, &Options::default());
    let f = find(&r, "lambda.globals");
    assert!(f.message.contains("`np`, `tf`") && f.message.contains("NameError"), "{}", f.message);
    assert!(find(&r, "lambda.bytecode").message.contains("tf.abs(x)"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keras2_module_paths_are_named_with_the_keras3_error() {
    let r = doctor("tf213/custom/model.keras");
    let f = find(&r, "keras2.module_path");
    assert!(f.message.contains("keras.src.engine.functional cannot be imported"), "{}", f.message);
    assert!(f.blocks_load);
    assert!(f.fix.contains("strata convert"));
}

#[test]
fn tf_keras_saves_cut_by_duplicate_weight_names_are_found() {
    // What tf-keras 2.21 said saving and loading this file (tools/doctor/gen_lambda_files.py truncated_save).
    let rec = Json::parse(
        std::fs::read(fixture("doctor/lambda/tfkeras_truncated_save.json")).unwrap(),
        &JsonLimits::default(),
    )
    .unwrap();
    let r = doctor("doctor/lambda/tfkeras_truncated_save.h5");
    let f = find(&r, "file.truncated_save");
    assert!(f.blocks_load);
    assert_eq!(f.location.layer.as_deref(), Some("two"));
    let save = rec["save"].as_str().unwrap();
    assert!(save.contains("name already exists") && f.message.contains("name already exists"), "{save}");
    let load = rec["load"].as_str().unwrap();
    assert!(load.contains("Shape mismatch") && f.message.contains("Shape mismatch"), "{load}");
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strata-doctor-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn weights_that_do_not_match_the_config_are_named() {
    let dir = temp("shape");
    let path = keras_with(&dir, |layers| {
        let dense = layers.iter_mut().find(|l| l["class_name"].as_str() == Some("Dense")).unwrap();
        dense.get_mut("config").unwrap().as_object_mut().unwrap().insert("units", Json::from(3u64));
    });
    let r = strata_doctor::doctor(&path, &Options::default());
    let f = find(&r, "weights.shape_mismatch");
    assert_eq!(f.location.layer.as_deref(), Some("dense"));
    assert!(f.message.contains("(4, 2)") && f.blocks_load, "{}", f.message);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tf_op_layers_do_not_exist_in_keras3() {
    let dir = temp("tfop");
    let path = keras_with(&dir, |layers| {
        let lam = layers.iter_mut().find(|l| l["class_name"].as_str() == Some("Lambda")).unwrap();
        let o = lam.as_object_mut().unwrap();
        o.insert("class_name", Json::from("TFOpLambda"));
        o.get_mut("config").unwrap().as_object_mut().unwrap().insert("function", Json::from("math.multiply"));
    });
    let r = strata_doctor::doctor(&path, &Options::default());
    let f = find(&r, "keras2.tf_op_layer");
    assert!(f.message.contains("Unknown layer: 'TFOpLambda'") && f.message.contains("math.multiply"), "{}", f.message);
    assert!(f.blocks_load);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shape_bombs_are_flagged_before_anything_is_allocated() {
    for (rel, path) in [
        ("hdf5/hostile_shape_bomb.h5", "/chunked_bomb"),
        ("hostile/fuzz/legacy_h5_tensor_bytes_overflow.h5", "/model_weights/dense_1/mlp/dense_1/kernel"),
    ] {
        let r = doctor(rel);
        let f = r
            .findings
            .iter()
            .find(|f| f.id == "hdf5.shape_bomb" && f.location.hdf5_path.as_deref() == Some(path))
            .unwrap_or_else(|| panic!("{rel}: {:?}", r.findings.iter().map(|f| f.id).collect::<Vec<_>>()));
        assert_eq!((f.severity, f.cve), (Severity::High, Some("CVE-2026-0897")));
    }
}

#[test]
fn lambdas_that_name_a_function_need_it_registered() {
    let dir = temp("named");
    let path = keras_with(&dir, |layers| {
        let lam = layers.iter_mut().find(|l| l["class_name"].as_str() == Some("Lambda")).unwrap();
        let f = Json::object([
            ("module", Json::from("builtins")),
            ("class_name", Json::from("function")),
            ("config", Json::from("my_pkg>double")),
            ("registered_name", Json::from("function")),
        ]);
        lam.get_mut("config").unwrap().as_object_mut().unwrap().insert("function", f);
    });
    let r = strata_doctor::doctor(&path, &Options::default());
    let f = find(&r, "custom.function");
    assert!(f.message.contains("`my_pkg>double`") && f.blocks_load, "{}", f.message);
    assert!(f.fix.contains("def double") && f.fix.contains("register_keras_serializable"), "{}", f.fix);
    // A registered function is not bytecode: nothing for the scanner.
    assert!(r.findings.iter().all(|f| f.category != Category::Security), "{:?}", r.findings);
    let _ = std::fs::remove_dir_all(&dir);
}
