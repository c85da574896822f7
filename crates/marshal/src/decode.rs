//! The bounds-checked marshal reader.
//!
//! Mirrors `r_object` in CPython's `Python/marshal.c` (versions 0-5 of the format, and Python 2's
//! string table) without creating anything executable. Every read goes through `Cursor`, which
//! checks the bytes are present; every count from the data is checked against the bytes left
//! before anything is allocated; depth and object count are bounded by [`Limits`].
//!
//! FLAG_REF (0x80 on the type byte, format version 3+) reserves the next slot of the reference
//! table *before* the object's children are read, exactly as CPython's `r_ref_reserve`/`R_REF`
//! do, so indices match CPython's.

use std::sync::Arc;

use crate::code::{CodeObject, Family, kinds};
use crate::error::{Error, Result};
use crate::limits::{LimitKind, Limits};
use crate::value::{Long, RefTable, Value};

/// What one decode saw, for version detection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Features {
    /// Some object had FLAG_REF (format version 3+, CPython 3.4+).
    pub flag_ref: bool,
    /// Short ASCII / ASCII / small tuple codes (format version 4, CPython 3.4+).
    pub v4_codes: bool,
    /// A slice object (format version 5, CPython 3.14+).
    pub slice: bool,
    /// Python 2 interned strings or string references (`t` / `R` in the Python 2 dialect).
    pub py2_interned: bool,
}

/// The result of decoding: the value, the FLAG_REF table it refers to, and what was seen.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Decoded {
    /// The top-level object.
    pub value: Value,
    /// Objects flagged with FLAG_REF, by index.
    pub refs: RefTable,
    /// Format features that occurred.
    pub features: Features,
    /// Bytes consumed (equals the input length for [`decode`]).
    pub consumed: usize,
}

impl Decoded {
    /// The top-level code object, if the value is one.
    pub fn code(&self) -> Option<&CodeObject> {
        match self.refs.resolve(&self.value) {
            Value::Code(c) => Some(c),
            _ => None,
        }
    }
}

/// Decodes `data` completely with code-object layout `family`; bytes left over are an error.
///
/// ```
/// // marshal.dumps((1, "a")) on CPython 3.11: a small tuple of a small int and a short ASCII string.
/// let data = [0xa9, 0x02, 0xe9, 0x01, 0, 0, 0, 0xda, 0x01, b'a'];
/// let d = strata_marshal::decode(&data, strata_marshal::Family::Py311Plus, &Default::default()).unwrap();
/// assert_eq!(strata_marshal::repr(&d.value, &d.refs, strata_marshal::ReprStyle::Py3, 100), "(1, 'a')");
/// ```
pub fn decode(data: &[u8], family: Family, limits: &Limits) -> Result<Decoded> {
    let d = decode_prefix(data, family, limits)?;
    if d.consumed != data.len() {
        return Err(Error::TrailingBytes { end: d.consumed, extra: data.len() - d.consumed });
    }
    Ok(d)
}

/// Decodes one object from the start of `data`; bytes after it are left alone (`consumed` says how many were used).
pub fn decode_prefix(data: &[u8], family: Family, limits: &Limits) -> Result<Decoded> {
    let len = data.len() as u64;
    if len > limits.max_input_bytes {
        return Err(Error::LimitExceeded {
            kind: LimitKind::InputBytes,
            value: len,
            limit: limits.max_input_bytes,
            offset: 0,
        });
    }
    let mut r = Reader {
        cur: Cursor { data, pos: 0 },
        limits,
        family,
        refs: Vec::new(),
        interned: Vec::new(),
        objects: 0,
        depth: 0,
        features: Features::default(),
    };
    let value = r.object()?;
    Ok(Decoded { value, refs: RefTable { slots: r.refs }, features: r.features, consumed: r.cur.pos })
}

