//! One finding: a stable id, how bad it is, where it is, what it means and what to do.
//!
//! Ids are stable API (scripts match on them); messages may improve. Severity follows the
//! scanners' scale (modelscan, modelaudit): `critical` code runs on load, `high` a route to run
//! code or touch other files, `medium` data leaves or is read from elsewhere / the file will not
//! load, `low` worth knowing.

use std::fmt;

use strata_format::json::Json;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; nothing breaks.
    Low,
    /// The file will not load as saved, or data could be read from elsewhere.
    Medium,
    /// A route to run code or touch other files.
    High,
    /// Code runs (or an attacker-chosen module is imported) when the file is loaded.
    Critical,
}

impl Severity {
    /// `low`, `medium`, `high`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    /// The SARIF 2.1.0 `level` for this severity.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Low => "note",
            Severity::Medium => "warning",
            Severity::High | Severity::Critical => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Why (or whether) the file loads.
    Load,
    /// A route for code execution or data exfiltration; `strata scan` reports these.
    Security,
}

/// Where a finding is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The file as given.
    pub file: String,
    /// The `.keras` archive member.
    pub member: Option<String>,
    /// The HDF5 object path.
    pub hdf5_path: Option<String>,
    /// The layer name (nested layers as `outer/inner`).
    pub layer: Option<String>,
    /// Where in the config (`config.layers[1].config.function`).
    pub config_path: Option<String>,
    /// A byte offset in the file or member.
    pub offset: Option<u64>,
}

impl Location {
    /// A location in `file`.
    pub fn file(file: impl Into<String>) -> Self {
        Location { file: file.into(), ..Location::default() }
    }
    /// With a zip member.
    pub fn member(mut self, m: impl Into<String>) -> Self {
        self.member = Some(m.into());
        self
    }
    /// With an HDF5 path.
    pub fn hdf5(mut self, p: impl Into<String>) -> Self {
        self.hdf5_path = Some(p.into());
        self
    }
    /// With a layer name.
    pub fn layer(mut self, l: impl Into<String>) -> Self {
        self.layer = Some(l.into());
        self
    }
    /// With a config path.
    pub fn config(mut self, p: impl Into<String>) -> Self {
        self.config_path = Some(p.into());
        self
    }

    /// `file, member x, layer y`.
    pub fn to_text(&self) -> String {
        let mut parts = vec![self.file.clone()];
        if let Some(m) = &self.member {
            parts.push(format!("member `{m}`"));
        }
        if let Some(p) = &self.hdf5_path {
            parts.push(format!("HDF5 `{p}`"));
        }
        if let Some(l) = &self.layer {
            parts.push(format!("layer `{l}`"));
        }
        if let Some(c) = &self.config_path {
            parts.push(c.clone());
        }
        if let Some(o) = self.offset {
            parts.push(format!("byte {o}"));
        }
        parts.join(", ")
    }

    /// The JSON object (absent fields are `null`).
    pub fn to_json(&self) -> Json {
        let opt = |v: &Option<String>| v.as_deref().map(Json::from).unwrap_or_default();
        Json::object([
            ("file", Json::from(self.file.as_str())),
            ("member", opt(&self.member)),
            ("hdf5_path", opt(&self.hdf5_path)),
            ("layer", opt(&self.layer)),
            ("config_path", opt(&self.config_path)),
            ("offset", self.offset.map(Json::from).unwrap_or_default()),
        ])
    }
}

/// The Python function behind a Lambda finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    /// `co_name` (`<lambda>`).
    pub name: String,
    /// `co_qualname` (3.11+), when stored.
    pub qualname: Option<String>,
    /// `co_filename`: where it was defined on the saving machine.
    pub file: String,
    /// `co_firstlineno`.
    pub line: i32,
    /// Argument names.
    pub args: Vec<String>,
}

impl FunctionInfo {
    fn to_json(&self) -> Json {
        Json::object([
            ("name", Json::from(self.name.as_str())),
            ("qualname", self.qualname.as_deref().map(Json::from).unwrap_or_default()),
            ("file", Json::from(self.file.as_str())),
            ("line", Json::from(i64::from(self.line))),
            ("args", Json::array(self.args.iter().map(|a| Json::from(a.as_str())))),
        ])
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Stable id, `family.what` (`lambda.cross_version`, `custom.unregistered`).
    pub id: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// Load problem or security route.
    pub category: Category,
    /// Whether it stops `keras.saving.load_model` (with the Python and Keras asked about).
    pub blocks_load: bool,
    /// Where.
    pub location: Location,
    /// What and why.
    pub message: String,
    /// What to do.
    pub fix: String,
    /// The CVE this belongs to, when one applies.
    pub cve: Option<&'static str>,
    /// Lambda findings: the CPython range that wrote the bytecode (`3.8-3.10`).
    pub python_versions: Option<String>,
    /// Lambda findings: the function.
    pub function: Option<FunctionInfo>,
    /// Extra lines for people (disassembly, a version table).
    pub details: Vec<String>,
}

impl Finding {
    /// A finding with no CVE, function or details.
    pub fn new(
        id: &'static str,
        severity: Severity,
        category: Category,
        location: Location,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            id,
            severity,
            category,
            blocks_load: false,
            location,
            message: message.into(),
            fix: fix.into(),
            cve: None,
            python_versions: None,
            function: None,
            details: Vec::new(),
        }
    }
    /// Marks it as stopping a load.
    pub fn blocking(mut self) -> Self {
        self.blocks_load = true;
        self
    }
    /// Names its CVE.
    pub fn with_cve(mut self, cve: &'static str) -> Self {
        self.cve = Some(cve);
        self
    }

    /// The JSON object (`id`, `severity`, `location`, `message`, `fix`, `cve`, ...).
    pub fn to_json(&self) -> Json {
        let mut o = vec![
            ("id", Json::from(self.id)),
            ("severity", Json::from(self.severity.as_str())),
            ("category", Json::from(if self.category == Category::Security { "security" } else { "load" })),
            ("blocks_load", Json::from(self.blocks_load)),
            ("location", self.location.to_json()),
            ("message", Json::from(self.message.as_str())),
            ("fix", Json::from(self.fix.as_str())),
            ("cve", self.cve.map(Json::from).unwrap_or_default()),
        ];
        if self.python_versions.is_some() || self.function.is_some() {
            o.push(("python_versions", self.python_versions.as_deref().map(Json::from).unwrap_or_default()));
            o.push(("function", self.function.as_ref().map(FunctionInfo::to_json).unwrap_or_default()));
        }
        if !self.details.is_empty() {
            o.push(("details", Json::array(self.details.iter().map(|d| Json::from(d.as_str())))));
        }
        Json::object(o)
    }
}
