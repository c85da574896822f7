//! Bytes -> `KerasArchive::from_bytes` -> `metadata`, `config_bytes`, `weights_bytes`, every member,
//! then the whole `.keras` pipeline: `ModelFile::from_archive` -> `inspect::Report` (which binds weights).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata_format::archive::KerasArchive;
use strata_format::inspect::Report;
use strata_format::limits::Limits;
use strata_format::model::ModelFile;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(archive) = KerasArchive::from_bytes(data.to_vec(), &limits) else {
        return;
    };
    let _ = archive.metadata();
    let _ = archive.config_bytes();
    let _ = archive.weights_format();
    let _ = archive.weights_range();
    let _ = archive.weights_bytes();
    let names: Vec<String> = archive.members().iter().map(|m| m.name.clone()).collect();
    for name in &names {
        let _ = archive.read_member(name);
    }
    let _ = archive.assets().count();
    if let Ok(mf) = ModelFile::from_archive(Path::new("fuzz.keras"), &archive, &limits) {
        let report = Report::new(&mf);
        std::hint::black_box((report.to_text(), report.to_json()));
    }
});
