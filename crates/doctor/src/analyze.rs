//! One pass over one file: every finding at once. The parsing is strata-format's (the same code
//! `strata inspect` and the loaders use); this module only judges what it read.

use std::path::Path;

use strata_format::archive::{ArchiveError, KerasArchive};
use strata_format::bind;
use strata_format::config::LambdaFunction;
use strata_format::detect::{self, Detected};
use strata_format::json::Json;
use strata_format::model::{FileFormat, ModelFile};
use strata_hdf5::{H5File, NodeKind};
use strata_marshal::PyVersion;

use crate::finding::{Category, Finding, Location, Severity};
use crate::lambda::{self, LambdaAnalysis, Outcome};
use crate::options::{KerasVersion, Options};
use crate::pickle;

/// The findings for one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file as given.
    pub file: String,
    /// What the bytes are (`keras_v3`, `legacy_h5_model`, `pickle`, ...).
    pub format: String,
    /// The Keras version that wrote it, when recorded.
    pub keras_version: Option<String>,
    /// Whether strata could read it at all.
    pub readable: bool,
    /// Every finding, in file order.
    pub findings: Vec<Finding>,
}

impl FileReport {
    /// Whether some finding stops Keras from loading the file.
    pub fn blocks_load(&self) -> bool {
        self.findings.iter().any(|f| f.blocks_load)
    }
}

struct Ctx<'a> {
    file: String,
    opts: &'a Options,
    findings: Vec<Finding>,
    format: Option<FileFormat>,
}

impl Ctx<'_> {
    fn loc(&self) -> Location {
        Location::file(self.file.clone())
    }
    fn push(&mut self, f: Finding) {
        if self.findings.len() < 10_000 {
            self.findings.push(f);
        }
    }
}

const KERAS_NAMESPACES: &[&str] = &["keras", "keras_hub", "keras_cv", "keras_nlp", "tf_keras", "tensorflow"];
/// Keras APIs that touch files, the network or safe mode; usable as "gadgets" (CVE-2025-8747).
const GADGETS: &[&str] = &[
    "get_file",
    "load_model",
    "save_model",
    "load_weights",
    "save_weights",
    "model_from_json",
    "model_from_yaml",
    "set_random_seed",
    "TFSMLayer",
    "export_saved_model",
    "plot_model",
    "model_to_dot",
    "load_img",
    "save_img",
    "array_to_img",
    "image_dataset_from_directory",
    "text_dataset_from_directory",
    "audio_dataset_from_directory",
    "set_floatx",
    "set_image_data_format",
    "clear_session",
];
const MODEL_CLASSES: &[&str] = &["Sequential", "Functional", "Model", "InputLayer"];
const TF_OP_LAYERS: &[&str] = &["TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer"];

/// Reads `path` and reports everything that would stop a load or could run code.
pub fn analyze(path: &Path, opts: &Options) -> FileReport {
    let mut cx = Ctx { file: path.display().to_string(), opts, findings: Vec::new(), format: None };
    let mut readable = true;
    let mut format = String::from("unknown");
    let mut keras_version = None;

    let kind = match detect::detect_path(path) {
        Ok(k) => k,
        Err(e) => {
            let f = Finding::new(
                "file.unreadable",
                Severity::Medium,
                Category::Load,
                cx.loc(),
                e.to_string(),
                "check the path and permissions",
            )
            .blocking();
            cx.push(f);
            return FileReport { file: cx.file, format, keras_version, readable: false, findings: cx.findings };
        }
    };
    format = kind_name(&kind).to_owned();
    if let Some(note) = detect::extension_mismatch(path, &kind) {
        let _ = note;
        let hdf5_as_keras = matches!(kind, Detected::Hdf5 { .. }) && has_ext(path, "keras");
        let id = if hdf5_as_keras { "file.hdf5_as_keras" } else { "file.extension_mismatch" };
        let mut f = Finding::new(
            id,
            if hdf5_as_keras { Severity::Medium } else { Severity::Low },
            Category::Load,
            cx.loc(),
            note_text(&kind, path),
            "rename the file to the extension of what it holds (`.h5` for HDF5); Keras picks its loader by extension",
        );
        if hdf5_as_keras && opts.keras.major >= 3 {
            f.blocks_load = true;
        }
        cx.push(f);
    }
    match &kind {
        Detected::Pickle { protocol } => {
            readable = false;
            let data = read_prefix(path, 64 << 20);
            let loc = cx.loc();
            pickle_findings(&mut cx, &data, loc, &format!("the file is a Python pickle (protocol {protocol})"));
            cx.push(
                Finding::new(
                    "file.not_a_model",
                    Severity::Medium,
                    Category::Load,
                    cx.loc(),
                    format!("a Python pickle (protocol {protocol}), not a Keras model file; strata never unpickles"),
                    "if it holds a Keras model, load it in Python in a sandbox and save it with `model.save(\"model.keras\")`",
                )
                .blocking(),
            );
        }
        Detected::Zip if has_ext(path, "npz") => {
            match KerasArchive::open(path, &opts.limits) {
                Ok(npz) => npz_members(&mut cx, &npz, None),
                Err(e) => archive_error(&mut cx, &e),
            }
            return FileReport {
                file: cx.file,
                format: "npz".into(),
                keras_version,
                readable: true,
                findings: cx.findings,
            };
        }
        Detected::Npy => {
            let data = read_prefix(path, 256 << 20);
            if let Some(payload) = pickle::npy_object_payload(&data) {
                let loc = cx.loc();
                pickle_findings(&mut cx, payload, loc, "the file is a NumPy object array (pickled)");
            }
            return FileReport {
                file: cx.file,
                format: "npy".into(),
                keras_version,
                readable: true,
                findings: cx.findings,
            };
        }
        Detected::Zip | Detected::KerasDir | Detected::EmptyZip => match KerasArchive::open(path, &opts.limits) {
            Ok(archive) => archive_members(&mut cx, &archive),
            Err(e) => {
                readable = false;
                archive_error(&mut cx, &e);
            }
        },
        Detected::Hdf5 { .. } => {
            if let Ok(h5) = H5File::open(path, &opts.limits.hdf5) {
                hdf5_links(&mut cx, &h5, None);
                legacy_truncation(&mut cx, &h5);
            }
        }
        _ => {}
    }
    if let Some(refusal) = kind.refusal(path) {
        readable = false;
        let (id, sev) = match &kind {
            Detected::GitLfsPointer(_) => ("file.lfs_pointer", Severity::Medium),
            Detected::TruncatedZip { .. } | Detected::TruncatedHdf5 { .. } => ("file.truncated", Severity::Medium),
            Detected::Empty => ("file.empty", Severity::Medium),
            Detected::Pickle { .. } => ("", Severity::Low),
            _ => ("file.not_a_model", Severity::Medium),
        };
        if !id.is_empty() {
            let mut msg = refusal.to_string();
            if id == "file.truncated"
                && let Err(e) = ModelFile::open_with(path, &opts.limits)
            {
                msg = e.to_string();
            }
            let (message, fix) = split_fix(&msg);
            cx.push(Finding::new(id, sev, Category::Load, cx.loc(), message, fix).blocking());
        }
        return FileReport { file: cx.file, format, keras_version, readable, findings: cx.findings };
    }
    if readable {
        match ModelFile::open_with(path, &opts.limits) {
            Ok(mf) => {
                cx.format = Some(mf.format);
                format = mf.format.as_str().to_owned();
                keras_version = mf.keras_version.clone();
                model_findings(&mut cx, &mf);
            }
            Err(e) => {
                readable = false;
                let msg = e.to_string();
                let id = if msg.contains("cut short") || msg.contains("truncated") || msg.contains("ends at") {
                    "file.truncated"
                } else {
                    "file.corrupt"
                };
                let (message, fix) = split_fix(&msg);
                cx.push(Finding::new(id, Severity::Medium, Category::Load, cx.loc(), message, fix).blocking());
            }
        }
    }
    FileReport { file: cx.file, format, keras_version, readable, findings: cx.findings }
}

