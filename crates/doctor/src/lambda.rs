//! A Lambda layer's Python function, read without running it: which CPython wrote the bytecode
//! (strata-marshal's trial parse), what it does (disassembly, a readable expression when it is
//! simple), what it calls, and what each CPython does when Keras unmarshals it (keras-facts §4.3,
//! checked against `fixtures/doctor/lambda/`).

use std::collections::BTreeSet;

use strata_marshal::disasm::{self, Argument, Instruction};
use strata_marshal::keras::{self, LambdaEncoding, WindowsCorruption};
use strata_marshal::{Candidate, CodeObject, Family, PyVersion, RefTable, ReprStyle, Value};

use crate::finding::FunctionInfo;

/// Everything read from one Lambda's code text.
#[derive(Debug, Clone)]
pub struct LambdaAnalysis {
    /// Base64 (Keras >= 2.1.2) or `raw_unicode_escape` (Keras <= 2.1.1).
    pub encoding: LambdaEncoding,
    /// Size of the marshal data.
    pub blob_len: usize,
    /// The plausible writers (empty: no CPython layout reads it).
    pub candidates: Vec<Candidate>,
    /// Oldest and newest plausible writer.
    pub writer: Option<(PyVersion, PyVersion)>,
    /// The function.
    pub function: Option<FunctionInfo>,
    /// The disassembly with the newest plausible writer's opcode table.
    pub listing: String,
    /// `x * 2.0 + 1.0`, when the bytecode is a simple expression.
    pub expression: Option<String>,
    /// Dotted names the code loads (`os.system`, `keras.ops.sum`, `len`) and string constants.
    pub names: BTreeSet<String>,
    /// Global names (what the function needs from its module).
    pub globals: BTreeSet<String>,
    /// Windows `\` -> `/` damage, when seen.
    pub windows: Option<WindowsCorruption>,
}

impl LambdaAnalysis {
    /// The writer range as text (`3.8-3.10`), `unknown` when no layout reads the data.
    pub fn writer_range(&self) -> String {
        match self.writer {
            Some((a, b)) if a == b => a.to_string(),
            Some((a, b)) => format!("{a}-{b}"),
            None => "unknown".into(),
        }
    }
}

/// Reads a Lambda's code text (any Keras spelling's `code` string).
pub fn analyze(text: &str) -> LambdaAnalysis {
    let (code, mut candidates) = keras::detect_lambda(text);
    let windows = keras::windows_corruption(&code.bytes);
    if candidates.is_empty()
        && let Some(w) = &windows
        && w.repaired.is_some()
    {
        candidates = w.candidates.clone();
    }
    let writer = candidates.iter().fold(None, |acc: Option<(PyVersion, PyVersion)>, c| match acc {
        None => Some((c.min, c.max)),
        Some((a, b)) => Some((a.min(c.min), b.max(c.max))),
    });
    let mut a = LambdaAnalysis {
        encoding: code.encoding,
        blob_len: code.bytes.len(),
        candidates,
        writer,
        function: None,
        listing: String::new(),
        expression: None,
        names: BTreeSet::new(),
        globals: BTreeSet::new(),
        windows,
    };
    let Some(best) = a.candidates.last().cloned() else { return a };
    let Some(co) = best.decoded.code() else { return a };
    a.function = Some(FunctionInfo {
        name: co.name.clone(),
        qualname: co.qualname.clone(),
        file: co.filename.clone(),
        line: co.firstlineno,
        args: co.arg_names().to_vec(),
    });
    let version = best.bytecode_versions.last().copied().unwrap_or(best.max);
    let refs = &best.decoded.refs;
    if let Some(table) = strata_marshal::opcodes::table(version) {
        let mut stack = vec![co];
        let mut first = true;
        let mut seen = 0usize;
        while let Some(c) = stack.pop() {
            seen += 1;
            if seen > 64 {
                break;
            }
            if let Ok(ins) = disasm::disassemble(c, table) {
                if first {
                    a.listing = disasm::listing(&ins, refs, version);
                    a.expression = expression(c, &ins, refs, version);
                    first = false;
                }
                collect_names(&ins, refs, &mut a.names, &mut a.globals);
            }
            collect_const_strings(c, refs, &mut a.names);
            stack.extend(c.nested());
        }
    } else {
        collect_const_strings(co, refs, &mut a.names);
        a.names.extend(co.names.iter().cloned());
    }
    a
}

