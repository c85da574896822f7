//! `strata convert`: rewrite a model between `.keras`, legacy `.h5` and `.weights.h5` —
//! config and weights, no engine, nothing executed.
//!
//! What is written mirrors what Keras 3.15.1 writes and reads:
//! * `.weights.h5` / `model.weights.h5`: each layer's variables at its Keras 3 object path
//!   ([`crate::bind::keras3_layer_paths`], [`crate::bind::keras3_sub_objects`]), numbered in
//!   the order `Layer.load_own_variables` expects, each `vars` group with its `name` attribute
//!   (Keras >= 3.6), bfloat16 as a 2-byte opaque type with `dtype="bfloat16"`
//!   (`H5IOStore` in `keras/src/saving/saving_lib.py`).
//! * `.keras`: `metadata.json`, `config.json`, `model.weights.h5`, stored (uncompressed). A
//!   legacy config is wrapped in the Keras 3 envelope and its layer entries kept as they are:
//!   Keras 3 deserializes entries without a `module` key through its legacy path
//!   (`Sequential.from_config`, `functional_from_config.process_layer`).
//! * legacy `.h5`: root attributes `keras_version`, `backend`, `model_config`; `model_weights`
//!   with `layer_names` and one group per layer with `weight_names`, in the order Keras's
//!   `load_weights_from_hdf5_group` pairs them (a nested model lists all its trainable
//!   weights, then all its non-trainable ones); lists too large for one attribute are split into
//!   `name0`, `name1`... as `save_attributes_to_hdf5_group` does.
//!
//! Every save is atomic: the previous file survives any failure.

use std::borrow::Cow;
use std::path::Path;

use strata_hdf5::{DType, WriteAttr, Writer};

use crate::archive::ArchiveWriter;
use crate::bind::{self, BoundLayer};
use crate::config::{ConfigDialect, ModelKind};
use crate::error::{Error, Location, Result};
use crate::json::Json;
use crate::model::{FileFormat, ModelFile};
use crate::weights::{Layout, TensorInfo, WeightStore};

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A `.keras` archive.
    KerasV3,
    /// A legacy full-model `.h5`.
    LegacyH5,
    /// A Keras 3 `.weights.h5`.
    WeightsH5,
}

impl Target {
    /// The target an output file name asks for: `.keras`, `.weights.h5`, or `.h5`/`.hdf5`.
    pub fn from_path(p: &Path) -> Option<Target> {
        let n = p.file_name()?.to_str()?.to_ascii_lowercase();
        if n.ends_with(".keras") {
            Some(Target::KerasV3)
        } else if n.ends_with(".weights.h5") {
            Some(Target::WeightsH5)
        } else if n.ends_with(".h5") || n.ends_with(".hdf5") || n.ends_with(".keras.h5") {
            Some(Target::LegacyH5)
        } else {
            None
        }
    }
    /// The format name, as `inspect` reports it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Target::KerasV3 => FileFormat::KerasV3.as_str(),
            Target::LegacyH5 => FileFormat::LegacyH5Model.as_str(),
            Target::WeightsH5 => FileFormat::WeightsH5V3.as_str(),
        }
    }
}

/// What a conversion wrote.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The format written.
    pub target: Target,
    /// Layers with weights.
    pub layers: usize,
    /// Tensors written.
    pub tensors: usize,
    /// Bytes of tensor data written.
    pub tensor_bytes: u64,
    /// Bytes of the file.
    pub file_bytes: u64,
    /// What did not carry over, and why.
    pub notes: Vec<String>,
}

/// The Keras version strata's files declare: the one whose reader they are verified against.
pub const KERAS_VERSION: &str = "3.15.1";

/// One tensor to write, with its data and whether Keras counts it trainable (legacy `.h5`
/// lists a layer's trainable weights, then its non-trainable ones).
pub(crate) struct Tensor<'d> {
    pub(crate) info: TensorInfo,
    pub(crate) data: Cow<'d, [u8]>,
    pub(crate) trainable: bool,
}

