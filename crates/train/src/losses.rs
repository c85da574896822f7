//! Losses with Keras 3's formulas, reduction, sample weighting, names and configs, each with
//! its gradient with respect to `y_pred` (what the fit loop feeds to the model's backward pass).
//!
//! Mirrors `keras/src/losses/losses.py` (the functions and the `LossFunctionWrapper` classes),
//! `keras/src/losses/loss.py` (`reduce_weighted_values`, `squeeze_or_expand_to_same_rank`,
//! masks) and the TensorFlow backend's `binary_crossentropy`, `categorical_crossentropy` and
//! `sparse_categorical_crossentropy` (`keras/src/backend/tensorflow/nn.py`), including the
//! clipping of probabilities to `[epsilon, 1 - epsilon]` with `epsilon = 1e-7` (where clipping is
//! active the gradient is zero, as TensorFlow's `clip_by_value` gives).
//!
//! Values are computed in f64 from f32 inputs and returned as f32.
//!
//! Config quirk mirrored from Keras 3.15.1: `Huber.get_config()` omits `delta` and
//! `CosineSimilarity.get_config()` omits `axis` (both are accepted by `from_config`), and
//! `SparseCategoricalCrossentropy` writes no `axis`.

use crate::config::{Reader, serialized, split_serialized};
use crate::error::{Error, Result};
use crate::reduce::{axis as norm_axis, move_axis_last, numel, same_rank};
use strata_format::json::{Json, Object};
use strata_tensor::Tensor;

const EPS: f32 = 1e-7;

/// How per-sample losses become one number (Keras 3's `reduction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// `"sum_over_batch_size"` (default): weighted sum / number of loss values.
    SumOverBatchSize,
    /// `"sum"`: weighted sum.
    Sum,
    /// `"mean"`: same as sum_over_batch_size.
    Mean,
    /// `"mean_with_sample_weight"`: weighted sum / sum of sample weights.
    MeanWithSampleWeight,
    /// `"none"` / `None`: no reduction (only [`Loss::per_sample`] applies).
    None,
}

impl Reduction {
    fn as_str(self) -> Option<&'static str> {
        match self {
            Reduction::SumOverBatchSize => Some("sum_over_batch_size"),
            Reduction::Sum => Some("sum"),
            Reduction::Mean => Some("mean"),
            Reduction::MeanWithSampleWeight => Some("mean_with_sample_weight"),
            Reduction::None => None,
        }
    }

    fn parse(s: Option<&str>) -> Option<Reduction> {
        Some(match s {
            None | Some("none") => Reduction::None,
            Some("sum_over_batch_size") | Some("auto") => Reduction::SumOverBatchSize,
            Some("sum") => Reduction::Sum,
            Some("mean") => Reduction::Mean,
            Some("mean_with_sample_weight") => Reduction::MeanWithSampleWeight,
            Some(_) => return None,
        })
    }
}

/// The loss function and its options; variants are named as Keras's classes.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum LossKind {
    /// `mean(square(y_true - y_pred), axis=-1)`
    MeanSquaredError,
    /// `mean(abs(y_true - y_pred), axis=-1)`
    MeanAbsoluteError,
    /// `100 * mean(abs((y_true - y_pred) / max(abs(y_true), eps)), axis=-1)`
    MeanAbsolutePercentageError,
    /// `mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)`
    MeanSquaredLogarithmicError,
    /// Quadratic within `delta`, linear outside.
    Huber {
        /// Threshold (default 1.0).
        delta: f64,
    },
    /// `mean(log(cosh(y_pred - y_true)), axis=-1)`
    LogCosh,
    /// Binary cross-entropy, mean over `axis`.
    BinaryCrossentropy {
        /// `y_pred` holds logits.
        from_logits: bool,
        /// Squeeze labels towards 0.5.
        label_smoothing: f64,
        /// Axis of the mean (default -1).
        axis: i64,
    },
    /// Categorical cross-entropy over `axis`.
    CategoricalCrossentropy {
        /// `y_pred` holds logits.
        from_logits: bool,
        /// Smooth one-hot labels.
        label_smoothing: f64,
        /// Class axis (default -1).
        axis: i64,
    },
    /// Cross-entropy with integer labels.
    SparseCategoricalCrossentropy {
        /// `y_pred` holds logits.
        from_logits: bool,
        /// Label to ignore (its samples count as masked).
        ignore_class: Option<i64>,
    },
    /// `sum(y_true * log(y_true / y_pred), axis=-1)` on values clipped to `[eps, 1]`.
    KLDivergence,
    /// `mean(y_pred - y_true * log(y_pred + eps), axis=-1)`
    Poisson,
    /// `mean(maximum(1 - y_true * y_pred, 0), axis=-1)` (0/1 labels become -1/1).
    Hinge,
    /// `mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)`
    SquaredHinge,
    /// `maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`
    CategoricalHinge,
    /// `-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)`
    CosineSimilarity {
        /// Axis (default -1).
        axis: i64,
    },
}

