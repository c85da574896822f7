//! The `Layer` trait, the build dispatch over layer families, and the core built-in layers.

use crate::activation::{self, Activation};
use crate::cfg::{Meta, bool_of, f32_of, get, int_of, ints_of, weights_n};
use crate::error::{Error, Result};
use std::borrow::Cow;
use strata_format::config::{ConfigDialect, LayerConfig};
use strata_format::json::Json;
use strata_tensor::{DType, Tensor};

/// The largest repeat or upsampling factor read from a config (UpSampling `size`, RepeatVector `n`; the
/// spatial family also bounds padding amounts and resize targets by it).
pub const MAX_REPEAT: usize = 1 << 16;

/// Outputs of a layer call with their Keras masks (one per output, `None` where unmasked).
pub type Masked = (Vec<Tensor>, Vec<Option<Tensor>>);

/// A layer that can run inference.
pub trait Layer: Send + Sync {
    /// The layer's name in its model.
    fn name(&self) -> &str;
    /// The Keras class name.
    fn class_name(&self) -> &str;
    /// Runs the layer on its call's inputs; `training` selects training behaviour (dropout etc.).
    fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>>;
    /// Runs the layer with Keras masks: `masks` has one entry per input (`None` where unmasked; a
    /// mask is a 0/1 f32 tensor, usually `[batch, time]`). Returns the outputs and their masks.
    ///
    /// The default runs [`Layer::forward`] and passes the first input's mask on to each output whose
    /// leading dimensions still match it (Keras's pass-through for layers with `supports_masking`);
    /// layers that consume masks (RNNs, attention, global pooling) or create them (Embedding with
    /// `mask_zero`, Masking) override it.
    fn forward_masked(&self, inputs: &[Tensor], masks: &[Option<Tensor>], training: bool) -> Result<Masked> {
        Ok(pass_masks(self.forward(inputs, training)?, masks))
    }

    /// Runs one call of a functional graph: positional tensors, their masks (explicit `mask=`
    /// tensors where the config passes them, else those carried from the producers) and the rest
    /// of the call ([`CallArgs`]). The default refuses keyword tensors (naming them) and runs
    /// [`Layer::forward_masked`]; layers that take keyword tensors or call constants override it.
    fn call(&self, inputs: &[Tensor], masks: &[Option<Tensor>], args: &CallArgs<'_>) -> Result<Masked> {
        if let Some((k, _, _)) = args.kw_tensors.first() {
            return Err(Error::Keyword {
                layer: self.name().to_string(),
                class: self.class_name().to_string(),
                keyword: k.clone(),
            });
        }
        self.forward_masked(inputs, masks, args.training)
    }

    /// Takes (and clears) the variable updates that training-mode forwards made since the last
    /// call: BatchNormalization's new moving statistics. Each entry is `(path, [(weight index,
    /// new value)])`: the path of the updated layer relative to this one (empty for this layer
    /// itself; `inner/bn` inside a nested model) and indices into the layer's weights in Keras
    /// order. The values are detached (no tape). A trainer writes them into its non-trainable
    /// variables after the step. The default has none.
    fn take_state_updates(&self) -> Vec<StateUpdate> {
        Vec::new()
    }
}

/// One layer's variable updates from training-mode forwards: its path (relative to the layer
/// asked) and `(weight index in Keras order, new value)` pairs. See [`Layer::take_state_updates`].
pub type StateUpdate = (String, Vec<(usize, Tensor)>);

/// The default mask propagation of [`Layer::forward_masked`]: the first input's mask goes to
/// each output whose leading dimensions still match it.
fn pass_masks(outs: Vec<Tensor>, masks: &[Option<Tensor>]) -> Masked {
    let mask = masks.first().cloned().flatten();
    let out_masks = outs
        .iter()
        .map(|o| {
            mask.as_ref().filter(|m| m.rank() <= o.rank() && o.shape().get(..m.rank()) == Some(m.shape())).cloned()
        })
        .collect();
    (outs, out_masks)
}

/// What one call passes a layer besides its positional tensors and their masks.
#[derive(Debug, Clone, Copy)]
pub struct CallArgs<'a> {
    /// Tensors passed by keyword, with the keyword (`value`, `key`, `attention_mask`,
    /// `initial_state`, ...). Masks passed as `mask=` are not here: they arrive as the masks.
    /// Each with its Keras mask (`None` where unmasked).
    pub kw_tensors: &'a [(String, Tensor, Option<Tensor>)],
    /// The call's positional arguments as written (Keras 3 `args`, with constants such as the
    /// `0.0` of `ops.not_equal(x, 0.0)` and `__keras_tensor__` markers for the tensors); `Null`
    /// for Sequential models and legacy configs.
    pub args: &'a Json,
    /// The call's keyword arguments as written (`training`, `use_causal_mask`, ...; tf-keras:
    /// the kwargs of the inbound entry); `Null` when none.
    pub kwargs: &'a Json,
    /// Training mode.
    pub training: bool,
}

impl CallArgs<'_> {
    /// The keyword tensor passed as `name`.
    pub fn kw(&self, name: &str) -> Option<&Tensor> {
        self.kw_tensors.iter().find(|(k, _, _)| k == name).map(|(_, t, _)| t)
    }

    /// The keyword tensor passed as `name`, with its mask.
    pub fn kw_masked(&self, name: &str) -> Option<(&Tensor, Option<&Tensor>)> {
        self.kw_tensors.iter().find(|(k, _, _)| k == name).map(|(_, t, m)| (t, m.as_ref()))
    }
}

