//! Stateful metrics (`update_state` / `result` / `reset_state`) as Keras 3 computes them.
//!
//! Mirrors `keras/src/metrics/`: `reduction_metrics.py` (`Mean`, `MeanMetricWrapper` and
//! `reduce_to_samplewise_values`: per-sample values are averaged over trailing axes, weighted,
//! and divided by the summed weights), `accuracy_metrics.py`, `regression_metrics.py`,
//! `confusion_metrics.py` and `metrics_utils.py` (confusion counts at thresholds: a prediction is
//! positive when `y_pred > threshold`; AUC buckets predictions into `num_thresholds` evenly spaced
//! thresholds, `[-eps, 1/(n-1), ..., 1+eps]`, as Keras's optimized path does, and integrates ROC
//! or PR by Riemann sums with `interpolation` (PR: Davis & Goadrich), `minoring` or `majoring`).
//!
//! Accumulators are f64; results are returned as f32.

use crate::config::{Reader, serialized, split_serialized};
use crate::error::{Error, Result};
use crate::reduce::same_rank;
use strata_format::json::{Json, Object};
use strata_tensor::Tensor;

/// A Keras metric.
pub trait Metric: std::fmt::Debug + Send {
    /// The metric's `name` (the History key).
    fn name(&self) -> &str;
    /// The Keras class name.
    fn class_name(&self) -> &'static str;
    /// Accumulates one batch.
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<()>;
    /// The current value.
    fn result(&self) -> f32;
    /// Clears the state.
    fn reset_state(&mut self);
    /// Keras's `get_config()`.
    fn get_config(&self) -> Json;
    /// The serialized form (`{"module": "keras.metrics", ...}`).
    fn serialize(&self) -> Json {
        serialized("keras.metrics", self.class_name(), self.get_config())
    }
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.as_slice().iter().map(|&x| f64::from(x)).collect()
}

/// `reduce_to_samplewise_values` followed by `Mean.update_state`: returns (total, count) to add.
fn samplewise(obj: &str, values: &[f64], vshape: &[usize], sw: Option<&Tensor>) -> Result<(f64, f64)> {
    let row_means = |vals: &[f64], rows: usize| -> Vec<f64> {
        if rows == 0 {
            return Vec::new();
        }
        let w = vals.len() / rows;
        (0..rows).map(|r| if w == 0 { 0.0 } else { vals[r * w..(r + 1) * w].iter().sum::<f64>() / w as f64 }).collect()
    };
    match sw {
        None => {
            if vshape.is_empty() {
                Ok((values.first().copied().unwrap_or(0.0), 1.0))
            } else {
                let rows = vshape[0];
                Ok((row_means(values, rows).iter().sum(), rows as f64))
            }
        }
        Some(sw) => {
            let (vs, ws) = same_rank(vshape, sw.shape());
            let w = f64s(sw);
            // Reduce values over the axes the weight lacks (mean).
            let wr = ws.len().min(vs.len());
            let kept: usize = vs[..wr].iter().product();
            let vals = if vs.len() > wr { row_means(values, kept) } else { values.to_vec() };
            let wv: Vec<f64> = if w.len() == vals.len() {
                w
            } else if w.len() == 1 {
                vec![w[0]; vals.len()]
            } else {
                return Err(Error::shape(format!("{obj}: sample_weight"), &vs[..wr], sw.shape()));
            };
            let weighted: Vec<f64> = vals.iter().zip(&wv).map(|(a, b)| a * b).collect();
            if wr > 1 {
                let rows = vs[0];
                Ok((row_means(&weighted, rows).iter().sum(), row_means(&wv, rows).iter().sum()))
            } else {
                Ok((weighted.iter().sum(), wv.iter().sum()))
            }
        }
    }
}

