//! Graph executor for Sequential and Functional configs.

use crate::error::{Error, Result, Unsupported};
use crate::layers::{self, BuildCtx, CallArgs, Layer, LayerResolver, Masked, StateUpdate};
use std::collections::HashMap;
use strata_format::bind::Binding;
use strata_format::config::{ModelConfig, ModelKind, Node, NodeFormat, TensorRef};
use strata_format::json::Json;
use strata_format::model::ModelFile;
use strata_format::weights::{TensorInfo, WeightStore};
use strata_tensor::{DType, Tensor};

struct Entry {
    /// The layer's name in the config (its path component).
    name: String,
    layer: Box<dyn Layer>,
    /// Each call (empty for Sequential models and InputLayers).
    calls: Vec<CallSpec>,
    is_input: bool,
}

/// One call of a layer in a functional graph.
struct CallSpec {
    /// Positional tensors in Keras flatten order.
    inputs: Vec<TensorRef>,
    /// Keyword tensors other than `mask`, with their keyword.
    kw: Vec<(String, TensorRef)>,
    /// Explicit masks passed as `mask=` (Keras 3 serializes the mask ops of a functional model
    /// this way): one per positional input, `None` where that input has none. Empty: use the
    /// masks carried from the producers.
    masks: Vec<Option<TensorRef>>,
    /// The call's positional arguments as written (Keras 3), `Null` otherwise.
    args: Json,
    /// The call's keyword arguments as written.
    kwargs: Json,
}

impl CallSpec {
    /// Every tensor the call reads: positional, keyword and explicit-mask references.
    fn refs(&self) -> impl Iterator<Item = &TensorRef> {
        self.inputs.iter().chain(self.kw.iter().map(|(_, r)| r)).chain(self.masks.iter().flatten())
    }
}

impl CallSpec {
    fn of(node: &Node) -> CallSpec {
        let names = node.kwarg_input_names();
        let mut kw = Vec::new();
        let mut mask_refs = Vec::new();
        for (name, r) in names.iter().zip(&node.kwarg_inputs) {
            if name == "mask" {
                mask_refs.push(r.clone());
            } else {
                kw.push((name.clone(), r.clone()));
            }
        }
        // `mask` may be a tensor or a list with nulls ([None, v_mask]): line the tensors up with
        // the list's slots.
        let masks = match node.kwargs.get("mask") {
            Some(Json::Array(slots)) if !mask_refs.is_empty() => {
                let mut it = mask_refs.into_iter();
                slots.iter().map(|v| if v.is_null() { None } else { it.next() }).collect()
            }
            _ => mask_refs.into_iter().map(Some).collect(),
        };
        CallSpec {
            inputs: node.inputs.clone(),
            kw,
            masks,
            args: if node.format == NodeFormat::ArgsKwargs { node.args_structure.clone() } else { Json::Null },
            kwargs: node.kwargs.clone(),
        }
    }
}

/// What [`Model::build_with_weight_map`] passes each layer's loaded weights through:
/// `(layer path, weights in binding order) -> the weights the layer is built from`.
pub type WeightMap<'a> = &'a dyn Fn(&str, Vec<Tensor>) -> Vec<Tensor>;

/// A runnable model: a Sequential stack or a Functional graph. A nested model is itself a [`Layer`].
pub struct Model {
    name: String,
    class: String,
    kind: ModelKind,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    inputs: Vec<TensorRef>,
    outputs: Vec<TensorRef>,
    /// node-index base for each entry when referenced from `inputs`/`outputs` (`.0`) or nodes (`.1`).
    bases: Vec<(usize, usize)>,
    /// Inputs a Sequential model takes: 1, or those of the branch models of a Keras 1 `Merge` that
    /// starts it.
    seq_inputs: usize,
}

fn tensor_dtype(d: &strata_hdf5::DType) -> Option<DType> {
    use strata_hdf5::DType as H;
    Some(match d {
        H::F16 => DType::F16,
        H::BF16 => DType::BF16,
        H::F32 => DType::F32,
        H::F64 => DType::F64,
        H::I32 => DType::I32,
        H::I64 => DType::I64,
        _ => return None,
    })
}

