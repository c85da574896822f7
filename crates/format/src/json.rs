//! JSON as Keras writes it: a value type, a parser and a Python-style serializer.
//!
//! Keras writes `config.json`, the `.h5` `model_config`/`training_config` attributes and `model.to_json()`
//! with Python's `json.dumps` defaults (`keras/src/saving/saving_lib.py`, `keras/src/models/model.py`
//! `to_json`, tf-keras `tf_keras/saving/legacy/saving_utils.py`). That output is not strict JSON:
//!
//! * `allow_nan=True` writes a float inf/nan as the bare tokens `NaN`, `Infinity` and `-Infinity`;
//!   this parser accepts them (CPython `Lib/json/scanner.py` accepts exactly these three spellings).
//! * `ensure_ascii=True` escapes every non-ASCII character as `\uXXXX` (lowercase hex, surrogate pairs
//!   above U+FFFF) and the separators are `", "` and `": "`; [`Json::to_string_python`] writes the same
//!   bytes so strata's `config.json` is what Keras would have written.
//! * numbers keep the text they were read with, so read -> write is lossless (`1e-07` stays `1e-07`,
//!   a 30-digit integer stays 30 digits); numbers made in Rust are written like Python's `repr(float)`.
//!
//! Written by hand rather than with serde_json: serde_json cannot represent `NaN`/`Infinity` at all,
//! keeps number text only behind the `arbitrary_precision` feature (which changes number handling for
//! every crate in the build) and keeps key order only behind `preserve_order`. Both features are
//! workspace-global switches, and none of them rejects duplicate keys, which this parser must.
//!
//! Safety: the parser is iterative (an explicit stack, no recursion), checks the nesting depth before
//! opening a container and the input size before reading anything ([`JsonLimits`]). Duplicate keys are
//! an error naming the key: Python silently keeps the last one, strata refuses the ambiguity.
//! Serializing, comparing and dropping a [`Json`] are recursive; their depth is bounded by
//! [`JsonLimits::max_depth`], which is itself capped at [`MAX_DEPTH_CEILING`].

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// The largest nesting depth a [`JsonLimits`] may allow; larger requests are lowered to this, because
/// serializing, comparing and dropping values recurse once per level.
pub const MAX_DEPTH_CEILING: usize = 4096;

/// Size and nesting limits for [`Json::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonLimits {
    /// Largest accepted input in bytes. Default 64 MiB (a large Keras config is a few MiB).
    pub max_bytes: usize,
    /// Largest number of nested arrays/objects. Default 512; values above [`MAX_DEPTH_CEILING`] act as it.
    pub max_depth: usize,
}

impl Default for JsonLimits {
    fn default() -> Self {
        JsonLimits { max_bytes: 64 * 1024 * 1024, max_depth: 512 }
    }
}

/// What a parser met where it expected something else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// A character of the input.
    Char(char),
    /// The input ended.
    EndOfInput,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Char(c) if c.is_control() || c.is_whitespace() => write!(f, "{:?}", c),
            Found::Char(c) => write!(f, "'{c}'"),
            Found::EndOfInput => f.write_str("the end of the input"),
        }
    }
}

/// Why JSON text could not be read. Lines and columns count from 1; columns count characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The input is larger than [`JsonLimits::max_bytes`].
    #[error(
        "JSON text is {size} bytes, over the limit of {limit} bytes; raise JsonLimits::max_bytes if the file is trusted"
    )]
    TooLarge {
        /// Input size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Arrays/objects nest deeper than [`JsonLimits::max_depth`].
    #[error(
        "JSON nesting is deeper than {limit} levels at line {line}, column {column}; raise JsonLimits::max_depth if the file is trusted"
    )]
    TooDeep {
        /// The depth limit.
        limit: usize,
        /// Line of the container that went over the limit.
        line: usize,
        /// Column of that container.
        column: usize,
    },
    /// The text does not follow the JSON grammar (with Python's `NaN`/`Infinity` extension).
    #[error("invalid JSON at line {line}, column {column}: expected {expected}, found {found}")]
    Syntax {
        /// Line of the offending character.
        line: usize,
        /// Column of the offending character.
        column: usize,
        /// What the grammar allows here.
        expected: &'static str,
        /// What is there instead.
        found: Found,
    },
    /// A complete value is followed by more than whitespace.
    #[error(
        "invalid JSON at line {line}, column {column}: extra data after the end of the value (found {found}); the file holds more than one JSON value or is corrupted"
    )]
    TrailingData {
        /// Line where the extra data starts.
        line: usize,
        /// Column where the extra data starts.
        column: usize,
        /// The first extra character.
        found: Found,
    },
    /// An object has the same key twice.
    #[error(
        "duplicate key \"{key}\" in a JSON object at line {line}, column {column}; Keras never writes this, so the file was edited or corrupted: remove one of the two entries"
    )]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Line of the second occurrence.
        line: usize,
        /// Column of the second occurrence.
        column: usize,
    },
    /// A `\u` escape encodes half of a surrogate pair without the other half.
    #[error(
        "invalid JSON string at line {line}, column {column}: lone surrogate \\u{code:04x} cannot be represented as Unicode text"
    )]
    LoneSurrogate {
        /// The surrogate code unit.
        code: u32,
        /// Line of the escape.
        line: usize,
        /// Column of the escape.
        column: usize,
    },
    /// The bytes are not UTF-8.
    #[error(
        "JSON text is not valid UTF-8 at byte {offset} (line {line}, column {column}); Keras writes UTF-8 (ASCII with \\u escapes)"
    )]
    InvalidUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
        /// Line of that byte.
        line: usize,
        /// Column of that byte.
        column: usize,
    },
}

