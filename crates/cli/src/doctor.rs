//! `strata doctor FILE` and `strata scan PATH...`: findings from strata-doctor, printed as text,
//! JSON or SARIF. Nothing in the files is executed, imported or unpickled.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use strata_doctor::output;
use strata_doctor::{KerasVersion, Options};

fn options(python: Option<&str>, keras: Option<&str>) -> anyhow::Result<Options> {
    let mut opts = Options::default();
    if let Some(p) = python {
        opts.python = Some(
            strata_doctor::parse_python(p)
                .with_context(|| format!("--python `{p}` is not a CPython version like 3.11 (2.7 or 3.0-3.20)"))?,
        );
    }
    if let Some(k) = keras {
        opts.keras = KerasVersion::parse(k).with_context(|| format!("--keras `{k}` is not a version like 3.15.1"))?;
        if !(1..=3).contains(&opts.keras.major) {
            bail!("--keras `{k}`: only Keras 1, 2 and 3 are known");
        }
    }
    Ok(opts)
}

/// Exit 0 loads cleanly, 1 findings that stop a load, 2 not readable.
pub fn run_doctor(
    file: &Path,
    python: Option<&str>,
    keras: Option<&str>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let opts = options(python, keras)?;
    let report = strata_doctor::doctor(file, &opts);
    if json {
        writeln!(out, "{}", output::doctor_json(&report, &opts).to_string_pretty())?;
    } else {
        write!(out, "{}", output::doctor_text(&report, &opts))?;
    }
    Ok(ExitCode::from(if !report.readable {
        2
    } else if report.blocks_load() {
        1
    } else {
        0
    }))
}

/// Exit 0 clean, 1 findings, 2 could not scan.
pub fn run_scan(paths: &[PathBuf], json: bool, sarif: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let opts = Options::default();
    let report = strata_doctor::scan(paths, &opts);
    if sarif {
        writeln!(out, "{}", output::scan_sarif(&report).to_string_pretty())?;
    } else if json {
        writeln!(out, "{}", output::scan_json(&report).to_string_pretty())?;
    } else {
        write!(out, "{}", output::scan_text(&report))?;
    }
    Ok(ExitCode::from(report.exit_code()))
}
