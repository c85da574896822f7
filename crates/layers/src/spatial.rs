//! Spatial layers: pooling 1D/2D/3D, global pooling (GlobalAveragePooling1D honors masks),
//! Cropping/ZeroPadding/UpSampling 1D/2D/3D (UpSampling2D nearest and bilinear), Flatten,
//! CenterCrop and Resizing, each in `channels_last` and `channels_first` where Keras has a
//! `data_format`.
//!
//! Formulas follow Keras 3 on the TensorFlow backend (`keras/src/layers/pooling`,
//! `keras/src/layers/reshaping`, `keras/src/layers/preprocessing/image_preprocessing`,
//! `keras/src/backend/tensorflow/{nn,image}.py`): pooling is `tf.nn.max_pool`/`avg_pool` (padded
//! cells never count), channels_first inputs are transposed to channels_last and back as Keras
//! does, and image resizing is `tf.image.resize` with half-pixel centers and no antialiasing
//! ([`strata_tensor::resize`]). None of these layers outputs a Keras mask.

use crate::cfg::{Meta, bool_of, f32_of, get, int_of};
use crate::error::{Error, Result};
use crate::layers::{BuildCtx, Layer, MAX_REPEAT, Masked};
use strata_format::config::LayerConfig;
use strata_format::json::Json;
use strata_tensor::{DType, Interpolation, PoolNdParams, Tensor};

/// Classes this family builds.
pub const SUPPORTED: &[&str] = &[
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "Flatten",
    "CenterCrop",
    "Resizing",
];

/// How `Resizing` matches the target aspect ratio before resizing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Aspect {
    /// Resize directly (the image may be distorted).
    Stretch,
    /// Crop the largest centred window with the target aspect ratio first.
    Crop,
    /// Pad both sides of one axis with `fill_value` to the target aspect ratio first.
    Pad(f32),
}

/// What a spatial layer computes. `first` is `data_format == "channels_first"`.
#[derive(Debug, Clone)]
enum Op {
    /// Max or average pooling over `params.pool.len()` spatial axes.
    Pool { max: bool, params: PoolNdParams, first: bool },
    /// Global max or average pooling over `nd` spatial axes.
    Global { max: bool, nd: usize, keepdims: bool, first: bool },
    /// Cropping: `(before, after)` per spatial axis.
    Crop { crops: Vec<(usize, usize)>, first: bool },
    /// Zero padding: `(before, after)` per spatial axis.
    Pad { pads: Vec<(usize, usize)>, first: bool },
    /// Nearest upsampling (repeat) by a factor per spatial axis.
    Repeat { size: Vec<usize>, first: bool },
    /// Bilinear upsampling of 2-D images by `[h, w]` factors.
    Bilinear { size: [usize; 2], first: bool },
    /// Flatten all but the batch axis (channels_first inputs are moved to channels_last first).
    Flatten { first: bool },
    /// `CenterCrop` to `[height, width]`.
    CenterCrop { size: [usize; 2], first: bool },
    /// `Resizing` to `[height, width]`.
    Resizing { size: [usize; 2], method: Interpolation, aspect: Aspect, first: bool },
}

/// A built spatial layer.
#[derive(Debug, Clone)]
pub struct Spatial {
    meta: Meta,
    /// Reduced compute precision from the layer's dtype policy: inputs and outputs are rounded to it.
    compute: Option<DType>,
    op: Op,
}

/// `true` for `channels_first`; Keras's default (`image_data_format`) is `channels_last`.
fn channels_first(m: &Meta, cfg: &Json) -> Result<bool> {
    match get(cfg, "data_format").and_then(Json::as_str) {
        None | Some("channels_last") => Ok(false),
        Some("channels_first") => Ok(true),
        Some(other) => {
            Err(m.cfg_err("data_format", format!("is `{other}`, expected `channels_last` or `channels_first`")))
        }
    }
}

/// A non-negative integer from JSON.
fn uint(v: &Json) -> Option<usize> {
    v.as_u64().and_then(|x| usize::try_from(x).ok())
}

/// `n` positive integers from an int or a list of `n` ints (Keras `standardize_tuple`);
/// `default` when the key is absent or null.
fn tuple_of(m: &Meta, cfg: &Json, key: &str, n: usize, default: Option<&[usize]>) -> Result<Vec<usize>> {
    let err = || m.cfg_err(key, format!("must be a positive integer or a list of {n} positive integers"));
    let v = match (get(cfg, key), default) {
        (None, Some(d)) => return Ok(d.to_vec()),
        (None, None) => return Err(m.cfg_err(key, "is missing")),
        (Some(v), _) => v,
    };
    let vals: Vec<usize> = match v.as_array() {
        Some(a) if a.len() == n => a.iter().map(uint).collect::<Option<_>>().ok_or_else(err)?,
        Some(_) => return Err(err()),
        None => vec![uint(v).ok_or_else(err)?; n],
    };
    if vals.contains(&0) {
        return Err(err());
    }
    Ok(vals)
}