/// The kind of a [`Json`] value, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonKind {
    /// `null`
    Null,
    /// `true`/`false`
    Bool,
    /// a number, including `NaN` and `Infinity`
    Number,
    /// a string
    String,
    /// an array
    Array,
    /// an object
    Object,
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonKind::Null => "null",
            JsonKind::Bool => "a boolean",
            JsonKind::Number => "a number",
            JsonKind::String => "a string",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        })
    }
}

#[derive(Clone, Debug)]
enum Repr {
    /// Text read from a document: valid JSON number grammar, or `NaN`, `Infinity`, `-Infinity`.
    Text(Box<str>),
    Int(i64),
    UInt(u64),
    Float(f64),
}

/// A JSON number. Parsed numbers keep their text verbatim; numbers made in Rust are written like
/// Python writes an `int` or a `float` (`repr`).
///
/// Equality is by value within a kind: integers (no `.`, exponent or special token) equal integers
/// with the same digits, floats equal floats with the same `f64` value (`NaN` equals `NaN`, `0.0`
/// differs from `-0.0`); an integer never equals a float, as in a Keras config `4` and `4.0` differ.
#[derive(Clone, Debug)]
pub struct Number(Repr);

impl Number {
    /// Whether this is an integer (Python `int`) rather than a float.
    pub fn is_integer(&self) -> bool {
        match &self.0 {
            Repr::Text(t) => !t.bytes().any(|b| matches!(b, b'.' | b'e' | b'E' | b'N' | b'I')),
            Repr::Int(_) | Repr::UInt(_) => true,
            Repr::Float(_) => false,
        }
    }

    /// The value as `f64` (integers convert, possibly rounding; `NaN`/`Infinity` map to their floats).
    pub fn as_f64(&self) -> f64 {
        match &self.0 {
            Repr::Text(t) => match &**t {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                // The grammar was checked at parse time; Rust's float parser accepts all of it.
                other => other.parse::<f64>().unwrap_or(f64::NAN),
            },
            Repr::Int(i) => *i as f64,
            Repr::UInt(u) => *u as f64,
            Repr::Float(f) => *f,
        }
    }

    /// The value as `i64` when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            Repr::Text(t) if self.is_integer() => t.parse::<i64>().ok(),
            Repr::Int(i) => Some(*i),
            Repr::UInt(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }

