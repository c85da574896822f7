//! The part of Python's `str.format` that Keras's `ModelCheckpoint` file names use:
//! `{name}` and `{name:spec}` fields over integers (the 1-based epoch) and floats (the logs),
//! `{{`/`}}` escapes, and the format-spec mini-language
//! `[[fill]align][sign][0][width][,|_][.precision][type]` with types `d`, `f`/`F`, `e`/`E`,
//! `g`/`G`, `%` and none. Anything else (`!r` conversions, `#`, `n`, nested fields) is an error
//! naming the field rather than a silently different name.

use crate::error::{Error, Result};
use strata_format::json::python_float_repr;

/// A value a field can name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Float(f64),
}

/// Python's `repr(float)`, with `nan`/`inf` spelled as Python prints them.
pub(crate) fn py_repr(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        python_float_repr(x)
    }
}

fn err(template: &str, problem: String) -> Error {
    Error::Callback {
        callback: "ModelCheckpoint",
        problem: format!("failed to format this callback filepath: \"{template}\"; reason: {problem}"),
    }
}

/// `template.format(**values)`.
pub(crate) fn format(template: &str, lookup: &dyn Fn(&str) -> Option<Value>) -> Result<String> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(err(template, "single '}' encountered in format string".into())),
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') => return Err(err(template, "nested replacement fields are not supported".into())),
                        Some(c) => field.push(c),
                        None => return Err(err(template, "single '{' encountered in format string".into())),
                    }
                }
                let (name, spec) = field.split_once(':').unwrap_or((&field, ""));
                if name.contains('!') || name.contains('[') || name.contains('.') {
                    return Err(err(
                        template,
                        format!("field `{{{field}}}`: conversions and attribute access are not supported"),
                    ));
                }
                let value = lookup(name).ok_or_else(|| err(template, format!("'{name}'")))?;
                out.push_str(&format_value(value, spec).map_err(|p| err(template, p))?);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

struct Spec {
    fill: char,
    align: Option<char>,
    sign: char,
    width: usize,
    grouping: Option<char>,
    precision: Option<usize>,
    ty: Option<char>,
}

fn parse_spec(spec: &str) -> std::result::Result<Spec, String> {
    let c: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let mut s = Spec { fill: ' ', align: None, sign: '-', width: 0, grouping: None, precision: None, ty: None };
    let is_align = |ch: char| matches!(ch, '<' | '>' | '^' | '=');
    if c.len() >= 2 && is_align(c[1]) {
        s.fill = c[0];
        s.align = Some(c[1]);
        i = 2;
    } else if !c.is_empty() && is_align(c[0]) {
        s.align = Some(c[0]);
        i = 1;
    }
    if i < c.len() && matches!(c[i], '+' | '-' | ' ') {
        s.sign = c[i];
        i += 1;
    }
    if i < c.len() && c[i] == '0' {
        if s.align.is_none() {
            s.fill = '0';
            s.align = Some('=');
        }
        i += 1;
    }
    let start = i;
    while i < c.len() && c[i].is_ascii_digit() {
        i += 1;
    }
    if i > start {
        s.width = c[start..i].iter().collect::<String>().parse().map_err(|_| format!("width in `{spec}`"))?;
    }
    if i < c.len() && matches!(c[i], ',' | '_') {
        s.grouping = Some(c[i]);
        i += 1;
    }
    if i < c.len() && c[i] == '.' {
        i += 1;
        let start = i;
        while i < c.len() && c[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err("format specifier missing precision".into());
        }
        s.precision =
            Some(c[start..i].iter().collect::<String>().parse().map_err(|_| format!("precision in `{spec}`"))?);
    }
    if i < c.len() {
        s.ty = Some(c[i]);
        i += 1;
    }
    if i != c.len() {
        return Err(format!(
            "invalid format specifier `{spec}` (strata supports [[fill]align][sign][0][width][,][.precision][type])"
        ));
    }
    Ok(s)
}

/// `d.ddde±XX` from Rust's `d.ddde-X`.
fn py_exp(rust: &str, upper: bool) -> String {
    // `{:e}` of a finite value always has an exponent
    let Some((m, e)) = rust.split_once('e') else { return rust.to_string() };
    let (sign, digits) = match e.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', e),
    };
    let e = if upper { 'E' } else { 'e' };
    format!("{m}{e}{sign}{digits:0>2}")
}

fn group(int_digits: &str, sep: char) -> String {
    let n = int_digits.len();
    let mut out = String::new();
    for (k, ch) in int_digits.chars().enumerate() {
        if k > 0 && (n - k).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(ch);
    }
    out
}

/// `%g`: precision significant digits, fixed or exponent form by the rounded exponent,
/// trailing zeros removed.
fn general(x: f64, p: usize, upper: bool) -> String {
    let p = p.max(1);
    let sci = format!("{:.*e}", p - 1, x);
    let exp: i32 = sci.split_once('e').and_then(|(_, e)| e.parse().ok()).unwrap_or(0);
    let body = if exp >= -4 && (exp as i64) < p as i64 {
        format!("{:.*}", (p as i64 - 1 - exp as i64).max(0) as usize, x)
    } else {
        py_exp(&sci, upper)
    };
    let (mant, exp_part) = match body.find(['e', 'E']) {
        Some(k) => body.split_at(k),
        None => (body.as_str(), ""),
    };
    let mant = if mant.contains('.') { mant.trim_end_matches('0').trim_end_matches('.') } else { mant };
    format!("{mant}{exp_part}")
}

