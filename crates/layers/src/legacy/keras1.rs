//! Keras 1 layer configs in Keras 2 spelling: class renames, the argument renames of Keras 2's
//! `keras/legacy/interfaces.py`, `Merge` modes as the Keras 2 merge layers, and the CuDNN classes
//! of Keras 2 as the native recurrent layers.

use crate::cfg::Meta;
use crate::error::Result;
use strata_format::json::{Json, Object};

/// Renames shared by the layers with a kernel and a bias (Dense, convolutions).
const KERNEL_BIAS: &[(&str, &str)] = &[
    ("init", "kernel_initializer"),
    ("W_regularizer", "kernel_regularizer"),
    ("b_regularizer", "bias_regularizer"),
    ("W_constraint", "kernel_constraint"),
    ("b_constraint", "bias_constraint"),
    ("bias", "use_bias"),
];

/// Renames of the Keras 1 recurrent layers (`legacy_recurrent_support`).
const RECURRENT: &[(&str, &str)] = &[
    ("output_dim", "units"),
    ("init", "kernel_initializer"),
    ("inner_init", "recurrent_initializer"),
    ("inner_activation", "recurrent_activation"),
    ("W_regularizer", "kernel_regularizer"),
    ("U_regularizer", "recurrent_regularizer"),
    ("b_regularizer", "bias_regularizer"),
    ("dropout_W", "dropout"),
    ("dropout_U", "recurrent_dropout"),
];

fn rename(o: &mut Object, pairs: &[(&str, &str)]) {
    for (old, new) in pairs {
        if let Some(v) = o.remove(old) {
            // a key written in both spellings keeps the new one
            if !o.contains_key(new) {
                o.insert(*new, v);
            }
        }
    }
}

/// `dim_ordering` (`th`/`tf`/`default`) as `data_format`.
fn dim_ordering(m: &Meta, o: &mut Object) -> Result<()> {
    let Some(v) = o.remove("dim_ordering") else { return Ok(()) };
    let df = match v.as_str() {
        Some("th") => "channels_first",
        Some("tf") => "channels_last",
        Some("default") => return Ok(()),
        _ if v.is_null() => return Ok(()),
        _ => {
            return Err(
                m.cfg_err("dim_ordering", format!("is {}, expected `th`, `tf` or `default`", v.to_string_python()))
            );
        }
    };
    o.insert("data_format", Json::from(df));
    Ok(())
}

/// `[a, b]` from two keys (`nb_row`, `nb_col`), removed from `o`.
fn gather(m: &Meta, o: &mut Object, keys: &[&str]) -> Result<Option<Json>> {
    if !keys.iter().any(|k| o.contains_key(k)) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let v =
            o.remove(k).filter(|v| v.as_i64().is_some()).ok_or_else(|| m.cfg_err(k, "is missing or not an integer"))?;
        out.push(v);
    }
    Ok(Some(Json::Array(out)))
}

/// A Keras 1 `Merge` (functional `merge(...)` or a Sequential `Merge` of sub-models) as the Keras 2
/// layer of its mode: `sum` Add, `mul` Multiply, `ave` Average, `max` Maximum, `concat`
/// Concatenate(`concat_axis`), `dot` Dot(`dot_axes`), `cos` Dot(`dot_axes`, normalize). Keras 1
/// computed `cos` as `dot / max(sqrt(|a|^2 |b|^2), 1e-7)`; Dot normalizes each input with a 1e-12
/// floor on the squared norm: the same but for near-zero inputs.
fn merge(m: &Meta, o: &Object) -> Result<(String, Object)> {
    let lambda = matches!(o.get("mode_type").and_then(Json::as_str), Some("lambda" | "function"));
    let mode = o.get("mode").and_then(Json::as_str).filter(|_| !lambda).ok_or_else(|| {
        m.cfg_err(
            "mode",
            "is a Python function; strata never runs Python code: rewrite the model with a built-in merge mode (sum, mul, concat, ave, max, dot, cos)",
        )
    })?;
    let mut out = Object::new();
    for k in ["name", "trainable"] {
        if let Some(v) = o.get(k) {
            out.insert(k, v.clone());
        }
    }
    let class = match mode {
        "sum" => "Add",
        "mul" => "Multiply",
        "ave" => "Average",
        "max" => "Maximum",
        "concat" => {
            out.insert("axis", o.get("concat_axis").filter(|v| !v.is_null()).cloned().unwrap_or(Json::from(-1i64)));
            "Concatenate"
        }
        "dot" | "cos" => {
            out.insert("axes", o.get("dot_axes").filter(|v| !v.is_null()).cloned().unwrap_or(Json::from(-1i64)));
            out.insert("normalize", Json::from(mode == "cos"));
            "Dot"
        }
        other => {
            return Err(m.cfg_err(
                "mode",
                format!("is `{other}`, which is not a Keras 1 merge mode (sum, mul, concat, ave, max, dot, cos)"),
            ));
        }
    };
    Ok((class.to_string(), out))
}

