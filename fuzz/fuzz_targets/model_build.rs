//! Structure-aware fuzzing of the layer engine: the input's bytes pick one layer class from every
//! family's `SUPPORTED` list (`strata_layers::supported_classes`, plus the legacy spellings), a
//! config object of keys Keras layers read (`units`, `filters`, `kernel_size`, `strides`,
//! `pool_size`, `size`, `target_shape`, `axis`, `cropping`, nested `layer`/`cell`, ...) with small,
//! zero, negative or huge values, a dialect, 0-4 weight tensors of small shapes, and 1-3 inputs of
//! small shapes (ramp values), optionally with a `[batch, time]` mask. Then `build_layer` and, if it
//! builds, `call` (which runs `forward_masked` / `forward`). Errors are fine; panics, hangs and
//! unbounded allocations are bugs.
#![no_main]

use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use strata_format::config::ConfigDialect;
use strata_format::json::Json;
use strata_layers::cfg::{Meta, inner_layer_json};
use strata_layers::{BuildCtx, CallArgs, build_layer, supported_classes};
use strata_tensor::Tensor;

/// Legacy spellings `legacy::normalize` maps (not in the families' lists).
const LEGACY: &[&str] = &["AtrousConvolution1D", "AtrousConvolution2D", "TimeDistributedDense", "Merge"];

/// Config keys layers read, each with the kind of value it usually holds.
const KEYS: &[&str] = &[
    "units",
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "dilation_rate",
    "pool_size",
    "size",
    "target_shape",
    "dims",
    "n",
    "axis",
    "cropping",
    "activation",
    "use_bias",
    "return_sequences",
    "return_state",
    "go_backwards",
    "data_format",
    "groups",
    "depth_multiplier",
    "input_dim",
    "output_dim",
    "mask_zero",
    "height",
    "width",
    "interpolation",
    "crop_to_aspect_ratio",
    "merge_mode",
    "epsilon",
    "center",
    "scale",
    "momentum",
    "unroll",
    "reset_after",
    "recurrent_activation",
    "implementation",
    "mean",
    "variance",
    "invert",
    "offset",
    "output_padding",
    "mask_value",
    "normalize",
    "axes",
    "keepdims",
    "stride",
    "subsample",
    "border_mode",
    "nb_filter",
    "nb_row",
    "nb_col",
    "filter_length",
    "output_dim",
    "pool_length",
    "length",
    "atrous_rate",
    "dim_ordering",
    "mode",
    "concat_axis",
    "dot_axes",
    "time_major",
    "stateful",
    "dropout",
    "recurrent_dropout",
    "input_length",
    "rate",
    "sparse",
    "dtype",
    "batch_shape",
    "batch_input_shape",
    "input_shape",
    "layer",
    "cell",
    "cells",
    "backward_layer",
    "use_depthwise_bias",
    "unit_forget_bias",
    "fill_mode",
    "pad_to_aspect_ratio",
    "output_mode",
    "pooling_mode",
];

const STRINGS: &[&str] = &[
    "valid",
    "same",
    "causal",
    "full",
    "channels_last",
    "channels_first",
    "relu",
    "linear",
    "tanh",
    "sigmoid",
    "softmax",
    "hard_sigmoid",
    "concat",
    "sum",
    "mul",
    "ave",
    "bilinear",
    "nearest",
    "bicubic",
    "th",
    "tf",
    "float32",
    "float16",
    "bfloat16",
    "mixed_float16",
    "int32",
    "",
];

fn int(u: &mut Unstructured<'_>) -> AResult<i64> {
    Ok(match u.int_in_range(0u8..=15)? {
        0 => 0,
        1 => -1,
        2 => -(u.int_in_range(2i64..=1000)?),
        3 => i64::MAX,
        4 => 1 << 31,
        5 => 1 << 20,
        6 => 70_000,
        7 => u.arbitrary::<i64>()?,
        _ => u.int_in_range(1i64..=6)?,
    })
}

fn value(u: &mut Unstructured<'_>, classes: &[&str], depth: u32) -> AResult<String> {
    Ok(match u.int_in_range(0u8..=11)? {
        0 => "null".into(),
        1 => u.arbitrary::<bool>()?.to_string(),
        2 => format!("{:?}", STRINGS[u.choose_index(STRINGS.len())?]),
        3 => ["0.5", "1e-3", "-2.5", "NaN", "Infinity", "1e300"][u.choose_index(6)?].into(),
        4 | 5 => {
            let n = u.int_in_range(0usize..=4)?;
            let items = (0..n).map(|_| int(u).map(|i| i.to_string())).collect::<AResult<Vec<_>>>()?;
            format!("[{}]", items.join(", "))
        }
        6 if depth < 2 => layer_json(u, classes, depth + 1)?,
        7 => {
            // pairs of pairs (cropping / padding)
            let (a, b, c, d) = (int(u)?, int(u)?, int(u)?, int(u)?);
            format!("[[{a}, {b}], [{c}, {d}]]")
        }
        8 if depth < 2 => format!("[{}]", layer_json(u, classes, depth + 1)?),
        _ => int(u)?.to_string(),
    })
}

