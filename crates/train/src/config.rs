//! Reading and writing Keras config objects (`get_config` dicts and the serialized
//! `{"module", "class_name", "config", "registered_name"}` wrapper that
//! `keras.saving.serialize_keras_object` writes for built-in objects).

use crate::error::{Error, Result};
use strata_format::json::{Json, Object};

/// A Python number that remembers whether it was written as an `int` or a `float`, so a config
/// round-trips byte for byte (Keras keeps `decay_steps=4` an int and `alpha=0.0` a float).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Num {
    /// The value.
    pub value: f64,
    /// Whether Python would hold it as an `int`.
    pub int: bool,
}

impl Num {
    /// A Python float.
    pub const fn float(value: f64) -> Num {
        Num { value, int: false }
    }
    /// A Python int.
    pub const fn int(value: i64) -> Num {
        Num { value: value as f64, int: true }
    }
    /// As JSON, an int or a float like Python writes it.
    pub fn to_json(self) -> Json {
        if self.int && self.value.fract() == 0.0 && self.value.abs() < 9.0e15 {
            Json::from(self.value as i64)
        } else {
            Json::from(self.value)
        }
    }
}

impl From<f64> for Num {
    fn from(v: f64) -> Num {
        Num::float(v)
    }
}

impl From<i64> for Num {
    fn from(v: i64) -> Num {
        Num::int(v)
    }
}

/// Reads a config object's keys for one class, refusing keys it does not know.
pub(crate) struct Reader<'a> {
    pub object: &'a str,
    cfg: &'a Object,
    used: Vec<&'static str>,
}

static EMPTY: std::sync::OnceLock<Object> = std::sync::OnceLock::new();

impl<'a> Reader<'a> {
    pub fn new(object: &'a str, cfg: &'a Json) -> Result<Reader<'a>> {
        let cfg = match cfg {
            Json::Object(o) => o,
            Json::Null => EMPTY.get_or_init(Object::new),
            _ => {
                return Err(Error::Config {
                    object: object.into(),
                    key: "config".into(),
                    problem: format!("must be an object, found {}", cfg.kind()),
                });
            }
        };
        Ok(Reader { object, cfg, used: Vec::new() })
    }

    pub fn err(&self, key: &str, problem: impl Into<String>) -> Error {
        Error::Config { object: self.object.into(), key: key.into(), problem: problem.into() }
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Json> {
        self.used.push(key);
        self.cfg.get(key).filter(|v| !v.is_null())
    }

    /// Whether the key is present at all, even as null.
    pub fn present(&self, key: &str) -> bool {
        self.cfg.contains_key(key)
    }

    /// Whether the key is present with a non-null value (marks it used).
    pub fn has(&mut self, key: &'static str) -> bool {
        self.get(key).is_some()
    }

    pub fn num(&mut self, key: &'static str, default: Num) -> Result<Num> {
        Ok(self.opt_num(key)?.unwrap_or(default))
    }

    pub fn opt_num(&mut self, key: &'static str) -> Result<Option<Num>> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Number(n)) => Ok(Some(Num { value: n.as_f64(), int: n.is_integer() })),
            Some(other) => Err(self.err(key, format!("must be a number, found {}", other.kind()))),
        }
    }

    pub fn f64(&mut self, key: &'static str, default: f64) -> Result<f64> {
        Ok(self.num(key, Num::float(default))?.value)
    }

    pub fn opt_f64(&mut self, key: &'static str) -> Result<Option<f64>> {
        Ok(self.opt_num(key)?.map(|n| n.value))
    }

    pub fn req_num(&mut self, key: &'static str) -> Result<Num> {
        self.opt_num(key)?.ok_or_else(|| self.err(key, "is required"))
    }

    pub fn bool(&mut self, key: &'static str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Json::Bool(b)) => Ok(*b),
            Some(other) => Err(self.err(key, format!("must be true or false, found {}", other.kind()))),
        }
    }

    pub fn opt_str(&mut self, key: &'static str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(key, format!("must be a string, found {}", other.kind()))),
        }
    }

    pub fn str(&mut self, key: &'static str, default: &'a str) -> Result<&'a str> {
        Ok(self.opt_str(key)?.unwrap_or(default))
    }

    pub fn opt_int(&mut self, key: &'static str) -> Result<Option<i64>> {
        match self.opt_num(key)? {
            None => Ok(None),
            Some(n) if n.value.fract() == 0.0 && n.value.abs() < 9.0e15 => Ok(Some(n.value as i64)),
            Some(n) => Err(self.err(key, format!("must be an integer, found {}", n.value))),
        }
    }

    pub fn nums(&mut self, key: &'static str) -> Result<Vec<Num>> {
        match self.get(key) {
            Some(Json::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Json::Number(n) => Ok(Num { value: n.as_f64(), int: n.is_integer() }),
                    other => Err(self.err(key, format!("must hold numbers, found {}", other.kind()))),
                })
                .collect(),
            Some(other) => Err(self.err(key, format!("must be a list of numbers, found {}", other.kind()))),
            None => Err(self.err(key, "is required")),
        }
    }

    /// The raw value (marks it used).
    pub fn raw(&mut self, key: &'static str) -> Option<&'a Json> {
        self.get(key)
    }

    /// Refuses keys this class does not know (Keras raises for unknown constructor arguments too).
    pub fn finish(self) -> Result<()> {
        for k in self.cfg.keys() {
            if !self.used.contains(&k) {
                let mut known = self.used.clone();
                known.sort_unstable();
                known.dedup();
                return Err(self.err(k, format!("is not an argument of {} (known: {})", self.object, known.join(", "))));
            }
        }
        Ok(())
    }
}

/// Splits a serialized object (`{"class_name", "config", ...}`) or a bare string name into
/// `(class_name, config)`.
pub(crate) fn split_serialized<'a>(kind: &'static str, value: &'a Json) -> Result<(&'a str, &'a Json)> {
    match value {
        Json::String(s) => Ok((s, &Json::Null)),
        Json::Object(o) => {
            let class = o.get("class_name").and_then(Json::as_str).ok_or_else(|| Error::Config {
                object: kind.into(),
                key: "class_name".into(),
                problem: "is missing or not a string".into(),
            })?;
            Ok((class, o.get("config").unwrap_or(&Json::Null)))
        }
        other => Err(Error::Config {
            object: kind.into(),
            key: "identifier".into(),
            problem: format!("must be a name or a serialized object, found {}", other.kind()),
        }),
    }
}

/// The wrapper `serialize_keras_object` writes for a built-in Keras class.
pub(crate) fn serialized(module: &str, class_name: &str, config: Json) -> Json {
    Json::object([
        ("module", Json::from(module)),
        ("class_name", Json::from(class_name)),
        ("config", config),
        ("registered_name", Json::Null),
    ])
}

pub(crate) fn opt_f64_json(v: Option<f64>) -> Json {
    v.map(Json::from).unwrap_or(Json::Null)
}
