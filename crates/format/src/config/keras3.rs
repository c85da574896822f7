//! Keras 3 graph pieces: `{"args", "kwargs"}` nodes with `__keras_tensor__` markers, and
//! `input_layers`/`output_layers` structures (shared with Keras 1/2, which write lists of triples).
//!
//! Mirrors `keras/src/models/functional.py`: `serialize_node` writes each call as
//! `{"args": serialize_keras_object(args), "kwargs": ...}`, where every KerasTensor becomes
//! `{"class_name": "__keras_tensor__", "config": {"shape", "dtype", "keras_history": [layer, node,
//! tensor]}}`; `functional_from_config.map_tensors` treats a 3-element list whose first item is a
//! string as one tensor, and otherwise walks lists, tuples and dicts. Tensors are listed in the order
//! Keras's `tree.flatten` visits them: lists in order, dict values by sorted key.

use super::{ConfigError, ConfigPath, Node, NodeFormat, Result, TensorRef, short_json, wrong};
use crate::json::{Json, Object};

/// The marker class name of a serialized KerasTensor.
pub const KERAS_TENSOR: &str = "__keras_tensor__";

/// Keys of an object in the order `tree.flatten` visits them.
fn sorted_keys(o: &Object) -> Vec<&str> {
    let mut keys: Vec<&str> = o.keys().collect();
    keys.sort_unstable();
    keys
}

/// Reads `[name, node, tensor]` (extra trailing items are the caller's business).
pub(crate) fn triple(v: &Json, path: &ConfigPath) -> Result<TensorRef> {
    let bad = || ConfigError::BadTensorRef { path: path.clone(), found: short_json(v) };
    let items = v.as_array().ok_or_else(bad)?;
    match items {
        [Json::String(layer), node, tensor, ..] => Ok(TensorRef {
            layer: layer.clone(),
            node_index: node.as_usize().ok_or_else(bad)?,
            tensor_index: tensor.as_usize().ok_or_else(bad)?,
        }),
        _ => Err(bad()),
    }
}

fn is_triple_leaf(v: &Json) -> bool {
    matches!(v.as_array(), Some([Json::String(_), _, _]))
}

/// The tensors of an `input_layers`/`output_layers` value in flatten order.
pub(crate) fn io_refs(v: &Json, path: &mut ConfigPath) -> Result<Vec<TensorRef>> {
    let mut out = Vec::new();
    io_walk(v, path, &mut out)?;
    Ok(out)
}

fn io_walk(v: &Json, path: &mut ConfigPath, out: &mut Vec<TensorRef>) -> Result<()> {
    if is_triple_leaf(v) {
        out.push(triple(v, path)?);
        return Ok(());
    }
    match v {
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push_index(i);
                let r = io_walk(item, path, out);
                path.pop();
                r?;
            }
            Ok(())
        }
        Json::Object(o) => {
            for k in sorted_keys(o) {
                path.push_key(k);
                let r = match o.get(k) {
                    Some(item) => io_walk(item, path, out),
                    None => Ok(()),
                };
                path.pop();
                r?;
            }
            Ok(())
        }
        other => Err(wrong(path, "a [layer, node, tensor] triple or a list/dict of them", other)),
    }
}

/// `structure` with its triples replaced by `refs` in flatten order; when the counts differ, a
/// plain list of triples (which every Keras version reads).
pub(crate) fn fill_io(structure: &Json, refs: &[TensorRef]) -> Json {
    let mut count = 0usize;
    count_io(structure, &mut count);
    if count == refs.len() && !(refs.is_empty() && structure.is_null()) {
        let mut out = structure.clone();
        let mut it = refs.iter();
        fill_io_walk(&mut out, &mut it);
        out
    } else {
        Json::Array(refs.iter().map(triple_json).collect())
    }
}

fn count_io(v: &Json, count: &mut usize) {
    if is_triple_leaf(v) {
        *count += 1;
        return;
    }
    match v {
        Json::Array(items) => items.iter().for_each(|i| count_io(i, count)),
        Json::Object(o) => o.iter().for_each(|(_, i)| count_io(i, count)),
        _ => {}
    }
}

fn fill_io_walk<'a>(v: &mut Json, refs: &mut impl Iterator<Item = &'a TensorRef>) {
    if is_triple_leaf(v) {
        if let (Some(r), Some(items)) = (refs.next(), v.as_array_mut()) {
            set_triple(items, r);
        }
        return;
    }
    match v {
        Json::Array(items) => items.iter_mut().for_each(|i| fill_io_walk(i, refs)),
        Json::Object(o) => {
            let keys: Vec<String> = sorted_keys(o).into_iter().map(str::to_owned).collect();
            for k in keys {
                if let Some(item) = o.get_mut(&k) {
                    fill_io_walk(item, refs);
                }
            }
        }
        _ => {}
    }
}

/// Overwrites the first three items of a reference entry, keeping any fourth (kwargs).
pub(crate) fn set_triple(items: &mut Vec<Json>, r: &TensorRef) {
    let new = [Json::from(r.layer.as_str()), Json::from(r.node_index), Json::from(r.tensor_index)];
    for (i, value) in new.into_iter().enumerate() {
        match items.get_mut(i) {
            // Keep the original number text when the value is unchanged.
            Some(slot) if *slot == value => {}
            Some(slot) => *slot = value,
            None => items.push(value),
        }
    }
}

