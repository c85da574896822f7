//! Binding stored weights to the layers of a config.
//!
//! Keras pairs weights with layers differently per layout, and this module mirrors both:
//! * legacy `.h5`: one group per layer *name*; a nested model's group holds all of its
//!   descendants' weights, whose names carry the inner layer names as path segments
//!   (`inner_seq/seq_dense_1/kernel`, tf-keras `seq_dense_1/kernel:0`, Keras 1 `dense_1_W`);
//! * Keras 3: object paths made from container and attribute names
//!   (`layers/sequential/layers/dense_1`), computed here from the config exactly as
//!   `_save_state` walks a model (`keras/src/saving/saving_lib.py`): `layers` first, each child
//!   named by [`ContainerNamer`], Sequential omitting its auto-generated `InputLayer`
//!   (`Sequential.layers`), and each layer's own sub-objects (an RNN's `cell`, a
//!   Bidirectional's `forward_layer`/`backward_layer`, MultiHeadAttention's `query_dense`...)
//!   named by the attribute that holds them ([`keras3_sub_objects`]).
//!
//! Problems (a layer with no weights group, a group no layer claims) are collected, never
//! fatal: `inspect` shows them and `doctor` explains them.

use crate::config::{LayerConfig, ModelConfig, ModelKind};
use crate::json::Json;
use crate::naming::ContainerNamer;
use crate::weights::{Layout, TensorInfo, WeightStore};
use strata_hdf5::DType;

/// One layer of the config (at any nesting depth) with the tensors bound to it.
#[derive(Debug, Clone)]
pub struct BoundLayer<'a> {
    /// Layer names from the top model down, joined by `/` (`inner_seq/seq_dense_1`).
    pub path: String,
    /// 0 for top-level layers.
    pub depth: usize,
    /// The layer's config.
    pub layer: &'a LayerConfig,
    /// The layer's own tensors in Keras's legacy order (trainable, then non-trainable); for a
    /// nested model, only the model's own variables (its layers have their own rows).
    pub tensors: Vec<TensorInfo>,
    /// The Keras 3 object path of the layer (`layers/sequential/layers/dense_1`).
    pub keras3_path: String,
}

impl BoundLayer<'_> {
    /// Elements of the layer's own tensors.
    pub fn own_params(&self) -> u64 {
        self.tensors.iter().map(TensorInfo::num_elements).fold(0u64, u64::saturating_add)
    }
    /// How many of the layer's own tensors are non-trainable (they come last).
    pub fn non_trainable_count(&self) -> usize {
        if !self.layer.trainable() {
            return self.tensors.len();
        }
        non_trainable_tail(&python_class_name(self.layer), self.tensors.len())
    }
}

/// A problem found while binding.
#[derive(Debug, Clone, PartialEq)]
pub enum BindProblem {
    /// The store has a group for this owner, but no layer of the config claims it.
    Unclaimed {
        /// The group's owner (layer name or Keras 3 object path).
        owner: String,
        /// How many tensors it holds.
        tensors: usize,
    },
    /// A nested tensor whose layer could not be told from its name.
    Unassigned {
        /// The nested model's layer path.
        model: String,
        /// The weight name.
        name: String,
    },
    /// A layer's stored weights do not have the count or shapes its config implies.
    Shape {
        /// The layer's path.
        layer: String,
        /// The layer's class.
        class_name: String,
        /// What the config implies (`kernel (*, 32), bias (32,)`).
        expected: String,
        /// What is stored (`(10, 16), (16,)`).
        found: String,
    },
}

impl std::fmt::Display for BindProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindProblem::Unclaimed { owner, tensors } => {
                write!(f, "weights group `{owner}` ({tensors} tensors) belongs to no layer of the model config")
            }
            BindProblem::Unassigned { model, name } => {
                write!(f, "weight `{name}` of nested model `{model}` names none of its layers")
            }
            BindProblem::Shape { layer, class_name, expected, found } => write!(
                f,
                "layer `{layer}` ({class_name}) needs weights {expected} by its config, but the file has {found}"
            ),
        }
    }
}

