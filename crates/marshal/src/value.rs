//! Inert values decoded from marshal data, and their Python `repr`.
//!
//! Containers, strings and code objects are reference-counted (`Arc`), so that the FLAG_REF
//! table can hold every flagged object without copying it. A back-reference to a container or a
//! code object stays a [`Value::Ref`] in the tree (resolve it with [`RefTable::resolve`]); a
//! back-reference to a scalar or string is replaced by that value. The decoded tree therefore
//! has the size of the input, and walking it cannot blow up even when the data reuses one object
//! many times.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::code::CodeObject;

/// A Python integer too large for `i64`: sign and magnitude in CPython's marshal digits (base 2^15,
/// least significant first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Long {
    /// True for a negative number.
    pub negative: bool,
    /// Magnitude, base 2^15 digits, least significant first; each digit is below 2^15.
    pub digits: Arc<[u16]>,
}

impl Long {
    /// The value when it fits an `i128`.
    pub fn to_i128(&self) -> Option<i128> {
        let mut v: i128 = 0;
        for &d in self.digits.iter().rev() {
            v = v.checked_mul(1 << 15)?.checked_add(i128::from(d))?;
        }
        Some(if self.negative { -v } else { v })
    }

    /// Decimal text, as Python's `str(int)` writes it.
    pub fn to_decimal(&self) -> String {
        // Repeated division of the base-2^15 magnitude by 10^4.
        let mut mag: Vec<u32> = self.digits.iter().map(|&d| u32::from(d)).collect();
        while mag.last() == Some(&0) {
            mag.pop();
        }
        if mag.is_empty() {
            return "0".to_string();
        }
        let mut chunks: Vec<u32> = Vec::new();
        while !mag.is_empty() {
            let mut rem: u32 = 0;
            for d in mag.iter_mut().rev() {
                let cur = (rem << 15) | *d;
                *d = cur / 10_000;
                rem = cur % 10_000;
            }
            chunks.push(rem);
            while mag.last() == Some(&0) {
                mag.pop();
            }
        }
        let mut s = String::new();
        if self.negative {
            s.push('-');
        }
        let mut it = chunks.iter().rev();
        if let Some(first) = it.next() {
            let _ = write!(s, "{first}");
        }
        for c in it {
            let _ = write!(s, "{c:04}");
        }
        s
    }
}

/// One decoded marshal object. Nothing in it can run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// The `StopIteration` singleton.
    StopIteration,
    /// `...`.
    Ellipsis,
    /// An int that fits in `i64` (type codes `i` and `I`).
    Int(i64),
    /// A long integer (type code `l`).
    Long(Long),
    /// A float.
    Float(f64),
    /// A complex number.
    Complex {
        /// Real part.
        re: f64,
        /// Imaginary part.
        im: f64,
    },
    /// `bytes` (Python 3) or `str` (Python 2).
    Bytes(Arc<[u8]>),
    /// `str` (Python 3) or `unicode` (Python 2).
    Str(Arc<str>),
    /// A tuple.
    Tuple(Arc<[Value]>),
    /// A list.
    List(Arc<[Value]>),
    /// A dict, in marshal order.
    Dict(Arc<[(Value, Value)]>),
    /// A set, in marshal order.
    Set(Arc<[Value]>),
    /// A frozenset, in marshal order.
    FrozenSet(Arc<[Value]>),
    /// A slice constant (marshal version 5, CPython 3.14+): start, stop, step.
    Slice(Arc<(Value, Value, Value)>),
    /// A code object.
    Code(Arc<CodeObject>),
    /// A back-reference to a container or code object in the [`RefTable`].
    Ref(u32),
}

impl Value {
    /// The Python type name of this value (`Ref` is `"reference"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::StopIteration => "StopIteration",
            Value::Ellipsis => "ellipsis",
            Value::Int(_) | Value::Long(_) => "int",
            Value::Float(_) => "float",
            Value::Complex { .. } => "complex",
            Value::Bytes(_) => "bytes",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
            Value::Slice(_) => "slice",
            Value::Code(_) => "code",
            Value::Ref(_) => "reference",
        }
    }

    /// The text of a `Str`, or of a `Bytes` read as Latin-1 (Python 2 `str`); `None` otherwise.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.to_string()),
            Value::Bytes(b) => Some(b.iter().map(|&c| char::from(c)).collect()),
            _ => None,
        }
    }
}

