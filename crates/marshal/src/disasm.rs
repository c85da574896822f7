//! Disassembly with the opcode table of the CPython that wrote the code.
//!
//! Mirrors `dis.get_instructions` (and 2.7's `dis.dis`): the same instruction names and raw
//! arguments, `EXTENDED_ARG` folded into the next argument (and listed, as `dis` lists it), inline
//! cache entries skipped on 3.11+, and operands decoded the way each version's `dis` decodes them:
//! `LOAD_CONST` to the constant, names and locals to strings (3.11+ `LOAD_GLOBAL` and 3.12+
//! `LOAD_ATTR` carry a flag in the low bit), `BINARY_OP` to its operator, `COMPARE_OP` to its
//! comparison (shifted by 4 bits on 3.12, 5 on 3.13+). Jump targets are left raw.

use crate::code::{CodeObject, PyVersion};
use crate::error::{BytecodeProblem, Error, Result};
use crate::opcodes::OpcodeTable;
use crate::value::{RefTable, ReprStyle, Value, repr};

/// A decoded operand.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Argument {
    /// The instruction takes no argument.
    None,
    /// A constant (`co_consts[arg]`).
    Const(Value),
    /// A global, attribute or imported name; `push_null` is the low-bit flag of 3.11+ `LOAD_GLOBAL`
    /// and 3.12+ `LOAD_ATTR` (method call / NULL push).
    Name {
        /// The name.
        name: String,
        /// Low-bit flag set.
        push_null: bool,
    },
    /// A local variable (or two, for 3.13+ superinstructions like `LOAD_FAST_LOAD_FAST`).
    Local(Vec<String>),
    /// A cell or free variable.
    Free(String),
    /// A `BINARY_OP` operator (`+`, `*`, `[]`, ...).
    BinaryOp(String),
    /// A comparison (`<`, `in`, ...); `to_bool` is the 3.13+ bool-coercion bit.
    Compare {
        /// The comparison.
        op: String,
        /// 3.13+ coerces the result to bool.
        to_bool: bool,
    },
    /// A small int pushed directly (3.14 `LOAD_SMALL_INT`).
    SmallInt(u32),
    /// A jump; the raw argument (its meaning depends on the version).
    Jump(u32),
    /// Any other argument, raw.
    Raw(u32),
}

/// One instruction.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Instruction {
    /// Byte offset in `co_code`.
    pub offset: usize,
    /// The opcode number.
    pub opcode: u8,
    /// `dis.opname[opcode]` of the table used.
    pub opname: &'static str,
    /// The argument with `EXTENDED_ARG` applied, as `dis` reports it (`None` when the opcode takes none).
    pub arg: Option<u32>,
    /// The decoded argument.
    pub argument: Argument,
}

impl Instruction {
    /// The argument as `dis` prints it in `argrepr` (for the decoded kinds; jumps and raw arguments
    /// give an empty string).
    pub fn argrepr(&self, refs: &RefTable, version: PyVersion) -> String {
        let style = if version.major == 2 { ReprStyle::Py2 } else { ReprStyle::Py3 };
        let new_null = version >= PyVersion::new(3, 13);
        match &self.argument {
            Argument::Const(v) => repr(v, refs, style, 4096),
            Argument::Name { name, push_null: false } => name.clone(),
            Argument::Name { name, push_null: true } => {
                let what = if self.opname == "LOAD_GLOBAL" { "NULL" } else { "NULL|self" };
                if new_null { format!("{name} + {what}") } else { format!("{what} + {name}") }
            }
            Argument::Local(names) => names.join(", "),
            Argument::Free(n) => n.clone(),
            Argument::BinaryOp(s) => s.clone(),
            Argument::Compare { op, to_bool: true } => format!("bool({op})"),
            Argument::Compare { op, to_bool: false } => op.clone(),
            Argument::None | Argument::SmallInt(_) | Argument::Jump(_) | Argument::Raw(_) => String::new(),
        }
    }
}

fn bad(code: &CodeObject, table: &OpcodeTable, offset: usize, reason: BytecodeProblem) -> Error {
    Error::BadBytecode {
        code_name: code.name.clone(),
        offset,
        reason,
        major: table.version.major,
        minor: table.version.minor,
    }
}

fn pick<'a, T>(items: &'a [T], arg: u32, code: &CodeObject, table: &OpcodeTable, offset: usize) -> Result<&'a T> {
    items
        .get(arg as usize)
        .ok_or_else(|| bad(code, table, offset, BytecodeProblem::OperandOutOfRange { arg, len: items.len() }))
}