/// The result of binding a weight store to a config.
#[derive(Debug, Clone)]
pub struct Binding<'a> {
    /// Every layer, depth-first in config order.
    pub layers: Vec<BoundLayer<'a>>,
    /// What did not bind.
    pub problems: Vec<BindProblem>,
}

impl Binding<'_> {
    /// Elements of every bound tensor.
    pub fn total_params(&self) -> u64 {
        self.layers.iter().map(BoundLayer::own_params).fold(0u64, u64::saturating_add)
    }
    /// Elements of non-trainable tensors (trailing per-layer variables such as
    /// BatchNormalization's moving statistics, and every variable of a frozen layer or model).
    pub fn non_trainable_params(&self) -> u64 {
        let mut frozen_prefixes: Vec<String> = Vec::new();
        let mut total = 0u64;
        for l in &self.layers {
            let frozen = !l.layer.trainable() || frozen_prefixes.iter().any(|p| l.path.starts_with(p.as_str()));
            if l.layer.is_model() && !l.layer.trainable() {
                frozen_prefixes.push(format!("{}/", l.path));
            }
            let n = if frozen { l.tensors.len() } else { l.non_trainable_count() };
            let skip = l.tensors.len().saturating_sub(n);
            total = total.saturating_add(
                l.tensors.iter().skip(skip).map(TensorInfo::num_elements).fold(0u64, u64::saturating_add),
            );
        }
        total
    }
    /// Elements of the layer at `path`, and of everything nested in it when it is a model
    /// (a Keras 1 `Merge` counts only its own: its branches are layers of the outer model).
    pub fn subtree_params(&self, path: &str) -> u64 {
        let is_model = self.layers.iter().any(|l| l.path == path && l.layer.is_model());
        if !is_model {
            return self
                .layers
                .iter()
                .filter(|l| l.path == path)
                .map(BoundLayer::own_params)
                .fold(0u64, u64::saturating_add);
        }
        let prefix = format!("{path}/");
        self.layers
            .iter()
            .filter(|l| l.path == path || l.path.starts_with(&prefix))
            .map(BoundLayer::own_params)
            .fold(0u64, u64::saturating_add)
    }
}

/// The Python class name Keras 3 uses for a layer's object path: the class name as written,
/// without a `package>` prefix (legacy `.h5` writes registered names as `class_name`), with the
/// functional model's pre-TF-2.3 name `Model` read as `Functional`.
pub fn python_class_name(layer: &LayerConfig) -> String {
    let name = layer.class_name.rsplit('>').next().unwrap_or(&layer.class_name);
    match name {
        "Model" => "Functional".to_string(),
        other => other.to_string(),
    }
}

/// Number of trailing non-trainable variables a layer class has among `n` variables.
pub fn non_trainable_tail(class_name: &str, n: usize) -> usize {
    match class_name {
        // gamma?, beta?, moving_mean, moving_variance (Keras 1: running_mean, running_std)
        "BatchNormalization" | "BatchNormalizationV1" | "BatchNormalizationV2" | "SyncBatchNormalization" => n.min(2),
        // mean, variance, count: state, not trained
        "Normalization" => n,
        _ => 0,
    }
}

fn is_rnn(class: &str) -> bool {
    matches!(
        class,
        "LSTM" | "GRU" | "SimpleRNN" | "ConvLSTM1D" | "ConvLSTM2D" | "ConvLSTM3D" | "RNN" | "LSTMV1" | "GRUV1"
    )
}

fn inner_layer_class(layer: &LayerConfig) -> Option<String> {
    let inner = layer.config.get("layer")?;
    let c = inner.get("class_name")?.as_str()?;
    Some(c.rsplit('>').next().unwrap_or(c).to_string())
}

