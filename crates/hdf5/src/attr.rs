//! Attributes: decoding Attribute messages into [`Attr`].
//!
//! Keras stores its metadata in attributes (legacy `.h5`: `keras_version`,
//! `model_config`, `layer_names`, `weight_names`; Keras 3 `.weights.h5`: the
//! `name` of every `vars` group). Every string encoding h5py has ever written
//! is accepted: variable-length or fixed-length, ASCII or UTF-8, NULLTERM /
//! NULLPAD / SPACEPAD. The bytes are kept exactly as stored; [`Attr::as_strings`]
//! strips the padding and decodes UTF-8.

use std::collections::HashMap;

use crate::cursor::{Cursor, Short, UNDEF};
use crate::datatype::{RawType, Space, StrPad};
use crate::error::{Error, Result};
use crate::file::Inner;
use crate::header::{Header, msg};

/// How a string attribute is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StrEncoding {
    /// Variable-length (global heap) rather than fixed-width.
    pub vlen: bool,
    /// UTF-8 character set rather than ASCII.
    pub utf8: bool,
    /// The width of a fixed-length string, `None` for vlen.
    pub fixed_len: Option<usize>,
    /// The padding rule.
    pub pad: StrPad,
}

/// A decoded attribute value, flattened in C order.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// Strings, one per element, bytes exactly as stored (fixed-width ones
    /// keep their padding; see [`Attr::as_strings`]).
    Strings {
        /// The stored bytes of each element.
        values: Vec<Vec<u8>>,
        /// How they were encoded.
        encoding: StrEncoding,
    },
    /// IEEE floats of any width, widened exactly to `f64`. Also what h5py
    /// writes for an empty list: a float64 array of shape `(0,)`.
    Float(Vec<f64>),
    /// Signed integers (and h5py booleans, as 0/1).
    Int(Vec<i64>),
    /// Unsigned integers.
    UInt(Vec<u64>),
    /// OPAQUE bytes, all elements concatenated.
    Opaque(Vec<u8>),
    /// A type or encoding this crate does not decode, described.
    Unsupported(String),
}

/// An attribute: its dataspace shape and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    /// Dimensions; empty for a scalar.
    pub shape: Vec<u64>,
    /// The value, flattened.
    pub value: AttrValue,
}

impl Attr {
    /// The string elements, padding removed (NULLTERM: up to the first NUL;
    /// NULLPAD: trailing NULs; SPACEPAD: trailing spaces) and decoded as UTF-8
    /// (lossless when valid, replacement characters otherwise). `None` when
    /// the attribute does not hold strings.
    pub fn as_strings(&self) -> Option<Vec<String>> {
        match &self.value {
            AttrValue::Strings { values, encoding } => {
                Some(values.iter().map(|v| String::from_utf8_lossy(strip(v, encoding.pad)).into_owned()).collect())
            }
            _ => None,
        }
    }

    /// The single string of a scalar (or one-element) string attribute.
    pub fn as_string(&self) -> Option<String> {
        let mut v = self.as_strings()?;
        if v.len() == 1 { v.pop() } else { None }
    }
}

fn strip(v: &[u8], pad: StrPad) -> &[u8] {
    match pad {
        StrPad::NullTerm => v.iter().position(|&b| b == 0).map_or(v, |n| &v[..n]),
        StrPad::NullPad => {
            let n = v.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            &v[..n]
        }
        StrPad::SpacePad => {
            let n = v.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
            &v[..n]
        }
    }
}

