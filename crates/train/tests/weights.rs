//! Initializers, regularizers and constraints against Keras 3 (`tools/oracle/gen_train.py`).
//!
//! Initializers: `compute_fans` equals Keras's exactly; every config round-trips; random
//! initializers are compared statistically with Keras's own samples of the same shape (strata's
//! RNG is not Keras's, so values differ, but mean, standard deviation and range must agree);
//! deterministic ones (zeros, ones, constant, identity) exactly. Regularizers: penalty and
//! gradient. Constraints: outputs.

mod common;

use common::{arrays, close, index, report};
use strata_train::constraints::Constraint;
use strata_train::initializers::{Initializer, compute_fans};
use strata_train::regularizers::Regularizer;

#[test]
fn fans_match_keras_exactly() {
    let idx = index();
    for case in idx["initializers"]["fans"].as_array().unwrap() {
        let shape: Vec<usize> = case["shape"].as_array().unwrap().iter().map(|d| d.as_usize().unwrap()).collect();
        let want = (case["fans"][0].as_f64().unwrap(), case["fans"][1].as_f64().unwrap());
        assert_eq!(compute_fans(&shape), want, "shape {shape:?}");
    }
}

#[test]
fn initializer_distributions_match_keras() {
    let idx = index();
    let arr = arrays("initializers");
    let mut results = Vec::new();
    for (name, case) in idx["initializers"]["stats"].as_object().unwrap().iter() {
        let r = (|| -> Result<f64, String> {
            let init = Initializer::deserialize(&case["config"]).map_err(|e| e.to_string())?;
            if init.serialize() != case["config"] {
                return Err(format!("serialize differs:\n strata {}\n keras  {}", init.serialize(), case["config"]));
            }
            // Identity's config drops gain (as Keras's does): rebuild it from the fixture's array.
            let init = if name == "identity_gain" {
                Initializer::Identity { gain: strata_train::config::Num::float(3.0) }
            } else {
                init
            };
            let shape: Vec<usize> = case["shape"].as_array().unwrap().iter().map(|d| d.as_usize().unwrap()).collect();
            let x = init.call(&shape).map_err(|e| e.to_string())?;
            let v: Vec<f64> = x.as_slice().iter().map(|&f| f64::from(f)).collect();
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let std = (v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n).sqrt();
            let (min, max) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
            let k = |key: &str| case[key].as_f64().unwrap();
            let (kmean, kstd, kmin, kmax) = (k("mean"), k("std"), k("min"), k("max"));
            // Sampling error of the mean and std: a few standard errors, plus float slack.
            let se = kstd / n.sqrt();
            if (mean - kmean).abs() > 6.0 * se + 1e-6 {
                return Err(format!("mean {mean}, Keras {kmean} (se {se:e})"));
            }
            if (std - kstd).abs() > 0.03 * kstd + 1e-7 {
                return Err(format!("std {std}, Keras {kstd}"));
            }
            let bounded = ["uniform", "truncated", "glorot", "he_", "lecun", "variance_scaling", "vs_fan_out"]
                .iter()
                .any(|s| name.contains(s))
                && !name.contains("untruncated");
            if bounded {
                // Range: never beyond Keras's observed extremes by more than 1%, and reaching close to them.
                let span = kmax - kmin;
                if min < kmin - 0.01 * span || max > kmax + 0.01 * span {
                    return Err(format!("range [{min}, {max}] exceeds Keras's [{kmin}, {kmax}]"));
                }
                if min > kmin + 0.05 * span || max < kmax - 0.05 * span {
                    return Err(format!("range [{min}, {max}] falls short of Keras's [{kmin}, {kmax}]"));
                }
            } else if (min - kmin).abs() > 1e-6 && std == 0.0 {
                return Err(format!("constant {min}, Keras {kmin}"));
            }
            if name.starts_with("orthogonal") {
                // Q^T Q = gain^2 I for the (60, 40) matrix.
                let (r, c) = (shape[0], shape[1]);
                let gain2 = if name == "orthogonal_gain" { 4.0 } else { 1.0 };
                for i in 0..c {
                    for j in 0..c {
                        let d: f64 = (0..r).map(|k| v[k * c + i] * v[k * c + j]).sum();
                        let want = if i == j { gain2 } else { 0.0 };
                        if (d - want).abs() > 1e-4 {
                            return Err(format!("Q^T Q [{i},{j}] = {d}, expected {want}"));
                        }
                    }
                }
            }
            Ok((std - kstd).abs())
        })();
        results.push((name.to_string(), r));
    }
    // Identity is deterministic: exact.
    let id = Initializer::Identity { gain: strata_train::config::Num::float(3.0) }.call(&[4, 6]).unwrap();
    results.push(("identity_values".into(), close("identity", id.as_slice(), arr["identity/value"].as_slice())));
    report("initializers", results);
}

#[test]
fn regularizers_match_keras() {
    let idx = index();
    let arr = arrays("regularizers");
    let x = &arr["x"];
    let mut results = Vec::new();
    for (name, case) in idx["regularizers"].as_object().unwrap().iter() {
        let r = (|| -> Result<f64, String> {
            let reg = Regularizer::deserialize(&case["config"]).map_err(|e| e.to_string())?;
            if reg.serialize() != case["config"] {
                return Err(format!("serialize differs:\n strata {}\n keras  {}", reg.serialize(), case["config"]));
            }
            let a = close("penalty", &[reg.call(x)], arr[&format!("{name}/value")].as_slice())?;
            let g = reg.grad(x).map_err(|e| e.to_string())?;
            Ok(a.max(close("grad", g.as_slice(), arr[&format!("{name}/grad")].as_slice())?))
        })();
        results.push((name.to_string(), r));
    }
    report("regularizers", results);
}

#[test]
fn constraints_match_keras() {
    let idx = index();
    let arr = arrays("regularizers");
    let mut results = Vec::new();
    for (name, case) in idx["constraints"].as_object().unwrap().iter() {
        let r = (|| -> Result<f64, String> {
            let c = Constraint::deserialize(&case["config"]).map_err(|e| e.to_string())?;
            if c.serialize() != case["config"] {
                return Err(format!("serialize differs:\n strata {}\n keras  {}", c.serialize(), case["config"]));
            }
            let mut worst = 0.0f64;
            for src in ["x", "x4"] {
                let Some(want) = arr.get(&format!("{name}/{src}")) else { continue };
                let got = c.call(&arr[src]).map_err(|e| e.to_string())?;
                worst = worst.max(close(src, got.as_slice(), want.as_slice())?);
            }
            Ok(worst)
        })();
        results.push((name.to_string(), r));
    }
    report("constraints", results);
}