/// The per-sample functions a [`MeanMetricWrapper`] averages.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MetricFn {
    /// `Accuracy`: `y_true == y_pred`.
    Accuracy,
    /// `BinaryAccuracy`: `y_true == (y_pred > threshold)`.
    BinaryAccuracy {
        /// Decision threshold (default 0.5).
        threshold: f64,
    },
    /// `CategoricalAccuracy`: `argmax(y_true) == argmax(y_pred)`.
    CategoricalAccuracy,
    /// `SparseCategoricalAccuracy`: `y_true == argmax(y_pred)`.
    SparseCategoricalAccuracy,
    /// `TopKCategoricalAccuracy`: `argmax(y_true)` among the `k` largest predictions.
    TopKCategoricalAccuracy {
        /// k (default 5).
        k: i64,
    },
    /// `SparseTopKCategoricalAccuracy`: `y_true` among the `k` largest predictions.
    SparseTopKCategoricalAccuracy {
        /// k (default 5).
        k: i64,
    },
    /// `MeanAbsoluteError`
    MeanAbsoluteError,
    /// `MeanSquaredError`
    MeanSquaredError,
}

impl MetricFn {
    fn class_name(&self) -> &'static str {
        match self {
            MetricFn::Accuracy => "Accuracy",
            MetricFn::BinaryAccuracy { .. } => "BinaryAccuracy",
            MetricFn::CategoricalAccuracy => "CategoricalAccuracy",
            MetricFn::SparseCategoricalAccuracy => "SparseCategoricalAccuracy",
            MetricFn::TopKCategoricalAccuracy { .. } => "TopKCategoricalAccuracy",
            MetricFn::SparseTopKCategoricalAccuracy { .. } => "SparseTopKCategoricalAccuracy",
            MetricFn::MeanAbsoluteError => "MeanAbsoluteError",
            MetricFn::MeanSquaredError => "MeanSquaredError",
        }
    }

    fn default_name(&self) -> &'static str {
        match self {
            MetricFn::Accuracy => "accuracy",
            MetricFn::BinaryAccuracy { .. } => "binary_accuracy",
            MetricFn::CategoricalAccuracy => "categorical_accuracy",
            MetricFn::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            MetricFn::TopKCategoricalAccuracy { .. } => "top_k_categorical_accuracy",
            MetricFn::SparseTopKCategoricalAccuracy { .. } => "sparse_top_k_categorical_accuracy",
            MetricFn::MeanAbsoluteError => "mean_absolute_error",
            MetricFn::MeanSquaredError => "mean_squared_error",
        }
    }

    /// Per-sample values and their shape.
    fn values(&self, yt: &Tensor, yp: &Tensor) -> Result<(Vec<f64>, Vec<usize>)> {
        let obj = self.class_name();
        let argmax = |row: &[f32]| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best
        };
        let rows_of = |t: &Tensor| -> Result<(usize, usize)> {
            let c = *t.shape().last().ok_or_else(|| Error::invalid(obj, "y_pred must have a class axis"))?;
            Ok((t.len().checked_div(c).unwrap_or(0), c))
        };
        let in_top_k = |row: &[f32], label: usize, k: i64| -> f64 {
            let v = row.get(label).copied().unwrap_or(f32::NAN);
            let greater = row.iter().filter(|&&x| x > v).count() as i64;
            if v.is_finite() && greater < k { 1.0 } else { 0.0 }
        };
        match self {
            MetricFn::Accuracy
            | MetricFn::BinaryAccuracy { .. }
            | MetricFn::MeanAbsoluteError
            | MetricFn::MeanSquaredError => {
                let (ts, ps) = same_rank(yt.shape(), yp.shape());
                if ts != ps {
                    return Err(Error::shape(format!("{obj}: y_true"), &ps, yt.shape()));
                }
                let (t, p) = (yt.as_slice(), yp.as_slice());
                match self {
                    MetricFn::Accuracy => Ok((t.iter().zip(p).map(|(a, b)| f64::from(u8::from(a == b))).collect(), ps)),
                    MetricFn::BinaryAccuracy { threshold } => {
                        let th = *threshold as f32;
                        let v = t
                            .iter()
                            .zip(p)
                            .map(|(&a, &b)| f64::from(u8::from(a == f32::from(u8::from(b > th)))))
                            .collect();
                        Ok((v, ps))
                    }
                    _ => {
                        let c = ps.last().copied().unwrap_or(1).max(1);
                        let sq = matches!(self, MetricFn::MeanSquaredError);
                        let v = t
                            .chunks(c)
                            .zip(p.chunks(c))
                            .map(|(a, b)| {
                                a.iter()
                                    .zip(b)
                                    .map(|(&x, &y)| {
                                        let d = f64::from(x) - f64::from(y);
                                        if sq { d * d } else { d.abs() }
                                    })
                                    .sum::<f64>()
                                    / c as f64
                            })
                            .collect();
                        let vs = if ps.is_empty() { vec![] } else { ps[..ps.len() - 1].to_vec() };
                        Ok((v, vs))
                    }
                }
            }
            MetricFn::CategoricalAccuracy | MetricFn::TopKCategoricalAccuracy { .. } => {
                if yt.shape() != yp.shape() {
                    return Err(Error::shape(format!("{obj}: y_true (one-hot)"), yp.shape(), yt.shape()));
                }
                let (n, c) = rows_of(yp)?;
                let (t, p) = (yt.as_slice(), yp.as_slice());
                let v = (0..n)
                    .map(|r| {
                        let (tr, pr) = (&t[r * c..(r + 1) * c], &p[r * c..(r + 1) * c]);
                        match self {
                            MetricFn::TopKCategoricalAccuracy { k } => in_top_k(pr, argmax(tr), *k),
                            _ => f64::from(u8::from(argmax(tr) == argmax(pr))),
                        }
                    })
                    .collect();
                Ok((v, yp.shape()[..yp.rank() - 1].to_vec()))
            }
            MetricFn::SparseCategoricalAccuracy | MetricFn::SparseTopKCategoricalAccuracy { .. } => {
                let (n, c) = rows_of(yp)?;
                if yt.len() != n {
                    return Err(Error::shape(
                        format!("{obj}: y_true (class indices)"),
                        &yp.shape()[..yp.rank() - 1],
                        yt.shape(),
                    ));
                }
                let p = yp.as_slice();
                let v = yt
                    .as_slice()
                    .iter()
                    .enumerate()
                    .map(|(r, &lab)| {
                        let pr = &p[r * c..(r + 1) * c];
                        match self {
                            MetricFn::SparseTopKCategoricalAccuracy { k } => {
                                if lab >= 0.0 && (lab as usize) < c {
                                    in_top_k(pr, lab as usize, *k)
                                } else {
                                    0.0
                                }
                            }
                            _ => f64::from(u8::from(lab == argmax(pr) as f32)),
                        }
                    })
                    .collect();
                // Keras keeps y_true's shape, then squeezes a trailing 1.
                let mut shape = yt.shape().to_vec();
                if shape.len() > 1 && shape.last() == Some(&1) && matches!(self, MetricFn::SparseCategoricalAccuracy) {
                    shape.pop();
                }
                Ok((v, shape))
            }
        }
    }
}