/// `(before, after)` per spatial axis for `Cropping*D` / `ZeroPadding*D` (`key` is `cropping` or
/// `padding`). 1-D: an int or `[before, after]`; 2-D/3-D: an int, one int per axis, or one
/// `[before, after]` pair per axis. Each amount is at most [`MAX_REPEAT`].
fn amounts_of(m: &Meta, cfg: &Json, key: &str, nd: usize) -> Result<Vec<(usize, usize)>> {
    let shape = if nd == 1 {
        "an integer or two non-negative integers".to_string()
    } else {
        format!("an integer, {nd} integers or {nd} pairs of non-negative integers")
    };
    let err = || m.cfg_err(key, format!("must be {shape}"));
    let side = |v: &Json| -> Option<(usize, usize)> {
        match v.as_array() {
            Some([a, b]) => Some((uint(a)?, uint(b)?)),
            Some(_) => None,
            None => uint(v).map(|x| (x, x)),
        }
    };
    let v = get(cfg, key).ok_or_else(|| m.cfg_err(key, "is missing"))?;
    let out = if nd == 1 {
        vec![side(v).ok_or_else(err)?]
    } else {
        match v.as_array() {
            Some(a) if a.len() == nd => a.iter().map(side).collect::<Option<Vec<_>>>().ok_or_else(err)?,
            Some(_) => return Err(err()),
            None => vec![side(v).ok_or_else(err)?; nd],
        }
    };
    if out.iter().any(|&(a, b)| a > MAX_REPEAT || b > MAX_REPEAT) {
        return Err(
            m.cfg_err(key, format!("{out:?} has an amount over {MAX_REPEAT}, which strata refuses as a memory bomb"))
        );
    }
    Ok(out)
}

/// Upsampling factors, each at most [`MAX_REPEAT`].
fn factors_of(m: &Meta, cfg: &Json, nd: usize) -> Result<Vec<usize>> {
    let size = tuple_of(m, cfg, "size", nd, Some(&[2, 2, 2][..nd]))?;
    if size.iter().any(|&f| f > MAX_REPEAT) {
        return Err(m.cfg_err("size", format!("{size:?} is over {MAX_REPEAT}, which strata refuses as a memory bomb")));
    }
    Ok(size)
}

/// A target `height` or `width` of `CenterCrop` / `Resizing`.
fn extent_of(m: &Meta, cfg: &Json, key: &str) -> Result<usize> {
    let v = int_of(m, cfg, key, -1)?;
    usize::try_from(v)
        .ok()
        .filter(|&d| (1..=MAX_REPEAT).contains(&d))
        .ok_or_else(|| m.cfg_err(key, format!("is {v}; it must be an integer from 1 to {MAX_REPEAT}")))
}

/// The number of spatial axes a class name ends with (`...1D` -> 1).
fn dims_of(class: &str) -> usize {
    if class.ends_with("3D") {
        3
    } else if class.ends_with("2D") {
        2
    } else {
        1
    }
}