fn note_text(kind: &Detected, path: &Path) -> String {
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    match kind {
        Detected::Hdf5 { .. } => format!(
            "HDF5 bytes behind a `.{ext}` name (a legacy .h5 model renamed); Keras 3 picks its loader by extension, finds no zip and fails with \"ValueError: File not found: filepath={}. Please ensure the file is an accessible `.keras` zip file.\"; strata reads it as the HDF5 it is",
            path.display()
        ),
        other => format!("the bytes are {} but the name ends in `.{ext}`", kind_name(other)),
    }
}

fn kind_name(kind: &Detected) -> &'static str {
    match kind {
        Detected::Hdf5 { .. } => "hdf5",
        Detected::Zip => "zip",
        Detected::EmptyZip => "empty_zip",
        Detected::Json => "json",
        Detected::GitLfsPointer(_) => "git_lfs_pointer",
        Detected::Pickle { .. } => "pickle",
        Detected::Npy => "npy",
        Detected::SavedModelDir => "saved_model",
        Detected::KerasDir => "keras_dir",
        Detected::Directory => "directory",
        Detected::Empty => "empty",
        Detected::TruncatedZip { .. } => "truncated_zip",
        Detected::TruncatedHdf5 { .. } => "truncated_hdf5",
        _ => "unknown",
    }
}

/// Splits strata's `what; ...; fix` messages at the last `; ` into message and fix.
fn split_fix(msg: &str) -> (String, String) {
    match msg.rsplit_once("; ") {
        Some((m, f)) => (m.to_owned(), f.to_owned()),
        None => (msg.to_owned(), "save or fetch the file again".to_owned()),
    }
}

fn read_prefix(path: &Path, max: u64) -> Vec<u8> {
    use std::io::Read;
    let mut v = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(max).read_to_end(&mut v);
    }
    v
}

fn pickle_findings(cx: &mut Ctx<'_>, data: &[u8], loc: Location, what: &str) {
    let p = pickle::scan(data);
    let imports = if p.imports.is_empty() { "no globals".to_owned() } else { p.imports.join(", ") };
    let dangerous = p.dangerous();
    if dangerous.is_empty() {
        cx.push(Finding::new(
            "scan.pickle",
            Severity::High,
            Category::Security,
            loc,
            format!(
                "{what}; unpickling runs code chosen by the file (it imports {imports}); strata read its opcodes only"
            ),
            "never unpickle files from untrusted sources; re-save the weights as model.weights.h5",
        ));
    } else {
        cx.push(Finding::new(
            "scan.pickle_code_execution",
            Severity::Critical,
            Category::Security,
            loc,
            format!(
                "{what}; it imports {} and {} when unpickled",
                dangerous.join(", "),
                if p.calls { "calls what it imports" } else { "can call it" }
            ),
            "do not load this file; delete it or inspect it in a sandbox (strata never unpickles)",
        ));
    }
}

fn archive_error(cx: &mut Ctx<'_>, e: &ArchiveError) {
    let msg = e.to_string();
    let (id, sev, cve, cat) = match e {
        ArchiveError::UnsafeMemberName { .. } => {
            ("archive.path_traversal", Severity::High, Some("CVE-2026-12479"), Category::Security)
        }
        ArchiveError::DuplicateMember { .. } => ("archive.duplicate_member", Severity::High, None, Category::Security),
        ArchiveError::SymlinkMember { .. } => ("archive.symlink", Severity::High, None, Category::Security),
        ArchiveError::ZipBomb { .. } | ArchiveError::InflateOverrun { .. } | ArchiveError::Overlap { .. } => {
            ("archive.zip_bomb", Severity::High, None, Category::Security)
        }
        ArchiveError::Truncated { .. } => ("file.truncated", Severity::Medium, None, Category::Load),
        ArchiveError::NpzWeights => ("weights.npz_pickle", Severity::High, None, Category::Security),
        _ => ("file.corrupt", Severity::Medium, None, Category::Load),
    };
    let (message, fix) = split_fix(&msg);
    let mut f = Finding::new(id, sev, cat, cx.loc(), message, fix).blocking();
    f.cve = cve;
    cx.push(f);
}

fn archive_members(cx: &mut Ctx<'_>, archive: &KerasArchive) {
    for m in archive.members() {
        if m.is_dir {
            continue;
        }
        let lower = m.name.to_ascii_lowercase();
        let interesting = lower.ends_with(".npz")
            || lower.ends_with(".npy")
            || lower.ends_with(".pkl")
            || lower.ends_with(".pickle")
            || lower.ends_with(".joblib")
            || lower.ends_with(".pt")
            || lower.ends_with(".h5")
            || lower.ends_with(".hdf5");
        let Ok(bytes) = archive.read_member(&m.name) else { continue };
        let loc = cx.loc().member(m.name.clone());
        if pickle::looks_like_pickle(&bytes) {
            pickle_findings(cx, &bytes, loc, &format!("archive member `{}` is pickle data", m.name));
            continue;
        }
        if !interesting {
            continue;
        }
        if lower.ends_with(".npz") {
            match KerasArchive::from_bytes(bytes.into_owned(), &cx.opts.limits) {
                Ok(npz) => npz_members(cx, &npz, Some(&m.name)),
                Err(e) => archive_error(cx, &e),
            }
        } else if lower.ends_with(".npy") {
            if let Some(payload) = pickle::npy_object_payload(&bytes) {
                pickle_findings(cx, payload, loc, &format!("`{}` is a NumPy object array (pickled)", m.name));
            }
        } else if (lower.ends_with(".h5") || lower.ends_with(".hdf5"))
            && let Ok(h5) = H5File::from_bytes(bytes.into_owned(), &cx.opts.limits.hdf5)
        {
            hdf5_links(cx, &h5, Some(&m.name));
        }
    }
}

