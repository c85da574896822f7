//! Bytes -> `H5File::from_bytes` -> `ModelFile::from_hdf5` -> `inspect::Report` (which binds the
//! weights to the config): the legacy `.h5` and `.weights.h5` pipeline end to end.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata_format::bind;
use strata_format::inspect::Report;
use strata_format::limits::Limits;
use strata_format::model::ModelFile;
use strata_hdf5::H5File;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
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
    let report = Report::new(&mf);
    std::hint::black_box((report.to_text(), report.to_json()));
});
