//! Output: text for people, JSON for programs, SARIF 2.1.0 for CI code-scanning.

use strata_format::json::Json;

use crate::ScanReport;
use crate::analyze::FileReport;
use crate::finding::{Finding, Severity};
use crate::options::Options;

/// The doctor's verdict line and findings, for people.
pub fn doctor_text(r: &FileReport, opts: &Options) -> String {
    let mut s = String::new();
    s.push_str(&format!("{}: {}", r.file, r.format));
    if let Some(v) = &r.keras_version {
        s.push_str(&format!(", saved by Keras {v}"));
    }
    s.push('\n');
    let py = opts.python.map(|p| format!("CPython {p}")).unwrap_or_else(|| "CPython 3.8-3.14".into());
    let verdict = if !r.readable {
        "not readable".to_owned()
    } else if r.blocks_load() {
        format!("will not load with Keras {} on {py} as is", opts.keras)
    } else {
        format!("loads with Keras {} on {py}", opts.keras)
    };
    s.push_str(&format!(
        "verdict: {verdict} ({} finding{})\n",
        r.findings.len(),
        if r.findings.len() == 1 { "" } else { "s" }
    ));
    for f in &r.findings {
        s.push('\n');
        finding_text(&mut s, f, false);
    }
    s
}

fn finding_text(s: &mut String, f: &Finding, with_file: bool) {
    // The scan (with_file) is for triage: no disassembly or version table.
    let block = if f.blocks_load { ", stops the load" } else { "" };
    let cve = f.cve.map(|c| format!(" [{c}]")).unwrap_or_default();
    s.push_str(&format!("{} [{}{block}]{cve}\n", f.id, f.severity));
    let loc = if with_file {
        f.location.to_text()
    } else {
        f.location.to_text().split_once(", ").map(|x| x.1.to_owned()).unwrap_or_default()
    };
    if !loc.is_empty() {
        s.push_str(&format!("  at: {loc}\n"));
    }
    s.push_str(&format!("  {}\n", f.message));
    if let Some(func) = &f.function {
        s.push_str(&format!(
            "  function: {}({}) defined at {}:{}; written by CPython {}\n",
            func.name,
            func.args.join(", "),
            func.file,
            func.line,
            f.python_versions.as_deref().unwrap_or("?")
        ));
    }
    for d in f.details.iter().filter(|_| !with_file) {
        let line = format!("    {d}");
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s.push_str(&format!("  fix: {}\n", f.fix));
}

/// The doctor's JSON object.
pub fn doctor_json(r: &FileReport, opts: &Options) -> Json {
    Json::object([
        ("file", Json::from(r.file.as_str())),
        ("format", Json::from(r.format.as_str())),
        ("keras_version", r.keras_version.as_deref().map(Json::from).unwrap_or_default()),
        ("readable", Json::from(r.readable)),
        ("loads", Json::from(r.readable && !r.blocks_load())),
        ("target_keras", Json::from(opts.keras.to_string())),
        ("target_python", opts.python.map(|p| Json::from(p.to_string())).unwrap_or_default()),
        ("findings", Json::array(r.findings.iter().map(Finding::to_json))),
    ])
}

/// The scan's text report.
pub fn scan_text(r: &ScanReport) -> String {
    let mut s = String::new();
    for f in &r.findings {
        finding_text(&mut s, f, true);
        s.push('\n');
    }
    for (p, why) in &r.errors {
        s.push_str(&format!("error: {p}: {why}\n"));
    }
    let count = |sev| r.findings.iter().filter(|f| f.severity == sev).count();
    s.push_str(&format!(
        "scanned {} file(s), skipped {}, errors {}: {} finding(s) ({} critical, {} high, {} medium, {} low)\n",
        r.scanned.len(),
        r.skipped.len(),
        r.errors.len(),
        r.findings.len(),
        count(Severity::Critical),
        count(Severity::High),
        count(Severity::Medium),
        count(Severity::Low)
    ));
    s
}

/// The scan's JSON object: `findings`, `scanned`, `skipped`, `errors`, `summary`.
pub fn scan_json(r: &ScanReport) -> Json {
    let pairs = |v: &[(String, String)], key: &str| {
        Json::array(
            v.iter().map(|(p, w)| Json::object([("path", Json::from(p.as_str())), (key, Json::from(w.as_str()))])),
        )
    };
    let count = |sev| Json::from(r.findings.iter().filter(|f| f.severity == sev).count());
    Json::object([
        ("findings", Json::array(r.findings.iter().map(Finding::to_json))),
        ("scanned", Json::array(r.scanned.iter().map(|s| Json::from(s.as_str())))),
        ("skipped", pairs(&r.skipped, "reason")),
        ("errors", pairs(&r.errors, "error")),
        (
            "summary",
            Json::object([
                ("critical", count(Severity::Critical)),
                ("high", count(Severity::High)),
                ("medium", count(Severity::Medium)),
                ("low", count(Severity::Low)),
            ]),
        ),
    ])
}

/// SARIF 2.1.0: one run, one rule per finding id, one result per finding.
pub fn scan_sarif(r: &ScanReport) -> Json {
    let mut ids: Vec<&'static str> = r.findings.iter().map(|f| f.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rules = ids.iter().map(|id| {
        let f = r.findings.iter().find(|f| f.id == *id);
        let mut props = vec![("security-severity", Json::from(f.map_or("5.0", |f| security_score(f.severity))))];
        if let Some(c) = f.and_then(|f| f.cve) {
            props.push(("cve", Json::from(c)));
        }
        Json::object([
            ("id", Json::from(*id)),
            ("shortDescription", Json::object([("text", Json::from(*id))])),
            ("help", Json::object([("text", Json::from(f.map_or("", |f| f.fix.as_str())))])),
            ("properties", Json::object(props)),
        ])
    });
    let results = r.findings.iter().map(|f| {
        let idx = ids.iter().position(|i| *i == f.id).unwrap_or(0);
        let mut logical = Vec::new();
        for (kind, v) in
            [("member", &f.location.member), ("module", &f.location.layer), ("object", &f.location.hdf5_path)]
        {
            if let Some(v) = v {
                logical.push(Json::object([("name", Json::from(v.as_str())), ("kind", Json::from(kind))]));
            }
        }
        let mut loc = vec![(
            "physicalLocation",
            Json::object([("artifactLocation", Json::object([("uri", Json::from(uri(&f.location.file)))]))]),
        )];
        if !logical.is_empty() {
            loc.push(("logicalLocations", Json::array(logical)));
        }
        let mut props = vec![("severity", Json::from(f.severity.as_str()))];
        if let Some(c) = f.cve {
            props.push(("cve", Json::from(c)));
        }
        Json::object([
            ("ruleId", Json::from(f.id)),
            ("ruleIndex", Json::from(idx)),
            ("level", Json::from(f.severity.sarif_level())),
            ("message", Json::object([("text", Json::from(format!("{} Fix: {}", f.message, f.fix)))])),
            ("locations", Json::array([Json::object(loc)])),
            ("properties", Json::object(props)),
        ])
    });
    Json::object([
        ("$schema", Json::from("https://json.schemastore.org/sarif-2.1.0.json")),
        ("version", Json::from("2.1.0")),
        (
            "runs",
            Json::array([Json::object([
                (
                    "tool",
                    Json::object([(
                        "driver",
                        Json::object([
                            ("name", Json::from("strata scan")),
                            ("version", Json::from(env!("CARGO_PKG_VERSION"))),
                            ("informationUri", Json::from("https://github.com/strata-ml/strata")),
                            ("rules", Json::array(rules)),
                        ]),
                    )]),
                ),
                ("results", Json::array(results)),
            ])]),
        ),
    ])
}

fn security_score(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.8",
        Severity::High => "8.0",
        Severity::Medium => "5.0",
        Severity::Low => "2.0",
    }
}

fn uri(path: &str) -> String {
    path.trim_start_matches("./").replace('\\', "/").replace(' ', "%20")
}