fn has_ext(path: &Path, ext: &str) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// Object arrays in an `.npz` (standalone, or the `model.weights.npz` member `outer`).
fn npz_members(cx: &mut Ctx<'_>, npz: &KerasArchive, outer: Option<&str>) {
    for inner in npz.members() {
        let Ok(data) = npz.read_member(&inner.name) else { continue };
        if let Some(payload) = pickle::npy_object_payload(&data) {
            let (loc, what) = match outer {
                Some(o) => (
                    cx.loc().member(format!("{o}/{}", inner.name)),
                    format!("`{}` inside `{o}` is a NumPy object array (pickled)", inner.name),
                ),
                None => {
                    (cx.loc().member(inner.name.clone()), format!("`{}` is a NumPy object array (pickled)", inner.name))
                }
            };
            pickle_findings(cx, payload, loc, &what);
            if outer.is_some()
                && let Some(last) = cx.findings.last_mut()
            {
                // Keras's npz weights store: numpy.load(allow_pickle=False) refuses object arrays.
                last.blocks_load = true;
                last.message.push_str(
                    "; Keras itself cannot reload it either: \"ValueError: Object arrays cannot be loaded when allow_pickle=False\"",
                );
            }
        }
    }
}

fn hdf5_links(cx: &mut Ctx<'_>, h5: &H5File, member: Option<&str>) {
    let Ok(nodes) = h5.walk() else { return };
    for n in nodes {
        let mut loc = cx.loc().hdf5(n.path.clone());
        if let Some(m) = member {
            loc = loc.member(m);
        }
        match &n.kind {
            NodeKind::ExternalLink { file, path } => cx.push(
                Finding::new(
                    "hdf5.external_link",
                    Severity::High,
                    Category::Security,
                    loc,
                    format!("HDF5 external link `{}` points into another file `{file}:{path}`; h5py follows it on load, so the model reads whatever file the link names (data exfiltration); Keras >= 3.14 refuses such links", n.path),
                    "copy the object into the file and delete the link, or do not load the file",
                )
                .blocking(),
            ),
            NodeKind::Dataset => {
                // CVE-2026-0897: a declared shape far beyond the bytes in the file made Keras allocate it.
                let Ok(ds) = h5.dataset(&n.path) else { continue };
                let bytes = ds.nelem().and_then(|e| e.checked_mul(ds.dtype().size().unwrap_or(1) as u64));
                let file_len = h5.as_bytes().len() as u64;
                let limits = &cx.opts.limits.hdf5;
                let huge = match bytes {
                    None => true,
                    Some(b) => b >= limits.shape_bomb_min_bytes && b / limits.shape_bomb_ratio.max(1) > file_len,
                };
                if huge {
                    let size = bytes.map_or_else(|| "more than 2^64 bytes".to_owned(), |b| format!("{b} bytes"));
                    cx.push(
                        Finding::new(
                            "hdf5.shape_bomb",
                            Severity::High,
                            Category::Security,
                            loc,
                            format!(
                                "dataset `{}` declares shape {:?} ({size}) but the file holds {file_len} bytes; loading it makes Keras allocate that much memory (denial of service)",
                                n.path,
                                ds.shape()
                            ),
                            "do not load this file; Keras >= 3.13.1 refuses such datasets",
                        )
                        .with_cve("CVE-2026-0897")
                        .blocking(),
                    );
                }
            }
            _ => {}
        }
    }
    // External storage and virtual datasets are refused by the reader; surface them.
    if let Err(e) = h5.walk().and_then(|nodes| {
        for n in nodes.iter().filter(|n| n.kind == NodeKind::Dataset) {
            h5.dataset(&n.path)?;
        }
        Ok(())
    }) {
        let text = e.to_string();
        let id = match &e {
            strata_hdf5::Error::ExternalStorage { .. } => Some("hdf5.external_storage"),
            strata_hdf5::Error::VirtualDataset { .. } => Some("hdf5.virtual_dataset"),
            _ => None,
        };
        if let Some(id) = id {
            let mut loc = cx.loc();
            if let Some(p) = e.object_path() {
                loc = loc.hdf5(p);
            }
            if let Some(m) = member {
                loc = loc.member(m);
            }
            let (message, fix) = split_fix(&text);
            cx.push(Finding::new(id, Severity::High, Category::Security, loc, message, fix).blocking());
        }
    }
}

/// tf-keras `.h5` saves that died on duplicate weight names (keras-facts appendix finding 1):
/// `layer_names` lists groups that were never written.
fn legacy_truncation(cx: &mut Ctx<'_>, h5: &H5File) {
    let root = if h5.group("/model_weights").is_ok() { "/model_weights" } else { "/" };
    let Ok(Some(names)) = strata_format::weights::string_list_attr(h5, root, "layer_names") else { return };
    let Ok(group) = h5.group(root) else { return };
    let Ok(members) = group.members() else { return };
    let base = root.trim_end_matches('/');
    for n in names.iter().filter(|n| members.iter().any(|m| &m.name == *n)).take(100_000) {
        let gpath = format!("{base}/{n}");
        let Ok(Some(weights)) = strata_format::weights::string_list_attr(h5, &gpath, "weight_names") else { continue };
        let Some(dup) = weights.iter().enumerate().find(|(i, w)| weights[..*i].contains(w)).map(|(_, w)| w) else {
            continue;
        };
        cx.push(
            Finding::new(
                "file.truncated_save",
                Severity::Medium,
                Category::Load,
                cx.loc().hdf5(gpath.clone()).layer(n.clone()),
                format!(
                    "layer `{n}` lists the weight `{dup}` twice in `weight_names` ({}); tf-keras names unnamed `add_weight()` variables `Variable:0`, so the second could not be written (\"Unable to synchronously create dataset (name already exists)\" during `model.save`) and the file is incomplete; loading fails (tf-keras 2.21: \"Cannot assign value to variable '{dup}': Shape mismatch\")",
                    weights.join(", ")
                ),
                "give every `add_weight` in the custom layer a unique `name=` and save again (or save as .keras, which does not use weight names)",
            )
            .blocking(),
        );
    }
    let missing: Vec<&String> = names.iter().filter(|n| !members.iter().any(|m| &m.name == *n)).collect();
    if missing.is_empty() {
        return;
    }
    let first = missing[0];
    cx.push(
        Finding::new(
            "file.truncated_save",
            Severity::Medium,
            Category::Load,
            cx.loc().hdf5(format!("{}/{first}", root.trim_end_matches('/'))),
            format!(
                "`{root}` lists {} layer(s) whose weight groups were never written (first: `{first}`); the save stopped there, typically tf-keras failing on two weights with the same name (`add_weight()` without `name=` gives both `Variable:0`: \"Unable to synchronously create dataset (name already exists)\"); every load fails with KeyError: \"Unable to synchronously open object (object '{first}' doesn't exist)\"",
                missing.len()
            ),
            "give every `add_weight` a unique `name=` and save again (or save as .keras)",
        )
        .blocking(),
    );
}