fn collect_const_strings(co: &CodeObject, refs: &RefTable, out: &mut BTreeSet<String>) {
    for v in &co.consts {
        if let Some(s) = refs.resolve(v).as_text()
            && s.len() <= 200
        {
            out.insert(format!("'{s}'"));
        }
    }
}

fn collect_names(ins: &[Instruction], _refs: &RefTable, out: &mut BTreeSet<String>, globals: &mut BTreeSet<String>) {
    let mut chain: Option<String> = None;
    for i in ins {
        match (&i.argument, i.opname) {
            (Argument::Name { name, .. }, "LOAD_GLOBAL" | "LOAD_NAME") => {
                globals.insert(name.clone());
                out.insert(name.clone());
                chain = Some(name.clone());
            }
            (Argument::Name { name, .. }, "LOAD_ATTR" | "LOAD_METHOD" | "IMPORT_FROM" | "IMPORT_NAME") => {
                let full = match chain.take() {
                    Some(base) if i.opname != "IMPORT_NAME" => format!("{base}.{name}"),
                    _ => name.clone(),
                };
                out.insert(name.clone());
                out.insert(full.clone());
                chain = Some(full);
            }
            (_, "CACHE" | "PUSH_NULL" | "PRECALL" | "EXTENDED_ARG" | "NOP") => {}
            (Argument::Name { name, .. }, _) => {
                out.insert(name.clone());
                chain = None;
            }
            _ => chain = None,
        }
    }
}

fn binary_symbol(opname: &str) -> Option<&'static str> {
    Some(match opname {
        "BINARY_ADD" | "INPLACE_ADD" => "+",
        "BINARY_SUBTRACT" | "INPLACE_SUBTRACT" => "-",
        "BINARY_MULTIPLY" | "INPLACE_MULTIPLY" => "*",
        "BINARY_TRUE_DIVIDE" | "INPLACE_TRUE_DIVIDE" => "/",
        "BINARY_FLOOR_DIVIDE" => "//",
        "BINARY_MODULO" => "%",
        "BINARY_POWER" => "**",
        "BINARY_MATRIX_MULTIPLY" => "@",
        "BINARY_AND" => "&",
        "BINARY_OR" => "|",
        "BINARY_XOR" => "^",
        "BINARY_LSHIFT" => "<<",
        "BINARY_RSHIFT" => ">>",
        _ => return None,
    })
}

/// The expression a simple lambda returns, by running its bytecode over strings (nothing of the
/// code runs: each instruction only joins text). `None` at the first instruction that is not a
/// load, an attribute, an operator, a call or a return.
fn expression(co: &CodeObject, ins: &[Instruction], refs: &RefTable, version: PyVersion) -> Option<String> {
    let style = if version.major == 2 { ReprStyle::Py2 } else { ReprStyle::Py3 };
    let mut stack: Vec<String> = Vec::new();
    let args = co.arg_names().join(", ");
    for i in ins {
        let name = i.opname;
        match (&i.argument, name) {
            (
                _,
                "RESUME" | "NOP" | "CACHE" | "PUSH_NULL" | "PRECALL" | "EXTENDED_ARG" | "COPY_FREE_VARS" | "MAKE_CELL",
            ) => {}
            (Argument::Local(v), _) if name.starts_with("LOAD_FAST") => stack.extend(v.iter().cloned()),
            (Argument::Free(v), "LOAD_DEREF" | "LOAD_CLOSURE" | "LOAD_CLASSDEREF") => stack.push(v.clone()),
            (Argument::Const(v), "LOAD_CONST") => stack.push(strata_marshal::repr(refs.resolve(v), refs, style, 80)),
            (Argument::SmallInt(n), _) => stack.push(n.to_string()),
            (Argument::Name { name: n, .. }, "LOAD_GLOBAL" | "LOAD_NAME") => stack.push(n.clone()),
            (Argument::Name { name: n, .. }, "LOAD_ATTR" | "LOAD_METHOD") => {
                let base = stack.pop()?;
                stack.push(format!("{base}.{n}"));
            }
            (Argument::BinaryOp(op), "BINARY_OP") => {
                let b = stack.pop()?;
                let a = stack.pop()?;
                let op = op.trim_end_matches('=');
                if op == "[]" { stack.push(format!("{a}[{b}]")) } else { stack.push(format!("({a} {op} {b})")) }
            }
            (_, "BINARY_SUBSCR") => {
                let b = stack.pop()?;
                let a = stack.pop()?;
                stack.push(format!("{a}[{b}]"));
            }
            (Argument::Compare { op, .. }, "COMPARE_OP") => {
                let b = stack.pop()?;
                let a = stack.pop()?;
                stack.push(format!("({a} {op} {b})"));
            }
            (_, "UNARY_NEGATIVE") => {
                let a = stack.pop()?;
                stack.push(format!("-{a}"));
            }
            (_, "BUILD_SLICE") => {
                let n = i.arg? as usize;
                if !(2..=3).contains(&n) || stack.len() < n {
                    return None;
                }
                let parts = stack.split_off(stack.len() - n);
                let parts: Vec<String> =
                    parts.into_iter().map(|p| if p == "None" { String::new() } else { p }).collect();
                stack.push(parts.join(":"));
            }
            (_, "BUILD_TUPLE") => {
                let n = i.arg? as usize;
                if stack.len() < n {
                    return None;
                }
                let parts = stack.split_off(stack.len() - n);
                stack.push(parts.join(", "));
            }
            (_, "CALL" | "CALL_FUNCTION" | "CALL_METHOD") => {
                let n = i.arg? as usize;
                if stack.len() < n + 1 {
                    return None;
                }
                let parts = stack.split_off(stack.len() - n);
                let f = stack.pop()?;
                stack.push(format!("{f}({})", parts.join(", ")));
            }
            (_, "RETURN_VALUE") => {
                let v = stack.pop()?;
                return Some(format!("lambda {args}: {}", strip_parens(&v)));
            }
            (Argument::Const(v), "RETURN_CONST") => {
                return Some(format!("lambda {args}: {}", strata_marshal::repr(refs.resolve(v), refs, style, 80)));
            }
            (_, n) if binary_symbol(n).is_some() => {
                let b = stack.pop()?;
                let a = stack.pop()?;
                stack.push(format!("({a} {} {b})", binary_symbol(n)?));
            }
            _ => return None,
        }
        if stack.len() > 64 {
            return None;
        }
    }
    None
}

