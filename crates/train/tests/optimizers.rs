//! Optimizer and schedule parity with Keras 3 (`tools/oracle/gen_train.py`): from the same
//! initial variables and 5 gradient sets, every step's variables and every optimizer variable
//! (in Keras's saved order) match; configs round-trip; schedules give Keras's rates.

mod common;

use common::{arrays, close, index, report};
use strata_format::json::Json;
use strata_train::optimizers::{Optimizer, Variable};
use strata_train::schedules::LearningRateSchedule;

#[test]
fn optimizer_steps_match_keras() {
    let idx = index();
    let arr = arrays("optimizers");
    let cases = idx["optimizers"].as_object().expect("optimizers");
    let mut results = Vec::new();
    for (name, case) in cases.iter() {
        let r = (|| -> Result<f64, String> {
            let mut opt = Optimizer::deserialize(&case["config"]).map_err(|e| e.to_string())?;
            let n = case["shapes"].as_array().map_or(0, |a| a.len());
            let mut vars: Vec<Variable> = (0..n)
                .map(|i| Variable::new(["kernel", "bias"][i], arr[&format!("{name}/init_{i}")].clone()))
                .collect();
            let slots: Vec<&str> = case["slots"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
            let mut worst = 0.0f64;
            for step in 0..case["steps"].as_usize().unwrap() {
                let grads: Vec<_> = (0..n).map(|i| arr[&format!("{name}/grad_{step}_{i}")].clone()).collect();
                opt.apply(&grads, &mut vars).map_err(|e| e.to_string())?;
                for (i, v) in vars.iter().enumerate() {
                    let want = &arr[&format!("{name}/var_{step}_{i}")];
                    worst = worst.max(close(&format!("step {step} var {i}"), v.value.as_slice(), want.as_slice())?);
                }
                let got = opt.variables().map_err(|e| e.to_string())?;
                if got.len() != slots.len() {
                    return Err(format!("{} optimizer variables, Keras has {}: {slots:?}", got.len(), slots.len()));
                }
                for (j, ((path, t), want_path)) in got.iter().zip(&slots).enumerate() {
                    // Keras auto-numbers optimizer names (adam_3); compare the part after the name.
                    // Keras also uniquifies the unnamed Nadam product variable (variable_1, ...).
                    let tail = |p: &str| {
                        let t = p.split_once('/').map(|(_, t)| t.to_string()).unwrap_or_default();
                        if t.starts_with("variable") { "variable".to_string() } else { t }
                    };
                    if tail(path) != tail(want_path) {
                        return Err(format!("optimizer variable {j} is `{path}`, Keras has `{want_path}`"));
                    }
                    let want = &arr[&format!("{name}/slot_{step}_{j}")];
                    worst = worst.max(close(&format!("step {step} `{want_path}`"), t.as_slice(), want.as_slice())?);
                }
            }
            // Restoring the saved variables into a fresh optimizer gives the same state.
            let mut fresh = Optimizer::deserialize(&case["config"]).map_err(|e| e.to_string())?;
            let spec: Vec<(&str, &[usize])> = vars.iter().map(|v| (v.path.as_str(), v.value.shape())).collect();
            fresh.build(&spec).map_err(|e| e.to_string())?;
            let saved: Vec<_> = opt.variables().map_err(|e| e.to_string())?.into_iter().map(|(_, t)| t).collect();
            fresh.load_variables(&saved).map_err(|e| e.to_string())?;
            if fresh.iterations() != opt.iterations() {
                return Err("iterations not restored".into());
            }
            // Config round trip: Keras's get_config, exactly.
            let back = opt.get_config();
            if back != case["get_config"] {
                return Err(format!("get_config differs:\n strata {back}\n keras  {}", case["get_config"]));
            }
            Ok(worst)
        })();
        results.push((name.to_string(), r));
    }
    report("optimizers", results);
}

#[test]
fn schedules_match_keras() {
    let idx = index();
    let arr = arrays("schedules");
    let mut results = Vec::new();
    for (name, case) in idx["schedules"].as_object().expect("schedules").iter() {
        let r = (|| -> Result<f64, String> {
            let s = LearningRateSchedule::deserialize(&case["config"]).map_err(|e| e.to_string())?;
            if s.serialize() != case["config"] {
                return Err(format!("serialize differs:\n strata {}\n keras  {}", s.serialize(), case["config"]));
            }
            let steps: Vec<u64> = case["steps"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
            let got: Vec<f32> = steps.iter().map(|&t| s.call(t)).collect();
            close("lr", &got, arr[&format!("{name}/lr")].as_slice())
        })();
        results.push((name.to_string(), r));
    }
    report("schedules", results);
}

#[test]
fn optimizer_names_keras_resolves() {
    for n in ["adam", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "lion", "adamw", "Adam", "RMSprop"] {
        assert!(Optimizer::deserialize(&Json::from(n)).is_ok(), "{n}");
    }
}
