//! What a `Lambda` layer stores as its function: data only, nothing decoded or run.
//!
//! Shapes, by writer:
//! * Keras 3 (`keras/src/layers/core/lambda_layer.py`, `keras/src/utils/python_utils.py`
//!   `func_dump`): `"function": {"class_name": "__lambda__", "config": {"code", "defaults",
//!   "closure"}}`; a bare lambda serialized elsewhere uses `"config": {"value": [code, defaults,
//!   closure]}`. A named function is stored by reference: `{"module": "builtins", "class_name":
//!   "function", "config": "my_pkg>fn", "registered_name": "function"}` (or another module).
//! * Keras 2 / tf-keras (`tf_keras/layers/core/lambda_layer.py`): flat keys `function` (a
//!   `[code_b64, defaults, closure]` list for lambdas, a name for functions), `function_type`
//!   (`lambda`, `function`, `raw`) and `module`; the same trio exists for `output_shape` and `mask`.
//! * Keras <= 2.1.1 (Keras 1 included) stored the marshal bytes as `raw_unicode_escape` text instead
//!   of base64 (Keras 2.1.2, PR #8572, switched to base64).

use super::LayerConfig;
use crate::json::Json;

/// A Lambda layer's function (or `output_shape` function), as stored.
#[derive(Clone, Debug, PartialEq)]
pub enum LambdaFunction {
    /// Keras 3 `__lambda__`: base64 (MIME, with newlines) of `marshal.dumps(code)`.
    Keras3Lambda {
        /// The base64 text as stored.
        code_b64: String,
        /// `__defaults__` as stored.
        defaults: Json,
        /// Closure cell values as stored.
        closure: Json,
    },
    /// Keras 2 / tf-keras marshaled lambda (`function_type` "lambda").
    Keras2 {
        /// The base64 text as stored.
        code_b64: String,
        /// `__defaults__` as stored.
        defaults: Json,
        /// Closure cell values as stored.
        closure: Json,
        /// `function_type` as stored (`lambda`).
        function_type: String,
        /// The `module` the function came from (`__main__`, ...).
        module: Option<String>,
    },
    /// Keras <= 2.1.1: marshal bytes as `raw_unicode_escape` text.
    Keras1Raw {
        /// The text as stored.
        text: String,
        /// `__defaults__` as stored.
        defaults: Json,
        /// Closure cell values as stored.
        closure: Json,
    },
    /// A function stored by name (needs registration or import to load).
    NamedFunction {
        /// Its module (`builtins` for Keras 3 registered functions, `__main__`...).
        module: Option<String>,
        /// The name: `my_pkg>fn`, `fn`, or a Keras API name.
        name: String,
        /// Keras 3 `registered_name` (`function`).
        registered_name: Option<String>,
    },
}

fn looks_base64(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\n' | b'\r'))
}

fn string(v: Option<&Json>) -> Option<String> {
    v.and_then(Json::as_str).map(str::to_owned)
}

/// Reads `config[key]` of a Lambda-like layer (`function` or `output_shape`).
pub(super) fn from_layer(layer: &LayerConfig, key: &str) -> Option<LambdaFunction> {
    let cfg = &layer.config;
    let value = cfg.get(key)?;
    let type_key = format!("{key}_type");
    let module_key = if key == "function" { "module".to_owned() } else { format!("{key}_module") };
    let function_type = cfg.get(&type_key).and_then(Json::as_str);
    let module = string(cfg.get(&module_key));
    from_value(value, function_type, module)
}

/// Reads a stored function value; `function_type`/`module` are the tf-keras companion keys.
pub fn from_value(value: &Json, function_type: Option<&str>, module: Option<String>) -> Option<LambdaFunction> {
    match value {
        Json::Object(o) => {
            let class_name = o.get("class_name")?.as_str()?;
            let config = o.get("config")?;
            match class_name {
                "__lambda__" => {
                    let (code, defaults, closure) = match config.get("value") {
                        Some(Json::Array(v)) => (v.first(), v.get(1), v.get(2)),
                        _ => (config.get("code"), config.get("defaults"), config.get("closure")),
                    };
                    Some(LambdaFunction::Keras3Lambda {
                        code_b64: string(code)?,
                        defaults: defaults.cloned().unwrap_or_default(),
                        closure: closure.cloned().unwrap_or_default(),
                    })
                }
                "function" => Some(LambdaFunction::NamedFunction {
                    module: string(o.get("module")),
                    name: config.as_str()?.to_owned(),
                    registered_name: string(o.get("registered_name")),
                }),
                _ => None,
            }
        }
        Json::Array(items) if function_type.is_none_or(|t| t == "lambda") => {
            let code = items.first()?.as_str()?;
            let defaults = items.get(1).cloned().unwrap_or_default();
            let closure = items.get(2).cloned().unwrap_or_default();
            if looks_base64(code) {
                Some(LambdaFunction::Keras2 {
                    code_b64: code.to_owned(),
                    defaults,
                    closure,
                    function_type: function_type.unwrap_or("lambda").to_owned(),
                    module,
                })
            } else {
                Some(LambdaFunction::Keras1Raw { text: code.to_owned(), defaults, closure })
            }
        }
        Json::String(s) => match function_type {
            Some("function") => Some(LambdaFunction::NamedFunction { module, name: s.clone(), registered_name: None }),
            Some("lambda") => {
                Some(LambdaFunction::Keras1Raw { text: s.clone(), defaults: Json::Null, closure: Json::Null })
            }
            _ => None,
        },
        _ => None,
    }
}
