//! The decoder, detector and disassembler against what each CPython's own `marshal` and `dis`
//! said (fixtures/marshal/<version>/*.json, written by tools/marshal/make_fixtures.py).
//! No expected value here is typed by hand.

use std::path::{Path, PathBuf};

use serde_json::Value as J;
use strata_marshal::disasm::{Argument, disassemble};
use strata_marshal::{CodeObject, PyVersion, RefTable, Value, detect, keras, opcodes, repr};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/marshal")
}

fn versions() -> Vec<(PyVersion, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root()).expect("fixtures/marshal exists") {
        let p = e.expect("dir entry").path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        let Some((a, b)) = name.split_once('.') else { continue };
        out.push((PyVersion::new(a.parse().unwrap(), b.parse().unwrap()), p));
    }
    out.sort();
    out
}

fn cases(dir: &Path) -> Vec<(String, Vec<u8>, J)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap().to_string();
        let Some(stem) = name.strip_suffix(".json") else { continue };
        let blob = std::fs::read(dir.join(format!("{stem}.bin"))).unwrap();
        let json: J = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        out.push((stem.to_string(), blob, json));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn strs(j: &J) -> Vec<String> {
    j.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn check_code(ctx: &str, code: &CodeObject, refs: &RefTable, j: &J, v: PyVersion) {
    let style = if v.major == 2 { strata_marshal::ReprStyle::Py2 } else { strata_marshal::ReprStyle::Py3 };
    assert_eq!(code.name, j["co_name"].as_str().unwrap(), "{ctx} co_name");
    assert_eq!(code.filename, j["co_filename"].as_str().unwrap(), "{ctx} co_filename");
    assert_eq!(i64::from(code.firstlineno), j["co_firstlineno"].as_i64().unwrap(), "{ctx} co_firstlineno");
    assert_eq!(i64::from(code.argcount), j["co_argcount"].as_i64().unwrap(), "{ctx} co_argcount");
    assert_eq!(i64::from(code.posonlyargcount), j["co_posonlyargcount"].as_i64().unwrap(), "{ctx} posonly");
    assert_eq!(i64::from(code.kwonlyargcount), j["co_kwonlyargcount"].as_i64().unwrap(), "{ctx} kwonly");
    if let Some(n) = code.nlocals {
        assert_eq!(i64::from(n), j["co_nlocals"].as_i64().unwrap(), "{ctx} co_nlocals");
    }
    assert_eq!(i64::from(code.stacksize), j["co_stacksize"].as_i64().unwrap(), "{ctx} co_stacksize");
    assert_eq!(i64::from(code.flags), j["co_flags"].as_i64().unwrap(), "{ctx} co_flags");
    assert_eq!(code.varnames, strs(&j["co_varnames"]), "{ctx} co_varnames");
    assert_eq!(code.freevars, strs(&j["co_freevars"]), "{ctx} co_freevars");
    assert_eq!(code.cellvars, strs(&j["co_cellvars"]), "{ctx} co_cellvars");
    assert_eq!(code.names, strs(&j["co_names"]), "{ctx} co_names");
    let hex: String = code.code.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, j["co_code_hex"].as_str().unwrap(), "{ctx} co_code");
    if let Some(q) = j.get("co_qualname") {
        assert_eq!(code.qualname.as_deref(), q.as_str(), "{ctx} co_qualname");
    }
    let consts = j["co_consts"].as_array().unwrap();
    assert_eq!(code.consts.len(), consts.len(), "{ctx} co_consts length");
    for (i, (c, jc)) in code.consts.iter().zip(consts).enumerate() {
        match (refs.resolve(c), jc.get("code")) {
            (Value::Code(inner), Some(jinner)) => check_code(&format!("{ctx} const {i}"), inner, refs, jinner, v),
            (other, None) => {
                assert_eq!(repr(other, refs, style, 10_000), jc["repr"].as_str().unwrap(), "{ctx} const {i}")
            }
            (other, Some(_)) => panic!("{ctx} const {i}: expected a code object, got {other:?}"),
        }
    }
    // Disassembly with this version's table, against dis.
    let table = opcodes::table(v).unwrap_or_else(|| panic!("no opcode table for {v}"));
    let ins = disassemble(code, table).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let jins = j["instructions"].as_array().unwrap();
    let ours: Vec<(String, Option<u64>)> = ins.iter().map(|i| (i.opname.to_string(), i.arg.map(u64::from))).collect();
    let theirs: Vec<(String, Option<u64>)> =
        jins.iter().map(|i| (i["opname"].as_str().unwrap().to_string(), i["arg"].as_u64())).collect();
    assert_eq!(ours, theirs, "{ctx} instructions");
    for (a, b) in ins.iter().zip(jins) {
        assert_eq!(a.offset as u64, b["offset"].as_u64().unwrap(), "{ctx} offset of {}", a.opname);
        let want = b["argrepr"].as_str().unwrap();
        match &a.argument {
            Argument::Const(c) if matches!(refs.resolve(c), Value::Code(_)) => {
                let Value::Code(inner) = refs.resolve(c) else { unreachable!() };
                assert!(want.starts_with(&format!("<code object {} at ", inner.name)), "{ctx} {want}");
            }
            Argument::Const(_)
            | Argument::Name { .. }
            | Argument::Local(_)
            | Argument::Free(_)
            | Argument::BinaryOp(_)
            | Argument::Compare { .. } => {
                assert_eq!(a.argrepr(refs, v), want, "{ctx} argrepr of {} at {}", a.opname, a.offset)
            }
            _ => {}
        }
    }
}

