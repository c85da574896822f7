//! The crate's error type. Every decoding error carries the byte offset where it happened and the
//! values involved (type code, count, limit), never preformatted text.

use crate::limits::LimitKind;

/// Everything that can go wrong decoding marshal data or the Keras text around it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A byte that is no marshal type code where an object was expected.
    #[error(
        "unknown type code 0x{code:02x} at offset {offset}; this is CPython's \"bad marshal data (unknown type code)\": \
         the data is not marshal, or was written by a CPython whose code-object layout differs from the one tried \
         (run `detect` to find the writer's version)"
    )]
    UnknownTypeCode {
        /// The byte found.
        code: u8,
        /// Its offset in the data.
        offset: usize,
    },
    /// The data ends before a value is complete.
    #[error(
        "marshal data ends at offset {offset} while reading {what} ({needed} more bytes needed); the data is truncated \
         or was written by a CPython whose code-object layout differs from the one tried"
    )]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where the read started.
        offset: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// A resource limit was exceeded.
    #[error("{kind} at offset {offset} is {value}, over the limit of {limit}; raise it with `Limits::{}` if the data is trusted", kind.setter())]
    LimitExceeded {
        /// Which limit.
        kind: LimitKind,
        /// The value found.
        value: u64,
        /// The limit.
        limit: u64,
        /// Where.
        offset: usize,
    },
    /// A negative or otherwise impossible length or count.
    #[error("invalid {what} {value} at offset {offset}; marshal data is corrupted")]
    InvalidLength {
        /// What the number counts.
        what: &'static str,
        /// The number read.
        value: i64,
        /// Where it was read.
        offset: usize,
    },
    /// A back-reference to an index not (yet) in the reference table.
    #[error(
        "back-reference to object #{index} at offset {offset}, but only {known} objects are referenceable; marshal data is corrupted"
    )]
    BadReference {
        /// The index read.
        index: u32,
        /// How many objects were flagged so far.
        known: usize,
        /// Where.
        offset: usize,
    },
    /// A string that should be UTF-8 is not.
    #[error("string at offset {offset} is not valid UTF-8 (byte {valid_up_to} of {len}); marshal data is corrupted")]
    InvalidUtf8 {
        /// Where the string starts.
        offset: usize,
        /// Bytes of the string that were valid.
        valid_up_to: usize,
        /// Its length.
        len: usize,
    },
    /// A text float (`f`/`x` type codes of marshal versions 0 and 1) that does not parse.
    #[error("text float {text:?} at offset {offset} does not parse as a number; marshal data is corrupted")]
    InvalidFloat {
        /// The text.
        text: String,
        /// Where.
        offset: usize,
    },
    /// A TYPE_NULL where an object is required (it only ends a dict).
    #[error("NULL object at offset {offset} outside a dict; marshal data is corrupted")]
    UnexpectedNull {
        /// Where.
        offset: usize,
    },
    /// A code-object field of the wrong type.
    #[error(
        "code object field `{field}` at offset {offset} is {found}, expected {expected}; the code object was probably \
         written by a CPython with another layout (run `detect`)"
    )]
    FieldType {
        /// The field (`co_names`, ...).
        field: &'static str,
        /// What it should be.
        expected: &'static str,
        /// What was found.
        found: &'static str,
        /// Where the value starts.
        offset: usize,
    },
    /// Bytes left over after the top-level object.
    #[error(
        "{extra} bytes left after the marshal object ends at offset {end}; the data was probably written by a \
         CPython with another code-object layout"
    )]
    TrailingBytes {
        /// Where the object ended.
        end: usize,
        /// How many bytes follow.
        extra: usize,
    },
    /// A code object was found but no layout was chosen.
    #[error(
        "code object at offset {offset}, but no code-object layout was given; decode with a `Family`, or use `detect`"
    )]
    NoFamily {
        /// Where.
        offset: usize,
    },
    /// No opcode table for the requested CPython version.
    #[error("no opcode table for CPython {major}.{minor}; tables exist for 2.7 and 3.6-3.14")]
    NoOpcodeTable {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// The bytecode does not decode with the chosen opcode table.
    #[error("bytecode of `{code_name}` at byte {offset}: {reason} (opcode table of CPython {major}.{minor})")]
    BadBytecode {
        /// The code object's name.
        code_name: String,
        /// Offset in the bytecode.
        offset: usize,
        /// What is wrong.
        reason: BytecodeProblem,
        /// Major version of the table.
        major: u8,
        /// Minor version of the table.
        minor: u8,
    },
}

