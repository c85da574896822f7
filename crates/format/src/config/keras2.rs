//! Keras 1/2 and tf-keras nodes: lists of `[layer, node, tensor, kwargs]` entries.
//!
//! Mirrors tf-keras `tf_keras/engine/node.py` (`Node.serialize`) and `tf_keras/engine/functional.py`
//! (`process_node`, `_deserialize_keras_tensors`), and Keras 2's `keras/engine/network.py`:
//! * a node is the first call argument mapped to entries: usually a flat list, one entry per input
//!   tensor; layers that keep their input structure (`_preserve_input_structure_in_config`, e.g.
//!   `TFOpLambda`) may nest lists and dicts;
//! * an entry is `[layer_name, node_index, tensor_index, kwargs]`; Keras 1 writes three elements;
//! * a non-tensor first argument is `["_CONSTANT_VALUE", -1, value, kwargs]`;
//! * the same `kwargs` dict is repeated in every entry, and tensors inside it are written as
//!   `[layer, node, tensor]` triples (tf-keras `convert_inner_node_data` recognizes them that way).

use super::keras3::{set_triple, triple, triple_json};
use super::{ConfigError, ConfigPath, Node, NodeFormat, Result, TensorRef, short_json, wrong};
use crate::json::{Json, Object};

/// The layer name tf-keras writes for constant call arguments.
pub const CONSTANT_VALUE: &str = "_CONSTANT_VALUE";

enum Leaf {
    Ref,
    Constant,
}

/// Whether `v` is an entry: `[str, int, int]` / `[str, int, int, kwargs]`, or a constant entry.
fn leaf_kind(v: &Json) -> Option<Leaf> {
    let items = v.as_array()?;
    if !(3..=4).contains(&items.len()) {
        return None;
    }
    let name = items.first()?.as_str()?;
    if name == CONSTANT_VALUE && items.get(1)?.as_i64() == Some(-1) {
        return Some(Leaf::Constant);
    }
    Some(Leaf::Ref)
}

fn sorted_keys(o: &Object) -> Vec<String> {
    let mut keys: Vec<String> = o.keys().map(str::to_owned).collect();
    keys.sort_unstable();
    keys
}

struct Scan {
    refs: Vec<TensorRef>,
    first_kwargs: Option<Json>,
}

fn scan(v: &Json, path: &mut ConfigPath, out: &mut Scan) -> Result<()> {
    if let Some(kind) = leaf_kind(v) {
        if let Leaf::Ref = kind {
            out.refs.push(triple(v, path)?);
        }
        if out.first_kwargs.is_none() {
            out.first_kwargs = v.at(3).cloned();
        }
        return Ok(());
    }
    match v {
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push_index(i);
                let r = scan(item, path, out);
                path.pop();
                r?;
            }
            Ok(())
        }
        Json::Object(o) => {
            for k in sorted_keys(o) {
                path.push_key(&k);
                let r = match o.get(&k) {
                    Some(item) => scan(item, path, out),
                    None => Ok(()),
                };
                path.pop();
                r?;
            }
            Ok(())
        }
        other => Err(wrong(path, "a [layer, node, tensor, kwargs] entry", other)),
    }
}

/// Tensor triples inside kwargs (tf-keras `TFOpLambda` and friends pass tensors by keyword).
pub(crate) fn kwarg_refs(v: &Json, out: &mut Vec<TensorRef>) {
    if let Some(r) = as_kwarg_ref(v) {
        out.push(r);
        return;
    }
    match v {
        Json::Array(items) => items.iter().for_each(|i| kwarg_refs(i, out)),
        Json::Object(o) => {
            for k in sorted_keys(o) {
                if let Some(item) = o.get(&k) {
                    kwarg_refs(item, out);
                }
            }
        }
        _ => {}
    }
}

fn as_kwarg_ref(v: &Json) -> Option<TensorRef> {
    match v.as_array()? {
        [Json::String(layer), node, tensor] => {
            Some(TensorRef { layer: layer.clone(), node_index: node.as_usize()?, tensor_index: tensor.as_usize()? })
        }
        _ => None,
    }
}