/// Builds a layer of this family; `Ok(None)` for classes it does not know.
pub fn build(layer: &LayerConfig, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Option<Box<dyn Layer>>> {
    let _ = ctx;
    let class = layer.class_name.as_str();
    if !SUPPORTED.contains(&class) {
        return Ok(None);
    }
    let m = Meta::of(layer);
    let cfg = &layer.config;
    if !w.is_empty() {
        return Err(Error::WeightCount { layer: m.name.clone(), expected: 0, got: w.len() });
    }
    let nd = dims_of(class);
    let op = match class {
        "MaxPooling1D" | "MaxPooling2D" | "MaxPooling3D" | "AveragePooling1D" | "AveragePooling2D"
        | "AveragePooling3D" | "MaxPool1D" | "MaxPool2D" | "MaxPool3D" | "AvgPool1D" | "AvgPool2D" | "AvgPool3D" => {
            let pool = tuple_of(&m, cfg, "pool_size", nd, Some(&[2, 2, 2][..nd]))?;
            let strides = tuple_of(&m, cfg, "strides", nd, Some(&pool))?;
            let same = match get(cfg, "padding").and_then(Json::as_str).map(str::to_ascii_lowercase).as_deref() {
                None | Some("valid") => false,
                Some("same") => true,
                Some(other) => return Err(m.cfg_err("padding", format!("is `{other}`, expected `valid` or `same`"))),
            };
            let params = PoolNdParams::new(&pool).with_strides(&strides).with_same(same);
            Op::Pool { max: class.starts_with("Max"), params, first: channels_first(&m, cfg)? }
        }
        "GlobalMaxPooling1D"
        | "GlobalMaxPooling2D"
        | "GlobalMaxPooling3D"
        | "GlobalAveragePooling1D"
        | "GlobalAveragePooling2D"
        | "GlobalAveragePooling3D"
        | "GlobalMaxPool1D"
        | "GlobalMaxPool2D"
        | "GlobalMaxPool3D"
        | "GlobalAvgPool1D"
        | "GlobalAvgPool2D"
        | "GlobalAvgPool3D" => Op::Global {
            max: class.starts_with("GlobalMax"),
            nd,
            keepdims: bool_of(&m, cfg, "keepdims", false)?,
            first: channels_first(&m, cfg)?,
        },
        // Cropping1D has no data_format in Keras; reading it anyway accepts only channels_last/first.
        "Cropping1D" | "Cropping2D" | "Cropping3D" => {
            Op::Crop { crops: amounts_of(&m, cfg, "cropping", nd)?, first: channels_first(&m, cfg)? }
        }
        "ZeroPadding1D" | "ZeroPadding2D" | "ZeroPadding3D" => {
            Op::Pad { pads: amounts_of(&m, cfg, "padding", nd)?, first: channels_first(&m, cfg)? }
        }
        "UpSampling1D" | "UpSampling3D" => {
            Op::Repeat { size: factors_of(&m, cfg, nd)?, first: channels_first(&m, cfg)? }
        }
        "UpSampling2D" => {
            let size = factors_of(&m, cfg, 2)?;
            let first = channels_first(&m, cfg)?;
            match get(cfg, "interpolation").and_then(Json::as_str).map(str::to_ascii_lowercase).as_deref() {
                None | Some("nearest") => Op::Repeat { size, first },
                Some("bilinear") => Op::Bilinear { size: [size[0], size[1]], first },
                Some(other) => {
                    return Err(m.cfg_err(
                        "interpolation",
                        format!("is `{other}`; strata implements `nearest` and `bilinear` only"),
                    ));
                }
            }
        }
        "Flatten" => Op::Flatten { first: channels_first(&m, cfg)? },
        "CenterCrop" => Op::CenterCrop {
            size: [extent_of(&m, cfg, "height")?, extent_of(&m, cfg, "width")?],
            first: channels_first(&m, cfg)?,
        },
        "Resizing" => {
            let method = match get(cfg, "interpolation").and_then(Json::as_str) {
                None | Some("bilinear") => Interpolation::Bilinear,
                Some("nearest") => Interpolation::Nearest,
                Some(other) => {
                    return Err(m.cfg_err(
                        "interpolation",
                        format!("is `{other}`; strata implements `bilinear` and `nearest` only"),
                    ));
                }
            };
            if bool_of(&m, cfg, "antialias", false)? {
                return Err(m.cfg_err("antialias", "is true; strata implements resizing without antialiasing only"));
            }
            let crop = bool_of(&m, cfg, "crop_to_aspect_ratio", false)?;
            let pad = bool_of(&m, cfg, "pad_to_aspect_ratio", false)?;
            let aspect = match (crop, pad) {
                (true, true) => {
                    return Err(m.cfg_err(
                        "pad_to_aspect_ratio",
                        "and `crop_to_aspect_ratio` are both true; Keras allows only one of them",
                    ));
                }
                (true, false) => Aspect::Crop,
                (false, true) => {
                    match get(cfg, "fill_mode").and_then(Json::as_str) {
                        None | Some("constant") => {}
                        Some(other) => {
                            return Err(m.cfg_err("fill_mode", format!("is `{other}`; Keras supports `constant` only")));
                        }
                    }
                    Aspect::Pad(f32_of(&m, cfg, "fill_value", 0.0)?)
                }
                (false, false) => Aspect::Stretch,
            };
            Op::Resizing {
                size: [extent_of(&m, cfg, "height")?, extent_of(&m, cfg, "width")?],
                method,
                aspect,
                first: channels_first(&m, cfg)?,
            }
        }
        _ => return Ok(None),
    };
    let compute = crate::cfg::compute_dtype(&m, cfg.get("dtype"))?;
    Ok(Some(Box::new(Spatial { meta: m, compute, op })))
}

/// The permutation moving axis 1 (channels) of a rank-`r` tensor to the end.
fn to_last(r: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..r).collect();
    if r > 2 {
        p.remove(1);
        p.push(1);
    }
    p
}

/// The permutation moving the last axis (channels) of a rank-`r` tensor to axis 1.
fn to_first(r: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..r).collect();
    if r > 2 {
        p.pop();
        p.insert(1, r - 1);
    }
    p
}

/// The axes of the `nd` spatial dimensions of a rank-`nd + 2` tensor.
fn spatial_axes(nd: usize, first: bool) -> std::ops::Range<usize> {
    if first { 2..nd + 2 } else { 1..nd + 1 }
}

impl Spatial {
    /// Checks that `x` has rank `nd + 2` (batch, `nd` spatial axes, channels).
    fn rank(&self, x: &Tensor, nd: usize, first: bool) -> Result<()> {
        if x.rank() == nd + 2 {
            return Ok(());
        }
        let (expected, layout) = match (nd, first) {
            (1, false) => ("3", "batch, steps, channels"),
            (1, true) => ("3", "batch, channels, steps"),
            (2, false) => ("4", "batch, height, width, channels"),
            (2, true) => ("4", "batch, channels, height, width"),
            (_, false) => ("5", "batch, depth, height, width, channels"),
            (_, true) => ("5", "batch, channels, depth, height, width"),
        };
        self.meta.t(Err(strata_tensor::Error::Rank { op: "input", expected, layout, shape: x.shape().to_vec() }))
    }