/// A file written by a newer Keras than the target, or a Keras 1 config read by Keras >= 2.13
/// (both observed in `fixtures/doctor/lambda/legacy_results.json`).
fn version_skew(cx: &mut Ctx<'_>, mf: &ModelFile) {
    let Some(saved) = mf.keras_version.as_deref().and_then(KerasVersion::parse) else { return };
    let k = cx.opts.keras;
    let uses_functional = mf.config.as_ref().is_some_and(|c| c.envelope.class_name == "Functional");
    let (what, error) = if saved.major == 1 && k >= KerasVersion::new(2, 13, 0) {
        (
            format!("a Keras {saved} config (Keras 1 layer arguments such as `output_dim`, `W_regularizer`)"),
            if k.major >= 3 {
                "TypeError: pop expected at most 1 argument, got 2".to_owned()
            } else {
                "TypeError: Error when deserializing class 'Dense' using config={...}".to_owned()
            },
        )
    } else if saved > k && (saved.major > k.major || saved.minor > k.minor) {
        let error = if uses_functional && k < KerasVersion::new(2, 4, 0) {
            "ValueError: Unknown layer: Functional".to_owned()
        } else if k.major == 2 && (saved.major == 3 || saved > KerasVersion::new(2, 15, 0)) {
            "TypeError: Error when deserializing class 'InputLayer' using config={...} (arguments this Keras does not know, e.g. `batch_shape`)".to_owned()
        } else {
            // Observed to load (Keras 2.3.1 files in Keras 2.2.4): no finding without evidence.
            return;
        };
        (format!("saved by Keras {saved}, newer than Keras {k}"), error)
    } else {
        return;
    };
    cx.push(
        Finding::new(
            "keras.version_skew",
            Severity::Medium,
            Category::Load,
            cx.loc(),
            format!("the file is {what}; Keras {k} fails reading its config: {error}"),
            if saved.major == 1 {
                "load it with Keras 2.2-2.3 and save it again, or run `strata convert FILE out.keras`, which rewrites Keras 1 configs for Keras 3".to_owned()
            } else {
                format!("load it with Keras {}.{} or newer", saved.major, saved.minor)
            },
        )
        .blocking(),
    );
}

fn model_findings(cx: &mut Ctx<'_>, mf: &ModelFile) {
    version_skew(cx, mf);
    if let Some(root) = &mf.config_json {
        walk_config(cx, root, "config", None);
    }
    if let Some(config) = &mf.config {
        for (path, _depth, layer) in bind::all_layers(config) {
            layer_findings(cx, mf, &path, layer);
        }
        if let Some(store) = &mf.weights {
            let binding = bind::bind(config, store);
            for p in &binding.problems {
                weight_finding(cx, p);
            }
        }
    }
    if let Some(tc) = &mf.training_config {
        training_findings(cx, mf, tc);
    }
}

fn weight_finding(cx: &mut Ctx<'_>, p: &bind::BindProblem) {
    let text = p.to_string();
    match p {
        bind::BindProblem::Shape { layer, found, .. } => {
            let (id, fix) = if found == "none" {
                ("weights.missing", "the weights file does not match this model: save model and weights together again")
            } else {
                (
                    "weights.shape_mismatch",
                    "the config and the weights come from different models; save them together again, or fix the layer's config to the stored shapes",
                )
            };
            cx.push(
                Finding::new(id, Severity::Medium, Category::Load, cx.loc().layer(layer.clone()), text, fix).blocking(),
            );
        }
        bind::BindProblem::Unclaimed { owner, .. } => cx.push(Finding::new(
            "weights.extra",
            Severity::Low,
            Category::Load,
            cx.loc().hdf5(owner.clone()),
            text,
            "the weights come from a bigger model; Keras ignores or refuses the extra group depending on the format",
        )),
        bind::BindProblem::Unassigned { model, .. } => cx.push(Finding::new(
            "weights.unassigned",
            Severity::Low,
            Category::Load,
            cx.loc().layer(model.clone()),
            text,
            "check the nested model's weight names",
        )),
    }
}

fn is_legacy(cx: &Ctx<'_>) -> bool {
    matches!(cx.format, Some(FileFormat::LegacyH5Model) | Some(FileFormat::ModelJson))
}

