//! The crate's error type.
//!
//! Every variant names the HDF5 object it concerns (an absolute path such as
//! `/model_weights/dense/kernel:0`; `/` for the root group and for file-level
//! problems) and carries the values behind the failure, so callers can attach
//! their own location (file name, zip member) and render the message.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while reading or writing HDF5.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or mapped.
    #[error("cannot read hdf5 file `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// No HDF5 superblock signature at offset 0, 512, 1024, ...
    #[error(
        "not an hdf5 file: no superblock signature found in the first {searched} bytes; \
         check that the file is an .h5 file and was copied completely"
    )]
    NotHdf5 {
        /// How many bytes were searched.
        searched: u64,
    },

    /// A structure inside the file is inconsistent.
    #[error(
        "malformed hdf5 file at `{object}`: bad {what} at byte offset {offset}; \
         the file is damaged or was not written by an hdf5 library"
    )]
    Malformed {
        /// The object being read when the problem was found.
        object: String,
        /// Which structure is bad.
        what: &'static str,
        /// Absolute byte offset of the structure.
        offset: u64,
    },

    /// A structure or a dataset's bytes lie past the end of the file.
    #[error(
        "truncated file: {what} `{object}` needs bytes {start}..{end} but the file ends at {file_len}; \
         the file was cut short (interrupted download or copy), get a complete copy"
    )]
    Truncated {
        /// The object concerned.
        object: String,
        /// `dataset`, `object header`, `attribute`, ...
        what: &'static str,
        /// First byte needed.
        start: u64,
        /// One past the last byte needed.
        end: u64,
        /// The file's length.
        file_len: u64,
    },

    /// No object at this path.
    #[error("no hdf5 object at `{path}`")]
    NotFound {
        /// The path that was looked up.
        path: String,
    },

    /// The object exists but is not a group.
    #[error("`{path}` is not a group (it is {found})")]
    NotAGroup {
        /// The path.
        path: String,
        /// What it is instead.
        found: String,
    },

    /// The object exists but is not a dataset.
    #[error("`{path}` is not a dataset (it is {found})")]
    NotADataset {
        /// The path.
        path: String,
        /// What it is instead.
        found: String,
    },

    /// A soft link was met on a path; links are listed, never followed.
    #[error(
        "refusing to follow soft link `{path}` -> `{target}`: links are never followed \
         (as in Keras >= 3.14); replace the link with the object itself"
    )]
    SoftLink {
        /// Where the link is.
        path: String,
        /// The path it points to.
        target: String,
    },

    /// An external link was met on a path.
    #[error(
        "refusing to follow external link `{path}` -> `{file}:{target}`: links to other files \
         are never followed (as in Keras >= 3.14); copy the object into this file"
    )]
    ExternalLink {
        /// Where the link is.
        path: String,
        /// The other file.
        file: String,
        /// The object path inside the other file.
        target: String,
    },

    /// A dataset keeps its elements in other files (`H5Pset_external`).
    #[error(
        "refusing to read dataset `{path}`: its elements are stored in external files, \
         which are never read (as in Keras >= 3.14); re-save the data inside the file"
    )]
    ExternalStorage {
        /// The dataset.
        path: String,
    },

    /// A virtual dataset maps elements from other datasets or files.
    #[error(
        "refusing to read dataset `{path}`: it is a virtual dataset, which is never resolved \
         (as in Keras >= 3.14); re-save the data as a regular dataset"
    )]
    VirtualDataset {
        /// The dataset.
        path: String,
    },

    /// A count or size exceeds a [`Limits`](crate::Limits) field.
    #[error(
        "{what} at `{object}` is {value}, over the limit of {limit}; raise `Limits::{field}` if the file is trusted"
    )]
    Limit {
        /// The object concerned.
        object: String,
        /// What was counted (`object count`, `group depth`, `attribute size in bytes`...).
        what: &'static str,
        /// The value found.
        value: u64,
        /// The limit.
        limit: u64,
        /// The [`Limits`](crate::Limits) field to raise.
        field: &'static str,
    },

    /// A dataset declares far more bytes than the file stores for it.
    #[error(
        "refusing dataset `{path}`: its shape declares {declared} bytes but the file stores only {stored} \
         bytes for it (more than {ratio}x), a shape bomb; the file is damaged or hostile \
         (raise `Limits::shape_bomb_ratio` only if the file is trusted)"
    )]
    ShapeBomb {
        /// The dataset.
        path: String,
        /// `nelem * element size`.
        declared: u64,
        /// Bytes really stored.
        stored: u64,
        /// The ratio limit.
        ratio: u64,
    },

    /// `nelem * size` overflows 64 bits.
    #[error(
        "dataset or attribute `{path}` declares a shape {shape:?} whose byte size overflows 64 bits; the file is damaged or hostile"
    )]
    SizeOverflow {
        /// The object.
        path: String,
        /// The declared shape.
        shape: Vec<u64>,
    },

    /// An HDF5 feature this crate does not read.
    #[error("unsupported hdf5 feature at `{path}`: {feature}; {fix}")]
    Unsupported {
        /// The object.
        path: String,
        /// The feature, named as the HDF5 specification names it.
        feature: String,
        /// How to get a file this crate reads.
        fix: &'static str,
    },

    /// hdf5-pure reported an error.
    #[error("hdf5 error at `{path}` while {doing}: {source}")]
    Backend {
        /// The object.
        path: String,
        /// What was being done.
        doing: &'static str,
        /// hdf5-pure's error.
        source: hdf5_pure::Error,
    },

    /// The writer was given something it cannot write.
    #[error("cannot write `{path}`: {reason}")]
    Write {
        /// The object path given to the writer.
        path: String,
        /// Why.
        reason: WriteProblem,
    },
}