fn fill_kwarg_refs<'a>(v: &mut Json, refs: &mut impl Iterator<Item = &'a TensorRef>) {
    if as_kwarg_ref(v).is_some() {
        if let (Some(r), Some(items)) = (refs.next(), v.as_array_mut()) {
            set_triple(items, r);
        }
        return;
    }
    match v {
        Json::Array(items) => items.iter_mut().for_each(|i| fill_kwarg_refs(i, refs)),
        Json::Object(o) => {
            for k in sorted_keys(o) {
                if let Some(item) = o.get_mut(&k) {
                    fill_kwarg_refs(item, refs);
                }
            }
        }
        _ => {}
    }
}

/// Reads one legacy node (a list, possibly nested, of entries).
pub(crate) fn parse_node(node: &Json, path: &mut ConfigPath) -> Result<Node> {
    let mut s = Scan { refs: Vec::new(), first_kwargs: None };
    scan(node, path, &mut s)?;
    let kwargs = s.first_kwargs.unwrap_or(Json::Object(Object::new()));
    if !matches!(kwargs, Json::Object(_) | Json::Null) {
        return Err(ConfigError::BadTensorRef { path: path.clone(), found: short_json(node) });
    }
    let mut kwarg_inputs = Vec::new();
    kwarg_refs(&kwargs, &mut kwarg_inputs);
    Ok(Node {
        inputs: s.refs,
        kwarg_inputs,
        args_structure: node.clone(),
        kwargs,
        format: NodeFormat::LegacyList,
        raw: node.clone(),
    })
}

fn count_refs(v: &Json) -> usize {
    match leaf_kind(v) {
        Some(Leaf::Ref) => 1,
        Some(Leaf::Constant) => 0,
        None => match v {
            Json::Array(items) => items.iter().map(count_refs).sum(),
            Json::Object(o) => o.iter().map(|(_, i)| count_refs(i)).sum(),
            _ => 0,
        },
    }
}

/// Puts refs into ref entries in order and, when `kwargs` is given, sets every entry's kwargs.
fn fill<'a>(v: &mut Json, refs: &mut impl Iterator<Item = &'a TensorRef>, kwargs: Option<&Json>) {
    if let Some(kind) = leaf_kind(v) {
        if let Some(items) = v.as_array_mut() {
            if let Leaf::Ref = kind
                && let Some(r) = refs.next()
            {
                set_triple(items, r);
            }
            if let Some(k) = kwargs {
                match items.get_mut(3) {
                    Some(slot) => *slot = k.clone(),
                    None => items.push(k.clone()),
                }
            }
        }
        return;
    }
    match v {
        Json::Array(items) => items.iter_mut().for_each(|i| fill(i, refs, kwargs)),
        Json::Object(o) => {
            for k in sorted_keys(o) {
                if let Some(item) = o.get_mut(&k) {
                    fill(item, refs, kwargs);
                }
            }
        }
        _ => {}
    }
}

/// Writes a legacy node back.
pub(crate) fn write_node(node: &Node) -> Json {
    let mut kwargs = node.kwargs.clone();
    let mut original_refs = Vec::new();
    kwarg_refs(&kwargs, &mut original_refs);
    if original_refs.len() == node.kwarg_inputs.len() {
        fill_kwarg_refs(&mut kwargs, &mut node.kwarg_inputs.iter());
    }
    // Entries get the kwargs only when they changed, so an untouched node is written as read
    // (Keras 1 entries have no kwargs element at all).
    let original_kwargs = parse_node(&node.args_structure, &mut ConfigPath::root()).map(|n| n.kwargs).ok();
    let new_kwargs = (original_kwargs.as_ref() != Some(&kwargs)).then_some(&kwargs);
    if count_refs(&node.args_structure) == node.inputs.len() {
        let mut out = node.args_structure.clone();
        fill(&mut out, &mut node.inputs.iter(), new_kwargs);
        out
    } else {
        Json::Array(
            node.inputs
                .iter()
                .map(|r| {
                    let mut t = triple_json(r);
                    if let Some(items) = t.as_array_mut() {
                        items.push(kwargs.clone());
                    }
                    t
                })
                .collect(),
        )
    }
}
