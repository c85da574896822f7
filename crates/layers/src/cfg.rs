//! Config readers shared by every layer family: typed access to a layer's config JSON with
//! errors that name the layer and the key.

use crate::error::{Error, Result};
use strata_format::json::Json;
use strata_tensor::{DType, Padding, Tensor};

/// What every built-in layer carries for errors.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Layer name.
    pub name: String,
    /// Keras class name.
    pub class: String,
}

impl Meta {
    /// The meta of a layer config.
    pub fn of(layer: &strata_format::config::LayerConfig) -> Meta {
        Meta { name: layer.name.clone(), class: layer.class_name.clone() }
    }
    /// An arity error for this layer.
    pub fn arity(&self, expected: &str, got: usize) -> Error {
        Error::Arity { layer: self.name.clone(), class: self.class.clone(), expected: expected.into(), got }
    }
    pub fn t<T>(&self, r: std::result::Result<T, strata_tensor::Error>) -> Result<T> {
        r.map_err(|source| Error::Tensor {
            layer: self.name.clone(),
            class: self.class.clone(),
            source: Box::new(source),
        })
    }
    pub fn one<'a>(&self, inputs: &'a [Tensor]) -> Result<&'a Tensor> {
        match inputs {
            [x] => Ok(x),
            _ => Err(Error::Arity {
                layer: self.name.clone(),
                class: self.class.clone(),
                expected: "1".into(),
                got: inputs.len(),
            }),
        }
    }
    pub fn cfg_err(&self, key: &str, problem: impl Into<String>) -> Error {
        Error::Config { layer: self.name.clone(), key: key.into(), problem: problem.into() }
    }
}

/// `[(a, b), (c, d)]` from an int, a pair of ints or a pair of pairs (Keras `cropping`/`padding`).
pub fn pads_of(m: &Meta, cfg: &Json, key: &str) -> Result<[(usize, usize); 2]> {
    let err = || m.cfg_err(key, "must be an integer, two integers or two pairs of non-negative integers");
    let u = |v: &Json| v.as_u64().and_then(|x| usize::try_from(x).ok());
    let side = |v: &Json| -> Option<(usize, usize)> {
        match v.as_array() {
            Some([a, b]) => Some((u(a)?, u(b)?)),
            Some(_) => None,
            None => u(v).map(|x| (x, x)),
        }
    };
    let v = get(cfg, key).ok_or_else(err)?;
    match v.as_array() {
        Some([h, w]) => Ok([side(h).ok_or_else(err)?, side(w).ok_or_else(err)?]),
        Some(_) => Err(err()),
        None => side(v).map(|p| [p, p]).ok_or_else(err),
    }
}

pub fn get<'a>(cfg: &'a Json, key: &str) -> Option<&'a Json> {
    cfg.get(key).filter(|v| !v.is_null())
}

pub fn f32_of(m: &Meta, cfg: &Json, key: &str, default: f32) -> Result<f32> {
    match get(cfg, key) {
        None => Ok(default),
        Some(v) => v.as_f64().map(|f| f as f32).ok_or_else(|| m.cfg_err(key, "is not a number")),
    }
}

pub fn bool_of(m: &Meta, cfg: &Json, key: &str, default: bool) -> Result<bool> {
    match get(cfg, key) {
        None => Ok(default),
        Some(v) => v.as_bool().ok_or_else(|| m.cfg_err(key, "is not a boolean")),
    }
}

pub fn int_of(m: &Meta, cfg: &Json, key: &str, default: isize) -> Result<isize> {
    match get(cfg, key) {
        None => Ok(default),
        Some(v) => v.as_i64().and_then(|i| isize::try_from(i).ok()).ok_or_else(|| m.cfg_err(key, "is not an integer")),
    }
}

