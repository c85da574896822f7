//! Weights as stored: every tensor of a weights store, bound to the layer and variable it
//! belongs to, in the two layouts Keras has used.
//!
//! * **Legacy** (`.h5` from Keras 1, 2, tf.keras and Keras 3's legacy writer, plus legacy
//!   weights-only files): one group per layer named after the layer, listed in the
//!   `layer_names` attribute, each with a `weight_names` attribute whose entries are dataset
//!   paths relative to that group. Mirrors `load_weights_from_hdf5_group` in
//!   `keras/src/legacy/saving/legacy_h5_format.py` and tf-keras `hdf5_format.py`.
//! * **Keras 3** (`*.weights.h5`, and `model.weights.h5` inside `.keras`): one `vars` group
//!   per saveable object at a path made of attribute and container names
//!   (`layers/dense_1/vars/0`), datasets named by index. Mirrors `_save_state` /
//!   `_walk_saveable` / `H5Entry` in `keras/src/saving/saving_lib.py`; see [`keras3_paths`].
//!
//! Nothing here reads tensor data until asked ([`WeightStore::read`]).

use std::collections::BTreeMap;

use strata_hdf5::{AttrValue, DType, H5File};

use crate::error::{Error, Location, Result};

/// One stored tensor: where it is and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Absolute HDF5 path of the dataset (`/model_weights/dense/dense/kernel:0`, `/layers/dense/vars/0`).
    pub h5_path: String,
    /// The owner: a layer name for legacy files (`dense`), an object path for Keras 3 files (`layers/dense`).
    pub owner: String,
    /// The variable's name as stored: a legacy weight name (`dense/kernel:0`, `dense_1_W`) or
    /// a Keras 3 index (`0`).
    pub name: String,
    /// Shape; empty for a scalar.
    pub shape: Vec<u64>,
    /// Element type.
    pub dtype: DType,
}

impl TensorInfo {
    /// Number of elements (1 for a scalar); saturates instead of overflowing.
    pub fn num_elements(&self) -> u64 {
        self.shape.iter().fold(1u64, |a, &d| a.saturating_mul(d))
    }
    /// Size in bytes, when the dtype has a fixed size.
    pub fn num_bytes(&self) -> Option<u64> {
        self.dtype.size().map(|s| self.num_elements().saturating_mul(s as u64))
    }
}

/// The weights of one owner (a legacy layer group, or one Keras 3 `vars` group), in stored order.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerWeights {
    /// Layer name (legacy) or object path (Keras 3).
    pub owner: String,
    /// HDF5 path of the owner's group.
    pub group_path: String,
    /// Tensors in the order Keras pairs them with variables.
    pub tensors: Vec<TensorInfo>,
}

/// Which of Keras's two weight layouts a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `layer_names` / `weight_names` groups.
    Legacy,
    /// `layers/<attr>/vars/<i>` groups.
    Keras3,
}

/// Every weight tensor in one HDF5 weights store, bound to owners, plus optimizer state.
#[derive(Debug, Clone)]
pub struct WeightStore {
    /// The file the tensors live in.
    pub file: H5File,
    /// The layout.
    pub layout: Layout,
    /// Model weights, per owner, in file order (legacy: `layer_names` order; Keras 3: path order).
    pub owners: Vec<OwnerWeights>,
    /// Optimizer state (`optimizer_weights` in legacy files, `optimizer/vars` in Keras 3 files).
    pub optimizer: Vec<TensorInfo>,
    /// Metric state (`metrics/<name>/vars`, written by tf-keras `.keras` saves; Keras 3 writes none).
    pub metrics: Vec<TensorInfo>,
    /// The Keras 3 objects with a `vars` group, including those with no variables, with their
    /// `name` attribute when present (Keras >= 3.6 writes it).
    pub objects: Vec<(String, Option<String>)>,
}

impl WeightStore {
    /// Reads the tensor at `info` as little-endian element bytes.
    pub fn read(&self, info: &TensorInfo) -> Result<Vec<u8>> {
        self.file
            .dataset(&info.h5_path)
            .and_then(|d| d.read_raw())
            .map_err(|source| Error::Hdf5 { location: Location::default().with_hdf5_path(&info.h5_path), source })
    }