/// The FLAG_REF table of one decode: object number `i` is what `Value::Ref(i)` means.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RefTable {
    pub(crate) slots: Vec<Option<Value>>,
}

impl RefTable {
    /// Number of flagged objects.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    /// True when no object was flagged.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
    /// Object number `i`, if it exists and was complete when the data referred to it.
    pub fn get(&self, i: u32) -> Option<&Value> {
        self.slots.get(i as usize).and_then(|s| s.as_ref())
    }
    /// `v` itself, or the object a `Value::Ref` points to (table entries are never `Ref`).
    pub fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v {
            Value::Ref(i) => self.get(*i).unwrap_or(v),
            _ => v,
        }
    }
}

/// Which Python's `repr` to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReprStyle {
    /// Python 2: `str` has no `b` prefix, `unicode` has `u`, longs end in `L`, sets print as lists.
    Py2,
    /// Python 3.
    Py3,
}

/// Python's `repr(value)`, following references through `refs` and cut to about `max_chars`
/// characters (a cut repr ends with `...`).
pub fn repr(value: &Value, refs: &RefTable, style: ReprStyle, max_chars: usize) -> String {
    let mut out = String::new();
    let mut r = Repr { refs, style, max: max_chars, out: &mut out, depth: 0 };
    r.value(value);
    if out.len() > max_chars {
        let mut cut = max_chars;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

struct Repr<'a> {
    refs: &'a RefTable,
    style: ReprStyle,
    max: usize,
    out: &'a mut String,
    depth: u32,
}

impl Repr<'_> {
    fn full(&self) -> bool {
        self.out.len() > self.max
    }

    fn seq(&mut self, open: &str, items: &[Value], close: &str, one_comma: bool) {
        self.out.push_str(open);
        for (i, v) in items.iter().enumerate() {
            if self.full() {
                break;
            }
            if i > 0 {
                self.out.push_str(", ");
            }
            self.value(v);
        }
        if one_comma && items.len() == 1 {
            self.out.push(',');
        }
        self.out.push_str(close);
    }

    fn value(&mut self, v: &Value) {
        if self.full() {
            return;
        }
        if self.depth > 64 {
            self.out.push_str("...");
            return;
        }
        self.depth += 1;
        let py2 = self.style == ReprStyle::Py2;
        match v {
            Value::None => self.out.push_str("None"),
            Value::Bool(true) => self.out.push_str("True"),
            Value::Bool(false) => self.out.push_str("False"),
            Value::StopIteration => self.out.push_str("StopIteration"),
            Value::Ellipsis => self.out.push_str("Ellipsis"),
            Value::Int(i) => {
                let _ = write!(self.out, "{i}");
            }
            Value::Long(l) => {
                self.out.push_str(&l.to_decimal());
                if py2 {
                    self.out.push('L');
                }
            }
            Value::Float(f) => self.out.push_str(&float_repr(*f)),
            Value::Complex { re, im } => self.out.push_str(&complex_repr(*re, *im)),
            Value::Bytes(b) => {
                if !py2 {
                    self.out.push('b');
                }
                quote_bytes(self.out, b);
            }
            Value::Str(s) => {
                if py2 {
                    self.out.push('u');
                    quote_py2_unicode(self.out, s);
                } else {
                    quote_str(self.out, s);
                }
            }
            Value::Tuple(items) => self.seq("(", items, ")", true),
            Value::List(items) => self.seq("[", items, "]", false),
            Value::Set(items) if items.is_empty() => self.out.push_str("set()"),
            Value::Set(items) if py2 => self.seq("set([", items, "])", false),
            Value::Set(items) => self.seq("{", items, "}", false),
            Value::FrozenSet(items) if items.is_empty() => self.out.push_str("frozenset()"),
            Value::FrozenSet(items) if py2 => self.seq("frozenset([", items, "])", false),
            Value::FrozenSet(items) => self.seq("frozenset({", items, "})", false),
            Value::Dict(items) => {
                self.out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if self.full() {
                        break;
                    }
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.value(k);
                    self.out.push_str(": ");
                    self.value(v);
                }
                self.out.push('}');
            }
            Value::Slice(s) => {
                self.out.push_str("slice(");
                self.value(&s.0);
                self.out.push_str(", ");
                self.value(&s.1);
                self.out.push_str(", ");
                self.value(&s.2);
                self.out.push(')');
            }
            Value::Code(c) => {
                let _ = write!(self.out, "<code object {} from file {:?}, line {}>", c.name, c.filename, c.firstlineno);
            }
            Value::Ref(i) => match self.refs.get(*i) {
                Some(target) => {
                    let target = target.clone();
                    self.value(&target);
                }
                None => {
                    let _ = write!(self.out, "<reference #{i} to an object under construction>");
                }
            },
        }
        self.depth -= 1;
    }
}