impl LossKind {
    /// The Keras class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            LossKind::MeanSquaredError => "MeanSquaredError",
            LossKind::MeanAbsoluteError => "MeanAbsoluteError",
            LossKind::MeanAbsolutePercentageError => "MeanAbsolutePercentageError",
            LossKind::MeanSquaredLogarithmicError => "MeanSquaredLogarithmicError",
            LossKind::Huber { .. } => "Huber",
            LossKind::LogCosh => "LogCosh",
            LossKind::BinaryCrossentropy { .. } => "BinaryCrossentropy",
            LossKind::CategoricalCrossentropy { .. } => "CategoricalCrossentropy",
            LossKind::SparseCategoricalCrossentropy { .. } => "SparseCategoricalCrossentropy",
            LossKind::KLDivergence => "KLDivergence",
            LossKind::Poisson => "Poisson",
            LossKind::Hinge => "Hinge",
            LossKind::SquaredHinge => "SquaredHinge",
            LossKind::CategoricalHinge => "CategoricalHinge",
            LossKind::CosineSimilarity { .. } => "CosineSimilarity",
        }
    }

    /// The Keras function name (also the class's default `name`, except `huber_loss`).
    pub fn function_name(&self) -> &'static str {
        match self {
            LossKind::MeanSquaredError => "mean_squared_error",
            LossKind::MeanAbsoluteError => "mean_absolute_error",
            LossKind::MeanAbsolutePercentageError => "mean_absolute_percentage_error",
            LossKind::MeanSquaredLogarithmicError => "mean_squared_logarithmic_error",
            LossKind::Huber { .. } => "huber",
            LossKind::LogCosh => "log_cosh",
            LossKind::BinaryCrossentropy { .. } => "binary_crossentropy",
            LossKind::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            LossKind::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            LossKind::KLDivergence => "kl_divergence",
            LossKind::Poisson => "poisson",
            LossKind::Hinge => "hinge",
            LossKind::SquaredHinge => "squared_hinge",
            LossKind::CategoricalHinge => "categorical_hinge",
            LossKind::CosineSimilarity { .. } => "cosine_similarity",
        }
    }

    fn default_name(&self) -> &'static str {
        match self {
            LossKind::Huber { .. } => "huber_loss",
            k => k.function_name(),
        }
    }
}

/// Every name `keras.losses.get` resolves for the losses strata implements.
pub const LOSS_NAMES: &[&str] = &[
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "binary_crossentropy",
    "categorical_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    "sparse_categorical_crossentropy",
    "squared_hinge",
    "bce",
    "BCE",
    "kld",
    "KLD",
    "mae",
    "MAE",
    "mse",
    "MSE",
    "mape",
    "MAPE",
    "msle",
    "MSLE",
];

fn function_kind(name: &str) -> Option<LossKind> {
    Some(match name {
        "mean_squared_error" | "mse" | "MSE" => LossKind::MeanSquaredError,
        "mean_absolute_error" | "mae" | "MAE" => LossKind::MeanAbsoluteError,
        "mean_absolute_percentage_error" | "mape" | "MAPE" => LossKind::MeanAbsolutePercentageError,
        "mean_squared_logarithmic_error" | "msle" | "MSLE" => LossKind::MeanSquaredLogarithmicError,
        "huber" => LossKind::Huber { delta: 1.0 },
        "log_cosh" => LossKind::LogCosh,
        "binary_crossentropy" | "bce" | "BCE" => {
            LossKind::BinaryCrossentropy { from_logits: false, label_smoothing: 0.0, axis: -1 }
        }
        "categorical_crossentropy" => {
            LossKind::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0, axis: -1 }
        }
        "sparse_categorical_crossentropy" => {
            LossKind::SparseCategoricalCrossentropy { from_logits: false, ignore_class: None }
        }
        "kl_divergence" | "kld" | "KLD" => LossKind::KLDivergence,
        "poisson" => LossKind::Poisson,
        "hinge" => LossKind::Hinge,
        "squared_hinge" => LossKind::SquaredHinge,
        "categorical_hinge" => LossKind::CategoricalHinge,
        "cosine_similarity" => LossKind::CosineSimilarity { axis: -1 },
        _ => return None,
    })
}

/// A configured loss (Keras's `Loss` object, or a loss function named by a string).
#[derive(Clone, Debug, PartialEq)]
pub struct Loss {
    /// The function and options.
    pub kind: LossKind,
    /// `name`
    pub name: String,
    /// `reduction`
    pub reduction: Reduction,
    /// Set when made from a function name (`"mse"`): serializes back to that string.
    pub function_identifier: Option<String>,
}

