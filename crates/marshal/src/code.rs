//! Code objects and the four layouts CPython has used to marshal them.
//!
//! `Python/marshal.c` (`w_complex_object`, `r_object`) writes a code object as a fixed sequence of
//! int32 fields and objects; the sequence changed three times (keras-facts §4.2):
//!
//! | [`Family`] | fields after `c` |
//! |---|---|
//! | `Py27` | argcount, nlocals, stacksize, flags, code, consts, names, varnames, freevars, cellvars, filename, name, firstlineno, lnotab |
//! | `Py30To37` | argcount, **kwonlyargcount**, nlocals, stacksize, flags, code, ... as 2.7 |
//! | `Py38To310` | argcount, **posonlyargcount**, kwonlyargcount, nlocals, ..., lnotab (3.8-3.9) / linetable (3.10) |
//! | `Py311Plus` | argcount, posonlyargcount, kwonlyargcount, stacksize, flags, code, consts, names, **localsplusnames, localspluskinds**, filename, name, **qualname**, firstlineno, linetable, **exceptiontable** |
//!
//! A reader with the wrong layout gets misaligned, which is where CPython's
//! "bad marshal data (unknown type code)" comes from.

use std::fmt;
use std::sync::Arc;

use crate::value::Value;

/// A CPython version, major and minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PyVersion {
    /// 2 or 3.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
}

impl PyVersion {
    /// `PyVersion::new(3, 11)`.
    pub const fn new(major: u8, minor: u8) -> Self {
        PyVersion { major, minor }
    }
}

impl fmt::Display for PyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A code-object layout, shared by a range of CPython versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// CPython 2.x (2.7 verified).
    Py27,
    /// CPython 3.0-3.7: kwonlyargcount, no posonlyargcount.
    Py30To37,
    /// CPython 3.8-3.10: posonlyargcount added.
    Py38To310,
    /// CPython 3.11 and later: no nlocals; localsplus names and kinds, qualname, exception table.
    Py311Plus,
}

impl Family {
    /// All families, oldest first.
    pub const ALL: [Family; 4] = [Family::Py27, Family::Py30To37, Family::Py38To310, Family::Py311Plus];

    /// The oldest and newest CPython versions that wrote this layout (3.14 is the newest known).
    pub fn versions(self) -> (PyVersion, PyVersion) {
        match self {
            Family::Py27 => (PyVersion::new(2, 7), PyVersion::new(2, 7)),
            Family::Py30To37 => (PyVersion::new(3, 0), PyVersion::new(3, 7)),
            Family::Py38To310 => (PyVersion::new(3, 8), PyVersion::new(3, 10)),
            Family::Py311Plus => (PyVersion::new(3, 11), PyVersion::new(3, 14)),
        }
    }

    /// True for the Python 2 string model (`t` interns into a table that `R` refers to; no FLAG_REF).
    pub fn is_py2(self) -> bool {
        self == Family::Py27
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.versions();
        if self == &Family::Py311Plus {
            write!(f, "{a}+")
        } else if a == b {
            write!(f, "{a}")
        } else {
            write!(f, "{a}-{b}")
        }
    }
}

/// `co_flags` bits that matter for reporting.
pub mod flags {
    /// Uses fast locals.
    pub const OPTIMIZED: u32 = 0x1;
    /// New locals dict.
    pub const NEWLOCALS: u32 = 0x2;
    /// Takes `*args`.
    pub const VARARGS: u32 = 0x4;
    /// Takes `**kwargs`.
    pub const VARKEYWORDS: u32 = 0x8;
    /// Nested function.
    pub const NESTED: u32 = 0x10;
    /// Generator.
    pub const GENERATOR: u32 = 0x20;
    /// No free or cell variables (gone in 3.11).
    pub const NOFREE: u32 = 0x40;
}

/// `localspluskinds` bits (3.11+, `Include/internal/pycore_code.h`).
pub mod kinds {
    /// A local variable.
    pub const LOCAL: u8 = 0x20;
    /// A cell variable.
    pub const CELL: u8 = 0x40;
    /// A free variable.
    pub const FREE: u8 = 0x80;
}

/// A decoded code object. Every field is data; nothing here can run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CodeObject {
    /// The layout it was read with.
    pub family: Family,
    /// Byte offset of the `c` type code in the marshal data.
    pub offset: usize,
    /// `co_argcount`: positional parameters (positional-only included).
    pub argcount: i32,
    /// `co_posonlyargcount` (0 before 3.8).
    pub posonlyargcount: i32,
    /// `co_kwonlyargcount` (0 in 2.7).
    pub kwonlyargcount: i32,
    /// `co_nlocals` as marshaled (absent from 3.11 on).
    pub nlocals: Option<i32>,
    /// `co_stacksize`.
    pub stacksize: i32,
    /// `co_flags` (see [`flags`]).
    pub flags: u32,
    /// Raw bytecode, `co_code`.
    pub code: Arc<[u8]>,
    /// `co_consts`. Items can be [`Value::Ref`]; resolve them with the decode's [`crate::RefTable`].
    pub consts: Vec<Value>,
    /// `co_names`: globals, attributes and imported names the code uses.
    pub names: Vec<String>,
    /// `co_varnames`: parameters first, then other locals (derived from localsplus on 3.11+).
    pub varnames: Vec<String>,
    /// `co_freevars` (closure variables).
    pub freevars: Vec<String>,
    /// `co_cellvars`.
    pub cellvars: Vec<String>,
    /// `co_localsplusnames` (3.11+; empty before).
    pub localsplusnames: Vec<String>,
    /// `co_localspluskinds` (3.11+; empty before).
    pub localspluskinds: Vec<u8>,
    /// `co_filename`.
    pub filename: String,
    /// `co_name` (`<lambda>` for a lambda).
    pub name: String,
    /// `co_qualname` (3.11+).
    pub qualname: Option<String>,
    /// `co_firstlineno`.
    pub firstlineno: i32,
    /// `co_lnotab` (before 3.10) or `co_linetable` (3.10+), raw.
    pub linetable: Arc<[u8]>,
    /// `co_exceptiontable` (3.11+).
    pub exceptiontable: Option<Arc<[u8]>>,
}

impl CodeObject {
    /// The parameter names, in order: positional, `*args`, keyword-only, `**kwargs`.
    pub fn arg_names(&self) -> &[String] {
        let mut n = i64::from(self.argcount.max(0)) + i64::from(self.kwonlyargcount.max(0));
        if self.flags & flags::VARARGS != 0 {
            n += 1;
        }
        if self.flags & flags::VARKEYWORDS != 0 {
            n += 1;
        }
        let n = usize::try_from(n).unwrap_or(usize::MAX).min(self.varnames.len());
        &self.varnames[..n]
    }

    /// Code objects in `consts` (nested functions, lambdas, comprehensions), not following references.
    pub fn nested(&self) -> impl Iterator<Item = &CodeObject> {
        self.consts.iter().filter_map(|c| match c {
            Value::Code(c) => Some(&**c),
            _ => None,
        })
    }
}