    /// All model tensors in order.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorInfo> {
        self.owners.iter().flat_map(|o| o.tensors.iter())
    }

    /// Total number of model weight elements.
    pub fn total_elements(&self) -> u64 {
        self.tensors().map(|t| t.num_elements()).fold(0u64, |a, b| a.saturating_add(b))
    }

    /// The owner with this name or path.
    pub fn owner(&self, name: &str) -> Option<&OwnerWeights> {
        self.owners.iter().find(|o| o.owner == name)
    }

    /// Reads a weights store whose layout is sniffed: legacy when the group (or its
    /// `model_weights` child) has a `layer_names` attribute, Keras 3 when there is a `vars`
    /// or `layers` child, else an error naming what was found.
    pub fn open(file: &H5File) -> Result<WeightStore> {
        let h5 = |source, path: &str| Error::Hdf5 { location: Location::default().with_hdf5_path(path), source };
        let root = file.root();
        let members = root.members().map_err(|e| h5(e, "/"))?;
        let has = |n: &str| members.iter().any(|m| m.name == n);
        if has("model_weights") {
            return read_legacy(file, "/model_weights");
        }
        if string_list_attr(file, "/", "layer_names")?.is_some() {
            return read_legacy(file, "/");
        }
        if has("layers") || has("vars") || has("_layer_checkpoint_dependencies") {
            return read_keras3(file);
        }
        Err(Error::Invalid {
            location: Location::default().with_hdf5_path("/"),
            what: format!(
                "this HDF5 file holds no Keras weights: no `model_weights` group, no `layer_names` attribute and no `layers`/`vars` groups (top-level members: {})",
                if members.is_empty() {
                    "none".to_string()
                } else {
                    members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
                }
            ),
            help: "check that this is a file written by Keras `save`, `save_weights` or `model.save(\"x.h5\")`".into(),
        })
    }
}

/// Reads a list-of-strings attribute as Keras's `load_attributes_from_hdf5_group` does: the
/// attribute `name`, else the chunks `name0`, `name1`, ... until one is missing. An empty
/// float64 array (h5py's encoding of an empty list) reads as an empty list. `Ok(None)` when
/// neither form exists.
pub fn string_list_attr(file: &H5File, group_path: &str, name: &str) -> Result<Option<Vec<String>>> {
    let loc = || Location::default().with_hdf5_path(format!("{}@{}", group_path, name));
    let group = file.group(group_path).map_err(|source| Error::Hdf5 { location: loc(), source })?;
    let decode = |attr: strata_hdf5::Attr, attr_name: &str| -> Result<Vec<String>> {
        match &attr.value {
            AttrValue::Strings { .. } => attr.as_strings().ok_or_else(|| Error::Invalid {
                location: loc(),
                what: format!("attribute `{attr_name}` holds strings that are not UTF-8"),
                help: "the file is damaged or was not written by Keras".into(),
            }),
            AttrValue::Float(v) if v.is_empty() => Ok(Vec::new()),
            AttrValue::Int(v) if v.is_empty() => Ok(Vec::new()),
            AttrValue::UInt(v) if v.is_empty() => Ok(Vec::new()),
            other => Err(Error::Invalid {
                location: loc(),
                what: format!("attribute `{attr_name}` should be a list of strings but holds {}", describe_attr(other)),
                help: "the file is damaged or was not written by Keras".into(),
            }),
        }
    };
    if let Some(a) = group.attr(name).map_err(|source| Error::Hdf5 { location: loc(), source })? {
        return decode(a, name).map(Some);
    }
    let mut out: Option<Vec<String>> = None;
    for i in 0usize.. {
        let chunk = format!("{name}{i}");
        match group.attr(&chunk).map_err(|source| Error::Hdf5 { location: loc(), source })? {
            Some(a) => out.get_or_insert_with(Vec::new).extend(decode(a, &chunk)?),
            None => break,
        }
    }
    Ok(out)
}

/// A string attribute (scalar), if present and a string.
pub fn string_attr(file: &H5File, path: &str, name: &str) -> Result<Option<String>> {
    let loc = || Location::default().with_hdf5_path(format!("{path}@{name}"));
    let group = file.group(path).map_err(|source| Error::Hdf5 { location: loc(), source })?;
    Ok(group.attr(name).map_err(|source| Error::Hdf5 { location: loc(), source })?.and_then(|a| a.as_string()))
}

fn describe_attr(v: &AttrValue) -> String {
    match v {
        AttrValue::Strings { values, .. } => format!("{} strings", values.len()),
        AttrValue::Float(v) => format!("{} floats", v.len()),
        AttrValue::Int(v) => format!("{} integers", v.len()),
        AttrValue::UInt(v) => format!("{} unsigned integers", v.len()),
        AttrValue::Opaque(v) => format!("{} opaque bytes", v.len()),
        AttrValue::Unsupported(d) => format!("an unsupported type ({d})"),
        #[allow(unreachable_patterns)]
        _ => "an unexpected type".to_string(),
    }
}

fn join(a: &str, b: &str) -> String {
    let a = a.trim_end_matches('/');
    let b = b.trim_start_matches('/');
    if a.is_empty() { format!("/{b}") } else { format!("{a}/{b}") }
}

fn tensor_info(file: &H5File, h5_path: &str, owner: &str, name: &str) -> Result<TensorInfo> {
    let ds = file.dataset(h5_path).map_err(|source| Error::Hdf5 {
        location: Location::default().with_hdf5_path(h5_path).with_layer(owner),
        source,
    })?;
    Ok(TensorInfo {
        h5_path: h5_path.to_string(),
        owner: owner.to_string(),
        name: name.to_string(),
        shape: ds.shape().to_vec(),
        dtype: ds.dtype().clone(),
    })
}