/// What a layer build may need to know about the file it comes from.
#[derive(Debug, Clone, Copy)]
pub struct BuildCtx<'a> {
    /// The config dialect (Keras 1/2/tf.keras/Keras 3): picks legacy defaults such as `hard_sigmoid`.
    pub dialect: ConfigDialect,
    /// The backend that wrote the file (`theano` means convolution kernels need flipping).
    pub backend: Option<&'a str>,
    /// The Keras version that wrote the file, when recorded.
    pub keras_version: Option<&'a str>,
}

impl<'a> BuildCtx<'a> {
    /// A context with only a dialect (no backend or version recorded).
    pub fn new(dialect: ConfigDialect) -> BuildCtx<'a> {
        BuildCtx { dialect, backend: None, keras_version: None }
    }
}

/// An extension point for layer classes the engine does not implement (custom classes from a
/// registry such as `strata-registry`). [`crate::Model::build_with_resolver`] asks it first for
/// every plain layer (Keras looks up custom objects before its own classes); a layer it
/// [`resolves`](LayerResolver::resolves) is built by it, never by the built-in families.
pub trait LayerResolver: Sync {
    /// Whether this resolver builds `layer` (by its registered or class name).
    fn resolves(&self, layer: &LayerConfig) -> bool;
    /// Builds `layer` from its config (as stored: not normalized) and its weight tensors in the
    /// order the file binds them (Keras order). Only called when [`LayerResolver::resolves`] is true.
    fn build(&self, layer: &LayerConfig, weights: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Box<dyn Layer>>;
    /// A custom activation function registered under `name` (`activation="package>name"` in a
    /// built-in layer's config). The default knows none.
    fn activation(&self, name: &str) -> Option<crate::activation::ActivationFn> {
        let _ = name;
        None
    }
}

/// A family of layers: the classes it builds and its builder. The builder gets a config already
/// normalized by [`crate::legacy::normalize`] and the layer's weight tensors in Keras order.
struct Family {
    supported: &'static [&'static str],
    build: fn(&LayerConfig, Vec<Tensor>, &BuildCtx<'_>) -> Result<Option<Box<dyn Layer>>>,
    /// Keras 3 operation nodes (`module` `keras.src.ops.*`), whose class names collide with layers'.
    ops: bool,
}

fn build_core(layer: &LayerConfig, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Option<Box<dyn Layer>>> {
    Ok(build(layer, w, ctx.dialect)?.map(|b| Box::new(b) as Box<dyn Layer>))
}

const FAMILIES: &[Family] = &[
    Family { supported: SUPPORTED, build: build_core, ops: false },
    Family { supported: crate::conv::SUPPORTED, build: crate::conv::build, ops: false },
    Family { supported: crate::spatial::SUPPORTED, build: crate::spatial::build, ops: false },
    Family { supported: crate::recurrent::SUPPORTED, build: crate::recurrent::build, ops: false },
    Family { supported: crate::attention::SUPPORTED, build: crate::attention::build, ops: false },
    Family { supported: crate::ops::SUPPORTED, build: crate::ops::build, ops: true },
];

/// The family that builds `class` from `module` (a `keras.src.ops.*` module selects the ops family).
fn family_of(class: &str, module: Option<&str>) -> Option<&'static Family> {
    let ops = module.is_some_and(crate::ops::is_op_module);
    FAMILIES.iter().find(|f| f.ops == ops && f.supported.contains(&class))
}

/// Whether strata can build a layer of this class (Keras 3 names and the legacy spellings that
/// [`crate::legacy::normalize`] maps to them).
pub fn is_supported(class: &str) -> bool {
    is_supported_in(class, None)
}

/// [`is_supported`] for a layer entry with its Keras 3 `module`: `keras.src.ops.*` entries are
/// operation nodes ([`crate::ops`]), looked up among the ops, not the layers.
pub fn is_supported_in(class: &str, module: Option<&str>) -> bool {
    if module.is_some_and(crate::ops::is_op_module) {
        return family_of(class, module).is_some();
    }
    // a legacy spelling is supported when the class it maps to is
    let class = crate::legacy::renamed(class).unwrap_or(class);
    family_of(class, None).is_some()
}

/// Every class name some family builds (Keras 3 names as the families list them; legacy spellings
/// that [`crate::legacy::normalize`] maps are not repeated here). For fuzzing and tooling.
pub fn supported_classes() -> impl Iterator<Item = &'static str> {
    FAMILIES.iter().flat_map(|f| f.supported.iter().copied())
}

