//! Bytes -> `npy::parse_npz` (input starting with `PK`) or `npy::parse_npy` (anything else) ->
//! every array's `to_f32`; then the writer round trip: `npy_bytes` of each array, and `npz_bytes`
//! of all of them, must parse back to equal arrays.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_format::error::Location;
use strata_format::limits::Limits;
use strata_format::npy::{self, NpyArray};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let loc = Location::default();
    let arrays: Vec<NpyArray> = if data.starts_with(b"PK") {
        match npy::parse_npz(data.to_vec(), &loc, &limits) {
            Ok(a) => a,
            Err(e) => {
                std::hint::black_box(e.to_string());
                return;
            }
        }
    } else {
        match npy::parse_npy(data.to_vec(), "x", &loc, &limits) {
            Ok(a) => vec![a],
            Err(e) => {
                std::hint::black_box(e.to_string());
                return;
            }
        }
    };
    for a in &arrays {
        let values = a.to_f32();
        assert_eq!(values.len(), a.len(), "to_f32 gives one value per element");
        assert_eq!(a.data.len(), a.len() * a.dtype.itemsize(), "data is whole elements");
        let again = npy::parse_npy(npy::npy_bytes(a), &a.name, &loc, &limits)
            .unwrap_or_else(|e| panic!("the writer's .npy does not parse: {e}"));
        assert_eq!(&again, a, "the writer's .npy parses to another array");
    }
    if let Ok(z) = npy::npz_bytes(&arrays) {
        let again =
            npy::parse_npz(z, &loc, &limits).unwrap_or_else(|e| panic!("the writer's .npz does not parse: {e}"));
        assert_eq!(again, arrays, "the writer's .npz parses to other arrays");
    }
});
