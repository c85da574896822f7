//! Calls into hdf5-pure.
//!
//! hdf5-pure is only asked to do two things on files: read chunked (filtered)
//! dataset bytes, and list chunk sizes for the shape-bomb guard. Its errors are
//! kept as the `source` of [`Error::Backend`]; the one it raises for HDF5 2.0's
//! data layout message version 5 becomes [`Error::Unsupported`].

use crate::error::{Error, FIX_RESAVE, Result};

/// Runs `f`, mapping hdf5-pure's error to this crate's.
pub(crate) fn call<T>(
    path: &str,
    doing: &'static str,
    f: impl FnOnce() -> std::result::Result<T, hdf5_pure::Error>,
) -> Result<T> {
    f().map_err(|source| map(path, doing, source))
}

pub(crate) fn map(path: &str, doing: &'static str, source: hdf5_pure::Error) -> Error {
    match source {
        hdf5_pure::Error::Format(hdf5_pure::FormatError::InvalidLayoutVersion(v)) => Error::unsupported(
            path,
            format!("HDF5 data layout message version {v} (written by HDF5 >= 2.0 with libver='latest')"),
            FIX_RESAVE,
        ),
        source => Error::Backend { path: path.to_string(), doing, source },
    }
}