/// Builds any supported layer from its config and its weight tensors in the order the file binds
/// them. Legacy configs and weight layouts (Keras 1 names, Theano kernels, CuDNN weights) are
/// normalized first. Returns `Ok(None)` when no family implements the class.
pub fn build_layer(layer: &LayerConfig, w: Vec<Tensor>, ctx: &BuildCtx<'_>) -> Result<Option<Box<dyn Layer>>> {
    let (layer, w): (Cow<'_, LayerConfig>, Vec<Tensor>) = crate::legacy::normalize(layer, w, ctx)?;
    match family_of(&layer.class_name, layer.module.as_deref()) {
        Some(f) => (f.build)(&layer, w, ctx),
        // an unknown op: its own error, naming the op with its module
        None if layer.module.as_deref().is_some_and(crate::ops::is_op_module) => crate::ops::build(&layer, w, ctx),
        None => Ok(None),
    }
}

/// The typed body of a built-in layer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Kind {
    /// Input placeholder / identity (`InputLayer`, `Dropout` and other inference-time no-ops).
    Identity,
    /// `Dropout`: identity at inference; in training, zeroes each element with probability
    /// `rate` and scales the rest by `1 / (1 - rate)` (strata's own random stream).
    Dropout { rate: f32 },
    /// `Activation`
    Activation(Activation),
    /// `Dense`
    Dense { kernel: Tensor, bias: Option<Tensor>, activation: Activation },
    /// `Reshape` (target shape without batch; -1 allowed once)
    Reshape(Vec<isize>),
    /// `BatchNormalization` folded to `x * mul + add` along `axes` (`mul`/`add` have the shape of
    /// those axes): the inference path. `train` is set for a trainable layer: in training mode it
    /// normalizes with the batch statistics and records the moving-statistic updates.
    BatchNorm { axes: Vec<isize>, mul: Tensor, add: Tensor, train: Option<Box<BatchNormTraining>> },
    /// `LayerNormalization`; `rms_scaling` (Keras 3) scales by the variance without centering
    LayerNorm { axes: Vec<isize>, epsilon: f32, gamma: Option<Tensor>, beta: Option<Tensor>, rms_scaling: bool },
    /// Elementwise merge layers
    Merge(MergeOp),
    /// `Concatenate`
    Concatenate(isize),
    /// `Rescaling`: `x * scale + offset`
    Rescaling { scale: Tensor, offset: Tensor },
    /// `Permute`: 1-based dims without the batch axis
    Permute(Vec<usize>),
    /// `RepeatVector`
    RepeatVector(usize),
    /// `UnitNormalization` over `axes`
    UnitNorm(Vec<isize>),
    /// `GroupNormalization` over the last axis
    GroupNorm { groups: usize, epsilon: f32, gamma: Option<Tensor>, beta: Option<Tensor> },
    /// `Normalization` (preprocessing): `(x - mean) / max(sqrt(variance), 1e-7)`, or the inverse
    Normalization { mean: Tensor, variance: Tensor, invert: bool },
    /// `Dot`: Keras `batch_dot` over `axes` (one per input, negative counted from the end)
    Dot { axes: [isize; 2], normalize: bool },
}

/// What a trainable `BatchNormalization` needs in training mode (Keras 3 `call` with
/// `training and self.trainable`): batch mean and biased variance over every axis but the
/// normalized ones, `y = gamma * (x - mean) / sqrt(var + epsilon) + beta` computed as
/// `tf.nn.batch_normalization` does (`x * inv + (beta - mean * inv)`, `inv = rsqrt(var + eps) *
/// gamma`), and `moving = moving * momentum + batch * (1 - momentum)` for both statistics.
#[derive(Debug)]
pub struct BatchNormTraining {
    /// `epsilon`
    pub epsilon: f32,
    /// `momentum` (as the config stores it; `1 - momentum` is formed in f64 like Python does)
    pub momentum: f64,
    /// `gamma` when `scale`
    pub gamma: Option<Tensor>,
    /// `beta` when `center`
    pub beta: Option<Tensor>,
    /// The stored moving mean and variance.
    pub moving_mean: Tensor,
    /// See `moving_mean`.
    pub moving_variance: Tensor,
    /// Index of `moving_mean` in the layer's weights (Keras order); `moving_variance` follows it.
    pub stats_index: usize,
    /// The statistics after the training forwards since the last
    /// [`Layer::take_state_updates`] (mean, variance).
    pending: std::sync::Mutex<Option<(Tensor, Tensor)>>,
}

impl Clone for BatchNormTraining {
    /// A copy without pending updates.
    fn clone(&self) -> BatchNormTraining {
        BatchNormTraining {
            epsilon: self.epsilon,
            momentum: self.momentum,
            gamma: self.gamma.clone(),
            beta: self.beta.clone(),
            moving_mean: self.moving_mean.clone(),
            moving_variance: self.moving_variance.clone(),
            stats_index: self.stats_index,
            pending: std::sync::Mutex::new(None),
        }
    }
}

impl BatchNormTraining {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Tensor, Tensor)>> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The training-mode output for `x` (already checked against the weights' shape); records the
    /// new moving statistics (a second training call before they are taken, as a shared layer
    /// makes, updates from the first call's values, as Keras's assignments do).
    fn forward(&self, m: &Meta, x: &Tensor, axes: &[isize]) -> Result<Tensor> {
        let norm = m.t(strata_tensor::shape::normalize_axes("axis", axes, x.shape()))?;
        let reduce: Vec<isize> = (0..x.rank()).filter(|a| !norm.contains(a)).map(|a| a as isize).collect();
        if reduce.is_empty() {
            return Err(m.cfg_err(
                "axis",
                format!("leaves no axis to take batch statistics over for the input of shape {:?}", x.shape()),
            ));
        }
        // tf.nn.moments: the variance of x around the (gradient-stopped) mean
        let mean = m.t(x.mean(Some(&reduce), true))?;
        let var = m.t(m.t(x.sub(&mean.detach()))?.square().mean(Some(&reduce), true))?;
        let mut inv = m.t(var.add(&Tensor::scalar(self.epsilon)))?.rsqrt();
        if let Some(g) = &self.gamma {
            inv = m.t(inv.mul(&m.t(along(g, axes, x.shape()))?))?;
        }
        let mut add = m.t(mean.mul(&inv))?.neg();
        if let Some(b) = &self.beta {
            add = m.t(add.add(&m.t(along(b, axes, x.shape()))?))?;
        }
        let y = m.t(m.t(x.mul(&inv))?.add(&add))?;

        let stat_shape = self.moving_mean.shape().to_vec();
        let (bm, bv) = (m.t(mean.detach().reshape(&stat_shape))?, m.t(var.detach().reshape(&stat_shape))?);
        let (keep, take) = (self.momentum as f32, (1.0 - self.momentum) as f32);
        let mut pending = self.lock();
        let (old_m, old_v) =
            pending.take().unwrap_or_else(|| (self.moving_mean.detach(), self.moving_variance.detach()));
        let new_m = m.t(old_m.scale(keep).add(&bm.scale(take)))?;
        let new_v = m.t(old_v.scale(keep).add(&bv.scale(take)))?;
        *pending = Some((new_m, new_v));
        Ok(y)
    }

    fn take(&self) -> Option<Vec<(usize, Tensor)>> {
        let (mean, var) = self.lock().take()?;
        Some(vec![(self.stats_index, mean), (self.stats_index + 1, var)])
    }
}

