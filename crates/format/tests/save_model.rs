//! `save::save_model`: a model held in memory written as `.keras`, legacy `.h5` and
//! `.weights.h5`, read back bit for bit; atomicity under SIGKILL and in unwritable places;
//! actionable errors; and (with the oracle) Keras itself loading what was written.

use std::path::{Path, PathBuf};
use std::process::Command;

use strata_format::bind;
use strata_format::convert::Target;
use strata_format::json::{Json, JsonLimits};
use strata_format::model::ModelFile;
use strata_format::save::{SaveLayer, SaveModel, SaveTensor, save_model};
use strata_hdf5::DType;

/// A model as a trainer would hold it, taken from a Keras-written file.
struct Held {
    config: Json,
    layers: Vec<SaveLayer>,
    optimizer: Option<Vec<SaveTensor>>,
}

fn hold(path: &Path) -> Held {
    let mf = ModelFile::open(path).unwrap();
    let config = mf.config_json.clone().unwrap();
    let cfg = mf.config.as_ref().unwrap();
    let store = mf.weights.as_ref().unwrap();
    let binding = bind::bind(cfg, store);
    assert!(binding.problems.is_empty(), "{:?}", binding.problems);
    let mut layers = Vec::new();
    for l in &binding.layers {
        if l.tensors.is_empty() {
            continue;
        }
        let split = l.tensors.len() - l.non_trainable_count();
        layers.push(SaveLayer {
            path: l.path.clone(),
            weights: l
                .tensors
                .iter()
                .enumerate()
                .map(|(i, t)| SaveTensor {
                    name: format!("w{i}"),
                    dtype: t.dtype.clone(),
                    shape: t.shape.clone(),
                    data: store.read(t).unwrap(),
                })
                .collect(),
            trainable: (0..l.tensors.len()).map(|i| i < split).collect(),
        });
    }
    let optimizer = (!store.optimizer.is_empty()).then(|| {
        store
            .optimizer
            .iter()
            .enumerate()
            .map(|(i, t)| SaveTensor {
                name: match i {
                    0 => "iterations".into(),
                    1 => "learning_rate".into(),
                    _ => format!("slot_{i}"),
                },
                dtype: t.dtype.clone(),
                shape: t.shape.clone(),
                data: store.read(t).unwrap(),
            })
            .collect()
    });
    Held { config, layers, optimizer }
}

fn model(h: &Held) -> SaveModel<'_> {
    SaveModel { config: &h.config, layers: h.layers.clone(), optimizer: h.optimizer.clone(), training_config: None }
}

/// Every layer tensor of `path`, by layer path, in order.
fn tensors_of(mf: &ModelFile) -> Vec<(String, Vec<u64>, Vec<u8>)> {
    let store = mf.weights.as_ref().unwrap();
    let binding = bind::bind(mf.config.as_ref().unwrap(), store);
    assert!(binding.problems.is_empty(), "{:?}", binding.problems);
    let mut out = Vec::new();
    for l in &binding.layers {
        for t in &l.tensors {
            out.push((l.path.clone(), t.shape.clone(), store.read(t).unwrap()));
        }
    }
    out
}

fn fixture(case: &str, file: &str) -> PathBuf {
    strata_testkit::fixture(&format!("keras3/{case}/{file}"))
}

