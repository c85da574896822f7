//! NumPy `.npy` arrays and `.npz` archives: read safely, write `.npz` atomically.
//!
//! What `strata predict` reads its inputs from and writes its outputs to. Readers return
//! [`NpyArray`]s (name, dtype, shape, little-endian C-order bytes); nothing here depends on the
//! tensor engine (house style §1: format describes data).
//!
//! **Format** (numpy `numpy/lib/format.py`): the magic `\x93NUMPY`, a major and minor version
//! byte (1.0, 2.0 or 3.0), the header length (`u16` little-endian in 1.0, `u32` in 2.0 and 3.0),
//! then the header: a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (3,
//! 8), }` padded with spaces and a newline (latin-1 in 1.0 and 2.0, UTF-8 in 3.0), then the raw
//! data. A `.npz` is a zip of such files, one per array, named `<name>.npy` (`np.savez` stores
//! them, `np.savez_compressed` deflates them).
//!
//! **Why by hand, not `npyz`.** `npyz` 0.9 (already measured for this workspace) parses the
//! header with `py_literal`, a general recursive Python-literal grammar, and computes the element
//! count as an unchecked `shape.iter().product()` (`read.rs`), which overflows on a lying shape
//! (a panic in debug builds, a wrapped count in release); its `.npz` support brings a second,
//! older `zip` crate. The header numpy writes is a fixed three-key dict, so the small parser here
//! reads exactly that subset with a bounded nesting depth, checks every size with `checked_mul`,
//! and reads `.npz` through the hardened zip reader of [`crate::archive`] (member names, duplicate
//! members, zip bombs, CRC, [`Limits`]).
//!
//! **Guards**, each mirroring or tightening numpy's `_read_array_header` / `np.load`:
//!
//! | guard | numpy |
//! |---|---|
//! | header at most [`MAX_HEADER_BYTES`] (10 000) bytes | `max_header_size=10000` unless `allow_pickle` |
//! | versions 1.0, 2.0, 3.0 only | same (`"we only support format version (1,0), (2,0), and (3,0)"`) |
//! | exactly the keys `descr`, `fortran_order`, `shape`; a duplicate key is refused | same keys; a duplicate key silently keeps the last |
//! | `shape` a tuple of non-negative integers, element count by `checked_mul`, at most `Limits::max_tensor_elements` | a tuple of ints; the product is unchecked |
//! | data exactly `elements x itemsize` bytes, checked before the data is copied | `np.load` of a file refuses short data and ignores extra bytes; we refuse both |
//! | object, string, complex, datetime and structured dtypes refused by name | object arrays need `allow_pickle=True` (a pickle runs code); never read here |
//! | `.npz`: every member must be a `.npy` (`<name>.npy`); directory entries are skipped | other members load as raw bytes |
//!
//! Big-endian arrays (`>f4`) are byte-swapped to little-endian and Fortran-order arrays are
//! transposed to C order on read, so every [`NpyArray`] holds little-endian C-order bytes.
//!
//! **Writing.** [`write_npz`] writes what `np.savez` writes: format 1.0 headers padded to 64 bytes
//! (2.0 only when a header does not fit 65 535 bytes), members stored, in the order given; unlike
//! numpy, every member has the fixed timestamp 1980-01-01 so that the same arrays give the same
//! bytes, and the file is replaced atomically ([`crate::atomic`]).

use std::fmt;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

use crate::archive::{ArchiveError, KerasArchive, NameProblem, check_member_name};
use crate::atomic::{AtomicError, write_atomic};
use crate::detect::{self, Detected};
use crate::error::Location;
use crate::limits::{Limits, human_bytes};

/// The magic bytes that open every `.npy` file.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Longest header read, in bytes: numpy's `_MAX_HEADER_SIZE` (`np.load(max_header_size=10000)`).
pub const MAX_HEADER_BYTES: usize = 10_000;

/// Deepest nesting of tuples, lists and dicts accepted in a header (numpy writes depth 2).
const MAX_HEADER_DEPTH: usize = 16;

/// Header alignment numpy uses (`ARRAY_ALIGN`).
const ALIGN: usize = 64;

/// The element types read (numpy names in [`NpyDType::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NpyDType {
    /// `float16` (`f2`).
    F16,
    /// `float32` (`f4`).
    F32,
    /// `float64` (`f8`).
    F64,
    /// `int8` (`i1`).
    I8,
    /// `int16` (`i2`).
    I16,
    /// `int32` (`i4`).
    I32,
    /// `int64` (`i8`).
    I64,
    /// `uint8` (`u1`).
    U8,
    /// `uint16` (`u2`).
    U16,
    /// `uint32` (`u4`).
    U32,
    /// `uint64` (`u8`).
    U64,
    /// `bool` (`b1`, one byte, 0 or 1).
    Bool,
}

impl NpyDType {
    /// Every type, in a fixed order.
    pub const ALL: [NpyDType; 12] = [
        NpyDType::F16,
        NpyDType::F32,
        NpyDType::F64,
        NpyDType::I8,
        NpyDType::I16,
        NpyDType::I32,
        NpyDType::I64,
        NpyDType::U8,
        NpyDType::U16,
        NpyDType::U32,
        NpyDType::U64,
        NpyDType::Bool,
    ];

    /// Bytes per element.
    pub fn itemsize(self) -> usize {
        match self {
            NpyDType::I8 | NpyDType::U8 | NpyDType::Bool => 1,
            NpyDType::F16 | NpyDType::I16 | NpyDType::U16 => 2,
            NpyDType::F32 | NpyDType::I32 | NpyDType::U32 => 4,
            NpyDType::F64 | NpyDType::I64 | NpyDType::U64 => 8,
        }
    }

