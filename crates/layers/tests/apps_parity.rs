//! keras.applications parity: MobileNetV2, ResNet50 and EfficientNetB0 (random weights, small
//! inputs, logits out) built by `tools/oracle/gen_apps.py` into the oracle cache
//! (`$STRATA_ORACLE_DIR/apps/<name>/{model.keras, io.npz}`, 10-100 MB each, so not in the repository).
//! Missing models are generated with the oracle Python; without the oracle the test prints a note
//! and skips, unless `STRATA_REQUIRE_ORACLE=1`.
//!
//! `STRATA_APPS_FILTER=resnet` runs a subset.

mod common;

use std::path::Path;
use strata_layers::{Model, unsupported_layers};

const APPS: &[&str] = &["mobilenetv2", "resnet50", "efficientnetb0"];

/// Layer classes these models use that other layer families are adding in parallel. A model that
/// needs one of them is skipped with a note while strata lacks it; once strata supports a class
/// listed here, the test fails until the class is removed from this list (so the list only shrinks).
const PENDING_CLASSES: &[&str] = &[];

/// Deep random-weight networks accumulate float32 rounding differently from Keras's kernels
/// (conv algorithms, summation order) over 50+ layers: `|got - want| <= ABS + REL * |want|`.
const ABS: f32 = 1e-4;
const REL: f32 = 1e-4;

fn generate(py: &Path, root: &Path, name: &str) -> bool {
    let script = strata_testkit::repo_root().join("tools/oracle/gen_apps.py");
    let out = std::process::Command::new(py)
        .arg(&script)
        .arg(root)
        .arg(name)
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .expect("run the oracle python");
    if !out.status.success() {
        panic!("{} {name} failed:\n{}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    true
}

#[test]
fn keras_applications_match_keras() {
    let root = strata_testkit::oracle_dir().join("apps");
    let filter = std::env::var("STRATA_APPS_FILTER").ok();
    let mut report = String::new();
    let mut bad = 0usize;
    for &cls in PENDING_CLASSES {
        if strata_layers::is_supported(cls) {
            bad += 1;
            report.push_str(&format!("FAIL `{cls}` is supported now: remove it from PENDING_CLASSES\n"));
        }
    }
    for &name in APPS {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let dir = root.join(name);
        if !dir.join("io.npz").exists() || !dir.join("model.keras").exists() {
            let Some(py) = strata_testkit::oracle_python() else {
                report.push_str(&format!("SKIP {name}: not generated and no oracle\n"));
                continue;
            };
            generate(&py, &root, name);
        }
        let file = strata_format::model::ModelFile::open(dir.join("model.keras")).expect("open model.keras");
        let config = file.config.as_ref().expect("config");
        let missing = unsupported_layers(config);
        if !missing.is_empty() {
            let mut classes: Vec<&str> = missing.iter().map(|u| u.class.as_str()).collect();
            classes.sort_unstable();
            classes.dedup();
            let unexpected: Vec<&str> = classes.iter().copied().filter(|c| !PENDING_CLASSES.contains(c)).collect();
            if unexpected.is_empty() {
                report.push_str(&format!("SKIP {name}: needs {classes:?} (pending in other layer families)\n"));
            } else {
                bad += 1;
                report.push_str(&format!("FAIL {name}: unsupported {unexpected:?}\n"));
            }
            continue;
        }
        let model = match Model::from_file(&file) {
            Ok(m) => m,
            Err(e) => {
                bad += 1;
                report.push_str(&format!("FAIL {name}: build: {e}\n"));
                continue;
            }
        };
        let (ins, outs) = common::read_npz(&dir.join("io.npz"));
        let got = match model.predict(&ins) {
            Ok(g) => g,
            Err(e) => {
                bad += 1;
                report.push_str(&format!("FAIL {name}: predict: {e}\n"));
                continue;
            }
        };
        let (g, w) = (&got[0], &outs[0]);
        if g.shape() != w.shape() {
            bad += 1;
            report.push_str(&format!("FAIL {name}: shape {:?}, Keras {:?}\n", g.shape(), w.shape()));
            continue;
        }
        let mut worst = 0f32;
        let mut off = 0usize;
        for (&a, &b) in g.as_slice().iter().zip(w.as_slice()) {
            let d = (a - b).abs();
            worst = worst.max(d);
            if d.is_nan() || d > ABS + REL * b.abs() {
                off += 1;
            }
        }
        if off > 0 {
            bad += 1;
            report.push_str(&format!("FAIL {name}: {off} logits off, max abs diff {worst:e}\n"));
        } else {
            report.push_str(&format!("PASS {name}: max abs diff {worst:e}\n"));
        }
    }
    eprintln!("{report}");
    assert_eq!(bad, 0, "keras.applications parity failures:\n{report}");
}