/// Elementwise merge operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOp {
    /// `Add`
    Add,
    /// `Subtract` (exactly two inputs)
    Subtract,
    /// `Multiply`
    Multiply,
    /// `Average`
    Average,
    /// `Maximum`
    Maximum,
    /// `Minimum`
    Minimum,
}

/// A built-in layer.
#[derive(Debug, Clone)]
pub struct Builtin {
    meta: Meta,
    /// Reduced compute precision from the layer's dtype policy (`float16`, `mixed_float16`,
    /// `bfloat16`, `mixed_bfloat16`): inputs, intermediate results and outputs are rounded to it.
    pub compute: Option<DType>,
    /// The typed config and weights.
    pub kind: Kind,
}

/// Class names the core [`build`] knows.
pub const SUPPORTED: &[&str] = &[
    "InputLayer",
    "Dense",
    "Activation",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Reshape",
    "BatchNormalization",
    "LayerNormalization",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Rescaling",
    "Permute",
    "RepeatVector",
    "UnitNormalization",
    "GroupNormalization",
    "Normalization",
    "Dot",
];

/// `x / sqrt(max(sum(x^2 over axes), 1e-12))`
fn l2_normalize(x: &Tensor, axes: &[isize]) -> std::result::Result<Tensor, strata_tensor::Error> {
    let ss = x.square().sum(Some(axes), true)?;
    x.mul(&ss.maximum(&Tensor::scalar(1e-12))?.rsqrt())
}

