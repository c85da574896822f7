//! Bytes -> `H5File::from_bytes` -> `ModelFile::from_hdf5` -> `inspect::Report` (which binds the
//! weights to the config), every tensor read: the legacy `.h5` and `.weights.h5` pipeline end to end.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata_format::bind;
use strata_format::inspect::Report;
use strata_format::limits::Limits;
use strata_format::model::ModelFile;
use strata_hdf5::H5File;

fuzz_target!(|data: &[u8]| {
    let mut limits = Limits::default();
    // 64 MiB instead of 4 GiB, as in hdf5_open (see fuzz/README.md)
    limits.hdf5.shape_bomb_min_bytes = 64 << 20;
    let Ok(file) = H5File::from_bytes(data.to_vec(), &limits.hdf5) else {
        return;
    };
    let Ok(mf) = ModelFile::from_hdf5(Path::new("fuzz.h5"), file, &limits) else {
        return;
    };
    if let (Some(config), Some(store)) = (&mf.config, &mf.weights) {
        let binding = bind::bind(config, store);
        std::hint::black_box(binding.total_params());
    }
    if let Some(store) = &mf.weights {
        for t in store.tensors() {
            let _ = store.read(t);
        }
    }
    let report = Report::new(&mf);
    std::hint::black_box((report.to_text(), report.to_json()));
});