/// Where the writers get each layer's tensors: a stored file ([`convert`]) or a model held in
/// memory ([`crate::save::save_model`]). Both go through the same writers.
pub(crate) trait TensorSource {
    /// The layer's own tensors, in the order of `l.tensors`.
    fn layer_tensors(&self, l: &BoundLayer<'_>) -> Result<Vec<Tensor<'_>>>;
    /// The layer's weight names in a legacy `.h5`, without the layer-name prefix.
    fn legacy_names(&self, l: &BoundLayer<'_>) -> Vec<String>;
}

/// Tensors read from a stored weights file.
struct StoreSource<'s> {
    store: &'s WeightStore,
}

impl TensorSource for StoreSource<'_> {
    fn layer_tensors(&self, l: &BoundLayer<'_>) -> Result<Vec<Tensor<'_>>> {
        let split = l.tensors.len().saturating_sub(l.non_trainable_count());
        l.tensors
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let data = self.store.read(t)?;
                Ok(Tensor { info: t.clone(), data: Cow::Owned(data), trainable: i < split })
            })
            .collect()
    }
    fn legacy_names(&self, l: &BoundLayer<'_>) -> Vec<String> {
        legacy_names_for(l, self.store.layout)
    }
}

/// The root attributes of a legacy `.h5`.
pub(crate) struct LegacyHeader {
    pub(crate) keras_version: String,
    pub(crate) backend: String,
    pub(crate) model_config: Json,
    pub(crate) training_config: Option<Json>,
}

fn invalid(what: String, help: &str) -> Error {
    Error::Invalid { location: Location::default(), what, help: help.to_string() }
}

/// Converts `src` (with weights from `weights` when given) into `target` at `out`.
pub fn convert(src: &ModelFile, weights: Option<&ModelFile>, target: Target, out: &Path) -> Result<Converted> {
    let config = src.config.as_ref().ok_or_else(|| {
        invalid(
            format!(
                "`{}` is a weights-only file: converting it needs the model's architecture to name the weights",
                src.path.display()
            ),
            "give the model (a .keras, .h5 or to_json() file) as INPUT and this file with --weights",
        )
    })?;
    let wsrc = weights.unwrap_or(src);
    let store = wsrc.weights.as_ref().ok_or_else(|| {
        invalid(
            format!("`{}` has no weights", wsrc.path.display()),
            "give a weights file with --weights (a legacy .h5 or a .weights.h5)",
        )
    })?;
    let binding = bind::bind(config, store);
    if !binding.problems.is_empty() {
        return Err(Error::Invalid {
            location: Location::file(&wsrc.path),
            what: format!(
                "{} problems binding the weights of `{}` to the architecture of `{}`: {}",
                binding.problems.len(),
                wsrc.path.display(),
                src.path.display(),
                binding.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
            ),
            help: "check that the weights belong to this model (`strata inspect` lists both); nothing was written"
                .into(),
        });
    }
    let mut notes = Vec::new();
    let source = StoreSource { store };
    let (bytes, layers, tensors, tensor_bytes) = match target {
        Target::WeightsH5 => write_keras3_weights(config_name(src), &binding, &source, None)?,
        Target::KerasV3 => {
            if config.source == ConfigDialect::Keras1 {
                return Err(Error::Unsupported {
                    location: Location::file(&src.path),
                    what: "writing a Keras 1 model as .keras".into(),
                    help: "Keras 3 cannot read Keras 1 layer configs; convert to .weights.h5 for the weights, or use `strata predict` on the original file".into(),
                });
            }
            let (w, l, t, n) = write_keras3_weights(config_name(src), &binding, &source, None)?;
            let cfg = keras3_config_json(src, &mut notes);
            (keras_archive(&cfg, &w, out)?, l, t, n)
        }
        Target::LegacyH5 => {
            let header = legacy_header(src, config, &mut notes);
            write_legacy_h5(&config.kind, &header, &binding, &source, None, &mut notes)?
        }
    };
    if !store.optimizer.is_empty() {
        notes.push(format!(
            "{} optimizer tensors were not carried over: training restarts the optimizer",
            store.optimizer.len()
        ));
    }
    let file_bytes = commit(out, &bytes)?;
    Ok(Converted { target, layers, tensors, tensor_bytes, file_bytes, notes })
}

/// Writes `bytes` to `out` atomically ([`crate::atomic::write_atomic`]); returns the size.
pub(crate) fn commit(out: &Path, bytes: &[u8]) -> Result<u64> {
    crate::atomic::write_atomic(out, |f| std::io::Write::write_all(f, bytes))
        .map_err(|source| Error::Save { source })?;
    Ok(bytes.len() as u64)
}