/// Builds a built-in layer from its config and its tensors in Keras order.
/// Returns `Ok(None)` when the class is not implemented.
pub fn build(layer: &LayerConfig, w: Vec<Tensor>, dialect: ConfigDialect) -> Result<Option<Builtin>> {
    let m = Meta::of(layer);
    let cfg = &layer.config;
    let act = |m: &Meta| activation::parse(&m.name, get(cfg, "activation"), dialect);
    let kind = match layer.class_name.as_str() {
        "Dropout" => {
            weights_n(&m, &w, 0)?;
            let rate = cfg.get("rate").and_then(Json::as_f64).unwrap_or(0.0) as f32;
            if cfg.get("noise_shape").is_some_and(|n| !n.is_null()) {
                // a broadcast mask: identity at inference, refused in training by `training_unsupported`
                Kind::Identity
            } else {
                Kind::Dropout { rate }
            }
        }
        "InputLayer" | "SpatialDropout1D" | "SpatialDropout2D" | "SpatialDropout3D" | "GaussianNoise"
        | "GaussianDropout" | "AlphaDropout" => {
            weights_n(&m, &w, 0)?;
            Kind::Identity
        }
        "Activation" => {
            weights_n(&m, &w, 0)?;
            Kind::Activation(act(&m)?)
        }
        "Dense" => {
            let use_bias = bool_of(&m, cfg, "use_bias", bool_of(&m, cfg, "bias", true)?)?;
            weights_n(&m, &w, if use_bias { 2 } else { 1 })?;
            let mut it = w.into_iter();
            let kernel = it.next().ok_or_else(|| m.cfg_err("units", "has no kernel"))?;
            Kind::Dense { kernel, bias: it.next(), activation: act(&m)? }
        }
        "Reshape" => {
            let t = ints_of(&m, cfg, "target_shape")?.ok_or_else(|| m.cfg_err("target_shape", "is missing"))?;
            Kind::Reshape(t)
        }
        "BatchNormalization" => {
            let center = bool_of(&m, cfg, "center", true)?;
            let scale = bool_of(&m, cfg, "scale", true)?;
            let eps = f32_of(&m, cfg, "epsilon", 1e-3)?;
            // tf-keras accepts a list of axes; Keras 3's `synchronized` only matters in training.
            let axes = ints_of(&m, cfg, "axis")?.unwrap_or_else(|| vec![-1]);
            if axes.is_empty() {
                return Err(m.cfg_err("axis", "is an empty list"));
            }
            weights_n(&m, &w, 2 + usize::from(center) + usize::from(scale))?;
            // gamma, beta, moving mean and variance: one shape (the sizes of the normalized axes)
            let n = w.last().map(|t| t.shape().to_vec()).unwrap_or_default();
            if let Some(bad) = w.iter().find(|t| t.shape() != n.as_slice()) {
                let shapes: Vec<&[usize]> = w.iter().map(Tensor::shape).collect();
                return Err(m.cfg_err(
                    "axis",
                    format!(
                        "needs weights of one shape (the sizes of the normalized axes), but the file binds shapes {shapes:?} (bad: {:?})",
                        bad.shape()
                    ),
                ));
            }
            let stats_index = w.len().saturating_sub(2);
            let mut it = w.into_iter();
            let gamma = if scale { it.next() } else { None };
            let beta = if center { it.next() } else { None };
            let (Some(mean), Some(var)) = (it.next(), it.next()) else {
                return Err(m.cfg_err("axis", "has no moving statistics"));
            };
            // a frozen layer runs in inference mode even in training (Keras 3)
            let train = if layer.trainable() {
                let momentum = match get(cfg, "momentum") {
                    None => 0.99,
                    Some(v) => v.as_f64().ok_or_else(|| m.cfg_err("momentum", "is not a number"))?,
                };
                Some(Box::new(BatchNormTraining {
                    epsilon: eps,
                    momentum,
                    gamma: gamma.clone(),
                    beta: beta.clone(),
                    moving_mean: mean.clone(),
                    moving_variance: var.clone(),
                    stats_index,
                    pending: std::sync::Mutex::new(None),
                }))
            } else {
                None
            };
            let mut inv = m.t(var.add(&Tensor::scalar(eps)))?.rsqrt();
            if let Some(g) = gamma {
                inv = m.t(inv.mul(&g))?;
            }
            let mut add = m.t(mean.mul(&inv))?.neg();
            if let Some(b) = beta {
                add = m.t(add.add(&b))?;
            }
            Kind::BatchNorm { axes, mul: inv, add, train }
        }
        "LayerNormalization" => {
            let center = bool_of(&m, cfg, "center", true)?;
            let scale = bool_of(&m, cfg, "scale", true)?;
            // Keras 3.15 `rms_scaling`: gamma exists when `scale or rms_scaling`, beta only without it.
            let rms_scaling = bool_of(&m, cfg, "rms_scaling", false)?;
            let (scale, center) = (scale || rms_scaling, center && !rms_scaling);
            let epsilon = f32_of(&m, cfg, "epsilon", 1e-3)?;
            let axes = ints_of(&m, cfg, "axis")?.unwrap_or_else(|| vec![-1]);
            weights_n(&m, &w, usize::from(center) + usize::from(scale))?;
            let mut it = w.into_iter();
            let gamma = if scale { it.next() } else { None };
            let beta = if center { it.next() } else { None };
            Kind::LayerNorm { axes, epsilon, gamma, beta, rms_scaling }
        }
        "Add" => Kind::Merge(MergeOp::Add),
        "Subtract" => Kind::Merge(MergeOp::Subtract),
        "Multiply" => Kind::Merge(MergeOp::Multiply),
        "Average" => Kind::Merge(MergeOp::Average),
        "Maximum" => Kind::Merge(MergeOp::Maximum),
        "Minimum" => Kind::Merge(MergeOp::Minimum),
        "Concatenate" => Kind::Concatenate(int_of(&m, cfg, "axis", -1)?),
        "Rescaling" => {
            let num = |key: &str, default: f32| -> Result<Tensor> {
                match get(cfg, key) {
                    None => Ok(Tensor::scalar(default)),
                    Some(Json::Array(a)) => {
                        let v = a
                            .iter()
                            .map(|e| e.as_f64().map(|f| f as f32).ok_or_else(|| m.cfg_err(key, "holds a non-number")))
                            .collect::<Result<Vec<_>>>()?;
                        m.t(Tensor::from_vec(&[v.len()], v))
                    }
                    Some(v) => {
                        v.as_f64().map(|f| Tensor::scalar(f as f32)).ok_or_else(|| m.cfg_err(key, "is not a number"))
                    }
                }
            };
            Kind::Rescaling { scale: num("scale", 1.0)?, offset: num("offset", 0.0)? }
        }
        "Permute" => {
            let dims = ints_of(&m, cfg, "dims")?.ok_or_else(|| m.cfg_err("dims", "is missing"))?;
            let mut sorted: Vec<isize> = dims.clone();
            sorted.sort_unstable();
            if sorted.iter().enumerate().any(|(i, &d)| usize::try_from(d).ok() != Some(i + 1)) {
                return Err(m.cfg_err("dims", format!("{dims:?} is not a permutation of 1..={}", dims.len())));
            }
            Kind::Permute(dims.iter().filter_map(|&d| usize::try_from(d).ok()).collect())
        }
        "RepeatVector" => {
            let n = usize::try_from(int_of(&m, cfg, "n", -1)?)
                .map_err(|_| m.cfg_err("n", "must be a non-negative integer"))?;
            if n > MAX_REPEAT {
                return Err(m.cfg_err("n", format!("is {n}, over {MAX_REPEAT}, which strata refuses as a memory bomb")));
            }
            Kind::RepeatVector(n)
        }
        "UnitNormalization" => Kind::UnitNorm(ints_of(&m, cfg, "axis")?.unwrap_or_else(|| vec![-1])),
        "GroupNormalization" => {
            if int_of(&m, cfg, "axis", -1)? != -1 {
                return Err(
                    m.cfg_err("axis", "is not -1; strata implements GroupNormalization over the last axis only")
                );
            }
            let groups = usize::try_from(int_of(&m, cfg, "groups", 32)?)
                .ok()
                .filter(|&g| g > 0)
                .ok_or_else(|| m.cfg_err("groups", "must be a positive integer"))?;
            let center = bool_of(&m, cfg, "center", true)?;
            let scale = bool_of(&m, cfg, "scale", true)?;
            weights_n(&m, &w, usize::from(center) + usize::from(scale))?;
            let mut it = w.into_iter();
            let gamma = if scale { it.next() } else { None };
            let beta = if center { it.next() } else { None };
            Kind::GroupNorm { groups, epsilon: f32_of(&m, cfg, "epsilon", 1e-3)?, gamma, beta }
        }
        "Normalization" => {
            let invert = bool_of(&m, cfg, "invert", false)?;
            if get(cfg, "mean").is_some() || get(cfg, "variance").is_some() {
                return Err(m.cfg_err("mean", "is set in the config; strata supports adapted (stored) statistics only"));
            }
            // Stored variables: mean, variance, count.
            if w.len() != 3 {
                return Err(Error::WeightCount { layer: m.name.clone(), expected: 3, got: w.len() });
            }
            let mut it = w.into_iter();
            let (Some(mean), Some(variance)) = (it.next(), it.next()) else {
                return Err(m.cfg_err("mean", "has no stored statistics"));
            };
            Kind::Normalization { mean, variance, invert }
        }
        "Dot" => {
            let axes = match ints_of(&m, cfg, "axes")?.ok_or_else(|| m.cfg_err("axes", "is missing"))?.as_slice() {
                [a] => [*a, *a],
                [a, b] => [*a, *b],
                other => return Err(m.cfg_err("axes", format!("is {other:?}; expected an integer or a pair"))),
            };
            Kind::Dot { axes, normalize: bool_of(&m, cfg, "normalize", false)? }
        }
        _ => return Ok(None),
    };
    let compute = crate::cfg::compute_dtype(&m, layer.config.get("dtype"))?;
    Ok(Some(Builtin { meta: m, kind, compute }))
}

