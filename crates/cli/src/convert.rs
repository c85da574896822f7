//! `strata convert IN OUT [--to FORMAT] [--weights W]`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;
use strata::format::convert::{self, Target as FTarget};
use strata::format::json::Json;
use strata::format::model::ModelFile;

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
    input: &Path,
    output: &Path,
    to: Option<Target>,
    weights: Option<&Path>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let target = match to {
        Some(Target::Keras) => FTarget::KerasV3,
        Some(Target::H5) => FTarget::LegacyH5,
        Some(Target::WeightsH5) => FTarget::WeightsH5,
        None => FTarget::from_path(output).with_context(|| {
            format!(
                "cannot tell the output format from `{}`: name it .keras, .h5 or .weights.h5, or pass --to keras|h5|weights-h5",
                output.display()
            )
        })?,
    };
    let src = ModelFile::open(input)?;
    let wsrc = match weights {
        Some(w) => Some(ModelFile::open(w)?),
        None => None,
    };
    let done = convert::convert(&src, wsrc.as_ref(), target, output)?;
    if json {
        let j = Json::object([
            ("output", Json::from(output.display().to_string())),
            ("format", done.target.as_str().into()),
            ("layers_with_weights", done.layers.into()),
            ("tensors", done.tensors.into()),
            ("tensor_bytes", done.tensor_bytes.into()),
            ("file_bytes", done.file_bytes.into()),
            ("notes", Json::array(done.notes.iter().map(|n| Json::from(n.as_str())))),
        ]);
        writeln!(out, "{}", j.to_string_pretty())?;
    } else {
        writeln!(
            out,
            "wrote {} ({}): {} tensors of {} layers, {} bytes",
            output.display(),
            done.target.as_str(),
            done.tensors,
            done.layers,
            done.file_bytes
        )?;
        for n in &done.notes {
            writeln!(out, "note: {n}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