/// All attributes of an object, sorted by name.
pub(crate) fn read_attrs(inner: &Inner, header: &Header<'_>, object: &str) -> Result<Vec<(String, Attr)>> {
    let mut out = Vec::new();
    let mut total: u64 = 0;
    for m in header.all(msg::ATTRIBUTE) {
        out.push(decode(inner, m.body, m.offset, object, &mut total)?);
    }
    if let Some(info) = header.first(msg::ATTRIBUTE_INFO) {
        let err = |s: Short| Error::malformed(object, "attribute info message", s.at);
        let mut c = info.cursor();
        c.skip(1).map_err(err)?;
        let flags = c.u8().map_err(err)?;
        if flags & 1 != 0 {
            c.skip(2).map_err(err)?;
        }
        let heap = c.addr(inner.sb.osize).map_err(err)?;
        let index = c.addr(inner.sb.osize).map_err(err)?;
        if heap != UNDEF {
            for (body, offset) in crate::fheap::dense_records(inner, heap, index, object, "attributes")? {
                out.push(decode(inner, &body, offset, object, &mut total)?);
            }
        }
    }
    if out.len() > inner.limits.max_objects {
        return Err(Error::limit(
            object,
            "attribute count",
            out.len() as u64,
            inner.limits.max_objects as u64,
            "max_objects",
        ));
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

fn decode(inner: &Inner, body: &[u8], offset: u64, object: &str, total: &mut u64) -> Result<(String, Attr)> {
    let err = |s: Short| Error::malformed(object, "attribute message", s.at);
    let mut c = Cursor::new(body, offset);
    let version = c.u8().map_err(err)?;
    let flags = c.u8().map_err(err)?;
    let name_size = usize::from(c.u16().map_err(err)?);
    let dt_size = usize::from(c.u16().map_err(err)?);
    let ds_size = usize::from(c.u16().map_err(err)?);
    let pad = |n: usize| if version == 1 { n.div_ceil(8) * 8 } else { n };
    match version {
        1 | 2 => {}
        3 => c.skip(1).map_err(err)?,
        _ => {
            return Err(Error::malformed(object, "attribute message version", offset));
        }
    }
    let name_bytes = c.bytes(pad(name_size)).map_err(err)?;
    let name_bytes = name_bytes.get(..name_size).unwrap_or(name_bytes);
    let name_bytes: Vec<u8> = name_bytes.iter().take_while(|&&b| b != 0).copied().collect();
    let name = String::from_utf8_lossy(&name_bytes).into_owned();
    let at = format!("{}@{}", object.trim_end_matches('/'), name);
    let at = if object == "/" { format!("/@{name}") } else { at };
    let dt_off = c.offset();
    let dt = c.bytes(pad(dt_size)).map_err(err)?;
    let ds_off = c.offset();
    let ds = c.bytes(pad(ds_size)).map_err(err)?;
    let data_off = c.offset();
    let data = c.rest();
    let space = if flags & 0x02 != 0 {
        return Ok((name, Attr { shape: Vec::new(), value: AttrValue::Unsupported("shared dataspace".into()) }));
    } else {
        Space::parse(ds, ds_off, &at, inner.sb.lsize)?
    };
    let shape = space.dims.clone();
    if flags & 0x01 != 0 {
        return Ok((name, Attr { shape, value: AttrValue::Unsupported("shared (committed) datatype".into()) }));
    }
    if space.null {
        return Ok((name, Attr { shape, value: AttrValue::Unsupported("null dataspace (empty attribute)".into()) }));
    }
    let raw = RawType::parse(dt, dt_off, &at)?;
    let nelem = space.nelem().ok_or_else(|| Error::SizeOverflow { path: at.clone(), shape: shape.clone() })?;
    let esize = match raw {
        RawType::VlenStr { .. } => 4 + inner.sb.osize + 4,
        _ => raw.size(),
    };
    let need = nelem
        .checked_mul(esize as u64)
        .ok_or_else(|| Error::SizeOverflow { path: at.clone(), shape: shape.clone() })?;
    let limit = inner.limits.max_attr_bytes;
    if need > limit {
        return Err(Error::limit(&at, "attribute size in bytes", need, limit, "max_attr_bytes"));
    }
    let data = data
        .get(..need as usize)
        .ok_or_else(|| Error::malformed(&at, "attribute data (shorter than its shape)", data_off))?;
    let n = nelem as usize;
    let value = match &raw {
        RawType::Int { size, signed, be } if matches!(size, 1 | 2 | 4 | 8) => {
            let words = data.chunks_exact(*size).map(|b| int_bits(b, *be));
            if *signed {
                let shift = 64 - 8 * *size as u32;
                AttrValue::Int(words.map(|w| ((w << shift) as i64) >> shift).collect())
            } else {
                AttrValue::UInt(words.collect())
            }
        }
        RawType::Enum { base, .. } => match **base {
            RawType::Int { size, signed, be } if matches!(size, 1 | 2 | 4 | 8) => {
                let words = data.chunks_exact(size).map(|b| int_bits(b, be));
                if signed {
                    let shift = 64 - 8 * size as u32;
                    AttrValue::Int(words.map(|w| ((w << shift) as i64) >> shift).collect())
                } else {
                    AttrValue::UInt(words.collect())
                }
            }
            _ => AttrValue::Unsupported("enum over a non-integer type".into()),
        },
        RawType::Float { size, be, exp, mant } => match (size, exp, mant) {
            (2, 5, 10) => AttrValue::Float(data.chunks_exact(2).map(|b| f16_to_f64(int_bits(b, *be) as u16)).collect()),
            (4, 8, 23) => AttrValue::Float(
                data.chunks_exact(4).map(|b| f64::from(f32::from_bits(int_bits(b, *be) as u32))).collect(),
            ),
            (8, 11, 52) => AttrValue::Float(data.chunks_exact(8).map(|b| f64::from_bits(int_bits(b, *be))).collect()),
            _ => AttrValue::Unsupported(format!("float ({size} bytes)")),
        },
        RawType::Str { size, pad, utf8 } => {
            if *size == 0 {
                AttrValue::Unsupported("zero-width string".into())
            } else {
                *total = total.saturating_add(need);
                AttrValue::Strings {
                    values: data.chunks_exact(*size).map(<[u8]>::to_vec).collect(),
                    encoding: StrEncoding { vlen: false, utf8: *utf8, fixed_len: Some(*size), pad: *pad },
                }
            }
        }
        RawType::VlenStr { pad, utf8 } => {
            let mut heaps = GlobalHeaps::default();
            let mut values = Vec::with_capacity(n);
            let mut payload: u64 = 0;
            for e in data.chunks_exact(esize) {
                let mut ec = Cursor::new(e, data_off);
                let len = ec.u32().map_err(err)?;
                let addr = ec.addr(inner.sb.osize).map_err(err)?;
                let index = ec.u32().map_err(err)?;
                payload = payload.saturating_add(u64::from(len));
                if payload > limit {
                    return Err(Error::limit(&at, "attribute size in bytes", payload, limit, "max_attr_bytes"));
                }
                if len == 0 {
                    values.push(Vec::new());
                    continue;
                }
                let obj = heaps.object(inner, addr, index, &at)?;
                let v = obj
                    .get(..len as usize)
                    .ok_or_else(|| Error::malformed(&at, "global heap object (shorter than its string)", data_off))?;
                values.push(v.to_vec());
            }
            AttrValue::Strings { values, encoding: StrEncoding { vlen: true, utf8: *utf8, fixed_len: None, pad: *pad } }
        }
        RawType::Opaque { .. } => AttrValue::Opaque(data.to_vec()),
        RawType::Int { size, .. } => AttrValue::Unsupported(format!("integer ({size} bytes)")),
        RawType::Other { what, .. } => AttrValue::Unsupported((*what).to_string()),
    };
    Ok((name, Attr { shape, value }))
}

fn int_bits(b: &[u8], be: bool) -> u64 {
    if be { b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)) } else { crate::cursor::le_uint(b) }
}