/// Disassembles `code` with `table`. Fails on an opcode the table does not know, an instruction cut
/// off by the end, a nonzero inline cache, or an operand out of range of its table: each of these
/// means the table is not the one of the CPython that wrote the code.
pub fn disassemble(code: &CodeObject, table: &'static OpcodeTable) -> Result<Vec<Instruction>> {
    let bytes: &[u8] = &code.code;
    let v = table.version;
    let py311 = v >= PyVersion::new(3, 11);
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut ext: u32 = 0;
    let free_pre311: Vec<String> = code.cellvars.iter().chain(code.freevars.iter()).cloned().collect();
    while i < bytes.len() {
        let offset = i;
        let op = bytes.get(i).copied().unwrap_or(0);
        let info = table.op(op).ok_or_else(|| bad(code, table, offset, BytecodeProblem::UnknownOpcode(op)))?;
        let raw_arg: Option<u32>;
        if table.wordcode() {
            let a = *bytes.get(i + 1).ok_or_else(|| bad(code, table, offset, BytecodeProblem::CutOff))?;
            i += 2;
            if info.name == "CACHE" {
                return Err(bad(code, table, offset, BytecodeProblem::StrayCache));
            }
            raw_arg = if info.has_arg {
                Some(u32::from(a) | ext)
            } else if a != 0 {
                return Err(bad(code, table, offset, BytecodeProblem::StrayArgument(a)));
            } else {
                None
            };
            ext = if info.name == "EXTENDED_ARG" { raw_arg.unwrap_or(0).checked_shl(8).unwrap_or(0) } else { 0 };
            for _ in 0..info.cache {
                match bytes.get(i..i + 2) {
                    Some([0, 0]) => i += 2,
                    Some(_) => return Err(bad(code, table, i, BytecodeProblem::NonZeroCache)),
                    None => return Err(bad(code, table, i, BytecodeProblem::CutOff)),
                }
            }
        } else if op >= table.have_argument {
            let lo = bytes.get(i + 1).copied();
            let hi = bytes.get(i + 2).copied();
            let (Some(lo), Some(hi)) = (lo, hi) else {
                return Err(bad(code, table, offset, BytecodeProblem::CutOff));
            };
            i += 3;
            let a = u32::from(u16::from_le_bytes([lo, hi])) | ext;
            raw_arg = Some(a);
            ext = if info.name == "EXTENDED_ARG" { a.checked_shl(16).unwrap_or(0) } else { 0 };
        } else {
            i += 1;
            raw_arg = None;
            ext = 0;
        }
        let argument = match raw_arg {
            None => Argument::None,
            Some(arg) => {
                let name = info.name.as_str();
                if info.is_const {
                    Argument::Const(pick(&code.consts, arg, code, table, offset)?.clone())
                } else if info.is_name {
                    let (idx, flag) =
                        if py311 && name == "LOAD_GLOBAL" || v >= PyVersion::new(3, 12) && name == "LOAD_ATTR" {
                            (arg >> 1, arg & 1 == 1)
                        } else if v >= PyVersion::new(3, 12) && name == "LOAD_SUPER_ATTR" {
                            (arg >> 2, arg & 1 == 1)
                        } else {
                            (arg, false)
                        };
                    Argument::Name { name: pick(&code.names, idx, code, table, offset)?.clone(), push_null: flag }
                } else if v >= PyVersion::new(3, 13) && name.matches("FAST").count() == 2 {
                    let a = pick(&code.localsplusnames, arg >> 4, code, table, offset)?.clone();
                    let b = pick(&code.localsplusnames, arg & 15, code, table, offset)?.clone();
                    Argument::Local(vec![a, b])
                } else if info.is_local {
                    let names = if py311 { &code.localsplusnames } else { &code.varnames };
                    Argument::Local(vec![pick(names, arg, code, table, offset)?.clone()])
                } else if info.is_free {
                    let names = if py311 { &code.localsplusnames } else { &free_pre311 };
                    Argument::Free(pick(names, arg, code, table, offset)?.clone())
                } else if info.is_compare {
                    let (idx, to_bool) = if v >= PyVersion::new(3, 13) {
                        (arg >> 5, arg & 16 != 0)
                    } else if v >= PyVersion::new(3, 12) {
                        (arg >> 4, false)
                    } else {
                        (arg, false)
                    };
                    Argument::Compare { op: pick(&table.cmp_op, idx, code, table, offset)?.clone(), to_bool }
                } else if name == "BINARY_OP" {
                    Argument::BinaryOp(pick(&table.binops, arg, code, table, offset)?.clone())
                } else if name == "LOAD_SMALL_INT" {
                    Argument::SmallInt(arg)
                } else if info.is_jump {
                    Argument::Jump(arg)
                } else {
                    Argument::Raw(arg)
                }
            }
        };
        out.push(Instruction { offset, opcode: op, opname: info.name.as_str(), arg: raw_arg, argument });
    }
    Ok(out)
}

/// A readable listing, one instruction a line: `offset OPNAME arg (argrepr)`.
pub fn listing(instructions: &[Instruction], refs: &RefTable, version: PyVersion) -> String {
    let mut s = String::new();
    for ins in instructions {
        let arg = ins.arg.map(|a| a.to_string()).unwrap_or_default();
        let r = ins.argrepr(refs, version);
        let r = if r.is_empty() { String::new() } else { format!(" ({r})") };
        s.push_str(&format!("{:>6} {:<24} {:>5}{}\n", ins.offset, ins.opname, arg, r));
    }
    s
}