    /// Runs `f` on `x` in channels_last layout (transposing a channels_first `x` there and back).
    fn last(&self, x: &Tensor, first: bool, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        let m = &self.meta;
        if !first {
            return f(x);
        }
        let r = x.rank();
        let y = f(&m.t(x.permute(&to_last(r)))?)?;
        m.t(y.permute(&to_first(r)))
    }

    /// Rounds to the compute dtype (identity at full precision).
    fn rnd(&self, t: Tensor) -> Result<Tensor> {
        crate::cfg::round_to(&self.meta, t, self.compute)
    }

    /// `CenterCrop` / `Resizing` on a batch `[n, h, w, c]` (channels last).
    fn image(&self, x: &Tensor) -> Result<Tensor> {
        let m = &self.meta;
        let (h, w) = (x.shape().get(1).copied().unwrap_or(0), x.shape().get(2).copied().unwrap_or(0));
        match &self.op {
            Op::CenterCrop { size: [th, tw], .. } => {
                if h >= *th && w >= *tw {
                    let (t, l) = ((h - th) / 2, (w - tw) / 2);
                    let c = x.shape().get(3).copied().unwrap_or(0);
                    let n = x.shape().first().copied().unwrap_or(0);
                    return m.t(x.slice(&[(0, n), (t, t + th), (l, l + tw), (0, c)]));
                }
                // Keras's `smart_resize` with static sizes: Python float (f64) arithmetic
                let ch = (w.saturating_mul(*th) as f64 / *tw as f64) as usize;
                let cw = (h.saturating_mul(*tw) as f64 / *th as f64) as usize;
                let (ch, cw) = (ch.min(h).max(1), cw.min(w).max(1));
                let (t, l) = (h.saturating_sub(ch) as f64 / 2.0, w.saturating_sub(cw) as f64 / 2.0);
                let (t, l) = (t as usize, l as usize);
                let cropped = self.slice_hw(x, t, ch, l, cw)?;
                m.t(strata_tensor::resize(&cropped, [*th, *tw], Interpolation::Bilinear))
            }
            Op::Resizing { size: [th, tw], method, aspect, .. } => {
                // `keras/src/backend/tensorflow/image.py::resize`: f32 arithmetic on int32 shapes
                let ratio = |a: usize, b: usize, c: usize| (a.saturating_mul(b) as f32 / c as f32) as usize;
                let x = match aspect {
                    Aspect::Stretch => x.clone(),
                    Aspect::Crop => {
                        let ch = ratio(w, *th, *tw).min(h).max(1);
                        let cw = ratio(h, *tw, *th).min(w).max(1);
                        let (t, l) = (h.saturating_sub(ch) as f32 / 2.0, w.saturating_sub(cw) as f32 / 2.0);
                        let (t, l) = (t as usize, l as usize);
                        self.slice_hw(x, t, ch, l, cw)?
                    }
                    Aspect::Pad(fill) => {
                        let ph = ratio(w, *th, *tw).max(h);
                        let pw = ratio(h, *tw, *th).max(w);
                        // Keras pads `(padded - size) / 2` on both sides (an odd remainder is dropped)
                        let (t, l) = (ph.saturating_sub(h) as f32 / 2.0, pw.saturating_sub(w) as f32 / 2.0);
                        let (t, l) = (t as usize, l as usize);
                        m.t(x.pad(&[(0, 0), (t, t), (l, l), (0, 0)], *fill))?
                    }
                };
                m.t(strata_tensor::resize(&x, [*th, *tw], *method))
            }
            _ => Ok(x.clone()),
        }
    }

    /// Rows `t..t + ch` and columns `l..l + cw` of an NHWC batch.
    fn slice_hw(&self, x: &Tensor, t: usize, ch: usize, l: usize, cw: usize) -> Result<Tensor> {
        let s = x.shape();
        let (n, c) = (s.first().copied().unwrap_or(0), s.get(3).copied().unwrap_or(0));
        self.meta.t(x.slice(&[(0, n), (t, t + ch), (l, l + cw), (0, c)]))
    }

