//! `strata convert IN OUT`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// `.keras` v3 archive
    Keras,
    /// legacy full-model `.h5`
    H5,
    /// Keras 3 weights-only `.weights.h5`
    WeightsH5,
}

pub fn run(
    _input: &Path,
    _output: &Path,
    _to: Option<Target>,
    _weights: Option<&Path>,
    _json: bool,
    _out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    anyhow::bail!("convert is not implemented yet")
}
