//! Graph executor for Sequential and Functional configs.

use crate::error::{Error, Result, Unsupported};
use crate::layers::{self, BuildCtx, Layer, Masked};
use std::collections::HashMap;
use strata_format::bind::Binding;
use strata_format::config::{ModelConfig, ModelKind, TensorRef};
use strata_format::model::ModelFile;
use strata_format::weights::{TensorInfo, WeightStore};
use strata_tensor::{DType, Tensor};

struct Entry {
    layer: Box<dyn Layer>,
    /// Each call's inputs (empty for Sequential models and InputLayers).
    calls: Vec<Vec<TensorRef>>,
    is_input: bool,
}

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

fn load(layer: &str, info: &TensorInfo, store: &WeightStore) -> Result<Tensor> {
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
    collect_unsupported(config, "", &mut out);
    out
}

fn collect_unsupported(config: &ModelConfig, prefix: &str, out: &mut Vec<Unsupported>) {
    for l in &config.layers {
        let path = if prefix.is_empty() { l.name.clone() } else { format!("{prefix}/{}", l.name) };
        match &l.nested {
            Some(n) if matches!(n.kind, ModelKind::Sequential | ModelKind::Functional) => {
                collect_unsupported(n, &path, out)
            }
            Some(_) => out.push(Unsupported { layer: path, class: l.class_name.clone() }),
            None if !layers::is_supported(&l.class_name) => {
                out.push(Unsupported { layer: path, class: l.class_name.clone() })
            }
            None => {}
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
            backend: file.backend.as_deref(),
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
        let missing = unsupported_layers(config);
        if !missing.is_empty() {
            return Err(Error::Unsupported(missing));
        }
        let by_path: HashMap<&str, &[TensorInfo]> =
            binding.layers.iter().map(|b| (b.path.as_str(), b.tensors.as_slice())).collect();
        Model::build_inner(config, "", &by_path, store, ctx)
    }

    fn build_inner(
        config: &ModelConfig,
        prefix: &str,
        by_path: &HashMap<&str, &[TensorInfo]>,
        store: &WeightStore,
        ctx: &BuildCtx<'_>,
    ) -> Result<Model> {
        let ctx = BuildCtx { dialect: config.source, ..*ctx };
        let mut entries = Vec::with_capacity(config.layers.len());
        let mut index = HashMap::new();
        let mut bases = Vec::with_capacity(config.layers.len());
        for l in &config.layers {
            let path = if prefix.is_empty() { l.name.clone() } else { format!("{prefix}/{}", l.name) };
            let layer: Box<dyn Layer> = if let Some(n) = &l.nested {
                Box::new(Model::build_inner(n, &path, by_path, store, &ctx)?)
            } else {
                let infos = by_path.get(path.as_str()).copied().unwrap_or(&[]);
                let weights = infos.iter().map(|i| load(&path, i, store)).collect::<Result<Vec<_>>>()?;
                match layers::build_layer(l, weights, &ctx)? {
                    Some(b) => b,
                    None => {
                        return Err(Error::Unsupported(vec![Unsupported { layer: path, class: l.class_name.clone() }]));
                    }
                }
            };
            index.insert(l.name.clone(), entries.len());
            bases.push((config.node_index_base(l, true), config.node_index_base(l, false)));
            entries.push(Entry {
                layer,
                calls: l.inbound_nodes.iter().map(|n| n.inputs.clone()).collect(),
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
        })
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// Runs inference on one tensor per model input, returning one tensor per model output.
    pub fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.run(inputs, false)
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
            let [x] = inputs else {
                return Err(Error::InputCount { model: self.name.clone(), expected: 1, got: inputs.len() });
            };
            let mut cur = vec![x.clone()];
            let mut cur_masks = vec![mask_of(0)];
            for e in self.entries.iter().filter(|e| !e.is_input) {
                (cur, cur_masks) = e.layer.forward_masked(&cur, &cur_masks, training)?;
            }
            return Ok((cur, cur_masks));
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
        for refs in self.entries.iter().flat_map(|e| e.calls.iter()) {
            for r in refs {
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
                let refs = entry.calls.get(c).map(Vec::as_slice).unwrap_or(&[]);
                let mut args = Vec::with_capacity(refs.len());
                let mut arg_masks = Vec::with_capacity(refs.len());
                let mut ready = true;
                for r in refs {
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
                if ready {
                    done.insert((i, c), entry.layer.forward_masked(&args, &arg_masks, training)?);
                    drop((args, arg_masks));
                    for r in refs {
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
        Ok((outs, out_masks))
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
}