fn layer_findings(cx: &mut Ctx<'_>, mf: &ModelFile, path: &str, layer: &strata_format::config::LayerConfig) {
    let class = layer.class_name.as_str();
    let k = cx.opts.keras;
    if class == "Lambda" {
        if let Some(func) = layer.lambda_function() {
            lambda_findings(cx, mf, path, &func, "function");
        }
        if let Some(func) = layer.lambda_output_shape()
            && !matches!(func, LambdaFunction::NamedFunction { .. })
        {
            lambda_findings(cx, mf, path, &func, "output_shape");
        }
        return;
    }
    if TF_OP_LAYERS.contains(&class) {
        let op = layer.config.get("function").and_then(Json::as_str).unwrap_or("?");
        let f = Finding::new(
            "keras2.tf_op_layer",
            Severity::Medium,
            Category::Load,
            cx.loc().layer(path),
            format!(
                "layer `{path}` is a `{class}` (the TensorFlow op `{op}` called on a Keras tensor in tf.keras); Keras 3 has no such class and fails with \"Unknown layer: '{class}'\""
            ),
            format!(
                "load it with tf-keras (TF_USE_LEGACY_KERAS=1), or rebuild the model in Keras 3 with a keras.ops call (for `{op}`) inside a custom layer"
            ),
        );
        cx.push(if k.major >= 3 { f.blocking() } else { f });
        return;
    }
    if MODEL_CLASSES.contains(&class) || layer.nested.is_some() || strata_format::builtin::is_keras_layer(class) {
        if class == "TFSMLayer" {
            let fp = layer.config.get("filepath").and_then(Json::as_str).unwrap_or("?");
            let blocked = k >= KerasVersion::new(3, 13, 2);
            let mut f = Finding::new(
                    "scan.external_savedmodel",
                    Severity::High,
                    Category::Security,
                    cx.loc().layer(path),
                    format!("layer `{path}` is a TFSMLayer that loads the SavedModel at `{fp}` when the model is loaded (an external file chosen by the config; graph code runs from it)"),
                    "do not load the file unless you trust that path; Keras >= 3.13.2 blocks TFSMLayer in safe mode",
                )
                .with_cve("CVE-2026-1462");
            if blocked {
                f.blocks_load = true;
                f.message.push_str(&format!("; Keras {k} refuses it by default (safe_mode=True): \"Requested the deserialization of a `TFSMLayer`, which loads an external SavedModel\""));
            }
            cx.push(f);
        }
        if matches!(class, "StringLookup" | "IntegerLookup" | "TextVectorization")
            && let Some(v) = layer.config.get("vocabulary").and_then(Json::as_str)
        {
            let mut f = Finding::new(
                    "scan.vocabulary_path",
                    Severity::Medium,
                    Category::Security,
                    cx.loc().layer(path),
                    format!("layer `{path}` ({class}) reads its vocabulary from `{v}` when loaded (through tf.io.gfile: any local file or URL; Keras < 3.12 even in safe mode)"),
                    "store the vocabulary inline (a list) or as an asset; do not load files whose vocabulary points elsewhere",
                )
                .with_cve("CVE-2025-12058");
            if k >= KerasVersion::new(3, 12, 0) {
                f.blocks_load = true;
                f.message.push_str(&format!("; Keras {k} refuses it by default (safe_mode=True): \"Requested the loading of a vocabulary file outside of the model archive\""));
            }
            cx.push(f);
        }
        if class == "TorchModuleWrapper" {
            cx.push(Finding::new(
                "scan.torch_module",
                Severity::High,
                Category::Security,
                cx.loc().layer(path),
                format!("layer `{path}` is a TorchModuleWrapper: its module is restored with torch.load (pickle)"),
                "load only from trusted sources; Keras blocks it in safe mode",
            ));
        }
        return;
    }
    // A custom class.
    let registered = layer.registered_name.clone().unwrap_or_else(|| class.to_owned());
    let (package, name) = match registered.split_once('>') {
        Some((p, n)) => (p.to_owned(), n.to_owned()),
        None => ("Custom".to_owned(), registered.clone()),
    };
    let keras_err = if is_legacy(cx) || k.major < 3 && !matches!(cx.format, Some(FileFormat::KerasV3)) {
        format!(
            "ValueError: Unknown layer: '{registered}'. Please ensure you are using a `keras.utils.custom_object_scope` and that this object is included in the scope."
        )
    } else if k.major >= 3 {
        format!(
            "TypeError: Could not locate class '{registered}'. Make sure custom classes and functions are decorated with `@keras.saving.register_keras_serializable()`."
        )
    } else {
        format!(
            "TypeError: Cannot deserialize object of type `{class}`. If `{class}` is a custom class, please register it using the `@keras.saving.register_keras_serializable()` decorator."
        )
    };
    let module = layer.module.as_deref().map(|m| format!(" (defined in module `{m}`)")).unwrap_or_default();
    // the registration strata-registry takes (its own missing-object report gives the same line)
    let rust = if !registered.contains('>') {
        format!(
            "implement `strata_registry::CustomLayer` for `{name}` and register it by name, `registry.layer_as::<{name}>(\"{registered}\")`"
        )
    } else {
        format!(
            "`#[derive(KerasLayer, Serialize, Deserialize)] #[keras(package = \"{package}\")] struct {name} {{ .. }}` implementing `strata_registry::CustomLayer`, then `registry.layer::<{name}>()`"
        )
    };
    let mut f = Finding::new(
        "custom.unregistered",
        Severity::Medium,
        Category::Load,
        cx.loc().layer(path),
        format!(
            "layer `{path}` is the custom class `{class}`{module}, saved under the name `{registered}`; Keras loads it only when a class is registered under that name, else: {keras_err}"
        ),
        format!(
            "Python: import the module that defines it, decorated `@keras.saving.register_keras_serializable(package=\"{package}\")` on `class {name}`, or pass `custom_objects={{\"{registered}\": {name}}}`; Rust: {rust}"
        ),
    );
    f.blocks_load = true;
    let _ = mf;
    cx.push(f);
}