/// A nested `{class_name, config}` entry (the `layer` of a wrapper), normalized.
fn inner(m: &Meta, v: &Json, keras1: bool, legacy_dialect: bool) -> Result<Json> {
    let class = v.get("class_name").and_then(Json::as_str).ok_or_else(|| m.cfg_err("layer", "has no `class_name`"))?;
    let cfg = v.get("config").cloned().unwrap_or(Json::Object(Object::new()));
    let (class, cfg) = normalize_entry(m, class, &cfg, keras1, legacy_dialect)?;
    let mut out = v.as_object().cloned().unwrap_or_else(Object::new);
    out.insert("class_name", Json::from(class));
    out.insert("config", cfg);
    Ok(Json::Object(out))
}

/// One layer entry (`class_name`, `config`) in Keras 2 form: Keras 1 renames when `keras1`, the
/// CuDNN classes as LSTM/GRU, and `reset_after: false` on a GRU of a Keras 1/2 file
/// (`legacy_dialect`) that does not say. Wrappers (`TimeDistributed`, `Bidirectional`) have their
/// inner layer normalized the same way.
pub fn normalize_entry(
    m: &Meta,
    class: &str,
    cfg: &Json,
    keras1: bool,
    legacy_dialect: bool,
) -> Result<(String, Json)> {
    let Some(src) = cfg.as_object() else {
        return Ok((class.to_string(), cfg.clone()));
    };
    let mut o = src.clone();
    let mut class = class.to_string();
    if keras1 {
        dim_ordering(m, &mut o)?;
        rename(&mut o, &[("border_mode", "padding")]);
        match class.as_str() {
            "Merge" => {
                let (c, merged) = merge(m, &o)?;
                return Ok((c, Json::Object(merged)));
            }
            "Dense" | "MaxoutDense" | "Highway" => {
                rename(&mut o, &[("output_dim", "units")]);
                rename(&mut o, KERNEL_BIAS);
            }
            "TimeDistributedDense" => {
                rename(&mut o, &[("output_dim", "units")]);
                rename(&mut o, KERNEL_BIAS);
                for k in ["input_length", "input_dim"] {
                    o.remove(k);
                }
                let mut wrapper = Object::new();
                for k in ["name", "trainable", "batch_input_shape", "input_dtype"] {
                    if let Some(v) = o.get(k) {
                        wrapper.insert(k, v.clone());
                    }
                }
                o.remove("batch_input_shape");
                o.remove("input_dtype");
                wrapper.insert(
                    "layer",
                    Json::Object(Object::from_iter([("class_name", Json::from("Dense")), ("config", Json::Object(o))])),
                );
                return Ok(("TimeDistributed".to_string(), Json::Object(wrapper)));
            }
            "Dropout" | "SpatialDropout1D" | "SpatialDropout2D" | "SpatialDropout3D" | "GaussianDropout" => {
                rename(&mut o, &[("p", "rate")])
            }
            "GaussianNoise" => rename(&mut o, &[("sigma", "stddev")]),
            "PReLU" => rename(&mut o, &[("init", "alpha_initializer")]),
            "Embedding" => {
                rename(
                    &mut o,
                    &[
                        ("init", "embeddings_initializer"),
                        ("W_regularizer", "embeddings_regularizer"),
                        ("W_constraint", "embeddings_constraint"),
                    ],
                );
                // Keras 1 Embedding dropout drops whole words in training only
                o.remove("dropout");
            }
            "MaxPooling1D" | "AveragePooling1D" => {
                rename(&mut o, &[("pool_length", "pool_size"), ("stride", "strides")])
            }
            "UpSampling1D" => rename(&mut o, &[("length", "size")]),
            "ZeroPadding2D" => {
                // Keras 1.2 also accepted {top_pad, bottom_pad, left_pad, right_pad}
                if let Some(p) = o.get("padding").and_then(Json::as_object).cloned() {
                    let side = |k: &str| p.get(k).cloned().unwrap_or(Json::from(0i64));
                    o.insert(
                        "padding",
                        Json::array([
                            Json::array([side("top_pad"), side("bottom_pad")]),
                            Json::array([side("left_pad"), side("right_pad")]),
                        ]),
                    );
                }
            }
            "Convolution1D" | "AtrousConvolution1D" => {
                rename(
                    &mut o,
                    &[
                        ("nb_filter", "filters"),
                        ("filter_length", "kernel_size"),
                        ("subsample_length", "strides"),
                        ("atrous_rate", "dilation_rate"),
                    ],
                );
                rename(&mut o, KERNEL_BIAS);
                class = "Conv1D".into();
            }
            "Convolution2D"
            | "AtrousConvolution2D"
            | "Deconvolution2D"
            | "SeparableConvolution2D"
            | "Convolution3D" => {
                rename(&mut o, &[("nb_filter", "filters"), ("subsample", "strides"), ("atrous_rate", "dilation_rate")]);
                let ks = if class == "Convolution3D" {
                    gather(m, &mut o, &["kernel_dim1", "kernel_dim2", "kernel_dim3"])?
                } else {
                    gather(m, &mut o, &["nb_row", "nb_col"])?
                };
                if let Some(ks) = ks {
                    o.insert("kernel_size", ks);
                }
                if class == "SeparableConvolution2D" {
                    if let Some(init) = o.remove("init") {
                        o.insert("depthwise_initializer", init.clone());
                        o.insert("pointwise_initializer", init);
                    }
                    rename(
                        &mut o,
                        &[
                            ("b_regularizer", "bias_regularizer"),
                            ("b_constraint", "bias_constraint"),
                            ("bias", "use_bias"),
                        ],
                    );
                } else {
                    rename(&mut o, KERNEL_BIAS);
                }
                // Deconvolution2D's output_shape is implied by the input in Keras 2
                o.remove("output_shape");
                class = super::renamed(&class).unwrap_or("Conv2D").to_string();
            }
            "LSTM" | "GRU" | "SimpleRNN" | "ConvLSTM2D" => {
                if class == "ConvLSTM2D" {
                    rename(&mut o, &[("nb_filter", "filters"), ("subsample", "strides")]);
                    if let Some(ks) = gather(m, &mut o, &["nb_row", "nb_col"])? {
                        o.insert("kernel_size", ks);
                    }
                    rename(&mut o, &[("bias", "use_bias")]);
                }
                rename(&mut o, RECURRENT);
                if let Some(v) = o.remove("consume_less") {
                    let imp = match v.as_str() {
                        Some("cpu") => 0i64,
                        Some("mem") => 1,
                        Some("gpu") => 2,
                        _ => return Err(m.cfg_err("consume_less", "is not `cpu`, `mem` or `gpu`")),
                    };
                    o.insert("implementation", Json::from(imp));
                }
                if let Some(v) = o.remove("forget_bias_init") {
                    o.insert("unit_forget_bias", Json::from(v.as_str() == Some("one")));
                }
                // Keras 1 recurrent layers always have a bias
                if !o.contains_key("use_bias") {
                    o.insert("use_bias", Json::from(true));
                }
            }
            "BatchNormalization" => {
                match o.remove("mode").map(|v| v.as_i64()) {
                    None | Some(Some(0)) => {}
                    Some(mode) => {
                        return Err(m.cfg_err(
                            "mode",
                            format!(
                                "is {}; Keras 1 BatchNormalization modes 1 (per-sample) and 2 (batch statistics at inference) are not supported, only mode 0",
                                mode.map_or("not an integer".to_string(), |v| v.to_string())
                            ),
                        ));
                    }
                }
                rename(&mut o, &[("beta_init", "beta_initializer"), ("gamma_init", "gamma_initializer")]);
            }
            _ => {}
        }
    }
    match class.as_str() {
        "CuDNNLSTM" | "CuDNNGRU" => {
            // CuDNN kernels: tanh, sigmoid gates, a bias, GRU with the reset gate after the matmul
            o.insert("activation", Json::from("tanh"));
            o.insert("recurrent_activation", Json::from("sigmoid"));
            o.insert("use_bias", Json::from(true));
            if class == "CuDNNGRU" {
                o.insert("reset_after", Json::from(true));
            }
            class = class.trim_start_matches("CuDNN").to_string();
        }
        // Keras 1 had no `reset_after` (its GRU is reset-before). A Keras 2+ GRU without the key
        // is left to the recurrent family, which reads it off the stored bias shape ((3u,) false,
        // (2, 3u) true) before falling back to the dialect.
        "GRU" if keras1 && !o.contains_key("reset_after") => {
            o.insert("reset_after", Json::from(false));
        }
        "TimeDistributed" | "Bidirectional" => {
            if let Some(v) = o.get("layer").cloned() {
                o.insert("layer", inner(m, &v, keras1, legacy_dialect)?);
            }
        }
        _ => {}
    }
    Ok((class, Json::Object(o)))
}