/// `MeanMetricWrapper`: the weighted mean of a per-sample function.
#[derive(Clone, Debug)]
pub struct MeanMetricWrapper {
    /// The function.
    pub func: MetricFn,
    name: String,
    total: f64,
    count: f64,
}

impl MeanMetricWrapper {
    /// A metric with Keras's default name.
    pub fn new(func: MetricFn) -> Self {
        MeanMetricWrapper { name: func.default_name().into(), func, total: 0.0, count: 0.0 }
    }
    /// Renames it.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

fn base_config(name: &str) -> Object {
    let mut o = Object::new();
    o.insert("name", Json::from(name));
    o.insert("dtype", Json::from("float32"));
    o
}

impl Metric for MeanMetricWrapper {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        self.func.class_name()
    }
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
        let (v, shape) = self.func.values(y_true, y_pred)?;
        let (t, c) = samplewise(self.func.class_name(), &v, &shape, sample_weight)?;
        self.total += t;
        self.count += c;
        Ok(())
    }
    fn result(&self) -> f32 {
        if self.count == 0.0 { 0.0 } else { (self.total / self.count) as f32 }
    }
    fn reset_state(&mut self) {
        self.total = 0.0;
        self.count = 0.0;
    }
    fn get_config(&self) -> Json {
        let mut o = base_config(&self.name);
        match self.func {
            MetricFn::BinaryAccuracy { threshold } => {
                o.insert("threshold", Json::from(threshold));
            }
            MetricFn::TopKCategoricalAccuracy { k } | MetricFn::SparseTopKCategoricalAccuracy { k } => {
                o.insert("k", Json::from(k));
            }
            _ => {}
        }
        Json::Object(o)
    }
}