/// Reads one stored weight as a tensor (its dtype kept), naming the layer and HDF5 path on error.
pub fn load_tensor(layer: &str, info: &TensorInfo, store: &WeightStore) -> Result<Tensor> {
    let dtype = tensor_dtype(&info.dtype).ok_or_else(|| Error::WeightDType {
        layer: layer.to_string(),
        tensor: info.h5_path.clone(),
        dtype: format!("{:?}", info.dtype),
    })?;
    let bytes = store.read(info).map_err(|source| Error::Read {
        layer: layer.to_string(),
        tensor: info.h5_path.clone(),
        source: Box::new(source),
    })?;
    let shape = info
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::WeightCount { layer: layer.to_string(), expected: 0, got: 0 })?;
    Tensor::from_le_bytes(dtype, &shape, &bytes).map_err(|source| Error::Tensor {
        layer: layer.to_string(),
        class: "weight".into(),
        source: Box::new(source),
    })
}

/// Collects every unsupported layer of `config` (recursively) as `path -> class`.
pub fn unsupported_layers(config: &ModelConfig) -> Vec<Unsupported> {
    let mut out = Vec::new();
    collect_unsupported(config, "", None, &mut out);
    out
}

fn collect_unsupported(
    config: &ModelConfig,
    prefix: &str,
    resolver: Option<&dyn LayerResolver>,
    out: &mut Vec<Unsupported>,
) {
    for l in &config.layers {
        let path = if prefix.is_empty() { l.name.clone() } else { format!("{prefix}/{}", l.name) };
        match &l.nested {
            Some(n) if matches!(n.kind, ModelKind::Sequential | ModelKind::Functional) => {
                collect_unsupported(n, &path, resolver, out)
            }
            None if resolver.is_some_and(|r| r.resolves(l)) => {}
            Some(_) => out.push(Unsupported { layer: path.clone(), class: l.class_name.clone() }),
            None if !layers::is_supported_in(&l.class_name, l.module.as_deref()) => {
                let mut u = Unsupported { layer: path.clone(), class: l.class_name.clone() };
                if l.module.as_deref().is_some_and(crate::ops::is_op_module) {
                    u.class = crate::ops::unsupported(l).class;
                }
                out.push(u)
            }
            None => {}
        }
        // a Keras 1 `Merge` of whole models: its branches' layers are layers of this model
        for b in &l.branches {
            collect_unsupported(b, &path, resolver, out);
        }
    }
}

impl Model {
    /// Opens a model file and builds it.
    pub fn open(
        path: impl AsRef<std::path::Path>,
    ) -> std::result::Result<Model, Box<dyn std::error::Error + Send + Sync>> {
        let file = ModelFile::open(path)?;
        Ok(Model::from_file(&file)?)
    }

    /// Builds the model of an opened file (its config, weights, backend and Keras version).
    pub fn from_file(file: &ModelFile) -> Result<Model> {
        let config = file.config.as_ref().ok_or(Error::Missing { what: "model config" })?;
        let store = file.weights.as_ref().ok_or(Error::Missing { what: "weights" })?;
        let binding = strata_format::bind::bind(config, store);
        let ctx = BuildCtx {
            dialect: config.source,
            // Keras 1 files do not record their backend: guessed from `dim_ordering`
            backend: file.backend.as_deref().or_else(|| crate::legacy::guess_backend(config)),
            keras_version: file.keras_version.as_deref(),
        };
        Model::build_with(config, &binding, store, &ctx)
    }

    /// Builds a model from its config and weight binding. Every unsupported layer is reported at once.
    pub fn build(config: &ModelConfig, binding: &Binding<'_>, store: &WeightStore) -> Result<Model> {
        Model::build_with(config, binding, store, &BuildCtx::new(config.source))
    }

    /// [`Model::build`] with what is known of the file (backend, Keras version).
    pub fn build_with(
        config: &ModelConfig,
        binding: &Binding<'_>,
        store: &WeightStore,
        ctx: &BuildCtx<'_>,
    ) -> Result<Model> {
        Model::build_with_resolver(config, binding, store, ctx, None)
    }

    /// [`Model::build_with`] with a [`LayerResolver`] for classes the engine does not implement
    /// (custom layers): every plain layer it resolves is built by it. This is the hook
    /// `strata-registry` uses; without a resolver this is exactly [`Model::build_with`].
    pub fn build_with_resolver(
        config: &ModelConfig,
        binding: &Binding<'_>,
        store: &WeightStore,
        ctx: &BuildCtx<'_>,
        resolver: Option<&dyn LayerResolver>,
    ) -> Result<Model> {
        // every unsupported layer is reported at once by `build_from_weights`, before any weight is read
        Model::build_with_weight_map(config, binding, store, ctx, resolver, &|_, w| w)
    }