impl Loss {
    /// A loss with Keras's default name and `sum_over_batch_size` reduction.
    pub fn new(kind: LossKind) -> Loss {
        Loss {
            name: kind.default_name().into(),
            kind,
            reduction: Reduction::SumOverBatchSize,
            function_identifier: None,
        }
    }

    /// Sets the reduction.
    pub fn with_reduction(mut self, reduction: Reduction) -> Loss {
        self.reduction = reduction;
        self
    }

    /// Resolves a class name (`"MeanSquaredError"`) or function name (`"mse"`,
    /// `"mean_squared_error"`) as `keras.losses.get` does.
    pub fn get(identifier: &str) -> Result<Loss> {
        if let Some(kind) = function_kind(identifier) {
            let mut l = Loss::new(kind);
            l.name = l.kind.function_name().into();
            l.function_identifier = Some(identifier.into());
            return Ok(l);
        }
        Loss::from_config(identifier, &Json::Null)
    }

    /// Keras's `get_config()` (see the module docs for the keys Keras leaves out).
    pub fn get_config(&self) -> Json {
        let mut o = Object::new();
        o.insert("name", Json::from(self.name.as_str()));
        o.insert("reduction", self.reduction.as_str().map_or(Json::Null, Json::from));
        match &self.kind {
            LossKind::BinaryCrossentropy { from_logits, label_smoothing, axis }
            | LossKind::CategoricalCrossentropy { from_logits, label_smoothing, axis } => {
                o.insert("from_logits", Json::from(*from_logits));
                o.insert("label_smoothing", Json::from(*label_smoothing));
                o.insert("axis", Json::from(*axis));
            }
            LossKind::SparseCategoricalCrossentropy { from_logits, ignore_class } => {
                o.insert("from_logits", Json::from(*from_logits));
                o.insert("ignore_class", ignore_class.map_or(Json::Null, Json::from));
            }
            _ => {}
        }
        Json::Object(o)
    }

    /// The serialized form: `{"module": "keras.losses", ...}` for a class, the bare string for
    /// a loss given by function name (as `compile(loss="mse")` stores it).
    pub fn serialize(&self) -> Json {
        match &self.function_identifier {
            Some(id) => Json::from(id.as_str()),
            None => serialized("keras.losses", self.kind.class_name(), self.get_config()),
        }
    }

    /// Parses a serialized loss or a name.
    pub fn deserialize(value: &Json) -> Result<Loss> {
        match value {
            Json::String(s) => Loss::get(s),
            _ => {
                let (class, cfg) = split_serialized("loss", value)?;
                Loss::from_config(class, cfg)
            }
        }
    }

    /// Builds a loss class from its name and `get_config()` dict.
    pub fn from_config(class_name: &str, cfg: &Json) -> Result<Loss> {
        let mut r = Reader::new(class_name, cfg)?;
        let kind = match class_name {
            "MeanSquaredError" => LossKind::MeanSquaredError,
            "MeanAbsoluteError" => LossKind::MeanAbsoluteError,
            "MeanAbsolutePercentageError" => LossKind::MeanAbsolutePercentageError,
            "MeanSquaredLogarithmicError" => LossKind::MeanSquaredLogarithmicError,
            "Huber" => LossKind::Huber { delta: r.f64("delta", 1.0)? },
            "LogCosh" => LossKind::LogCosh,
            "BinaryCrossentropy" | "CategoricalCrossentropy" => {
                let from_logits = r.bool("from_logits", false)?;
                let label_smoothing = r.f64("label_smoothing", 0.0)?;
                let axis = r.opt_int("axis")?.unwrap_or(-1);
                if class_name == "BinaryCrossentropy" {
                    LossKind::BinaryCrossentropy { from_logits, label_smoothing, axis }
                } else {
                    LossKind::CategoricalCrossentropy { from_logits, label_smoothing, axis }
                }
            }
            "SparseCategoricalCrossentropy" => {
                let k = LossKind::SparseCategoricalCrossentropy {
                    from_logits: r.bool("from_logits", false)?,
                    ignore_class: r.opt_int("ignore_class")?,
                };
                if let Some(a) = r.opt_int("axis")?
                    && a != -1
                {
                    return Err(r.err("axis", format!("only -1 is supported (as in Keras's TF backend), found {a}")));
                }
                k
            }
            "KLDivergence" => LossKind::KLDivergence,
            "Poisson" => LossKind::Poisson,
            "Hinge" => LossKind::Hinge,
            "SquaredHinge" => LossKind::SquaredHinge,
            "CategoricalHinge" => LossKind::CategoricalHinge,
            "CosineSimilarity" => LossKind::CosineSimilarity { axis: r.opt_int("axis")?.unwrap_or(-1) },
            other => {
                if let Some(kind) = function_kind(other) {
                    r.finish()?;
                    let mut l = Loss::new(kind);
                    l.function_identifier = Some(other.into());
                    return Ok(l);
                }
                return Err(Error::UnknownName { kind: "loss", name: other.into(), known: LOSS_NAMES.to_vec() });
            }
        };
        let mut loss = Loss::new(kind);
        if let Some(n) = r.opt_str("name")? {
            loss.name = n.into();
        }
        if r.present("reduction") {
            let red = r.opt_str("reduction")?;
            loss.reduction = Reduction::parse(red).ok_or_else(|| {
                r.err(
                    "reduction",
                    format!(
                        "must be one of sum_over_batch_size, sum, mean, mean_with_sample_weight, none, found {:?}",
                        red.unwrap_or("")
                    ),
                )
            })?;
        }
        r.raw("dtype");
        r.finish()?;
        Ok(loss)
    }