/// A `.keras` archive: `metadata.json` (this Keras version, now), `config.json`, the weights.
pub(crate) fn keras_archive(config: &Json, weights_h5: &[u8], out: &Path) -> Result<Vec<u8>> {
    let meta = Json::object([("keras_version", Json::from(KERAS_VERSION)), ("date_saved", Json::from(date_saved()))]);
    let (meta, cfg) = (meta.to_string_python(), config.to_string_python());
    ArchiveWriter::new(meta.as_bytes(), cfg.as_bytes(), weights_h5)
        .to_bytes()
        .map_err(|source| Error::Archive { location: Location::file(out), source })
}

fn config_name(src: &ModelFile) -> &str {
    src.config.as_ref().map(|c| c.name.as_str()).unwrap_or("model")
}

pub(crate) fn h5w(e: strata_hdf5::Error) -> Error {
    Error::Hdf5 { location: Location::default(), source: e }
}

pub(crate) fn write_dataset(w: &mut Writer, path: &str, t: &Tensor<'_>) -> Result<()> {
    w.create_dataset(path, t.info.dtype.clone(), &t.info.shape, &t.data).map_err(h5w)?;
    if t.info.dtype == DType::BF16 {
        w.set_attr(path, "dtype", WriteAttr::VlenUtf8("bfloat16".into())).map_err(h5w)?;
    }
    Ok(())
}