    /// [`Model::build_with_resolver`] with every layer's loaded weights passed through `map`
    /// before the layer is built from them: `map(layer path, weights)` (the path is `inner/dense`
    /// for a layer of a nested model) returns the tensors to use, same count and shapes.
    /// Differentiating with respect to the weights uses this: `map` returns tape-watched copies
    /// (`|_, w| w.iter().map(|t| tape.watch(t)).collect()`), so the built model records on the tape.
    pub fn build_with_weight_map(
        config: &ModelConfig,
        binding: &Binding<'_>,
        store: &WeightStore,
        ctx: &BuildCtx<'_>,
        resolver: Option<&dyn LayerResolver>,
        map: WeightMap<'_>,
    ) -> Result<Model> {
        let by_path: HashMap<&str, &[TensorInfo]> =
            binding.layers.iter().map(|b| (b.path.as_str(), b.tensors.as_slice())).collect();
        let source = |path: &str| -> Result<Vec<Tensor>> {
            let infos = by_path.get(path).copied().unwrap_or(&[]);
            let loaded = infos.iter().map(|i| load_tensor(path, i, store)).collect::<Result<Vec<_>>>()?;
            Ok(map(path, loaded))
        };
        Model::build_from_weights(config, ctx, resolver, &source)
    }

    /// Builds a model from its config with each layer's weights supplied by `weights` (called
    /// with the layer's path, `outer/inner` inside nested models, and returning its tensors in
    /// Keras order; empty for a layer without weights). This is how a trainer rebuilds the graph
    /// around new (or tape-tracked) weight values: layers that transform their weights while
    /// building record those transforms on the tape, so gradients reach the stored tensors.
    pub fn build_from_weights(
        config: &ModelConfig,
        ctx: &BuildCtx<'_>,
        resolver: Option<&dyn LayerResolver>,
        weights: &dyn Fn(&str) -> Result<Vec<Tensor>>,
    ) -> Result<Model> {
        let mut missing = Vec::new();
        collect_unsupported(config, "", resolver, &mut missing);
        if !missing.is_empty() {
            return Err(Error::Unsupported(missing));
        }
        // activations the resolver defines, for the built-in layers that name them
        let mut custom = HashMap::new();
        if let Some(r) = resolver {
            for (_, l) in config.iter_layers_recursive() {
                let Some(obj) = l.config.as_object() else { continue };
                for (_, v) in obj.iter().filter(|(k, _)| k.ends_with("activation")) {
                    if let Some(name) = crate::activation::name_of(v)
                        && crate::activation::parse_name(name, config.source).is_none()
                        && let Some(f) = r.activation(name)
                    {
                        custom.insert(name.to_string(), f);
                    }
                }
            }
        }
        crate::activation::with_custom(custom, || Model::build_inner(config, "", weights, ctx, resolver))
    }