fn strip_parens(s: &str) -> &str {
    if s.starts_with('(') && s.ends_with(')') {
        // Only when the outer pair matches each other.
        let inner = &s[1..s.len() - 1];
        let mut depth = 0i32;
        for c in inner.chars() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth < 0 {
                        return s;
                    }
                }
                _ => {}
            }
        }
        if depth == 0 {
            return inner;
        }
    }
    s
}

/// What a CPython does when Keras unmarshals (and first calls) a function written by another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Loads and runs (same version, or same layout and bytecode seen to agree).
    Loads,
    /// `marshal.loads` fails with this error.
    MarshalError(&'static str),
    /// `marshal.loads` succeeds; calling the function fails with this error.
    CallError(&'static str),
    /// The interpreter crashes (segmentation fault) running the foreign bytecode.
    Crash,
    /// Foreign bytecode with no observation (a writer or reader after 3.14): undefined behaviour.
    Undefined,
}

impl Outcome {
    /// Whether Keras gets a working layer.
    pub fn loads(&self) -> bool {
        matches!(self, Outcome::Loads)
    }
    /// One phrase.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Loads => "loads".into(),
            Outcome::MarshalError(e) => format!("fails: {e}"),
            Outcome::CallError(e) => format!("unmarshals, then fails when called: {e}"),
            Outcome::Crash => "crashes the interpreter (segmentation fault)".into(),
            Outcome::Undefined => "undefined behaviour: foreign bytecode (wrong results or a crash)".into(),
        }
    }
}

/// keras-facts §4.3 error texts.
pub const BAD_MARSHAL: &str = "ValueError: bad marshal data (unknown type code)";
/// A 3.6/3.7 blob read by 3.11+.
pub const EOF_ERROR: &str = "EOFError: EOF read where object expected";
/// A 3.11+ blob read by 3.6/3.7.
pub const BAD_INTERNAL: &str = "SystemError: Objects/codeobject.c:<line>: bad argument to internal function";
/// A 3.14 blob run by 3.13 (3.14's RESUME is opcode 128).
pub const UNKNOWN_OPCODE_128: &str = "SystemError: <lambda file>:<line>: unknown opcode 128";
/// A 3.13 blob run by 3.14 (observed in Pyodide's CPython 3.14.2).
pub const NOT_CALLABLE: &str = "TypeError: '' object is not callable";
/// A 3.13 blob run by 3.11/3.12.
pub const NO_LOCALS: &str = "SystemError: no locals found when setting up annotations";