impl Builtin {
    /// Rounds to the compute dtype (identity at full precision).
    fn rnd(&self, t: Tensor) -> Result<Tensor> {
        crate::cfg::round_to(&self.meta, t, self.compute)
    }
}

/// `v` (shaped like the `axes` of `x`) reshaped to broadcast against `x`: `x`'s sizes at `axes`,
/// 1 elsewhere.
fn along(v: &Tensor, axes: &[isize], x: &[usize]) -> std::result::Result<Tensor, strata_tensor::Error> {
    let norm = strata_tensor::shape::normalize_axes("batch_normalization", axes, x)?;
    let shape: Vec<usize> = x.iter().enumerate().map(|(i, &d)| if norm.contains(&i) { d } else { 1 }).collect();
    v.reshape(&shape)
}

impl Layer for Builtin {
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn class_name(&self) -> &str {
        &self.meta.class
    }
    fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let m = &self.meta;
        let rounded;
        let inputs = if self.compute.is_some() {
            rounded = inputs.iter().map(|t| self.rnd(t.clone())).collect::<Result<Vec<_>>>()?;
            rounded.as_slice()
        } else {
            inputs
        };
        let y = match &self.kind {
            Kind::Identity => m.one(inputs)?.clone(),
            Kind::Dropout { rate } => {
                let x = m.one(inputs)?;
                if !training || *rate <= 0.0 { x.clone() } else { m.t(x.mul(&dropout_mask(x.shape(), *rate)?))? }
            }
            Kind::Activation(a) => m.t(a.apply(m.one(inputs)?))?,
            Kind::Dense { kernel, bias, activation } if self.compute.is_none() => {
                // float32: one matmul, then bias + activation fused in place on its result.
                let y = m.t(m.one(inputs)?.matmul(kernel))?;
                m.t(activation.apply_with_bias(y, bias.as_ref()))?
            }
            Kind::Dense { kernel, bias, activation } => {
                let kernel = self.rnd(kernel.clone())?;
                let mut y = self.rnd(m.t(m.one(inputs)?.matmul(&kernel))?)?;
                if let Some(b) = bias {
                    y = self.rnd(m.t(y.add(&self.rnd(b.clone())?))?)?;
                }
                m.t(activation.apply(&y))?
            }
            Kind::Reshape(target) => {
                let x = m.one(inputs)?;
                let b = x.shape().first().copied().unwrap_or(1);
                let mut shape = Vec::with_capacity(target.len() + 1);
                shape.push(isize::try_from(b).unwrap_or(isize::MAX));
                shape.extend_from_slice(target);
                m.t(x.reshape_infer(&shape))?
            }
            Kind::BatchNorm { axes, mul, add, train } => {
                let x = m.one(inputs)?;
                let norm = m.t(strata_tensor::shape::normalize_axes("axis", axes, x.shape()))?;
                let dims: Vec<usize> = norm.iter().filter_map(|&a| x.shape().get(a).copied()).collect();
                if dims.iter().product::<usize>() != mul.len() {
                    let problem = match (axes.as_slice(), mul.shape()) {
                        ([a], [c]) => format!(
                            "is {a}: the input of shape {:?} must have {c} channels there (the weights' length)",
                            x.shape()
                        ),
                        _ => format!(
                            "is {axes:?}: the input of shape {:?} must have sizes {:?} there (the weights' shape)",
                            x.shape(),
                            mul.shape()
                        ),
                    };
                    return Err(m.cfg_err("axis", problem));
                }
                match train {
                    Some(t) if training => t.forward(m, x, axes)?,
                    _ => {
                        let y = m.t(x.mul(&m.t(along(mul, axes, x.shape()))?))?;
                        m.t(y.add(&m.t(along(add, axes, x.shape()))?))?
                    }
                }
            }
            Kind::LayerNorm { axes, epsilon, gamma, beta, rms_scaling } => {
                let x = m.one(inputs)?;
                let mean = m.t(x.mean(Some(axes), true))?;
                let centered = m.t(x.sub(&mean))?;
                let var = m.t(centered.square().mean(Some(axes), true))?;
                let inv = m.t(var.add(&Tensor::scalar(*epsilon)))?.rsqrt();
                // rms_scaling (Keras 3.15): x * rsqrt(variance + eps) * gamma, not centered.
                let mut y = if *rms_scaling { m.t(x.mul(&inv))? } else { m.t(centered.mul(&inv))? };
                // gamma/beta have the shape of the normalized axes; broadcast them into place.
                let pshape = {
                    let norm = m.t(strata_tensor::shape::normalize_axes("layer_normalization", axes, x.shape()))?;
                    x.shape()
                        .iter()
                        .enumerate()
                        .map(|(i, &d)| if norm.contains(&i) { d } else { 1 })
                        .collect::<Vec<_>>()
                };
                if let Some(g) = gamma {
                    y = m.t(y.mul(&m.t(g.reshape(&pshape))?))?;
                }
                if let Some(b) = beta {
                    y = m.t(y.add(&m.t(b.reshape(&pshape))?))?;
                }
                y
            }
            Kind::Merge(op) => {
                let arity = |expected: &str| Error::Arity {
                    layer: m.name.clone(),
                    class: m.class.clone(),
                    expected: expected.into(),
                    got: inputs.len(),
                };
                if *op == MergeOp::Subtract {
                    let [a, b] = inputs else { return Err(arity("2")) };
                    m.t(a.sub(b))?
                } else {
                    let (first, rest) = inputs.split_first().ok_or_else(|| arity("1 or more"))?;
                    let mut acc = first.clone();
                    for x in rest {
                        acc = m.t(match op {
                            MergeOp::Add | MergeOp::Average => acc.add(x),
                            MergeOp::Multiply => acc.mul(x),
                            MergeOp::Maximum => acc.maximum(x),
                            MergeOp::Minimum => acc.minimum(x),
                            MergeOp::Subtract => acc.sub(x),
                        })?;
                    }
                    if *op == MergeOp::Average {
                        acc = acc.scale(1.0 / inputs.len() as f32);
                    }
                    acc
                }
            }
            Kind::Concatenate(axis) => {
                let refs: Vec<&Tensor> = inputs.iter().collect();
                m.t(strata_tensor::concat(&refs, *axis))?
            }
            Kind::Rescaling { scale, offset } => m.t(m.t(m.one(inputs)?.mul(scale))?.add(offset))?,
            Kind::Permute(dims) => {
                let mut perm = vec![0usize];
                perm.extend_from_slice(dims);
                m.t(m.one(inputs)?.permute(&perm))?
            }
            Kind::RepeatVector(n) => {
                let x = m.one(inputs)?;
                let u = m.t(x.unsqueeze(1))?;
                let mut shape = u.shape().to_vec();
                if let Some(s) = shape.get_mut(1) {
                    *s = *n;
                }
                m.t(u.broadcast_to(&shape))?
            }
            Kind::UnitNorm(axes) => m.t(l2_normalize(m.one(inputs)?, axes))?,
            Kind::GroupNorm { groups, epsilon, gamma, beta } => {
                let x = m.one(inputs)?;
                let s = x.shape().to_vec();
                let Some((&c, lead)) = s.split_last() else {
                    return Err(m.cfg_err("groups", "needs an input with a channel axis, got a scalar"));
                };
                if c % groups != 0 {
                    return Err(m.cfg_err("groups", format!("{groups} does not divide the {c} channels")));
                }
                let mut gshape = lead.to_vec();
                gshape.extend([*groups, c / groups]);
                let r = m.t(x.reshape(&gshape))?;
                let rank = gshape.len();
                let axes: Vec<isize> = (1..rank).filter(|&a| a != rank - 2).map(|a| a as isize).collect();
                let mean = m.t(r.mean(Some(&axes), true))?;
                let var = m.t(m.t(r.sub(&mean))?.square().mean(Some(&axes), true))?;
                let mut inv = m.t(var.add(&Tensor::scalar(*epsilon)))?.rsqrt();
                let pshape = [*groups, c / groups];
                if let Some(g) = gamma {
                    inv = m.t(inv.mul(&m.t(g.reshape(&pshape))?))?;
                }
                let mut res = m.t(mean.mul(&inv))?.neg();
                if let Some(b) = beta {
                    res = m.t(res.add(&m.t(b.reshape(&pshape))?))?;
                }
                let y = m.t(m.t(r.mul(&inv))?.add(&res))?;
                m.t(y.reshape(&s))?
            }
            Kind::Normalization { mean, variance, invert } => {
                let x = m.one(inputs)?;
                // the statistics must broadcast *into* the input's shape (Keras stores them with the
                // input's rank, 1 on the reduced axes); anything else would grow the output
                for (key, t) in [("mean", mean), ("variance", variance)] {
                    let fits = t.rank() <= x.rank()
                        && t.shape().iter().rev().zip(x.shape().iter().rev()).all(|(&a, &b)| a == 1 || a == b);
                    if !fits {
                        return Err(m.cfg_err(
                            key,
                            format!(
                                "has shape {:?}, which does not broadcast to the input shape {:?}; the stored statistics do not fit this input",
                                t.shape(),
                                x.shape()
                            ),
                        ));
                    }
                }
                let std = variance.sqrt().maximum(&Tensor::scalar(1e-7));
                let std = m.t(std)?;
                if *invert { m.t(m.t(x.mul(&std))?.add(mean))? } else { m.t(m.t(x.sub(mean))?.div(&std))? }
            }
            Kind::Dot { axes, normalize } => {
                let [a, b] = inputs else {
                    return Err(Error::Arity {
                        layer: m.name.clone(),
                        class: m.class.clone(),
                        expected: "2".into(),
                        got: inputs.len(),
                    });
                };
                let norm = |ax: isize, t: &Tensor| -> Result<usize> {
                    let r = t.rank() as isize;
                    let n = if ax < 0 { ax.rem_euclid(r.max(1)) } else { ax };
                    usize::try_from(n).ok().filter(|&n| n >= 1 && n < t.rank()).ok_or_else(|| {
                        m.cfg_err(
                            "axes",
                            format!("{axes:?} is not a non-batch axis of inputs {:?} and {:?}", a.shape(), b.shape()),
                        )
                    })
                };
                let (a0, a1) = (norm(axes[0], a)?, norm(axes[1], b)?);
                if a.rank() < 2 || b.rank() < 2 || a.rank() + b.rank() > 26 {
                    return Err(m.cfg_err(
                        "axes",
                        format!("needs inputs of rank 2 to 13, got {:?} and {:?}", a.shape(), b.shape()),
                    ));
                }
                let (a, b) = if *normalize {
                    (m.t(l2_normalize(a, &[a0 as isize]))?, m.t(l2_normalize(b, &[a1 as isize]))?)
                } else {
                    (a.clone(), b.clone())
                };
                // batch_dot: x's axes without a0, then y's without the batch axis and a1.
                let letter = |i: usize| char::from(b'a' + (i % 26) as u8);
                let xs: String = (0..a.rank()).map(letter).collect();
                let ys: String = (0..b.rank())
                    .map(|j| {
                        if j == 0 {
                            'a'
                        } else if j == a1 {
                            letter(a0)
                        } else {
                            letter(a.rank() + j)
                        }
                    })
                    .collect();
                let out: String = xs
                    .chars()
                    .enumerate()
                    .filter(|&(i, _)| i != a0)
                    .map(|(_, c)| c)
                    .chain(ys.chars().enumerate().filter(|&(j, _)| j != 0 && j != a1).map(|(_, c)| c))
                    .collect();
                let y = m.t(strata_tensor::einsum(&format!("{xs},{ys}->{out}"), &a, &b))?;
                if y.rank() == 1 { m.t(y.unsqueeze(1))? } else { y }
            }
        };
        Ok(vec![self.rnd(y)?])
    }

    fn forward_masked(&self, inputs: &[Tensor], masks: &[Option<Tensor>], training: bool) -> Result<Masked> {
        // Keras takes masked batch statistics; strata does not implement them, so it refuses
        // rather than normalizing with the padding counted in
        if training && matches!(self.kind, Kind::BatchNorm { train: Some(_), .. }) && masks.iter().any(Option::is_some)
        {
            return Err(self.meta.cfg_err(
                "axis",
                "gets a masked input in training; strata does not implement masked batch statistics (freeze the layer or train this model in Keras)",
            ));
        }
        Ok(pass_masks(self.forward(inputs, training)?, masks))
    }

    fn take_state_updates(&self) -> Vec<StateUpdate> {
        match &self.kind {
            Kind::BatchNorm { train: Some(t), .. } => t.take().map(|u| vec![(String::new(), u)]).unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

static DROPOUT_STREAM: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x0d70_9047);

/// Seeds the random stream of `Dropout` in training (for reproducible runs).
pub fn seed_dropout(seed: u64) {
    DROPOUT_STREAM.store(seed, std::sync::atomic::Ordering::Relaxed);
}

/// A keep-mask scaled by `1 / (1 - rate)`: splitmix64 over a process-wide stream.
fn dropout_mask(shape: &[usize], rate: f32) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut state =
        DROPOUT_STREAM.fetch_add((n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15), std::sync::atomic::Ordering::Relaxed);
    let keep = 1.0 - rate;
    let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
    let data = (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 40) as f32 / (1u64 << 24) as f32;
            if u < keep { scale } else { 0.0 }
        })
        .collect();
    Tensor::from_vec(shape, data).map_err(|e| Error::Tensor {
        layer: "dropout".into(),
        class: "Dropout".into(),
        source: Box::new(e),
    })
}

/// Layer classes whose *training* behaviour strata does not implement yet: a trainer must refuse
/// to fit a model with a trainable one rather than silently train it in inference mode.
/// (A frozen `BatchNormalization` runs in inference mode in Keras 3 too, so it is fine.)
pub fn training_unsupported(layer: &LayerConfig) -> Option<&'static str> {
    match layer.class_name.as_str() {
        "BatchNormalization"
            if layer.trainable() && layer.config.get("renorm").and_then(Json::as_bool) == Some(true) =>
        {
            Some("batch renormalization")
        }
        "SpatialDropout1D" | "SpatialDropout2D" | "SpatialDropout3D" => Some("spatial dropout masks"),
        "GaussianNoise" | "GaussianDropout" | "AlphaDropout" => Some("training-time noise"),
        "Dropout" if layer.config.get("noise_shape").is_some_and(|n| !n.is_null()) => Some("dropout with noise_shape"),
        _ => None,
    }
}