/// Why bytecode does not decode with an opcode table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BytecodeProblem {
    /// Opcode not in the table.
    #[error("opcode {0} is unknown")]
    UnknownOpcode(u8),
    /// Instruction runs past the end.
    #[error("instruction is cut off by the end of the bytecode")]
    CutOff,
    /// Odd length of wordcode.
    #[error("wordcode has odd length")]
    OddLength,
    /// An operand index out of range of its table.
    #[error("operand {arg} is out of range of its table of {len}")]
    OperandOutOfRange {
        /// The operand.
        arg: u32,
        /// The table length.
        len: usize,
    },
    /// A cache entry that is not zero (marshal always writes zeroed caches).
    #[error("inline cache entry is not zero")]
    NonZeroCache,
    /// An argument byte set for an opcode without argument (wordcode writes 0).
    #[error("opcode without argument has argument byte {0}")]
    StrayArgument(u8),
    /// No RESUME where 3.11+ puts it.
    #[error("no RESUME at the start of the code")]
    NoResume,
    /// A CACHE pseudo-instruction outside an instruction's caches.
    #[error("CACHE outside an instruction's cache entries")]
    StrayCache,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_type_code_message() {
        let e = Error::UnknownTypeCode { code: 0x43, offset: 21 };
        assert!(e.to_string().starts_with("unknown type code 0x43 at offset 21; "), "{e}");
    }

    #[test]
    fn limit_message_names_setter() {
        let e = Error::LimitExceeded { kind: LimitKind::Depth, value: 101, limit: 100, offset: 7 };
        assert_eq!(
            e.to_string(),
            "nesting depth at offset 7 is 101, over the limit of 100; raise it with `Limits::with_max_depth` if the data is trusted"
        );
    }

    #[test]
    fn every_variant_renders_what_where_why() {
        let cases: Vec<(Error, &str)> = vec![
            (
                Error::Truncated { what: "a string", offset: 9, needed: 3 },
                "marshal data ends at offset 9 while reading a string (3 more bytes needed)",
            ),
            (
                Error::InvalidLength { what: "a container size", value: -1, offset: 1 },
                "invalid a container size -1 at offset 1; marshal data is corrupted",
            ),
            (
                Error::InvalidUtf8 { offset: 4, valid_up_to: 1, len: 2 },
                "string at offset 4 is not valid UTF-8 (byte 1 of 2); marshal data is corrupted",
            ),
            (
                Error::InvalidFloat { text: "x".into(), offset: 2 },
                "text float \"x\" at offset 2 does not parse as a number; marshal data is corrupted",
            ),
            (Error::UnexpectedNull { offset: 0 }, "NULL object at offset 0 outside a dict; marshal data is corrupted"),
            (
                Error::FieldType { field: "co_names", expected: "tuple", found: "int", offset: 30 },
                "code object field `co_names` at offset 30 is int, expected tuple;",
            ),
            (Error::TrailingBytes { end: 1, extra: 1 }, "1 bytes left after the marshal object ends at offset 1;"),
            (Error::NoFamily { offset: 0 }, "code object at offset 0, but no code-object layout was given;"),
            (
                Error::NoOpcodeTable { major: 3, minor: 4 },
                "no opcode table for CPython 3.4; tables exist for 2.7 and 3.6-3.14",
            ),
            (
                Error::BadBytecode {
                    code_name: "<lambda>".into(),
                    offset: 2,
                    reason: BytecodeProblem::UnknownOpcode(7),
                    major: 3,
                    minor: 11,
                },
                "bytecode of `<lambda>` at byte 2: opcode 7 is unknown (opcode table of CPython 3.11)",
            ),
        ];
        for (e, prefix) in cases {
            assert!(e.to_string().starts_with(prefix), "{e}");
        }
    }
}