/// Python's `repr(float)`: the shortest text that reads back to the same float, fixed notation for
/// exponents -5 < e < 16, scientific (`1e+300`, `1e-05`) otherwise.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: "-1.5e-7".
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp < 0 {
            s.push_str("0.");
            for _ in 0..(-exp - 1) {
                s.push('0');
            }
            s.push_str(&digits);
        } else {
            let point = exp as usize + 1;
            if digits.len() <= point {
                s.push_str(&digits);
                for _ in digits.len()..point {
                    s.push('0');
                }
                s.push_str(".0");
            } else {
                s.push_str(&digits[..point]);
                s.push('.');
                s.push_str(&digits[point..]);
            }
        }
    } else {
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        let _ = write!(s, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    s
}

fn complex_part(f: f64) -> String {
    let s = float_repr(f);
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Python's `repr(complex)`: `2j`, `(1+2j)`, `(-0-1j)`.
pub fn complex_repr(re: f64, im: f64) -> String {
    if re == 0.0 && re.is_sign_positive() {
        return format!("{}j", complex_part(im));
    }
    let imag = complex_part(im);
    let sign = if imag.starts_with('-') { "" } else { "+" };
    format!("({}{}{}j)", complex_part(re), sign, imag)
}

fn quote_char(c: char, q: char) -> Option<String> {
    Some(match c {
        '\\' => "\\\\".to_string(),
        '\n' => "\\n".to_string(),
        '\r' => "\\r".to_string(),
        '\t' => "\\t".to_string(),
        c if c == q => format!("\\{c}"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => format!("\\x{:02x}", c as u32),
        _ => return None,
    })
}

fn pick_quote(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double { '"' } else { '\'' }
}

fn quote_str(out: &mut String, s: &str) {
    let q = pick_quote(s.contains('\''), s.contains('"'));
    out.push(q);
    for c in s.chars() {
        match quote_char(c, q) {
            Some(e) => out.push_str(&e),
            None if (0x80..0xa0).contains(&(c as u32)) || c == '\u{ad}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            None if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            None => out.push(c),
        }
    }
    out.push(q);
}

fn quote_py2_unicode(out: &mut String, s: &str) {
    let q = pick_quote(s.contains('\''), s.contains('"'));
    out.push(q);
    for c in s.chars() {
        match quote_char(c, q) {
            Some(e) => out.push_str(&e),
            None if (c as u32) < 0x7f => out.push(c),
            None if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            None if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            None => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push(q);
}

fn quote_bytes(out: &mut String, b: &[u8]) {
    let q = pick_quote(b.contains(&b'\''), b.contains(&b'"'));
    out.push(q);
    for &c in b {
        match quote_char(char::from(c), q) {
            Some(e) => out.push_str(&e),
            None if c >= 0x80 => {
                let _ = write!(out, "\\x{c:02x}");
            }
            None => out.push(char::from(c)),
        }
    }
    out.push(q);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python() {
        // Python's own reprs of these floats, as the language defines them.
        for (f, s) in
            [(2.0, "2.0"), (1e300, "1e+300"), (-0.5, "-0.5"), (1e16, "1e+16"), (1e-5, "1e-05"), (0.0001, "0.0001")]
        {
            assert_eq!(float_repr(f), s);
        }
    }

    #[test]
    fn long_decimal() {
        let l = Long { negative: true, digits: Arc::from(vec![0u16, 1]) };
        assert_eq!(l.to_decimal(), "-32768");
        assert_eq!(l.to_i128(), Some(-32768));
    }
}