    /// Per-sample losses (the Keras function's output, before reduction): shape is `y_pred`'s
    /// without the class axis.
    pub fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let (v, _, shape, _) = self.compute(y_true, y_pred)?;
        Ok(Tensor::from_vec(&shape, v.iter().map(|&x| x as f32).collect())?)
    }

    /// The reduced loss (`loss(y_true, y_pred, sample_weight)`).
    pub fn call(&self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<f32> {
        Ok(self.value_and_grad(y_true, y_pred, sample_weight)?.0)
    }

    /// The reduced loss and its gradient with respect to `y_pred` (same shape as `y_pred`).
    pub fn value_and_grad(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<(f32, Tensor)> {
        let obj = self.kind.class_name();
        if self.reduction == Reduction::None {
            return Err(Error::invalid(
                obj,
                "reduction `none` gives per-sample losses; use `per_sample`, or pick a reduction",
            ));
        }
        let (values, grads, vshape, mask) = self.compute(y_true, y_pred)?;
        let n = values.len();
        let width = grads.len().checked_div(n).unwrap_or(0);
        // Sample weights, aligned as `squeeze_or_expand_to_same_rank(values, sample_weight)`.
        let mut w = vec![1.0f64; n];
        if let Some(sw) = sample_weight {
            let (vs, ws) = same_rank(&vshape, sw.shape());
            let data = sw.as_slice();
            if ws.is_empty() || data.len() == 1 {
                w.iter_mut().for_each(|x| *x = f64::from(data.first().copied().unwrap_or(1.0)));
            } else if ws == vs || (data.len() == n && ws.iter().product::<usize>() == n) {
                w = data.iter().map(|&x| f64::from(x)).collect();
            } else {
                return Err(Error::shape(format!("{obj}: sample_weight"), &vshape, sw.shape()));
            }
        }
        if let Some(m) = &mask {
            // apply_mask: masked entries weigh 0, the others total/valid.
            let valid = m.iter().filter(|&&b| b).count();
            let mw = if valid == 0 { 0.0 } else { n as f64 / valid as f64 };
            for (wi, &b) in w.iter_mut().zip(m) {
                *wi *= if b { mw } else { 0.0 };
            }
        }
        let total: f64 = values.iter().zip(&w).map(|(v, w)| v * w).sum();
        let divisor = if vshape.is_empty() {
            1.0
        } else {
            match self.reduction {
                Reduction::Sum => 1.0,
                Reduction::MeanWithSampleWeight if sample_weight.is_some() => w.iter().sum(),
                _ => n as f64,
            }
        };
        let scale = |x: f64| if divisor == 0.0 { 0.0 } else { x / divisor };
        let value = scale(total);
        let mut g = vec![0.0f32; grads.len()];
        for (r, wr) in w.iter().enumerate() {
            let c = scale(*wr);
            for k in 0..width {
                let i = r * width + k;
                if let (Some(o), Some(gi)) = (g.get_mut(i), grads.get(i)) {
                    *o = (gi * c) as f32;
                }
            }
        }
        let g = self.restore_layout(g, y_pred)?;
        Ok((value as f32, Tensor::from_vec(y_pred.shape(), g)?))
    }

    /// Moves the gradient back from the (axis-last) layout used internally.
    fn restore_layout(&self, g: Vec<f32>, y_pred: &Tensor) -> Result<Vec<f32>> {
        let axis = match self.kind {
            LossKind::CategoricalCrossentropy { axis, .. } | LossKind::CosineSimilarity { axis } => axis,
            _ => return Ok(g),
        };
        let rank = y_pred.rank();
        let a = norm_axis(self.kind.class_name(), axis, rank)?;
        if a + 1 == rank {
            return Ok(g);
        }
        let mut moved: Vec<usize> = (0..rank).filter(|&i| i != a).map(|i| y_pred.shape()[i]).collect();
        moved.push(y_pred.shape()[a]);
        let mut perm: Vec<usize> = (0..rank).filter(|&i| i != a).collect();
        perm.push(a);
        let mut inv = vec![0; rank];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        Ok(crate::reduce::permute(&g, &moved, &inv))
    }

    /// Per-sample values, the per-element gradient of each sample's value (row-major over the
    /// internal layout: class axis last), the values' shape, and an optional validity mask.
    #[allow(clippy::type_complexity)]
    fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<(Vec<f64>, Vec<f64>, Vec<usize>, Option<Vec<bool>>)> {
        let obj = self.kind.class_name();
        numel(obj, y_pred.shape())?;
        if let LossKind::SparseCategoricalCrossentropy { from_logits, ignore_class } = self.kind {
            return sparse_cce(obj, y_true, y_pred, from_logits, ignore_class);
        }
        // LossFunctionWrapper.call: squeeze_or_expand_to_same_rank(y_true, y_pred).
        let (ts, ps) = same_rank(y_true.shape(), y_pred.shape());
        if ts != ps {
            return Err(Error::shape(format!("{obj}: y_true (y_pred is {:?})", y_pred.shape()), &ps, y_true.shape()));
        }
        let mut shape = ps;
        let mut t: Vec<f64> = y_true.as_slice().iter().map(|&x| f64::from(x)).collect();
        let mut p: Vec<f64> = y_pred.as_slice().iter().map(|&x| f64::from(x)).collect();
        if let LossKind::CategoricalCrossentropy { axis, .. } | LossKind::CosineSimilarity { axis } = self.kind {
            if shape.is_empty() {
                shape = vec![1];
            }
            let a = norm_axis(obj, axis, shape.len())?;
            if a + 1 != shape.len() {
                let (tp, s2, _) = move_axis_last(y_true.as_slice(), &shape, a);
                let (pp, _, _) = move_axis_last(y_pred.as_slice(), &shape, a);
                t = tp.iter().map(|&x| f64::from(x)).collect();
                p = pp.iter().map(|&x| f64::from(x)).collect();
                shape = s2;
            }
        }
        if let LossKind::BinaryCrossentropy { axis, .. } = self.kind
            && !shape.is_empty()
            && norm_axis(obj, axis, shape.len())? + 1 != shape.len()
        {
            return Err(Error::Unsupported {
                object: obj.into(),
                option: "axis".into(),
                why: format!("only the last axis is supported, found axis={axis}"),
            });
        }
        let width = shape.last().copied().unwrap_or(1).max(1);
        let vshape: Vec<usize> = if shape.is_empty() { vec![] } else { shape[..shape.len() - 1].to_vec() };
        if matches!(self.kind, LossKind::Hinge | LossKind::SquaredHinge) && t.iter().all(|&x| x == 0.0 || x == 1.0) {
            t.iter_mut().for_each(|x| *x = 2.0 * *x - 1.0);
        }
        let n = t.len().checked_div(width).unwrap_or(0);
        let mut values = Vec::with_capacity(n);
        let mut grads = vec![0.0f64; t.len()];
        for r in 0..n {
            let lo = r * width;
            let (tr, pr) = (&t[lo..lo + width], &p[lo..lo + width]);
            let gr = &mut grads[lo..lo + width];
            values.push(self.row(tr, pr, gr));
        }
        Ok((values, grads, vshape, None))
    }

    /// One row's loss (over the class axis) and its gradient into `g`.
    fn row(&self, t: &[f64], p: &[f64], g: &mut [f64]) -> f64 {
        let c = t.len() as f64;
        let eps = f64::from(EPS);
        let one_m_eps = f64::from(1.0f32 - EPS);
        let mut l = 0.0;
        match self.kind {
            LossKind::MeanSquaredError => {
                for k in 0..t.len() {
                    let d = t[k] - p[k];
                    l += d * d;
                    g[k] = -2.0 * d / c;
                }
                l / c
            }
            LossKind::MeanAbsoluteError => {
                for k in 0..t.len() {
                    let d = p[k] - t[k];
                    l += d.abs();
                    g[k] = sign(d) / c;
                }
                l / c
            }
            LossKind::MeanAbsolutePercentageError => {
                for k in 0..t.len() {
                    let den = t[k].abs().max(eps);
                    let d = (t[k] - p[k]) / den;
                    l += d.abs();
                    g[k] = 100.0 * sign(p[k] - t[k]) / den / c;
                }
                100.0 * l / c
            }
            LossKind::MeanSquaredLogarithmicError => {
                for k in 0..t.len() {
                    let pc = p[k].max(eps);
                    let a = (pc + 1.0).ln();
                    let b = (t[k].max(eps) + 1.0).ln();
                    l += (a - b) * (a - b);
                    g[k] = if p[k] >= eps { 2.0 * (a - b) / (pc + 1.0) / c } else { 0.0 };
                }
                l / c
            }
            LossKind::Huber { delta } => {
                for k in 0..t.len() {
                    let e = p[k] - t[k];
                    if e.abs() <= delta {
                        l += 0.5 * e * e;
                        g[k] = e / c;
                    } else {
                        l += delta * e.abs() - 0.5 * delta * delta;
                        g[k] = delta * sign(e) / c;
                    }
                }
                l / c
            }
            LossKind::LogCosh => {
                for k in 0..t.len() {
                    let x = p[k] - t[k];
                    l += x + softplus(-2.0 * x) - std::f64::consts::LN_2;
                    g[k] = x.tanh() / c;
                }
                l / c
            }
            LossKind::Poisson => {
                for k in 0..t.len() {
                    l += p[k] - t[k] * (p[k] + eps).ln();
                    g[k] = (1.0 - t[k] / (p[k] + eps)) / c;
                }
                l / c
            }
            LossKind::KLDivergence => {
                for k in 0..t.len() {
                    let tc = t[k].clamp(eps, 1.0);
                    let pc = p[k].clamp(eps, 1.0);
                    l += tc * (tc / pc).ln();
                    g[k] = if (eps..=1.0).contains(&p[k]) { -tc / pc } else { 0.0 };
                }
                l
            }
            LossKind::Hinge => {
                for k in 0..t.len() {
                    let m = 1.0 - t[k] * p[k];
                    l += m.max(0.0);
                    g[k] = if m >= 0.0 { -t[k] / c } else { 0.0 };
                }
                l / c
            }
            LossKind::SquaredHinge => {
                for k in 0..t.len() {
                    let m = (1.0 - t[k] * p[k]).max(0.0);
                    l += m * m;
                    g[k] = -2.0 * m * t[k] / c;
                }
                l / c
            }
            LossKind::CategoricalHinge => {
                let pos: f64 = t.iter().zip(p).map(|(a, b)| a * b).sum();
                let mut neg = f64::NEG_INFINITY;
                let mut arg = 0;
                for k in 0..t.len() {
                    let v = (1.0 - t[k]) * p[k];
                    if v > neg {
                        neg = v;
                        arg = k;
                    }
                }
                let m = neg - pos + 1.0;
                for k in 0..t.len() {
                    g[k] = if m >= 0.0 { -t[k] + if k == arg { 1.0 - t[k] } else { 0.0 } } else { 0.0 };
                }
                m.max(0.0)
            }
            LossKind::CosineSimilarity { .. } => {
                let inv = |s: f64| if s > 0.0 { (1.0 / s.sqrt()).min(1.0 / eps) } else { 1.0 / eps };
                let st: f64 = t.iter().map(|x| x * x).sum();
                let sp: f64 = p.iter().map(|x| x * x).sum();
                let (rt, rp) = (inv(st), inv(sp));
                let clamped = sp <= 0.0 || 1.0 / sp.sqrt() >= 1.0 / eps;
                let dot: f64 = t.iter().zip(p).map(|(a, b)| a * rt * b).sum();
                for k in 0..t.len() {
                    let nt = t[k] * rt;
                    g[k] = if clamped { -nt * rp } else { -rp * nt + rp * rp * rp * p[k] * dot };
                }
                -dot * rp
            }
            LossKind::BinaryCrossentropy { from_logits, label_smoothing, .. } => {
                for k in 0..t.len() {
                    let ts = if label_smoothing != 0.0 {
                        t[k] * (1.0 - label_smoothing) + 0.5 * label_smoothing
                    } else {
                        t[k]
                    };
                    if from_logits {
                        let x = p[k];
                        l += x.max(0.0) - x * ts + (-x.abs()).exp().ln_1p();
                        g[k] = (sigmoid(x) - ts) / c;
                    } else {
                        let o = p[k].clamp(eps, one_m_eps);
                        l += -(ts * o.ln() + (1.0 - ts) * (1.0 - o).ln());
                        g[k] =
                            if p[k] >= eps && p[k] <= one_m_eps { -(ts / o - (1.0 - ts) / (1.0 - o)) / c } else { 0.0 };
                    }
                }
                l / c
            }
            LossKind::CategoricalCrossentropy { from_logits, label_smoothing, .. } => {
                let ts: Vec<f64> = if label_smoothing != 0.0 {
                    t.iter().map(|&x| x * (1.0 - label_smoothing) + label_smoothing / c).collect()
                } else {
                    t.to_vec()
                };
                if from_logits {
                    let m = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + p.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
                    let sum_t: f64 = ts.iter().sum();
                    for k in 0..t.len() {
                        l -= ts[k] * (p[k] - lse);
                        g[k] = (p[k] - lse).exp() * sum_t - ts[k];
                    }
                    l
                } else {
                    let s: f64 = p.iter().sum();
                    let mut h = vec![0.0; t.len()];
                    for k in 0..t.len() {
                        let q = p[k] / s;
                        let o = q.clamp(eps, one_m_eps);
                        l -= ts[k] * o.ln();
                        h[k] = if q >= eps && q <= one_m_eps { -ts[k] / o } else { 0.0 };
                    }
                    let hq: f64 = h.iter().zip(p).map(|(hk, pk)| hk * pk / s).sum();
                    for k in 0..t.len() {
                        g[k] = (h[k] - hq) / s;
                    }
                    l
                }
            }
            LossKind::SparseCategoricalCrossentropy { .. } => 0.0,
        }
    }
}

macro_rules! plain_loss {
    ($($name:ident),*) => {
        $(
            #[doc = concat!("`keras.losses.", stringify!($name), "()`: `Loss::from(", stringify!($name), ")`.")]
            #[derive(Clone, Copy, Debug, Default, PartialEq)]
            pub struct $name;

            impl From<$name> for Loss {
                fn from(_: $name) -> Loss {
                    Loss::new(LossKind::$name)
                }
            }
        )*
    };
}

plain_loss!(
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    LogCosh,
    KLDivergence,
    Poisson,
    Hinge,
    SquaredHinge,
    CategoricalHinge
);

/// `keras.losses.Huber(delta=1.0)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Huber {
    /// Threshold between the quadratic and linear parts.
    pub delta: f64,
}

