//! Saving a model held in memory (a trainer's model) as `.keras`, legacy `.h5` or `.weights.h5`.
//!
//! The caller gives the model's Keras 3 `config.json` object, each layer's weights in Keras
//! order, and optionally the optimizer's variables in Keras order; [`save_model`] writes them
//! with the same writers as [`crate::convert`] (one implementation), atomically
//! ([`crate::atomic::write_atomic`]): on any error, or if the process dies mid-save, the
//! previous file at the target survives untouched.
//!
//! What lands where (checked against Keras 3.15.1's own files, `fixtures/keras3/*`):
//! * `.keras`: `metadata.json` (`keras_version` = [`KERAS_VERSION`], `date_saved`),
//!   `config.json` = [`SaveModel::config`] as given (with its `compile_config`), and
//!   `model.weights.h5` with each layer's variables at its Keras 3 object path
//!   (`layers/dense/vars/0`...) and the optimizer's at `optimizer/vars/0..N` (group attribute
//!   `name` = the optimizer's name), as `saving_lib._save_state` / `Optimizer.save_own_variables`
//!   write them.
//! * legacy `.h5` (`legacy_h5_format.save_model_to_hdf5`): root attributes `keras_version`,
//!   `backend`, `model_config` (`{"class_name", "config"}`, without `compile_config`),
//!   `training_config` (see [`SaveModel::training_config`]), `model_weights`, and
//!   `optimizer_weights` whose `weight_names` are `<optimizer name>/<variable name>`
//!   (`adam/iteration`, `adam/learning_rate`, `adam/dense_kernel_momentum`...; a name
//!   `iterations` is written as Keras's variable name `iteration`). Keras pairs them by order.
//! * `.weights.h5`: the layers only, as `model.save_weights` writes them (no optimizer).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use strata_hdf5::DType;

use crate::bind::{self, Binding, BoundLayer};
use crate::config::ModelConfig;
use crate::convert::{self, Converted, KERAS_VERSION, LegacyHeader, Target, Tensor, TensorSource};
use crate::error::{Error, Location, Result};
use crate::json::Json;
use crate::weights::TensorInfo;

/// One tensor of a model held in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveTensor {
    /// The variable's name (`kernel`, `moving_mean`; optimizer: `iterations`, `learning_rate`,
    /// `dense_kernel_momentum`). Used for legacy `.h5` names; `.keras` numbers variables by order.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape; empty for a scalar.
    pub shape: Vec<u64>,
    /// Elements, little-endian, C order (bfloat16: the 2 high bytes of each float32).
    pub data: Vec<u8>,
}

/// One layer's weights.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveLayer {
    /// Layer names from the top model down, joined by `/` (`inner_seq/seq_dense_1`), as
    /// [`crate::bind::BoundLayer::path`] names it.
    pub path: String,
    /// The layer's own weights in Keras's `layer.weights` order (BatchNormalization: gamma,
    /// beta, moving_mean, moving_variance).
    pub weights: Vec<SaveTensor>,
    /// Per weight, whether it is trainable now (a frozen layer's are all `false`). A legacy
    /// `.h5` lists a layer's (or nested model's) trainable weights first, as Keras does.
    pub trainable: Vec<bool>,
}

/// A model held in memory, ready to save.
#[derive(Debug, Clone)]
pub struct SaveModel<'a> {
    /// The Keras 3 `config.json` object (`module`, `class_name`, `config`, `registered_name`,
    /// `build_config`, and `compile_config` when compiled). Written to `.keras` as given.
    pub config: &'a Json,
    /// Layers with weights (layers without weights may be left out), any order.
    pub layers: Vec<SaveLayer>,
    /// The optimizer's variables in Keras's saved order (`iterations`, `learning_rate`, then
    /// the slots). Needs a `compile_config` with an optimizer in [`SaveModel::config`].
    pub optimizer: Option<Vec<SaveTensor>>,
    /// The legacy `.h5` `training_config` attribute. `None` derives it from the config's
    /// `compile_config` exactly as Keras 3's `saving_utils.model_metadata` does (the compile
    /// config without `optimizer`, plus `optimizer_config: {"class_name", "config"}`); with no
    /// optimizer in `compile_config` (an uncompiled model) none is written. Ignored for `.keras` and `.weights.h5`.
    pub training_config: Option<Json>,
}

fn invalid(what: String, help: &str) -> Error {
    Error::Invalid { location: Location::default(), what, help: help.to_string() }
}

/// Tensors held in memory, by layer path.
struct MemSource<'m> {
    layers: HashMap<&'m str, &'m SaveLayer>,
}