/// The sub-objects under a layer's Keras 3 object path that hold its variables, in the order
/// Keras lists the layer's weights (the legacy order). `""` is the layer's own `vars`.
pub fn keras3_sub_objects(layer: &LayerConfig) -> Vec<String> {
    let class = python_class_name(layer);
    match class.as_str() {
        c if is_rnn(c) => match stacked_cells(layer) {
            // StackedRNNCells keeps its cells in a list attribute: `cell/cells/lstm_cell`,
            // `cell/cells/lstm_cell_1`, ... in config order, named like container members.
            Some(cells) => {
                let mut namer = ContainerNamer::new();
                cells.iter().map(|class| format!("cell/cells/{}", namer.next(class))).collect()
            }
            None => vec!["cell".into()],
        },
        "Bidirectional" => {
            let inner_rnn = inner_layer_class(layer).is_some_and(|c| is_rnn(&c));
            if inner_rnn {
                vec!["forward_layer/cell".into(), "backward_layer/cell".into()]
            } else {
                vec!["forward_layer".into(), "backward_layer".into()]
            }
        }
        "TimeDistributed" => {
            let inner_rnn = inner_layer_class(layer).is_some_and(|c| is_rnn(&c));
            if inner_rnn { vec!["layer/cell".into()] } else { vec!["layer".into()] }
        }
        "MultiHeadAttention" => {
            vec!["query_dense".into(), "key_dense".into(), "value_dense".into(), "output_dense".into()]
        }
        _ => vec![String::new()],
    }
}

/// The cell classes of an RNN whose `cell` is a `StackedRNNCells` (or a list of cells), in order.
fn stacked_cells(layer: &LayerConfig) -> Option<Vec<String>> {
    let cell = layer.config.get("cell")?;
    let list = match cell {
        Json::Array(a) => a,
        _ if cell.get("class_name").and_then(Json::as_str) == Some("StackedRNNCells") => {
            cell.get("config")?.get("cells")?.as_array()?
        }
        _ => return None,
    };
    list.iter().map(|c| c.get("class_name").and_then(Json::as_str).map(str::to_string)).collect()
}

/// Every layer of `config` with its Keras 3 object path, depth-first.
pub fn keras3_layer_paths<'a>(config: &'a ModelConfig) -> Vec<(String, String, usize, &'a LayerConfig)> {
    let mut out = Vec::new();
    walk_keras3(config, "", "", 0, false, &mut out);
    out
}

/// The same paths as tf.keras 2.13-2.15 named them (with `layers` standing for their
/// `_layer_checkpoint_dependencies`).
pub fn tf213_layer_paths<'a>(config: &'a ModelConfig) -> Vec<(String, String, usize, &'a LayerConfig)> {
    let mut out = Vec::new();
    walk_keras3(config, "", "", 0, true, &mut out);
    out
}

fn walk_keras3<'a>(
    model: &'a ModelConfig,
    obj_prefix: &str,
    name_prefix: &str,
    depth: usize,
    tf213: bool,
    out: &mut Vec<(String, String, usize, &'a LayerConfig)>,
) {
    let mut namer = if tf213 { ContainerNamer::tf213() } else { ContainerNamer::new() };
    for layer in &model.layers {
        let class = python_class_name(layer);
        if model.kind == ModelKind::Sequential && class == "InputLayer" {
            continue;
        }
        let obj = format!("{obj_prefix}layers/{}", namer.next(&class));
        let path = format!("{name_prefix}{}", layer.name);
        out.push((obj.clone(), path.clone(), depth, layer));
        if let Some(inner) = &layer.nested {
            walk_keras3(inner, &format!("{obj}/"), &format!("{path}/"), depth + 1, tf213, out);
        }
    }
}

