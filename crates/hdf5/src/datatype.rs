//! Datatype and dataspace messages, and the public [`DType`].
//!
//! h5py/Keras element types: IEEE f16/f32/f64, signed and unsigned integers,
//! booleans as h5py's enum over int8 (`FALSE=0, TRUE=1`), bfloat16 as a
//! 2-byte OPAQUE with the dataset attribute `dtype="bfloat16"` (Keras 3
//! `saving_lib.py`), and fixed or variable-length strings for attributes.

use crate::cursor::{Cursor, Short};
use crate::error::{Error, Result};

/// How a fixed-length string is padded to its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrPad {
    /// Terminated by a NUL (then anything); h5py's default for vlen strings.
    NullTerm,
    /// Padded with NULs; numpy `S` arrays.
    NullPad,
    /// Padded with spaces (Fortran style).
    SpacePad,
}

impl StrPad {
    /// The name h5dump and this crate's JSON dumps use: `nullterm`, `nullpad`, `spacepad`.
    pub fn name(self) -> &'static str {
        match self {
            StrPad::NullTerm => "nullterm",
            StrPad::NullPad => "nullpad",
            StrPad::SpacePad => "spacepad",
        }
    }
}

/// Element type of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE half precision.
    F16,
    /// bfloat16: a 2-byte OPAQUE type plus the dataset attribute `dtype="bfloat16"`.
    BF16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// h5py's boolean: an enum over int8 with `FALSE=0`, `TRUE=1`; one byte per element.
    Bool,
    /// Fixed or variable-length strings (not readable with `read_raw`).
    Str,
    /// Anything else, described (`compound`, `opaque (4 bytes)`, `float (24-bit)`...).
    Other(String),
}

impl DType {
    /// Bytes per element, `None` for strings and other types.
    pub fn size(&self) -> Option<usize> {
        Some(match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
            DType::Str | DType::Other(_) => return None,
        })
    }

    /// The numpy / Keras name: `float32`, `bfloat16`, `int64`, `bool`, `str`; for
    /// [`DType::Other`] its description.
    pub fn numpy_name(&self) -> &str {
        match self {
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::Bool => "bool",
            DType::Str => "str",
            DType::Other(s) => s,
        }
    }

    /// The inverse of [`numpy_name`](Self::numpy_name) for the named types.
    pub fn from_numpy_name(name: &str) -> Option<DType> {
        Some(match name {
            "float16" => DType::F16,
            "bfloat16" => DType::BF16,
            "float32" => DType::F32,
            "float64" => DType::F64,
            "int8" => DType::I8,
            "int16" => DType::I16,
            "int32" => DType::I32,
            "int64" => DType::I64,
            "uint8" => DType::U8,
            "uint16" => DType::U16,
            "uint32" => DType::U32,
            "uint64" => DType::U64,
            "bool" => DType::Bool,
            "str" => DType::Str,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.numpy_name())
    }
}

/// A decoded datatype message (the subset this crate interprets).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawType {
    Int { size: usize, signed: bool, be: bool },
    Float { size: usize, be: bool, exp: u8, mant: u8 },
    Str { size: usize, pad: StrPad, utf8: bool },
    VlenStr { pad: StrPad, utf8: bool },
    Opaque { size: usize },
    Enum { base: Box<RawType>, members: Vec<(Vec<u8>, Vec<u8>)> },
    Other { what: &'static str, size: usize },
}

const CLASS_NAMES: [&str; 12] = [
    "integer",
    "float",
    "time",
    "string",
    "bitfield",
    "opaque",
    "compound",
    "reference",
    "enum",
    "variable-length sequence",
    "array",
    "complex",
];

fn pad_of(bits: u8) -> StrPad {
    match bits & 0x0f {
        0 => StrPad::NullTerm,
        1 => StrPad::NullPad,
        _ => StrPad::SpacePad,
    }
}

/// Deepest nesting of datatypes (enum/vlen base types) accepted.
const MAX_NEST: u8 = 8;