    fn build_inner(
        config: &ModelConfig,
        prefix: &str,
        weights: &dyn Fn(&str) -> Result<Vec<Tensor>>,
        ctx: &BuildCtx<'_>,
        resolver: Option<&dyn LayerResolver>,
    ) -> Result<Model> {
        let ctx = BuildCtx { dialect: config.source, ..*ctx };
        let mut entries = Vec::with_capacity(config.layers.len());
        let mut index = HashMap::new();
        let mut bases = Vec::with_capacity(config.layers.len());
        let mut seq_inputs = 1;
        for l in &config.layers {
            let path = if prefix.is_empty() { l.name.clone() } else { format!("{prefix}/{}", l.name) };
            let layer: Box<dyn Layer> = if let Some(n) = &l.nested {
                Box::new(Model::build_inner(n, &path, weights, &ctx, resolver)?)
            } else if !l.branches.is_empty() {
                // Keras 1 `Merge` of whole models (bound under `<merge>/<layer>`)
                let branches = l
                    .branches
                    .iter()
                    .map(|b| Model::build_inner(b, &path, weights, &ctx, resolver))
                    .collect::<Result<Vec<_>>>()?;
                let Some(merge) = layers::build_layer(l, Vec::new(), &ctx)? else {
                    return Err(Error::Unsupported(vec![Unsupported { layer: path, class: l.class_name.clone() }]));
                };
                let bm = crate::legacy::BranchMerge::new(branches, merge);
                if entries.iter().all(|e: &Entry| e.is_input) {
                    seq_inputs = bm.input_count();
                }
                Box::new(bm)
            } else {
                let w = weights(&path)?;
                if let Some(r) = resolver.filter(|r| r.resolves(l)) {
                    r.build(l, w, &ctx)?
                } else {
                    match layers::build_layer(l, w, &ctx)? {
                        Some(b) => b,
                        None => {
                            return Err(Error::Unsupported(vec![Unsupported {
                                layer: path,
                                class: l.class_name.clone(),
                            }]));
                        }
                    }
                }
            };
            index.insert(l.name.clone(), entries.len());
            bases.push((config.node_index_base(l, true), config.node_index_base(l, false)));
            entries.push(Entry {
                name: l.name.clone(),
                layer,
                calls: l.inbound_nodes.iter().map(CallSpec::of).collect(),
                is_input: l.class_name == "InputLayer",
            });
        }
        Ok(Model {
            name: config.name.clone(),
            class: match &config.kind {
                ModelKind::Sequential => "Sequential".into(),
                _ => config.envelope.class_name.clone(),
            },
            kind: config.kind.clone(),
            entries,
            index,
            inputs: config.inputs.clone(),
            outputs: config.outputs.clone(),
            bases,
            seq_inputs,
        })
    }

    /// Takes (and clears) the variable updates that training-mode forwards made since the last
    /// call (BatchNormalization's moving statistics), recursing into nested models: `(layer
    /// path, [(weight index, new value)])`, with the paths [`Model::build_from_weights`] asks
    /// weights for (`outer/inner` inside nested models) and indices into that layer's weights in
    /// Keras order. A trainer writes the (detached) values into its non-trainable variables
    /// after each step.
    pub fn take_state_updates(&self) -> Vec<StateUpdate> {
        let mut out = Vec::new();
        for e in &self.entries {
            for (sub, u) in e.layer.take_state_updates() {
                let path = if sub.is_empty() { e.name.clone() } else { format!("{}/{sub}", e.name) };
                out.push((path, u));
            }
        }
        out
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// How many input tensors [`Model::predict`] takes.
    pub fn input_count(&self) -> usize {
        if self.kind == ModelKind::Sequential { self.seq_inputs } else { self.inputs.len() }
    }

    /// Runs inference on one tensor per model input, returning one tensor per model output.
    pub fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.run(inputs, false)
    }