/// Every layer of `config` (depth-first, with its name path and depth) — in the order
/// `model.summary` would list it (Sequential's `InputLayer` included; callers that mirror Keras
/// hide it).
pub fn all_layers<'a>(config: &'a ModelConfig) -> Vec<(String, usize, &'a LayerConfig)> {
    fn go<'a>(m: &'a ModelConfig, prefix: &str, depth: usize, out: &mut Vec<(String, usize, &'a LayerConfig)>) {
        for l in &m.layers {
            let p = format!("{prefix}{}", l.name);
            out.push((p.clone(), depth, l));
            if let Some(inner) = &l.nested {
                go(inner, &format!("{p}/"), depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    go(config, "", 0, &mut out);
    out
}

/// Binds `store` to `config`.
pub fn bind<'a>(config: &'a ModelConfig, store: &WeightStore) -> Binding<'a> {
    let mut b = match store.layout {
        Layout::Legacy => bind_legacy(config, store),
        Layout::Keras3 => bind_keras3(config, store),
    };
    // bfloat16 is stored as a 2-byte opaque type; Keras 3 `.weights.h5` adds a `dtype`
    // attribute, but legacy `.h5` and tf-keras files do not: the layer's dtype policy says it.
    for l in &mut b.layers {
        if l.layer.dtype() == Some("bfloat16") {
            for t in &mut l.tensors {
                if matches!(&t.dtype, DType::Other(d) if d == "opaque (2 bytes)") {
                    t.dtype = DType::BF16;
                }
            }
        }
    }
    let shape_problems: Vec<BindProblem> = b.layers.iter().filter_map(check_shapes).collect();
    b.problems.extend(shape_problems);
    b
}

/// A dimension the config fixes (`Some`), or any (`None`).
type Dims = Vec<Option<u64>>;

fn fmt_dims(d: &[Option<u64>]) -> String {
    let parts: Vec<String> = d.iter().map(|x| x.map(|v| v.to_string()).unwrap_or_else(|| "*".into())).collect();
    if parts.len() == 1 { format!("({},)", parts[0]) } else { format!("({})", parts.join(", ")) }
}

/// The weight shapes a layer's config implies, for the classes whose rule is plain; `None` when
/// the class or the stored count is not one this knows (Keras 1 recurrent layers store twelve
/// separate gate tensors, for example).
fn expected_shapes(l: &BoundLayer<'_>) -> Option<Vec<Dims>> {
    let class = python_class_name(l.layer);
    let c = &l.layer.config;
    let get = |k: &str| c.get(k).and_then(Json::as_u64);
    let bias = config_bool(l.layer, "use_bias", true);
    let n = l.tensors.len();
    let last_and_bias = |units: u64, rank_min: usize| -> Option<Vec<Dims>> {
        let kernel_rank = l.tensors.first().map_or(rank_min, |t| t.shape.len().max(rank_min));
        let mut k: Dims = vec![None; kernel_rank];
        *k.last_mut()? = Some(units);
        let mut v = vec![k];
        if bias {
            v.push(vec![Some(units)]);
        }
        Some(v)
    };
    match class.as_str() {
        "Dense" => last_and_bias(get("units").or_else(|| get("output_dim"))?, 2),
        // Keras 2+ spelling only: Keras 1 Theano kernels put the filters first
        "Conv1D" | "Conv2D" | "Conv3D" => last_and_bias(get("filters")?, 3),
        "Embedding" => Some(vec![vec![get("input_dim"), get("output_dim")]]),
        "LSTM" | "GRU" | "SimpleRNN" if n == 2 + usize::from(bias) || n == 0 => {
            let units = get("units")?;
            let gates = match class.as_str() {
                "LSTM" => 4,
                "GRU" => 3,
                _ => 1,
            } * units;
            let mut v = vec![vec![None, Some(gates)], vec![Some(units), Some(gates)]];
            if bias {
                // GRU with reset_after (Keras 3 and tf.keras default) keeps two bias rows
                let reset_after = class == "GRU" && c.get("reset_after").and_then(Json::as_bool).unwrap_or(false);
                v.push(if reset_after { vec![Some(2), Some(gates)] } else { vec![Some(gates)] });
            }
            Some(v)
        }
        _ => None,
    }
}

pub(crate) fn check_shapes(l: &BoundLayer<'_>) -> Option<BindProblem> {
    let want = expected_shapes(l)?;
    let fits = want.len() == l.tensors.len()
        && want
            .iter()
            .zip(&l.tensors)
            .all(|(w, t)| w.len() == t.shape.len() && w.iter().zip(&t.shape).all(|(a, b)| a.is_none_or(|a| a == *b)));
    if fits {
        return None;
    }
    Some(BindProblem::Shape {
        layer: l.path.clone(),
        class_name: l.layer.class_name.clone(),
        expected: want.iter().map(|d| fmt_dims(d)).collect::<Vec<_>>().join(", "),
        found: if l.tensors.is_empty() {
            "none".to_string()
        } else {
            l.tensors
                .iter()
                .map(|t| fmt_dims(&t.shape.iter().map(|&d| Some(d)).collect::<Vec<_>>()))
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

fn bind_keras3<'a>(config: &'a ModelConfig, store: &WeightStore) -> Binding<'a> {
    let tf213 = store.owners.iter().any(|o| o.owner.starts_with("_layer_checkpoint_dependencies"));
    let paths = if tf213 { tf213_layer_paths(config) } else { keras3_layer_paths(config) };
    // the path a Keras 3 file gets, whatever the source's naming
    let k3_paths = keras3_layer_paths(config);
    // tf.keras 2.13 wrote `_layer_checkpoint_dependencies` where Keras 3 writes `layers`
    let norm = |owner: &str| owner.replace("_layer_checkpoint_dependencies", "layers");
    let mut claimed = vec![false; store.owners.len()];
    let mut layers = Vec::with_capacity(paths.len());
    let by_path: Vec<String> = store.owners.iter().map(|o| norm(&o.owner)).collect();
    for (obj, path, depth, layer) in &paths {
        let mut tensors = Vec::new();
        for sub in keras3_sub_objects(layer) {
            let want = if sub.is_empty() { obj.clone() } else { format!("{obj}/{sub}") };
            // tf-keras archives name sub-objects by their private attribute (`_query_dense`)
            let private = format!("{obj}/_{sub}");
            if let Some(i) = by_path.iter().position(|p| *p == want || (!sub.is_empty() && *p == private)) {
                claimed[i] = true;
                tensors.extend(store.owners[i].tensors.iter().cloned());
            }
        }
        // anything else under this layer that no deeper layer owns (unknown sub-objects of
        // custom layers): appended in path order
        let prefix = format!("{obj}/");
        for (i, p) in by_path.iter().enumerate() {
            if claimed[i] || !p.starts_with(&prefix) {
                continue;
            }
            let deeper =
                paths.iter().any(|(o2, ..)| o2.len() > obj.len() && (p == o2 || p.starts_with(&format!("{o2}/"))));
            if !deeper {
                claimed[i] = true;
                tensors.extend(store.owners[i].tensors.iter().cloned());
            }
        }
        let keras3_path =
            k3_paths.iter().find(|(_, p, ..)| p == path).map(|(o, ..)| o.clone()).unwrap_or_else(|| obj.clone());
        layers.push(BoundLayer { path: path.clone(), depth: *depth, layer, tensors, keras3_path });
    }
    // Sequential's InputLayer rows (no variables) so that every config layer has a row
    let mut with_inputs = Vec::with_capacity(layers.len() + 1);
    let mut it = layers.into_iter().peekable();
    for (path, depth, layer) in all_layers(config) {
        match it.peek() {
            Some(b) if b.path == path => with_inputs.extend(it.next()),
            _ => with_inputs.push(BoundLayer { path, depth, layer, tensors: Vec::new(), keras3_path: String::new() }),
        }
    }
    with_inputs.extend(it);
    let mut problems = Vec::new();
    for (i, o) in store.owners.iter().enumerate() {
        if !claimed[i] && !o.tensors.is_empty() && !o.owner.is_empty() {
            problems.push(BindProblem::Unclaimed { owner: o.owner.clone(), tensors: o.tensors.len() });
        }
    }
    Binding { layers: with_inputs, problems }
}

/// The segments of a legacy weight name (`a/b/kernel:0` -> `a`, `b`, `kernel:0`).
fn segments(name: &str) -> Vec<&str> {
    name.split('/').filter(|s| !s.is_empty()).collect()
}

/// Which of `model`'s layers a legacy weight name belongs to.
fn owner_in<'m>(model: &'m ModelConfig, name: &str) -> Option<&'m LayerConfig> {
    let segs = segments(name);
    // a path segment equal to a layer name (Keras 2+: `inner/dense_1/kernel:0`)
    for s in segs.iter().take(segs.len().saturating_sub(1)) {
        if let Some(l) = model.layers.iter().find(|l| l.name == *s) {
            return Some(l);
        }
    }
    // Keras 1: `dense_1_W`; pick the longest layer name that prefixes the last segment
    let last = segs.last().copied().unwrap_or(name);
    model
        .layers
        .iter()
        .filter(|l| !l.name.is_empty() && last.starts_with(&format!("{}_", l.name)))
        .max_by_key(|l| l.name.len())
}

fn bind_legacy<'a>(config: &'a ModelConfig, store: &WeightStore) -> Binding<'a> {
    let mut layers = Vec::new();
    let mut problems = Vec::new();
    let mut claimed = vec![false; store.owners.len()];
    let keras3 = keras3_layer_paths(config);
    let k3 = |path: &str| keras3.iter().find(|(_, p, ..)| p == path).map(|(o, ..)| o.clone()).unwrap_or_default();
    for layer in &config.layers {
        let idx = store.owners.iter().position(|o| o.owner == layer.name);
        let tensors: Vec<TensorInfo> = match idx {
            Some(i) => {
                claimed[i] = true;
                store.owners[i].tensors.clone()
            }
            None => Vec::new(),
        };
        push_legacy(layer, &layer.name, 0, tensors, &mut layers, &mut problems, &k3);
        // Keras 1 `Merge` of whole models: the branches' layers have their own groups
        for branch in &layer.branches {
            bind_branch(branch, &layer.name, 1, store, &mut claimed, &mut layers);
        }
    }
    for (i, o) in store.owners.iter().enumerate() {
        if !claimed[i] && !o.tensors.is_empty() {
            problems.push(BindProblem::Unclaimed { owner: o.owner.clone(), tensors: o.tensors.len() });
        }
    }
    Binding { layers, problems }
}