    /// The value as `u64` when it is a non-negative integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::Text(t) if self.is_integer() => t.parse::<u64>().ok(),
            Repr::Int(i) => u64::try_from(*i).ok(),
            Repr::UInt(u) => Some(*u),
            _ => None,
        }
    }

    /// The text written for this number: the original text for parsed numbers, Python's spelling
    /// for numbers made in Rust.
    pub fn text(&self) -> Cow<'_, str> {
        match &self.0 {
            Repr::Text(t) => Cow::Borrowed(t),
            Repr::Int(i) => Cow::Owned(i.to_string()),
            Repr::UInt(u) => Cow::Owned(u.to_string()),
            Repr::Float(f) => Cow::Owned(python_float_repr(*f)),
        }
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        match (self.is_integer(), other.is_integer()) {
            (true, true) => self.text() == other.text(),
            (false, false) => {
                let (a, b) = (self.as_f64(), other.as_f64());
                (a.is_nan() && b.is_nan()) || (a == b && a.is_sign_negative() == b.is_sign_negative())
            }
            _ => false,
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16 on,
/// a trailing `.0` on integral values; `inf`/`nan` as `json.dumps` spells them.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // `{:e}` gives the shortest digits that round-trip, as `d.ddde<exp>`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let mantissa = round_tie_to_even(f, mantissa);
    let mantissa = mantissa.as_str();
    if (-4..16).contains(&exp) {
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        let mut out = String::from(sign);
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                let (int_part, frac) = digits.split_at(int_len);
                out.push_str(int_part);
                out.push('.');
                out.push_str(frac);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
        out
    } else {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.unsigned_abs())
    }
}

/// CPython's shortest repr breaks an exact tie between two shortest candidates toward the even
/// digit; Rust's shortest formatting rounds the tie up. `mantissa` is Rust's `d.ddd` (no sign).
fn round_tie_to_even(f: f64, mantissa: &str) -> String {
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let n = digits.len();
    let odd_last = digits.last().is_some_and(|d| (d - b'0') % 2 == 1);
    if !odd_last {
        return mantissa.to_owned();
    }
    // The exact binary value with 20 more digits than needed: a tie is `...(d-1)5000...`.
    let exact = format!("{:.*e}", n + 20, f.abs());
    let exact_digits: Vec<u8> = exact.split('e').next().unwrap_or("").bytes().filter(u8::is_ascii_digit).collect();
    let lowered: Vec<u8> = digits.iter().enumerate().map(|(i, d)| if i + 1 == n { d - 1 } else { *d }).collect();
    let is_tie = exact_digits.get(..n) == Some(&lowered[..])
        && exact_digits.get(n) == Some(&b'5')
        && exact_digits.get(n + 1..).is_some_and(|rest| rest.iter().all(|d| *d == b'0'));
    if !is_tie {
        return mantissa.to_owned();
    }
    let mut out = String::with_capacity(mantissa.len());
    for (i, c) in lowered.iter().enumerate() {
        out.push(char::from(*c));
        if i == 0 && n > 1 {
            out.push('.');
        }
    }
    out
}

/// A JSON object: keys in document order, each key at most once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object {
    entries: Vec<(String, Json)>,
}

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Object::default()
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        self.entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    /// Sets `key`: an existing entry keeps its position, a new one goes last. Returns the old value.
    pub fn insert(&mut self, key: impl Into<String>, value: Json) -> Option<Json> {
        let key = key.into();
        match self.get_mut(&key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }
    /// Removes `key`, keeping the order of the other entries.
    pub fn remove(&mut self, key: &str) -> Option<Json> {
        let pos = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(pos).1)
    }
    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }
}

impl<K: Into<String>> FromIterator<(K, Json)> for Object {
    /// Later duplicates replace earlier ones (keeping the first position).
    fn from_iter<T: IntoIterator<Item = (K, Json)>>(iter: T) -> Self {
        let mut o = Object::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

/// A JSON value as Keras writes it. See the module docs.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Json {
    /// `null`
    #[default]
    Null,
    /// `true` / `false`
    Bool(bool),
    /// a number (text kept)
    Number(Number),
    /// a string
    String(String),
    /// an array
    Array(Vec<Json>),
    /// an object (ordered, unique keys)
    Object(Object),
}

static NULL: Json = Json::Null;

impl Json {
    /// Parses JSON text (`&str` or bytes; a UTF-8 byte-order mark is skipped).
    pub fn parse(input: impl AsRef<[u8]>, limits: &JsonLimits) -> Result<Json, JsonError> {
        let bytes = input.as_ref();
        if bytes.len() > limits.max_bytes {
            return Err(JsonError::TooLarge { size: bytes.len(), limit: limits.max_bytes });
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let offset = e.valid_up_to();
                let prefix = bytes.get(..offset).unwrap_or_default();
                // The prefix is valid UTF-8 by construction.
                let prefix = std::str::from_utf8(prefix).unwrap_or_default();
                let (line, column) = line_col(prefix, offset);
                return Err(JsonError::InvalidUtf8 { offset, line, column });
            }
        };
        let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
        Parser { text, pos: start, max_depth: limits.max_depth.min(MAX_DEPTH_CEILING) }.document()
    }