pub(crate) fn triple_json(r: &TensorRef) -> Json {
    let mut items = Vec::new();
    set_triple(&mut items, r);
    Json::Array(items)
}

fn is_keras_tensor(v: &Json) -> bool {
    v.get("class_name").and_then(Json::as_str) == Some(KERAS_TENSOR)
}

pub(crate) fn tensor_walk(v: &Json, path: &mut ConfigPath, out: &mut Vec<TensorRef>) -> Result<()> {
    if is_keras_tensor(v) {
        path.push_key("config");
        path.push_key("keras_history");
        let r = match v.get("config").and_then(|c| c.get("keras_history")) {
            Some(h) => triple(h, path).and_then(|t| {
                if h.as_array().is_some_and(|a| a.len() == 3) {
                    Ok(t)
                } else {
                    Err(ConfigError::BadTensorRef { path: path.clone(), found: short_json(h) })
                }
            }),
            None => {
                Err(ConfigError::BadTensorRef { path: path.clone(), found: "nothing (no keras_history)".to_owned() })
            }
        };
        path.pop();
        path.pop();
        out.push(r?);
        return Ok(());
    }
    match v {
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push_index(i);
                let r = tensor_walk(item, path, out);
                path.pop();
                r?;
            }
        }
        Json::Object(o) => {
            for k in sorted_keys(o) {
                path.push_key(k);
                let r = match o.get(k) {
                    Some(item) => tensor_walk(item, path, out),
                    None => Ok(()),
                };
                path.pop();
                r?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn count_tensors(v: &Json) -> usize {
    if is_keras_tensor(v) {
        return 1;
    }
    match v {
        Json::Array(items) => items.iter().map(count_tensors).sum(),
        Json::Object(o) => o.iter().map(|(_, i)| count_tensors(i)).sum(),
        _ => 0,
    }
}

fn fill_tensors<'a>(v: &mut Json, refs: &mut impl Iterator<Item = &'a TensorRef>) {
    if is_keras_tensor(v) {
        if let Some(r) = refs.next() {
            let history = v.get_mut("config").and_then(|c| c.get_mut("keras_history")).and_then(Json::as_array_mut);
            if let Some(items) = history {
                set_triple(items, r);
            }
        }
        return;
    }
    match v {
        Json::Array(items) => items.iter_mut().for_each(|i| fill_tensors(i, refs)),
        Json::Object(o) => {
            let keys: Vec<String> = sorted_keys(o).into_iter().map(str::to_owned).collect();
            for k in keys {
                if let Some(item) = o.get_mut(&k) {
                    fill_tensors(item, refs);
                }
            }
        }
        _ => {}
    }
}

/// A `__keras_tensor__` marker for a reference built in Rust (shape and dtype unknown).
pub fn keras_tensor_json(r: &TensorRef) -> Json {
    Json::object([
        ("class_name", Json::from(KERAS_TENSOR)),
        ("config", Json::object([("shape", Json::Null), ("dtype", Json::Null), ("keras_history", triple_json(r))])),
    ])
}

/// Reads one `{"args": [...], "kwargs": {...}}` node.
pub(crate) fn parse_node(node: &Json, path: &mut ConfigPath) -> Result<Node> {
    let obj = super::expect_object(node, path)?;
    let args = obj.get("args").cloned().unwrap_or(Json::Array(Vec::new()));
    let kwargs = obj.get("kwargs").cloned().unwrap_or(Json::Object(Object::new()));
    if !obj.contains_key("args") && !obj.contains_key("kwargs") {
        return Err(ConfigError::MissingKey { path: path.clone(), key: "args" });
    }
    let mut inputs = Vec::new();
    path.push_key("args");
    let r = tensor_walk(&args, path, &mut inputs);
    path.pop();
    r?;
    let mut kwarg_inputs = Vec::new();
    path.push_key("kwargs");
    let r = tensor_walk(&kwargs, path, &mut kwarg_inputs);
    path.pop();
    r?;
    Ok(Node { inputs, kwarg_inputs, args_structure: args, kwargs, format: NodeFormat::ArgsKwargs, raw: node.clone() })
}

/// Writes a Keras 3 node back.
pub(crate) fn write_node(node: &Node) -> Json {
    let mut out = node.raw.as_object().cloned().unwrap_or_default();
    let args = if count_tensors(&node.args_structure) == node.inputs.len() {
        let mut a = node.args_structure.clone();
        fill_tensors(&mut a, &mut node.inputs.iter());
        a
    } else {
        // Keras calls a layer with one tensor, or with a list of tensors as the first argument.
        let tensors: Vec<Json> = node.inputs.iter().map(keras_tensor_json).collect();
        match tensors.len() {
            1 => Json::Array(tensors),
            _ => Json::Array(vec![Json::Array(tensors)]),
        }
    };
    let mut kwargs = node.kwargs.clone();
    if count_tensors(&kwargs) == node.kwarg_inputs.len() {
        fill_tensors(&mut kwargs, &mut node.kwarg_inputs.iter());
    }
    out.insert("args", args);
    out.insert("kwargs", kwargs);
    Json::Object(out)
}