/// An int or a list of ints.
pub fn ints_of(m: &Meta, cfg: &Json, key: &str) -> Result<Option<Vec<isize>>> {
    let Some(v) = get(cfg, key) else { return Ok(None) };
    if let Some(i) = v.as_i64() {
        return isize::try_from(i).map(|i| Some(vec![i])).map_err(|_| m.cfg_err(key, "is out of range"));
    }
    let arr = v.as_array().ok_or_else(|| m.cfg_err(key, "is neither an integer nor a list of integers"))?;
    arr.iter()
        .map(|e| e.as_i64().and_then(|i| isize::try_from(i).ok()).ok_or_else(|| m.cfg_err(key, "holds a non-integer")))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

pub fn pair_of(m: &Meta, cfg: &Json, key: &str, default: [usize; 2]) -> Result<[usize; 2]> {
    match ints_of(m, cfg, key)? {
        None => Ok(default),
        Some(v) => {
            let pos = |i: isize| usize::try_from(i).ok().filter(|&u| u > 0);
            match v.as_slice() {
                [a] => pos(*a).map(|a| [a, a]),
                [a, b] => pos(*a).zip(pos(*b)).map(|(a, b)| [a, b]),
                _ => None,
            }
            .ok_or_else(|| m.cfg_err(key, "must be one or two positive integers"))
        }
    }
}

pub fn padding_of(m: &Meta, cfg: &Json) -> Result<Padding> {
    match get(cfg, "padding").or_else(|| get(cfg, "border_mode")).and_then(Json::as_str) {
        None | Some("valid") => Ok(Padding::Valid),
        Some("same") => Ok(Padding::Same),
        Some(other) => Err(m.cfg_err("padding", format!("is `{other}`, expected `valid` or `same`"))),
    }
}

pub fn channels_last(m: &Meta, cfg: &Json) -> Result<()> {
    match get(cfg, "data_format").and_then(Json::as_str) {
        None | Some("channels_last") => Ok(()),
        Some(other) => Err(m.cfg_err("data_format", format!("is `{other}`; strata runs channels_last only"))),
    }
}

pub fn weights_n(m: &Meta, w: &[Tensor], expected: usize) -> Result<()> {
    if w.len() != expected {
        return Err(Error::WeightCount { layer: m.name.clone(), expected, got: w.len() });
    }
    Ok(())
}

/// The layer config nested under `key` (`layer` of `TimeDistributed`/`Bidirectional`, a cell of
/// `RNN`): `{"class_name": ..., "config": {...}}` as a [`LayerConfig`] without graph nodes.
pub fn inner_layer(m: &Meta, cfg: &Json, key: &str) -> Result<strata_format::config::LayerConfig> {
    inner_layer_json(m, get(cfg, key).ok_or_else(|| m.cfg_err(key, "is missing"))?, key)
}

/// [`inner_layer`] of a JSON value already picked out (an element of a `cells` list).
pub fn inner_layer_json(m: &Meta, v: &Json, key: &str) -> Result<strata_format::config::LayerConfig> {
    let class_name =
        v.get("class_name").and_then(Json::as_str).ok_or_else(|| m.cfg_err(key, "has no `class_name`"))?.to_string();
    let config = v.get("config").cloned().unwrap_or(Json::Null);
    let name =
        config.get("name").and_then(Json::as_str).map(str::to_string).unwrap_or_else(|| format!("{}/inner", m.name));
    Ok(strata_format::config::LayerConfig {
        class_name,
        module: v.get("module").and_then(Json::as_str).map(str::to_string),
        registered_name: v.get("registered_name").and_then(Json::as_str).map(str::to_string),
        name,
        config,
        inbound_nodes: Vec::new(),
        build_config: v.get("build_config").cloned(),
        shared_object_id: None,
        nested: None,
        branches: Vec::new(),
        raw: v.clone(),
    })
}

/// The reduced compute dtype of a dtype policy (a string or a Keras 3 `DTypePolicy` object); `None`
/// for float32/float64 (computed in f32) and for integer policies.
pub fn compute_dtype(m: &Meta, v: Option<&Json>) -> Result<Option<DType>> {
    let name = match v {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::String(s)) => s.as_str(),
        Some(o) => match o.get("config").and_then(|c| c.get("name")).and_then(Json::as_str) {
            Some(s) => s,
            None => return Err(m.cfg_err("dtype", "is neither a dtype name nor a DTypePolicy")),
        },
    };
    Ok(match name {
        "float16" | "mixed_float16" => Some(DType::F16),
        "bfloat16" | "mixed_bfloat16" => Some(DType::BF16),
        _ => None,
    })
}

/// Rounds `t` to a reduced compute dtype (identity for `None`), as the layer's policy computes.
pub fn round_to(m: &Meta, t: Tensor, d: Option<DType>) -> Result<Tensor> {
    let Some(d) = d else { return Ok(t) };
    let bytes = m.t(t.to_le_bytes(d))?;
    let y = m.t(Tensor::from_le_bytes(d, t.shape(), &bytes))?;
    // the rounding is a cast: the gradient passes straight through (TensorFlow's `Cast` gradient)
    m.t(crate::grad::cast_through("round_to", &t, y, d))
}