fn config_json(u: &mut Unstructured<'_>, classes: &[&str], depth: u32) -> AResult<String> {
    let mut parts = vec![format!("\"name\": \"l{depth}\"")];
    let n = u.int_in_range(0usize..=8)?;
    for _ in 0..n {
        let key = KEYS[u.choose_index(KEYS.len())?];
        if parts.iter().any(|p| p.starts_with(&format!("\"{key}\""))) {
            continue;
        }
        parts.push(format!("\"{key}\": {}", value(u, classes, depth)?));
    }
    Ok(format!("{{{}}}", parts.join(", ")))
}

fn layer_json(u: &mut Unstructured<'_>, classes: &[&str], depth: u32) -> AResult<String> {
    let class = classes[u.choose_index(classes.len())?];
    Ok(format!("{{\"class_name\": \"{class}\", \"config\": {}}}", config_json(u, classes, depth)?))
}

/// A small shape: rank 0-5, dims 0-9, at most 4096 elements.
fn shape(u: &mut Unstructured<'_>, min_rank: usize) -> AResult<Vec<usize>> {
    let rank = u.int_in_range(min_rank..=5)?;
    let mut s = Vec::with_capacity(rank);
    let mut n = 1usize;
    for _ in 0..rank {
        let d = u.int_in_range(0usize..=9)?;
        if n.saturating_mul(d) > 4096 {
            s.push(1);
        } else {
            n *= d.max(1);
            s.push(d);
        }
    }
    Ok(s)
}

fn ramp(shape: &[usize], scale: f32) -> Option<Tensor> {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| ((i % 7) as f32 - 3.0) * scale).collect()).ok()
}

fn run(data: &[u8]) -> AResult<()> {
    let mut u = Unstructured::new(data);
    let mut classes: Vec<&str> = supported_classes().collect();
    classes.extend_from_slice(LEGACY);
    let text = layer_json(&mut u, &classes, 0)?;
    let Ok(json) = Json::parse(&text, &Default::default()) else { return Ok(()) };
    let meta = Meta { name: "fuzz".into(), class: "fuzz".into() };
    let Ok(layer) = inner_layer_json(&meta, &json, "layer") else { return Ok(()) };
    let dialect = [
        ConfigDialect::Keras3,
        ConfigDialect::TfKeras,
        ConfigDialect::Keras2,
        ConfigDialect::Keras1,
        ConfigDialect::Keras3LegacyH5,
    ][u.choose_index(5)?];
    let backend = if u.ratio(1u8, 8u8)? { Some("theano") } else { None };
    let ctx = BuildCtx { dialect, backend, keras_version: None };
    let nw = u.int_in_range(0usize..=4)?;
    let mut weights = Vec::with_capacity(nw);
    for k in 0..nw {
        let s = shape(&mut u, 0)?;
        if let Some(t) = ramp(&s, 0.1 / (k + 1) as f32) {
            weights.push(t);
        }
    }
    let debug = std::env::var_os("STRATA_FUZZ_DEBUG").is_some();
    if debug {
        let shapes: Vec<_> = weights.iter().map(|w| w.shape().to_vec()).collect();
        eprintln!("layer {text}\ndialect {dialect:?} backend {backend:?}\nweights {shapes:?}");
    }
    let Ok(Some(built)) = build_layer(&layer, weights, &ctx) else { return Ok(()) };
    let ni = u.int_in_range(1usize..=3)?;
    let first = shape(&mut u, 1)?;
    let mut inputs = Vec::with_capacity(ni);
    for k in 0..ni {
        // later inputs usually share the first one's shape (merge layers)
        let s = if k > 0 && u.ratio(3u8, 4u8)? { first.clone() } else { shape(&mut u, 1)? };
        if let Some(t) = ramp(&s, 0.25) {
            inputs.push(t);
        }
    }
    let masks: Vec<Option<Tensor>> = inputs
        .iter()
        .map(|x| {
            let s = x.shape();
            if s.len() >= 2 && u.ratio(1u8, 4u8).unwrap_or(false) {
                let n = s[0] * s[1];
                Tensor::from_vec(&s[..2], (0..n).map(|i| (i % 3 != 2) as u8 as f32).collect()).ok()
            } else {
                None
            }
        })
        .collect();
    let training = u.arbitrary::<bool>()?;
    if debug {
        let shapes: Vec<_> = inputs.iter().map(|w| w.shape().to_vec()).collect();
        let ms: Vec<_> = masks.iter().map(|m| m.as_ref().map(|m| m.shape().to_vec())).collect();
        eprintln!("inputs {shapes:?} masks {ms:?} training {training}");
    }
    let args = CallArgs { kw_tensors: &[], args: &Json::Null, kwargs: &Json::Null, training };
    let _ = built.call(&inputs, &masks, &args);
    let _ = built.forward(&inputs, training);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