/// A bounds-checked little-endian reader over the marshal bytes.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let start = self.pos;
        match start.checked_add(n).and_then(|end| self.data.get(start..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(Error::Truncated { what, offset: start, needed: n - self.remaining().min(n) }),
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        let s = self.take(1, what)?;
        Ok(s.first().copied().unwrap_or(0))
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    fn f64(&mut self, what: &'static str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }
}

struct Reader<'a> {
    cur: Cursor<'a>,
    limits: &'a Limits,
    family: Family,
    refs: Vec<Option<Value>>,
    interned: Vec<Value>,
    objects: u64,
    depth: u32,
    features: Features,
}

const FLAG_REF: u8 = 0x80;

impl Reader<'_> {
    /// A length read as int32: negative is an error, and it must fit in the bytes left
    /// (each item takes at least `min_item_bytes`).
    fn length(&mut self, what: &'static str, min_item_bytes: usize) -> Result<usize> {
        let at = self.cur.pos;
        let n = self.cur.i32(what)?;
        self.check_len(i64::from(n), what, min_item_bytes, at)
    }

    fn short_length(&mut self, what: &'static str, min_item_bytes: usize) -> Result<usize> {
        let at = self.cur.pos;
        let n = self.cur.u8(what)?;
        self.check_len(i64::from(n), what, min_item_bytes, at)
    }

    fn check_len(&self, n: i64, what: &'static str, min_item_bytes: usize, at: usize) -> Result<usize> {
        let Ok(u) = usize::try_from(n) else {
            return Err(Error::InvalidLength { what, value: n, offset: at });
        };
        let need = u.saturating_mul(min_item_bytes);
        if need > self.cur.remaining() {
            return Err(Error::Truncated { what, offset: at, needed: need - self.cur.remaining() });
        }
        Ok(u)
    }

    fn count_object(&mut self, offset: usize) -> Result<()> {
        self.objects += 1;
        if self.objects > self.limits.max_objects {
            return Err(Error::LimitExceeded {
                kind: LimitKind::Objects,
                value: self.objects,
                limit: self.limits.max_objects,
                offset,
            });
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Value> {
        let offset = self.cur.pos;
        let byte = self.cur.u8("a type code")?;
        self.count_object(offset)?;
        let py2 = self.family.is_py2();
        let flag = byte & FLAG_REF != 0;
        if flag && py2 {
            return Err(Error::UnknownTypeCode { code: byte, offset });
        }
        if flag {
            self.features.flag_ref = true;
        }
        let code = byte & !FLAG_REF;
        // Reserve the reference slot before reading children, as CPython does.
        let slot = if flag {
            let i = self.refs.len();
            self.refs.push(None);
            Some(i)
        } else {
            None
        };
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(Error::LimitExceeded {
                kind: LimitKind::Depth,
                value: u64::from(self.depth),
                limit: u64::from(self.limits.max_depth),
                offset,
            });
        }
        let v = self.object_body(code, byte, offset);
        self.depth -= 1;
        let v = v?;
        if let Some(i) = slot
            && let Some(s) = self.refs.get_mut(i)
        {
            *s = Some(v.clone());
        }
        Ok(v)
    }

    /// Dispatches on the type code. Kept small, with every arm that allocates or recurses in its
    /// own non-inlined function: unoptimised builds give each arm's locals their own stack slots,
    /// and this frame is on the stack once per nesting level.
    fn object_body(&mut self, code: u8, byte: u8, offset: usize) -> Result<Value> {
        let py2 = self.family.is_py2();
        Ok(match code {
            b'0' => return Err(Error::UnexpectedNull { offset }),
            b'N' => Value::None,
            b'F' => Value::Bool(false),
            b'T' => Value::Bool(true),
            b'S' => Value::StopIteration,
            b'.' => Value::Ellipsis,
            b'i' => Value::Int(i64::from(self.cur.i32("an int")?)),
            b'I' => Value::Int(self.cur.i64("an int64")?),
            b'l' => self.long()?,
            b'g' | b'y' | b'f' | b'x' => self.float_obj(code)?,
            b's' | b't' | b'R' | b'u' => self.string_obj(code)?,
            b'a' | b'A' | b'z' | b'Z' if !py2 => self.ascii_obj(code)?,
            b'(' | b'[' | b'<' | b'>' => self.container(code)?,
            b')' if !py2 => self.container(code)?,
            b'{' => self.dict()?,
            b':' if !py2 => self.slice()?,
            b'r' if !py2 => self.reference()?,
            b'c' => self.code_obj(offset)?,
            _ => return Err(Error::UnknownTypeCode { code: byte, offset }),
        })
    }

    #[inline(never)]
    fn float_obj(&mut self, code: u8) -> Result<Value> {
        Ok(match code {
            b'g' => Value::Float(self.cur.f64("a float")?),
            b'y' => {
                let re = self.cur.f64("a complex")?;
                Value::Complex { re, im: self.cur.f64("a complex")? }
            }
            b'f' => Value::Float(self.text_float()?),
            _ => {
                let re = self.text_float()?;
                Value::Complex { re, im: self.text_float()? }
            }
        })
    }

    #[inline(never)]
    fn string_obj(&mut self, code: u8) -> Result<Value> {
        let py2 = self.family.is_py2();
        Ok(match code {
            b's' => {
                let n = self.length("a bytes length", 1)?;
                Value::Bytes(Arc::from(self.cur.take(n, "bytes")?))
            }
            b't' if py2 => {
                self.features.py2_interned = true;
                let n = self.length("a string length", 1)?;
                let v = Value::Bytes(Arc::from(self.cur.take(n, "a string")?));
                self.interned.push(v.clone());
                v
            }
            b'R' => {
                let at = self.cur.pos;
                if !py2 {
                    return Err(Error::UnknownTypeCode { code, offset: at - 1 });
                }
                self.features.py2_interned = true;
                let i = self.cur.i32("a string reference")?;
                match usize::try_from(i).ok().and_then(|i| self.interned.get(i)) {
                    Some(v) => v.clone(),
                    None => {
                        return Err(Error::BadReference { index: i as u32, known: self.interned.len(), offset: at });
                    }
                }
            }
            _ => {
                let n = self.length("a string length", 1)?;
                let at = self.cur.pos;
                let raw = self.cur.take(n, "a string")?;
                match std::str::from_utf8(raw) {
                    Ok(s) => Value::Str(Arc::from(s)),
                    Err(e) => return Err(Error::InvalidUtf8 { offset: at, valid_up_to: e.valid_up_to(), len: n }),
                }
            }
        })
    }

    #[inline(never)]
    fn ascii_obj(&mut self, code: u8) -> Result<Value> {
        self.features.v4_codes = true;
        let n = if code == b'z' || code == b'Z' {
            self.short_length("a short string length", 1)?
        } else {
            self.length("a string length", 1)?
        };
        let raw = self.cur.take(n, "an ASCII string")?;
        // CPython builds these as one-byte (Latin-1) strings.
        Ok(Value::Str(Arc::from(raw.iter().map(|&c| char::from(c)).collect::<String>())))
    }

    #[inline(never)]
    fn container(&mut self, code: u8) -> Result<Value> {
        if code == b')' {
            self.features.v4_codes = true;
        }
        let items: Arc<[Value]> = self.items(code == b')')?.into();
        Ok(match code {
            b'[' => Value::List(items),
            b'<' => Value::Set(items),
            b'>' => Value::FrozenSet(items),
            _ => Value::Tuple(items),
        })
    }

    #[inline(never)]
    fn dict(&mut self) -> Result<Value> {
        let mut items = Vec::new();
        loop {
            if self.cur.peek() == Some(b'0') {
                self.cur.pos += 1;
                break;
            }
            let k = self.object()?;
            let v = self.object()?;
            items.push((k, v));
        }
        Ok(Value::Dict(items.into()))
    }

    #[inline(never)]
    fn slice(&mut self) -> Result<Value> {
        self.features.slice = true;
        let a = self.object()?;
        let b = self.object()?;
        let c = self.object()?;
        Ok(Value::Slice(Arc::new((a, b, c))))
    }

    #[inline(never)]
    fn reference(&mut self) -> Result<Value> {
        let at = self.cur.pos;
        let i = self.cur.i32("a reference index")?;
        let idx = i as u32;
        Ok(match usize::try_from(i).ok().and_then(|i| self.refs.get(i)) {
            Some(Some(v)) => match v {
                Value::Tuple(_)
                | Value::List(_)
                | Value::Dict(_)
                | Value::Set(_)
                | Value::FrozenSet(_)
                | Value::Slice(_)
                | Value::Code(_) => Value::Ref(idx),
                other => other.clone(),
            },
            // Reserved, not finished: a container that contains itself.
            Some(None) => Value::Ref(idx),
            None => return Err(Error::BadReference { index: idx, known: self.refs.len(), offset: at }),
        })
    }

    #[inline(never)]
    fn code_obj(&mut self, offset: usize) -> Result<Value> {
        let c = Box::new(self.code(offset)?);
        Ok(Value::Code(Arc::from(c)))
    }

    fn items(&mut self, small: bool) -> Result<Vec<Value>> {
        let n = if small { self.short_length("a small tuple size", 1)? } else { self.length("a container size", 1)? };
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.object()?);
        }
        Ok(v)
    }

    fn long(&mut self) -> Result<Value> {
        let at = self.cur.pos;
        let n = i64::from(self.cur.i32("a long size")?);
        let count = self.check_len(n.abs(), "a long size", 2, at)?;
        let mut digits = Vec::with_capacity(count);
        for _ in 0..count {
            let dat = self.cur.pos;
            let d = u16::from_le_bytes(self.cur.array("a long digit")?);
            if d >= 0x8000 {
                return Err(Error::InvalidLength { what: "long digit", value: i64::from(d), offset: dat });
            }
            digits.push(d);
        }
        let long = Long { negative: n < 0, digits: digits.into() };
        // Small values read as Int, so that consumers compare ints uniformly.
        // Small values read as Int (Python 3 has one int type); Python 2 keeps `long` apart.
        match long.to_i128().and_then(|v| i64::try_from(v).ok()) {
            Some(v) if count <= 4 && !self.family.is_py2() => Ok(Value::Int(v)),
            _ => Ok(Value::Long(long)),
        }
    }

    fn text_float(&mut self) -> Result<f64> {
        let at = self.cur.pos;
        let n = usize::from(self.cur.u8("a text float length")?);
        let raw = self.cur.take(n, "a text float")?;
        let text: String = raw.iter().map(|&c| char::from(c)).collect();
        let t = text.trim();
        let parsed = match t {
            "inf" | "+inf" | "Infinity" => Some(f64::INFINITY),
            "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
            "nan" | "+nan" | "-nan" => Some(f64::NAN),
            _ => t.parse::<f64>().ok(),
        };
        parsed.ok_or(Error::InvalidFloat { text, offset: at })
    }

    fn int_field(&mut self, what: &'static str) -> Result<i32> {
        self.cur.i32(what)
    }

    /// Reads one object field of a code object and resolves a back-reference to its target.
    fn field(&mut self) -> Result<(Value, usize)> {
        let at = self.cur.pos;
        let v = self.object()?;
        let v = match v {
            Value::Ref(i) => match self.refs.get(i as usize) {
                Some(Some(t)) => t.clone(),
                _ => v,
            },
            v => v,
        };
        Ok((v, at))
    }

    fn bytes_field(&mut self, field: &'static str) -> Result<Arc<[u8]>> {
        let (v, at) = self.field()?;
        match v {
            Value::Bytes(b) => Ok(b),
            other => Err(Error::FieldType { field, expected: "bytes", found: other.type_name(), offset: at }),
        }
    }

    fn str_field(&mut self, field: &'static str) -> Result<String> {
        let (v, at) = self.field()?;
        let py2 = self.family.is_py2();
        match v {
            Value::Str(s) => Ok(s.to_string()),
            Value::Bytes(b) if py2 => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => Err(Error::FieldType { field, expected: "str", found: other.type_name(), offset: at }),
        }
    }

    fn tuple_field(&mut self, field: &'static str) -> Result<Vec<Value>> {
        let (v, at) = self.field()?;
        match v {
            Value::Tuple(items) => Ok(items.to_vec()),
            other => Err(Error::FieldType { field, expected: "tuple", found: other.type_name(), offset: at }),
        }
    }

    fn names_field(&mut self, field: &'static str) -> Result<Vec<String>> {
        let at = self.cur.pos;
        let items = self.tuple_field(field)?;
        let py2 = self.family.is_py2();
        items
            .into_iter()
            .map(|v| match v {
                Value::Str(s) => Ok(s.to_string()),
                Value::Bytes(b) if py2 => Ok(String::from_utf8_lossy(&b).into_owned()),
                other => {
                    Err(Error::FieldType { field, expected: "tuple of str", found: other.type_name(), offset: at })
                }
            })
            .collect()
    }

    fn code(&mut self, offset: usize) -> Result<CodeObject> {
        let fam = self.family;
        let mut obj = CodeObject {
            family: fam,
            offset,
            argcount: 0,
            posonlyargcount: 0,
            kwonlyargcount: 0,
            nlocals: None,
            stacksize: 0,
            flags: 0,
            code: Arc::from(Vec::new()),
            consts: Vec::new(),
            names: Vec::new(),
            varnames: Vec::new(),
            freevars: Vec::new(),
            cellvars: Vec::new(),
            localsplusnames: Vec::new(),
            localspluskinds: Vec::new(),
            filename: String::new(),
            name: String::new(),
            qualname: None,
            firstlineno: 0,
            linetable: Arc::from(Vec::new()),
            exceptiontable: None,
        };
        self.code_header(&mut obj)?;
        if fam == Family::Py311Plus {
            self.code_tail_311(&mut obj)?
        } else {
            self.code_tail_old(&mut obj)?
        }
        Ok(obj)
    }

    #[inline(never)]
    fn code_header(&mut self, obj: &mut CodeObject) -> Result<()> {
        let fam = self.family;
        obj.argcount = self.int_field("co_argcount")?;
        if matches!(fam, Family::Py38To310 | Family::Py311Plus) {
            obj.posonlyargcount = self.int_field("co_posonlyargcount")?;
        }
        if fam != Family::Py27 {
            obj.kwonlyargcount = self.int_field("co_kwonlyargcount")?;
        }
        if fam != Family::Py311Plus {
            obj.nlocals = Some(self.int_field("co_nlocals")?);
        }
        obj.stacksize = self.int_field("co_stacksize")?;
        obj.flags = self.int_field("co_flags")? as u32;
        obj.code = self.bytes_field("co_code")?;
        obj.consts = self.tuple_field("co_consts")?;
        obj.names = self.names_field("co_names")?;
        Ok(())
    }

    #[inline(never)]
    fn code_tail_311(&mut self, obj: &mut CodeObject) -> Result<()> {
        obj.localsplusnames = self.names_field("co_localsplusnames")?;
        let at = self.cur.pos;
        let k = self.bytes_field("co_localspluskinds")?;
        if k.len() != obj.localsplusnames.len() {
            return Err(Error::FieldType {
                field: "co_localspluskinds",
                expected: "bytes as long as co_localsplusnames",
                found: "bytes of another length",
                offset: at,
            });
        }
        obj.localspluskinds = k.to_vec();
        for (name, &kind) in obj.localsplusnames.iter().zip(obj.localspluskinds.iter()) {
            if kind & kinds::LOCAL != 0 {
                obj.varnames.push(name.clone());
            }
            if kind & kinds::CELL != 0 {
                obj.cellvars.push(name.clone());
            }
            if kind & kinds::FREE != 0 {
                obj.freevars.push(name.clone());
            }
        }
        obj.filename = self.str_field("co_filename")?;
        obj.name = self.str_field("co_name")?;
        obj.qualname = Some(self.str_field("co_qualname")?);
        obj.firstlineno = self.int_field("co_firstlineno")?;
        obj.linetable = self.bytes_field("co_linetable")?;
        obj.exceptiontable = Some(self.bytes_field("co_exceptiontable")?);
        Ok(())
    }

    #[inline(never)]
    fn code_tail_old(&mut self, obj: &mut CodeObject) -> Result<()> {
        obj.varnames = self.names_field("co_varnames")?;
        obj.freevars = self.names_field("co_freevars")?;
        obj.cellvars = self.names_field("co_cellvars")?;
        obj.filename = self.str_field("co_filename")?;
        obj.name = self.str_field("co_name")?;
        obj.firstlineno = self.int_field("co_firstlineno")?;
        obj.linetable = self.bytes_field("co_lnotab")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(n: i32) -> [u8; 4] {
        n.to_le_bytes()
    }

    #[test]
    fn unknown_type_code_reports_offset() {
        let e = decode(b"(\x01\x00\x00\x00C", Family::Py311Plus, &Limits::default()).unwrap_err();
        assert_eq!(e, Error::UnknownTypeCode { code: b'C', offset: 5 });
    }

    #[test]
    fn depth_limit() {
        let mut data = Vec::new();
        for _ in 0..10 {
            data.push(b'[');
            data.extend(le(1));
        }
        data.push(b'N');
        let e = decode(&data, Family::Py311Plus, &Limits::default().with_max_depth(5)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "nesting depth at offset 25 is 6, over the limit of 5; raise it with `Limits::with_max_depth` if the data is trusted"
        );
    }

    #[test]
    fn huge_count_is_refused_before_allocating() {
        let mut data = vec![b'('];
        data.extend(le(i32::MAX));
        let e = decode(&data, Family::Py311Plus, &Limits::default()).unwrap_err();
        assert!(matches!(e, Error::Truncated { what: "a container size", offset: 1, .. }), "{e:?}");
        let mut data = vec![b'l'];
        data.extend(le(i32::MIN));
        assert!(decode(&data, Family::Py311Plus, &Limits::default()).is_err());
    }

    #[test]
    fn back_reference_to_container_stays_a_ref() {
        // [ (FLAG_REF) () , r0 ]
        let mut data = vec![b'['];
        data.extend(le(2));
        data.push(b'(' | FLAG_REF);
        data.extend(le(0));
        data.push(b'r');
        data.extend(le(0));
        let d = decode(&data, Family::Py311Plus, &Limits::default()).unwrap();
        let Value::List(items) = &d.value else { panic!("{:?}", d.value) };
        assert_eq!(items[1], Value::Ref(0));
        assert_eq!(d.refs.resolve(&items[1]), &Value::Tuple(Vec::new().into()));
        let mut bad = data.clone();
        let n = bad.len();
        bad[n - 4] = 9;
        assert_eq!(
            decode(&bad, Family::Py311Plus, &Limits::default()).unwrap_err().to_string(),
            "back-reference to object #9 at offset 11, but only 1 objects are referenceable; marshal data is corrupted"
        );
    }

    #[test]
    fn trailing_bytes() {
        let e = decode(b"NN", Family::Py311Plus, &Limits::default()).unwrap_err();
        assert_eq!(e, Error::TrailingBytes { end: 1, extra: 1 });
    }
}
