//! What the user asks about: which CPython and which Keras will load the file.

use std::fmt;

use strata_marshal::PyVersion;

/// A Keras release, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KerasVersion {
    /// 1, 2 or 3.
    pub major: u16,
    /// Minor.
    pub minor: u16,
    /// Patch.
    pub patch: u16,
}

impl KerasVersion {
    /// `major.minor.patch`.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        KerasVersion { major, minor, patch }
    }
    /// The Keras the predictions were checked against.
    pub const DEFAULT: KerasVersion = KerasVersion::new(3, 15, 1);

    /// Parses `3.15.1`, `3.15`, `2`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.trim().split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next().map_or(Some(0), |m| m.parse().ok())?;
        let patch = it.next().map_or(Some(0), |p| p.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok())?;
        Some(KerasVersion { major, minor, patch })
    }

    /// Keras 3 and tf-keras refuse `__lambda__` in `.keras` unless `safe_mode=False` (Keras >= 2.13).
    pub fn safe_mode_blocks_keras_archives(self) -> bool {
        self >= KerasVersion::new(2, 13, 0)
    }
    /// Keras >= 3.11.3 also honours `safe_mode` for `.h5` (CVE-2025-9905, PR #21602); tf-keras never does.
    pub fn safe_mode_blocks_h5(self) -> bool {
        self >= KerasVersion::new(3, 11, 3)
    }
}

impl fmt::Display for KerasVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Parses a CPython version `3.11` / `2.7` (a patch level is ignored).
pub fn parse_python(s: &str) -> Option<PyVersion> {
    let mut it = s.trim().split('.');
    let major: u8 = it.next()?.parse().ok()?;
    let minor: u8 = it.next()?.parse().ok()?;
    if major == 2 && minor == 7 || major == 3 && minor <= 20 { Some(PyVersion::new(major, minor)) } else { None }
}

/// Options for [`crate::doctor`] and [`crate::scan`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The CPython that will load the file; `None` gives a table for 3.8 to 3.14.
    pub python: Option<PyVersion>,
    /// The Keras that will load it.
    pub keras: KerasVersion,
    /// Parser limits.
    pub limits: strata_format::limits::Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options { python: None, keras: KerasVersion::DEFAULT, limits: strata_format::limits::Limits::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(KerasVersion::parse("3.15.1"), Some(KerasVersion::new(3, 15, 1)));
        assert_eq!(KerasVersion::parse("2.15"), Some(KerasVersion::new(2, 15, 0)));
        assert_eq!(KerasVersion::parse("x"), None);
        assert_eq!(parse_python("3.11"), Some(PyVersion::new(3, 11)));
        assert_eq!(parse_python("4.1"), None);
    }
}
