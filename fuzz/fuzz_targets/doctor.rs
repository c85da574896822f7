//! Bytes -> a file -> `strata_doctor::doctor` (detection, archive, HDF5, config, Lambda bytecode,
//! pickle opcode scan, weight binding) and every output (text, JSON, SARIF through a one-file
//! scan report); the same bytes also go straight to the pickle scanner, the `.npy` object-array
//! check and the Lambda analysis (as code text). The first byte picks the file extension, so the
//! extension-dependent paths (`.keras`, `.h5`, `.npz`, `.pkl`) are all reached. Findings and
//! errors are fine; a panic, hang or unbounded allocation is a bug.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use strata_doctor::{Options, ScanReport, lambda, output, pickle};

const EXTENSIONS: [&str; 5] = ["keras", "h5", "npz", "pkl", "json"];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let ext = EXTENSIONS[usize::from(first) % EXTENSIONS.len()];
    let Ok(dir) = tempfile_dir() else { return };
    let path = dir.join(format!("input.{ext}"));
    if std::fs::File::create(&path).and_then(|mut f| f.write_all(rest)).is_err() {
        return;
    }
    let opts = Options::default();
    let report = strata_doctor::doctor(&path, &opts);
    let _ = output::doctor_text(&report, &opts);
    let _ = output::doctor_json(&report, &opts).to_string_pretty();
    let scan = ScanReport { findings: report.findings.clone(), scanned: vec![report.file.clone()], ..ScanReport::default() };
    let _ = output::scan_sarif(&scan).to_string_pretty();
    let _ = output::scan_json(&scan).to_string_pretty();
    let _ = output::scan_text(&scan);
    let _ = std::fs::remove_file(&path);

    let p = pickle::scan(rest);
    let _ = p.dangerous();
    let _ = pickle::npy_object_payload(rest);
    if let Ok(text) = std::str::from_utf8(rest) {
        let a = lambda::analyze(text);
        let _ = a.writer_range();
    }
});

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("strata-fuzz-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
