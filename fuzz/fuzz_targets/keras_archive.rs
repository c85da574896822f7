//! Bytes -> `KerasArchive::from_bytes` -> `metadata`, `config_bytes`, `weights_bytes`, every member,
//! then the whole `.keras` pipeline: `ModelFile::from_archive` -> every tensor read -> `inspect::Report` (which binds weights).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata_format::archive::KerasArchive;
use strata_format::inspect::Report;
use strata_format::limits::Limits;
use strata_format::model::ModelFile;

fuzz_target!(|data: &[u8]| {
    let mut limits = Limits::default();
    // 64 MiB instead of 4 GiB, as in hdf5_open (see fuzz/README.md)
    limits.hdf5.shape_bomb_min_bytes = 64 << 20;
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
        if let Some(store) = &mf.weights {
            for t in store.tensors() {
                let _ = store.read(t);
            }
        }
        let report = Report::new(&mf);
        std::hint::black_box((report.to_text(), report.to_json()));
    }
});