fn round_trip(case: &str) {
    let h = hold(&fixture(case, "model.keras"));
    let dir = tempfile::tempdir().unwrap();
    let want: Vec<_> =
        h.layers.iter().flat_map(|l| l.weights.iter().map(move |t| (l.path.clone(), t.data.clone()))).collect();
    for (target, name) in
        [(Target::KerasV3, "m.keras"), (Target::LegacyH5, "m.h5"), (Target::WeightsH5, "m.weights.h5")]
    {
        let out = dir.path().join(name);
        let done = save_model(&model(&h), target, &out).unwrap_or_else(|e| panic!("{case} {name}: {e}"));
        assert_eq!(done.tensors, want.len(), "{case} {name}");
        assert_eq!(done.file_bytes, std::fs::metadata(&out).unwrap().len());
        let back = if target == Target::WeightsH5 {
            // a weights file is read against the model's config
            let mut mf = ModelFile::open(&out).unwrap();
            let src = ModelFile::open(fixture(case, "model.keras")).unwrap();
            mf.config = src.config;
            mf
        } else {
            ModelFile::open(&out).unwrap()
        };
        let got: Vec<_> = tensors_of(&back).into_iter().map(|(p, _, d)| (p, d)).collect();
        assert_eq!(got.len(), want.len(), "{case} {name}");
        for (g, w) in got.iter().zip(&want) {
            assert!(g == w, "{case} {name}: tensor of `{}` differs", w.0);
        }
        let store = back.weights.as_ref().unwrap();
        match (target, &h.optimizer) {
            (Target::WeightsH5, _) | (_, None) => assert!(store.optimizer.is_empty(), "{case} {name}"),
            (_, Some(opt)) => {
                assert_eq!(store.optimizer.len(), opt.len(), "{case} {name}");
                for (info, t) in store.optimizer.iter().zip(opt) {
                    assert_eq!(info.shape, t.shape);
                    assert_eq!(store.read(info).unwrap(), t.data, "{case} {name}: optimizer `{}`", t.name);
                }
            }
        }
        match target {
            Target::KerasV3 => {
                assert_eq!(back.config_json.as_ref(), Some(&h.config), "{case}");
                assert_eq!(back.keras_version.as_deref(), Some(strata_format::convert::KERAS_VERSION));
            }
            Target::LegacyH5 => {
                let mc = back.config_json.as_ref().unwrap();
                assert_eq!(mc.get("config"), h.config.get("config"), "{case}");
                assert!(mc.get("compile_config").is_none());
                let cc = h.config.get("compile_config").filter(|c| c.get("optimizer").is_some_and(|o| !o.is_null()));
                assert_eq!(back.training_config.is_some(), cc.is_some(), "{case}");
                if let (Some(tc), Some(cc)) = (&back.training_config, cc) {
                    assert_eq!(tc.get("loss"), cc.get("loss"));
                    let oc = tc.get("optimizer_config").unwrap();
                    assert_eq!(oc.get("config"), cc.get("optimizer").unwrap().get("config"));
                    assert_eq!(oc.get("class_name").and_then(Json::as_str), Some("Adam"));
                }
            }
            Target::WeightsH5 => {}
        }
    }
}

#[test]
fn round_trip_compiled_with_optimizer() {
    round_trip("mlp");
}

#[test]
fn round_trip_nested_models() {
    round_trip("nested");
}

#[test]
fn round_trip_batch_normalization() {
    round_trip("normalization");
}