    /// An object from key/value pairs (a later duplicate key replaces the earlier value).
    pub fn object<K: Into<String>>(entries: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Object(entries.into_iter().collect())
    }

    /// An array from values.
    pub fn array(items: impl IntoIterator<Item = Json>) -> Json {
        Json::Array(items.into_iter().collect())
    }

    /// The kind of this value.
    pub fn kind(&self) -> JsonKind {
        match self {
            Json::Null => JsonKind::Null,
            Json::Bool(_) => JsonKind::Bool,
            Json::Number(_) => JsonKind::Number,
            Json::String(_) => JsonKind::String,
            Json::Array(_) => JsonKind::Array,
            Json::Object(_) => JsonKind::Object,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
    /// The number, if this is one.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Json::Number(n) => Some(n),
            _ => None,
        }
    }
    /// Any number as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        self.as_number().map(Number::as_f64)
    }
    /// An integer that fits `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }
    /// A non-negative integer that fits `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }
    /// A non-negative integer that fits `usize`.
    pub fn as_usize(&self) -> Option<usize> {
        self.as_u64().and_then(|u| usize::try_from(u).ok())
    }
    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }
    /// The items, mutably.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Json>> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }
    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }
    /// The object, mutably.
    pub fn as_object_mut(&mut self) -> Option<&mut Object> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }
    /// `self[key]` for objects; `None` for a missing key or a non-object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.as_object().and_then(|o| o.get(key))
    }
    /// `self[key]` mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        self.as_object_mut().and_then(|o| o.get_mut(key))
    }
    /// `self[index]` for arrays; `None` out of range or for a non-array.
    pub fn at(&self, index: usize) -> Option<&Json> {
        self.as_array().and_then(|a| a.get(index))
    }

    /// Equality that ignores the order of object keys (numbers compare as in [`Number`]).
    pub fn eq_unordered(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Array(a), Json::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_unordered(y)),
            (Json::Object(a), Json::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| v.eq_unordered(w)))
            }
            _ => self == other,
        }
    }

    /// Writes this value as Python's `json.dumps(value)` does with default arguments: separators
    /// `", "` and `": "`, `ensure_ascii=True`, `NaN`/`Infinity` tokens, parsed numbers verbatim.
    pub fn to_string_python(&self) -> String {
        let mut out = String::new();
        write_value(self, &mut out);
        out
    }
}

impl fmt::Display for Json {
    /// Same text as [`Json::to_string_python`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_python())
    }
}

impl std::ops::Index<&str> for Json {
    type Output = Json;
    /// `null` when the key is missing or this is not an object; never panics.
    fn index(&self, key: &str) -> &Json {
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for Json {
    type Output = Json;
    /// `null` when out of range or this is not an array; never panics.
    fn index(&self, index: usize) -> &Json {
        self.at(index).unwrap_or(&NULL)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}
impl From<f64> for Json {
    fn from(f: f64) -> Self {
        Json::Number(Number(Repr::Float(f)))
    }
}
impl From<f32> for Json {
    /// Widened to `f64` (as Python does when a numpy float32 reaches `json.dumps` via `float()`).
    fn from(f: f32) -> Self {
        Json::from(f as f64)
    }
}
impl From<i64> for Json {
    fn from(i: i64) -> Self {
        Json::Number(Number(Repr::Int(i)))
    }
}
impl From<i32> for Json {
    fn from(i: i32) -> Self {
        Json::from(i as i64)
    }
}
impl From<u64> for Json {
    fn from(u: u64) -> Self {
        Json::Number(Number(Repr::UInt(u)))
    }
}
impl From<usize> for Json {
    fn from(u: usize) -> Self {
        Json::from(u as u64)
    }
}
impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::String(s.to_owned())
    }
}
impl From<String> for Json {
    fn from(s: String) -> Self {
        Json::String(s)
    }
}
impl From<Vec<Json>> for Json {
    fn from(v: Vec<Json>) -> Self {
        Json::Array(v)
    }
}
impl From<Object> for Json {
    fn from(o: Object) -> Self {
        Json::Object(o)
    }
}
impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(o: Option<T>) -> Self {
        o.map_or(Json::Null, Into::into)
    }
}

// ---------------------------------------------------------------------------------------------
// Serializer

