//! Which CPython wrote a marshal blob.
//!
//! The blob carries no version (Keras stores `marshal.dumps(code)` with no `.pyc` header), so
//! [`detect`] works in two steps (keras-facts §4.3):
//! 1. trial-parse with each code-object [`Family`], keeping only parses that consume the blob
//!    exactly: the layouts differ by whole int32 fields, so a wrong one misaligns and fails;
//! 2. inside a family, keep the versions whose opcode table disassembles every code object in the
//!    blob (known opcodes, zero inline caches, zero argument bytes on argument-less wordcode
//!    instructions, operands in range, and on 3.11+ a `RESUME` after the cell/free-variable
//!    prologue: opcode 151 on 3.11/3.12, 149 on 3.13, 128 on 3.14), then apply format evidence:
//!    no FLAG_REF means format version < 3 (3.0-3.3), a slice constant means version 5 (3.14+),
//!    and on 3.8-3.10 a line table covering the whole bytecode means 3.10's `co_linetable`
//!    rather than 3.8/3.9's `co_lnotab`.
//!
//! The result is a range such as "3.8-3.9", "3.11-3.12", "3.13" or "3.14". Identical bytecode
//! can legitimately come from several versions; the range says so rather than guessing.

use std::fmt;

use crate::code::{CodeObject, Family, PyVersion};
use crate::decode::{Decoded, decode};
use crate::disasm::disassemble;
use crate::error::Error;
use crate::limits::Limits;
use crate::opcodes;
use crate::value::Value;

/// One plausible writer of a blob.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Candidate {
    /// The code-object layout that consumed the blob exactly.
    pub family: Family,
    /// Oldest plausible CPython.
    pub min: PyVersion,
    /// Newest plausible CPython.
    pub max: PyVersion,
    /// The versions inside the family whose opcode table fits the bytecode (empty where the
    /// family has no tables, 3.0-3.5).
    pub bytecode_versions: Vec<PyVersion>,
    /// Why, in words (one line per piece of evidence).
    pub evidence: Vec<String>,
    /// The decode with this layout.
    pub decoded: Decoded,
}

impl Candidate {
    /// `"3.11-3.12"`, or `"3.13"` when the range is one version.
    pub fn range(&self) -> String {
        if self.min == self.max { self.min.to_string() } else { format!("{}-{}", self.min, self.max) }
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CPython {} ({} code-object layout)", self.range(), self.family)
    }
}

/// What trial-parsing with every family gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Families whose parse consumed the blob exactly, with narrowed versions.
    pub candidates: Vec<Candidate>,
    /// The error each other family stopped with.
    pub failures: Vec<(Family, Error)>,
}

/// Trial-parses `blob` with every code-object layout and narrows the version; see the module docs.
/// An empty result means no CPython layout we know reads the blob (corrupted, or not marshal).
pub fn detect(blob: &[u8]) -> Vec<Candidate> {
    detect_with(blob, &Limits::default()).candidates
}

/// [`detect`] with explicit limits, also returning why each other family failed.
pub fn detect_with(blob: &[u8], limits: &Limits) -> Detection {
    let mut candidates = Vec::new();
    let mut failures = Vec::new();
    for family in Family::ALL {
        match decode(blob, family, limits) {
            Ok(d) => {
                if let Some(c) = narrow(family, d) {
                    candidates.push(c);
                }
            }
            Err(e) => failures.push((family, e)),
        }
    }
    Detection { candidates, failures }
}

fn collect_codes<'a>(v: &'a Value, d: &'a Decoded, out: &mut Vec<&'a CodeObject>, depth: u32) {
    if depth > 64 {
        return;
    }
    if let Value::Code(c) = d.refs.resolve(v) {
        out.push(c);
        for k in &c.consts {
            collect_codes(k, d, out, depth + 1);
        }
    }
}