    /// Runs the model with `training` selecting training behaviour (dropout, batch statistics),
    /// as Keras's `model(x, training=True)`.
    pub fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        self.run(inputs, training)
    }

    fn graph_err(&self, problem: String) -> Error {
        Error::Graph { model: self.name.clone(), problem }
    }

    fn run(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        Ok(self.run_masked(inputs, &[], training)?.0)
    }

    /// Runs the graph with input masks (`masks` may be empty: no masks), carrying Keras masks
    /// from layer to layer.
    fn run_masked(&self, inputs: &[Tensor], masks: &[Option<Tensor>], training: bool) -> Result<Masked> {
        let mask_of = |i: usize| masks.get(i).cloned().flatten();
        if self.kind == ModelKind::Sequential {
            if inputs.len() != self.seq_inputs {
                return Err(Error::InputCount {
                    model: self.name.clone(),
                    expected: self.seq_inputs,
                    got: inputs.len(),
                });
            }
            let mut cur = inputs.to_vec();
            let mut cur_masks: Vec<Option<Tensor>> = (0..inputs.len()).map(mask_of).collect();
            for e in self.entries.iter().filter(|e| !e.is_input) {
                let ins = half_inputs(&cur)?;
                (cur, cur_masks) = e.layer.forward_masked(&ins, &cur_masks, training)?;
            }
            // the model's half-precision outputs meet their (float32) consumer through a cast too
            return Ok((half_inputs(&cur)?, cur_masks));
        }
        if inputs.len() != self.inputs.len() {
            return Err(Error::InputCount { model: self.name.clone(), expected: self.inputs.len(), got: inputs.len() });
        }
        let mut fed: HashMap<&str, (Tensor, Option<Tensor>)> = HashMap::new();
        for (k, (r, t)) in self.inputs.iter().zip(inputs).enumerate() {
            fed.insert(r.layer.as_str(), (t.clone(), mask_of(k)));
        }
        // (entry, call) -> outputs with masks
        let mut done: HashMap<(usize, usize), Masked> = HashMap::new();
        // How many later reads each call's outputs have; once all have happened the outputs are
        // dropped, so a deep graph holds only its live activations (model outputs are kept).
        let mut uses: HashMap<(usize, usize), usize> = HashMap::new();
        for spec in self.entries.iter().flat_map(|e| e.calls.iter()) {
            for r in spec.refs() {
                if let Ok(Some(key)) = self.call_of(r, false) {
                    *uses.entry(key).or_default() += 1;
                }
            }
        }
        for r in &self.outputs {
            if let Ok(Some(key)) = self.call_of(r, true) {
                *uses.entry(key).or_default() += 1;
            }
        }
        let mut pending: Vec<(usize, usize)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_input)
            .flat_map(|(i, e)| (0..e.calls.len()).map(move |c| (i, c)))
            .collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut still = Vec::new();
            for (i, c) in pending {
                let Some(entry) = self.entries.get(i) else { continue };
                let Some(spec) = entry.calls.get(c) else { continue };
                let mut args = Vec::with_capacity(spec.inputs.len());
                let mut arg_masks = Vec::with_capacity(spec.inputs.len());
                let mut kw = Vec::with_capacity(spec.kw.len());
                let mut ready = true;
                for r in &spec.inputs {
                    match self.resolve(r, false, &fed, &done)? {
                        Some((t, m)) => {
                            args.push(t);
                            arg_masks.push(m);
                        }
                        None => {
                            ready = false;
                            break;
                        }
                    }
                }
                for (name, r) in &spec.kw {
                    if !ready {
                        break;
                    }
                    match self.resolve(r, false, &fed, &done)? {
                        Some((t, m)) => kw.push((name.clone(), t, m)),
                        None => ready = false,
                    }
                }
                if ready && !spec.masks.is_empty() {
                    let mut explicit = Vec::with_capacity(spec.masks.len());
                    for r in &spec.masks {
                        match r {
                            None => explicit.push(None),
                            Some(r) => match self.resolve(r, false, &fed, &done)? {
                                Some((t, _)) => explicit.push(Some(t)),
                                None => ready = false,
                            },
                        }
                    }
                    explicit.resize(arg_masks.len().max(explicit.len()), None);
                    arg_masks = explicit;
                }
                if ready {
                    let call = CallArgs { kw_tensors: &kw, args: &spec.args, kwargs: &spec.kwargs, training };
                    let args = half_inputs(&args)?;
                    done.insert((i, c), entry.layer.call(&args, &arg_masks, &call)?);
                    drop((args, arg_masks, kw));
                    for r in spec.refs() {
                        if let Ok(Some(key)) = self.call_of(r, false)
                            && let Some(n) = uses.get_mut(&key)
                        {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                done.remove(&key);
                            }
                        }
                    }
                } else {
                    still.push((i, c));
                }
            }
            if still.len() == before {
                let names: Vec<&str> =
                    still.iter().filter_map(|(i, _)| self.entries.get(*i)).map(|e| e.layer.name()).collect();
                return Err(self.graph_err(format!(
                    "the calls of {names:?} wait on tensors nothing produces (a cycle or a dangling reference)"
                )));
            }
            pending = still;
        }
        let mut outs = Vec::with_capacity(self.outputs.len());
        let mut out_masks = Vec::with_capacity(self.outputs.len());
        for r in &self.outputs {
            let (t, m) = self
                .resolve(r, true, &fed, &done)?
                .ok_or_else(|| self.graph_err(format!("output {r} is never computed")))?;
            outs.push(t);
            out_masks.push(m);
        }
        Ok((half_inputs(&outs)?, out_masks))
    }

    /// The `(entry, call)` whose outputs `r` reads, or `None` for a model input.
    fn call_of(&self, r: &TensorRef, in_model_io: bool) -> Result<Option<(usize, usize)>> {
        let &i = self.index.get(&r.layer).ok_or_else(|| self.graph_err(format!("{r} names no layer of the model")))?;
        let entry = self.entries.get(i).ok_or_else(|| self.graph_err(format!("{r} names no layer of the model")))?;
        if entry.is_input {
            return Ok(None);
        }
        let (io, node) = self.bases.get(i).copied().unwrap_or((0, 0));
        let base = if in_model_io { io } else { node };
        let call = r
            .node_index
            .checked_sub(base)
            .ok_or_else(|| self.graph_err(format!("{r} refers to a call before the first")))?;
        if call >= entry.calls.len() {
            return Err(self.graph_err(format!(
                "{r} refers to call {call} but `{}` has {} call(s)",
                r.layer,
                entry.calls.len()
            )));
        }
        Ok(Some((i, call)))
    }

    fn resolve(
        &self,
        r: &TensorRef,
        in_model_io: bool,
        fed: &HashMap<&str, (Tensor, Option<Tensor>)>,
        done: &HashMap<(usize, usize), Masked>,
    ) -> Result<Option<(Tensor, Option<Tensor>)>> {
        let Some(key) = self.call_of(r, in_model_io)? else {
            return fed
                .get(r.layer.as_str())
                .map(|t| Some(t.clone()))
                .ok_or_else(|| self.graph_err(format!("input layer `{}` is not a model input", r.layer)));
        };
        match done.get(&key) {
            None => Ok(None),
            Some((outs, masks)) => outs
                .get(r.tensor_index)
                .cloned()
                .map(|t| Some((t, masks.get(r.tensor_index).cloned().flatten())))
                .ok_or_else(|| self.graph_err(format!("{r}: `{}` has only {} output(s)", r.layer, outs.len()))),
        }
    }
}