fn write_value(v: &Json, out: &mut String) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(n) => out.push_str(&n.text()),
        Json::String(s) => write_string(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Json::Object(o) => {
            out.push('{');
            for (i, (k, item)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(k, out);
                out.push_str(": ");
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let push_u = |out: &mut String, unit: u16| {
        out.push_str("\\u");
        for shift in [12u16, 8, 4, 0] {
            out.push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
        }
    };
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_u(out, *unit);
                }
            }
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------------
// Parser

/// Line and column (1-based, column in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let prefix = text.get(..offset).unwrap_or(text);
    let line = prefix.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    let column = prefix.get(line_start..).unwrap_or("").chars().count() + 1;
    (line, column)
}

enum Frame {
    Array(Vec<Json>),
    Object {
        obj: Object,
        key: String,
        key_pos: usize,
        /// Built once the object is large enough that linear duplicate checks would be slow.
        index: Option<HashSet<String>>,
    },
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    max_depth: usize,
}

const INDEX_THRESHOLD: usize = 16;

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn found(&self) -> Found {
        self.text.get(self.pos..).and_then(|s| s.chars().next()).map_or(Found::EndOfInput, Found::Char)
    }

    fn syntax(&self, expected: &'static str) -> JsonError {
        let (line, column) = line_col(self.text, self.pos);
        JsonError::Syntax { line, column, expected, found: self.found() }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat_literal(&mut self, lit: &str, expected: &'static str) -> Result<(), JsonError> {
        if self.text.get(self.pos..).is_some_and(|rest| rest.starts_with(lit)) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(self.syntax(expected))
        }
    }

    fn document(mut self) -> Result<Json, JsonError> {
        let mut stack: Vec<Frame> = Vec::new();
        'value: loop {
            self.skip_ws();
            let mut value = match self.peek() {
                Some(b'{') => {
                    self.check_depth(stack.len())?;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        Json::Object(Object::new())
                    } else {
                        let (key, key_pos) = self.key()?;
                        stack.push(Frame::Object { obj: Object::new(), key, key_pos, index: None });
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    self.check_depth(stack.len())?;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        Json::Array(Vec::new())
                    } else {
                        stack.push(Frame::Array(Vec::new()));
                        continue 'value;
                    }
                }
                _ => self.scalar()?,
            };
            // Attach the finished value to its parents, closing containers as they end.
            loop {
                let Some(frame) = stack.last_mut() else {
                    self.skip_ws();
                    if self.pos < self.text.len() {
                        let (line, column) = line_col(self.text, self.pos);
                        return Err(JsonError::TrailingData { line, column, found: self.found() });
                    }
                    return Ok(value);
                };
                match frame {
                    Frame::Array(items) => {
                        items.push(value);
                        self.skip_ws();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                continue 'value;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                let items = std::mem::take(items);
                                stack.pop();
                                value = Json::Array(items);
                            }
                            _ => return Err(self.syntax("',' or ']'")),
                        }
                    }
                    Frame::Object { obj, key, key_pos, index } => {
                        let key = std::mem::take(key);
                        let duplicate = match index {
                            Some(set) => !set.insert(key.clone()),
                            None => obj.contains_key(&key),
                        };
                        if duplicate {
                            let (line, column) = line_col(self.text, *key_pos);
                            return Err(JsonError::DuplicateKey { key, line, column });
                        }
                        obj.entries.push((key, value));
                        if index.is_none() && obj.len() >= INDEX_THRESHOLD {
                            *index = Some(obj.keys().map(str::to_owned).collect());
                        }
                        self.skip_ws();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                let (k, p) = self.key()?;
                                if let Some(Frame::Object { key, key_pos, .. }) = stack.last_mut() {
                                    *key = k;
                                    *key_pos = p;
                                }
                                continue 'value;
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                let obj = std::mem::take(obj);
                                stack.pop();
                                value = Json::Object(obj);
                            }
                            _ => return Err(self.syntax("',' or '}'")),
                        }
                    }
                }
            }
        }
    }

    fn check_depth(&self, open: usize) -> Result<(), JsonError> {
        if open >= self.max_depth {
            let (line, column) = line_col(self.text, self.pos);
            return Err(JsonError::TooDeep { limit: self.max_depth, line, column });
        }
        Ok(())
    }

    /// A key and the ':' after it; returns the key and its byte offset.
    fn key(&mut self) -> Result<(String, usize), JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax("a string key in double quotes"));
        }
        let key_pos = self.pos;
        let key = self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.syntax("':' after an object key"));
        }
        self.pos += 1;
        Ok((key, key_pos))
    }

    fn scalar(&mut self) -> Result<Json, JsonError> {
        match self.peek() {
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.eat_literal("true", "a value").map(|_| Json::Bool(true)),
            Some(b'f') => self.eat_literal("false", "a value").map(|_| Json::Bool(false)),
            Some(b'n') => self.eat_literal("null", "a value").map(|_| Json::Null),
            Some(b'N') => self.special("NaN"),
            Some(b'I') => self.special("Infinity"),
            Some(b'-') if self.text.get(self.pos + 1..).is_some_and(|r| r.starts_with('I')) => {
                self.special("-Infinity")
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.syntax("a value")),
        }
    }

    fn special(&mut self, token: &'static str) -> Result<Json, JsonError> {
        self.eat_literal(token, "a value")?;
        Ok(Json::Number(Number(Repr::Text(token.into()))))
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.syntax("a digit or 'Infinity' after '-'")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.syntax("a digit after the decimal point"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.syntax("a digit in the exponent"));
            }
        }
        let text = self.text.get(start..self.pos).unwrap_or("0");
        Ok(Json::Number(Number(Repr::Text(text.into()))))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.syntax("4 hex digits after \\u")),
            };
            v = v * 16 + u32::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // Stops happen only at ASCII bytes, so both ends are char boundaries.
            out.push_str(self.text.get(run_start..self.pos).unwrap_or(""));
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escape_pos = self.pos;
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape(escape_pos)?;
                            out.push(c);
                            continue;
                        }
                        _ => {
                            return Err(self.syntax("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"));
                        }
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(_) => {
                    return Err(self.syntax("a character (control characters must be escaped)"));
                }
                None => return Err(self.syntax("'\"' closing the string")),
            }
        }
    }

    /// After `\u`: one code unit, or a surrogate pair written as two escapes.
    fn unicode_escape(&mut self, escape_pos: usize) -> Result<char, JsonError> {
        let lone = |s: &Self, code: u32| {
            let (line, column) = line_col(s.text, escape_pos);
            JsonError::LoneSurrogate { code, line, column }
        };
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                let rest = self.text.get(self.pos..).unwrap_or("");
                if !rest.starts_with("\\u") {
                    return Err(lone(self, first));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(lone(self, first));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(lone(self, first)),
            other => other,
        };
        char::from_u32(code).ok_or_else(|| lone(self, first))
    }
}

