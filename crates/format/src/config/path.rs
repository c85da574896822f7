//! JSON paths into a config document, for error messages (`config.layers[3].inbound_nodes[0]`).

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the root of a config document: keys joined by `.`, list indices in brackets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigPath {
    segments: Vec<Segment>,
}

impl ConfigPath {
    /// The document root.
    pub fn root() -> Self {
        ConfigPath::default()
    }
    /// Appends an object key.
    pub fn push_key(&mut self, key: &str) {
        self.segments.push(Segment::Key(key.to_owned()));
    }
    /// Appends a list index.
    pub fn push_index(&mut self, index: usize) {
        self.segments.push(Segment::Index(index));
    }
    /// Removes the last segment.
    pub fn pop(&mut self) {
        self.segments.pop();
    }
    /// This path plus a key.
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.push_key(key);
        p
    }
    /// This path plus an index.
    pub fn index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.push_index(index);
        p
    }
    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }
}

impl fmt::Display for ConfigPath {
    /// `config.layers[3].inbound_nodes[0]`; the root shows as `(root)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("(root)");
        }
        for (i, s) in self.segments.iter().enumerate() {
            match s {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}