impl Layer for Model {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &str {
        &self.class
    }
    fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        self.run(inputs, training)
    }
    fn forward_masked(&self, inputs: &[Tensor], masks: &[Option<Tensor>], training: bool) -> Result<Masked> {
        self.run_masked(inputs, masks, training)
    }
    fn take_state_updates(&self) -> Vec<StateUpdate> {
        Model::take_state_updates(self)
    }
}

/// One model input as its config declares it: what `strata predict` checks arrays against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// The input's name: the `InputLayer`'s name, or `<first layer>_input` (what Keras 2 names
    /// the implicit input of a Sequential model without an `InputLayer`).
    pub name: String,
    /// The declared shape, batch axis first, `None` for a free dimension; `None` as a whole when
    /// the config declares no shape (a Sequential model built without one).
    pub shape: Option<Vec<Option<usize>>>,
    /// The declared dtype (`float32` when the config names none).
    pub dtype: String,
}

impl InputSpec {
    /// The shape as Keras prints it: `(None, 8)`; `unknown` when undeclared.
    pub fn shape_text(&self) -> String {
        match &self.shape {
            None => "unknown".into(),
            Some(dims) => {
                let parts: Vec<String> =
                    dims.iter().map(|d| d.map(|v| v.to_string()).unwrap_or_else(|| "None".into())).collect();
                if parts.len() == 1 { format!("({},)", parts[0]) } else { format!("({})", parts.join(", ")) }
            }
        }
    }

    /// Whether an array of `shape` fits the declared shape (same rank, equal fixed dimensions).
    /// An undeclared shape accepts anything.
    pub fn accepts(&self, shape: &[usize]) -> bool {
        match &self.shape {
            None => true,
            Some(dims) => dims.len() == shape.len() && dims.iter().zip(shape).all(|(d, s)| d.is_none_or(|d| d == *s)),
        }
    }
}

fn shape_of_json(v: &strata_format::json::Json) -> Option<Vec<Option<usize>>> {
    v.as_array()?.iter().map(|d| if d.is_null() { Some(None) } else { d.as_usize().map(Some) }).collect()
}

fn first_layer_spec(config: &ModelConfig) -> Option<InputSpec> {
    let first = config.layers.first()?;
    if first.class_name != "InputLayer"
        && let Some(n) = &first.nested
        && let Some(inner) = Model::input_specs(n).into_iter().next()
    {
        return Some(inner);
    }
    // Keras 1 writes `input_dtype` on the first layer
    let dtype = first.dtype().or_else(|| first.config.get("input_dtype").and_then(|v| v.as_str())).unwrap_or("float32");
    let dtype = dtype.to_string();
    let name = if first.class_name == "InputLayer" { first.name.clone() } else { format!("{}_input", first.name) };
    let shape = first
        .batch_input_shape()
        .and_then(shape_of_json)
        .or_else(|| {
            // Keras 1 `Dense(input_dim=...)`
            let dim = first.config.get("input_dim").and_then(|v| v.as_usize())?;
            Some(vec![None, Some(dim)])
        })
        .or_else(|| config.build_input_shape.as_ref().and_then(shape_of_json));
    Some(InputSpec { name, shape, dtype })
}