/// `Mean` (the loss tracker) and `RootMeanSquaredError` (the square root of the mean squared error).
#[derive(Clone, Debug)]
pub struct Mean {
    name: String,
    root_squared_error: bool,
    total: f64,
    count: f64,
}

impl Mean {
    /// `keras.metrics.Mean(name)`.
    pub fn new(name: impl Into<String>) -> Mean {
        Mean { name: name.into(), root_squared_error: false, total: 0.0, count: 0.0 }
    }
    /// `keras.metrics.RootMeanSquaredError()`.
    pub fn root_mean_squared_error() -> Mean {
        Mean { name: "root_mean_squared_error".into(), root_squared_error: true, total: 0.0, count: 0.0 }
    }
    /// `Mean.update_state(values, sample_weight)`.
    pub fn update_values(&mut self, values: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
        let (t, c) = samplewise("Mean", &f64s(values), values.shape(), sample_weight)?;
        self.total += t;
        self.count += c;
        Ok(())
    }
}

impl Metric for Mean {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        if self.root_squared_error { "RootMeanSquaredError" } else { "Mean" }
    }
    /// For `Mean`, `y_pred` holds the values (`y_true` is ignored).
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
        if !self.root_squared_error {
            return self.update_values(y_pred, sample_weight);
        }
        let (ts, ps) = same_rank(y_true.shape(), y_pred.shape());
        if ts != ps {
            return Err(Error::shape("RootMeanSquaredError: y_true", &ps, y_true.shape()));
        }
        let sq: Vec<f64> = y_true
            .as_slice()
            .iter()
            .zip(y_pred.as_slice())
            .map(|(&a, &b)| (f64::from(b) - f64::from(a)).powi(2))
            .collect();
        let (t, c) = samplewise("RootMeanSquaredError", &sq, &ps, sample_weight)?;
        self.total += t;
        self.count += c;
        Ok(())
    }
    fn result(&self) -> f32 {
        let m = if self.count == 0.0 { 0.0 } else { self.total / self.count };
        (if self.root_squared_error { m.sqrt() } else { m }) as f32
    }
    fn reset_state(&mut self) {
        self.total = 0.0;
        self.count = 0.0;
    }
    fn get_config(&self) -> Json {
        Json::Object(base_config(&self.name))
    }
}

/// Confusion counts at thresholds, weighted: (tp, fp, tn, fn) per threshold.
#[derive(Clone, Debug, Default)]
struct Confusion {
    tp: Vec<f64>,
    fp: Vec<f64>,
    tn: Vec<f64>,
    fn_: Vec<f64>,
}

/// Per-element weights for confusion counts (`sample_weight` broadcast to `y_pred`).
fn element_weights(obj: &str, y_pred: &Tensor, sw: Option<&Tensor>) -> Result<Vec<f64>> {
    let n = y_pred.len();
    let Some(sw) = sw else { return Ok(vec![1.0; n]) };
    let w = f64s(sw);
    if w.len() == n {
        return Ok(w);
    }
    if w.len() == 1 {
        return Ok(vec![w[0]; n]);
    }
    let rows = y_pred.shape().first().copied().unwrap_or(1).max(1);
    if w.len() == rows {
        let per = n / rows;
        return Ok((0..n).map(|i| w[i / per.max(1)]).collect());
    }
    Err(Error::shape(format!("{obj}: sample_weight"), y_pred.shape(), sw.shape()))
}

fn check_pair(obj: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
    let (ps, ts) = same_rank(y_pred.shape(), y_true.shape());
    if ps != ts {
        return Err(Error::shape(format!("{obj}: y_true"), &ps, y_true.shape()));
    }
    Ok(())
}