impl TensorSource for MemSource<'_> {
    fn layer_tensors(&self, l: &BoundLayer<'_>) -> Result<Vec<Tensor<'_>>> {
        let Some(s) = self.layers.get(l.path.as_str()) else { return Ok(Vec::new()) };
        Ok(s.weights
            .iter()
            .zip(&l.tensors)
            .zip(&s.trainable)
            .map(|((t, info), &trainable)| Tensor { info: info.clone(), data: Cow::Borrowed(&t.data), trainable })
            .collect())
    }
    fn legacy_names(&self, l: &BoundLayer<'_>) -> Vec<String> {
        convert::legacy_var_names(l)
    }
}

fn info(owner: &str, t: &SaveTensor) -> TensorInfo {
    TensorInfo {
        h5_path: String::new(),
        owner: owner.to_string(),
        name: t.name.clone(),
        shape: t.shape.clone(),
        dtype: t.dtype.clone(),
    }
}

/// Checks that `t`'s data is as long as its shape and dtype say.
fn check_len(what: &str, t: &SaveTensor) -> Result<()> {
    let Some(esize) = t.dtype.size() else {
        return Err(invalid(
            format!("{what} `{}` has dtype {}, which has no fixed element size", t.name, t.dtype),
            "give it a numeric dtype (float16/32/64, bfloat16, int or uint, bool)",
        ));
    };
    let want = t.shape.iter().try_fold(esize as u64, |a, &d| a.checked_mul(d));
    if want != Some(t.data.len() as u64) {
        return Err(invalid(
            format!(
                "{what} `{}` has shape {:?} of {} ({} bytes), but {} bytes of data",
                t.name,
                t.shape,
                t.dtype,
                want.map_or_else(|| "overflowing".to_string(), |w| w.to_string()),
                t.data.len()
            ),
            "the data must hold every element, little-endian, in C order; nothing was written",
        ));
    }
    Ok(())
}

/// Binds the in-memory layers to the config's layers, checking paths, counts, lengths and shapes.
fn bind_memory<'c>(config: &'c ModelConfig, layers: &[SaveLayer]) -> Result<Binding<'c>> {
    let k3: HashMap<String, String> = bind::keras3_layer_paths(config).into_iter().map(|(o, p, ..)| (p, o)).collect();
    let all = bind::all_layers(config);
    let mut by_path: HashMap<&str, &SaveLayer> = HashMap::new();
    for s in layers {
        if !all.iter().any(|(p, ..)| *p == s.path) {
            let known: Vec<&str> = all.iter().map(|(p, ..)| p.as_str()).collect();
            return Err(invalid(
                format!(
                    "layer `{}` is not a layer of model `{}`; its layers are: {}",
                    s.path,
                    config.name,
                    known.join(", ")
                ),
                "name layers by their `name` in the config, nested ones as `outer/inner`; nothing was written",
            ));
        }
        if by_path.insert(s.path.as_str(), s).is_some() {
            return Err(invalid(
                format!("layer `{}` is given twice", s.path),
                "give each layer's weights once; nothing was written",
            ));
        }
        if s.trainable.len() != s.weights.len() {
            return Err(invalid(
                format!("layer `{}` has {} weights but {} trainable flags", s.path, s.weights.len(), s.trainable.len()),
                "give one trainable flag per weight; nothing was written",
            ));
        }
        for t in &s.weights {
            check_len(&format!("weight of layer `{}`", s.path), t)?;
        }
    }
    let mut out = Vec::with_capacity(all.len());
    let mut problems = Vec::new();
    for (path, depth, layer) in all {
        let tensors = by_path.get(path.as_str()).map(|s| s.weights.iter().map(|t| info(&path, t)).collect());
        let keras3_path = k3.get(&path).cloned().unwrap_or_default();
        let b = BoundLayer { path, depth, layer, tensors: tensors.unwrap_or_default(), keras3_path };
        // a layer left out has no weights to check
        if !b.tensors.is_empty() {
            problems.extend(bind::check_shapes(&b));
        }
        out.push(b);
    }
    if !problems.is_empty() {
        return Err(invalid(
            format!(
                "the weights do not fit the config of model `{}`: {}",
                config.name,
                problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
            ),
            "give each layer the weights its config implies, in Keras order; nothing was written",
        ));
    }
    Ok(Binding { layers: out, problems: Vec::new() })
}

/// The optimizer's name (`adam`) from the config's `compile_config`.
fn optimizer_name(config: &Json) -> Option<String> {
    let opt = config.get("compile_config")?.get("optimizer")?;
    if let Some(s) = opt.as_str() {
        return Some(s.to_ascii_lowercase());
    }
    opt.get("config")?.get("name")?.as_str().map(str::to_string)
}