impl Default for Huber {
    fn default() -> Self {
        Huber { delta: 1.0 }
    }
}

impl From<Huber> for Loss {
    fn from(h: Huber) -> Loss {
        Loss::new(LossKind::Huber { delta: h.delta })
    }
}

/// `keras.losses.BinaryCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinaryCrossentropy {
    /// `y_pred` holds logits.
    pub from_logits: bool,
    /// Squeeze labels towards 0.5.
    pub label_smoothing: f64,
    /// Axis of the mean.
    pub axis: i64,
}

impl Default for BinaryCrossentropy {
    fn default() -> Self {
        BinaryCrossentropy { from_logits: false, label_smoothing: 0.0, axis: -1 }
    }
}

impl From<BinaryCrossentropy> for Loss {
    fn from(b: BinaryCrossentropy) -> Loss {
        Loss::new(LossKind::BinaryCrossentropy {
            from_logits: b.from_logits,
            label_smoothing: b.label_smoothing,
            axis: b.axis,
        })
    }
}

/// `keras.losses.CategoricalCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CategoricalCrossentropy {
    /// `y_pred` holds logits.
    pub from_logits: bool,
    /// Smooth one-hot labels.
    pub label_smoothing: f64,
    /// Class axis.
    pub axis: i64,
}

impl Default for CategoricalCrossentropy {
    fn default() -> Self {
        CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0, axis: -1 }
    }
}