fn lambda_findings(cx: &mut Ctx<'_>, mf: &ModelFile, path: &str, func: &LambdaFunction, key: &str) {
    let loc = cx.loc().layer(path).config(format!("config.{key}"));
    let text = match func {
        LambdaFunction::Keras3Lambda { code_b64, .. } | LambdaFunction::Keras2 { code_b64, .. } => code_b64.clone(),
        LambdaFunction::Keras1Raw { text, .. } => text.clone(),
        LambdaFunction::NamedFunction { module, name, .. } => {
            named_function(cx, path, module.as_deref(), name, loc);
            return;
        }
    };
    let a = lambda::analyze(&text);
    let k = cx.opts.keras;
    let is_h5 = is_legacy(cx);
    // safe_mode: what the default load does.
    let safe_blocks = if is_h5 { k.safe_mode_blocks_h5() } else { k.safe_mode_blocks_keras_archives() };
    let fname = a
        .function
        .as_ref()
        .map(|f| format!("`{}` from {}:{}", f.name, f.file, f.line))
        .unwrap_or_else(|| "a function".into());
    let expr = a.expression.clone().map(|e| format!(" ({e})")).unwrap_or_default();
    let mut base = Finding::new(
        "lambda.bytecode",
        Severity::High,
        Category::Security,
        loc.clone(),
        format!(
            "Lambda layer `{path}` stores Python bytecode for {fname}{expr}, marshaled by CPython {}; loading it runs that code",
            a.writer_range()
        ),
        format!(
            "replace the Lambda with a registered custom layer (or a built-in layer){}; load with safe_mode=False only if you trust the file",
            a.expression.as_deref().map(|e| format!(" computing `{}`", e.trim_start_matches("lambda ").split_once(": ").map_or(e, |p| p.1))).unwrap_or_default()
        ),
    )
    .with_cve("CVE-2024-3660");
    base.python_versions = Some(a.writer_range());
    base.function = a.function.clone();
    base.details = a.listing.lines().map(str::to_owned).collect();
    // Per-version table.
    let readers: Vec<PyVersion> = match cx.opts.python {
        Some(p) => vec![p],
        None => (8..=14).map(|m| PyVersion::new(3, m)).collect(),
    };
    let mut table = Vec::new();
    let mut target_outcome = None;
    if let Some((lo, hi)) = a.writer {
        for r in &readers {
            let o = lambda::outcome_range(lo, hi, *r);
            table.push(format!("CPython {r}: {}", keras_level(&o, is_h5, k)));
            if cx.opts.python == Some(*r) {
                target_outcome = Some(o);
            }
        }
        base.details.splice(0..0, table.iter().cloned().chain(std::iter::once(String::new())));
    }
    if safe_blocks {
        base.message.push_str(&format!(
            "; Keras {k} refuses it by default (safe_mode=True): \"Requested the deserialization of a `Lambda` layer whose `function` is a Python lambda\""
        ));
        base.blocks_load = true;
    }
    cx.push(base);

    // Security: what the code calls.
    risky_calls(cx, &a, loc.clone(), path);

    if let Some(w) = &a.windows {
        let what = if w.restored_offsets.is_empty() {
            format!("telltales: {}", w.telltales.join(", "))
        } else {
            format!(
                "{} byte(s) 0x2F that were 0x5C (offsets {:?}); restoring them makes it parse",
                w.restored_offsets.len(),
                w.restored_offsets
            )
        };
        let f = Finding::new(
            "lambda.windows_corruption",
            Severity::Medium,
            Category::Load,
            loc.clone(),
            format!(
                "the bytecode of Lambda `{path}` was saved on Windows, where Keras's func_dump replaces every byte 0x5C (`\\`) with 0x2F (`/`) anywhere in the marshal data: {what}; constants such as 92 read as 47"
            ),
            "save the model on Linux or macOS, or replace the Lambda with a registered layer",
        );
        cx.push(if w.restored_offsets.is_empty() { f } else { f.blocking() });
    }
    if a.writer.is_none() {
        cx.push(
            Finding::new(
                "lambda.undecodable",
                Severity::Medium,
                Category::Load,
                loc.clone(),
                format!("the code of Lambda `{path}` ({} bytes) is not marshal data any CPython 2.7 or 3.0-3.14 layout reads; every Python fails with \"{}\"", a.blob_len, lambda::BAD_MARSHAL),
                "the file was damaged or crafted; rebuild the layer in code and load only the weights",
            )
            .blocking(),
        );
        return;
    }
    if let (Some(r), Some(o)) = (cx.opts.python, target_outcome)
        && !o.loads()
    {
        cross_version(cx, &a, loc.clone(), path, r, &o, is_h5, k);
    }
    // Keras 3 gives the lambda python_utils' globals only: module globals raise NameError.
    if k.major >= 3 {
        let missing: Vec<&String> = a.globals.iter().filter(|g| !PY_BUILTINS.contains(&g.as_str())).collect();
        if !missing.is_empty() {
            let list = missing.iter().map(|g| format!("`{g}`")).collect::<Vec<_>>().join(", ");
            cx.push(Finding::new(
                "lambda.globals",
                Severity::Medium,
                Category::Load,
                loc,
                format!("Lambda `{path}` uses the global name(s) {list}; Keras 3 rebuilds lambdas with the globals of keras/src/utils/python_utils.py only, so calling it raises NameError (e.g. \"name '{}' is not defined\") even with safe_mode=False", missing[0]),
                "replace the Lambda with a registered custom layer that imports what it uses",
            ));
        }
    }
    let _ = mf;
}

/// Names a Keras 3 lambda can use: Python's builtins and the module globals of
/// keras/src/utils/python_utils.py (`binascii`, `codecs`, `marshal`, `os`, `python_types`).
const PY_BUILTINS: &[&str] = &[
    "abs",
    "all",
    "any",
    "bool",
    "bytes",
    "callable",
    "chr",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "format",
    "frozenset",
    "getattr",
    "hasattr",
    "hash",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "ord",
    "pow",
    "print",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "setattr",
    "slice",
    "sorted",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "zip",
    "__import__",
    "eval",
    "exec",
    "open",
    "compile",
    "globals",
    "locals",
    "vars",
    "id",
    "complex",
    "bin",
    "hex",
    "oct",
    "ascii",
    "input",
    "memoryview",
    "bytearray",
    "property",
    "staticmethod",
    "classmethod",
    "delattr",
    "dir",
    "help",
    "ValueError",
    "TypeError",
    "Exception",
    "KeyError",
    "IndexError",
    "RuntimeError",
    "NotImplementedError",
    "None",
    "True",
    "False",
    "binascii",
    "codecs",
    "marshal",
    "os",
    "python_types",
];

/// The load result at Keras level for a marshal outcome.
fn keras_level(o: &Outcome, is_h5: bool, k: KerasVersion) -> String {
    match o {
        Outcome::CallError(_) if is_h5 && k.major >= 3 => format!(
            "{} (Keras 3 .h5 swallows it while building, then: \"ValueError: Layer count mismatch when loading weights from file. Model expected 0 layers, found 1 saved layers.\")",
            o.describe()
        ),
        _ => o.describe(),
    }
}

#[allow(clippy::too_many_arguments)]
fn cross_version(
    cx: &mut Ctx<'_>,
    a: &LambdaAnalysis,
    loc: Location,
    path: &str,
    reader: PyVersion,
    o: &Outcome,
    is_h5: bool,
    k: KerasVersion,
) {
    let mut f = Finding::new(
        "lambda.cross_version",
        Severity::Medium,
        Category::Load,
        loc,
        format!(
            "Lambda `{path}` was marshaled by CPython {} and CPython {reader} {} (with safe_mode=False); the marshal format of code objects differs between Python versions",
            a.writer_range(),
            keras_level(o, is_h5, k)
        ),
        format!(
            "load it with CPython {} (the writer), or rebuild the Lambda in code (or as a registered layer) and load only the weights: `model.load_weights(...)`",
            a.writer_range()
        ),
    )
    .blocking();
    f.python_versions = Some(a.writer_range());
    f.function = a.function.clone();
    cx.push(f);
}

