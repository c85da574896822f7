//! Every fixture written by real Keras (`fixtures/<generation>/<case>/`) opens, binds all of its
//! weights, and reports the parameter counts, layers and weight datasets that the Keras which
//! wrote it recorded in `meta.json` (see `tools/oracle/`).

use std::path::{Path, PathBuf};

use strata_format::inspect::Report;
use strata_format::json::{Json, JsonLimits};
use strata_format::model::{FileFormat, ModelFile};

fn cases() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = strata_testkit::fixtures_dir();
    let Ok(gens) = std::fs::read_dir(&root) else {
        return out;
    };
    for g in gens.flatten() {
        let Ok(cases) = std::fs::read_dir(g.path()) else {
            continue;
        };
        for c in cases.flatten() {
            if c.path().join("meta.json").exists() {
                out.push(c.path());
            }
        }
    }
    out.sort();
    out
}

fn meta(case: &Path) -> Json {
    let bytes = std::fs::read(case.join("meta.json")).expect("meta.json readable");
    Json::parse(&bytes, &JsonLimits::default()).expect("meta.json parses")
}

/// The model files of a case that the Keras which wrote them could also load back.
fn good_files(case: &Path, meta: &Json) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(files) = meta.get("files").and_then(Json::as_object) {
        for (name, info) in files.iter() {
            let saved = info.get("saved").and_then(Json::as_bool).unwrap_or(true);
            let p = case.join(name);
            if saved && p.exists() {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn every_fixture_opens_and_matches_keras_counts() {
    let cases = cases();
    assert!(!cases.is_empty(), "no fixtures found under {}", strata_testkit::fixtures_dir().display());
    let mut checked = 0;
    let mut shapes_checked = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let meta = meta(case);
        for file in good_files(case, &meta) {
            let label = file.strip_prefix(strata_testkit::fixtures_dir()).unwrap_or(&file).display().to_string();
            let mf = match ModelFile::open(&file) {
                Ok(m) => m,
                Err(e) => {
                    failures.push(format!("{label}: open failed: {e}"));
                    continue;
                }
            };
            checked += 1;
            let r = Report::new(&mf);
            if !r.problems.is_empty() {
                failures.push(format!("{label}: binding problems: {:?}", r.problems));
            }
            if mf.weights.is_none() || mf.format == FileFormat::ModelJson {
                continue;
            }
            let want = |k: &str| meta.get(k).and_then(Json::as_u64);
            if mf.config.is_some() {
                for (k, got) in [
                    ("total_params", r.total_params),
                    ("trainable_params", r.trainable_params),
                    ("non_trainable_params", r.non_trainable_params),
                ] {
                    if let Some(w) = want(k) {
                        if w != got {
                            failures.push(format!("{label}: {k} = {got}, Keras says {w}"));
                        }
                    }
                }
                // per-layer params of top-level layers, as Keras's model.layers lists them
                if let Some(layers) = meta.get("layers").and_then(Json::as_array) {
                    for l in layers {
                        let (Some(name), Some(params)) =
                            (l.get("name").and_then(Json::as_str), l.get("params").and_then(Json::as_u64))
                        else {
                            continue;
                        };
                        // an output shape strata reports must be the one Keras computed
                        let keras_shape = l.get("output_shape").and_then(Json::as_array).map(|dims| {
                            let d: Vec<String> = dims
                                .iter()
                                .map(|x| x.as_u64().map(|v| v.to_string()).unwrap_or_else(|| "None".into()))
                                .collect();
                            if d.len() == 1 { format!("({},)", d[0]) } else { format!("({})", d.join(", ")) }
                        });
                        let row = r.layers.iter().find(|row| row.depth == 0 && row.name == name);
                        if let (Some(got), Some(want)) = (row.and_then(|r| r.output_shape.as_ref()), keras_shape) {
                            // tf.keras 2.13's InputLayer.output_shape is a list of shapes, which the
                            // generator records as `(None,)`: nothing to compare
                            let listy = want == "(None,)" && row.is_some_and(|r| r.class_name == "InputLayer");
                            if listy {
                            } else if *got != want {
                                failures.push(format!("{label}: layer {name} output shape {got}, Keras says {want}"));
                            } else {
                                shapes_checked += 1;
                            }
                        }
                        match r.layers.iter().find(|row| row.depth == 0 && row.name == name) {
                            Some(row) if row.params == params => {}
                            Some(row) => failures
                                .push(format!("{label}: layer {name} params {} , Keras says {params}", row.params)),
                            None => failures.push(format!("{label}: layer {name} missing from the report")),
                        }
                    }
                }
            } else if let Some(w) = want("total_params") {
                if w != r.total_params {
                    failures.push(format!("{label}: total_params (weights only) = {}, Keras says {w}", r.total_params));
                }
            }
            // every model dataset Keras listed is reported with its shape and dtype
            let key = match mf.format {
                FileFormat::KerasV3 => "model.keras:model.weights.h5".to_string(),
                _ => file.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string(),
            };
            if let Some(ds) = meta.get("h5_datasets").and_then(|h| h.get(&key)).and_then(Json::as_array) {
                for d in ds {
                    let path = format!("/{}", d.get("path").and_then(Json::as_str).unwrap_or(""));
                    if path.starts_with("/optimizer") || path.starts_with("/metrics/") {
                        continue;
                    }
                    let shape: Vec<u64> = d
                        .get("shape")
                        .and_then(Json::as_array)
                        .map(|a| a.iter().filter_map(Json::as_u64).collect())
                        .unwrap_or_default();
                    let dtype = d.get("dtype").and_then(Json::as_str).unwrap_or("");
                    match r.weights.iter().find(|(p, ..)| *p == path) {
                        Some((_, _, s, t))
                            if *s == shape
                                && (t == dtype
                                    || (dtype == "void16" && (t == "bfloat16" || t == "opaque (2 bytes)"))) => {}
                        Some((_, _, s, t)) => {
                            failures.push(format!("{label}: {path}: {s:?} {t}, h5py says {shape:?} {dtype}"))
                        }
                        None => failures.push(format!("{label}: dataset {path} not bound to any layer")),
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} files disagree with Keras:\n{}", failures.len(), failures.join("\n"));
    eprintln!("checked {checked} fixture files, {shapes_checked} output shapes");
    assert!(shapes_checked > 100, "only {shapes_checked} output shapes were compared");
}
