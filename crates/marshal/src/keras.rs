//! The text Keras wraps marshal data in, and Windows-corrupted blobs.
//!
//! Keras's `func_dump` / `func_load` (`keras/src/utils/python_utils.py`, tf-keras
//! `tf_keras/src/utils/generic_utils.py`) store a Lambda's code three ways (keras-facts §3.1):
//! - Keras 3: `{"class_name": "__lambda__", "config": {"code": <base64>, "defaults", "closure"}}`,
//!   MIME base64 with a newline every 76 characters;
//! - Keras 2 / tf-keras: `"function": [<base64>, defaults, closure]`;
//! - Keras <= 2.1.1: the marshal bytes decoded as `raw_unicode_escape` text; `func_load` turns it back
//!   with `code.encode("raw_unicode_escape")`: a character below 256 is one byte, any other
//!   character becomes the text `\uXXXX` (or `\UXXXXXXXX`).
//!
//! On Windows, `func_dump` first runs `.replace(b"\\", b"/")` on the raw marshal bytes, rewriting
//! every 0x5C byte, structure included. [`windows_corruption`] finds blobs damaged that way.

use base64::Engine as _;

use crate::code::CodeObject;
use crate::decode::Decoded;
use crate::detect::{Candidate, detect};
use crate::error::Error;
use crate::value::Value;

/// How the code text was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaEncoding {
    /// Base64 (Keras >= 2.1.2), MIME line breaks allowed.
    Base64,
    /// `raw_unicode_escape` text (Keras <= 2.1.1).
    RawUnicodeEscape,
}

/// Marshal bytes recovered from a Lambda's code text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaCode {
    /// The marshal data.
    pub bytes: Vec<u8>,
    /// Which encoding it was in.
    pub encoding: LambdaEncoding,
}

const B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Turns a Lambda's code text back into marshal bytes, as `func_load` does: base64 first, and
/// `raw_unicode_escape` when the text is not base64. Unlike Keras (whose base64 decoder drops
/// unknown characters), text with any character outside the base64 alphabet, whitespace and `=`
/// counts as not base64, so an ASCII-only Python 2 blob is not misread.
///
/// ```
/// let c = strata_marshal::keras::decode_lambda_code("4wEAAAAA\nAAAA\n");
/// assert_eq!(c.encoding, strata_marshal::keras::LambdaEncoding::Base64);
/// assert_eq!(&c.bytes[..2], &[0xe3, 0x01]);
/// ```
pub fn decode_lambda_code(text: &str) -> LambdaCode {
    let looks_b64 =
        text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=') || c.is_ascii_whitespace());
    if looks_b64 {
        let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        if let Ok(bytes) = B64.decode(clean.as_bytes()) {
            return LambdaCode { bytes, encoding: LambdaEncoding::Base64 };
        }
    }
    LambdaCode { bytes: raw_unicode_escape(text), encoding: LambdaEncoding::RawUnicodeEscape }
}

/// Python's `text.encode("raw_unicode_escape")`.
pub fn raw_unicode_escape(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let u = c as u32;
        if let Ok(b) = u8::try_from(u) {
            out.push(b);
        } else if u <= 0xffff {
            out.extend_from_slice(format!("\\u{u:04x}").as_bytes());
        } else {
            out.extend_from_slice(format!("\\U{u:08x}").as_bytes());
        }
    }
    out
}

/// The code text inside a Lambda's `function` config value, in any Keras spelling:
/// Keras 3 `{"class_name": "__lambda__", "config": {"code": ...}}` or `{"config": {"value": [code, ...]}}`,
/// Keras 2 `[code, defaults, closure]`, or Keras 1's bare string.
pub fn lambda_code_from_config(function: &serde_json::Value) -> Option<&str> {
    use serde_json::Value as J;
    match function {
        J::String(s) => Some(s),
        J::Array(items) => items.first().and_then(J::as_str),
        J::Object(map) => {
            let config = map.get("config")?;
            config
                .get("code")
                .and_then(J::as_str)
                .or_else(|| config.get("value").and_then(|v| lambda_code_from_config(v)))
        }
        _ => None,
    }
}

/// Evidence that a blob went through Keras's Windows `.replace(b"\\", b"/")`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WindowsCorruption {
    /// Offsets of 0x2F bytes that, set back to 0x5C, make the blob parse (empty when it parses as is).
    pub restored_offsets: Vec<usize>,
    /// The blob with those bytes restored, when that makes it parse.
    pub repaired: Option<Vec<u8>>,
    /// What the repaired (or original) blob parses as.
    pub candidates: Vec<Candidate>,
    /// Values in the code that look like rewritten backslashes (`C:/...` filenames, `/n` in strings).
    pub telltales: Vec<String>,
}

fn error_offset(e: &Error) -> usize {
    match e {
        Error::UnknownTypeCode { offset, .. }
        | Error::Truncated { offset, .. }
        | Error::InvalidLength { offset, .. }
        | Error::BadReference { offset, .. }
        | Error::InvalidUtf8 { offset, .. }
        | Error::InvalidFloat { offset, .. }
        | Error::UnexpectedNull { offset }
        | Error::FieldType { offset, .. }
        | Error::LimitExceeded { offset, .. }
        | Error::NoFamily { offset } => *offset,
        Error::TrailingBytes { end, .. } => *end,
        _ => 0,
    }
}