    fn run(&self, x: &Tensor) -> Result<Tensor> {
        let m = &self.meta;
        match &self.op {
            Op::Pool { max, params, first } => {
                self.rank(x, params.pool.len(), *first)?;
                self.last(x, *first, |x| {
                    m.t(match (*max, self.compute) {
                        (true, _) => strata_tensor::max_pool(x, params),
                        // TF averages half-precision tensors in half precision
                        (false, Some(d)) => strata_tensor::avg_pool_in(x, params, d),
                        (false, None) => strata_tensor::avg_pool(x, params),
                    })
                })
            }
            Op::Global { max, nd, keepdims, first } => {
                self.rank(x, *nd, *first)?;
                let axes: Vec<isize> = spatial_axes(*nd, *first).map(|a| a as isize).collect();
                m.t(if *max { x.max(Some(&axes), *keepdims) } else { x.mean(Some(&axes), *keepdims) })
            }
            Op::Crop { crops, first } => {
                self.rank(x, crops.len(), *first)?;
                let mut ranges: Vec<(usize, usize)> = x.shape().iter().map(|&d| (0, d)).collect();
                for (a, &(b, e)) in spatial_axes(crops.len(), *first).zip(crops) {
                    let d = x.shape().get(a).copied().unwrap_or(0);
                    if b.saturating_add(e) >= d {
                        return Err(m.cfg_err(
                            "cropping",
                            format!(
                                "{crops:?} crops {} of the {d} elements of axis {a} of input shape {:?}; Keras needs the \
                                 cropping to be smaller than the input",
                                b.saturating_add(e),
                                x.shape()
                            ),
                        ));
                    }
                    if let Some(r) = ranges.get_mut(a) {
                        *r = (b, d - e);
                    }
                }
                m.t(x.slice(&ranges))
            }
            Op::Pad { pads, first } => {
                self.rank(x, pads.len(), *first)?;
                let mut all = vec![(0, 0); x.rank()];
                for (a, &p) in spatial_axes(pads.len(), *first).zip(pads) {
                    if let Some(e) = all.get_mut(a) {
                        *e = p;
                    }
                }
                m.t(x.pad(&all, 0.0))
            }
            Op::Repeat { size, first } => {
                self.rank(x, size.len(), *first)?;
                let mut y = x.clone();
                for (a, &f) in spatial_axes(size.len(), *first).zip(size) {
                    if f == 1 {
                        continue;
                    }
                    let d = y.shape().get(a).copied().unwrap_or(0);
                    let len = d.checked_mul(f).ok_or_else(|| m.cfg_err("size", "overflows the output size"))?;
                    let idx: Vec<f32> = (0..d).flat_map(|i| std::iter::repeat_n(i as f32, f)).collect();
                    let idx = m.t(Tensor::from_vec(&[len], idx))?;
                    y = m.t(y.take(&idx, a as isize))?;
                }
                Ok(y)
            }
            Op::Bilinear { size: [fh, fw], first } => {
                self.rank(x, 2, *first)?;
                self.last(x, *first, |x| {
                    let s = x.shape();
                    let (h, w) = (s.get(1).copied().unwrap_or(0), s.get(2).copied().unwrap_or(0));
                    let (Some(oh), Some(ow)) = (h.checked_mul(*fh), w.checked_mul(*fw)) else {
                        return Err(m.cfg_err("size", "overflows the output size"));
                    };
                    m.t(strata_tensor::resize(x, [oh, ow], Interpolation::Bilinear))
                })
            }
            Op::Flatten { first } => {
                let r = x.rank();
                let b = x.shape().first().copied().unwrap_or(1);
                let x = if *first && r > 2 { m.t(x.permute(&to_last(r)))? } else { x.clone() };
                let rest = x.shape().iter().skip(1).try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(0);
                m.t(x.reshape(&[b, rest]))
            }
            Op::CenterCrop { first, .. } | Op::Resizing { first, .. } => {
                // rank 4 is a batch of images; rank 3 a single image (Keras accepts both)
                let single = x.rank() == 3;
                let batch = if single { m.t(x.unsqueeze(0))? } else { x.clone() };
                self.rank(&batch, 2, *first)?;
                let y = self.last(&batch, *first, |b| self.image(b))?;
                if single {
                    let shape = y.shape().get(1..).map(<[usize]>::to_vec).unwrap_or_default();
                    m.t(y.reshape(&shape))
                } else {
                    Ok(y)
                }
            }
        }
    }

