//! Resource limits for the marshal decoder (house style §4.3).
//!
//! | limit | default | what it bounds |
//! |---|---|---|
//! | `max_input_bytes` | 64 MiB | size of the marshal data handed to the decoder |
//! | `max_depth` | 100 | nesting of containers and code objects (CPython's own reader allows 2000) |
//! | `max_objects` | 4 000 000 | objects decoded, back-references included |
//!
//! Lengths read from the data are never trusted for allocation: a container preallocates at most
//! one slot per byte still unread, and strings are borrowed-then-copied only after the bytes are
//! known to be present. The defaults are far above what any Keras Lambda needs (a few hundred
//! bytes, depth under 10). The depth default is set by stack use, not by CPython: decoding recurses,
//! and an unoptimised build spends about 10 KiB of stack per nested code object, so 100 levels stay
//! inside the 2 MiB stack of a spawned thread. Raise it only on a thread with a larger stack.

use std::fmt;

/// Which limit was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitKind {
    /// Input size in bytes.
    InputBytes,
    /// Nesting depth.
    Depth,
    /// Number of objects.
    Objects,
}

impl LimitKind {
    /// The `Limits` setter that raises this limit.
    pub fn setter(self) -> &'static str {
        match self {
            LimitKind::InputBytes => "with_max_input_bytes",
            LimitKind::Depth => "with_max_depth",
            LimitKind::Objects => "with_max_objects",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::InputBytes => "input size in bytes",
            LimitKind::Depth => "nesting depth",
            LimitKind::Objects => "object count",
        })
    }
}

/// Limits for one decode. Build with [`Limits::default`] and the `with_*` setters.
///
/// ```
/// let l = strata_marshal::Limits::default().with_max_depth(32);
/// assert_eq!(l.max_depth, 32);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest input accepted, in bytes. Default 64 MiB.
    pub max_input_bytes: u64,
    /// Deepest nesting of containers and code objects. Default 100.
    pub max_depth: u32,
    /// Most objects decoded (each back-reference counts). Default 4 000 000.
    pub max_objects: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_input_bytes: 64 << 20, max_depth: 100, max_objects: 4_000_000 }
    }
}

impl Limits {
    /// Sets `max_input_bytes`.
    pub fn with_max_input_bytes(mut self, n: u64) -> Self {
        self.max_input_bytes = n;
        self
    }
    /// Sets `max_depth`.
    pub fn with_max_depth(mut self, n: u32) -> Self {
        self.max_depth = n;
        self
    }
    /// Sets `max_objects`.
    pub fn with_max_objects(mut self, n: u64) -> Self {
        self.max_objects = n;
        self
    }
}