/// Why a [`Writer`](crate::Writer) call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteProblem {
    /// The path is empty, `/`, or has an empty or `.`/`..` component.
    #[error("invalid object path; use names separated by `/` without `.` or `..`")]
    InvalidPath,
    /// An object already exists at this path.
    #[error("an object already exists there")]
    Exists,
    /// A parent on the path is a dataset.
    #[error("parent `{0}` is a dataset, not a group")]
    ParentIsDataset(String),
    /// No object to attach an attribute to.
    #[error("no group or dataset there; create it before setting attributes")]
    NoSuchObject,
    /// The raw bytes do not match shape x dtype size.
    #[error("data has {found} bytes but the shape and dtype need {expected}")]
    DataLength {
        /// Bytes needed.
        expected: u64,
        /// Bytes given.
        found: u64,
    },
    /// The dtype cannot be written as a dataset.
    #[error("dtype `{0}` cannot be written; use a numeric or bool dtype")]
    Dtype(String),
    /// A string attribute holds bytes that are not UTF-8 (hdf5-pure writes strings from `str`).
    #[error("attribute `{0}` holds bytes that are not valid UTF-8; the writer stores strings as text")]
    NotUtf8(String),
    /// The attribute name is empty.
    #[error("attribute name is empty")]
    EmptyAttrName,
}

impl Error {
    pub(crate) fn malformed(object: &str, what: &'static str, offset: u64) -> Error {
        Error::Malformed { object: object.to_string(), what, offset }
    }

    pub(crate) fn limit(object: &str, what: &'static str, value: u64, limit: u64, field: &'static str) -> Error {
        Error::Limit { object: object.to_string(), what, value, limit, field }
    }

    pub(crate) fn unsupported(path: &str, feature: impl Into<String>, fix: &'static str) -> Error {
        Error::Unsupported { path: path.to_string(), feature: feature.into(), fix }
    }

    pub(crate) fn write(path: &str, reason: WriteProblem) -> Error {
        Error::Write { path: path.to_string(), reason }
    }

    /// The HDF5 object path the error concerns, when it has one.
    pub fn object_path(&self) -> Option<&str> {
        match self {
            Error::Io { .. } | Error::NotHdf5 { .. } => None,
            Error::Malformed { object, .. } | Error::Truncated { object, .. } | Error::Limit { object, .. } => {
                Some(object)
            }
            Error::NotFound { path }
            | Error::NotAGroup { path, .. }
            | Error::NotADataset { path, .. }
            | Error::SoftLink { path, .. }
            | Error::ExternalLink { path, .. }
            | Error::ExternalStorage { path }
            | Error::VirtualDataset { path }
            | Error::ShapeBomb { path, .. }
            | Error::SizeOverflow { path, .. }
            | Error::Unsupported { path, .. }
            | Error::Backend { path, .. }
            | Error::Write { path, .. } => Some(path),
        }
    }
}

/// Fix text for files that need rewriting with an older HDF5 format.
pub(crate) const FIX_RESAVE: &str = "re-save the file with h5py using libver='earliest' or libver='v110' \
     (h5py.File(path, 'w', libver='v110')), or rewrite it with `h5repack -l CONTI` / h5repack from HDF5 1.14";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_where_and_the_fix() {
        let e = Error::Io {
            path: "m.h5".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(e.to_string(), "cannot read hdf5 file `m.h5`: no such file");
        let e = Error::malformed("/a", "local heap signature", 96);
        assert_eq!(
            e.to_string(),
            "malformed hdf5 file at `/a`: bad local heap signature at byte offset 96; the file is damaged or was not \
             written by an hdf5 library"
        );
        assert_eq!(e.object_path(), Some("/a"));
        let e = Error::SizeOverflow { path: "/d".into(), shape: vec![u64::MAX, 2] };
        assert_eq!(
            e.to_string(),
            format!(
                "dataset or attribute `/d` declares a shape [{}, 2] whose byte size overflows 64 bits; the file is \
                 damaged or hostile",
                u64::MAX
            )
        );
        let e = Error::Backend {
            path: "/c".into(),
            doing: "reading chunked data",
            source: hdf5_pure::Error::Format(hdf5_pure::FormatError::InvalidLayoutVersion(9)),
        };
        assert!(e.to_string().starts_with("hdf5 error at `/c` while reading chunked data: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