    /// `GlobalAveragePooling1D` with a `[batch, steps]` mask: the mean over unmasked steps
    /// (Keras: `sum(where(mask, x, 0)) / sum(mask)`; all steps masked gives NaN as in Keras).
    fn masked_mean(&self, x: &Tensor, mask: &Tensor, keepdims: bool, first: bool) -> Result<Tensor> {
        let m = &self.meta;
        self.rank(x, 1, first)?;
        let s = x.shape();
        let (b, t, c) = if first { (s[0], s[2], s[1]) } else { (s[0], s[1], s[2]) };
        if mask.shape() != [b, t] {
            return Err(m.cfg_err(
                "mask",
                format!(
                    "has shape {:?}, but the input {:?} needs a [batch, steps] mask of {:?}",
                    mask.shape(),
                    s,
                    [b, t]
                ),
            ));
        }
        let (xs, ms) = (x.as_slice(), mask.as_slice());
        let mut out = vec![0f32; b * c];
        for (i, dst) in out.chunks_exact_mut(c.max(1)).enumerate().take(b) {
            let row = &ms[i * t..][..t];
            let count = row.iter().filter(|&&v| v != 0.0).count() as f32;
            for (step, _) in row.iter().enumerate().filter(|(_, v)| **v != 0.0) {
                for (ch, d) in dst.iter_mut().enumerate() {
                    let at = if first { (i * c + ch) * t + step } else { (i * t + step) * c + ch };
                    *d += xs[at];
                }
            }
            dst.iter_mut().for_each(|d| *d /= count);
        }
        let shape = match (keepdims, first) {
            (false, _) => vec![b, c],
            (true, false) => vec![b, 1, c],
            (true, true) => vec![b, c, 1],
        };
        let y = m.t(Tensor::from_vec(&shape, out))?;
        // each unmasked step gets its row's gradient over the count; masked steps none
        let ms = mask.detach();
        m.t(crate::grad::custom("masked_mean", &[x], y, move |ins, _y, g| {
            let x = &ins[0];
            let (ms, gs) = (ms.as_slice(), g.as_slice());
            let mut d = vec![0f32; x.len()];
            for i in 0..b {
                let row = &ms[i * t..][..t];
                let count = row.iter().filter(|&&v| v != 0.0).count() as f32;
                for (step, _) in row.iter().enumerate().filter(|(_, v)| **v != 0.0) {
                    for ch in 0..c {
                        let at = if first { (i * c + ch) * t + step } else { (i * t + step) * c + ch };
                        d[at] = gs[i * c + ch] / count;
                    }
                }
            }
            Ok(vec![Some(Tensor::from_vec(x.shape(), d)?)])
        }))
    }
}

