//! Opcode tables, one per CPython version, taken from each interpreter's own `dis` module.
//!
//! The files in `crates/marshal/data/opcodes/` are written by `tools/marshal/dump_opcodes.py`
//! under every CPython we have (2.7, 3.6-3.13 natively, 3.14 inside Pyodide) and included here
//! verbatim; nothing in them is typed by hand. Each line is `op <num> <NAME> cache=<n> flags=<list>`,
//! `binop <n> <symbol>` (3.11+ `BINARY_OP` operands) or `cmp <n> <symbol>` (`dis.cmp_op`).

use std::sync::OnceLock;

use crate::code::PyVersion;

/// What `dis` says about one opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpInfo {
    /// `dis.opname[op]`.
    pub name: String,
    /// Inline cache entries (code units) after it (3.11+).
    pub cache: u8,
    /// Takes an argument (`hasarg`, or `op >= HAVE_ARGUMENT` where `hasarg` does not exist).
    pub has_arg: bool,
    /// In `hasconst`.
    pub is_const: bool,
    /// In `hasname`.
    pub is_name: bool,
    /// In `hasjrel` or `hasjabs`.
    pub is_jump: bool,
    /// In `haslocal`.
    pub is_local: bool,
    /// In `hasfree`.
    pub is_free: bool,
    /// In `hascompare`.
    pub is_compare: bool,
}

/// The opcode table of one CPython version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpcodeTable {
    /// The version it describes.
    pub version: PyVersion,
    /// The full version of the interpreter it was dumped from (`3.11.7`).
    pub dumped_from: String,
    /// `opcode.HAVE_ARGUMENT`.
    pub have_argument: u8,
    ops: Vec<Option<OpInfo>>,
    /// `BINARY_OP` operand symbols by index (3.11+).
    pub binops: Vec<String>,
    /// `dis.cmp_op`.
    pub cmp_op: Vec<String>,
}

impl OpcodeTable {
    /// What `dis` says about opcode `op`, or `None` for an unused number.
    pub fn op(&self, op: u8) -> Option<&OpInfo> {
        self.ops.get(usize::from(op)).and_then(|o| o.as_ref())
    }

    /// The number of the opcode called `name`.
    pub fn opcode(&self, name: &str) -> Option<u8> {
        self.ops.iter().position(|o| o.as_ref().is_some_and(|o| o.name == name)).and_then(|i| u8::try_from(i).ok())
    }

    /// True for CPython 3.6+ wordcode (two bytes per instruction).
    pub fn wordcode(&self) -> bool {
        self.version >= PyVersion::new(3, 6)
    }

    fn parse(text: &str) -> OpcodeTable {
        let mut t = OpcodeTable {
            version: PyVersion::new(0, 0),
            dumped_from: String::new(),
            have_argument: 90,
            ops: vec![None; 256],
            binops: Vec::new(),
            cmp_op: Vec::new(),
        };
        for line in text.lines() {
            let mut w = line.split(' ');
            match w.next() {
                Some("version") => {
                    let v = w.next().unwrap_or("");
                    let (a, b) = v.split_once('.').unwrap_or(("0", "0"));
                    t.version = PyVersion::new(a.parse().unwrap_or(0), b.parse().unwrap_or(0));
                    t.dumped_from = w.next().unwrap_or("").to_string();
                }
                Some("have_argument") => t.have_argument = w.next().and_then(|n| n.parse().ok()).unwrap_or(90),
                Some("op") => {
                    let num: usize = w.next().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
                    let name = w.next().unwrap_or("").to_string();
                    let cache =
                        w.next().and_then(|c| c.strip_prefix("cache=")).and_then(|c| c.parse().ok()).unwrap_or(0);
                    let flags = w.next().and_then(|c| c.strip_prefix("flags=")).unwrap_or("");
                    let has = |f: &str| flags.split(',').any(|x| x == f);
                    let info = OpInfo {
                        name,
                        cache,
                        has_arg: has("arg"),
                        is_const: has("const"),
                        is_name: has("name"),
                        is_jump: has("jrel") || has("jabs"),
                        is_local: has("local"),
                        is_free: has("free"),
                        is_compare: has("compare"),
                    };
                    if let Some(slot) = t.ops.get_mut(num) {
                        *slot = Some(info);
                    }
                }
                Some("binop") => {
                    w.next();
                    t.binops.push(w.next().unwrap_or("?").to_string());
                }
                Some("cmp") => {
                    w.next();
                    t.cmp_op.push(w.next().unwrap_or("?").replace('_', " "));
                }
                _ => {}
            }
        }
        t
    }
}

const SOURCES: [(u8, u8, &str); 10] = [
    (2, 7, include_str!("../../data/opcodes/py27.txt")),
    (3, 6, include_str!("../../data/opcodes/py36.txt")),
    (3, 7, include_str!("../../data/opcodes/py37.txt")),
    (3, 8, include_str!("../../data/opcodes/py38.txt")),
    (3, 9, include_str!("../../data/opcodes/py39.txt")),
    (3, 10, include_str!("../../data/opcodes/py310.txt")),
    (3, 11, include_str!("../../data/opcodes/py311.txt")),
    (3, 12, include_str!("../../data/opcodes/py312.txt")),
    (3, 13, include_str!("../../data/opcodes/py313.txt")),
    (3, 14, include_str!("../../data/opcodes/py314.txt")),
];

fn all() -> &'static [OpcodeTable] {
    static TABLES: OnceLock<Vec<OpcodeTable>> = OnceLock::new();
    TABLES.get_or_init(|| SOURCES.iter().map(|(_, _, text)| OpcodeTable::parse(text)).collect())
}

/// The opcode table of CPython `version`, if we have one (2.7 and 3.6-3.14).
pub fn table(version: PyVersion) -> Option<&'static OpcodeTable> {
    all().iter().find(|t| t.version == version)
}

/// The versions that have a table, oldest first.
pub fn versions() -> impl Iterator<Item = PyVersion> {
    SOURCES.iter().map(|(a, b, _)| PyVersion::new(*a, *b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_parses_with_its_own_version() {
        for v in versions() {
            let t = table(v).unwrap_or_else(|| panic!("no table for {v}"));
            assert!(t.opcode("RETURN_VALUE").is_some() || t.opcode("RETURN_CONST").is_some(), "{v}");
            assert!(t.cmp_op.len() >= 6, "{v}");
        }
        // keras-facts §4.2: RESUME is 151 in 3.11/3.12, 149 in 3.13, 128 in 3.14.
        let resume = |m| table(PyVersion::new(3, m)).and_then(|t| t.opcode("RESUME"));
        assert_eq!([resume(11), resume(12), resume(13), resume(14)], [Some(151), Some(151), Some(149), Some(128)]);
    }
}
