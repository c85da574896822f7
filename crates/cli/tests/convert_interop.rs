//! `strata convert` round trips through real Keras: every fixture file that the Keras oracle can
//! load is converted to `.keras`, `.h5` and `.weights.h5`, and each result must load in the same
//! Keras and predict what the original predicts (the outputs in the case's `io.npz`, which Keras
//! computed). Keras 3.15.1 checks everything; tf-keras 2.21 checks the `.h5` files converted from
//! tf-keras files (it cannot read Keras 3 configs, by design).

use std::path::{Path, PathBuf};
use std::process::Command;

use strata_format::json::{Json, JsonLimits};

struct Pair {
    label: String,
    original: Json,
    converted: Json,
}

fn job(model: Option<&Path>, arch: Option<&Path>, weights: Option<&Path>, io: &Path, unsafe_: bool) -> Json {
    let p = |x: Option<&Path>| x.map(|p| Json::from(p.display().to_string())).unwrap_or(Json::Null);
    let mut e = vec![("io", Json::from(io.display().to_string())), ("unsafe", Json::Bool(unsafe_))];
    if model.is_some() {
        e.push(("model", p(model)));
    }
    if arch.is_some() {
        e.push(("arch", p(arch)));
        e.push(("weights", p(weights)));
    }
    Json::object(e)
}

fn run_batch(py: &Path, impl_: &str, jobs: &[Json], dir: &Path) -> Vec<Json> {
    let file = dir.join(format!("jobs-{impl_}.json"));
    std::fs::write(&file, Json::array(jobs.iter().cloned()).to_string_python()).unwrap();
    let script = strata_testkit::repo_root().join("tools/oracle/check_batch.py");
    let out = Command::new(py).arg(&script).arg("--impl").arg(impl_).arg(&file).output().expect("run the oracle");
    assert!(out.status.success(), "oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Json> =
        text.lines().map(|l| Json::parse(l.as_bytes(), &JsonLimits::default()).expect("oracle line is JSON")).collect();
    assert_eq!(
        lines.len(),
        jobs.len(),
        "oracle answered {} of {} jobs; stderr:\n{}",
        lines.len(),
        jobs.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    lines
}

fn convert(input: &Path, output: &Path) -> Result<(), String> {
    let out =
        Command::new(env!("CARGO_BIN_EXE_strata")).arg("convert").arg(input).arg(output).output().expect("run strata");
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[test]
fn converted_files_load_in_keras_with_identical_predictions() {
    let Some(py) = strata_testkit::oracle_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = strata_testkit::fixtures_dir();
    let mut jobs: Vec<(String, Json)> = Vec::new(); // (impl, job) — original, then converted, alternating
    let mut labels: Vec<String> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut n = 0usize;
    let mut gens: Vec<PathBuf> = std::fs::read_dir(&fixtures).unwrap().flatten().map(|e| e.path()).collect();
    gens.sort();
    for g in gens {
        let gen_name = g.file_name().unwrap().to_string_lossy().to_string();
        if gen_name == "hdf5" || gen_name == "hostile" {
            continue;
        }
        let mut cases: Vec<PathBuf> =
            std::fs::read_dir(&g).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("io.npz").exists()).collect();
        cases.sort();
        for case in cases {
            let cname = case.file_name().unwrap().to_string_lossy().to_string();
            let unsafe_ = cname.contains("lambda");
            for src in ["model.keras", "model.h5"] {
                let src_path = case.join(src);
                if !src_path.exists() {
                    continue;
                }
                let io = case.join("io.npz");
                for target in ["out.keras", "out.h5", "out.weights.h5"] {
                    n += 1;
                    let out = tmp.path().join(format!("{gen_name}-{cname}-{src}-{target}"));
                    let label = format!("{gen_name}/{cname}/{src} -> {target}");
                    if let Err(e) = convert(&src_path, &out) {
                        refused.push(format!("{label}: {}", e.trim()));
                        continue;
                    }
                    let mut impls = vec!["keras3"];
                    if target == "out.h5" && gen_name != "keras3" {
                        impls.push("tfkeras");
                    }
                    for im in impls {
                        jobs.push((im.to_string(), job(Some(&src_path), None, None, &io, unsafe_)));
                        let conv = if target == "out.weights.h5" {
                            job(None, Some(&src_path), Some(&out), &io, unsafe_)
                        } else {
                            job(Some(&out), None, None, &io, unsafe_)
                        };
                        jobs.push((im.to_string(), conv));
                        labels.push(format!("[{im}] {label}"));
                    }
                }
            }
        }
    }
    // run each implementation's jobs in one process
    let mut results: Vec<Option<Json>> = vec![None; jobs.len()];
    for im in ["keras3", "tfkeras"] {
        let idx: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].0 == im).collect();
        let batch: Vec<Json> = idx.iter().map(|&i| jobs[i].1.clone()).collect();
        if batch.is_empty() {
            continue;
        }
        for (i, r) in idx.into_iter().zip(run_batch(&py, im, &batch, tmp.path())) {
            results[i] = Some(r);
        }
    }
    let pairs: Vec<Pair> = labels
        .into_iter()
        .enumerate()
        .map(|(k, label)| Pair {
            label,
            original: results[2 * k].clone().unwrap_or(Json::Null),
            converted: results[2 * k + 1].clone().unwrap_or(Json::Null),
        })
        .collect();
    let ok = |j: &Json| j.get("ok").and_then(Json::as_bool) == Some(true);
    let mut failures = Vec::new();
    let mut verified = 0;
    let mut original_fails = 0;
    let mut rescued = Vec::new();
    for p in &pairs {
        if !ok(&p.original) {
            original_fails += 1;
            // Keras cannot load the original, but it loads strata's conversion and predicts what
            // the Keras that wrote the original computed
            if ok(&p.converted) {
                rescued.push(p.label.clone());
            }
            continue;
        }
        if ok(&p.converted) {
            verified += 1;
        } else {
            failures.push(format!(
                "{}: {}",
                p.label,
                p.converted.get("error").map(|e| e.to_string_python()).unwrap_or_default()
            ));
        }
    }
    // the only conversions strata refuses are Keras 1 configs to .keras
    let unexpected: Vec<&String> = refused.iter().filter(|r| !r.contains("Keras 1")).collect();
    eprintln!(
        "{n} conversions: {verified} verified in Keras, {original_fails} skipped because Keras cannot load the original, {} of those load after conversion, {} refused",
        rescued.len(),
        refused.len()
    );
    for r in &rescued {
        eprintln!("  rescued: {r}");
    }
    assert!(
        unexpected.is_empty(),
        "unexpected conversion failures:\n{}",
        unexpected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} converted files do not match the original in Keras:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(verified >= 50, "only {verified} conversions were verified; the fixture set looks incomplete");
}