/// `Precision` or `Recall` at one or more thresholds.
#[derive(Clone, Debug)]
pub struct PrecisionRecall {
    recall: bool,
    name: String,
    thresholds_config: Json,
    thresholds: Vec<f32>,
    c: Confusion,
}

impl PrecisionRecall {
    /// `keras.metrics.Precision(thresholds=None)`.
    pub fn precision() -> Self {
        Self::with(false, "precision", Json::Null, vec![0.5])
    }
    /// `keras.metrics.Recall(thresholds=None)`.
    pub fn recall() -> Self {
        Self::with(true, "recall", Json::Null, vec![0.5])
    }
    fn with(recall: bool, name: &str, cfg: Json, thresholds: Vec<f32>) -> Self {
        let n = thresholds.len();
        PrecisionRecall {
            recall,
            name: name.into(),
            thresholds_config: cfg,
            thresholds,
            c: Confusion { tp: vec![0.0; n], fp: vec![0.0; n], tn: vec![0.0; n], fn_: vec![0.0; n] },
        }
    }
    /// Sets one threshold (config `thresholds: t`).
    pub fn with_threshold(self, t: f64) -> Self {
        Self::with(self.recall, &self.name, Json::from(t), vec![t as f32])
    }
    /// Per-threshold results (the metric's value when several thresholds are set).
    pub fn results(&self) -> Vec<f32> {
        let (num, other) = if self.recall { (&self.c.tp, &self.c.fn_) } else { (&self.c.tp, &self.c.fp) };
        num.iter().zip(other).map(|(&a, &b)| if a + b == 0.0 { 0.0 } else { (a / (a + b)) as f32 }).collect()
    }
}

impl Metric for PrecisionRecall {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        if self.recall { "Recall" } else { "Precision" }
    }
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
        check_pair(self.class_name(), y_true, y_pred)?;
        let w = element_weights(self.class_name(), y_pred, sample_weight)?;
        for (((&t, &p), &wi), _) in y_true.as_slice().iter().zip(y_pred.as_slice()).zip(&w).zip(0..) {
            let pos = t != 0.0;
            for (i, &th) in self.thresholds.iter().enumerate() {
                let pred = p > th;
                match (pos, pred) {
                    (true, true) => self.c.tp[i] += wi,
                    (false, true) => self.c.fp[i] += wi,
                    (true, false) => self.c.fn_[i] += wi,
                    (false, false) => self.c.tn[i] += wi,
                }
            }
        }
        Ok(())
    }
    fn result(&self) -> f32 {
        self.results().first().copied().unwrap_or(0.0)
    }
    fn reset_state(&mut self) {
        let n = self.thresholds.len();
        self.c = Confusion { tp: vec![0.0; n], fp: vec![0.0; n], tn: vec![0.0; n], fn_: vec![0.0; n] };
    }
    fn get_config(&self) -> Json {
        let mut o = base_config(&self.name);
        o.insert("thresholds", self.thresholds_config.clone());
        o.insert("top_k", Json::Null);
        o.insert("class_id", Json::Null);
        Json::Object(o)
    }
}

/// Which curve an [`Auc`] integrates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AucCurve {
    /// Receiver operating characteristic (`"ROC"`).
    Roc,
    /// Precision-recall (`"PR"`).
    Pr,
}

/// How an [`Auc`] sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AucSummation {
    /// Trapezoids (ROC), Davis-Goadrich interpolation (PR).
    Interpolation,
    /// Left/right minimum.
    Minoring,
    /// Left/right maximum.
    Majoring,
}

/// `keras.metrics.AUC` (single label).
#[derive(Clone, Debug)]
pub struct Auc {
    name: String,
    num_thresholds: usize,
    curve: AucCurve,
    summation: AucSummation,
    from_logits: bool,
    c: Confusion,
}

impl Default for Auc {
    fn default() -> Self {
        Auc::new(200, AucCurve::Roc, AucSummation::Interpolation)
    }
}