    /// The numpy name (`float32`).
    pub fn name(self) -> &'static str {
        match self {
            NpyDType::F16 => "float16",
            NpyDType::F32 => "float32",
            NpyDType::F64 => "float64",
            NpyDType::I8 => "int8",
            NpyDType::I16 => "int16",
            NpyDType::I32 => "int32",
            NpyDType::I64 => "int64",
            NpyDType::U8 => "uint8",
            NpyDType::U16 => "uint16",
            NpyDType::U32 => "uint32",
            NpyDType::U64 => "uint64",
            NpyDType::Bool => "bool",
        }
    }

    /// The little-endian `descr` numpy writes for this type (`<f4`, `|b1`).
    pub fn descr(self) -> &'static str {
        match self {
            NpyDType::F16 => "<f2",
            NpyDType::F32 => "<f4",
            NpyDType::F64 => "<f8",
            NpyDType::I8 => "|i1",
            NpyDType::I16 => "<i2",
            NpyDType::I32 => "<i4",
            NpyDType::I64 => "<i8",
            NpyDType::U8 => "|u1",
            NpyDType::U16 => "<u2",
            NpyDType::U32 => "<u4",
            NpyDType::U64 => "<u8",
            NpyDType::Bool => "|b1",
        }
    }

    /// Parses a `descr` string: the type and whether it is big-endian. `None` for anything else.
    fn parse(descr: &str) -> Option<(NpyDType, bool)> {
        let (order, code) = descr.split_at_checked(1)?;
        let t = match code {
            "f2" | "e" => NpyDType::F16,
            "f4" | "f" => NpyDType::F32,
            "f8" | "d" => NpyDType::F64,
            "i1" | "b" => NpyDType::I8,
            "i2" | "h" => NpyDType::I16,
            "i4" => NpyDType::I32,
            "i8" | "q" => NpyDType::I64,
            "u1" | "B" => NpyDType::U8,
            "u2" | "H" => NpyDType::U16,
            "u4" => NpyDType::U32,
            "u8" | "Q" => NpyDType::U64,
            "b1" | "?" => NpyDType::Bool,
            _ => return None,
        };
        let big = match (order, t.itemsize()) {
            ("<", _) => false,
            (">", _) => true,
            ("|", 1) => false,
            _ => return None,
        };
        Some((t, big))
    }
}

impl fmt::Display for NpyDType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One array: little-endian bytes in C (row-major) order, exactly `elements x itemsize` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyArray {
    /// The array's name: the member name without `.npy` in a `.npz`, the file stem for a `.npy`.
    pub name: String,
    /// The element type.
    pub dtype: NpyDType,
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// The elements, little-endian, C order.
    pub data: Vec<u8>,
}

impl NpyArray {
    /// A `float32` array. Errors when `values` does not have `shape`'s element count.
    pub fn from_f32(name: impl Into<String>, shape: &[usize], values: &[f32]) -> Result<NpyArray, NpyError> {
        let name = name.into();
        let n = element_count(shape).ok_or_else(|| NpyError::ShapeOverflow {
            location: Location::default().with_member(format!("{name}.npy")),
            shape: shape.to_vec(),
        })?;
        if n != values.len() {
            return Err(NpyError::DataLength {
                location: Location::default().with_member(format!("{name}.npy")),
                dtype: NpyDType::F32,
                shape: shape.to_vec(),
                expected: (n as u64).saturating_mul(4),
                got: (values.len() as u64).saturating_mul(4),
            });
        }
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok(NpyArray { name, dtype: NpyDType::F32, shape: shape.to_vec(), data })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.itemsize()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements as `f32`: floats rounded to nearest, integers converted (exact up to 2^24),
    /// booleans as 0 and 1.
    pub fn to_f32(&self) -> Vec<f32> {
        let d = &self.data;
        match self.dtype {
            NpyDType::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            NpyDType::F16 => d.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
            NpyDType::F64 => d.chunks_exact(8).map(|c| f64::from_le_bytes(arr8(c)) as f32).collect(),
            NpyDType::I8 => d.iter().map(|&b| f32::from(b as i8)).collect(),
            NpyDType::U8 => d.iter().map(|&b| f32::from(b)).collect(),
            NpyDType::Bool => d.iter().map(|&b| if b != 0 { 1.0 } else { 0.0 }).collect(),
            NpyDType::I16 => d.chunks_exact(2).map(|c| f32::from(i16::from_le_bytes([c[0], c[1]]))).collect(),
            NpyDType::U16 => d.chunks_exact(2).map(|c| f32::from(u16::from_le_bytes([c[0], c[1]]))).collect(),
            NpyDType::I32 => d.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(),
            NpyDType::U32 => d.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(),
            NpyDType::I64 => d.chunks_exact(8).map(|c| i64::from_le_bytes(arr8(c)) as f32).collect(),
            NpyDType::U64 => d.chunks_exact(8).map(|c| u64::from_le_bytes(arr8(c)) as f32).collect(),
        }
    }
}

fn arr8(c: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(c);
    a
}

/// IEEE half to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // subnormal: value m * 2^-24
            let v = m as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// A shape as Python prints a tuple: `()`, `(3,)`, `(3, 8)`.
pub fn format_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".into(),
        [d] => format!("({d},)"),
        _ => format!("({})", shape.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    }
}

fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Why an array could not be read or written. Every message names the file (and member).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NpyError {
    /// Reading or opening the file failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file is neither a `.npy` nor a `.npz`.
    #[error("{location}: not a .npy or .npz file (it reads as {found}); save the arrays with `np.save` or `np.savez`")]
    NotArrays {
        /// Where.
        location: Location,
        /// What the bytes are instead.
        found: &'static str,
    },
    /// The file is larger than `Limits::max_file_bytes`.
    #[error(
        "{location}: the file is {} but the limit is {}; raise it with `Limits::with_max_file_bytes` if the file is trusted",
        human_bytes(*size),
        human_bytes(*limit)
    )]
    FileTooLarge {
        /// Where.
        location: Location,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes end inside the magic, version or header.
    #[error(
        "{location}: the .npy header is cut short ({got} bytes, {needed} needed); the file was truncated; save it again"
    )]
    TruncatedHeader {
        /// Where.
        location: Location,
        /// Bytes present.
        got: u64,
        /// Bytes the header needs.
        needed: u64,
    },
    /// The magic bytes are wrong.
    #[error(
        "{location}: not a .npy array (it does not start with \\x93NUMPY); the member is not what `np.savez` writes"
    )]
    BadMagic {
        /// Where.
        location: Location,
    },
    /// A format version other than 1.0, 2.0 and 3.0.
    #[error(
        "{location}: .npy format version {major}.{minor} is not one strata reads (1.0, 2.0, 3.0); save it with numpy"
    )]
    Version {
        /// Where.
        location: Location,
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// The header is longer than [`MAX_HEADER_BYTES`].
    #[error(
        "{location}: the .npy header is {len} bytes, over the limit of {limit} bytes (numpy refuses such headers too); the file is damaged or crafted"
    )]
    HeaderTooLong {
        /// Where.
        location: Location,
        /// Declared header length.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// The header is not the dict numpy writes.
    #[error("{location}: bad .npy header: {problem}; the file is damaged or was not written by numpy")]
    Header {
        /// Where.
        location: Location,
        /// What is wrong.
        problem: String,
    },
    /// A dtype outside [`NpyDType`].
    #[error(
        "{location}: dtype `{descr}` is not one strata reads{}; convert the array first, e.g. `x.astype(np.float32)`",
        dtype_hint(descr)
    )]
    UnsupportedDType {
        /// Where.
        location: Location,
        /// The `descr` as written.
        descr: String,
    },
    /// The element count overflows, or exceeds `Limits::max_tensor_elements`.
    #[error(
        "{location}: shape {} has more elements than a machine word holds; the header lies about the shape",
        format_shape(shape)
    )]
    ShapeOverflow {
        /// Where.
        location: Location,
        /// The declared shape.
        shape: Vec<usize>,
    },
    /// More elements than `Limits::max_tensor_elements`.
    #[error(
        "{location}: shape {} has {elements} elements but the limit is {limit}; raise it with `Limits::with_max_tensor_elements` if the file is trusted",
        format_shape(shape)
    )]
    TooManyElements {
        /// Where.
        location: Location,
        /// The declared shape.
        shape: Vec<usize>,
        /// Its element count.
        elements: u64,
        /// The limit.
        limit: u64,
    },
    /// The data does not have exactly `elements x itemsize` bytes.
    #[error(
        "{location}: shape {} of {dtype} needs {expected} data bytes but {got} follow the header; {}",
        format_shape(shape),
        if got < expected { "the file is truncated or its header lies about the shape; save it again" } else { "extra bytes follow the array; the header lies about the shape or the file was spliced" }
    )]
    DataLength {
        /// Where.
        location: Location,
        /// The element type.
        dtype: NpyDType,
        /// The declared shape.
        shape: Vec<usize>,
        /// Bytes the shape needs.
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// The zip layer of a `.npz` failed (see [`crate::archive`]).
    #[error("{location}: {source}")]
    Archive {
        /// Where.
        location: Location,
        /// The zip problem.
        #[source]
        source: ArchiveError,
    },
    /// A `.npz` member that is not a `.npy` file.
    #[error(
        "{location}: the .npz member is not a .npy array (its name does not end in `.npy`); a .npz holds only arrays"
    )]
    NotNpyMember {
        /// Where (the member).
        location: Location,
    },
    /// Two arrays with one name (writing).
    #[error("two arrays are named `{name}`; a .npz holds one array per name")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A name that cannot be a zip member (writing).
    #[error("array name `{name}` cannot be a .npz member name: it {}", problem_text(*problem))]
    BadName {
        /// The name.
        name: String,
        /// What is wrong.
        problem: NameProblem,
    },
    /// Writing the zip failed.
    #[error("writing the .npz failed: {source}")]
    Write {
        /// The zip error.
        #[source]
        source: zip::result::ZipError,
    },
    /// The atomic save failed (the target was left untouched).
    #[error("{source}")]
    Save {
        /// What failed.
        #[source]
        source: AtomicError,
    },
}

fn problem_text(p: NameProblem) -> &'static str {
    match p {
        NameProblem::Empty => "is empty",
        NameProblem::Absolute => "is an absolute path",
        NameProblem::DriveLetter => "starts with a drive letter",
        NameProblem::Backslash => "contains a backslash",
        NameProblem::ParentDir => "has a `..` component",
        NameProblem::DotOrEmptyComponent => "has a `.` or empty path component",
        NameProblem::Nul => "contains a NUL byte",
    }
}

fn dtype_hint(descr: &str) -> &'static str {
    let code = descr.trim_start_matches(['<', '>', '|', '=']);
    match code.chars().next() {
        Some('O') => " (an object array is a pickle, which strata never loads)",
        Some('U' | 'S' | 'a') => " (a string array)",
        Some('c') => " (complex numbers)",
        Some('M' | 'm') => " (dates or time spans)",
        Some('V') => " (raw or structured records)",
        _ if descr.starts_with('=') => " (native byte order `=` is ambiguous in a file; numpy writes `<` or `>`)",
        _ => " (it reads float16/32/64, int8/16/32/64, uint8/16/32/64 and bool)",
    }
}

// ---------------------------------------------------------------------------------------------
// Header: the Python literal subset numpy writes.

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = |f: &mut fmt::Formatter<'_>, items: &[Lit]| -> fmt::Result {
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{x}")?;
            }
            Ok(())
        };
        match self {
            Lit::Str(s) => write!(f, "'{s}'"),
            Lit::Int(i) => write!(f, "{i}"),
            Lit::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            Lit::None => f.write_str("None"),
            Lit::Tuple(items) => {
                f.write_str("(")?;
                seq(f, items)?;
                f.write_str(if items.len() == 1 { ",)" } else { ")" })
            }
            Lit::List(items) => {
                f.write_str("[")?;
                seq(f, items)?;
                f.write_str("]")
            }
            Lit::Dict(_) => f.write_str("{...}"),
        }
    }
}

struct LitParser<'a> {
    s: &'a [char],
    pos: usize,
}

