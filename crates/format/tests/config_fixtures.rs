//! Every model config in `fixtures/<generation>/<case>/` (written by real Keras through
//! `tools/oracle`): `model.json`, `config.json` inside `model.keras`, and the `model_config` /
//! `training_config` attributes of `model.h5`. For each: parsing succeeds with the expected dialect,
//! top-level layer names and classes equal `meta.json`'s `layers`, every tensor reference resolves,
//! and `to_json()` writes back the document it read.
//!
//! The `.h5` attributes are found by scanning the file bytes for the JSON text (h5py stores these
//! attributes as variable-length strings in the global heap, so the text is contiguous); this keeps
//! the test independent of the HDF5 reader. Switch to `strata_hdf5` attribute reads once that API
//! is stable.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use strata_format::config::{ConfigDialect, ModelConfig, TrainingConfig};
use strata_format::json::{Json, JsonLimits};

fn parse_json(bytes: &[u8], what: &str) -> Json {
    Json::parse(bytes, &JsonLimits::default()).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The balanced JSON object starting at `start` (string-aware brace matching).
fn balanced_object(bytes: &[u8], start: usize) -> Option<&[u8]> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.get(start..)?.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return bytes.get(start..start + i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The JSON attributes of a legacy `.h5`: `(model_config, training_config)`.
fn h5_json_attrs(path: &Path) -> (Option<Json>, Option<Json>) {
    let bytes = fs::read(path).unwrap();
    let model = find(&bytes, b"{\"class_name\": ")
        .and_then(|s| balanced_object(&bytes, s))
        .map(|b| parse_json(b, &format!("{}: model_config", path.display())));
    let training = [&b"{\"optimizer_config\""[..], b"{\"loss\""]
        .iter()
        .filter_map(|n| find(&bytes, n))
        .min()
        .and_then(|s| balanced_object(&bytes, s))
        .map(|b| parse_json(b, &format!("{}: training_config", path.display())));
    (model, training)
}

fn keras_config_json(path: &Path) -> Json {
    let file = fs::File::open(path).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let mut member = zip.by_name("config.json").unwrap();
    let mut bytes = Vec::new();
    member.read_to_end(&mut bytes).unwrap();
    parse_json(&bytes, &format!("{}: config.json", path.display()))
}

fn expected_dialect(generation: &str, source: &str) -> Option<ConfigDialect> {
    Some(match generation {
        g if g.starts_with("keras1") => ConfigDialect::Keras1,
        g if g.starts_with("keras2") => ConfigDialect::Keras2,
        "tfkeras" | "tf213" => ConfigDialect::TfKeras,
        "keras3" if source == "model.h5" => ConfigDialect::Keras3LegacyH5,
        "keras3" => ConfigDialect::Keras3,
        _ => return None,
    })
}

fn bare_class(name: &str) -> &str {
    name.rsplit('>').next().unwrap_or(name)
}

/// Checks one config; returns a description of each failure.
fn check(generation: &str, source: &str, doc: &Json, meta: &Json) -> Vec<String> {
    let mut fails = Vec::new();
    let model = match ModelConfig::parse(doc) {
        Ok(m) => m,
        Err(e) => return vec![format!("parse failed: {e}")],
    };
    if let Some(want) = expected_dialect(generation, source)
        && model.source != want
    {
        fails.push(format!("dialect {:?}, expected {want:?}", model.source));
    }
    // meta.json lists model.layers: no operations, no InputLayer for a Sequential model.
    let layers = model.model_layers();
    let got: Vec<(String, String)> =
        layers.iter().map(|l| (l.name.clone(), bare_class(&l.class_name).to_owned())).collect();
    let want: Vec<(String, String)> = meta["layers"]
        .as_array()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            (l["name"].as_str().unwrap_or_default().to_owned(), l["class_name"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    if got != want {
        fails.push(format!("layers {got:?}, meta.json says {want:?}"));
    }
    for problem in model.check_graph() {
        fails.push(format!("graph: {problem}"));
    }
    let back = model.to_json();
    if back != *doc {
        fails.push("to_json() differs from the document read".to_owned());
    } else if back.to_string_python() != doc.to_string_python() {
        fails.push("to_json() serializes differently".to_owned());
    }
    for (path, layer) in model.iter_layers_recursive() {
        if layer.class_name == "Lambda" && layer.lambda_function().is_none() {
            fails.push(format!("Lambda layer {path}: function not recognized"));
        }
    }
    fails
}

fn case_dirs() -> Vec<(String, PathBuf)> {
    let root = strata_testkit::fixtures_dir();
    let mut out = Vec::new();
    let Ok(gens) = fs::read_dir(&root) else {
        return out;
    };
    for g in gens.flatten() {
        let generation = g.file_name().to_string_lossy().into_owned();
        if matches!(generation.as_str(), "hdf5" | "hostile") {
            continue;
        }
        let Ok(cases) = fs::read_dir(g.path()) else {
            continue;
        };
        for c in cases.flatten() {
            if c.path().join("meta.json").is_file() {
                out.push((generation.clone(), c.path()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_fixture_config_parses_checks_and_round_trips() {
    let cases = case_dirs();
    if cases.is_empty() {
        eprintln!("skipping: no fixtures under {}", strata_testkit::fixtures_dir().display());
        return;
    }
    let mut checked = 0usize;
    let mut failures = Vec::new();
    for (generation, dir) in &cases {
        let meta = parse_json(&fs::read(dir.join("meta.json")).unwrap(), "meta.json");
        let mut docs: Vec<(&str, Json)> = Vec::new();
        if let Ok(bytes) = fs::read(dir.join("model.json")) {
            docs.push(("model.json", parse_json(&bytes, "model.json")));
        }
        if dir.join("model.keras").is_file() {
            docs.push(("model.keras", keras_config_json(&dir.join("model.keras"))));
        }
        if dir.join("model.h5").is_file() {
            let (model, training) = h5_json_attrs(&dir.join("model.h5"));
            match model {
                Some(m) => docs.push(("model.h5", m)),
                None => failures.push(format!("{}: model.h5 has no model_config", dir.display())),
            }
            if let Some(t) = training {
                match TrainingConfig::parse(&t) {
                    Ok(tc) if tc.to_json() == t => {}
                    Ok(_) => failures.push(format!("{}: model.h5 training_config does not round-trip", dir.display())),
                    Err(e) => failures.push(format!("{}: training_config: {e}", dir.display())),
                }
            }
        }
        for (source, doc) in &docs {
            checked += 1;
            for f in check(generation, source, doc, &meta) {
                failures.push(format!("{} {source}: {f}", dir.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} configs failed:\n{}", failures.len(), failures.join("\n"));
    assert!(checked > 0);
    eprintln!("checked {checked} configs in {} fixture cases", cases.len());
}