/// Reads a legacy weights group (`/model_weights` of a full-model file, or `/` of a
/// weights-only file).
pub fn read_legacy(file: &H5File, group_path: &str) -> Result<WeightStore> {
    let layer_names = string_list_attr(file, group_path, "layer_names")?.ok_or_else(|| Error::Invalid {
        location: Location::default().with_hdf5_path(group_path),
        what: "the legacy weights group has no `layer_names` attribute".into(),
        help: "the file is damaged or is not a Keras weights file".into(),
    })?;
    let mut owners = Vec::with_capacity(layer_names.len().min(1 << 16));
    for layer in &layer_names {
        let gpath = join(group_path, layer);
        let names = string_list_attr(file, &gpath, "weight_names")?.ok_or_else(|| Error::Invalid {
            location: Location::default().with_hdf5_path(&gpath).with_layer(layer),
            what: format!("layer group `{layer}` is listed in `layer_names` but is missing or has no `weight_names` attribute"),
            help: "the file was truncated while saving (tf-keras stops writing at the first duplicate weight name); re-save it, or load the weights you have with `strata doctor` to see which are missing".into(),
        })?;
        let mut tensors = Vec::with_capacity(names.len().min(1 << 12));
        for wn in &names {
            let p = join(&gpath, wn);
            tensors.push(tensor_info(file, &p, layer, wn)?);
        }
        owners.push(OwnerWeights { owner: layer.clone(), group_path: gpath, tensors });
    }
    let mut optimizer = Vec::new();
    if group_path == "/model_weights" {
        if let Some(names) = string_list_attr(file, "/optimizer_weights", "weight_names").unwrap_or(None) {
            for wn in &names {
                let p = join("/optimizer_weights", wn);
                optimizer.push(tensor_info(file, &p, "optimizer", wn)?);
            }
        }
    }
    Ok(WeightStore {
        file: file.clone(),
        layout: Layout::Legacy,
        owners,
        optimizer,
        metrics: Vec::new(),
        objects: Vec::new(),
    })
}

/// Reads a Keras 3 weights store: every `<path>/vars` group with its numbered datasets.
pub fn read_keras3(file: &H5File) -> Result<WeightStore> {
    let nodes =
        file.walk().map_err(|source| Error::Hdf5 { location: Location::default().with_hdf5_path("/"), source })?;
    // object path -> (index -> tensor)
    let mut by_owner: BTreeMap<String, BTreeMap<u64, TensorInfo>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut objects = Vec::new();
    for node in &nodes {
        let path = node.path.trim_start_matches('/');
        match node.kind {
            strata_hdf5::NodeKind::Group => {
                let owner =
                    if path == "vars" { Some(String::new()) } else { path.strip_suffix("/vars").map(str::to_string) };
                if let Some(owner) = owner {
                    let name = string_attr(file, &node.path, "name").unwrap_or(None);
                    objects.push((owner.clone(), name));
                    if !by_owner.contains_key(&owner) {
                        order.push(owner.clone());
                        by_owner.insert(owner, BTreeMap::new());
                    }
                }
            }
            strata_hdf5::NodeKind::Dataset => {
                let (parent, leaf) = match path.rsplit_once('/') {
                    Some(x) => x,
                    None => ("", path),
                };
                let owner = if parent == "vars" { Some("") } else { parent.strip_suffix("/vars") };
                let (Some(owner), Ok(index)) = (owner, leaf.parse::<u64>()) else {
                    return Err(Error::Invalid {
                        location: Location::default().with_hdf5_path(&node.path),
                        what: "a dataset outside the Keras 3 `<object>/vars/<index>` layout".into(),
                        help: "this file was not written by Keras 3 `save_weights`/`save`; if it is a legacy weights file it needs a `layer_names` attribute".into(),
                    });
                };
                let info = tensor_info(file, &node.path, owner, leaf)?;
                if !by_owner.contains_key(owner) {
                    order.push(owner.to_string());
                }
                by_owner.entry(owner.to_string()).or_default().insert(index, info);
            }
            _ => {}
        }
    }
    let mut owners = Vec::new();
    let mut optimizer = Vec::new();
    let mut metrics = Vec::new();
    for owner in order {
        let Some(map) = by_owner.remove(&owner) else {
            continue;
        };
        // indices must be 0..n without gaps: Keras pairs them positionally
        for (expected, (&got, t)) in map.iter().enumerate() {
            if got != expected as u64 {
                return Err(Error::Invalid {
                    location: Location::default().with_hdf5_path(&t.h5_path),
                    what: format!(
                        "variables of `{owner}` are numbered with a gap: expected `{expected}`, found `{got}`"
                    ),
                    help: "the file is damaged; Keras numbers variables 0, 1, 2, ...".into(),
                });
            }
        }
        let tensors: Vec<TensorInfo> = map.into_values().collect();
        if owner == "optimizer" || owner.starts_with("optimizer/") {
            optimizer.extend(tensors);
            continue;
        }
        if owner == "metrics" || owner.starts_with("metrics/") {
            metrics.extend(tensors);
            continue;
        }
        let group_path = if owner.is_empty() { "/vars".to_string() } else { format!("/{owner}/vars") };
        owners.push(OwnerWeights { owner, group_path, tensors });
    }
    Ok(WeightStore { file: file.clone(), layout: Layout::Keras3, owners, optimizer, metrics, objects })
}
