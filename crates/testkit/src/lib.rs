//! Test support for strata: where the fixtures are, how to reach the Keras oracle,
//! and the tolerance tiers every comparison uses.
//!
//! The oracle is a Python virtual environment with pinned Keras versions, created by
//! `tools/oracle/setup.sh` (the test command `scripts/test.sh` runs it first). Tests that
//! need it call [`oracle_python`]; when `STRATA_REQUIRE_ORACLE=1` (set by `scripts/test.sh`
//! and CI) a missing oracle fails the test instead of skipping it.

use std::path::{Path, PathBuf};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The committed fixtures directory, `fixtures/` at the repository root.
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("fixtures")
}

/// A path under `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    fixtures_dir().join(rel)
}

/// The oracle virtual environment's directory: `$STRATA_ORACLE_DIR`, or
/// `$HOME/.cache/strata/oracle` (outside the source tree, so that it survives fresh clones).
pub fn oracle_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STRATA_ORACLE_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/strata/oracle")
}

/// True when the run demands the oracle (`STRATA_REQUIRE_ORACLE=1`).
pub fn oracle_required() -> bool {
    std::env::var("STRATA_REQUIRE_ORACLE").map(|v| v == "1").unwrap_or(false)
}

/// The oracle's Python interpreter, if the venv exists. When it is missing and the run
/// requires the oracle, this panics with the command that creates it; otherwise the caller
/// skips (and should print that it skipped).
pub fn oracle_python() -> Option<PathBuf> {
    let py = oracle_dir().join("venv/bin/python");
    if py.exists() {
        return Some(py);
    }
    if oracle_required() {
        panic!(
            "the Keras oracle is required (STRATA_REQUIRE_ORACLE=1) but {} does not exist; run tools/oracle/setup.sh",
            py.display()
        );
    }
    eprintln!("skipping: Keras oracle not installed (run tools/oracle/setup.sh)");
    None
}

/// Tolerance tiers, named once.
pub mod tol {
    /// Forward outputs: 1e-5 relative, 1e-6 absolute (f32), as in Keras parity checks.
    pub const FORWARD_REL: f64 = 1e-5;
    /// Absolute floor for the forward tier.
    pub const FORWARD_ABS: f64 = 1e-6;

    /// Whether `got` is within the forward tier of `want`.
    pub fn forward_close(got: f64, want: f64) -> bool {
        (got - want).abs() <= FORWARD_ABS + FORWARD_REL * want.abs()
    }
}