/// The legacy optimizer names and layout match what Keras 3 wrote for the same model.
#[test]
fn legacy_optimizer_weights_match_keras() {
    let h = hold(&fixture("mlp", "model.keras"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.h5");
    save_model(&model(&h), Target::LegacyH5, &out).unwrap();
    let ours = ModelFile::open(&out).unwrap();
    let keras = ModelFile::open(fixture("mlp", "model.h5")).unwrap();
    let (o, k) = (&ours.weights.as_ref().unwrap().optimizer, &keras.weights.as_ref().unwrap().optimizer);
    assert_eq!(o.len(), k.len());
    assert_eq!(o[0].h5_path, "/optimizer_weights/adam/iteration");
    assert_eq!(o[1].h5_path, "/optimizer_weights/adam/learning_rate");
    for (a, b) in o.iter().zip(k) {
        assert_eq!(
            (a.dtype.clone(), a.shape.clone()),
            (b.dtype.clone(), b.shape.clone()),
            "{} vs {}",
            a.h5_path,
            b.h5_path
        );
    }
    assert_eq!(ours.training_config, keras.training_config);
}

fn small_config(units: u64, input: u64) -> Json {
    let s = format!(
        r#"{{"module":"keras","class_name":"Sequential","config":{{"name":"big","trainable":true,"dtype":"float32","layers":[{{"module":"keras.layers","class_name":"InputLayer","config":{{"batch_shape":[null,{input}],"dtype":"float32","sparse":false,"name":"input_layer"}},"registered_name":null}},{{"module":"keras.layers","class_name":"Dense","config":{{"name":"dense","trainable":true,"dtype":"float32","units":{units},"activation":"linear","use_bias":true}},"registered_name":null,"build_config":{{"input_shape":[null,{input}]}}}}],"build_input_shape":[null,{input}]}},"registered_name":null,"build_config":{{"input_shape":[null,{input}]}}}}"#
    );
    Json::parse(s, &JsonLimits::default()).unwrap()
}

fn dense_layer(units: u64, input: u64, fill: u8) -> SaveLayer {
    let t = |name: &str, shape: Vec<u64>| {
        let n: u64 = shape.iter().product::<u64>() * 4;
        SaveTensor { name: name.into(), dtype: DType::F32, shape, data: vec![fill; n as usize] }
    };
    SaveLayer {
        path: "dense".into(),
        weights: vec![t("kernel", vec![input, units]), t("bias", vec![units])],
        trainable: vec![true, true],
    }
}

fn save_small(out: &Path) -> Vec<u8> {
    let cfg = small_config(3, 4);
    let m = SaveModel { config: &cfg, layers: vec![dense_layer(3, 4, 7)], optimizer: None, training_config: None };
    save_model(&m, Target::from_path(out).unwrap(), out).unwrap();
    std::fs::read(out).unwrap()
}

fn assert_old_intact(out: &Path, old: &[u8]) {
    assert_eq!(std::fs::read(out).unwrap(), old, "the old file changed");
    let mf = ModelFile::open(out).unwrap();
    let t = tensors_of(&mf);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].1, vec![4, 3]);
    assert!(t[0].2.iter().all(|&b| b == 7));
}

const CHILD_ENV: &str = "STRATA_SAVE_KILL_CHILD";

/// Runs only as the child of [`sigkill_mid_save_leaves_old_file`]: saves ~170 MB over the file.
#[test]
fn kill_child_entry() {
    let Some(out) = std::env::var_os(CHILD_ENV) else { return };
    let out = PathBuf::from(out);
    let (units, input) = (10_240, 4096);
    let cfg = small_config(units, input);
    let m =
        SaveModel { config: &cfg, layers: vec![dense_layer(units, input, 9)], optimizer: None, training_config: None };
    save_model(&m, Target::from_path(&out).unwrap(), &out).unwrap();
}

#[cfg(unix)]
#[test]
fn sigkill_mid_save_leaves_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.h5");
    let old = save_small(&out);
    let exe = std::env::current_exe().unwrap();
    let mut killed = false;
    for _attempt in 0..4 {
        let mut child = Command::new(&exe)
            .args(["--exact", "kill_child_entry", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        loop {
            let temp = std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains(strata_format::atomic::TEMP_MARKER));
            if temp {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed = true;
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "the child save failed: {status}");
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        if killed {
            break;
        }
        // the save finished before it was caught: put the old file back and try again
        std::fs::write(&out, &old).unwrap();
    }
    assert!(killed, "never caught the save mid-write");
    assert_old_intact(&out, &old);
    // nothing but the target and (at most) the stale temporary file
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(n == "model.h5" || n.contains(strata_format::atomic::TEMP_MARKER), "stray file {n}");
    }
}

#[test]
fn missing_directory_errors_with_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no_such_dir").join("m.keras");
    let cfg = small_config(3, 4);
    let m = SaveModel { config: &cfg, layers: vec![dense_layer(3, 4, 1)], optimizer: None, training_config: None };
    let e = save_model(&m, Target::KerasV3, &out).unwrap_err().to_string();
    assert!(e.contains(&out.display().to_string()), "{e}");
    assert!(e.contains("directory exists and is writable"), "{e}");
}