/// True when `table` disassembles `code` and, on 3.11+, RESUME follows the prologue.
fn fits(code: &CodeObject, table: &'static opcodes::OpcodeTable) -> bool {
    let Ok(ins) = disassemble(code, table) else { return false };
    if table.version >= PyVersion::new(3, 11) {
        let first =
            ins.iter().find(|i| !matches!(i.opname, "MAKE_CELL" | "COPY_FREE_VARS" | "RETURN_GENERATOR" | "POP_TOP"));
        if first.map(|i| i.opname) != Some("RESUME") {
            return false;
        }
    }
    true
}

/// The sum of the bytecode deltas of a (bytecode delta, line delta) byte-pair table.
fn pair_table_span(t: &[u8]) -> usize {
    t.chunks(2).map(|p| usize::from(p.first().copied().unwrap_or(0))).sum()
}

fn narrow(family: Family, d: Decoded) -> Option<Candidate> {
    let mut codes = Vec::new();
    collect_codes(&d.value, &d, &mut codes, 0);
    let (fmin, fmax) = family.versions();
    let mut evidence = vec![format!("the {family} code-object layout reads all {} bytes", d.consumed)];
    if codes.is_empty() {
        evidence.push("the blob is not a code object; only the string model tells the family".to_string());
        return Some(Candidate { family, min: fmin, max: fmax, bytecode_versions: Vec::new(), evidence, decoded: d });
    }
    let mut lo = fmin;
    let mut hi = fmax;
    if family != Family::Py27 {
        if d.features.flag_ref || d.features.v4_codes {
            if lo < PyVersion::new(3, 4) {
                lo = PyVersion::new(3, 4);
                evidence.push("FLAG_REF / short-string type codes: marshal format 3+, CPython 3.4+".to_string());
            }
        } else if hi > PyVersion::new(3, 3) {
            hi = PyVersion::new(3, 3);
            evidence.push("no FLAG_REF: marshal format below 3, CPython 3.0-3.3".to_string());
        }
        if d.features.slice {
            lo = lo.max(PyVersion::new(3, 14));
            evidence.push("a slice constant: marshal format 5, CPython 3.14+".to_string());
        }
    }
    // Versions of this family that have an opcode table and fit every code object.
    let tabled: Vec<PyVersion> = opcodes::versions().filter(|v| *v >= fmin && *v <= fmax).collect();
    let mut fitting: Vec<PyVersion> = tabled
        .iter()
        .copied()
        .filter(|v| opcodes::table(*v).is_some_and(|t| codes.iter().all(|c| fits(c, t))))
        .collect();
    if family == Family::Py38To310 {
        let all_span = codes.iter().all(|c| !c.code.is_empty() && pair_table_span(&c.linetable) == c.code.len());
        if all_span {
            fitting.retain(|v| *v == PyVersion::new(3, 10));
            evidence.push("the line table spans the whole bytecode: 3.10 co_linetable (PEP 626)".to_string());
        } else {
            fitting.retain(|v| *v != PyVersion::new(3, 10));
            evidence.push("the line table is a co_lnotab (starts of lines only): 3.8-3.9".to_string());
        }
    }
    if family == Family::Py30To37 {
        if fitting.is_empty() {
            // 3.0-3.5 bytecode (one byte per argument-less instruction); no table to check it with.
            hi = hi.min(PyVersion::new(3, 5));
            evidence.push(
                "the bytecode is not 3.6+ wordcode: CPython 3.0-3.5 (no opcode table to check further)".to_string(),
            );
            return (lo <= hi).then_some(Candidate {
                family,
                min: lo,
                max: hi,
                bytecode_versions: fitting,
                evidence,
                decoded: d,
            });
        }
        lo = lo.max(PyVersion::new(3, 6));
    }
    fitting.retain(|v| *v >= lo && *v <= hi);
    let (Some(&first), Some(&last)) = (fitting.first(), fitting.last()) else {
        evidence.push("no opcode table of this family fits the bytecode".to_string());
        return None;
    };
    let names: Vec<String> = fitting.iter().map(|v| v.to_string()).collect();
    evidence.push(format!("the bytecode disassembles cleanly with the opcode tables of {}", names.join(", ")));
    Some(Candidate { family, min: first, max: last, bytecode_versions: fitting, evidence, decoded: d })
}
