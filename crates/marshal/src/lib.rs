//! CPython `marshal` data as inert values, without running anything.
//!
//! Keras stores Lambda layers as `marshal.dumps(fn.__code__)`, base64-encoded, with no Python
//! version anywhere (keras-facts §3-4). This crate reads that data the way CPython's
//! `Python/marshal.c` does, but into plain Rust values: nothing is executed, imported or built
//! into a callable. It then tells which CPython wrote a code object, and disassembles it with that
//! version's opcode table.
//!
//! Main entry points:
//! - [`decode()`](fn@decode): bytes -> [`Decoded`] (a [`Value`] tree plus the FLAG_REF [`RefTable`]) with a given
//!   code-object [`Family`]; bounds-checked, limited by [`Limits`], never panics.
//! - [`detect()`](fn@detect): trial-parse with every family and narrow the version -> [`Candidate`]s such as
//!   `3.8-3.9`, `3.11-3.12`, `3.13`, `3.14`.
//! - [`disasm::disassemble`]: a [`CodeObject`]'s bytecode -> instructions, with operands decoded
//!   (`LOAD_CONST` -> the constant, `LOAD_GLOBAL` -> the name, `BINARY_OP` -> the operator).
//! - [`keras`]: the base64 / `raw_unicode_escape` wrappers Keras uses, and Windows-corrupted blobs.
//!
//! ```
//! use strata_marshal::{detect, disasm, opcodes};
//! // `lambda x: x * 2.0 + 1.0` as CPython 3.11 marshals it (fixtures/marshal/3.11/affine.bin).
//! let blob = include_bytes!("../../../fixtures/marshal/3.11/affine.bin");
//! let cands = detect(blob);
//! assert_eq!(cands.len(), 1);
//! assert_eq!(cands[0].range(), "3.11-3.12");
//! let code = cands[0].decoded.code().unwrap();
//! assert_eq!(code.name, "<lambda>");
//! let table = opcodes::table(cands[0].min).unwrap();
//! let ins = disasm::disassemble(code, table).unwrap();
//! assert!(ins.iter().any(|i| i.opname == "BINARY_OP"));
//! ```
#![warn(missing_docs)]

pub mod code;
pub mod decode;
pub mod detect;
pub mod disasm;
pub mod error;
pub mod keras;
pub mod limits;
pub mod opcodes;
pub mod value;

pub use code::{CodeObject, Family, PyVersion};
pub use decode::{Decoded, Features, decode, decode_prefix};
pub use detect::{Candidate, Detection, detect, detect_with};
pub use error::{BytecodeProblem, Error, Result};
pub use limits::{LimitKind, Limits};
pub use value::{Long, RefTable, ReprStyle, Value, repr};