#[cfg(unix)]
#[test]
fn read_only_directory_errors_and_keeps_old_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.keras");
    let old = save_small(&out);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    // root ignores directory permissions: nothing to check then
    let probe = dir.path().join("probe");
    if std::fs::write(&probe, b"x").is_ok() {
        let _ = std::fs::remove_file(&probe);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("skipping: running with permission to write into a read-only directory (root)");
        return;
    }
    let cfg = small_config(3, 4);
    let m = SaveModel { config: &cfg, layers: vec![dense_layer(3, 4, 1)], optimizer: None, training_config: None };
    let e = save_model(&m, Target::KerasV3, &out).unwrap_err().to_string();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(e.contains(&out.display().to_string()), "{e}");
    assert_old_intact(&out, &old);
}

fn err_of(m: &SaveModel<'_>, target: Target) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.out");
    let e = save_model(m, target, &out).unwrap_err().to_string();
    assert!(!out.exists());
    e
}

#[test]
fn errors_say_what_where_and_how_to_fix() {
    let cfg = small_config(3, 4);
    let mut m = SaveModel { config: &cfg, layers: vec![dense_layer(3, 4, 1)], optimizer: None, training_config: None };
    m.layers[0].path = "dens".into();
    let e = err_of(&m, Target::KerasV3);
    assert!(
        e.contains("layer `dens` is not a layer of model `big`") && e.contains("its layers are: input_layer, dense"),
        "{e}"
    );

    let mut m2 = SaveModel { layers: vec![dense_layer(3, 4, 1)], ..m.clone() };
    m2.layers[0].weights[1].data.pop();
    let e = err_of(&m2, Target::LegacyH5);
    assert!(e.contains("weight of layer `dense` `bias` has shape [3] of float32 (12 bytes), but 11 bytes"), "{e}");

    let mut m3 = SaveModel { layers: vec![dense_layer(3, 4, 1)], ..m.clone() };
    m3.layers[0].trainable.pop();
    let e = err_of(&m3, Target::WeightsH5);
    assert!(e.contains("layer `dense` has 2 weights but 1 trainable flags"), "{e}");

    let m4 = SaveModel { layers: vec![dense_layer(5, 4, 1)], ..m.clone() };
    let e = err_of(&m4, Target::KerasV3);
    assert!(e.contains("layer `dense` (Dense) needs weights") && e.contains("in Keras order"), "{e}");

    let m5 = SaveModel { layers: vec![dense_layer(3, 4, 1), dense_layer(3, 4, 1)], ..m.clone() };
    assert!(err_of(&m5, Target::KerasV3).contains("layer `dense` is given twice"));

    let it = SaveTensor { name: "iterations".into(), dtype: DType::I64, shape: vec![], data: vec![0; 8] };
    let m6 = SaveModel { layers: vec![dense_layer(3, 4, 1)], optimizer: Some(vec![it]), ..m.clone() };
    let e = err_of(&m6, Target::KerasV3);
    assert!(e.contains("1 optimizer variables were given, but the model config has no `compile_config`"), "{e}");
    // a weights file holds no optimizer: saved, with a note
    let dir = tempfile::tempdir().unwrap();
    let done = save_model(&m6, Target::WeightsH5, &dir.path().join("w.weights.h5")).unwrap();
    assert!(done.notes.iter().any(|n| n.contains("optimizer variables were not written")), "{:?}", done.notes);
}

/// Keras loads what strata saved: same predictions, same optimizer state, same compile config.
#[test]
fn keras_loads_saved_models() {
    let Some(py) = strata_testkit::oracle_python() else { return };
    let script = strata_testkit::repo_root().join("tools/oracle/check_saved.py");
    let dir = tempfile::tempdir().unwrap();
    for case in ["mlp", "normalization", "nested"] {
        let h = hold(&fixture(case, "model.keras"));
        for (target, name, orig) in
            [(Target::KerasV3, "m.keras", "model.keras"), (Target::LegacyH5, "m.h5", "model.h5")]
        {
            let out = dir.path().join(format!("{case}_{name}"));
            save_model(&model(&h), target, &out).unwrap();
            let o = Command::new(&py)
                .arg(&script)
                .arg(fixture(case, orig))
                .arg(&out)
                .arg("--inputs")
                .arg(fixture(case, "io.npz"))
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{case} {name}: {}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}
