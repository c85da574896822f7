//! `strata inspect FILE [--json]`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use strata::format::inspect::Report;
use strata::format::model::ModelFile;

pub fn run(file: &Path, json: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let mf = ModelFile::open(file)?;
    let report = Report::new(&mf);
    if json {
        writeln!(out, "{}", report.to_json().to_string_pretty())?;
    } else {
        write!(out, "{}", report.to_text())?;
    }
    Ok(ExitCode::SUCCESS)
}
