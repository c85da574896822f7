//! Hostile input: random bytes and mutations of real blobs never panic, never overflow the stack,
//! and every error renders a message.

use proptest::prelude::*;
use strata_marshal::{Family, Limits, decode, detect, disasm, keras, opcodes, repr};

fn fixture_blobs() -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/marshal");
    let mut out = Vec::new();
    for v in std::fs::read_dir(root).unwrap() {
        for f in std::fs::read_dir(v.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "bin") {
                out.push(std::fs::read(p).unwrap());
            }
        }
    }
    out.sort();
    out
}

/// Everything a consumer would do with a blob.
fn exercise(data: &[u8]) {
    for fam in Family::ALL {
        match decode(data, fam, &Limits::default()) {
            Ok(d) => {
                let _ = repr(&d.value, &d.refs, strata_marshal::ReprStyle::Py3, 1000);
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    for c in detect(data) {
        let Some(code) = c.decoded.code() else { continue };
        for v in opcodes::versions() {
            if let Ok(ins) = disasm::disassemble(code, opcodes::table(v).unwrap()) {
                let _ = disasm::listing(&ins, &c.decoded.refs, v);
            }
        }
    }
}

#[test]
fn deep_nesting_at_the_default_limit_fits_a_test_thread_stack() {
    // Test threads have 2 MiB of stack; the default depth limit must be safe there.
    let depth = Limits::default().max_depth as usize;
    for open in [b'[', b'(', b'<', b'>'] {
        let mut data = Vec::new();
        for _ in 0..depth + 5 {
            data.push(open);
            data.extend(1i32.to_le_bytes());
        }
        data.push(b'N');
        let e = decode(&data, Family::Py311Plus, &Limits::default()).unwrap_err();
        assert!(e.to_string().starts_with("nesting depth at offset "), "{e}");
    }
    // Nested code objects: a code object whose co_code is itself a code object, and so on.
    let mut data = Vec::new();
    for _ in 0..depth + 5 {
        data.push(b'c');
        data.extend([0u8; 20]);
    }
    let e = decode(&data, Family::Py311Plus, &Limits::default()).unwrap_err();
    assert!(e.to_string().starts_with("nesting depth at offset "), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(&data);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        let blobs = fixture_blobs();
        let mut data = blobs[pick.index(blobs.len())].clone();
        for (at, byte, kind) in edits {
            if data.is_empty() { break; }
            let i = at.index(data.len());
            match kind {
                0 => data[i] = byte,
                1 => data.truncate(i),
                2 => data.insert(i, byte),
                _ => { data.remove(i); }
            }
        }
        exercise(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn windows_repair_never_panics(pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>()) {
        let blobs = fixture_blobs();
        let mut data = blobs[pick.index(blobs.len())].clone();
        let i = at.index(data.len());
        data[i] = b'/';
        if let Some(f) = keras::windows_corruption(&data)
            && let Some(r) = &f.repaired {
                prop_assert!(!detect(r).is_empty());
            }
    }
}
