//! Which Keras wrote a config, told from the JSON alone (plus a version string when known).
//!
//! Markers, from the writers' sources:
//! * Keras 3 (`keras/src/saving/serialization_lib.py`) writes a `module` key on every object;
//!   `functional.py` writes `{"args", "kwargs"}` nodes; InputLayer has `batch_shape`.
//! * Keras 3 writing `.h5` (`keras/src/legacy/saving/legacy_h5_format.py` with
//!   `use_legacy_config`) drops `module` on layer entries but keeps Keras 3 nodes, `batch_shape`
//!   and `module` inside nested values (dtype policies, initializers).
//! * tf-keras in a `.keras` archive writes `module` too, but keeps list nodes, `batch_input_shape`
//!   and module paths under `keras.src.engine` (Keras 2.13-2.15) or `tf_keras`.
//! * tf.keras (TF >= 2.0) adds `ragged` to InputLayer; TF >= 2.3 names functional models
//!   `Functional`; tf-keras >= 2.13 writes `module` on layer entries in `to_json()`/`.h5` too, but
//!   never `{"args", "kwargs"}` nodes or `batch_shape`.
//! * Keras 1 writes 3-element node entries and its own spellings: `init`, `W_regularizer`,
//!   `border_mode`, `nb_filter`, `dim_ordering`, `input_dtype`, classes `Merge`, `Convolution2D`...
//!
//! A `keras_version` string overrides the guess where it is unambiguous: `1.*`, `3.*`, and `2.5`
//! or later (multi-backend Keras ended at 2.4; later 2.x versions are tf.keras / tf-keras).

use super::ConfigDialect;
use crate::json::Json;

const KERAS1_KEYS: &[&str] = &[
    "init",
    "inner_init",
    "W_regularizer",
    "border_mode",
    "nb_filter",
    "nb_row",
    "dim_ordering",
    "input_dtype",
    "consume_less",
];

const KERAS1_CLASSES: &[&str] = &[
    "Merge",
    "Convolution1D",
    "Convolution2D",
    "Convolution3D",
    "AtrousConvolution2D",
    "Deconvolution2D",
    "MaxoutDense",
    "Highway",
    "TimeDistributedDense",
];

#[derive(Default)]
struct Markers {
    inner_module: bool,
    tf_module: bool,
    dict_nodes: bool,
    list_nodes: bool,
    three_element_entries: bool,
    batch_shape: bool,
    batch_input_shape: bool,
    keras1: bool,
    ragged: bool,
    functional_class: bool,
}

fn scan(root: &Json) -> Markers {
    let mut m = Markers::default();
    let mut stack: Vec<(&Json, bool)> = vec![(root, true)];
    while let Some((v, is_root)) = stack.pop() {
        match v {
            Json::Array(items) => stack.extend(items.iter().map(|i| (i, false))),
            Json::Object(o) => {
                for (k, item) in o.iter() {
                    match k {
                        "module" => {
                            if !is_root {
                                m.inner_module = true;
                            }
                            if let Some(s) = item.as_str()
                                && (s.starts_with("tf_keras") || s.starts_with("keras.src.engine"))
                            {
                                m.tf_module = true;
                            }
                        }
                        "class_name" => {
                            if let Some(s) = item.as_str() {
                                m.keras1 |= KERAS1_CLASSES.contains(&s);
                                m.functional_class |= s == "Functional";
                            }
                        }
                        "inbound_nodes" => {
                            for node in item.as_array().unwrap_or_default() {
                                match node {
                                    Json::Object(_) => m.dict_nodes = true,
                                    Json::Array(entries) => {
                                        m.list_nodes = true;
                                        m.three_element_entries |= entries.iter().any(|e| {
                                            e.as_array().is_some_and(|a| {
                                                a.len() == 3 && a.first().and_then(Json::as_str).is_some()
                                            })
                                        });
                                    }
                                    _ => {}
                                }
                            }
                        }
                        "batch_shape" => m.batch_shape = true,
                        "batch_input_shape" => m.batch_input_shape = true,
                        "ragged" => m.ragged = true,
                        other => m.keras1 |= KERAS1_KEYS.contains(&other),
                    }
                    stack.push((item, false));
                }
            }
            _ => {}
        }
    }
    m
}

fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()
        .and_then(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or(0);
    Some((major, minor))
}

/// The dialect of the config document `root`.
pub fn detect(root: &Json, keras_version: Option<&str>) -> ConfigDialect {
    let top_module = root.get("module").is_some();
    let version = keras_version.or_else(|| root.get("keras_version").and_then(Json::as_str)).and_then(major_minor);
    match version {
        Some((1, _)) => return ConfigDialect::Keras1,
        Some((3, _)) => {
            return if top_module { ConfigDialect::Keras3 } else { ConfigDialect::Keras3LegacyH5 };
        }
        Some((2, minor)) if minor >= 5 => return ConfigDialect::TfKeras,
        _ => {}
    }
    let m = scan(root);
    if top_module {
        return if m.tf_module || m.list_nodes || m.batch_input_shape {
            ConfigDialect::TfKeras
        } else {
            ConfigDialect::Keras3
        };
    }
    if m.dict_nodes || m.batch_shape {
        return ConfigDialect::Keras3LegacyH5;
    }
    // tf-keras >= 2.13 writes `module` on layer entries even in legacy JSON.
    if m.inner_module || m.tf_module {
        return ConfigDialect::TfKeras;
    }
    if m.keras1 || m.three_element_entries {
        return ConfigDialect::Keras1;
    }
    if m.functional_class || m.ragged {
        return ConfigDialect::TfKeras;
    }
    ConfigDialect::Keras2
}