#[test]
fn every_fixture_decodes_detects_and_disassembles_like_cpython() {
    let mut checked = Vec::new();
    for (v, dir) in versions() {
        for (name, blob, j) in cases(&dir) {
            let ctx = format!("{v}/{name}");
            assert_eq!(blob.len() as u64, j["blob_len"].as_u64().unwrap(), "{ctx}");
            let cands = detect(&blob);
            assert_eq!(cands.len(), 1, "{ctx}: {:?}", cands.iter().map(|c| c.to_string()).collect::<Vec<_>>());
            let c = &cands[0];
            assert!(c.min <= v && v <= c.max, "{ctx}: detected {}", c.range());
            assert!(c.bytecode_versions.contains(&v), "{ctx}: bytecode versions {:?}", c.bytecode_versions);
            let code = c.decoded.code().unwrap_or_else(|| panic!("{ctx}: not a code object"));
            check_code(&ctx, code, &c.decoded.refs, &j["code"], v);
            checked.push(format!("{ctx}={}", c.range()));
        }
    }
    // Every interpreter that tools/marshal/gen_all.sh covers has fixtures.
    for v in ["2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14"] {
        assert!(checked.iter().any(|c| c.starts_with(&format!("{v}/"))), "no fixtures for {v}");
    }
    eprintln!("{}", checked.join("\n"));
}

#[test]
fn the_lambda_keras_writes_narrows_per_version() {
    // keras-facts §4.3: the writer's version, as far as the bytes can tell.
    for (v, dir) in versions() {
        let blob = std::fs::read(dir.join("affine.bin")).unwrap();
        let c = detect(&blob);
        let range = c.first().map(|c| c.range()).unwrap_or_default();
        let expected = match (v.major, v.minor) {
            (2, 7) => "2.7",
            (3, 6 | 7) => "3.6-3.7",
            (3, 8 | 9) => "3.8-3.9",
            (3, 10) => "3.10",
            (3, 11 | 12) => "3.11-3.12",
            (3, 13) => "3.13",
            _ => "3.14",
        };
        assert_eq!(range, expected, "{v}");
    }
}

#[test]
fn windows_corrupted_blobs_are_recognised() {
    for (v, dir) in versions() {
        for (name, blob, j) in cases(&dir) {
            let win = dir.join(format!("{name}.win.bin"));
            if !win.exists() {
                assert_eq!(j["windows_replaced"].as_u64(), Some(0), "{v}/{name}");
                continue;
            }
            let bad = std::fs::read(&win).unwrap();
            let finding = keras::windows_corruption(&bad);
            if name == "len92" {
                // A 92-byte string's length byte became 47: no layout parses it, restoring 0x5C does.
                assert!(detect(&bad).is_empty(), "{v}/{name} parses despite the damage");
                let f = finding.as_ref().unwrap_or_else(|| panic!("{v}/{name}: not recognised"));
                let repaired = f.repaired.as_ref().expect("repaired blob");
                assert!(!f.restored_offsets.is_empty());
                for &o in &f.restored_offsets {
                    assert_eq!(blob[o], b'\\', "{v}/{name}: restored offset {o} was not a backslash");
                }
                assert!(!detect(repaired).is_empty());
            }
            if name == "backslash" {
                if let Some(f) = &finding {
                    assert!(f.telltales.iter().any(|t| t.contains("\"/n\"")), "{v}/{name}: {:?}", f.telltales);
                }
                assert!(finding.is_some(), "{v}/{name}: not recognised");
            }
        }
    }
}

#[test]
fn keras_base64_text_round_trip() {
    // Keras 3 writes codecs.encode(blob, "base64"): MIME lines of 76 characters.
    use base64::Engine as _;
    for (v, dir) in versions() {
        let blob = std::fs::read(dir.join("affine.bin")).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
        let mime: String =
            b64.as_bytes().chunks(76).map(|c| format!("{}\n", std::str::from_utf8(c).unwrap())).collect();
        let (code, cands) = keras::detect_lambda(&mime);
        assert_eq!(code.bytes, blob, "{v}");
        assert_eq!(cands.len(), 1, "{v}");
        // Keras <= 2.1.1: blob.decode("raw_unicode_escape") read back with encode("raw_unicode_escape").
        let text: String = blob.iter().map(|&b| char::from(b)).collect();
        assert_eq!(keras::decode_lambda_code(&text).bytes, blob, "{v}");
    }
}