fn risky_calls(cx: &mut Ctx<'_>, a: &LambdaAnalysis, loc: Location, path: &str) {
    let has = |pred: &dyn Fn(&str) -> bool| a.names.iter().any(|n| pred(n));
    let checks: [(&'static str, &str, bool); 7] = [
        (
            "scan.lambda_os_system",
            "os.system / os.popen / os.exec*",
            has(&|n| {
                matches!(n, "system" | "popen" | "execv" | "execve" | "execl" | "spawnv" | "os.system" | "os.popen")
                    || n.starts_with("os.exec")
            }),
        ),
        (
            "scan.lambda_subprocess",
            "subprocess",
            has(&|n| n.contains("subprocess") || matches!(n, "Popen" | "check_output" | "check_call")),
        ),
        ("scan.lambda_eval", "eval / exec / compile", has(&|n| matches!(n, "eval" | "exec" | "compile" | "execfile"))),
        (
            "scan.lambda_import",
            "__import__ / importlib",
            has(&|n| matches!(n, "__import__" | "import_module" | "importlib" | "__builtins__" | "builtins")),
        ),
        (
            "scan.lambda_open",
            "open (files)",
            has(&|n| matches!(n, "open" | "io.open" | "unlink" | "remove" | "rmtree" | "write_text" | "write_bytes")),
        ),
        (
            "scan.lambda_network",
            "network access",
            has(&|n| {
                n.contains("socket")
                    || n.contains("urllib")
                    || n.contains("requests")
                    || n.contains("urlopen")
                    || n.contains("http")
            }),
        ),
        (
            "scan.lambda_reflection",
            "getattr / globals / setattr",
            has(&|n| {
                matches!(
                    n,
                    "getattr"
                        | "setattr"
                        | "globals"
                        | "locals"
                        | "vars"
                        | "__globals__"
                        | "__code__"
                        | "__subclasses__"
                )
            }),
        ),
    ];
    for (id, what, hit) in checks {
        if !hit {
            continue;
        }
        let names: Vec<&str> =
            a.names.iter().map(String::as_str).filter(|n| !n.starts_with('\'') || n.len() < 60).collect();
        let sev = if id == "scan.lambda_reflection" || id == "scan.lambda_open" {
            Severity::High
        } else {
            Severity::Critical
        };
        cx.push(
            Finding::new(
                id,
                sev,
                Category::Security,
                loc.clone(),
                format!("Lambda `{path}` calls {what} (names in its bytecode: {}); loading the model with safe_mode=False, or with tf-keras from .h5, runs it", names.join(", ")),
                "do not load this file; if you must, read the function in `strata doctor` output and rebuild the model without it",
            )
            .with_cve("CVE-2024-3660"),
        );
    }
}

fn named_function(cx: &mut Ctx<'_>, path: &str, module: Option<&str>, name: &str, loc: Location) {
    let short = name.rsplit(['.', '>']).next().unwrap_or(name);
    if short == "enable_unsafe_deserialization" {
        cx.push(
            Finding::new(
                "scan.safe_mode_flip",
                Severity::Critical,
                Category::Security,
                loc,
                format!("Lambda `{path}` calls `{name}` when the model is built: it turns safe mode off, so a later Lambda's bytecode runs even with safe_mode=True (Keras < 3.11)"),
                "do not load this file; upgrade to Keras >= 3.11, which denies this function during deserialization",
            )
            .with_cve("CVE-2025-9906")
            .blocking(),
        );
        return;
    }
    if GADGETS.contains(&short) {
        cx.push(
            Finding::new(
                "scan.keras_gadget",
                Severity::Critical,
                Category::Security,
                loc,
                format!("Lambda `{path}` is a reference to the Keras API `{}{name}`, called with the config's arguments when the model is built (downloads or overwrites files); Keras 3.11+ denies non-modeling APIs: \"Cannot deserialize `{name}` because it is not a modeling function\"", module.map(|m| format!("{m}.")).unwrap_or_default()),
                "do not load this file with Keras < 3.11; remove the layer",
            )
            .with_cve("CVE-2025-8747")
            .blocking(),
        );
        return;
    }
    let m = module.unwrap_or("");
    if !m.is_empty()
        && !KERAS_NAMESPACES.iter().any(|k| m == *k || m.starts_with(&format!("{k}.")))
        && m != "builtins"
        && m != "__main__"
    {
        module_outside(cx, m, name, loc.clone());
    }
    cx.push(
        Finding::new(
            "custom.function",
            Severity::Medium,
            Category::Load,
            loc,
            format!("Lambda `{path}` refers to the function `{name}`{} by name; Keras finds it only when it is registered (or importable from that module)", module.map(|m| format!(" in module `{m}`")).unwrap_or_default()),
            format!("decorate `def {short}` with `@keras.saving.register_keras_serializable()` and import it before loading, or pass `custom_objects={{\"{name}\": {short}}}`"),
        )
        .blocking(),
    );
}

fn module_outside(cx: &mut Ctx<'_>, module: &str, name: &str, loc: Location) {
    let top = module.split('.').next().unwrap_or(module);
    let dangerous = pickle::is_dangerous(&format!("{module}.{name}"))
        || matches!(top, "os" | "subprocess" | "builtins" | "sys" | "posix" | "shutil" | "socket");
    let sev = if dangerous { Severity::Critical } else { Severity::Low };
    cx.push(
        Finding::new(
            "scan.module_outside_keras",
            sev,
            Category::Security,
            loc,
            format!("the config names `{name}` from module `{module}`, outside Keras's namespaces; Keras 3.0-3.8 imports any such module and calls what it names on load, even in safe mode"),
            "do not load this file with Keras < 3.9; Keras >= 3.9 imports only keras, keras_hub, keras_cv and keras_nlp by module path",
        )
        .with_cve("CVE-2025-1550"),
    );
}

/// Walks the raw config for `module`/`class_name` pairs and module paths.
fn walk_config(cx: &mut Ctx<'_>, v: &Json, path: &str, layer: Option<&str>) {
    walk(cx, v, path, layer, 0);
}

fn walk(cx: &mut Ctx<'_>, v: &Json, path: &str, layer: Option<&str>, depth: usize) {
    if depth > 200 {
        return;
    }
    match v {
        Json::Object(o) => {
            let layer_here = if o.get("class_name").is_some() {
                o.get("config").and_then(|c| c.get("name")).and_then(Json::as_str).or(layer)
            } else {
                layer
            };
            if let (Some(module), Some(class_name)) =
                (o.get("module").and_then(Json::as_str), o.get("class_name").and_then(Json::as_str))
            {
                let mut loc = cx.loc().config(path.to_owned());
                if let Some(l) = layer_here {
                    loc = loc.layer(l);
                }
                let in_keras = KERAS_NAMESPACES.iter().any(|k| module == *k || module.starts_with(&format!("{k}.")));
                if module.starts_with("keras.src.engine") || module.starts_with("keras.engine") {
                    let f = Finding::new(
                        "keras2.module_path",
                        Severity::Medium,
                        Category::Load,
                        loc.clone(),
                        format!(
                            "`{class_name}` is recorded under the Keras 2 module path `{module}`, which Keras 3 does not have: \"Could not deserialize class '{class_name}' because its parent module {module} cannot be imported\""
                        ),
                        "run `strata convert FILE fixed.keras` (it rewrites Keras 2 module paths for Keras 3), or re-save the model from Keras 2.15 as .h5 and load that in Keras 3",
                    );
                    cx.push(if cx.opts.keras.major >= 3 { f.blocking() } else { f });
                } else if (!in_keras && module != "builtins" && module != "__main__")
                    || (module == "builtins" && class_name != "function")
                {
                    module_outside(cx, module, class_name, loc.clone());
                }
                if class_name == "function"
                    && let Some(name) = o.get("config").and_then(Json::as_str)
                {
                    let short = name.rsplit(['.', '>']).next().unwrap_or(name);
                    if short == "enable_unsafe_deserialization" || GADGETS.contains(&short) {
                        // reported through the Lambda when it is one; other places too
                        if !path.ends_with("config.function") {
                            let f = Finding::new(
                                if short == "enable_unsafe_deserialization" {
                                    "scan.safe_mode_flip"
                                } else {
                                    "scan.keras_gadget"
                                },
                                Severity::Critical,
                                Category::Security,
                                loc.clone(),
                                format!("the config calls the Keras API `{name}` during deserialization"),
                                "do not load this file with Keras < 3.11",
                            )
                            .with_cve(if short == "enable_unsafe_deserialization" {
                                "CVE-2025-9906"
                            } else {
                                "CVE-2025-8747"
                            });
                            cx.push(f);
                        }
                    }
                }
            }
            for (k, child) in o.iter() {
                if child.is_null() || matches!(child, Json::Number(_) | Json::Bool(_)) {
                    continue;
                }
                let p = format!("{path}.{k}");
                walk(cx, child, &p, layer_here, depth + 1);
            }
        }
        Json::Array(items) => {
            for (i, child) in items.iter().enumerate().take(100_000) {
                if matches!(child, Json::Object(_) | Json::Array(_)) {
                    walk(cx, child, &format!("{path}[{i}]"), layer, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn training_findings(cx: &mut Ctx<'_>, mf: &ModelFile, tc: &Json) {
    let k = cx.opts.keras;
    let legacy = mf.format == FileFormat::LegacyH5Model;
    let mut names: Vec<(String, &'static str)> = Vec::new();
    let mut collect = |v: Option<&Json>, what: &'static str| {
        let mut stack: Vec<&Json> = v.into_iter().collect();
        while let Some(j) = stack.pop() {
            match j {
                Json::String(s) => names.push((s.clone(), what)),
                Json::Array(a) => stack.extend(a.iter()),
                Json::Object(o) => {
                    if let Some(c) = o.get("class_name").and_then(Json::as_str) {
                        if c == "function" {
                            if let Some(n) = o.get("config").and_then(Json::as_str) {
                                names.push((n.to_owned(), what));
                            }
                        } else if !c.is_empty()
                            && o.get("module").and_then(Json::as_str).is_none_or(|m| !m.starts_with("keras"))
                        {
                            names.push((c.to_owned(), what));
                        }
                    } else {
                        stack.extend(o.iter().map(|(_, v)| v));
                    }
                }
                _ => {}
            }
        }
    };
    collect(tc.get("loss"), "loss");
    collect(tc.get("metrics"), "metric");
    collect(tc.get("weighted_metrics"), "metric");
    let mut builtin_hit = None;
    for (name, what) in &names {
        let lower = name.to_ascii_lowercase();
        if strata_format::builtin::LOSS_METRIC_NAMES.contains(&lower.as_str()) || is_keras_loss_class(name) {
            if builtin_hit.is_none() && strata_format::builtin::LOSS_METRIC_NAMES.contains(&lower.as_str()) {
                builtin_hit = Some(name.clone());
            }
            continue;
        }
        let predicted = if legacy && k.major >= 3 {
            if *what == "loss" {
                "TypeError: string indices must be integers, not 'str'".to_owned()
            } else {
                format!("ValueError: Unknown metric function: '{name}'")
            }
        } else if legacy {
            format!(
                "ValueError: Unknown {what} function: '{name}'. Please ensure you are using a `keras.utils.custom_object_scope`"
            )
        } else {
            format!(
                "TypeError: Could not locate function '{name}'. Make sure custom classes and functions are decorated with `@keras.saving.register_keras_serializable()`"
            )
        };
        let short = name.rsplit('>').next().unwrap_or(name);
        cx.push(
            Finding::new(
                "custom.function",
                Severity::Medium,
                Category::Load,
                cx.loc().config(format!("training_config.{what}")),
                format!("the compile config uses the custom {what} `{name}`; compiling on load fails unless it is registered: {predicted}"),
                format!("decorate `def {short}` with `@keras.saving.register_keras_serializable()` and import it before loading, pass `custom_objects={{\"{name}\": {short}}}`, or load with compile=False"),
            )
            .blocking(),
        );
    }
    if legacy
        && k >= KerasVersion::new(3, 11, 0)
        && let Some(name) = builtin_hit
    {
        cx.push(
            Finding::new(
                "keras3.legacy_h5_compile",
                Severity::Medium,
                Category::Load,
                cx.loc().config("training_config"),
                format!("this legacy .h5 was compiled with the built-in `{name}`; Keras {k} cannot re-compile it on load: \"ValueError: Could not deserialize 'keras.metrics.{name}' because it is not a KerasSaveable subclass\""),
                "load with `keras.saving.load_model(path, compile=False)` and call `model.compile(...)` yourself, or save as .keras",
            )
            .blocking(),
        );
    }
}

fn is_keras_loss_class(name: &str) -> bool {
    matches!(
        name,
        "MeanSquaredError"
            | "MeanAbsoluteError"
            | "BinaryCrossentropy"
            | "CategoricalCrossentropy"
            | "SparseCategoricalCrossentropy"
            | "Huber"
            | "LogCosh"
            | "KLDivergence"
            | "Poisson"
            | "Hinge"
            | "CosineSimilarity"
            | "Accuracy"
            | "BinaryAccuracy"
            | "CategoricalAccuracy"
            | "SparseCategoricalAccuracy"
            | "AUC"
            | "Precision"
            | "Recall"
            | "Mean"
            | "MeanMetricWrapper"
            | "LossFunctionWrapper"
    )
}