impl LitParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.pos).is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.ws();
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at character {}", self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Lit, String> {
        if depth > MAX_HEADER_DEPTH {
            return self.err(&format!("nesting deeper than {MAX_HEADER_DEPTH}"));
        }
        match self.peek() {
            None => self.err("unexpected end"),
            Some('{') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat('}') {
                        return Ok(Lit::Dict(items));
                    }
                    let k = self.value(depth + 1)?;
                    if !self.eat(':') {
                        return self.err("expected `:`");
                    }
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                    if !self.eat(',') {
                        if self.eat('}') {
                            return Ok(Lit::Dict(items));
                        }
                        return self.err("expected `,` or `}`");
                    }
                }
            }
            Some(open @ ('(' | '[')) => {
                self.pos += 1;
                let close = if open == '(' { ')' } else { ']' };
                let mut items = Vec::new();
                let mut trailing_comma = false;
                loop {
                    if self.eat(close) {
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    trailing_comma = self.eat(',');
                    if !trailing_comma {
                        if self.eat(close) {
                            break;
                        }
                        return self.err(&format!("expected `,` or `{close}`"));
                    }
                }
                Ok(match (open, items.len(), trailing_comma) {
                    // `(x)` is a parenthesised value, not a tuple
                    ('(', 1, false) => items.pop().unwrap_or(Lit::None),
                    ('(', _, _) => Lit::Tuple(items),
                    _ => Lit::List(items),
                })
            }
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let mut out = String::new();
                loop {
                    let Some(&c) = self.s.get(self.pos) else {
                        return self.err("unterminated string");
                    };
                    self.pos += 1;
                    if c == q {
                        return Ok(Lit::Str(out));
                    }
                    if c == '\\' {
                        let Some(&e) = self.s.get(self.pos) else {
                            return self.err("unterminated string");
                        };
                        self.pos += 1;
                        out.push(e);
                    } else {
                        out.push(c);
                    }
                }
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let neg = self.eat('-');
                self.ws();
                let start = self.pos;
                let mut v: i128 = 0;
                while let Some(d) = self.s.get(self.pos).and_then(|c| c.to_digit(10)) {
                    v = match v.checked_mul(10).and_then(|v| v.checked_add(i128::from(d))) {
                        Some(v) if v <= i128::from(u64::MAX) => v,
                        _ => return self.err("integer too large"),
                    };
                    self.pos += 1;
                }
                if self.pos == start {
                    return self.err("expected a digit");
                }
                // Python 2 longs (`3L`), which numpy's reader also accepts
                if matches!(self.s.get(self.pos), Some('L' | 'l')) {
                    self.pos += 1;
                }
                Ok(Lit::Int(if neg { -v } else { v }))
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_') {
                    self.pos += 1;
                }
                let word: String = self.s.get(start..self.pos).unwrap_or(&[]).iter().collect();
                match word.as_str() {
                    "True" => Ok(Lit::Bool(true)),
                    "False" => Ok(Lit::Bool(false)),
                    "None" => Ok(Lit::None),
                    _ => Err(format!("unexpected name `{word}` at character {start} (only literals are allowed)")),
                }
            }
            Some(c) => self.err(&format!("unexpected `{}`", c.escape_default())),
        }
    }
}

/// What the header declares.
struct Header {
    descr: Lit,
    fortran: bool,
    shape: Vec<usize>,
}