fn layout(v: PyVersion) -> Family {
    if v.major == 2 {
        Family::Py27
    } else if v.minor <= 7 {
        Family::Py30To37
    } else if v.minor <= 10 {
        Family::Py38To310
    } else {
        Family::Py311Plus
    }
}

/// What CPython `reader` does with bytecode marshaled by CPython `writer` (keras-facts §4.3; the
/// matrix recorded in `fixtures/doctor/lambda/marshal_matrix.json`).
pub fn outcome(writer: PyVersion, reader: PyVersion) -> Outcome {
    if writer == reader {
        return Outcome::Loads;
    }
    let (w, r) = (layout(writer), layout(reader));
    let v = |m| PyVersion::new(3, m);
    match (w, r) {
        (a, b) if a == b => match a {
            Family::Py30To37 | Family::Py38To310 | Family::Py27 => Outcome::Loads,
            _ => {
                if writer <= v(12) && reader <= v(12) {
                    Outcome::Loads
                } else if writer == v(13) && reader <= v(12) {
                    Outcome::CallError(NO_LOCALS)
                } else if writer <= v(12) && reader == v(13) {
                    Outcome::Crash
                } else if writer >= v(14) && reader == v(13) {
                    Outcome::CallError(UNKNOWN_OPCODE_128)
                } else if writer >= v(14) && reader < v(14) {
                    Outcome::Crash
                } else if reader == v(14) && writer <= v(12) {
                    Outcome::Crash
                } else if reader == v(14) && writer == v(13) {
                    Outcome::CallError(NOT_CALLABLE)
                } else {
                    Outcome::Undefined
                }
            }
        },
        (Family::Py30To37, Family::Py311Plus) => Outcome::MarshalError(EOF_ERROR),
        (Family::Py311Plus, Family::Py30To37) => Outcome::MarshalError(BAD_INTERNAL),
        _ => Outcome::MarshalError(BAD_MARSHAL),
    }
}

/// The outcome for a blob whose writer is anywhere in `lo..=hi`: the common outcome, else the
/// worst (a crash before an error before undefined).
pub fn outcome_range(lo: PyVersion, hi: PyVersion, reader: PyVersion) -> Outcome {
    let mut outs: Vec<Outcome> = Vec::new();
    let mut v = lo;
    loop {
        outs.push(outcome(v, reader));
        if v >= hi || v.major == 2 && hi.major == 2 {
            break;
        }
        v = if v.major == 2 { PyVersion::new(3, 0) } else { PyVersion::new(3, v.minor.saturating_add(1)) };
        if v.minor > 20 {
            break;
        }
    }
    if outs.windows(2).all(|p| p[0] == p[1]) {
        return outs.swap_remove(0);
    }
    outs.sort_by_key(|o| match o {
        Outcome::Crash => 0,
        Outcome::MarshalError(_) => 1,
        Outcome::CallError(_) => 2,
        Outcome::Undefined => 3,
        Outcome::Loads => 4,
    });
    match outs.first() {
        Some(Outcome::Loads) | None => Outcome::Undefined,
        Some(o) => o.clone(),
    }
}

/// Value shown for a blob's `defaults`/`closure` in a message.
pub fn value_kind(v: &Value) -> &'static str {
    v.type_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_layout_errors_follow_keras_facts() {
        let v = |m| PyVersion::new(3, m);
        assert_eq!(outcome(v(10), v(11)), Outcome::MarshalError(BAD_MARSHAL));
        assert_eq!(outcome(v(7), v(12)), Outcome::MarshalError(EOF_ERROR));
        assert_eq!(outcome(v(12), v(6)), Outcome::MarshalError(BAD_INTERNAL));
        assert_eq!(outcome(v(12), v(13)), Outcome::Crash);
        assert_eq!(outcome(v(13), v(11)), Outcome::CallError(NO_LOCALS));
        assert_eq!(outcome(v(8), v(10)), Outcome::Loads);
        assert_eq!(outcome_range(v(8), v(10), v(9)), Outcome::Loads);
    }

    #[test]
    fn parens_are_stripped_only_when_they_match() {
        assert_eq!(strip_parens("((x * 2.0) + 1.0)"), "(x * 2.0) + 1.0");
        assert_eq!(strip_parens("(a) + (b)"), "(a) + (b)");
    }
}
