//! Bytes as a model file -> `ModelFile` (a `.keras` archive when the input starts with `PK`,
//! else an HDF5 `.h5`) -> `Model::from_file` (binds the weights and builds every layer) ->
//! `predict` on inputs shaped from the config's `InputLayer`s (free dimensions 2, at most 65536
//! elements per input; ramp values, small integers for integer dtypes). Errors are fine; panics,
//! hangs and unbounded allocations are bugs.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata_format::archive::KerasArchive;
use strata_format::limits::Limits;
use strata_format::model::ModelFile;
use strata_hdf5::H5File;
use strata_layers::Model;
use strata_tensor::Tensor;

fn model_file(data: &[u8], limits: &Limits) -> Option<ModelFile> {
    if data.starts_with(b"PK") {
        let archive = KerasArchive::from_bytes(data.to_vec(), limits).ok()?;
        ModelFile::from_archive(Path::new("fuzz.keras"), &archive, limits).ok()
    } else {
        let file = H5File::from_bytes(data.to_vec(), &limits.hdf5).ok()?;
        ModelFile::from_hdf5(Path::new("fuzz.h5"), file, limits).ok()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut limits = Limits::default();
    // 64 MiB instead of the default floor, as in hdf5_open (see fuzz/README.md)
    limits.hdf5.shape_bomb_min_bytes = 64 << 20;
    let Some(mf) = model_file(data, &limits) else { return };
    let Some(config) = &mf.config else { return };
    let Ok(model) = Model::from_file(&mf) else { return };
    let mut inputs = Vec::new();
    for spec in Model::input_specs(config) {
        let dims: Vec<usize> = match &spec.shape {
            Some(d) => d.iter().map(|d| d.unwrap_or(2)).collect(),
            None => vec![2, 4],
        };
        let Some(n) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else { return };
        if n > 1 << 16 {
            return;
        }
        let int = spec.dtype.starts_with("int") || spec.dtype.starts_with("uint") || spec.dtype == "bool";
        let data = (0..n).map(|i| if int { (i % 3) as f32 } else { ((i % 7) as f32 - 3.0) * 0.25 }).collect();
        let Ok(t) = Tensor::from_vec(&dims, data) else { return };
        inputs.push(t);
    }
    let _ = model.predict(&inputs);
});
