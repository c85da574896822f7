//! Resource limits for everything the format layer reads.
//!
//! One [`Limits`] value reaches every parser in `strata-format` (house style §4.3): the zip reader in
//! [`crate::archive`], the JSON config readers ([`Limits::json`]), and (through the `hdf5` field) the
//! HDF5 reader. Every refusal quotes the value found and the limit, and says which
//! `with_*` setter raises it.
//!
//! The defaults are chosen so that every real Keras model we know of loads (multi-GB LLM checkpoints
//! included) while a hostile file cannot make us allocate much more than its own size:
//!
//! | limit | default | what it bounds |
//! |---|---|---|
//! | `max_file_bytes` | 64 GiB | size of a file (or of the bytes handed to `from_bytes`) |
//! | `max_member_bytes` | 32 GiB | declared uncompressed size of one zip member |
//! | `max_decompressed_bytes` | 64 GiB | sum of the declared uncompressed sizes of all zip members |
//! | `max_compression_ratio` | 100 | uncompressed / compressed size of a member larger than `ratio_floor_bytes` |
//! | `ratio_floor_bytes` | 256 MiB | members up to this size are never refused for their ratio |
//! | `max_zip_entries` | 10 000 | entries in a zip central directory |
//! | `max_json_bytes` | 256 MiB | size of one JSON document (`config.json`, `metadata.json`, `model_config`) |
//! | `max_json_depth` | 128 | nesting depth of a JSON document |
//! | `max_layers` | 100 000 | layers in one model config, nested models included |
//! | `max_tensor_elements` | 2^34 | elements of one weight tensor |
//! | `hdf5` | `strata_hdf5::Limits::default()` | what the HDF5 reader bounds (objects, depth, attribute and dataset bytes, shape bombs) |
//!
//! **Zip bombs.** Keras 3.15 (`keras/src/saving/saving_lib.py`, `_reject_zip_bomb`) refuses a member
//! only when it is larger than 4 GiB *and* expands more than 100x. We use a stricter rule: a member
//! whose declared uncompressed size is larger than `ratio_floor_bytes` (256 MiB, the floor Keras's
//! extraction uses) *and* whose ratio exceeds `max_compression_ratio` (100x) is refused before any
//! byte is inflated. Keras itself always writes members STORED (ratio 1), so no Keras-written archive
//! comes near this rule; a legitimately deflated, highly repetitive member above 256 MiB can be
//! admitted with [`Limits::with_max_compression_ratio`]. Independently of the ratio, inflating never
//! produces more than the member's declared size (see [`crate::archive`]).

/// Resource limits for the format layer. Build with [`Limits::default`] and the `with_*` setters.
///
/// ```
/// use strata_format::limits::Limits;
/// let limits = Limits::default().with_max_zip_entries(100).with_max_json_depth(64);
/// assert_eq!(limits.max_zip_entries, 100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest file (or byte buffer) accepted, in bytes. Default 64 GiB.
    pub max_file_bytes: u64,
    /// Largest declared uncompressed size of one zip member, in bytes. Default 32 GiB.
    pub max_member_bytes: u64,
    /// Largest sum of the declared uncompressed sizes of all members of one archive. Default 64 GiB.
    pub max_decompressed_bytes: u64,
    /// Largest uncompressed/compressed ratio of a member above `ratio_floor_bytes`. Default 100.
    pub max_compression_ratio: u64,
    /// Members up to this declared size are never refused for their ratio. Default 256 MiB.
    pub ratio_floor_bytes: u64,
    /// Most entries in one zip central directory. Default 10 000.
    pub max_zip_entries: u64,
    /// Largest JSON document read, in bytes. Default 256 MiB.
    pub max_json_bytes: u64,
    /// Deepest JSON nesting accepted. Default 128.
    pub max_json_depth: usize,
    /// Most layers in one model config, nested models included. Default 100 000.
    pub max_layers: usize,
    /// Most elements in one weight tensor. Default 2^34.
    pub max_tensor_elements: u64,
    /// Limits for HDF5 files and the weights member of an archive (see [`strata_hdf5::Limits`]).
    pub hdf5: strata_hdf5::Limits,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 64 * GIB,
            max_member_bytes: 32 * GIB,
            max_decompressed_bytes: 64 * GIB,
            max_compression_ratio: 100,
            ratio_floor_bytes: 256 * MIB,
            max_zip_entries: 10_000,
            max_json_bytes: 256 * MIB,
            max_json_depth: 128,
            max_layers: 100_000,
            max_tensor_elements: 1 << 34,
            hdf5: strata_hdf5::Limits::default(),
        }
    }
}