impl Model {
    /// The inputs `config` declares, in the order [`Model::predict`] takes them: name, shape
    /// (`batch_shape` / `batch_input_shape` of each `InputLayer`, `None` for free dimensions) and
    /// dtype.
    pub fn input_specs(config: &ModelConfig) -> Vec<InputSpec> {
        if config.kind == ModelKind::Sequential {
            return first_layer_spec(config).into_iter().collect();
        }
        config
            .inputs
            .iter()
            .map(|r| {
                let layer = config.layer(&r.layer);
                InputSpec {
                    name: r.layer.clone(),
                    shape: layer.and_then(|l| l.batch_input_shape()).and_then(shape_of_json),
                    dtype: layer.and_then(|l| l.dtype()).unwrap_or("float32").to_string(),
                }
            })
            .collect()
    }

    /// [`Model::predict`] over a large batch in chunks of `batch_size` samples (0: one chunk),
    /// run in parallel with rayon and concatenated along the batch axis. Every input must have
    /// the same leading (batch) dimension, and every output must keep it.
    pub fn predict_batched(&self, inputs: &[Tensor], batch_size: usize) -> Result<Vec<Tensor>> {
        use rayon::prelude::*;
        let mut n = None;
        for (k, t) in inputs.iter().enumerate() {
            let Some(&d) = t.shape().first() else {
                return Err(self.graph_err(format!("input {k} is a scalar; predict_batched needs a batch axis")));
            };
            match n {
                None => n = Some(d),
                Some(m) if m != d => {
                    return Err(self.graph_err(format!(
                        "input 0 has {m} samples but input {k} has {d}; every input needs the same batch size"
                    )));
                }
                Some(_) => {}
            }
        }
        let n = n.unwrap_or(0);
        if batch_size == 0 || n <= batch_size {
            return self.predict(inputs);
        }
        let terr = |source| Error::Tensor {
            layer: self.name.clone(),
            class: "predict_batched".into(),
            source: Box::new(source),
        };
        let starts: Vec<usize> = (0..n).step_by(batch_size).collect();
        let chunks: Vec<Vec<Tensor>> = starts
            .par_iter()
            .map(|&s| {
                let e = s.saturating_add(batch_size).min(n);
                let part = inputs.iter().map(|t| t.slice_axis(0, s, e)).collect::<std::result::Result<Vec<_>, _>>();
                let outs = self.predict(&part.map_err(terr)?)?;
                for (k, o) in outs.iter().enumerate() {
                    if o.shape().first() != Some(&(e - s)) {
                        return Err(self.graph_err(format!(
                            "output {k} has shape {:?} for a chunk of {} samples: it has no batch axis, so it cannot be computed in chunks; use a batch size of at least {n}",
                            o.shape(),
                            e - s
                        )));
                    }
                }
                Ok(outs)
            })
            .collect::<Result<_>>()?;
        let outputs = chunks.first().map_or(0, Vec::len);
        (0..outputs)
            .map(|k| {
                let parts: Vec<&Tensor> = chunks.iter().filter_map(|c| c.get(k)).collect();
                strata_tensor::concat(&parts, 0).map_err(terr)
            })
            .collect()
    }
}

/// Tracked inputs that hold half-precision values (a float16 / bfloat16 layer's output) enter the next
/// layer through a cast, as Keras casts them to the layer's compute dtype: the values are unchanged and
/// this consumer's gradient with respect to them is a half-precision value, rounded as TensorFlow's `Cast`
/// gradient rounds it (before the gradients of several consumers are added).
fn half_inputs(xs: &[Tensor]) -> Result<Vec<Tensor>> {
    xs.iter()
        .map(|x| match x.dtype() {
            d @ (strata_tensor::DType::F16 | strata_tensor::DType::BF16) if x.is_tracked() => {
                crate::grad::cast_through("cast", x, x.detach(), d).map_err(|source| Error::Tensor {
                    layer: String::new(),
                    class: String::new(),
                    source: Box::new(source),
                })
            }
            _ => Ok(x.clone()),
        })
        .collect()
}
