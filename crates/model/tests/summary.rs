//! `Model::summary()` against Keras's own `model.summary()` on Keras-written files (live oracle):
//! the same rows (layer, type, output shape, parameters) and the same totals.

use std::process::Command;

use strata_model::{Model, Registry};

/// The table's rows (cells joined across wrapped lines, "Connected to" dropped) and the total lines.
fn parse(text: &str) -> (Vec<Vec<String>>, Vec<String>) {
    let mut rows = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut totals = Vec::new();
    let mut in_body = false;
    for line in text.lines() {
        if line.starts_with('┡') {
            in_body = true;
            continue;
        }
        if line.starts_with('├') || line.starts_with('└') {
            if !cur.is_empty() {
                rows.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if in_body && line.starts_with('│') {
            let cells: Vec<String> = line.trim_matches('│').split('│').map(|c| c.trim().to_string()).take(3).collect();
            if cur.is_empty() {
                cur = cells;
            } else {
                for (c, add) in cur.iter_mut().zip(cells) {
                    if !add.is_empty() {
                        *c = format!("{c} {add}").trim().to_string();
                    }
                }
            }
        }
        let t = line.trim();
        if t.starts_with("Total params")
            || t.starts_with("Trainable params")
            || t.starts_with("Non-trainable")
            || t.starts_with("Optimizer params")
        {
            totals.push(t.to_string());
        }
    }
    (rows, totals)
}

#[test]
fn summary_matches_keras() {
    let Some(py) = strata_testkit::oracle_python() else { return };
    for case in ["mlp", "functional_multi_io", "conv2d", "normalization", "recurrent", "embedding_masking"] {
        let file = strata_testkit::fixture(&format!("keras3/{case}/model.keras"));
        let code = format!(
            "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL']='3'\nimport keras\nlines=[]\nm=keras.saving.load_model({:?})\nm.summary(print_fn=lambda s, line_break=True: lines.append(s))\nprint('\\n'.join(lines))",
            file.display().to_string()
        );
        let out = Command::new(&py).arg("-c").arg(&code).output().unwrap();
        let keras = String::from_utf8_lossy(&out.stdout).to_string();
        let Ok(mut model) = Model::load(&file, &Registry::new()) else { panic!("{case}: strata cannot load it") };
        let _ = model.compile_from_file(); // Keras counts the optimizer's variables of a compiled file
        let ours = model.summary();
        let (kr, kt) = parse(&keras);
        let (sr, st) = parse(&ours);
        assert!(
            !kr.is_empty(),
            "{case}: no rows parsed from Keras:\n{keras}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(sr, kr, "{case}: rows\nstrata:\n{ours}\nKeras:\n{keras}");
        assert_eq!(st, kt, "{case}: totals\nstrata:\n{ours}\nKeras:\n{keras}");
    }
}