impl From<CategoricalCrossentropy> for Loss {
    fn from(c: CategoricalCrossentropy) -> Loss {
        Loss::new(LossKind::CategoricalCrossentropy {
            from_logits: c.from_logits,
            label_smoothing: c.label_smoothing,
            axis: c.axis,
        })
    }
}

/// `keras.losses.SparseCategoricalCrossentropy(from_logits=False, ignore_class=None)`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SparseCategoricalCrossentropy {
    /// `y_pred` holds logits.
    pub from_logits: bool,
    /// Label to ignore.
    pub ignore_class: Option<i64>,
}

impl From<SparseCategoricalCrossentropy> for Loss {
    fn from(s: SparseCategoricalCrossentropy) -> Loss {
        Loss::new(LossKind::SparseCategoricalCrossentropy { from_logits: s.from_logits, ignore_class: s.ignore_class })
    }
}

/// `keras.losses.CosineSimilarity(axis=-1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineSimilarity {
    /// Axis of the similarity.
    pub axis: i64,
}

impl Default for CosineSimilarity {
    fn default() -> Self {
        CosineSimilarity { axis: -1 }
    }
}

impl From<CosineSimilarity> for Loss {
    fn from(c: CosineSimilarity) -> Loss {
        Loss::new(LossKind::CosineSimilarity { axis: c.axis })
    }
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

#[allow(clippy::type_complexity)]
fn sparse_cce(
    obj: &str,
    y_true: &Tensor,
    y_pred: &Tensor,
    from_logits: bool,
    ignore_class: Option<i64>,
) -> Result<(Vec<f64>, Vec<f64>, Vec<usize>, Option<Vec<bool>>)> {
    let ps = y_pred.shape();
    let Some((&classes, lead)) = ps.split_last() else {
        return Err(Error::invalid(obj, "y_pred must be at least rank 1 (classes on the last axis)"));
    };
    let mut ts = y_true.shape().to_vec();
    if ts.len() == ps.len() && ts.last() == Some(&1) {
        ts.pop();
    }
    if ts != lead {
        return Err(Error::shape(format!("{obj}: y_true (labels for y_pred {ps:?})"), lead, y_true.shape()));
    }
    let eps = f64::from(EPS);
    let one_m_eps = f64::from(1.0f32 - EPS);
    let labels = y_true.as_slice();
    let p = y_pred.as_slice();
    let n = labels.len();
    let mut values = Vec::with_capacity(n);
    let mut grads = vec![0.0f64; p.len()];
    let mut mask = Vec::with_capacity(n);
    for (r, &lab) in labels.iter().enumerate() {
        let valid = ignore_class.is_none_or(|ic| f64::from(lab) != ic as f64);
        mask.push(valid);
        if !valid {
            values.push(0.0);
            continue;
        }
        if lab < 0.0 || lab.fract() != 0.0 || lab as usize >= classes {
            return Err(Error::invalid(
                obj,
                format!("label {lab} at sample {r} is not a class index in [0, {classes})"),
            ));
        }
        let k = lab as usize;
        let row = &p[r * classes..(r + 1) * classes];
        let z: Vec<f64> = if from_logits {
            row.iter().map(|&x| f64::from(x)).collect()
        } else {
            row.iter().map(|&x| f64::from(x).clamp(eps, one_m_eps).ln()).collect()
        };
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        values.push(lse - z[k]);
        for j in 0..classes {
            let dz = (z[j] - lse).exp() - if j == k { 1.0 } else { 0.0 };
            grads[r * classes + j] = if from_logits {
                dz
            } else {
                let x = f64::from(row[j]);
                if x >= eps && x <= one_m_eps { dz / x } else { 0.0 }
            };
        }
    }
    Ok((values, grads, ts, ignore_class.map(|_| mask)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_loss_names_the_known_ones() {
        let e = Loss::get("mean_square_error").unwrap_err().to_string();
        assert!(
            e.starts_with(
                "unknown loss `mean_square_error` (did you mean `mean_squared_error`?); known names: BinaryCrossentropy"
            ),
            "{e}"
        );
        assert!(e.contains("mse"), "{e}");
    }

    #[test]
    fn names_resolve() {
        assert_eq!(Loss::get("mse").unwrap().kind, LossKind::MeanSquaredError);
        assert_eq!(Loss::get("MeanSquaredError").unwrap().kind, LossKind::MeanSquaredError);
        assert_eq!(Loss::get("mean_squared_error").unwrap().serialize(), Json::from("mean_squared_error"));
        assert_eq!(Loss::get("Huber").unwrap().name, "huber_loss");
    }

    #[test]
    fn keras_named_structs_build_losses() {
        assert_eq!(Loss::from(MeanSquaredError), Loss::get("MeanSquaredError").unwrap());
        let bce = Loss::from(BinaryCrossentropy { from_logits: true, ..Default::default() });
        assert_eq!(bce.get_config()["from_logits"], Json::from(true));
        assert_eq!(Loss::from(Huber::default()).name, "huber_loss");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let yt = Tensor::from_vec(&[2, 3], vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0]).unwrap();
        let yp = Tensor::from_vec(&[2, 3], vec![0.2, 0.5, 0.3, 0.6, 0.3, 0.1]).unwrap();
        for kind in [
            LossKind::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.1, axis: -1 },
            LossKind::CategoricalHinge,
            LossKind::CosineSimilarity { axis: -1 },
            LossKind::LogCosh,
            LossKind::Huber { delta: 0.3 },
        ] {
            let loss = Loss::new(kind);
            let (_, g) = loss.value_and_grad(&yt, &yp, None).unwrap();
            for i in 0..6 {
                let h = 1e-3f32;
                let mut plus = yp.to_vec();
                plus[i] += h;
                let mut minus = yp.to_vec();
                minus[i] -= h;
                let f = |v: Vec<f32>| f64::from(loss.call(&yt, &Tensor::from_vec(&[2, 3], v).unwrap(), None).unwrap());
                let fd = (f(plus) - f(minus)) / (2.0 * f64::from(h));
                let an = f64::from(g.as_slice()[i]);
                assert!((fd - an).abs() < 2e-3, "{:?}[{i}]: analytic {an}, finite difference {fd}", loss.kind);
            }
        }
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let yt = Tensor::zeros(&[2, 3]).unwrap();
        let yp = Tensor::zeros(&[2, 4]).unwrap();
        let e = Loss::get("mse").unwrap().call(&yt, &yp, None).unwrap_err().to_string();
        assert!(e.contains("expected shape [2, 4], found [2, 3]"), "{e}");
    }
}
