//! Bytes -> `strata_marshal::detect_with` (trial decodes with every code-object layout), then the
//! disassembly of every candidate's code object (and its nested ones) with every opcode table,
//! plus the Keras text decoders and the Windows-corruption search. Errors are fine; a panic, hang
//! or unbounded allocation is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_marshal::{Limits, detect_with, disasm, keras, opcodes};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let detection = detect_with(data, &limits);
    for c in &detection.candidates {
        let _ = c.range();
        if let Some(code) = c.decoded.code() {
            for v in opcodes::versions() {
                if let Some(table) = opcodes::table(v) {
                    let _ = disasm::disassemble(code, table);
                }
            }
        }
    }
    let _ = keras::windows_corruption(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = keras::decode_lambda_code(text);
    }
});
