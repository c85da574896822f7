//! Bounds applied while reading a file.
//!
//! Every number read from a file that decides how much work or memory follows
//! (object counts, nesting, attribute and dataset sizes) is checked against a
//! [`Limits`] value before anything is allocated. The shape-bomb rule mirrors
//! Keras 3.15 `saving_lib.py` (PR #22975): a dataset whose declared size is
//! above 4 GiB *and* more than 1000 times the bytes the file really stores for
//! it is refused.

/// Resource bounds for reading one HDF5 file. Errors quote the value and the
/// limit; raise a field to accept a bigger file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest file accepted by [`H5File::open`](crate::H5File::open) and
    /// [`H5File::from_bytes`](crate::H5File::from_bytes). Default 256 GiB.
    pub max_file_bytes: u64,
    /// Most objects (links, B-tree nodes, header chunks) visited by one walk or
    /// one group listing. Default 1 000 000.
    pub max_objects: usize,
    /// Deepest group nesting a walk descends into (the root is depth 0).
    /// Default 64; values above 1024 act as 1024.
    pub max_depth: usize,
    /// Largest decoded attribute value, in bytes (vlen strings counted by their
    /// payload). Default 256 MiB.
    pub max_attr_bytes: u64,
    /// Largest dataset [`Dataset::read_raw`](crate::Dataset::read_raw) returns,
    /// in bytes. Default 64 GiB.
    pub max_dataset_bytes: u64,
    /// A dataset declaring more than this many times its stored bytes (and more
    /// than [`shape_bomb_min_bytes`](Self::shape_bomb_min_bytes)) is refused.
    /// Default 1000, as in Keras.
    pub shape_bomb_ratio: u64,
    /// Declared sizes up to this many bytes are never treated as shape bombs.
    /// Default 256 MiB (Keras 3.15: 4 GiB). Keras stores every weight whole, so a
    /// real weight's ratio is about 1; fuzzing found a 25 KB file declaring 2.7 GB
    /// of fill values that the 4 GiB floor would let through.
    pub shape_bomb_min_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const GIB: u64 = 1 << 30;
        const MIB: u64 = 1 << 20;
        Limits {
            max_file_bytes: 256 * GIB,
            max_objects: 1_000_000,
            max_depth: 64,
            max_attr_bytes: 256 << 20,
            max_dataset_bytes: 64 * GIB,
            shape_bomb_ratio: 1000,
            shape_bomb_min_bytes: 256 * MIB,
        }
    }
}