/// How far the best layout gets into `blob`: `usize::MAX` when some candidate is detected.
fn progress(blob: &[u8]) -> (usize, Vec<Candidate>) {
    let d = crate::detect::detect_with(blob, &crate::Limits::default());
    if !d.candidates.is_empty() {
        return (usize::MAX, d.candidates);
    }
    (d.failures.iter().map(|(_, e)| error_offset(e)).max().unwrap_or(0), Vec::new())
}

fn telltales_in(code: &CodeObject, d: &Decoded, out: &mut Vec<String>, depth: u32) {
    if depth > 32 {
        return;
    }
    let f = code.filename.as_bytes();
    if f.len() >= 3 && f[0].is_ascii_alphabetic() && f[1] == b':' && f[2] == b'/' {
        out.push(format!(
            "co_filename {:?} of `{}` is a drive path with '/' where Windows writes '\\'",
            code.filename, code.name
        ));
    }
    for c in &code.consts {
        match d.refs.resolve(c) {
            v @ (Value::Str(_) | Value::Bytes(_)) => {
                let s = v.as_text().unwrap_or_default();
                for esc in ["/n", "/t", "/r", "/x", "/u"] {
                    if s.contains(esc) {
                        out.push(format!(
                            "string constant {s:?} of `{}` contains {esc:?}, which may have been \"\\{}\"",
                            code.name,
                            &esc[1..]
                        ));
                        break;
                    }
                }
            }
            Value::Code(inner) => telltales_in(inner, d, out, depth + 1),
            _ => {}
        }
    }
}

/// Checks a marshal blob for the damage Keras's Windows `func_dump` does (keras-facts §3.1).
///
/// When no layout parses the blob, up to 12 rounds each set back the one 0x2F byte whose
/// restoration lets the parse get furthest, until some layout reads the blob; the result
/// lists the restored offsets and the repaired blob. When the blob parses as is, only telltale
/// values are reported (a `C:/` filename, `/n` in a string); an int constant 47 that was 92 cannot
/// be told apart. Returns `None` when there is no sign of the damage.
pub fn windows_corruption(blob: &[u8]) -> Option<WindowsCorruption> {
    let (p0, cands) = progress(blob);
    if p0 == usize::MAX {
        let mut telltales = Vec::new();
        if let Some(c) = cands.first()
            && let Some(code) = c.decoded.code()
        {
            telltales_in(code, &c.decoded, &mut telltales, 0);
        }
        return (!telltales.is_empty()).then(|| WindowsCorruption {
            restored_offsets: Vec::new(),
            repaired: None,
            candidates: cands,
            telltales,
        });
    }
    let slashes: Vec<usize> = blob.iter().enumerate().filter(|(_, b)| **b == b'/').map(|(i, _)| i).take(512).collect();
    if slashes.is_empty() {
        return None;
    }
    let mut cur = blob.to_vec();
    let mut restored = Vec::new();
    let mut best_p = p0;
    for _round in 0..12 {
        let mut best: Option<(usize, usize, Vec<Candidate>)> = None;
        for &i in &slashes {
            if cur.get(i) != Some(&b'/') {
                continue;
            }
            if let Some(b) = cur.get_mut(i) {
                *b = b'\\';
            }
            let (p, c) = progress(&cur);
            if let Some(b) = cur.get_mut(i) {
                *b = b'/';
            }
            if p > best_p && best.as_ref().is_none_or(|(bp, _, _)| p > *bp) {
                best = Some((p, i, c));
            }
        }
        let (p, i, c) = best?;
        if let Some(b) = cur.get_mut(i) {
            *b = b'\\';
        }
        restored.push(i);
        best_p = p;
        if p == usize::MAX {
            restored.sort_unstable();
            let mut telltales = Vec::new();
            if let Some(code) = c.first().and_then(|c| c.decoded.code()) {
                telltales_in(code, &c[0].decoded, &mut telltales, 0);
            }
            return Some(WindowsCorruption {
                restored_offsets: restored,
                repaired: Some(cur),
                candidates: c,
                telltales,
            });
        }
    }
    None
}

/// Decodes a Lambda's code text and detects the CPython that wrote it.
pub fn detect_lambda(text: &str) -> (LambdaCode, Vec<Candidate>) {
    let code = decode_lambda_code(text);
    let c = detect(&code.bytes);
    (code, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_unicode_escape_like_python() {
        assert_eq!(raw_unicode_escape("a\u{e3}\u{1234}"), b"a\xe3\\u1234".to_vec());
        let c = decode_lambda_code("c\u{0}\u{e3}");
        assert_eq!(c.encoding, LambdaEncoding::RawUnicodeEscape);
        assert_eq!(c.bytes, vec![b'c', 0, 0xe3]);
    }

    #[test]
    fn config_spellings() {
        let k3: serde_json::Value =
            serde_json::json!({"class_name": "__lambda__", "config": {"code": "QQ==\n", "defaults": null}});
        let k3v: serde_json::Value =
            serde_json::json!({"class_name": "__lambda__", "config": {"value": ["QQ==", null, null]}});
        let k2: serde_json::Value = serde_json::json!(["QQ==", null, null]);
        for v in [&k3, &k3v, &k2] {
            assert_eq!(lambda_code_from_config(v).map(|s| s.trim()), Some("QQ=="));
        }
        assert_eq!(decode_lambda_code("QQ==\n").bytes, b"A".to_vec());
    }
}