impl Limits {
    /// Sets [`Limits::hdf5`].
    pub fn with_hdf5(mut self, hdf5: strata_hdf5::Limits) -> Self {
        self.hdf5 = hdf5;
        self
    }

    /// The JSON parser's limits derived from these.
    pub fn json(&self) -> crate::json::JsonLimits {
        crate::json::JsonLimits {
            max_bytes: usize::try_from(self.max_json_bytes).unwrap_or(usize::MAX),
            max_depth: self.max_json_depth,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_file_bytes`].
    pub fn with_max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }
    /// Sets [`Limits::max_member_bytes`].
    pub fn with_max_member_bytes(mut self, bytes: u64) -> Self {
        self.max_member_bytes = bytes;
        self
    }
    /// Sets [`Limits::max_decompressed_bytes`].
    pub fn with_max_decompressed_bytes(mut self, bytes: u64) -> Self {
        self.max_decompressed_bytes = bytes;
        self
    }
    /// Sets [`Limits::max_compression_ratio`].
    pub fn with_max_compression_ratio(mut self, ratio: u64) -> Self {
        self.max_compression_ratio = ratio;
        self
    }
    /// Sets [`Limits::ratio_floor_bytes`].
    pub fn with_ratio_floor_bytes(mut self, bytes: u64) -> Self {
        self.ratio_floor_bytes = bytes;
        self
    }
    /// Sets [`Limits::max_zip_entries`].
    pub fn with_max_zip_entries(mut self, entries: u64) -> Self {
        self.max_zip_entries = entries;
        self
    }
    /// Sets [`Limits::max_json_bytes`].
    pub fn with_max_json_bytes(mut self, bytes: u64) -> Self {
        self.max_json_bytes = bytes;
        self
    }
    /// Sets [`Limits::max_json_depth`].
    pub fn with_max_json_depth(mut self, depth: usize) -> Self {
        self.max_json_depth = depth;
        self
    }
    /// Sets [`Limits::max_layers`].
    pub fn with_max_layers(mut self, layers: usize) -> Self {
        self.max_layers = layers;
        self
    }
    /// Sets [`Limits::max_tensor_elements`].
    pub fn with_max_tensor_elements(mut self, elements: u64) -> Self {
        self.max_tensor_elements = elements;
        self
    }

    /// Whether a member of `size` uncompressed bytes stored in `compressed` bytes trips the zip-bomb
    /// rule (size above `ratio_floor_bytes` and ratio above `max_compression_ratio`).
    pub fn is_zip_bomb(&self, size: u64, compressed: u64) -> bool {
        if size <= self.ratio_floor_bytes {
            return false;
        }
        // ratio > max  <=>  size > max * compressed (exact in u128, no division).
        u128::from(size) > u128::from(self.max_compression_ratio) * u128::from(compressed)
    }
}

/// Formats a byte count for messages: exact bytes, plus a binary-unit rendering from 1 KiB up
/// (`1536 bytes (1.5 KiB)`).
pub fn human_bytes(n: u64) -> String {
    let units = [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)];
    for (name, size) in units {
        if n >= size {
            let whole = n / size;
            let tenths = (n % size) * 10 / size;
            return format!("{n} bytes ({whole}.{tenths} {name})");
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let l = Limits::default();
        assert_eq!(l.max_compression_ratio, 100);
        assert_eq!(l.ratio_floor_bytes, 256 * 1024 * 1024);
        assert_eq!(l.max_zip_entries, 10_000);
    }

    #[test]
    fn zip_bomb_rule_needs_both_size_and_ratio() {
        let l = Limits::default();
        let big = 300 * MIB;
        assert!(l.is_zip_bomb(big, big / 101));
        assert!(!l.is_zip_bomb(big, big / 100));
        // small members are never bombs, whatever the ratio
        assert!(!l.is_zip_bomb(256 * MIB, 1));
        // zero compressed bytes for a large member is an infinite ratio
        assert!(l.is_zip_bomb(big, 0));
    }

    #[test]
    fn human_bytes_renders_units() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(1536), "1536 bytes (1.5 KiB)");
        assert_eq!(human_bytes(123 * MIB), "128974848 bytes (123.0 MiB)");
    }
}