impl Layer for Spatial {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = self.rnd(self.meta.one(inputs)?.clone())?;
        Ok(vec![self.rnd(self.run(&x)?)?])
    }
    /// Keras: only `GlobalAveragePooling1D` reads a mask; no layer of this family outputs one
    /// (pooling, cropping, padding, upsampling and flattening drop it; `GlobalMaxPooling1D`
    /// ignores it).
    fn forward_masked(&self, inputs: &[Tensor], masks: &[Option<Tensor>], training: bool) -> Result<Masked> {
        let mask = masks.first().cloned().flatten();
        let y = match (&self.op, mask) {
            (Op::Global { max: false, nd: 1, keepdims, first }, Some(mask)) => {
                let x = self.rnd(self.meta.one(inputs)?.clone())?;
                self.rnd(self.masked_mean(&x, &mask, *keepdims, *first)?)?
            }
            _ => return Ok((self.forward(inputs, training)?, vec![None])),
        };
        Ok((vec![y], vec![None]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_format::config::ConfigDialect;
    use strata_format::json::JsonLimits;

    fn layer_of(class: &str, config: &str) -> LayerConfig {
        let json = Json::parse(config, &JsonLimits::default()).unwrap();
        let name = json.get("name").and_then(Json::as_str).unwrap_or("l").to_string();
        LayerConfig {
            class_name: class.into(),
            module: None,
            registered_name: None,
            name,
            config: json.clone(),
            inbound_nodes: Vec::new(),
            build_config: None,
            shared_object_id: None,
            nested: None,
            branches: Vec::new(),
            raw: json,
        }
    }

    fn make(class: &str, config: &str) -> Result<Box<dyn Layer>> {
        build(&layer_of(class, config), Vec::new(), &BuildCtx::new(ConfigDialect::Keras3)).map(|l| l.unwrap())
    }

    fn data(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|i| ((i * 37) % 23) as f32 * 0.5 - 5.0).collect()).unwrap()
    }

    fn run(l: &dyn Layer, x: &Tensor) -> Tensor {
        l.forward(std::slice::from_ref(x), false).unwrap().remove(0)
    }

    #[test]
    fn masked_global_average_excludes_masked_steps() {
        let x = data(&[2, 4, 3]);
        let mask = Tensor::from_vec(&[2, 4], vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]).unwrap();
        // reference: the plain mean over the kept steps of each sample
        let keep = [vec![0usize, 2, 3], vec![2]];
        let mut want = Vec::new();
        for (b, steps) in keep.iter().enumerate() {
            let idx = Tensor::from_vec(&[steps.len()], steps.iter().map(|&s| s as f32).collect()).unwrap();
            let sample = x.slice(&[(b, b + 1), (0, 4), (0, 3)]).unwrap().take(&idx, 1).unwrap();
            want.extend(sample.mean(Some(&[1]), false).unwrap().to_vec());
        }
        let want = Tensor::from_vec(&[2, 3], want).unwrap();
        let gap = make("GlobalAveragePooling1D", r#"{"name": "gap"}"#).unwrap();
        let (y, m) = gap.forward_masked(std::slice::from_ref(&x), &[Some(mask.clone())], false).unwrap();
        assert!(y[0].all_close(&want, 1e-6, 1e-6), "{:?} vs {want:?}", y[0]);
        assert!(m[0].is_none(), "global pooling outputs no mask");
        // channels_first with keepdims on the transposed input gives the same numbers
        let cf = make("GlobalAvgPool1D", r#"{"name": "gap_cf", "data_format": "channels_first", "keepdims": true}"#)
            .unwrap();
        let xt = x.permute(&[0, 2, 1]).unwrap();
        let (y, _) = cf.forward_masked(&[xt], &[Some(mask.clone())], false).unwrap();
        assert_eq!(y[0].shape(), &[2, 3, 1]);
        assert!(y[0].reshape(&[2, 3]).unwrap().all_close(&want, 1e-6, 1e-6));
        // GlobalMaxPooling1D ignores the mask (Keras 3 never passes it one) and drops it
        let gmp = make("GlobalMaxPooling1D", r#"{"name": "gmp"}"#).unwrap();
        let (y, m) = gmp.forward_masked(std::slice::from_ref(&x), &[Some(mask.clone())], false).unwrap();
        assert_eq!(y[0], x.max(Some(&[1]), false).unwrap());
        assert!(m[0].is_none());
        // a mask of the wrong shape is an error naming it
        let bad = Tensor::ones(&[2, 3]).unwrap();
        let err = gap.forward_masked(&[x], &[Some(bad)], false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer `gap`: config key `mask` has shape [2, 3], but the input [2, 4, 3] needs a [batch, steps] mask of \
             [2, 4]; fix the model config"
        );
    }

    #[test]
    fn no_spatial_layer_passes_a_mask_on() {
        // pooling with a unit window keeps the steps axis, yet Keras drops the mask
        let l = make("MaxPooling1D", r#"{"name": "p", "pool_size": 1}"#).unwrap();
        let x = data(&[2, 4, 3]);
        let (y, m) =
            l.forward_masked(std::slice::from_ref(&x), &[Some(Tensor::ones(&[2, 4]).unwrap())], false).unwrap();
        assert_eq!(y[0], x);
        assert!(m[0].is_none());
    }

    #[test]
    fn channels_first_matches_permuted_channels_last() {
        let cases: &[(&str, &str, usize)] = &[
            ("MaxPooling2D", r#""pool_size": [3, 2], "strides": [2, 1], "padding": "same""#, 2),
            ("AveragePooling3D", r#""pool_size": 2, "strides": [1, 2, 1], "padding": "same""#, 3),
            ("AveragePooling1D", r#""pool_size": 3, "strides": 2, "padding": "valid""#, 1),
            ("UpSampling2D", r#""size": [2, 3], "interpolation": "bilinear""#, 2),
            ("UpSampling3D", r#""size": [1, 2, 3]"#, 3),
            ("Cropping3D", r#""cropping": [[1, 0], 1, [0, 2]]"#, 3),
            ("ZeroPadding2D", r#""padding": [[1, 2], [0, 1]]"#, 2),
            ("Resizing", r#""height": 3, "width": 7, "crop_to_aspect_ratio": true"#, 2),
            ("CenterCrop", r#""height": 6, "width": 2"#, 2),
        ];
        for &(class, extra, nd) in cases {
            let shape: Vec<usize> = [2, 5, 4, 3, 2][..nd + 1].iter().copied().chain([3]).collect();
            let x = data(&shape);
            let last = make(class, &format!(r#"{{"name": "a", {extra}}}"#)).unwrap();
            let first = make(class, &format!(r#"{{"name": "b", "data_format": "channels_first", {extra}}}"#)).unwrap();
            let want = run(last.as_ref(), &x).permute(&to_first(nd + 2)).unwrap();
            let got = run(first.as_ref(), &x.permute(&to_first(nd + 2)).unwrap());
            assert_eq!(got, want, "{class}");
        }
    }

    #[test]
    fn flatten_channels_first_moves_channels_last() {
        let x = data(&[2, 3, 2, 2]);
        let f = make("Flatten", r#"{"name": "f", "data_format": "channels_first"}"#).unwrap();
        let want = x.permute(&[0, 2, 3, 1]).unwrap().reshape(&[2, 12]).unwrap();
        assert_eq!(run(f.as_ref(), &x), want);
        let f = make("Flatten", r#"{"name": "f"}"#).unwrap();
        assert_eq!(run(f.as_ref(), &Tensor::zeros(&[3]).unwrap()).shape(), &[3, 1]);
    }

    #[test]
    fn upsampling_repeats_and_center_crop_centres() {
        let x = data(&[1, 2, 3]);
        let u = make("UpSampling1D", r#"{"name": "u", "size": 2}"#).unwrap();
        let y = run(u.as_ref(), &x);
        assert_eq!(y.shape(), &[1, 4, 3]);
        for t in 0..4 {
            assert_eq!(
                y.slice(&[(0, 1), (t, t + 1), (0, 3)]).unwrap().to_vec(),
                x.slice(&[(0, 1), (t / 2, t / 2 + 1), (0, 3)]).unwrap().to_vec()
            );
        }
        let c = make("CenterCrop", r#"{"name": "c", "height": 2, "width": 1}"#).unwrap();
        let x = data(&[1, 5, 4, 1]);
        // (5 - 2) // 2 = 1 and (4 - 1) // 2 = 1
        assert_eq!(run(c.as_ref(), &x), x.slice(&[(0, 1), (1, 3), (1, 2), (0, 1)]).unwrap());
        // a single image (rank 3) is accepted as Keras does
        let single = run(c.as_ref(), &x.reshape(&[5, 4, 1]).unwrap());
        assert_eq!(single.shape(), &[2, 1, 1]);
    }

    #[test]
    fn config_errors_name_the_key_and_the_fix() {
        let err = |class: &str, cfg: &str| make(class, cfg).err().expect("error").to_string();
        assert_eq!(
            err("UpSampling2D", r#"{"name": "u", "interpolation": "lanczos3"}"#),
            "layer `u`: config key `interpolation` is `lanczos3`; strata implements `nearest` and `bilinear` only; fix \
             the model config"
        );
        assert_eq!(
            err("UpSampling3D", r#"{"name": "u", "size": [2, 70000, 1]}"#),
            "layer `u`: config key `size` [2, 70000, 1] is over 65536, which strata refuses as a memory bomb; fix the \
             model config"
        );
        assert_eq!(
            err("ZeroPadding3D", r#"{"name": "z", "padding": [1, 2]}"#),
            "layer `z`: config key `padding` must be an integer, 3 integers or 3 pairs of non-negative integers; fix the \
             model config"
        );
        assert!(err("ZeroPadding1D", r#"{"name": "z", "padding": 100000}"#).contains("memory bomb"));
        assert!(err("MaxPooling2D", r#"{"name": "p", "pool_size": [2, 0]}"#).contains("`pool_size` must be"));
        assert!(err("MaxPooling1D", r#"{"name": "p", "padding": "causal"}"#).contains("`padding` is `causal`"));
        assert!(err("Flatten", r#"{"name": "f", "data_format": "NCHW"}"#).contains("`data_format` is `NCHW`"));
        assert!(err("Resizing", r#"{"name": "r", "height": 2, "width": 0}"#).contains("`width` is 0"));
        assert!(err("Resizing", r#"{"name": "r", "height": 2, "width": 2, "antialias": true}"#).contains("antialias"));
        assert!(
            err("Resizing", r#"{"name": "r", "height": 2, "width": 2, "interpolation": "bicubic"}"#)
                .contains("bicubic")
        );
        assert!(
            err(
                "Resizing",
                r#"{"name": "r", "height": 2, "width": 2, "crop_to_aspect_ratio": true, "pad_to_aspect_ratio": true}"#
            )
            .contains("only one of them")
        );
        let w = build(
            &layer_of("MaxPooling2D", r#"{"name": "p"}"#),
            vec![Tensor::zeros(&[1]).unwrap()],
            &BuildCtx::new(ConfigDialect::Keras3),
        );
        assert!(matches!(w, Err(Error::WeightCount { expected: 0, got: 1, .. })));
    }

    #[test]
    fn input_errors_name_the_layer() {
        let c = make("Cropping2D", r#"{"name": "c", "cropping": [[2, 1], 0]}"#).unwrap();
        let e = c.forward(&[data(&[1, 3, 4, 1])], false).unwrap_err().to_string();
        assert!(e.starts_with("layer `c`: config key `cropping`"), "{e}");
        assert!(e.contains("Keras needs the cropping to be smaller than the input"), "{e}");
        let p = make("AveragePooling3D", r#"{"name": "p", "pool_size": 2}"#).unwrap();
        let e = p.forward(&[data(&[1, 4, 4, 1])], false).unwrap_err().to_string();
        assert_eq!(
            e,
            "layer `p` (AveragePooling3D) failed: input: expected a tensor of rank 5 (batch, depth, height, width, \
             channels) but got shape [1, 4, 4, 1]"
        );
        let p = make("MaxPooling1D", r#"{"name": "p", "pool_size": 5}"#).unwrap();
        assert!(p.forward(&[data(&[1, 4, 2])], false).is_err());
        // empty images are refused, not a panic
        for (class, cfg) in [
            ("CenterCrop", r#"{"name": "c", "height": 3, "width": 2}"#),
            ("Resizing", r#"{"name": "r", "height": 3, "width": 2, "crop_to_aspect_ratio": true}"#),
            ("UpSampling2D", r#"{"name": "u", "interpolation": "bilinear"}"#),
        ] {
            let l = make(class, cfg).unwrap();
            assert!(l.forward(&[Tensor::zeros(&[1, 0, 4, 1]).unwrap()], false).is_err(), "{class}");
        }
    }

    #[test]
    fn unknown_classes_are_not_built() {
        let l = build(&layer_of("Dense", r#"{"name": "d"}"#), Vec::new(), &BuildCtx::new(ConfigDialect::Keras3));
        assert!(l.unwrap().is_none());
    }
}