fn format_value(value: Value, spec: &str) -> std::result::Result<String, String> {
    let s = parse_spec(spec)?;
    let (negative, body) = match (value, s.ty) {
        (Value::Int(v), None | Some('d')) => {
            if s.precision.is_some() {
                return Err("precision not allowed in integer format specifier".into());
            }
            let digits = v.unsigned_abs().to_string();
            (
                v < 0,
                match s.grouping {
                    Some(g) => group(&digits, g),
                    None => digits,
                },
            )
        }
        (Value::Float(_), Some('d')) => return Err("unknown format code 'd' for object of type 'float'".into()),
        (v, ty) => {
            let x = match v {
                Value::Int(i) => i as f64,
                Value::Float(f) => f,
            };
            let neg = x.is_sign_negative() && !x.is_nan();
            let a = x.abs();
            let upper = matches!(ty, Some('F' | 'E' | 'G'));
            let text = if !a.is_finite() {
                let t = if a.is_nan() { "nan" } else { "inf" };
                let t = if upper { t.to_uppercase() } else { t.to_string() };
                if ty == Some('%') { format!("{t}%") } else { t }
            } else {
                match ty {
                    None if s.precision.is_none() => py_repr(a),
                    None => {
                        // Python's "like g, but at least one digit after the point in fixed form".
                        let g = general(a, s.precision.unwrap_or(12), false);
                        if g.contains(['.', 'e']) { g } else { format!("{g}.0") }
                    }
                    Some('f' | 'F') => format!("{:.*}", s.precision.unwrap_or(6), a),
                    Some('e' | 'E') => py_exp(&format!("{:.*e}", s.precision.unwrap_or(6), a), upper),
                    Some('g' | 'G') => general(a, s.precision.unwrap_or(6), upper),
                    Some('%') => format!("{:.*}%", s.precision.unwrap_or(6), a * 100.0),
                    Some(t) => return Err(format!("unknown format code '{t}' for object of type 'float'")),
                }
            };
            let text = match (s.grouping, a.is_finite()) {
                (Some(g), true) => {
                    let end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
                    format!("{}{}", group(&text[..end], g), &text[end..])
                }
                _ => text,
            };
            (neg, text)
        }
    };
    let sign = match (negative, s.sign) {
        (true, _) => "-",
        (false, '+') => "+",
        (false, ' ') => " ",
        _ => "",
    };
    let len = sign.chars().count() + body.chars().count();
    if len >= s.width {
        return Ok(format!("{sign}{body}"));
    }
    let pad = s.width - len;
    let fill = |n: usize| std::iter::repeat_n(s.fill, n).collect::<String>();
    Ok(match s.align.unwrap_or('>') {
        '<' => format!("{sign}{body}{}", fill(pad)),
        '^' => format!("{}{sign}{body}{}", fill(pad / 2), fill(pad - pad / 2)),
        '=' => format!("{sign}{}{body}", fill(pad)),
        _ => format!("{}{sign}{body}", fill(pad)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(t: &str, v: Value) -> String {
        format(t, &|n| (n == "x").then_some(v)).unwrap()
    }

    #[test]
    fn specs_match_python() {
        assert_eq!(f("{x:02d}", Value::Int(3)), "03");
        assert_eq!(f("{x:03d}", Value::Int(-3)), "-03");
        assert_eq!(f("{x}", Value::Int(12)), "12");
        assert_eq!(f("{x:.2f}", Value::Float(0.125)), "0.12");
        assert_eq!(f("{x:.2f}", Value::Float(0.375)), "0.38");
        assert_eq!(f("{x}", Value::Float(1e-5)), "1e-05");
        assert_eq!(f("{x:.3e}", Value::Float(-12345.678)), "-1.235e+04");
        assert_eq!(f("{x:+08.2f}", Value::Float(1.23456)), "+0001.23");
        assert_eq!(f("{x:*^9.1f}", Value::Float(2.25)), "***2.2***");
        assert_eq!(f("{x:.1%}", Value::Float(0.5)), "50.0%");
        assert_eq!(f("{x:g}", Value::Float(0.0001234)), "0.0001234");
        assert_eq!(f("{x:g}", Value::Float(1234567.0)), "1.23457e+06");
        assert_eq!(f("{x:.3}", Value::Float(2.0)), "2.0");
        assert_eq!(f("{x:,d}", Value::Int(1234567)), "1,234,567");
        assert_eq!(f("{x:.2f}", Value::Float(f64::NAN)), "nan");
        assert_eq!(f("{{x}}-{x:.1f}", Value::Float(1.0)), "{x}-1.0");
    }

    #[test]
    fn errors_name_the_template() {
        let e = format("m{y}.keras", &|_| None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ModelCheckpoint: failed to format this callback filepath: \"m{y}.keras\"; reason: 'y'"
        );
        let e = format("{x:d}", &|_| Some(Value::Float(1.0))).unwrap_err();
        assert!(e.to_string().contains("unknown format code 'd' for object of type 'float'"), "{e}");
    }
}
