//! Loss parity with Keras 3 (`tools/oracle/gen_train.py`): the reduced value and
//! d loss / d y_pred (from `tf.GradientTape`) for every case, the serialized config, and the
//! function forms' per-sample values.

mod common;

use common::{arrays, close, index, report};
use strata_format::json::Json;
use strata_train::losses::Loss;

#[test]
fn losses_match_keras() {
    let idx = index();
    let arr = arrays("losses");
    let mut results = Vec::new();
    for (name, case) in idx["losses"].as_object().expect("losses").iter() {
        let r = (|| -> Result<f64, String> {
            // The options the Keras object really used (its get_config drops Huber's delta and
            // CosineSimilarity's axis), merged into the config.
            let mut cfg = case["config"]["config"].as_object().cloned().unwrap_or_default();
            for (k, v) in case["fn_kwargs"].as_object().expect("fn_kwargs").iter() {
                cfg.insert(k, v.clone());
            }
            let class = case["config"]["class_name"].as_str().unwrap_or_default();
            let loss = Loss::from_config(class, &Json::Object(cfg)).map_err(|e| e.to_string())?;
            if loss.serialize() != case["config"] {
                return Err(format!("serialize differs:\n strata {}\n keras  {}", loss.serialize(), case["config"]));
            }
            let yt = &arr[&format!("{name}/y_true")];
            let yp = &arr[&format!("{name}/y_pred")];
            let sw = arr.get(&format!("{name}/sample_weight"));
            let (v, g) = loss.value_and_grad(yt, yp, sw).map_err(|e| e.to_string())?;
            let a = close("value", &[v], arr[&format!("{name}/value")].as_slice())?;
            let b = close("grad", g.as_slice(), arr[&format!("{name}/grad")].as_slice())?;
            Ok(a.max(b))
        })();
        results.push((name.to_string(), r));
    }
    report("losses", results);
}

#[test]
fn loss_function_names_match_keras() {
    let idx = index();
    let arr = arrays("losses");
    let mut results = Vec::new();
    for (name, case) in idx["loss_functions"].as_object().expect("loss_functions").iter() {
        let r = (|| -> Result<f64, String> {
            let loss = Loss::get(name).map_err(|e| e.to_string())?;
            let want_fn = case["resolved"].as_str().unwrap_or_default();
            if loss.kind.function_name() != want_fn {
                return Err(format!("resolves to {}, Keras to {want_fn}", loss.kind.function_name()));
            }
            let yt = &arr[case["y_true"].as_str().unwrap()];
            let yp = &arr[case["y_pred"].as_str().unwrap()];
            let v = loss.per_sample(yt, yp).map_err(|e| e.to_string())?;
            close("per-sample", v.as_slice(), arr[&format!("fn_{name}/value")].as_slice())
        })();
        results.push((name.to_string(), r));
    }
    report("loss_functions", results);
}
