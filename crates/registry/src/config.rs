//! Configs derived from a struct's own fields through serde, and the conversion between
//! strata-format's [`Json`] (what files hold) and `serde_json::Value` (what serde speaks).

use serde::Serialize;
use serde::de::DeserializeOwned;
use strata_format::json::{Json, Object};

/// The keys every Keras layer config has, handled by the framework (not the struct): Keras's
/// `Layer.get_config` base (`name`, `trainable`, `dtype`).
pub const BASE_KEYS: &[&str] = &["name", "trainable", "dtype"];

/// The base part of a layer config that the framework keeps for the struct.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseConfig {
    /// `name`.
    pub name: String,
    /// `trainable` (default true).
    pub trainable: bool,
    /// `dtype` as stored (a string or a DTypePolicy object); `Null` when absent.
    pub dtype: Json,
}

/// Converts a file's JSON to serde's. Non-finite numbers (Keras writes `NaN`) become `null`.
pub fn to_serde(j: &Json) -> serde_json::Value {
    use serde_json::Value as V;
    match j {
        Json::Null => V::Null,
        Json::Bool(b) => V::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                V::from(i)
            } else if let Some(u) = n.as_u64() {
                V::from(u)
            } else {
                serde_json::Number::from_f64(n.as_f64()).map(V::Number).unwrap_or(V::Null)
            }
        }
        Json::String(s) => V::String(s.clone()),
        Json::Array(a) => V::Array(a.iter().map(to_serde).collect()),
        Json::Object(o) => V::Object(o.iter().map(|(k, v)| (k.to_string(), to_serde(v))).collect()),
    }
}

/// Converts serde's JSON to the file JSON type.
pub fn from_serde(v: &serde_json::Value) -> Json {
    use serde_json::Value as V;
    match v {
        V::Null => Json::Null,
        V::Bool(b) => Json::Bool(*b),
        V::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Json::from(i),
            (None, Some(u)) => Json::from(u),
            _ => Json::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        V::String(s) => Json::String(s.clone()),
        V::Array(a) => Json::Array(a.iter().map(from_serde).collect()),
        V::Object(o) => {
            let mut out = Object::new();
            for (k, v) in o {
                out.insert(k.clone(), from_serde(v));
            }
            Json::Object(out)
        }
    }
}

/// Splits a layer config into its base keys and the struct built from the rest
/// (Keras's `from_config`: `cls(**config)`). Unknown keys are ignored unless the struct says
/// `#[serde(deny_unknown_fields)]`. The error is serde's text (`missing field `units``).
pub fn from_config<T: DeserializeOwned>(config: &Json) -> std::result::Result<(T, BaseConfig), String> {
    let obj = config.as_object().ok_or_else(|| format!("the config is {}, not an object", config.kind_name()))?;
    let base = BaseConfig {
        name: obj.get("name").and_then(Json::as_str).unwrap_or_default().to_string(),
        trainable: obj.get("trainable").and_then(Json::as_bool).unwrap_or(true),
        dtype: obj.get("dtype").cloned().unwrap_or(Json::Null),
    };
    let mut rest = serde_json::Map::new();
    for (k, v) in obj.iter().filter(|(k, _)| !BASE_KEYS.contains(k)) {
        rest.insert(k.to_string(), to_serde(v));
    }
    let value = serde_json::from_value(serde_json::Value::Object(rest)).map_err(|e| e.to_string())?;
    Ok((value, base))
}

/// The config Keras's `get_config` would write: the base keys first, then the struct's fields.
pub fn get_config<T: Serialize>(value: &T, base: &BaseConfig) -> std::result::Result<Json, String> {
    let fields = serde_json::to_value(value).map_err(|e| e.to_string())?;
    let mut out = Object::new();
    out.insert("name", Json::from(base.name.as_str()));
    out.insert("trainable", Json::Bool(base.trainable));
    if !base.dtype.is_null() {
        out.insert("dtype", base.dtype.clone());
    }
    match from_serde(&fields) {
        Json::Object(o) => {
            for (k, v) in o.iter() {
                out.insert(k, v.clone());
            }
        }
        Json::Null => {}
        other => return Err(format!("the struct serializes to {}, not to an object of fields", other.kind_name())),
    }
    Ok(Json::Object(out))
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for Json {
    fn kind_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}