/// Exact conversion of an IEEE half to f64.
pub(crate) fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f64::from(h & 0x3ff);
    let v = match exp {
        0 => mant * 2f64.powi(-24),
        31 => {
            if mant == 0.0 {
                f64::INFINITY
            } else {
                // As numpy widens it: payload shifted into the top mantissa bits.
                return f64::from_bits(
                    0x7ff0_0000_0000_0000 | (u64::from(h & 0x3ff) << 42) | (u64::from(h >> 15) << 63),
                );
            }
        }
        _ => (1024.0 + mant) * 2f64.powi(exp - 25),
    };
    sign * v
}

/// Global heap collections read while decoding one attribute.
#[derive(Default)]
struct GlobalHeaps<'a> {
    collections: HashMap<u64, HashMap<u32, &'a [u8]>>,
}

impl<'a> GlobalHeaps<'a> {
    fn object(&mut self, inner: &'a Inner, addr: u64, index: u32, object: &str) -> Result<&'a [u8]> {
        let coll = match self.collections.entry(addr) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(read_collection(inner, addr, object)?),
        };
        coll.get(&index)
            .copied()
            .ok_or_else(|| Error::malformed(object, "global heap reference (no such object)", addr))
    }
}

fn read_collection<'a>(inner: &'a Inner, addr: u64, object: &str) -> Result<HashMap<u32, &'a [u8]>> {
    let l = inner.sb.lsize;
    let start = inner.abs(addr, object, "global heap collection")?;
    let err = |s: Short| Error::malformed(object, "global heap collection", s.at);
    let mut head = inner.cursor_at(addr, object, "global heap collection of")?;
    if head.bytes(4).map_err(err)? != b"GCOL" {
        return Err(Error::malformed(object, "global heap collection signature", start));
    }
    head.skip(4).map_err(err)?;
    let size = head.uint(l).map_err(err)?;
    let bytes = inner.slice(addr, size, object, "global heap collection of")?;
    let mut c = Cursor::new(bytes, start);
    c.skip(8 + l).map_err(err)?;
    let mut map = HashMap::new();
    while c.remaining() >= 8 + l {
        let index = c.u16().map_err(err)?;
        if index == 0 {
            break;
        }
        c.skip(6).map_err(err)?;
        let len = c.uint(l).map_err(err)?;
        let len = usize::try_from(len).map_err(|_| Error::malformed(object, "global heap object size", c.offset()))?;
        let data = c.bytes(len).map_err(err)?;
        if c.align(8).is_err() {
            break;
        }
        map.insert(u32::from(index), data);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_convert_exactly() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(f16_to_f64(0x7bff), 65504.0);
        assert!(f16_to_f64(0x7e00).is_nan());
        assert_eq!(f16_to_f64(0x7c00), f64::INFINITY);
    }

    #[test]
    fn padding_is_stripped_per_rule() {
        let enc = |pad| StrEncoding { vlen: false, utf8: false, fixed_len: Some(4), pad };
        let a = Attr {
            shape: vec![2],
            value: AttrValue::Strings {
                values: vec![b"ab\0\0".to_vec(), b"a\0b\0".to_vec()],
                encoding: enc(StrPad::NullPad),
            },
        };
        assert_eq!(a.as_strings().unwrap(), vec!["ab".to_string(), "a\0b".to_string()]);
        let a = Attr {
            shape: vec![1],
            value: AttrValue::Strings { values: vec![b"a\0b\0".to_vec()], encoding: enc(StrPad::NullTerm) },
        };
        assert_eq!(a.as_string().unwrap(), "a");
        let a = Attr { shape: vec![], value: AttrValue::Float(vec![]) };
        assert_eq!(a.as_strings(), None);
    }
}