fn bind_branch<'a>(
    model: &'a ModelConfig,
    prefix: &str,
    depth: usize,
    store: &WeightStore,
    claimed: &mut [bool],
    out: &mut Vec<BoundLayer<'a>>,
) {
    for l in &model.layers {
        let path = format!("{prefix}/{}", l.name);
        let mut tensors = Vec::new();
        if let Some(i) = store.owners.iter().position(|o| o.owner == l.name) {
            if let Some(c) = claimed.get_mut(i) {
                *c = true;
            }
            tensors = store.owners[i].tensors.clone();
        }
        out.push(BoundLayer { path: path.clone(), depth, layer: l, tensors, keras3_path: String::new() });
        for b in &l.branches {
            bind_branch(b, &path, depth + 1, store, claimed, out);
        }
    }
}

fn push_legacy<'a>(
    layer: &'a LayerConfig,
    path: &str,
    depth: usize,
    tensors: Vec<TensorInfo>,
    out: &mut Vec<BoundLayer<'a>>,
    problems: &mut Vec<BindProblem>,
    k3: &dyn Fn(&str) -> String,
) {
    let Some(inner) = &layer.nested else {
        out.push(BoundLayer { path: path.to_string(), depth, layer, tensors, keras3_path: k3(path) });
        return;
    };
    // a nested model: distribute its tensors over its layers by name, keeping order
    let mut per: Vec<Vec<TensorInfo>> = vec![Vec::new(); inner.layers.len()];
    let mut own = Vec::new();
    for t in tensors {
        match owner_in(inner, &t.name).and_then(|l| inner.layers.iter().position(|x| std::ptr::eq(x, l))) {
            Some(i) => per[i].push(t),
            None => {
                problems.push(BindProblem::Unassigned { model: path.to_string(), name: t.name.clone() });
                own.push(t);
            }
        }
    }
    out.push(BoundLayer { path: path.to_string(), depth, layer, tensors: own, keras3_path: k3(path) });
    for (l, ts) in inner.layers.iter().zip(per) {
        push_legacy(l, &format!("{path}/{}", l.name), depth + 1, ts, out, problems, k3);
    }
}

/// The `Json` of a config key as a bool, with a default.
pub fn config_bool(layer: &LayerConfig, key: &str, default: bool) -> bool {
    layer.config.get(key).and_then(Json::as_bool).unwrap_or(default)
}