impl RawType {
    pub fn parse(body: &[u8], offset: u64, object: &str) -> Result<RawType> {
        let mut c = Cursor::new(body, offset);
        RawType::parse_at(&mut c, object, 0)
    }

    fn parse_at(c: &mut Cursor<'_>, object: &str, nest: u8) -> Result<RawType> {
        let start = c.offset();
        let err = |s: Short| Error::malformed(object, "datatype message", s.at);
        if nest > MAX_NEST {
            return Err(Error::malformed(object, "datatype (nested too deep)", start));
        }
        let cv = c.u8().map_err(err)?;
        let class = cv & 0x0f;
        let version = cv >> 4;
        let b0 = c.u8().map_err(err)?;
        let b1 = c.u8().map_err(err)?;
        let _b2 = c.u8().map_err(err)?;
        let size = c.u32().map_err(err)? as usize;
        Ok(match class {
            0 => {
                c.skip(4).map_err(err)?;
                RawType::Int { size, signed: b0 & 0x08 != 0, be: b0 & 0x01 != 0 }
            }
            1 => {
                c.skip(4).map_err(err)?; // bit offset, precision
                c.skip(1).map_err(err)?; // exponent location
                let exp = c.u8().map_err(err)?;
                c.skip(1).map_err(err)?; // mantissa location
                let mant = c.u8().map_err(err)?;
                c.skip(4).map_err(err)?; // exponent bias
                if b0 & 0x40 != 0 {
                    RawType::Other { what: "VAX-order float", size }
                } else {
                    RawType::Float { size, be: b0 & 0x01 != 0, exp, mant }
                }
            }
            3 => RawType::Str { size, pad: pad_of(b0), utf8: (b0 >> 4) & 0x0f == 1 },
            5 => {
                let tag_len = usize::from(b0);
                c.skip(tag_len.div_ceil(8) * 8).map_err(err)?;
                RawType::Opaque { size }
            }
            8 => {
                let n = usize::from(b0) | (usize::from(b1) << 8);
                let base = RawType::parse_at(c, object, nest + 1)?;
                let base_size = base.size();
                let mut names = Vec::with_capacity(n.min(c.remaining()));
                for _ in 0..n {
                    let before = c.pos();
                    let name = c.cstr().map_err(err)?.to_vec();
                    if version < 3 {
                        let used = c.pos() - before;
                        c.skip(used.div_ceil(8) * 8 - used).map_err(err)?;
                    }
                    names.push(name);
                }
                let mut members = Vec::with_capacity(n.min(c.remaining()));
                for name in names {
                    members.push((name, c.bytes(base_size).map_err(err)?.to_vec()));
                }
                RawType::Enum { base: Box::new(base), members }
            }
            9 => {
                let is_string = b0 & 0x0f == 1;
                let base = RawType::parse_at(c, object, nest + 1)?;
                if is_string {
                    RawType::VlenStr { pad: pad_of(b0 >> 4), utf8: b1 & 0x0f == 1 }
                } else {
                    let _ = base;
                    RawType::Other { what: "variable-length sequence", size }
                }
            }
            other => RawType::Other {
                what: CLASS_NAMES.get(usize::from(other)).copied().unwrap_or("unknown datatype class"),
                size,
            },
        })
    }

    /// Bytes per element as stored.
    pub fn size(&self) -> usize {
        match self {
            RawType::Int { size, .. }
            | RawType::Float { size, .. }
            | RawType::Str { size, .. }
            | RawType::Opaque { size }
            | RawType::Other { size, .. } => *size,
            RawType::VlenStr { .. } => 0,
            RawType::Enum { base, .. } => base.size(),
        }
    }

    /// True for h5py's bool: enum over 1-byte integers with exactly FALSE=0, TRUE=1.
    pub fn is_bool(&self) -> bool {
        match self {
            RawType::Enum { base, members } => {
                matches!(**base, RawType::Int { size: 1, .. })
                    && members.len() == 2
                    && members.iter().any(|(n, v)| n == b"FALSE" && v == &[0])
                    && members.iter().any(|(n, v)| n == b"TRUE" && v == &[1])
            }
            _ => false,
        }
    }

