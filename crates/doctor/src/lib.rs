//! `strata doctor` and `strata scan`: why a Keras file will not load, and what in it could run
//! code, found without executing, importing or unpickling anything.
//!
//! Main types: [`FileReport`] (the findings for one file), [`Finding`] (stable id, severity,
//! location, message, fix, CVE), [`ScanReport`] (many files). Parsing is strata-format's,
//! strata-hdf5's and strata-marshal's, the same code the loaders use; this crate only judges.
//!
//! ```no_run
//! let report = strata_doctor::doctor(std::path::Path::new("model.keras"), &strata_doctor::Options::default());
//! for f in &report.findings {
//!     println!("{} {}: {}", f.severity, f.id, f.message);
//! }
//! ```
#![warn(missing_docs)]

pub mod analyze;
pub mod finding;
pub mod lambda;
pub mod options;
pub mod output;
pub mod pickle;

use std::path::{Path, PathBuf};

pub use analyze::FileReport;
pub use finding::{Category, Finding, FunctionInfo, Location, Severity};
pub use options::{KerasVersion, Options, parse_python};

/// Every finding for one file (load problems and security routes).
pub fn doctor(path: &Path, opts: &Options) -> FileReport {
    analyze::analyze(path, opts)
}

/// The result of scanning files and directories.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Security findings of every file scanned.
    pub findings: Vec<Finding>,
    /// Files scanned.
    pub scanned: Vec<String>,
    /// Files skipped (not model-like by extension or bytes), with why.
    pub skipped: Vec<(String, String)>,
    /// Files that could not be scanned, with why.
    pub errors: Vec<(String, String)>,
}

impl ScanReport {
    /// 0 clean, 1 findings of medium severity or above, 2 some path could not be scanned (and
    /// nothing was found). Low findings are reported but do not fail a scan.
    pub fn exit_code(&self) -> u8 {
        if self.findings.iter().any(|f| f.severity >= Severity::Medium) {
            1
        } else if !self.errors.is_empty() {
            2
        } else {
            0
        }
    }
}

const MODEL_EXTENSIONS: &[&str] =
    &["keras", "h5", "hdf5", "json", "npz", "npy", "pkl", "pickle", "joblib", "pt", "pth", "bin", "zip", "tflite"];
const MAX_FILES: usize = 100_000;

/// Scans `paths` (files, and directories recursively; symbolic links are not followed) for routes
/// to code execution or data exfiltration. Findings that only stop a load are left out, except
/// files that could not be read at all, which count as errors.
pub fn scan(paths: &[PathBuf], opts: &Options) -> ScanReport {
    let mut report = ScanReport::default();
    let mut files = Vec::new();
    for p in paths {
        collect(p, true, &mut files, &mut report, 0);
    }
    for (f, explicit) in files {
        let r = analyze::analyze(&f, opts);
        let name = f.display().to_string();
        let security: Vec<Finding> = r.findings.iter().filter(|x| x.category == Category::Security).cloned().collect();
        if !r.readable && security.is_empty() {
            let why = r.findings.first().map(|x| x.message.clone()).unwrap_or_else(|| "unreadable".into());
            let prefix = format!("{name}: ");
            let why = why.strip_prefix(&prefix).map(str::to_owned).unwrap_or(why);
            if !explicit && !is_binary_model_name(&f) {
                report.skipped.push((name, format!("not a model file strata reads ({}): {why}", r.format)));
            } else {
                report.errors.push((name, why));
            }
            continue;
        }
        report.scanned.push(name);
        report.findings.extend(security);
    }
    report
}

/// Extensions that are a model or weights format whatever the bytes: unreadable ones are errors
/// (a JSON file that is not a model config is skipped instead).
fn is_binary_model_name(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        matches!(
            e.to_ascii_lowercase().as_str(),
            "keras" | "h5" | "hdf5" | "npz" | "pkl" | "pickle" | "joblib" | "pt" | "pth"
        )
    })
}

fn is_model_name(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| MODEL_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn collect(p: &Path, explicit: bool, files: &mut Vec<(PathBuf, bool)>, report: &mut ScanReport, depth: usize) {
    if files.len() >= MAX_FILES || depth > 64 {
        return;
    }
    let meta = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) => {
            report.errors.push((p.display().to_string(), e.to_string()));
            return;
        }
    };
    if meta.file_type().is_symlink() && !explicit {
        report.skipped.push((p.display().to_string(), "symbolic link (not followed)".into()));
        return;
    }
    let is_dir = if meta.file_type().is_symlink() { p.is_dir() } else { meta.is_dir() };
    if is_dir {
        // A .keras directory form is one model.
        if p.join("config.json").is_file() && p.extension().is_some_and(|e| e == "keras") {
            files.push((p.to_path_buf(), explicit));
            return;
        }
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(p) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                report.errors.push((p.display().to_string(), e.to_string()));
                return;
            }
        };
        entries.sort();
        for e in entries {
            collect(&e, false, files, report, depth + 1);
        }
    } else if explicit || is_model_name(p) {
        files.push((p.to_path_buf(), explicit));
    } else {
        report.skipped.push((p.display().to_string(), "extension not a model format".into()));
    }
}