impl Auc {
    /// AUC with `num_thresholds` (> 1), a curve and a summation method.
    pub fn new(num_thresholds: usize, curve: AucCurve, summation: AucSummation) -> Auc {
        let n = num_thresholds.max(2);
        Auc {
            name: "auc".into(),
            num_thresholds: n,
            curve,
            summation,
            from_logits: false,
            c: Confusion { tp: vec![0.0; n], fp: vec![0.0; n], tn: vec![0.0; n], fn_: vec![0.0; n] },
        }
    }

    /// The thresholds Keras uses: `[-eps, 1/(n-1), ..., (n-2)/(n-1), 1+eps]`.
    pub fn thresholds(&self) -> Vec<f64> {
        let n = self.num_thresholds;
        let mut t = vec![-1e-7];
        t.extend((0..n - 2).map(|i| (i + 1) as f64 / (n - 1) as f64));
        t.push(1.0 + 1e-7);
        t
    }
}

impl Metric for Auc {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        "AUC"
    }
    fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
        check_pair("AUC", y_true, y_pred)?;
        let w = element_weights("AUC", y_pred, sample_weight)?;
        let n = self.num_thresholds;
        let mut tpb = vec![0.0f64; n];
        let mut fpb = vec![0.0f64; n];
        let (mut tot_t, mut tot_f) = (0.0, 0.0);
        for ((&t, &p), &wi) in y_true.as_slice().iter().zip(y_pred.as_slice()).zip(&w) {
            let p = if self.from_logits { 1.0 / (1.0 + (-p).exp()) } else { p };
            let p = p.clamp(0.0, 1.0);
            // Keras's optimized path: bucket = relu(ceil(p * (n - 1)) - 1).
            let b = ((p * (n as f32 - 1.0)).ceil() - 1.0).max(0.0) as usize;
            let b = b.min(n - 1);
            if t != 0.0 {
                tpb[b] += wi;
                tot_t += wi;
            } else {
                fpb[b] += wi;
                tot_f += wi;
            }
        }
        let (mut ct, mut cf) = (0.0, 0.0);
        for i in (0..n).rev() {
            ct += tpb[i];
            cf += fpb[i];
            self.c.tp[i] += ct;
            self.c.fp[i] += cf;
            self.c.tn[i] += tot_f - cf;
            self.c.fn_[i] += tot_t - ct;
        }
        Ok(())
    }
    fn result(&self) -> f32 {
        let n = self.num_thresholds;
        let c = &self.c;
        let div = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        if self.curve == AucCurve::Pr && self.summation == AucSummation::Interpolation {
            let mut total = 0.0;
            for i in 0..n - 1 {
                let dtp = c.tp[i] - c.tp[i + 1];
                let p0 = c.tp[i] + c.fp[i];
                let p1 = c.tp[i + 1] + c.fp[i + 1];
                let dp = p0 - p1;
                let slope = div(dtp, dp.max(0.0));
                let intercept = c.tp[i + 1] - slope * p1;
                let ratio = if p0 > 0.0 && p1 > 0.0 { div(p0, p1.max(0.0)) } else { 1.0 };
                total += div(slope * (dtp + intercept * ratio.ln()), (c.tp[i + 1] + c.fn_[i + 1]).max(0.0));
            }
            return total as f32;
        }
        let recall: Vec<f64> = (0..n).map(|i| div(c.tp[i], c.tp[i] + c.fn_[i])).collect();
        let (x, y): (Vec<f64>, Vec<f64>) = match self.curve {
            AucCurve::Roc => ((0..n).map(|i| div(c.fp[i], c.fp[i] + c.tn[i])).collect(), recall),
            AucCurve::Pr => (recall, (0..n).map(|i| div(c.tp[i], c.tp[i] + c.fp[i])).collect()),
        };
        let mut total = 0.0;
        for i in 0..n - 1 {
            let h = match self.summation {
                AucSummation::Interpolation => (y[i] + y[i + 1]) / 2.0,
                AucSummation::Minoring => y[i].min(y[i + 1]),
                AucSummation::Majoring => y[i].max(y[i + 1]),
            };
            total += (x[i] - x[i + 1]) * h;
        }
        total as f32
    }
    fn reset_state(&mut self) {
        let n = self.num_thresholds;
        self.c = Confusion { tp: vec![0.0; n], fp: vec![0.0; n], tn: vec![0.0; n], fn_: vec![0.0; n] };
    }
    fn get_config(&self) -> Json {
        let mut o = base_config(&self.name);
        o.insert("num_thresholds", Json::from(self.num_thresholds));
        o.insert("curve", Json::from(if self.curve == AucCurve::Roc { "ROC" } else { "PR" }));
        o.insert(
            "summation_method",
            Json::from(match self.summation {
                AucSummation::Interpolation => "interpolation",
                AucSummation::Minoring => "minoring",
                AucSummation::Majoring => "majoring",
            }),
        );
        o.insert("multi_label", Json::from(false));
        o.insert("num_labels", Json::Null);
        o.insert("label_weights", Json::Null);
        o.insert("from_logits", Json::from(self.from_logits));
        Json::Object(o)
    }
}