    /// Whether element bytes are big-endian (and need swapping to little-endian).
    pub fn big_endian(&self) -> bool {
        match self {
            RawType::Int { be, .. } | RawType::Float { be, .. } => *be,
            RawType::Enum { base, .. } => base.big_endian(),
            _ => false,
        }
    }

    /// The public dtype; `bf16_attr` says whether the dataset has `dtype="bfloat16"`.
    pub fn dtype(&self, bf16_attr: bool) -> DType {
        match *self {
            RawType::Int { size, signed, .. } => match (size, signed) {
                (1, true) => DType::I8,
                (2, true) => DType::I16,
                (4, true) => DType::I32,
                (8, true) => DType::I64,
                (1, false) => DType::U8,
                (2, false) => DType::U16,
                (4, false) => DType::U32,
                (8, false) => DType::U64,
                _ => DType::Other(format!("integer ({size} bytes)")),
            },
            RawType::Float { size, exp, mant, .. } => match (size, exp, mant) {
                (2, 5, 10) => DType::F16,
                (4, 8, 23) => DType::F32,
                (8, 11, 52) => DType::F64,
                _ => DType::Other(format!("float ({size} bytes, {exp}-bit exponent, {mant}-bit mantissa)")),
            },
            RawType::Opaque { size: 2 } if bf16_attr => DType::BF16,
            RawType::Opaque { size } => DType::Other(format!("opaque ({size} bytes)")),
            RawType::Str { .. } | RawType::VlenStr { .. } => DType::Str,
            RawType::Enum { .. } if self.is_bool() => DType::Bool,
            RawType::Enum { .. } => DType::Other("enum".to_string()),
            RawType::Other { what, .. } => DType::Other(what.to_string()),
        }
    }
}

/// A decoded dataspace message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Space {
    /// Empty for a scalar (and for a null dataspace).
    pub dims: Vec<u64>,
    /// HDF5 "null" dataspace: no elements at all (h5py `Empty`).
    pub null: bool,
}

/// Highest rank HDF5 allows.
const MAX_RANK: u8 = 32;

impl Space {
    pub fn parse(body: &[u8], offset: u64, object: &str, lsize: usize) -> Result<Space> {
        let err = |s: Short| Error::malformed(object, "dataspace message", s.at);
        let mut c = Cursor::new(body, offset);
        let version = c.u8().map_err(err)?;
        let rank = c.u8().map_err(err)?;
        let _flags = c.u8().map_err(err)?;
        if rank > MAX_RANK {
            return Err(Error::malformed(object, "dataspace rank", offset));
        }
        let null = match version {
            1 => {
                c.skip(5).map_err(err)?;
                false
            }
            2 => c.u8().map_err(err)? == 2,
            _ => return Err(Error::malformed(object, "dataspace version", offset)),
        };
        let mut dims = Vec::with_capacity(usize::from(rank));
        for _ in 0..rank {
            dims.push(c.uint(lsize).map_err(err)?);
        }
        if null {
            dims.clear();
        }
        Ok(Space { dims, null })
    }

    /// Number of elements (`None` on overflow); 0 for a null dataspace.
    pub fn nelem(&self) -> Option<u64> {
        if self.null {
            return Some(0);
        }
        self.dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_sizes_and_names_round_trip() {
        for d in [
            DType::F16,
            DType::BF16,
            DType::F32,
            DType::F64,
            DType::I8,
            DType::I16,
            DType::I32,
            DType::I64,
            DType::U8,
            DType::U16,
            DType::U32,
            DType::U64,
            DType::Bool,
            DType::Str,
        ] {
            assert_eq!(DType::from_numpy_name(d.numpy_name()), Some(d.clone()));
        }
        assert_eq!(DType::BF16.size(), Some(2));
        assert_eq!(DType::Str.size(), None);
    }

    #[test]
    fn overflowing_shape_has_no_element_count() {
        let s = Space { dims: vec![u64::MAX, 2], null: false };
        assert_eq!(s.nelem(), None);
    }
}