/// Writes a Keras 3 weights file, with the optimizer's variables (its name, then its variables
/// in Keras order) under `optimizer/vars` as `Optimizer.save_own_variables` does. Returns
/// (bytes, layers with weights, tensors, tensor bytes).
pub(crate) fn write_keras3_weights(
    model_name: &str,
    binding: &bind::Binding<'_>,
    source: &dyn TensorSource,
    optimizer: Option<(&str, &[Tensor<'_>])>,
) -> Result<(Vec<u8>, usize, usize, u64)> {
    let mut w = Writer::new();
    w.create_group("/vars").map_err(h5w)?;
    w.set_attr("/vars", "name", WriteAttr::VlenUtf8(model_name.to_string())).map_err(h5w)?;
    let (mut layers, mut tensors, mut nbytes) = (0usize, 0usize, 0u64);
    for l in &binding.layers {
        if l.keras3_path.is_empty() {
            continue;
        }
        let vars = format!("/{}/vars", l.keras3_path);
        w.create_group(&vars).map_err(h5w)?;
        w.set_attr(&vars, "name", WriteAttr::VlenUtf8(l.layer.name.clone())).map_err(h5w)?;
        if l.tensors.is_empty() {
            continue;
        }
        let data = source.layer_tensors(l)?;
        let subs = bind::keras3_sub_objects(l.layer);
        let per = if data.len() % subs.len() == 0 { data.len() / subs.len() } else { 0 };
        if per == 0 {
            return Err(invalid(
                format!(
                    "layer `{}` ({}) has {} weights, which do not split over its Keras 3 sub-objects {:?}",
                    l.path,
                    l.layer.class_name,
                    data.len(),
                    subs
                ),
                "this layer's weights layout is not one strata knows; please report it with `strata inspect --json` output",
            ));
        }
        for (si, sub) in subs.iter().enumerate() {
            let base = if sub.is_empty() { format!("/{}", l.keras3_path) } else { format!("/{}/{sub}", l.keras3_path) };
            for (i, t) in data[si * per..(si + 1) * per].iter().enumerate() {
                write_dataset(&mut w, &format!("{base}/vars/{i}"), t)?;
                tensors += 1;
                nbytes += t.data.len() as u64;
            }
        }
        layers += 1;
    }
    if let Some((name, vars)) = optimizer {
        w.create_group("/optimizer/vars").map_err(h5w)?;
        w.set_attr("/optimizer/vars", "name", WriteAttr::VlenUtf8(name.to_string())).map_err(h5w)?;
        for (i, t) in vars.iter().enumerate() {
            write_dataset(&mut w, &format!("/optimizer/vars/{i}"), t)?;
        }
    }
    Ok((w.finish().map_err(h5w)?, layers, tensors, nbytes))
}

/// The Keras 3 `config.json` for a model file: its own when Keras 3 wrote it; otherwise the
/// model's config upgraded for Keras 3's loader (see [`upgrade_for_keras3`]) in the Keras 3
/// envelope.
fn keras3_config_json(src: &ModelFile, notes: &mut Vec<String>) -> Json {
    let Some(config) = &src.config else { return Json::Null };
    let Some(j) = &src.config_json else { return Json::Null };
    if matches!(config.source, ConfigDialect::Keras3 | ConfigDialect::Keras3LegacyH5) {
        if src.format == FileFormat::KerasV3 {
            return j.clone();
        }
    }
    let mut inner = j.get("config").cloned().unwrap_or(Json::Null);
    // Keras 2.0 wrote a Sequential's config as the bare list of its layers
    if inner.as_array().is_some() {
        let name = if config.name.is_empty() { "sequential".to_string() } else { config.name.clone() };
        inner = Json::object([("name", Json::from(name)), ("layers", inner)]);
    }
    let changed = upgrade_for_keras3(&mut inner, config);
    if inner.to_string_python().contains("\"hard_sigmoid\"") {
        notes.push("this model uses `hard_sigmoid`, which Keras 1/2 and tf.keras define as clip(0.2x + 0.5, 0, 1) and Keras 3 as relu6(x + 3) / 6: the converted model computes different numbers in Keras 3".into());
    }
    if changed > 0 {
        notes.push(format!("{changed} config entries rewritten for Keras 3 (see docs/formats.md)"));
    }
    if src.training_config.is_some() {
        notes.push("the training config (optimizer, loss, metrics) was not carried over: compile the model again after loading".into());
    }
    let (module, class, registered) = match config.kind {
        ModelKind::Sequential => ("keras", "Sequential", Json::Null),
        _ => ("keras.src.models.functional", "Functional", Json::from("Functional")),
    };
    let mut out = vec![
        ("module", Json::from(module)),
        ("class_name", Json::from(class)),
        ("config", inner),
        ("registered_name", registered),
    ];
    if let Some(b) = j.get("build_config").filter(|b| !b.is_null()) {
        out.push(("build_config", b.clone()));
    }
    Json::object(out)
}

/// Rewrites a pre-Keras-3 model config (`model` is the model's `config` object) into what Keras
/// 3's loader accepts, returning how many entries changed:
/// * layer entries lose `module`/`registered_name` so that Keras 3 reads them through its legacy
///   path (tf.keras 2.13+ archives and `to_json` name modules Keras 3 cannot import, such as
///   `keras.src.engine.functional`); a registered class keeps its `package>Name` as `class_name`;
/// * references to nested models move to Keras 3's node numbering ([`fix_sequential_refs`]);
/// * arguments Keras 3 removed are dropped where their value was the only one Keras 3 supports
///   (`time_major: false` on recurrent layers, `groups: 1` on DepthwiseConv2D).
pub fn upgrade_for_keras3(model: &mut Json, config: &crate::config::ModelConfig) -> usize {
    let mut changed = strip_layer_modules(model);
    // Keras 2 Sequential: the input shape sits on the first layer as `batch_input_shape`, which
    // Keras 3 layers read as a shape *without* the batch dimension; an explicit InputLayer says
    // the same thing in a form Keras 3 reads
    if config.kind == ModelKind::Sequential {
        if let Some(layers) = model.get_mut("layers").and_then(Json::as_array_mut) {
            let first_is_input =
                layers.first().and_then(|l| l.get("class_name")).and_then(Json::as_str) == Some("InputLayer");
            if !first_is_input {
                let taken =
                    layers.first_mut().and_then(|l| l.get_mut("config")).and_then(Json::as_object_mut).and_then(|c| {
                        let shape = c.remove("batch_input_shape")?;
                        Some((shape, c.get("dtype").cloned().unwrap_or(Json::from("float32"))))
                    });
                if let Some((shape, dtype)) = taken {
                    let input = Json::object([
                        ("class_name", Json::from("InputLayer")),
                        (
                            "config",
                            Json::object([
                                ("batch_input_shape", shape),
                                ("dtype", dtype),
                                ("name", Json::from("input_layer")),
                            ]),
                        ),
                    ]);
                    layers.insert(0, input);
                    changed += 1;
                }
            }
        }
    }
    changed += drop_removed_args(model);
    fix_sequential_refs(model, config);
    changed
}

fn drop_removed_args(model: &mut Json) -> usize {
    let mut n = 0;
    let Some(layers) = model.get_mut("layers").and_then(Json::as_array_mut) else { return 0 };
    for l in layers {
        let class = l.get("class_name").and_then(Json::as_str).unwrap_or("").to_string();
        let Some(cfg) = l.get_mut("config") else { continue };
        if cfg.get("layers").is_some() {
            n += drop_removed_args(cfg);
            continue;
        }
        let mut drop = |key: &str, only: Json, cfg: &mut Json| {
            if let Some(o) = cfg.as_object_mut() {
                if o.get(key).is_some_and(|v| *v == only) {
                    o.remove(key);
                    n += 1;
                }
            }
        };
        match class.as_str() {
            "SimpleRNN" | "LSTM" | "GRU" => drop("time_major", Json::Bool(false), cfg),
            "DepthwiseConv2D" => drop("groups", Json::from(1i64), cfg),
            "Bidirectional" | "TimeDistributed" => {
                if let Some(inner) = cfg.get_mut("layer") {
                    let c = inner.get("class_name").and_then(Json::as_str).unwrap_or("").to_string();
                    if let Some(ic) = inner.get_mut("config") {
                        if matches!(c.as_str(), "SimpleRNN" | "LSTM" | "GRU") {
                            drop("time_major", Json::Bool(false), ic);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    n
}

/// Keras 1/2 and tf-keras count a nested Sequential model's own first node, so calls of it are
/// referenced as node 1; Keras 3 does not (its `get_tensor` skips a built-in node for Functional
/// models only), so those references move down by one. `model` is a functional model's
/// `config` object, `config` its parsed form.
fn fix_sequential_refs(model: &mut Json, config: &crate::config::ModelConfig) {
    if config.kind != ModelKind::Functional {
        return;
    }
    // inside inbound_nodes Keras 3 counts no built-in node for any nested model; in
    // input_layers/output_layers it does for Functional ones (`get_tensor`)
    let shifted: Vec<String> =
        config.layers.iter().filter(|l| config.node_index_base(l, false) == 1).map(|l| l.name.clone()).collect();
    let shifted_io: Vec<String> = config
        .layers
        .iter()
        .filter(|l| {
            l.nested.as_ref().is_some_and(|n| n.kind == ModelKind::Sequential) && config.node_index_base(l, true) == 1
        })
        .map(|l| l.name.clone())
        .collect();
    // inner functional models get the same treatment
    if let Some(layers) = model.get_mut("layers").and_then(Json::as_array_mut) {
        for (entry, l) in layers.iter_mut().zip(&config.layers) {
            if let (Some(inner), Some(c)) = (&l.nested, entry.get_mut("config")) {
                fix_sequential_refs(c, inner);
            }
        }
    }
    if shifted.is_empty() {
        return;
    }
    fn shift(r: &mut Json, shifted: &[String]) {
        // a reference is [name, node, tensor] or [name, node, tensor, kwargs]
        let Some(a) = r.as_array_mut() else { return };
        let is_ref = a.len() >= 3 && a[0].as_str().is_some_and(|n| shifted.iter().any(|s| s == n));
        if is_ref {
            if let Some(n) = a[1].as_u64().filter(|&n| n >= 1) {
                a[1] = Json::from(n - 1);
            }
            return;
        }
        for x in a.iter_mut() {
            shift(x, shifted);
        }
    }
    if let Some(layers) = model.get_mut("layers").and_then(Json::as_array_mut) {
        for entry in layers.iter_mut() {
            if let Some(nodes) = entry.get_mut("inbound_nodes") {
                shift(nodes, &shifted);
            }
        }
    }
    for k in ["input_layers", "output_layers"] {
        if let Some(v) = model.get_mut(k) {
            shift(v, &shifted_io);
        }
    }
}

/// Removes `module` and `registered_name` from every layer entry (nested models included), so
/// that Keras 3 deserializes them as legacy entries.
fn strip_layer_modules(model: &mut Json) -> usize {
    let mut n = 0;
    let Some(layers) = model.get_mut("layers").and_then(Json::as_array_mut) else {
        return 0;
    };
    for l in layers {
        let is_model = l.get("config").and_then(|c| c.get("layers")).is_some();
        if let Some(o) = l.as_object_mut() {
            if o.remove("module").is_some() {
                n += 1;
            }
            // legacy entries name registered classes by their registered name (`pkg>Name`)
            if let Some(Json::String(rn)) = o.remove("registered_name") {
                if rn.contains('>') {
                    o.insert("class_name", Json::from(rn));
                }
            }
        }
        if is_model {
            if let Some(c) = l.get_mut("config") {
                n += strip_layer_modules(c);
            }
        }
    }
    n
}

/// Keras's legacy variable names for a layer class, in legacy order (only where the count fits).
pub(crate) fn legacy_var_names(l: &BoundLayer<'_>) -> Vec<String> {
    let n = l.tensors.len();
    let class = bind::python_class_name(l.layer);
    let b = |k: &str, d: bool| bind::config_bool(l.layer, k, d);
    let names: Vec<String> = match class.as_str() {
        "Dense" | "EinsumDense" | "Conv1D" | "Conv2D" | "Conv3D" | "Conv1DTranspose" | "Conv2DTranspose"
        | "Conv3DTranspose" | "DepthwiseConv1D" | "DepthwiseConv2D" | "CustomDense" => {
            vec!["kernel".into(), "bias".into()]
        }
        "SeparableConv1D" | "SeparableConv2D" => {
            vec!["depthwise_kernel".into(), "pointwise_kernel".into(), "bias".into()]
        }
        "BatchNormalization" => {
            let mut v = Vec::new();
            if b("scale", true) {
                v.push("gamma".into());
            }
            if b("center", true) {
                v.push("beta".into());
            }
            v.extend(["moving_mean".to_string(), "moving_variance".to_string()]);
            v
        }
        "LayerNormalization" | "GroupNormalization" => vec!["gamma".into(), "beta".into()],
        "Embedding" => vec!["embeddings".into()],
        "Normalization" => vec!["mean".into(), "variance".into(), "count".into()],
        "Attention" | "AdditiveAttention" => vec!["scale".into()],
        "PReLU" => vec!["alpha".into()],
        "LSTM" => vec!["lstm_cell/kernel".into(), "lstm_cell/recurrent_kernel".into(), "lstm_cell/bias".into()],
        "GRU" => vec!["gru_cell/kernel".into(), "gru_cell/recurrent_kernel".into(), "gru_cell/bias".into()],
        "SimpleRNN" => vec![
            "simple_rnn_cell/kernel".into(),
            "simple_rnn_cell/recurrent_kernel".into(),
            "simple_rnn_cell/bias".into(),
        ],
        "MultiHeadAttention" => ["query", "key", "value", "attention_output"]
            .iter()
            .flat_map(|p| [format!("{p}/kernel"), format!("{p}/bias")])
            .collect(),
        _ => Vec::new(),
    };
    // drop the bias names when the layer has none
    let names = if names.len() == n + 1 && names.last().is_some_and(|s| s.ends_with("bias")) {
        names[..n].to_vec()
    } else {
        names
    };
    if names.len() == n {
        return names;
    }
    // the variables' own names when they have real, distinct ones (a model held in memory)
    let own: Vec<String> = l.tensors.iter().map(|t| t.name.clone()).collect();
    let distinct = own.iter().enumerate().all(|(i, a)| own[..i].iter().all(|b| b != a));
    if distinct && own.iter().all(|s| !s.is_empty() && s.parse::<u64>().is_err()) {
        own
    } else {
        (0..n).map(|i| format!("var_{i}")).collect()
    }
}

/// Writes a list-of-strings attribute as Keras's `save_attributes_to_hdf5_group` does: one
/// vlen array when it fits in 64512 bytes (as fixed-width numpy data), else `name0`, `name1`...
/// chunks of fixed-length NULLPAD strings.
pub(crate) fn write_string_list(w: &mut Writer, obj: &str, name: &str, items: &[String]) -> Result<()> {
    const LIMIT: usize = 64512;
    if items.is_empty() {
        return w.set_attr(obj, name, WriteAttr::EmptyF64Array).map_err(h5w);
    }
    let width = items.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    if let Some(big) = items.iter().find(|s| s.len() > LIMIT) {
        return Err(invalid(
            format!(
                "the name `{}...` is {} bytes, over HDF5's 64512-byte attribute limit",
                &big[..32.min(big.len())],
                big.len()
            ),
            "shorten the layer or weight name",
        ));
    }
    let total = width * items.len();
    let chunks = total.div_ceil(LIMIT).max(1);
    if chunks == 1 {
        return w
            .set_attr(obj, name, WriteAttr::VlenAsciiArray(items.iter().map(|s| s.as_bytes().to_vec()).collect()))
            .map_err(h5w);
    }
    // np.array_split into the smallest number of chunks whose nbytes fit
    let mut n = chunks;
    loop {
        let biggest = items.len().div_ceil(n) * width;
        if biggest <= LIMIT {
            break;
        }
        n += 1;
    }
    let (q, r) = (items.len() / n, items.len() % n);
    let mut start = 0;
    for i in 0..n {
        let len = q + usize::from(i < r);
        let chunk: Vec<Vec<u8>> = items[start..start + len].iter().map(|s| s.as_bytes().to_vec()).collect();
        w.set_attr(obj, &format!("{name}{i}"), WriteAttr::FixedAsciiArray(chunk)).map_err(h5w)?;
        start += len;
    }
    Ok(())
}

/// The legacy root attributes for a model file: its own when it is a legacy file; for a Keras 3
/// config, `{"class_name", "config"}` around the same layer entries, as Keras 3's legacy writer
/// does (the compile config is not translated: a note says so).
fn legacy_header(src: &ModelFile, config: &crate::config::ModelConfig, notes: &mut Vec<String>) -> LegacyHeader {
    let model_config = match (&src.format, &src.config_json) {
        (FileFormat::LegacyH5Model | FileFormat::ModelJson, Some(j)) => j.clone(),
        (_, Some(j)) => legacy_model_config(config, j),
        (_, None) => Json::Null,
    };
    let legacy_source = matches!(src.format, FileFormat::LegacyH5Model | FileFormat::ModelJson);
    let keras_version =
        if legacy_source { src.keras_version.clone() } else { None }.unwrap_or_else(|| KERAS_VERSION.to_string());
    let backend = src.backend.clone().unwrap_or_else(|| "tensorflow".to_string());
    let training_config = if legacy_source {
        src.training_config.clone()
    } else {
        if src.training_config.is_some() {
            notes.push("the Keras 3 compile config was not written as a legacy training config: compile the model again after loading".into());
        }
        None
    };
    LegacyHeader { keras_version, backend, model_config, training_config }
}

/// A Keras 3 `config.json` object as a legacy `model_config`: `{"class_name", "config"}`.
pub(crate) fn legacy_model_config(config: &crate::config::ModelConfig, j: &Json) -> Json {
    Json::object([
        ("class_name", Json::from(config.envelope.class_name.as_str())),
        ("config", j.get("config").cloned().unwrap_or(Json::Null)),
    ])
}

/// Writes a legacy full-model `.h5`: the root attributes of `header`, `model_weights` as
/// `save_weights_to_hdf5_group` lays it out, and `optimizer_weights` (full names such as
/// `adam/iteration`, then the tensors) as `save_optimizer_weights_to_hdf5_group` does.
pub(crate) fn write_legacy_h5(
    kind: &ModelKind,
    header: &LegacyHeader,
    binding: &bind::Binding<'_>,
    source: &dyn TensorSource,
    optimizer: Option<&[(String, Tensor<'_>)]>,
    notes: &mut Vec<String>,
) -> Result<(Vec<u8>, usize, usize, u64)> {
    let mut w = Writer::new();
    let LegacyHeader { keras_version, backend, model_config, training_config } = header;
    w.set_attr("/", "keras_version", WriteAttr::VlenUtf8(keras_version.clone())).map_err(h5w)?;
    w.set_attr("/", "backend", WriteAttr::VlenUtf8(backend.clone())).map_err(h5w)?;
    w.set_attr("/", "model_config", WriteAttr::VlenAscii(model_config.to_string_python().into_bytes())).map_err(h5w)?;
    if let Some(tc) = training_config {
        w.set_attr("/", "training_config", WriteAttr::VlenAscii(tc.to_string_python().into_bytes())).map_err(h5w)?;
    }
    w.create_group("/model_weights").map_err(h5w)?;
    let top: Vec<&BoundLayer<'_>> = binding
        .layers
        .iter()
        .filter(|l| {
            l.depth == 0 && !(*kind == ModelKind::Sequential && bind::python_class_name(l.layer) == "InputLayer")
        })
        .collect();
    let layer_names: Vec<String> = top.iter().map(|l| l.layer.name.clone()).collect();
    write_string_list(&mut w, "/model_weights", "layer_names", &layer_names)?;
    w.set_attr("/model_weights", "backend", WriteAttr::VlenUtf8(backend.clone())).map_err(h5w)?;
    w.set_attr("/model_weights", "keras_version", WriteAttr::VlenUtf8(keras_version.clone())).map_err(h5w)?;
    let (mut layers, mut tensors, mut nbytes) = (0usize, 0usize, 0u64);
    let mut widened = 0usize;
    for l in &top {
        let group = format!("/model_weights/{}", l.layer.name);
        w.create_group(&group).map_err(h5w)?;
        // the tensors Keras pairs with this layer, with their names
        // (`_legacy_weights`: all trainable weights, then all non-trainable ones, over the
        // layer and, for a nested model, every layer inside it)
        let members: Vec<&BoundLayer<'_>> = if l.layer.is_model() {
            let prefix = format!("{}/", l.path);
            binding.layers.iter().filter(|x| x.path.starts_with(&prefix)).collect()
        } else {
            vec![*l]
        };
        let mut trainable = Vec::new();
        let mut frozen = Vec::new();
        for x in members {
            let names = source.legacy_names(x);
            for (t, nm) in source.layer_tensors(x)?.into_iter().zip(names) {
                let full = format!("{}/{}", x.layer.name, nm);
                if t.trainable { trainable.push((full, t)) } else { frozen.push((full, t)) }
            }
        }
        let mut named: Vec<(String, Tensor<'_>)> = trainable;
        named.extend(frozen);
        // Keras's legacy loader reads a dataset with numpy, which has no bfloat16: an opaque
        // bfloat16 dataset fails to load ("No cast function available", Keras's own legacy files
        // included). Widened to float32 — exact — it loads into the bfloat16 variable unchanged.
        for (_, t) in named.iter_mut() {
            if t.info.dtype == DType::BF16 {
                t.data = Cow::Owned(t.data.chunks_exact(2).flat_map(|b| [0, 0, b[0], b[1]]).collect());
                t.info.dtype = DType::F32;
                widened += 1;
            }
        }
        let weight_names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
        write_string_list(&mut w, &group, "weight_names", &weight_names)?;
        for (n, t) in &named {
            write_dataset(&mut w, &format!("{group}/{n}"), t)?;
            tensors += 1;
            nbytes += t.data.len() as u64;
        }
        if !named.is_empty() {
            layers += 1;
        }
    }
    if let Some(vars) = optimizer.filter(|v| !v.is_empty()) {
        w.create_group("/optimizer_weights").map_err(h5w)?;
        let names: Vec<String> = vars.iter().map(|(n, _)| n.clone()).collect();
        write_string_list(&mut w, "/optimizer_weights", "weight_names", &names)?;
        for (n, t) in vars {
            write_dataset(&mut w, &format!("/optimizer_weights/{n}"), t)?;
        }
    }
    if widened > 0 {
        notes.push(format!(
            "{widened} bfloat16 tensors were stored as float32 (exactly), because Keras's legacy .h5 loader cannot read HDF5 bfloat16"
        ));
    }
    Ok((w.finish().map_err(h5w)?, layers, tensors, nbytes))
}

/// Names for a layer's tensors in a legacy file: the stored names when they came from one
/// (without the layer-name prefix, which the caller adds back), else Keras's variable names.
fn legacy_names_for(l: &BoundLayer<'_>, layout: Layout) -> Vec<String> {
    if layout == Layout::Legacy {
        return l
            .tensors
            .iter()
            .map(|t| {
                let segs: Vec<&str> = t.name.split('/').collect();
                match segs.iter().position(|s| *s == l.layer.name) {
                    Some(i) if i + 1 < segs.len() => segs[i + 1..].join("/"),
                    _ => t.name.clone(),
                }
            })
            .collect();
    }
    legacy_var_names(l)
}

/// `date_saved` as Keras writes it (`%Y-%m-%d@%H:%M:%S`), in UTC; `SOURCE_DATE_EPOCH` fixes it
/// for reproducible files.
pub(crate) fn date_saved() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    });
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil-from-days (proleptic Gregorian)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}@{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_from_extension() {
        assert_eq!(Target::from_path(Path::new("a/m.keras")), Some(Target::KerasV3));
        assert_eq!(Target::from_path(Path::new("m.weights.h5")), Some(Target::WeightsH5));
        assert_eq!(Target::from_path(Path::new("m.H5")), Some(Target::LegacyH5));
        assert_eq!(Target::from_path(Path::new("m.txt")), None);
    }

    #[test]
    fn date_saved_has_keras_shape() {
        // SAFETY of the assertion: only the shape is checked, not the clock.
        let d = date_saved();
        assert_eq!(d.len(), 19, "{d}");
        assert_eq!(&d[10..11], "@");
    }
}