impl Json {
    /// Writes this value indented by two spaces per level (for people and `--json` output);
    /// scalars are written exactly as [`Json::to_string_python`] writes them, and empty
    /// arrays/objects and arrays of scalars stay on one line.
    pub fn to_string_pretty(&self) -> String {
        let mut out = String::new();
        write_pretty(self, 0, &mut out);
        out
    }
}

fn write_pretty(v: &Json, indent: usize, out: &mut String) {
    let pad = |n: usize, out: &mut String| out.extend(std::iter::repeat_n(' ', n * 2));
    match v {
        Json::Array(items) if items.iter().any(|i| matches!(i, Json::Array(_) | Json::Object(_))) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                pad(indent + 1, out);
                write_pretty(item, indent + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(indent, out);
            out.push(']');
        }
        Json::Object(o) if !o.is_empty() => {
            out.push_str("{\n");
            let n = o.len();
            for (i, (k, item)) in o.iter().enumerate() {
                pad(indent + 1, out);
                write_string(k, out);
                out.push_str(": ");
                write_pretty(item, indent + 1, out);
                out.push_str(if i + 1 < n { ",\n" } else { "\n" });
            }
            pad(indent, out);
            out.push('}');
        }
        other => write_value(other, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Json, JsonError> {
        Json::parse(s, &JsonLimits::default())
    }
    fn err(s: &str) -> String {
        match p(s) {
            Ok(v) => panic!("expected an error for {s:?}, got {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn python_tokens_parse_and_write_back() {
        let v = p("[NaN, Infinity, -Infinity, 1e-07, 1E5, -0.0]").unwrap();
        assert!(v[0].as_f64().unwrap().is_nan());
        assert_eq!(v[1].as_f64(), Some(f64::INFINITY));
        assert_eq!(v[2].as_f64(), Some(f64::NEG_INFINITY));
        assert_eq!(v[3].as_f64(), Some(1e-7));
        assert_eq!(v.to_string_python(), "[NaN, Infinity, -Infinity, 1e-07, 1E5, -0.0]");
    }

    #[test]
    fn python_float_repr_matches_cpython_rules() {
        let cases: [(f64, &str); 17] = [
            (1e-7, "1e-07"),
            (0.001, "0.001"),
            (1.0, "1.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (123.456, "123.456"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1e100, "1e+100"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::INFINITY, "Infinity"),
            (-0.0, "-0.0"),
            (5e-324, "5e-324"),
            // An exact tie between two 16-digit candidates: CPython picks the even one.
            (f64::from_bits(0x4309c163918dad0a), "906188475708833.2"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float_repr(f), want, "repr of {f:e}");
        }
        assert_eq!(Json::from(f64::NAN).to_string_python(), "NaN");
        assert_eq!(Json::from(f64::NEG_INFINITY).to_string_python(), "-Infinity");
    }

    #[test]
    fn serializer_uses_python_separators_and_ascii_escapes() {
        let v = Json::object(vec![
            ("a", Json::array(vec![Json::from(1i64), Json::Null, Json::from(true)])),
            ("é\u{1F600}", Json::from("tab\t\"q\"\\\u{7f}\u{1}\u{8}\u{c}/")),
            ("e", Json::object(Vec::<(String, Json)>::new())),
        ]);
        assert_eq!(
            v.to_string_python(),
            r#"{"a": [1, null, true], "\u00e9\ud83d\ude00": "tab\t\"q\"\\\u007f\u0001\b\f/", "e": {}}"#
        );
    }

    #[test]
    fn unicode_escapes_and_surrogate_pairs_decode() {
        let v = p(r#""\u00e9\ud83d\ude00\/\u0041""#).unwrap();
        assert_eq!(v.as_str(), Some("é\u{1F600}/A"));
        let raw = p("\"é\u{1F600}\"").unwrap();
        assert_eq!(raw.as_str(), Some("é\u{1F600}"));
    }

    #[test]
    fn huge_numbers_are_kept_verbatim() {
        let text = "[123456789012345678901234567890, 1.00000000000000000000001, 139757891404752]";
        let v = p(text).unwrap();
        assert_eq!(v.to_string_python(), text);
        assert_eq!(v[0].as_i64(), None);
        assert!(v[0].as_number().unwrap().is_integer());
        assert_eq!(v[2].as_i64(), Some(139757891404752));
        assert_eq!(v[1].as_i64(), None);
    }

    #[test]
    fn key_order_is_kept_and_lookup_never_panics() {
        let v = p(r#"{"z": 1, "a": {"b": [true]}}"#).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "a"]);
        assert_eq!(v["a"]["b"][0].as_bool(), Some(true));
        assert!(v["missing"][3]["x"].is_null());
        assert!(v[7].is_null());
        assert!(v.eq_unordered(&p(r#"{"a": {"b": [true]}, "z": 1}"#).unwrap()));
        assert_ne!(v, p(r#"{"a": {"b": [true]}, "z": 1}"#).unwrap());
    }

    #[test]
    fn number_kinds_compare_by_value() {
        assert_eq!(p("1.0").unwrap(), Json::from(1.0));
        assert_eq!(p("1e-07").unwrap(), Json::from(1e-7));
        assert_ne!(p("4").unwrap(), p("4.0").unwrap());
        assert_eq!(p("NaN").unwrap(), Json::from(f64::NAN));
        assert_eq!(p("7").unwrap(), Json::from(7i64));
        assert_ne!(p("0.0").unwrap(), p("-0.0").unwrap());
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            err(r#"{"a": 1, "a": 2}"#),
            "duplicate key \"a\" in a JSON object at line 1, column 10; Keras never writes this, so the file was edited or corrupted: remove one of the two entries"
        );
        assert_eq!(
            err("[1, 2] x"),
            "invalid JSON at line 1, column 8: extra data after the end of the value (found 'x'); the file holds more than one JSON value or is corrupted"
        );
        assert_eq!(err("[1,\n 2"), "invalid JSON at line 2, column 3: expected ',' or ']', found the end of the input");
        assert_eq!(err("{\"a\" 1}"), "invalid JSON at line 1, column 6: expected ':' after an object key, found '1'");
        assert_eq!(
            err("{1: 2}"),
            "invalid JSON at line 1, column 2: expected a string key in double quotes, found '1'"
        );
        assert_eq!(err("[nan]"), "invalid JSON at line 1, column 2: expected a value, found 'n'");
        assert_eq!(err("-x"), "invalid JSON at line 1, column 2: expected a digit or 'Infinity' after '-', found 'x'");
        assert_eq!(
            err("1."),
            "invalid JSON at line 1, column 3: expected a digit after the decimal point, found the end of the input"
        );
        assert_eq!(
            err("1e+"),
            "invalid JSON at line 1, column 4: expected a digit in the exponent, found the end of the input"
        );
        assert_eq!(
            err("01"),
            "invalid JSON at line 1, column 2: extra data after the end of the value (found '1'); the file holds more than one JSON value or is corrupted"
        );
        assert_eq!(
            err("\"a\nb\""),
            "invalid JSON at line 1, column 3: expected a character (control characters must be escaped), found '\\n'"
        );
        assert_eq!(
            err(r#""\x""#),
            "invalid JSON at line 1, column 3: expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), found 'x'"
        );
        assert_eq!(err(r#""\u12g4""#), "invalid JSON at line 1, column 6: expected 4 hex digits after \\u, found 'g'");
        assert_eq!(
            err(r#"["é", "\ud800x"]"#),
            "invalid JSON string at line 1, column 8: lone surrogate \\ud800 cannot be represented as Unicode text"
        );
        assert_eq!(
            err(r#""\udc00""#),
            "invalid JSON string at line 1, column 2: lone surrogate \\udc00 cannot be represented as Unicode text"
        );
        assert_eq!(
            err("\"abc"),
            "invalid JSON at line 1, column 5: expected '\"' closing the string, found the end of the input"
        );
        assert_eq!(err(""), "invalid JSON at line 1, column 1: expected a value, found the end of the input");
        assert_eq!(err("[1 2]"), "invalid JSON at line 1, column 4: expected ',' or ']', found '2'");
        assert_eq!(err("{\"a\": 1 \"b\"}"), "invalid JSON at line 1, column 9: expected ',' or '}', found '\"'");
        assert_eq!(err("[1,]"), "invalid JSON at line 1, column 4: expected a value, found ']'");
    }

    #[test]
    fn limits_are_enforced_with_messages() {
        let deep = "[".repeat(600) + &"]".repeat(600);
        assert_eq!(
            err(&deep),
            "JSON nesting is deeper than 512 levels at line 1, column 513; raise JsonLimits::max_depth if the file is trusted"
        );
        let ok = "[".repeat(512) + &"]".repeat(512);
        assert!(p(&ok).is_ok());
        let limits = JsonLimits { max_bytes: 4, max_depth: 2 };
        assert_eq!(
            Json::parse("[1, 2]", &limits).unwrap_err().to_string(),
            "JSON text is 6 bytes, over the limit of 4 bytes; raise JsonLimits::max_bytes if the file is trusted"
        );
        // A huge depth request is capped, so a deep document cannot overflow the stack later.
        let huge = JsonLimits { max_bytes: usize::MAX, max_depth: usize::MAX };
        let very_deep = "{\"a\":".repeat(5000);
        assert!(matches!(Json::parse(very_deep, &huge), Err(JsonError::TooDeep { limit: MAX_DEPTH_CEILING, .. })));
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_offset() {
        let e = Json::parse(b"[\"ab\xff\"]", &JsonLimits::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "JSON text is not valid UTF-8 at byte 4 (line 1, column 5); Keras writes UTF-8 (ASCII with \\u escapes)"
        );
        let bom = Json::parse(b"\xef\xbb\xbf{\"a\": 1}", &JsonLimits::default()).unwrap();
        assert_eq!(bom["a"].as_i64(), Some(1));
    }

    #[test]
    fn large_objects_detect_duplicates_through_the_index() {
        let mut s = String::from("{");
        for i in 0..40 {
            s.push_str(&format!("\"k{i}\": {i}, "));
        }
        s.push_str("\"k3\": 0}");
        assert!(matches!(p(&s), Err(JsonError::DuplicateKey { key, .. }) if key == "k3"));
    }

    #[test]
    fn object_editing_keeps_positions() {
        let mut o: Object = vec![("a", Json::from(1i64)), ("b", Json::from(2i64))].into_iter().collect();
        assert_eq!(o.insert("a", Json::from(3i64)), Some(Json::from(1i64)));
        o.insert("c", Json::Null);
        assert_eq!(o.remove("b"), Some(Json::from(2i64)));
        assert_eq!(Json::from(o).to_string_python(), r#"{"a": 3, "c": null}"#);
    }
}
