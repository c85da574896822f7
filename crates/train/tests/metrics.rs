//! Metric parity with Keras 3 (`tools/oracle/gen_train.py`): the result after each of 3
//! `update_state` calls (with and without sample weights), `reset_state`, and the config.

mod common;

use common::{arrays, close, index, report};
use strata_train::metrics::{self, Mean, Metric};

#[test]
fn metrics_match_keras() {
    let idx = index();
    let arr = arrays("metrics");
    let mut results = Vec::new();
    for (name, case) in idx["metrics"].as_object().expect("metrics").iter() {
        if name == "mean" {
            continue;
        }
        let r = (|| -> Result<f64, String> {
            let mut m = metrics::deserialize(&case["config"]).map_err(|e| e.to_string())?;
            if m.serialize() != case["config"] {
                return Err(format!("serialize differs:\n strata {}\n keras  {}", m.serialize(), case["config"]));
            }
            let mut got = Vec::new();
            for i in 0..case["batches"].as_usize().unwrap() {
                let yt = &arr[&format!("{name}/y_true_{i}")];
                let yp = &arr[&format!("{name}/y_pred_{i}")];
                let sw = arr.get(&format!("{name}/sample_weight_{i}"));
                m.update_state(yt, yp, sw).map_err(|e| e.to_string())?;
                got.push(m.result());
            }
            let d = close("results", &got, arr[&format!("{name}/results")].as_slice())?;
            m.reset_state();
            close("after reset", &[m.result()], &[case["after_reset"].as_f64().unwrap() as f32])?;
            Ok(d)
        })();
        results.push((name.to_string(), r));
    }
    report("metrics", results);
}

#[test]
fn mean_tracker_matches_keras() {
    let idx = index();
    let arr = arrays("metrics");
    let mut m = Mean::new("loss");
    assert_eq!(m.serialize(), idx["metrics"]["mean"]["config"]);
    let mut got = Vec::new();
    for &v in arr["mean/values"].as_slice() {
        m.update_values(&strata_tensor::Tensor::scalar(v), None).unwrap();
        got.push(m.result());
    }
    close("mean", &got, arr["mean/results"].as_slice()).unwrap();
}