/// The legacy `training_config` Keras 3 writes for a compile config
/// (`saving_utils.model_metadata`): the compile config without `optimizer`, plus
/// `optimizer_config` = `{"class_name": registered name, "config": optimizer config}`.
/// `None` for a model that is not compiled (no optimizer: Keras writes no `training_config`).
pub fn training_config_from_compile(compile_config: &Json) -> Option<Json> {
    let mut tc = compile_config.as_object()?.clone();
    let opt = tc.remove("optimizer").filter(|o| !o.is_null())?;
    {
        let oc = match opt.as_str() {
            Some(s) => {
                Json::object([("class_name", Json::from(s)), ("config", Json::object(Vec::<(&str, Json)>::new()))])
            }
            None => {
                // `get_registered_name`: the registered `package>Name`, else the class name
                let class = opt
                    .get("registered_name")
                    .and_then(Json::as_str)
                    .filter(|r| r.contains('>'))
                    .or_else(|| opt.get("class_name").and_then(Json::as_str))
                    .unwrap_or("")
                    .to_string();
                Json::object([
                    ("class_name", Json::from(class)),
                    ("config", opt.get("config").cloned().unwrap_or(Json::Null)),
                ])
            }
        };
        tc.insert("optimizer_config", oc);
    }
    Some(Json::Object(tc))
}

/// Saves `m` as `target` at `out`, atomically. See the module docs for what is written.
///
/// Errors (nothing is written, the previous file is intact): a config that is not a Keras
/// model config; a layer path the config does not have, given twice, with a flag count or data
/// length that does not match, or weights whose shapes do not fit the config; optimizer
/// variables without an optimizer in `compile_config`; a target directory that is missing or
/// not writable.
pub fn save_model(m: &SaveModel<'_>, target: Target, out: &Path) -> Result<Converted> {
    let config =
        ModelConfig::parse(m.config).map_err(|source| Error::Config { location: Location::default(), source })?;
    if m.config.get("module").is_none() && target == Target::KerasV3 {
        return Err(invalid(
            "the model config has no `module` key: it is not a Keras 3 `config.json` object".into(),
            "give the object `model.get_config()` is wrapped in by `serialize_keras_object` (module, class_name, config, registered_name, build_config, compile_config)",
        ));
    }
    let binding = bind_memory(&config, &m.layers)?;
    let source = MemSource { layers: m.layers.iter().map(|s| (s.path.as_str(), s)).collect() };
    let mut notes = Vec::new();
    let opt_vars = match (&m.optimizer, target) {
        (Some(v), Target::WeightsH5) => {
            notes.push(format!(
                "{} optimizer variables were not written: a .weights.h5 holds layer weights only (save as .keras to keep them)",
                v.len()
            ));
            None
        }
        (Some(v), _) => {
            let name = optimizer_name(m.config).ok_or_else(|| {
                invalid(
                    format!(
                        "{} optimizer variables were given, but the model config has no `compile_config` with an optimizer",
                        v.len()
                    ),
                    "put the compile config (with its optimizer) in the config, or save without optimizer variables",
                )
            })?;
            for t in v {
                check_len("optimizer variable", t)?;
            }
            Some((name, v))
        }
        (None, _) => None,
    };
    let (bytes, layers, tensors, tensor_bytes) = match target {
        Target::WeightsH5 => convert::write_keras3_weights(&config.name, &binding, &source, None)?,
        Target::KerasV3 => {
            let opt: Option<(String, Vec<Tensor<'_>>)> = opt_vars.map(|(name, v)| {
                (
                    name,
                    v.iter()
                        .map(|t| Tensor { info: info("optimizer", t), data: Cow::Borrowed(&t.data), trainable: false })
                        .collect(),
                )
            });
            let (w, l, t, n) = convert::write_keras3_weights(
                &config.name,
                &binding,
                &source,
                opt.as_ref().map(|(name, v)| (name.as_str(), v.as_slice())),
            )?;
            (convert::keras_archive(m.config, &w, out)?, l, t, n)
        }
        Target::LegacyH5 => {
            let training_config = match &m.training_config {
                Some(t) => Some(t.clone()),
                None => m.config.get("compile_config").filter(|c| !c.is_null()).and_then(training_config_from_compile),
            };
            let header = LegacyHeader {
                keras_version: KERAS_VERSION.to_string(),
                backend: "tensorflow".to_string(),
                model_config: convert::legacy_model_config(&config, m.config),
                training_config,
            };
            let opt: Option<Vec<(String, Tensor<'_>)>> = opt_vars.map(|(name, v)| {
                v.iter()
                    .map(|t| {
                        let var = if t.name == "iterations" { "iteration" } else { t.name.as_str() };
                        let full = if var.contains('/') { var.to_string() } else { format!("{name}/{var}") };
                        (full, Tensor { info: info("optimizer", t), data: Cow::Borrowed(&t.data), trainable: false })
                    })
                    .collect()
            });
            convert::write_legacy_h5(&config.kind, &header, &binding, &source, opt.as_deref(), &mut notes)?
        }
    };
    let file_bytes = convert::commit(out, &bytes)?;
    Ok(Converted { target, layers, tensors, tensor_bytes, file_bytes, notes })
}