/// Class names (and their snake-case names and aliases) [`get`] resolves.
pub const METRIC_NAMES: &[&str] = &[
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "Mean",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Precision",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "auc",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "mean",
    "mean_absolute_error",
    "mean_squared_error",
    "precision",
    "recall",
    "root_mean_squared_error",
    "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
    "mae",
    "MAE",
    "mse",
    "MSE",
];

/// Resolves a metric name as `keras.metrics.get` does (class name, its snake-case form, or
/// `mse`/`mae`), with defaults.
pub fn get(name: &str) -> Result<Box<dyn Metric>> {
    from_config(name, &Json::Null)
}

/// Parses `keras.metrics.serialize` output or a name.
pub fn deserialize(value: &Json) -> Result<Box<dyn Metric>> {
    let (class, cfg) = split_serialized("metric", value)?;
    from_config(class, cfg)
}

/// Builds a metric from its class name and `get_config()`.
pub fn from_config(class_name: &str, cfg: &Json) -> Result<Box<dyn Metric>> {
    let mut r = Reader::new(class_name, cfg)?;
    let name = r.opt_str("name")?.map(str::to_string);
    if let Some(d) = r.opt_str("dtype")?
        && d != "float32"
    {
        return Err(r.err("dtype", format!("only float32 is supported, found {d:?}")));
    }
    let wrap = |f: MetricFn, name: Option<String>| -> Box<dyn Metric> {
        let m = MeanMetricWrapper::new(f);
        Box::new(match name {
            Some(n) => m.with_name(n),
            None => m,
        })
    };
    let m: Box<dyn Metric> = match class_name {
        "Accuracy" | "accuracy" => wrap(MetricFn::Accuracy, name),
        "BinaryAccuracy" | "binary_accuracy" => {
            wrap(MetricFn::BinaryAccuracy { threshold: r.f64("threshold", 0.5)? }, name)
        }
        "CategoricalAccuracy" | "categorical_accuracy" => wrap(MetricFn::CategoricalAccuracy, name),
        "SparseCategoricalAccuracy" | "sparse_categorical_accuracy" => wrap(MetricFn::SparseCategoricalAccuracy, name),
        "TopKCategoricalAccuracy" | "top_k_categorical_accuracy" => {
            wrap(MetricFn::TopKCategoricalAccuracy { k: r.opt_int("k")?.unwrap_or(5) }, name)
        }
        "SparseTopKCategoricalAccuracy" | "sparse_top_k_categorical_accuracy" => {
            if r.bool("from_sorted_ids", false)? {
                return Err(Error::Unsupported {
                    object: class_name.into(),
                    option: "from_sorted_ids".into(),
                    why: "pass scores, not sorted ids".into(),
                });
            }
            wrap(MetricFn::SparseTopKCategoricalAccuracy { k: r.opt_int("k")?.unwrap_or(5) }, name)
        }
        "MeanAbsoluteError" | "mean_absolute_error" | "mae" | "MAE" => wrap(MetricFn::MeanAbsoluteError, name),
        "MeanSquaredError" | "mean_squared_error" | "mse" | "MSE" => wrap(MetricFn::MeanSquaredError, name),
        "RootMeanSquaredError" | "root_mean_squared_error" => {
            let mut m = Mean::root_mean_squared_error();
            if let Some(n) = name {
                m.name = n;
            }
            Box::new(m)
        }
        "Mean" | "mean" => Box::new(Mean::new(name.unwrap_or_else(|| "mean".into()))),
        "Precision" | "precision" | "Recall" | "recall" => {
            for opt in ["top_k", "class_id"] {
                let key: &'static str = if opt == "top_k" { "top_k" } else { "class_id" };
                if r.has(key) {
                    return Err(Error::Unsupported {
                        object: class_name.into(),
                        option: opt.into(),
                        why: "top_k and class_id filtering are not implemented; slice y_pred instead".into(),
                    });
                }
            }
            let recall = class_name.eq_ignore_ascii_case("recall");
            let default_name = if recall { "recall" } else { "precision" };
            let mut m = PrecisionRecall::with(recall, default_name, Json::Null, vec![0.5]);
            match r.raw("thresholds") {
                None => {}
                Some(Json::Number(n)) => m = m.with_threshold(n.as_f64()),
                Some(v @ Json::Array(items)) => {
                    let ts: Option<Vec<f32>> = items.iter().map(|x| x.as_f64().map(|f| f as f32)).collect();
                    let ts = ts.ok_or_else(|| r.err("thresholds", "must hold numbers"))?;
                    m = PrecisionRecall::with(recall, default_name, v.clone(), ts);
                }
                Some(other) => {
                    return Err(r.err("thresholds", format!("must be a number or a list, found {}", other.kind())));
                }
            }
            if let Some(n) = name {
                m.name = n;
            }
            Box::new(m)
        }
        "AUC" | "auc" => {
            let n = r.opt_int("num_thresholds")?.unwrap_or(200);
            if n <= 1 || n > 1_000_000 {
                return Err(r.err("num_thresholds", format!("must be in (1, 1000000], found {n}")));
            }
            let curve = match r.str("curve", "ROC")? {
                "ROC" => AucCurve::Roc,
                "PR" => AucCurve::Pr,
                other => return Err(r.err("curve", format!("must be ROC or PR, found {other:?}"))),
            };
            let summation = match r.str("summation_method", "interpolation")? {
                "interpolation" => AucSummation::Interpolation,
                "minoring" => AucSummation::Minoring,
                "majoring" => AucSummation::Majoring,
                other => {
                    return Err(r.err(
                        "summation_method",
                        format!("must be interpolation, minoring or majoring, found {other:?}"),
                    ));
                }
            };
            if r.bool("multi_label", false)? || r.has("label_weights") || r.has("num_labels") || r.has("thresholds") {
                return Err(Error::Unsupported {
                    object: "AUC".into(),
                    option: "multi_label / num_labels / label_weights / thresholds".into(),
                    why: "only single-label AUC over evenly spaced thresholds is implemented".into(),
                });
            }
            let mut m = Auc::new(n as usize, curve, summation);
            m.from_logits = r.bool("from_logits", false)?;
            if let Some(n) = name {
                m.name = n;
            }
            Box::new(m)
        }
        other => return Err(Error::UnknownName { kind: "metric", name: other.into(), known: METRIC_NAMES.to_vec() }),
    };
    r.finish()?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_metric_names_the_known_ones() {
        let e = get("acc").unwrap_err().to_string();
        assert!(e.starts_with("unknown metric `acc` (did you mean `Accuracy`?); known names: AUC, Accuracy"), "{e}");
    }

    #[test]
    fn reset_clears_state() {
        let mut m = get("mse").unwrap();
        let t = Tensor::from_vec(&[2, 1], vec![0.0, 1.0]).unwrap();
        let p = Tensor::from_vec(&[2, 1], vec![1.0, 1.0]).unwrap();
        m.update_state(&t, &p, None).unwrap();
        assert_eq!(m.result(), 0.5);
        m.reset_state();
        assert_eq!(m.result(), 0.0);
    }
}