fn parse_header(text: &str) -> Result<Header, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = LitParser { s: &chars, pos: 0 };
    let lit = p.value(0)?;
    if p.peek().is_some() {
        return p.err("unexpected text after the dict");
    }
    let Lit::Dict(items) = lit else {
        return Err(format!("the header is {lit}, not a dict"));
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (k, v) in items {
        let Lit::Str(k) = k else {
            return Err(format!("key {k} is not a string"));
        };
        let slot = match k.as_str() {
            "descr" => &mut descr,
            "fortran_order" => &mut fortran,
            "shape" => &mut shape,
            other => return Err(format!("unexpected key `{other}` (numpy writes `descr`, `fortran_order`, `shape`)")),
        };
        if slot.replace(v).is_some() {
            return Err(format!("key `{k}` appears twice"));
        }
    }
    let missing = |k: &str| format!("key `{k}` is missing (numpy writes `descr`, `fortran_order`, `shape`)");
    let descr = descr.ok_or_else(|| missing("descr"))?;
    let fortran = match fortran.ok_or_else(|| missing("fortran_order"))? {
        Lit::Bool(b) => b,
        other => return Err(format!("`fortran_order` is {other}, not True or False")),
    };
    let shape = match shape.ok_or_else(|| missing("shape"))? {
        Lit::Tuple(dims) => dims
            .iter()
            .map(|d| match d {
                Lit::Int(i) => usize::try_from(*i).map_err(|_| format!("`shape` has dimension {i}")),
                other => Err(format!("`shape` has {other}, not an integer")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => return Err(format!("`shape` is {other}, not a tuple of integers")),
    };
    Ok(Header { descr, fortran, shape })
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// Parses one `.npy` file held in `bytes`. `name` names the array; `location` is quoted in errors.
pub fn parse_npy(bytes: Vec<u8>, name: &str, location: &Location, limits: &Limits) -> Result<NpyArray, NpyError> {
    let mut bytes = bytes;
    let loc = || location.clone();
    let short = |needed: u64| NpyError::TruncatedHeader { location: loc(), got: bytes.len() as u64, needed };
    if bytes.len() < 8 {
        let n = bytes.len().min(MAGIC.len());
        if bytes.get(..n) != MAGIC.get(..n) {
            return Err(NpyError::BadMagic { location: loc() });
        }
        return Err(short(10));
    }
    if bytes.get(..6) != Some(&MAGIC[..]) {
        return Err(NpyError::BadMagic { location: loc() });
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, utf8) = match (major, minor) {
        (1, 0) => (2usize, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => return Err(NpyError::Version { location: loc(), major, minor }),
    };
    let prefix = 8 + len_bytes;
    let header_len: u64 = match bytes.get(8..prefix) {
        Some([a, b]) => u64::from(u16::from_le_bytes([*a, *b])),
        Some([a, b, c, d]) => u64::from(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => return Err(short(prefix as u64)),
    };
    if header_len > MAX_HEADER_BYTES as u64 {
        return Err(NpyError::HeaderTooLong { location: loc(), len: header_len, limit: MAX_HEADER_BYTES });
    }
    // header_len <= 10 000, so this cannot overflow
    let data_start = prefix + header_len as usize;
    let Some(raw) = bytes.get(prefix..data_start) else {
        return Err(short(data_start as u64));
    };
    let text: String = if utf8 {
        std::str::from_utf8(raw)
            .map_err(|e| NpyError::Header {
                location: loc(),
                problem: format!("version 3.0 header is not UTF-8 ({e})"),
            })?
            .to_string()
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let header = parse_header(&text).map_err(|problem| NpyError::Header { location: loc(), problem })?;
    let descr = match &header.descr {
        Lit::Str(s) => s.clone(),
        Lit::List(_) => {
            return Err(NpyError::UnsupportedDType {
                location: loc(),
                descr: format!("{} (a structured dtype)", header.descr),
            });
        }
        other => return Err(NpyError::UnsupportedDType { location: loc(), descr: other.to_string() }),
    };
    let (dtype, big) =
        NpyDType::parse(&descr).ok_or_else(|| NpyError::UnsupportedDType { location: loc(), descr: descr.clone() })?;
    let shape = header.shape;
    let elements =
        element_count(&shape).ok_or_else(|| NpyError::ShapeOverflow { location: loc(), shape: shape.clone() })?;
    if elements as u64 > limits.max_tensor_elements {
        return Err(NpyError::TooManyElements {
            location: loc(),
            shape,
            elements: elements as u64,
            limit: limits.max_tensor_elements,
        });
    }
    let expected = elements
        .checked_mul(dtype.itemsize())
        .ok_or_else(|| NpyError::ShapeOverflow { location: loc(), shape: shape.clone() })?;
    let got = bytes.len() - data_start;
    if got != expected {
        return Err(NpyError::DataLength { location: loc(), dtype, shape, expected: expected as u64, got: got as u64 });
    }
    // the data is exactly as long as the shape says: drop the header in place, no second buffer
    bytes.drain(..data_start);
    if big && dtype.itemsize() > 1 {
        for c in bytes.chunks_exact_mut(dtype.itemsize()) {
            c.reverse();
        }
    }
    if header.fortran && shape.len() > 1 && elements > 0 {
        bytes = fortran_to_c(&bytes, &shape, dtype.itemsize());
    }
    Ok(NpyArray { name: name.to_string(), dtype, shape, data: bytes })
}

/// Reorders Fortran-order (column-major) elements into C order. `data` has exactly
/// `product(shape) * item` bytes.
fn fortran_to_c(data: &[u8], shape: &[usize], item: usize) -> Vec<u8> {
    // Fortran strides, in elements: 1, d0, d0*d1, ... (all <= the element count, no overflow)
    let mut fstride = Vec::with_capacity(shape.len());
    let mut acc = 1usize;
    for &d in shape {
        fstride.push(acc);
        acc = acc.saturating_mul(d);
    }
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; shape.len()];
    loop {
        let src: usize = idx.iter().zip(&fstride).map(|(i, s)| i * s).sum();
        let start = src * item;
        out.extend_from_slice(data.get(start..start + item).unwrap_or(&[]));
        // advance the C-order index (last axis fastest)
        let mut axis = shape.len();
        loop {
            if axis == 0 {
                return out;
            }
            axis -= 1;
            idx[axis] += 1;
            if idx[axis] < shape[axis] {
                break;
            }
            idx[axis] = 0;
        }
    }
}

fn read_file(path: &Path, limits: &Limits) -> Result<Vec<u8>, NpyError> {
    let io_err = |source| NpyError::Io { path: path.to_path_buf(), source };
    let mut f = std::fs::File::open(path).map_err(io_err)?;
    let len = f.metadata().map_err(io_err)?.len();
    if len > limits.max_file_bytes {
        return Err(NpyError::FileTooLarge { location: Location::file(path), size: len, limit: limits.max_file_bytes });
    }
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    Read::by_ref(&mut f).take(limits.max_file_bytes).read_to_end(&mut out).map_err(io_err)?;
    Ok(out)
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "arr_0".into())
}

/// Reads a `.npy` file; the array is named after the file stem.
pub fn read_npy(path: &Path, limits: &Limits) -> Result<NpyArray, NpyError> {
    let bytes = read_file(path, limits)?;
    parse_npy(bytes, &file_stem(path), &Location::file(path), limits)
}

fn read_members(archive: &KerasArchive, location: &Location, limits: &Limits) -> Result<Vec<NpyArray>, NpyError> {
    let mut out = Vec::new();
    for m in archive.members().iter().filter(|m| !m.is_dir) {
        let at = location.clone().with_member(m.name.clone());
        let Some(name) = m.name.strip_suffix(".npy") else {
            return Err(NpyError::NotNpyMember { location: at });
        };
        let bytes =
            archive.read_member(&m.name).map_err(|source| NpyError::Archive { location: at.clone(), source })?;
        out.push(parse_npy(bytes.into_owned(), name, &at, limits)?);
    }
    Ok(out)
}

/// Reads every array of a `.npz` file, in archive order.
pub fn read_npz(path: &Path, limits: &Limits) -> Result<Vec<NpyArray>, NpyError> {
    let location = Location::file(path);
    let meta = std::fs::metadata(path).map_err(|source| NpyError::Io { path: path.to_path_buf(), source })?;
    if meta.is_dir() {
        return Err(NpyError::NotArrays { location, found: "a directory" });
    }
    if meta.len() > limits.max_file_bytes {
        return Err(NpyError::FileTooLarge { location, size: meta.len(), limit: limits.max_file_bytes });
    }
    let archive =
        KerasArchive::open(path, limits).map_err(|source| NpyError::Archive { location: location.clone(), source })?;
    read_members(&archive, &location, limits)
}

/// Reads every array of a `.npz` held in memory, in archive order; `location` is quoted in errors.
pub fn parse_npz(bytes: Vec<u8>, location: &Location, limits: &Limits) -> Result<Vec<NpyArray>, NpyError> {
    let archive = KerasArchive::from_bytes(bytes, limits)
        .map_err(|source| NpyError::Archive { location: location.clone(), source })?;
    read_members(&archive, location, limits)
}

/// Which kind of array file [`read_arrays`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayFile {
    /// One `.npy` array.
    Npy,
    /// A `.npz` archive of arrays.
    Npz,
}

/// Reads a `.npy` (one array, named after the file stem) or a `.npz` (its arrays in archive
/// order), deciding from the magic bytes, not the extension.
pub fn read_arrays(path: &Path, limits: &Limits) -> Result<(ArrayFile, Vec<NpyArray>), NpyError> {
    let io_err = |source| NpyError::Io { path: path.to_path_buf(), source };
    if std::fs::metadata(path).map_err(io_err)?.is_dir() {
        return Err(NpyError::NotArrays { location: Location::file(path), found: "a directory" });
    }
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path).map_err(io_err)?.take(64).read_to_end(&mut head).map_err(io_err)?;
    if head.starts_with(MAGIC) {
        return Ok((ArrayFile::Npy, vec![read_npy(path, limits)?]));
    }
    match detect::detect(&head) {
        Detected::Zip | Detected::EmptyZip | Detected::TruncatedZip { .. } => {
            Ok((ArrayFile::Npz, read_npz(path, limits)?))
        }
        other => Err(NpyError::NotArrays { location: Location::file(path), found: other.name() }),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// The `.npy` bytes of `array` (format 1.0, or 2.0 when the header does not fit 1.0).
pub fn npy_bytes(array: &NpyArray) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        array.dtype.descr(),
        format_shape(&array.shape)
    );
    // pad with spaces so that magic + version + length + header is a multiple of 64, newline last
    let build = |len_bytes: usize| {
        let unpadded = 8 + len_bytes + dict.len() + 1;
        let pad = (ALIGN - unpadded % ALIGN) % ALIGN;
        let mut h = dict.clone();
        h.extend(std::iter::repeat_n(' ', pad));
        h.push('\n');
        h
    };
    let h1 = build(2);
    let mut out = Vec::with_capacity(8 + 4 + h1.len() + array.data.len());
    out.extend_from_slice(MAGIC);
    match u16::try_from(h1.len()) {
        Ok(n) => {
            out.extend_from_slice(&[1, 0]);
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(h1.as_bytes());
        }
        Err(_) => {
            let h2 = build(4);
            out.extend_from_slice(&[2, 0]);
            out.extend_from_slice(&u32::try_from(h2.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(h2.as_bytes());
        }
    }
    out.extend_from_slice(&array.data);
    out
}

fn check_names(arrays: &[NpyArray]) -> Result<(), NpyError> {
    let mut seen = std::collections::HashSet::new();
    for a in arrays {
        let member = format!("{}.npy", a.name);
        if let Err(problem) = check_member_name(&member) {
            return Err(NpyError::BadName { name: a.name.clone(), problem });
        }
        if a.name.is_empty() {
            return Err(NpyError::BadName { name: a.name.clone(), problem: NameProblem::Empty });
        }
        if !seen.insert(a.name.as_str()) {
            return Err(NpyError::DuplicateName { name: a.name.clone() });
        }
    }
    Ok(())
}

fn write_npz_to<W: Write + Seek>(arrays: &[NpyArray], w: W) -> Result<W, NpyError> {
    check_names(arrays)?;
    let zerr = |source| NpyError::Write { source };
    let mut zw = zip::ZipWriter::new(w);
    for a in arrays {
        let bytes = npy_bytes(a);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o600)
            .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
        zw.start_file(format!("{}.npy", a.name), options).map_err(zerr)?;
        zw.write_all(&bytes).map_err(|e| zerr(zip::result::ZipError::Io(e)))?;
    }
    zw.finish().map_err(zerr)
}

/// The bytes of a `.npz` holding `arrays` (stored, in the order given, members `<name>.npy`).
pub fn npz_bytes(arrays: &[NpyArray]) -> Result<Vec<u8>, NpyError> {
    Ok(write_npz_to(arrays, io::Cursor::new(Vec::new()))?.into_inner())
}

/// Writes `arrays` to `path` as a `.npz` (see [`npz_bytes`]), atomically: on any error the
/// existing file is left untouched.
pub fn write_npz(path: &Path, arrays: &[NpyArray]) -> Result<(), NpyError> {
    check_names(arrays)?;
    write_atomic(path, |f| write_npz_to(arrays, f).map(|_| ()).map_err(|e| io::Error::other(e.to_string())))
        .map_err(|source| NpyError::Save { source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn loc() -> Location {
        Location::file("x.npy")
    }

    /// A `.npy` with `header` (padded as numpy pads) and `data`, version `v`.
    fn npy_raw(v: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let len_bytes = if v == 1 { 2 } else { 4 };
        let mut h = header.to_string();
        while !(8 + len_bytes + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[v, 0]);
        if v == 1 {
            out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(h.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn parse(bytes: Vec<u8>) -> Result<NpyArray, NpyError> {
        parse_npy(bytes, "x", &loc(), &Limits::default())
    }

    fn err(bytes: Vec<u8>) -> String {
        parse(bytes).expect_err("must be refused").to_string()
    }

    #[test]
    fn reads_what_numpy_writes() {
        let data = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let a = parse(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", &data)).unwrap();
        assert_eq!(a.dtype, NpyDType::F32);
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.to_f32(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // versions 2.0 and 3.0, double quotes, Python 2 longs, no trailing comma
        for v in [2, 3] {
            let a = parse(npy_raw(v, r#"{"descr": "<f4", "shape": (2L, 3L), "fortran_order": False}"#, &data)).unwrap();
            assert_eq!(a.shape, vec![2, 3]);
        }
        // the writer's own bytes, byte for byte what numpy 2 writes for this array
        let written = npy_bytes(&a);
        assert_eq!(written, npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", &data));
    }

    #[test]
    fn big_endian_and_fortran_order_become_little_endian_c_order() {
        let be: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|x| x.to_be_bytes()).collect();
        let a = parse(npy_raw(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", &be)).unwrap();
        assert_eq!(a.to_f32(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // [[1, 2, 3], [4, 5, 6]] stored column by column
        let f = f32_bytes(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let a = parse(npy_raw(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", &f)).unwrap();
        assert_eq!(a.to_f32(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // 3-d: element (i, j, k) at Fortran offset i + 2j + 4k
        let shape = [2usize, 2, 3];
        let mut fdata = vec![0f32; 12];
        for i in 0..2 {
            for j in 0..2 {
                for k in 0..3 {
                    fdata[i + 2 * j + 4 * k] = (i * 100 + j * 10 + k) as f32;
                }
            }
        }
        let a = parse(npy_raw(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2, 3), }", &f32_bytes(&fdata)))
            .unwrap();
        let want: Vec<f32> =
            (0..2).flat_map(|i| (0..2).flat_map(move |j| (0..3).map(move |k| (i * 100 + j * 10 + k) as f32))).collect();
        assert_eq!(a.shape, shape.to_vec());
        assert_eq!(a.to_f32(), want);
    }

    #[test]
    fn every_dtype_casts_to_f32() {
        let cases: Vec<(&str, Vec<u8>, Vec<f32>)> = vec![
            (
                "<f2",
                [0x3c00u16, 0xc000, 0x0001, 0x7c00].iter().flat_map(|h| h.to_le_bytes()).collect(),
                vec![1.0, -2.0, 5.960_464_5e-8, f32::INFINITY],
            ),
            ("<f8", [1.5f64, -2.25].iter().flat_map(|x| x.to_le_bytes()).collect(), vec![1.5, -2.25]),
            ("|i1", vec![0xff, 7], vec![-1.0, 7.0]),
            ("<i2", [-300i16, 2].iter().flat_map(|x| x.to_le_bytes()).collect(), vec![-300.0, 2.0]),
            (">i4", [-5i32, 9].iter().flat_map(|x| x.to_be_bytes()).collect(), vec![-5.0, 9.0]),
            ("<i8", [-5i64, 1 << 40].iter().flat_map(|x| x.to_le_bytes()).collect(), vec![-5.0, (1u64 << 40) as f32]),
            ("|u1", vec![255, 0], vec![255.0, 0.0]),
            ("<u2", [65535u16, 1].iter().flat_map(|x| x.to_le_bytes()).collect(), vec![65535.0, 1.0]),
            ("<u4", [7u32, 8].iter().flat_map(|x| x.to_le_bytes()).collect(), vec![7.0, 8.0]),
            (">u8", [7u64, 8].iter().flat_map(|x| x.to_be_bytes()).collect(), vec![7.0, 8.0]),
            ("|b1", vec![1, 0], vec![1.0, 0.0]),
        ];
        for (descr, data, want) in cases {
            let n = want.len();
            let a =
                parse(npy_raw(1, &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({n},), }}"), &data))
                    .unwrap_or_else(|e| panic!("{descr}: {e}"));
            assert_eq!(a.to_f32(), want, "{descr}");
        }
    }

    #[test]
    fn scalars_and_empty_arrays() {
        let a =
            parse(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", &f32_bytes(&[7.0]))).unwrap();
        assert_eq!((a.shape.len(), a.to_f32()), (0, vec![7.0]));
        let a = parse(npy_raw(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (0, 4), }", &[])).unwrap();
        assert_eq!((a.shape.clone(), a.len()), (vec![0, 4], 0));
    }

    #[test]
    fn truncated_data_is_refused() {
        let data = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            err(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", &data)),
            "x.npy: shape (2, 3) of float32 needs 24 data bytes but 20 follow the header; the file is truncated or its header lies about the shape; save it again"
        );
    }

    #[test]
    fn lying_shape_is_refused_before_allocating() {
        assert_eq!(
            err(npy_raw(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }",
                &[0; 16]
            )),
            "x.npy: shape (4294967296, 4294967296, 16) has more elements than a machine word holds; the header lies about the shape"
        );
        assert_eq!(
            err(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", &[0; 16])),
            "x.npy: shape (1000000, 1000000) has 1000000000000 elements but the limit is 17179869184; raise it with `Limits::with_max_tensor_elements` if the file is trusted"
        );
        assert_eq!(
            err(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", &[0; 8])),
            "x.npy: shape (1,) of float32 needs 4 data bytes but 8 follow the header; extra bytes follow the array; the header lies about the shape or the file was spliced"
        );
    }

    #[test]
    fn huge_header_is_refused() {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[2, 0]);
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            err(b),
            "x.npy: the .npy header is 4294967295 bytes, over the limit of 10000 bytes (numpy refuses such headers too); the file is damaged or crafted"
        );
    }

    #[test]
    fn unknown_dtype_is_refused_by_name() {
        let e = err(npy_raw(1, "{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }", &[0; 20]));
        assert_eq!(
            e,
            "x.npy: dtype `<U5` is not one strata reads (a string array); convert the array first, e.g. `x.astype(np.float32)`"
        );
        let e = err(npy_raw(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", &[0; 8]));
        assert!(e.contains("an object array is a pickle, which strata never loads"), "{e}");
        let e = err(npy_raw(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", &[0; 4]));
        assert!(e.contains("dtype `[('a', '<f4')] (a structured dtype)`"), "{e}");
        let e = err(npy_raw(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", &[0; 8]));
        assert!(e.contains("(complex numbers)"), "{e}");
        let e = err(npy_raw(1, "{'descr': '|f4', 'fortran_order': False, 'shape': (1,), }", &[0; 4]));
        assert!(e.contains("dtype `|f4` is not one strata reads (it reads float16"), "{e}");
    }

    #[test]
    fn malformed_headers_are_refused() {
        let d = [0u8; 4];
        for (header, problem) in [
            ("{'descr': '<f4', 'shape': (1,), }", "key `fortran_order` is missing"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "unexpected key `x`"),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "key `descr` appears twice"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", "`fortran_order` is 0, not True or False"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", "`shape` is [1], not a tuple of integers"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "`shape` has dimension -1"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (__import__('os'),)}", "unexpected name `__import__`"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "expected `,` or `}`"),
            ("[1, 2]", "the header is [1, 2], not a dict"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}", "integer too large"),
        ] {
            let e = err(npy_raw(1, header, &d));
            assert!(e.starts_with("x.npy: bad .npy header: "), "{e}");
            assert!(e.contains(problem), "{header}: {e}");
        }
        let deep = format!("{{'descr': {}1{}}}", "(".repeat(40), ")".repeat(40));
        assert!(err(npy_raw(1, &deep, &d)).contains("nesting deeper than 16"));
    }

    #[test]
    fn truncated_headers_and_wrong_magic() {
        let full = npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", &[0; 4]);
        for cut in [0, 3, 7, 9, 20, 63] {
            let e = err(full[..cut].to_vec());
            assert!(e.contains("the .npy header is cut short"), "{cut}: {e}");
        }
        assert_eq!(
            err(b"PK\x03\x04 not an npy".to_vec()),
            "x.npy: not a .npy array (it does not start with \\x93NUMPY); the member is not what `np.savez` writes"
        );
        let mut v = full.clone();
        v[6] = 4;
        assert_eq!(
            err(v),
            "x.npy: .npy format version 4.0 is not one strata reads (1.0, 2.0, 3.0); save it with numpy"
        );
    }

    #[test]
    fn npz_round_trip_and_member_checks() {
        let a = NpyArray::from_f32("in_0", &[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let b = NpyArray::from_f32("b", &[3], &[5.0, 6.0, 7.0]).unwrap();
        let bytes = npz_bytes(&[a.clone(), b.clone()]).unwrap();
        let back = parse_npz(bytes.clone(), &Location::file("y.npz"), &Limits::default()).unwrap();
        assert_eq!(back, vec![a.clone(), b.clone()]);
        // deterministic
        assert_eq!(npz_bytes(&[a.clone(), b.clone()]).unwrap(), bytes);
        // duplicate and unsafe names are refused on write
        assert_eq!(
            npz_bytes(&[a.clone(), a.clone()]).unwrap_err().to_string(),
            "two arrays are named `in_0`; a .npz holds one array per name"
        );
        let bad = NpyArray { name: "../x".into(), ..a.clone() };
        assert_eq!(
            npz_bytes(&[bad]).unwrap_err().to_string(),
            "array name `../x` cannot be a .npz member name: it has a `..` component"
        );
        // a member that is not .npy
        let mut zw = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        zw.start_file("notes.txt", zip::write::SimpleFileOptions::default()).unwrap();
        zw.write_all(b"hi").unwrap();
        let bytes = zw.finish().unwrap().into_inner();
        assert_eq!(
            parse_npz(bytes, &Location::file("y.npz"), &Limits::default()).unwrap_err().to_string(),
            "y.npz, member notes.txt: the .npz member is not a .npy array (its name does not end in `.npy`); a .npz holds only arrays"
        );
    }

    #[test]
    fn deflated_members_and_member_limits() {
        let a = NpyArray::from_f32("x", &[64], &[0.5; 64]).unwrap();
        let mut zw = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zw.start_file("x.npy", opts).unwrap();
        zw.write_all(&npy_bytes(&a)).unwrap();
        let bytes = zw.finish().unwrap().into_inner();
        let back = parse_npz(bytes.clone(), &Location::file("c.npz"), &Limits::default()).unwrap();
        assert_eq!(back, vec![a]);
        let e = parse_npz(bytes, &Location::file("c.npz"), &Limits::default().with_max_member_bytes(100)).unwrap_err();
        assert!(e.to_string().starts_with("c.npz: "), "{e}");
        assert!(e.to_string().contains("limit"), "{e}");
    }

    #[test]
    fn numpy_written_npz_fixture_reads() {
        let path = strata_testkit::fixture("keras3/functional_multi_io/io.npz");
        let arrays = read_npz(&path, &Limits::default()).unwrap();
        let names: Vec<&str> = arrays.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["in_0", "in_1", "out_0", "out_1"]);
        assert_eq!(arrays[0].shape, vec![3, 6]);
        assert_eq!(arrays[0].dtype, NpyDType::F32);
        let (kind, same) = read_arrays(&path, &Limits::default()).unwrap();
        assert_eq!((kind, same), (ArrayFile::Npz, arrays));
    }

    #[test]
    fn write_npz_is_atomic_and_read_arrays_detects_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.npz");
        let a = NpyArray::from_f32("arr_0", &[1, 2], &[1.0, -1.0]).unwrap();
        write_npz(&p, std::slice::from_ref(&a)).unwrap();
        assert_eq!(read_arrays(&p, &Limits::default()).unwrap(), (ArrayFile::Npz, vec![a.clone()]));
        // a failed write leaves the old file
        let dup = [a.clone(), a.clone()];
        assert!(write_npz(&p, &dup).is_err());
        assert_eq!(read_npz(&p, &Limits::default()).unwrap(), vec![a.clone()]);
        let q = dir.path().join("single.npy");
        std::fs::write(&q, npy_bytes(&a)).unwrap();
        let (kind, got) = read_arrays(&q, &Limits::default()).unwrap();
        assert_eq!(kind, ArrayFile::Npy);
        assert_eq!(got[0].name, "single");
        assert_eq!(got[0].data, a.data);
        let r = dir.path().join("x.json");
        std::fs::write(&r, b"{\"a\": 1}").unwrap();
        assert_eq!(
            read_arrays(&r, &Limits::default()).unwrap_err().to_string(),
            format!(
                "{}: not a .npy or .npz file (it reads as JSON); save the arrays with `np.save` or `np.savez`",
                r.display()
            )
        );
    }

    fn dtype_strategy() -> impl Strategy<Value = NpyDType> {
        prop::sample::select(NpyDType::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn npy_write_read_round_trip(dtype in dtype_strategy(), shape in prop::collection::vec(0usize..5, 0..4), seed in any::<u64>()) {
            let n: usize = shape.iter().product();
            let mut x = seed;
            let data: Vec<u8> = (0..n * dtype.itemsize()).map(|_| { x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (x >> 56) as u8 }).collect();
            let data = if dtype == NpyDType::Bool { data.iter().map(|b| b & 1).collect() } else { data };
            let a = NpyArray { name: "a".into(), dtype, shape: shape.clone(), data };
            let bytes = npy_bytes(&a);
            prop_assert_eq!(bytes.len() % 64, (a.data.len()) % 64);
            let back = parse_npy(bytes, "a", &Location::default(), &Limits::default()).unwrap();
            prop_assert_eq!(&back, &a);
            let z = npz_bytes(std::slice::from_ref(&a)).unwrap();
            let back = parse_npz(z, &Location::default(), &Limits::default()).unwrap();
            prop_assert_eq!(back, vec![a]);
        }

        #[test]
        fn f32_npz_round_trip(values in prop::collection::vec(-1e6f32..1e6, 0..40), cols in 1usize..5) {
            let rows = values.len() / cols;
            let v = &values[..rows * cols];
            let a = NpyArray::from_f32("arr_0", &[rows, cols], v).unwrap();
            let b = NpyArray::from_f32("arr_1", &[v.len()], v).unwrap();
            let back = parse_npz(npz_bytes(&[a.clone(), b.clone()]).unwrap(), &Location::default(), &Limits::default()).unwrap();
            prop_assert_eq!(back[0].to_f32(), v.to_vec());
            prop_assert_eq!(&back, &vec![a, b]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&bytes);
            let _ = parse_npy(b, "x", &Location::default(), &Limits::default());
        }
    }
}
