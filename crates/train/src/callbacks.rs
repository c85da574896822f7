//! Training callbacks with Keras 3's hooks, options, defaults, decisions and printed messages.
//!
//! Mirrors `keras/src/callbacks/`: `callback.py` (the hooks), `callback_list.py` (order: the
//! user's callbacks, then History, then the progress bar, all sharing one logs dict),
//! `monitor_callback.py` (how `mode="auto"` picks a direction and what counts as an improvement),
//! `early_stopping.py`, `model_checkpoint.py`, `reduce_lr_on_plateau.py`, `csv_logger.py`,
//! `terminate_on_nan.py`, `learning_rate_scheduler.py` and `lambda_callback.py`.
//!
//! The fit loop (in a crate above this one) owns the model and implements [`TrainContext`]; the
//! callbacks only see the model through it. A driver calls, per `fit`:
//! `on_train_begin`, then per epoch `on_epoch_begin`, `on_train_batch_end` for each batch (logs:
//! the running `loss` and metrics), `on_epoch_end` (logs: `loss`, the compiled metrics,
//! `val_loss`, `val_<metric>`...; [`ReduceLROnPlateau`] and [`LearningRateScheduler`] add
//! `learning_rate` to them, as Keras does), stopping after the epoch in which a callback called
//! [`TrainContext::stop_training`]; then `on_train_end` with the last epoch's logs.
//!
//! # Comparisons
//! Keras compares a monitored value with `ops.less`/`ops.greater` on Python floats, which the
//! backend converts to float32 tensors; strata compares the same float32 values, so a value that
//! differs from the best only beyond float32 precision is no improvement in both. `min_delta` is
//! applied as Keras does: an improvement must beat the reference by more than `|min_delta|`, and
//! NaN never improves anything.
//!
//! # Printed text
//! Verbose callbacks print Keras's messages (`\nEpoch 3: ReduceLROnPlateau reducing learning
//! rate to 0.05.`, floats in Python's `repr`) to stdout, or to any writer given with
//! `.output(...)` ([`Capture`] keeps the text for tests). Keras's `warnings.warn` for a monitored
//! quantity missing from the logs goes to stderr once per callback.

use crate::error::{Error, Result};
use crate::history::History;
use crate::metrics;
use crate::progress::ProgbarLogger;
use crate::pyformat::{self, Value, py_repr};
use std::any::Any;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Per-epoch / per-batch logs in Keras order: `loss`, then compiled metrics, then `val_loss`,
/// `val_<metric>`..., and `learning_rate` when a callback adds it. Inserting an existing name
/// replaces its value in place, as assigning to a Python dict key does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logs {
    entries: Vec<(String, f64)>,
}

impl Logs {
    /// Empty logs.
    pub fn new() -> Logs {
        Logs::default()
    }
    /// The value logged under `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.entries.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
    /// Sets `name` (in place when present, else appended).
    pub fn insert(&mut self, name: impl Into<String>, value: f64) {
        let name = name.into();
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some(e) => e.1 = value,
            None => self.entries.push((name, value)),
        }
    }
    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }
    /// The names in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }
    /// Whether nothing is logged.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// How many values are logged.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

impl<S: Into<String>> FromIterator<(S, f64)> for Logs {
    fn from_iter<I: IntoIterator<Item = (S, f64)>>(iter: I) -> Logs {
        let mut logs = Logs::new();
        for (k, v) in iter {
            logs.insert(k, v);
        }
        logs
    }
}

/// Whether a metric improves upward (accuracy, AUC) or downward (losses, errors): Keras's
/// `Metric._direction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Larger is better.
    Up,
    /// Smaller is better.
    Down,
}

/// Keras's `_direction` of a metric by the name `compile(metrics=[...])` gives it: names strata's
/// [`metrics::get`] resolves (`accuracy`, `auc`, `mae`, `RootMeanSquaredError`, ...) and Keras's
/// other built-in metric names (`acc`, the crossentropies, hinges, `mape`, `msle`, `logcosh`,
/// `cosine_similarity`, `r2_score`). `None` for anything else (Keras's `Mean` and custom metrics
/// have no direction, and `mode=auto` then fails as it does in Keras).
pub fn metric_direction(name: &str) -> Option<Direction> {
    match name {
        "acc" | "cosine_similarity" | "CosineSimilarity" | "r2_score" | "R2Score" => return Some(Direction::Up),
        "crossentropy"
        | "ce"
        | "binary_crossentropy"
        | "BinaryCrossentropy"
        | "categorical_crossentropy"
        | "CategoricalCrossentropy"
        | "sparse_categorical_crossentropy"
        | "SparseCategoricalCrossentropy"
        | "hinge"
        | "Hinge"
        | "squared_hinge"
        | "SquaredHinge"
        | "categorical_hinge"
        | "CategoricalHinge"
        | "mape"
        | "MAPE"
        | "mean_absolute_percentage_error"
        | "MeanAbsolutePercentageError"
        | "msle"
        | "MSLE"
        | "mean_squared_logarithmic_error"
        | "MeanSquaredLogarithmicError"
        | "logcosh"
        | "log_cosh_error"
        | "LogCoshError" => return Some(Direction::Down),
        _ => {}
    }
    let m = metrics::get(name).ok()?;
    match m.class_name() {
        "Accuracy"
        | "BinaryAccuracy"
        | "CategoricalAccuracy"
        | "SparseCategoricalAccuracy"
        | "TopKCategoricalAccuracy"
        | "SparseTopKCategoricalAccuracy"
        | "Precision"
        | "Recall"
        | "AUC" => Some(Direction::Up),
        "MeanSquaredError" | "MeanAbsoluteError" | "RootMeanSquaredError" => Some(Direction::Down),
        _ => None,
    }
}

/// What a callback may do to the model being trained: the fit loop implements it.
pub trait TrainContext {
    /// Asks the loop to stop after the current epoch (`model.stop_training = True`).
    fn stop_training(&mut self);
    /// The optimizer's current learning rate (Keras stores it as float32).
    fn learning_rate(&self) -> f64;
    /// Sets the optimizer's learning rate (an error when it follows a schedule, as in Keras).
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;
    /// Saves the whole model (`model.save(path)`, `.keras` or `.h5`).
    fn save_model(&mut self, path: &Path) -> Result<()>;
    /// Saves the weights (`model.save_weights(path)`, `.weights.h5`).
    fn save_weights(&mut self, path: &Path) -> Result<()>;
    /// A copy of the model's weights (`model.get_weights()`), for `restore_best_weights`.
    fn snapshot_weights(&self) -> Box<dyn Any + Send>;
    /// Puts back weights from [`TrainContext::snapshot_weights`] (`model.set_weights`).
    fn restore_weights(&mut self, snapshot: &(dyn Any + Send)) -> Result<()>;
    /// The direction of the compiled metric called `name` (without `val_`), which `mode="auto"`
    /// reads as Keras reads `model.metrics[i]._direction`. The default resolves the name with
    /// [`metric_direction`]; a loop with custom metrics overrides it.
    fn metric_direction(&self, name: &str) -> Option<Direction> {
        metric_direction(name)
    }
}

/// A training callback: each hook defaults to doing nothing, as in Keras's `Callback`.
#[allow(unused_variables)]
pub trait Callback: Send {
    /// Once, before the first epoch.
    fn on_train_begin(&mut self, ctx: &mut dyn TrainContext) -> Result<()> {
        Ok(())
    }
    /// Before each epoch (0-based).
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut dyn TrainContext) -> Result<()> {
        Ok(())
    }
    /// After each training batch (0-based within the epoch), with the running logs.
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        Ok(())
    }
    /// After each epoch, with its logs (callbacks may add entries, e.g. `learning_rate`).
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        Ok(())
    }
    /// Once, after the last epoch, with its logs.
    fn on_train_end(&mut self, logs: &Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        Ok(())
    }
}

/// Where a verbose callback prints (stdout by default).
pub type Output = Box<dyn Write + Send>;

fn stdout() -> Output {
    Box::new(std::io::stdout())
}

/// `io_utils.print_msg`: the message, a newline, flushed. A closed or failing stdout does not
/// stop training (Keras would not notice either).
fn print_msg(out: &mut Output, msg: &str) {
    let _ = writeln!(out, "{msg}");
    let _ = out.flush();
}

/// A writer that keeps what is written, shared between clones (for tests and for showing the
/// text elsewhere).
#[derive(Clone, Debug, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// An empty capture.
    pub fn new() -> Capture {
        Capture::default()
    }
    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
    /// Forgets what was written.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    /// A boxed clone, to pass to `.output(...)`.
    pub fn output(&self) -> Output {
        Box::new(self.clone())
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How a monitored quantity improves (`mode` in Keras).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// `loss`/`val_loss` go down; other names take the compiled metric's direction
    /// ([`TrainContext::metric_direction`]); an unknown direction is an error, as in Keras.
    #[default]
    Auto,
    /// Smaller is better.
    Min,
    /// Larger is better.
    Max,
}

impl Mode {
    /// `"auto"`, `"min"` or `"max"`; Keras falls back to auto (with a warning) for anything else.
    pub fn parse(s: &str) -> Mode {
        match s {
            "min" => Mode::Min,
            "max" => Mode::Max,
            _ => Mode::Auto,
        }
    }
}

/// `MonitorCallback`: the monitored name, direction, best value and `min_delta`.
#[derive(Clone, Debug)]
struct Monitor {
    monitor: String,
    mode: Mode,
    best: Option<f64>,
    min_delta: f64,
    /// Resolved on the first `on_epoch_end`, as Keras does once the metrics are built.
    op: Option<Direction>,
    warned: bool,
}

impl Monitor {
    fn new(monitor: &str, mode: Mode, baseline: Option<f64>, min_delta: f64) -> Monitor {
        Monitor { monitor: monitor.into(), mode, best: baseline, min_delta: min_delta.abs(), op: None, warned: false }
    }

    fn set_op(&mut self, ctx: &dyn TrainContext, callback: &'static str) -> Result<()> {
        if self.op.is_some() {
            return Ok(());
        }
        let op = match self.mode {
            Mode::Min => Direction::Down,
            Mode::Max => Direction::Up,
            Mode::Auto => {
                let name = self.monitor.strip_prefix("val_").unwrap_or(&self.monitor);
                let from_metric = ctx.metric_direction(name);
                match (name, from_metric) {
                    (_, Some(d)) => d,
                    ("loss", None) => Direction::Down,
                    _ => {
                        return Err(Error::Callback {
                            callback,
                            problem: format!(
                                "received monitor={}, but Keras isn't able to automatically determine whether that \
                                 metric should be maximized or minimized; pass `mode(Mode::Max)` in order to monitor \
                                 based on the highest metric value, or `mode(Mode::Min)` in order to use the lowest value",
                                self.monitor
                            ),
                        });
                    }
                }
            }
        };
        self.op = Some(op);
        Ok(())
    }

    /// `monitor_op(current - min_delta, reference)` in float32, `true` when there is no reference.
    fn is_improvement(&self, current: f64, reference: Option<f64>) -> bool {
        let Some(reference) = reference else { return true };
        let r = reference as f32;
        match self.op {
            Some(Direction::Up) => ((current - self.min_delta) as f32) > r,
            _ => ((current + self.min_delta) as f32) < r,
        }
    }

    fn warn_missing(&mut self, what: String) {
        if !self.warned {
            self.warned = true;
            eprintln!("UserWarning: {what}");
        }
    }
}

fn available(logs: &Logs) -> String {
    logs.keys().collect::<Vec<_>>().join(",")
}

// ---------------------------------------------------------------- EarlyStopping

/// Stops training when a monitored quantity has stopped improving (`keras.callbacks.EarlyStopping`).
///
/// Defaults as Keras: `monitor="val_loss"`, `min_delta=0`, `patience=0`, `verbose=0`,
/// `mode=auto`, no baseline, `restore_best_weights=false`, `start_from_epoch=0`.
pub struct EarlyStopping {
    m: Monitor,
    patience: usize,
    verbose: u8,
    baseline: Option<f64>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    wait: usize,
    stopped_epoch: usize,
    best_weights: Option<Box<dyn Any + Send>>,
    best_epoch: usize,
    out: Output,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            m: Monitor::new("val_loss", Mode::Auto, None, 0.0),
            patience: 0,
            verbose: 0,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            wait: 0,
            stopped_epoch: 0,
            best_weights: None,
            best_epoch: 0,
            out: stdout(),
        }
    }
}

impl EarlyStopping {
    /// Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// The logged quantity to watch (`val_loss`).
    pub fn monitor(mut self, name: &str) -> Self {
        self.m.monitor = name.into();
        self
    }
    /// Smallest change that counts as an improvement (its absolute value is used).
    pub fn min_delta(mut self, d: f64) -> Self {
        self.m.min_delta = d.abs();
        self
    }
    /// Epochs without improvement before stopping.
    pub fn patience(mut self, p: usize) -> Self {
        self.patience = p;
        self
    }
    /// 1 prints "Epoch N: early stopping" and the restore message.
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// Direction of improvement.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.m.mode = mode;
        self
    }
    /// A value the monitored quantity must beat before the patience counter resets.
    pub fn baseline(mut self, b: f64) -> Self {
        self.baseline = Some(b);
        self
    }
    /// Put back the weights of the best epoch at the end of training.
    pub fn restore_best_weights(mut self, yes: bool) -> Self {
        self.restore_best_weights = yes;
        self
    }
    /// Epochs to wait before monitoring starts (warm-up).
    pub fn start_from_epoch(mut self, e: usize) -> Self {
        self.start_from_epoch = e;
        self
    }
    /// Where verbose messages go (stdout by default).
    pub fn output(mut self, out: Output) -> Self {
        self.out = out;
        self
    }
    /// The 0-based epoch at which training was stopped (0 when it was not).
    pub fn stopped_epoch(&self) -> usize {
        self.stopped_epoch
    }
    /// The best monitored value so far.
    pub fn best(&self) -> Option<f64> {
        self.m.best
    }
    /// The 0-based epoch of the best value.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }
    /// Epochs since the last improvement.
    pub fn wait(&self) -> usize {
        self.wait
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _ctx: &mut dyn TrainContext) -> Result<()> {
        self.wait = 0;
        self.stopped_epoch = 0;
        self.m.best = None;
        self.best_weights = None;
        self.best_epoch = 0;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        self.m.set_op(ctx, "EarlyStopping")?;
        let current = logs.get(&self.m.monitor);
        if current.is_none() {
            let msg = format!(
                "Early stopping conditioned on metric `{}` which is not available. Available metrics are: {}",
                self.m.monitor,
                available(logs)
            );
            self.m.warn_missing(msg);
        }
        let Some(current) = current else { return Ok(()) };
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(ctx.snapshot_weights());
            self.best_epoch = epoch;
        }
        self.wait += 1;
        if self.m.is_improvement(current, self.m.best) {
            self.m.best = Some(current);
            self.best_epoch = epoch;
            if self.restore_best_weights {
                self.best_weights = Some(ctx.snapshot_weights());
            }
            if self.baseline.is_none() || self.m.is_improvement(current, self.baseline) {
                self.wait = 0;
            }
            return Ok(());
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = epoch;
            ctx.stop_training();
        }
        Ok(())
    }

    fn on_train_end(&mut self, _logs: &Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        if self.stopped_epoch > 0 && self.verbose > 0 {
            print_msg(&mut self.out, &format!("Epoch {}: early stopping", self.stopped_epoch + 1));
        }
        if self.restore_best_weights
            && let Some(w) = &self.best_weights
        {
            if self.verbose > 0 {
                print_msg(
                    &mut self.out,
                    &format!("Restoring model weights from the end of the best epoch: {}.", self.best_epoch + 1),
                );
            }
            ctx.restore_weights(w.as_ref())?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- ModelCheckpoint

/// When [`ModelCheckpoint`] saves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SaveFreq {
    /// After every epoch (`save_freq="epoch"`).
    #[default]
    Epoch,
    /// Every this many batches (`save_freq=<int>`), counted across epochs.
    Batches(usize),
}

/// Saves the model or its weights during training (`keras.callbacks.ModelCheckpoint`).
///
/// `filepath` may name logged values and the 1-based epoch with Python format fields:
/// `"ckpt-{epoch:02d}-{val_loss:.2f}.keras"` (with [`SaveFreq::Batches`] also `{batch}`).
/// Defaults as Keras: `monitor="val_loss"`, `verbose=0`, `save_best_only=false`,
/// `save_weights_only=false`, `mode=auto`, `save_freq=epoch`, no `initial_value_threshold`.
/// The path must end in `.keras` or `.h5` (`.weights.h5` with `save_weights_only`); that is
/// checked at `on_train_begin` (Keras checks it in the constructor).
pub struct ModelCheckpoint {
    filepath: String,
    m: Monitor,
    verbose: u8,
    save_best_only: bool,
    save_weights_only: bool,
    save_freq: SaveFreq,
    batches_since_save: usize,
    last_batch: Option<usize>,
    current_epoch: usize,
    out: Output,
}

impl ModelCheckpoint {
    /// A checkpoint writing to `filepath` (a Python format template) with Keras's defaults.
    pub fn new(filepath: impl Into<String>) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            m: Monitor::new("val_loss", Mode::Auto, None, 0.0),
            verbose: 0,
            save_best_only: false,
            save_weights_only: false,
            save_freq: SaveFreq::Epoch,
            batches_since_save: 0,
            last_batch: None,
            current_epoch: 0,
            out: stdout(),
        }
    }
    /// The logged quantity `save_best_only` watches.
    pub fn monitor(mut self, name: &str) -> Self {
        self.m.monitor = name.into();
        self
    }
    /// 1 prints Keras's saving messages.
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// Save only when the monitored quantity improves.
    pub fn save_best_only(mut self, yes: bool) -> Self {
        self.save_best_only = yes;
        self
    }
    /// Save the weights (`.weights.h5`) instead of the whole model.
    pub fn save_weights_only(mut self, yes: bool) -> Self {
        self.save_weights_only = yes;
        self
    }
    /// Direction of improvement.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.m.mode = mode;
        self
    }
    /// When to save.
    pub fn save_freq(mut self, f: SaveFreq) -> Self {
        self.save_freq = f;
        self
    }
    /// The value the first save must beat (with `save_best_only`).
    pub fn initial_value_threshold(mut self, v: f64) -> Self {
        self.m.best = Some(v);
        self
    }
    /// Where verbose messages go (stdout by default).
    pub fn output(mut self, out: Output) -> Self {
        self.out = out;
        self
    }
    /// The best monitored value so far (kept across `fit` calls, as in Keras).
    pub fn best(&self) -> Option<f64> {
        self.m.best
    }

    fn check_path(&self) -> Result<()> {
        let bad = |problem: String| Error::Config { object: "ModelCheckpoint".into(), key: "filepath".into(), problem };
        if self.save_weights_only {
            if !self.filepath.ends_with(".weights.h5") {
                return Err(bad(format!(
                    "must end in `.weights.h5` (Keras weights format) when `save_weights_only` is set, found {:?}",
                    self.filepath
                )));
            }
        } else if !(self.filepath.ends_with(".keras") || self.filepath.ends_with(".h5")) {
            return Err(bad(format!("must end in `.keras` (Keras model format), found {:?}", self.filepath)));
        }
        Ok(())
    }

    /// `_get_file_path`: the template filled with `epoch + 1`, `batch + 1` and the logs.
    pub fn file_path(&self, epoch: usize, batch: Option<usize>, logs: &Logs) -> Result<String> {
        let lookup = |name: &str| -> Option<Value> {
            if let Some(v) = logs.get(name) {
                return Some(Value::Float(v));
            }
            match (name, batch) {
                ("epoch", _) => Some(Value::Int(epoch as i64 + 1)),
                ("batch", Some(b)) => Some(Value::Int(b as i64 + 1)),
                _ => None,
            }
        };
        // Keras passes `epoch=` and `**logs` together; a log named `epoch` is a TypeError there.
        if logs.get("epoch").is_some() {
            return Err(Error::Callback {
                callback: "ModelCheckpoint",
                problem: "the logs contain `epoch`, which the file name template reserves".into(),
            });
        }
        pyformat::format(&self.filepath, &lookup)
    }

    fn should_save(&mut self, epoch: usize, logs: &Logs, filepath: &str) -> bool {
        if !self.save_best_only {
            if self.verbose > 0 {
                print_msg(&mut self.out, &format!("\nEpoch {}: saving model to {filepath}", epoch + 1));
            }
            return true;
        }
        let Some(current) = logs.get(&self.m.monitor) else {
            let msg = format!("Can save best model only with {} available.", self.m.monitor);
            self.m.warn_missing(msg);
            return true;
        };
        let best_str = match self.m.best {
            None => "None".to_string(),
            Some(b) => fmt_fixed(b, 5),
        };
        if self.m.is_improvement(current, self.m.best) {
            if self.verbose > 0 {
                print_msg(
                    &mut self.out,
                    &format!(
                        "\nEpoch {}: {} improved from {best_str} to {}, saving model to {filepath}",
                        epoch + 1,
                        self.m.monitor,
                        fmt_fixed(current, 5)
                    ),
                );
            }
            self.m.best = Some(current);
            true
        } else {
            if self.verbose > 0 {
                print_msg(
                    &mut self.out,
                    &format!("\nEpoch {}: {} did not improve from {best_str}", epoch + 1, self.m.monitor),
                );
            }
            false
        }
    }

    fn save(&mut self, epoch: usize, batch: Option<usize>, logs: &Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        let filepath = self.file_path(epoch, batch, logs)?;
        if !self.should_save(epoch, logs, &filepath) {
            return Ok(());
        }
        let path = PathBuf::from(&filepath);
        if path.is_dir() {
            return Err(Error::Callback {
                callback: "ModelCheckpoint",
                problem: format!(
                    "please specify a non-directory filepath for ModelCheckpoint; filepath used is an existing directory: {filepath}"
                ),
            });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating the checkpoint directory", dir, e))?;
        }
        if self.save_weights_only {
            ctx.save_weights(&path)?;
        } else {
            ctx.save_model(&path)?;
        }
        if self.verbose > 0 {
            print_msg(&mut self.out, &format!("\nEpoch {}: finished saving model to {filepath}", epoch + 1));
        }
        Ok(())
    }
}

/// Python's `f"{x:.Nf}"` (`nan`, `inf` spelled as Python does).
fn fmt_fixed(x: f64, decimals: usize) -> String {
    if x.is_finite() { format!("{x:.decimals$}") } else { py_repr(x) }
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, _ctx: &mut dyn TrainContext) -> Result<()> {
        if let SaveFreq::Batches(0) = self.save_freq {
            return Err(Error::Config {
                object: "ModelCheckpoint".into(),
                key: "save_freq".into(),
                problem: "must be \"epoch\" or a positive number of batches".into(),
            });
        }
        self.check_path()
    }

    fn on_epoch_begin(&mut self, epoch: usize, _ctx: &mut dyn TrainContext) -> Result<()> {
        self.current_epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        let SaveFreq::Batches(n) = self.save_freq else { return Ok(()) };
        let add = match self.last_batch {
            Some(last) if batch > last => batch - last,
            _ => batch + 1,
        };
        self.batches_since_save += add;
        self.last_batch = Some(batch);
        if self.batches_since_save >= n {
            self.batches_since_save = 0;
            // `_save_model(batch=...)`: `{batch}` is available unless the logs define it.
            self.m.set_op(ctx, "ModelCheckpoint")?;
            let b = if logs.get("batch").is_some() { None } else { Some(batch) };
            self.save(self.current_epoch, b, logs, ctx)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        self.m.set_op(ctx, "ModelCheckpoint")?;
        if self.save_freq == SaveFreq::Epoch {
            self.save(epoch, None, logs, ctx)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- ReduceLROnPlateau

/// Reduces the learning rate when a monitored quantity has stopped improving
/// (`keras.callbacks.ReduceLROnPlateau`). Adds `learning_rate` to the epoch logs.
///
/// Defaults as Keras: `monitor="val_loss"`, `factor=0.1`, `patience=10`, `verbose=0`,
/// `mode=auto`, `min_delta=1e-4`, `cooldown=0`, `min_lr=0`. A `factor >= 1` is rejected at
/// `on_train_begin` (Keras rejects it in the constructor).
pub struct ReduceLROnPlateau {
    m: Monitor,
    factor: f64,
    patience: usize,
    verbose: u8,
    cooldown: usize,
    min_lr: f64,
    cooldown_counter: usize,
    wait: usize,
    out: Output,
}

impl Default for ReduceLROnPlateau {
    fn default() -> Self {
        ReduceLROnPlateau {
            m: Monitor::new("val_loss", Mode::Auto, None, 1e-4),
            factor: 0.1,
            patience: 10,
            verbose: 0,
            cooldown: 0,
            min_lr: 0.0,
            cooldown_counter: 0,
            wait: 0,
            out: stdout(),
        }
    }
}

impl ReduceLROnPlateau {
    /// Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// The logged quantity to watch.
    pub fn monitor(mut self, name: &str) -> Self {
        self.m.monitor = name.into();
        self
    }
    /// `new_lr = lr * factor` (must be < 1).
    pub fn factor(mut self, f: f64) -> Self {
        self.factor = f;
        self
    }
    /// Epochs without improvement before reducing.
    pub fn patience(mut self, p: usize) -> Self {
        self.patience = p;
        self
    }
    /// 1 prints "Epoch N: ReduceLROnPlateau reducing learning rate to X.".
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// Direction of improvement.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.m.mode = mode;
        self
    }
    /// Smallest change that counts as an improvement.
    pub fn min_delta(mut self, d: f64) -> Self {
        self.m.min_delta = d.abs();
        self
    }
    /// Epochs to wait after a reduction before counting again.
    pub fn cooldown(mut self, c: usize) -> Self {
        self.cooldown = c;
        self
    }
    /// Lower bound on the learning rate.
    pub fn min_lr(mut self, lr: f64) -> Self {
        self.min_lr = lr;
        self
    }
    /// Where verbose messages go (stdout by default).
    pub fn output(mut self, out: Output) -> Self {
        self.out = out;
        self
    }
    /// The best monitored value so far.
    pub fn best(&self) -> Option<f64> {
        self.m.best
    }

    fn reduce(&mut self, epoch: usize, ctx: &mut dyn TrainContext) -> Result<bool> {
        let old_lr = ctx.learning_rate();
        // `old_lr > np.float32(min_lr)`: numpy compares in float32 (the rate is a float32 value).
        if (old_lr as f32) > self.min_lr as f32 {
            let new_lr = (old_lr * self.factor).max(self.min_lr);
            ctx.set_learning_rate(new_lr)?;
            if self.verbose > 0 {
                print_msg(
                    &mut self.out,
                    &format!("\nEpoch {}: ReduceLROnPlateau reducing learning rate to {}.", epoch + 1, py_repr(new_lr)),
                );
            }
            return Ok(true);
        }
        Ok(false)
    }
}

impl Callback for ReduceLROnPlateau {
    fn on_train_begin(&mut self, _ctx: &mut dyn TrainContext) -> Result<()> {
        if self.factor >= 1.0 {
            return Err(Error::Config {
                object: "ReduceLROnPlateau".into(),
                key: "factor".into(),
                problem: format!("must be < 1.0, found {}", py_repr(self.factor)),
            });
        }
        self.m.best = None;
        self.cooldown_counter = 0;
        self.wait = 0;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        self.m.set_op(ctx, "ReduceLROnPlateau")?;
        logs.insert("learning_rate", ctx.learning_rate());
        let Some(current) = logs.get(&self.m.monitor) else {
            let msg = format!(
                "Learning rate reduction is conditioned on metric `{}` which is not available. Available metrics are: {}.",
                self.m.monitor,
                available(logs)
            );
            self.m.warn_missing(msg);
            return Ok(());
        };
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.m.is_improvement(current, self.m.best) {
            self.m.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience && self.reduce(epoch, ctx)? {
                self.cooldown_counter = self.cooldown;
                self.wait = 0;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- CSVLogger

/// Streams epoch results to a CSV file (`keras.callbacks.CSVLogger`).
///
/// The header is `epoch` then the first epoch's log names sorted (byte order, as Python sorts
/// strings); when none starts with `val_`, `val_<name>` columns are added for each (Keras
/// expects validation to appear later) and stay `NA` until then. Values are written as Python's
/// `csv` module writes them: floats in `repr`, rows ended by `\r\n`, fields quoted only when
/// they contain the separator, a quote or a line break. With `append`, rows go after an existing
/// file's content and the header is written only when that file is empty.
pub struct CSVLogger {
    filename: PathBuf,
    separator: char,
    append: bool,
    file: Option<std::fs::File>,
    keys: Option<Vec<String>>,
    header_done: bool,
    append_header: bool,
}

impl CSVLogger {
    /// A logger writing to `filename` with `,` and no append (Keras's defaults).
    pub fn new(filename: impl Into<PathBuf>) -> Self {
        CSVLogger {
            filename: filename.into(),
            separator: ',',
            append: false,
            file: None,
            keys: None,
            header_done: false,
            append_header: true,
        }
    }
    /// The field separator.
    pub fn separator(mut self, sep: char) -> Self {
        self.separator = sep;
        self
    }
    /// Append to an existing file instead of overwriting it.
    pub fn append(mut self, yes: bool) -> Self {
        self.append = yes;
        self
    }

    fn field(&self, s: &str) -> String {
        if s.contains(self.separator) || s.contains('"') || s.contains('\r') || s.contains('\n') {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }

    fn write_row(&mut self, fields: &[String]) -> Result<()> {
        let sep = self.separator.to_string();
        let line = fields.iter().map(|f| self.field(f)).collect::<Vec<_>>().join(&sep) + "\r\n";
        let file = self.file.as_mut().ok_or_else(|| Error::Callback {
            callback: "CSVLogger",
            problem: "on_epoch_end before on_train_begin opened the file".into(),
        })?;
        file.write_all(line.as_bytes())
            .and_then(|_| file.flush())
            .map_err(|e| Error::io("writing the CSV log", &self.filename, e))
    }
}

impl Callback for CSVLogger {
    fn on_train_begin(&mut self, _ctx: &mut dyn TrainContext) -> Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        if self.append {
            self.append_header = match std::fs::read(&self.filename) {
                Ok(bytes) => bytes.is_empty(),
                Err(_) => true,
            };
            opts.append(true).create(true);
        } else {
            self.append_header = true;
            opts.write(true).create(true).truncate(true);
        }
        self.file = Some(opts.open(&self.filename).map_err(|e| Error::io("opening the CSV log", &self.filename, e))?);
        self.keys = None;
        self.header_done = false;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, _ctx: &mut dyn TrainContext) -> Result<()> {
        if self.keys.is_none() {
            let mut keys: Vec<String> = logs.keys().map(str::to_string).collect();
            keys.sort();
            if !keys.iter().any(|k| k.starts_with("val_")) && !keys.is_empty() {
                let vals: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
                keys.extend(vals);
            }
            self.keys = Some(keys);
        }
        let keys = self.keys.clone().unwrap_or_default();
        if !self.header_done {
            self.header_done = true;
            if self.append_header {
                let header: Vec<String> = std::iter::once("epoch".to_string()).chain(keys.iter().cloned()).collect();
                self.write_row(&header)?;
            }
        }
        let row: Vec<String> = std::iter::once(epoch.to_string())
            .chain(keys.iter().map(|k| logs.get(k).map(py_repr).unwrap_or_else(|| "NA".into())))
            .collect();
        self.write_row(&row)
    }

    fn on_train_end(&mut self, _logs: &Logs, _ctx: &mut dyn TrainContext) -> Result<()> {
        self.file = None;
        self.header_done = false;
        Ok(())
    }
}

// ---------------------------------------------------------------- TerminateOnNaN

/// Stops training when a batch's loss is NaN or infinite (`keras.callbacks.TerminateOnNaN`):
/// prints `Batch N: Invalid loss, terminating training` and stops, or with `raise_error`
/// returns an error at once (so the other callbacks' `on_train_end` does not run).
pub struct TerminateOnNaN {
    raise_error: bool,
    out: Output,
}

impl Default for TerminateOnNaN {
    fn default() -> Self {
        TerminateOnNaN { raise_error: false, out: stdout() }
    }
}

impl TerminateOnNaN {
    /// Graceful stop (Keras's default).
    pub fn new() -> Self {
        Self::default()
    }
    /// Return an error instead of stopping gracefully.
    pub fn raise_error(mut self, yes: bool) -> Self {
        self.raise_error = yes;
        self
    }
    /// Where the message goes (stdout by default).
    pub fn output(mut self, out: Output) -> Self {
        self.out = out;
        self
    }
}

impl Callback for TerminateOnNaN {
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        if let Some(loss) = logs.get("loss")
            && !loss.is_finite()
        {
            if self.raise_error {
                return Err(Error::Callback {
                    callback: "TerminateOnNaN",
                    problem: format!(
                        "NaN or Inf loss encountered at batch {batch}. Loss value: {}. Terminating training immediately.",
                        py_repr(loss)
                    ),
                });
            }
            print_msg(&mut self.out, &format!("Batch {batch}: Invalid loss, terminating training"));
            ctx.stop_training();
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- LearningRateScheduler

/// A schedule `f(epoch, current_lr) -> new_lr`.
pub type Schedule = Box<dyn Fn(usize, f64) -> f64 + Send>;

/// Sets the learning rate at the start of each epoch from a function of the 0-based epoch and
/// the current rate (`keras.callbacks.LearningRateScheduler`), and logs `learning_rate` at the
/// end of each epoch.
pub struct LearningRateScheduler {
    schedule: Schedule,
    verbose: u8,
    out: Output,
}

impl LearningRateScheduler {
    /// A scheduler around `schedule` (verbose 0).
    pub fn new(schedule: impl Fn(usize, f64) -> f64 + Send + 'static) -> Self {
        LearningRateScheduler { schedule: Box::new(schedule), verbose: 0, out: stdout() }
    }
    /// 1 prints "Epoch N: LearningRateScheduler setting learning rate to X.".
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// Where the message goes (stdout by default).
    pub fn output(mut self, out: Output) -> Self {
        self.out = out;
        self
    }
}

impl Callback for LearningRateScheduler {
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut dyn TrainContext) -> Result<()> {
        let lr = (self.schedule)(epoch, ctx.learning_rate());
        ctx.set_learning_rate(lr)?;
        if self.verbose > 0 {
            print_msg(
                &mut self.out,
                &format!("\nEpoch {}: LearningRateScheduler setting learning rate to {}.", epoch + 1, py_repr(lr)),
            );
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        logs.insert("learning_rate", ctx.learning_rate());
        Ok(())
    }
}

// ---------------------------------------------------------------- LambdaCallback

type EpochFn = Box<dyn FnMut(usize, &Logs) + Send>;
type LogsFn = Box<dyn FnMut(&Logs) + Send>;

/// A callback made of closures (`keras.callbacks.LambdaCallback`): `on_epoch_begin(epoch)`,
/// `on_epoch_end(epoch, logs)`, `on_train_batch_end(batch, logs)`, `on_train_begin()`,
/// `on_train_end(logs)`. Unset hooks do nothing.
#[derive(Default)]
pub struct LambdaCallback {
    train_begin: Option<Box<dyn FnMut() + Send>>,
    epoch_begin: Option<Box<dyn FnMut(usize) + Send>>,
    batch_end: Option<EpochFn>,
    epoch_end: Option<EpochFn>,
    train_end: Option<LogsFn>,
}

impl LambdaCallback {
    /// A callback with no hooks set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Runs before training.
    pub fn on_train_begin(mut self, f: impl FnMut() + Send + 'static) -> Self {
        self.train_begin = Some(Box::new(f));
        self
    }
    /// Runs before each epoch with its 0-based index.
    pub fn on_epoch_begin(mut self, f: impl FnMut(usize) + Send + 'static) -> Self {
        self.epoch_begin = Some(Box::new(f));
        self
    }
    /// Runs after each batch with its index and logs.
    pub fn on_train_batch_end(mut self, f: impl FnMut(usize, &Logs) + Send + 'static) -> Self {
        self.batch_end = Some(Box::new(f));
        self
    }
    /// Runs after each epoch with its index and logs.
    pub fn on_epoch_end(mut self, f: impl FnMut(usize, &Logs) + Send + 'static) -> Self {
        self.epoch_end = Some(Box::new(f));
        self
    }
    /// Runs after training with the last logs.
    pub fn on_train_end(mut self, f: impl FnMut(&Logs) + Send + 'static) -> Self {
        self.train_end = Some(Box::new(f));
        self
    }
}

impl Callback for LambdaCallback {
    fn on_train_begin(&mut self, _ctx: &mut dyn TrainContext) -> Result<()> {
        if let Some(f) = &mut self.train_begin {
            f();
        }
        Ok(())
    }
    fn on_epoch_begin(&mut self, epoch: usize, _ctx: &mut dyn TrainContext) -> Result<()> {
        if let Some(f) = &mut self.epoch_begin {
            f(epoch);
        }
        Ok(())
    }
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, _ctx: &mut dyn TrainContext) -> Result<()> {
        if let Some(f) = &mut self.batch_end {
            f(batch, logs);
        }
        Ok(())
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, _ctx: &mut dyn TrainContext) -> Result<()> {
        if let Some(f) = &mut self.epoch_end {
            f(epoch, logs);
        }
        Ok(())
    }
    fn on_train_end(&mut self, logs: &Logs, _ctx: &mut dyn TrainContext) -> Result<()> {
        if let Some(f) = &mut self.train_end {
            f(logs);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- CallbackList

/// Calls a list of callbacks in Keras's order: the user's callbacks as given, then the
/// [`History`] (when added), then the progress bar (when added), all with the same logs, so a
/// `learning_rate` added by one callback reaches the ones after it and the History. The first
/// error stops the round and is returned.
#[derive(Default)]
pub struct CallbackList {
    callbacks: Vec<Box<dyn Callback>>,
    history: Option<History>,
    progbar: Option<ProgbarLogger>,
}

impl CallbackList {
    /// The given callbacks, without History or progress bar.
    pub fn new(callbacks: Vec<Box<dyn Callback>>) -> Self {
        CallbackList { callbacks, history: None, progbar: None }
    }
    /// Adds a History after the callbacks (`add_history=True`).
    pub fn with_history(mut self) -> Self {
        self.history = Some(History::default());
        self
    }
    /// Adds a progress bar last (`add_progbar=True`, when `verbose != 0`).
    pub fn with_progbar(mut self, progbar: ProgbarLogger) -> Self {
        self.progbar = Some(progbar);
        self
    }
    /// Appends a callback (before History and the progress bar).
    pub fn push(&mut self, cb: Box<dyn Callback>) {
        self.callbacks.push(cb);
    }
    /// The number of callbacks, History and progress bar included.
    pub fn len(&self) -> usize {
        self.callbacks.len() + usize::from(self.history.is_some()) + usize::from(self.progbar.is_some())
    }
    /// Whether the list calls nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The History, when added.
    pub fn history(&self) -> Option<&History> {
        self.history.as_ref()
    }
    /// Takes the History out (what `fit` returns).
    pub fn take_history(&mut self) -> Option<History> {
        self.history.take()
    }

    fn all(&mut self) -> impl Iterator<Item = &mut dyn Callback> {
        let user = self.callbacks.iter_mut().map(|c| c.as_mut() as &mut dyn Callback);
        let history = self.history.iter_mut().map(|h| h as &mut dyn Callback);
        let progbar = self.progbar.iter_mut().map(|p| p as &mut dyn Callback);
        user.chain(history).chain(progbar)
    }
}

impl Callback for CallbackList {
    fn on_train_begin(&mut self, ctx: &mut dyn TrainContext) -> Result<()> {
        self.all().try_for_each(|c| c.on_train_begin(ctx))
    }
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut dyn TrainContext) -> Result<()> {
        self.all().try_for_each(|c| c.on_epoch_begin(epoch, ctx))
    }
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        self.all().try_for_each(|c| c.on_train_batch_end(batch, logs, ctx))
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        self.all().try_for_each(|c| c.on_epoch_end(epoch, logs, ctx))
    }
    fn on_train_end(&mut self, logs: &Logs, ctx: &mut dyn TrainContext) -> Result<()> {
        self.all().try_for_each(|c| c.on_train_end(logs, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_keep_first_insertion_order() {
        let mut l: Logs = [("loss", 1.0), ("val_loss", 2.0)].into_iter().collect();
        l.insert("loss", 3.0);
        l.insert("learning_rate", 0.1);
        assert_eq!(l.iter().collect::<Vec<_>>(), [("loss", 3.0), ("val_loss", 2.0), ("learning_rate", 0.1)]);
        assert_eq!(l.get("missing"), None);
    }

    #[test]
    fn directions_follow_kerass_metrics() {
        assert_eq!(metric_direction("accuracy"), Some(Direction::Up));
        assert_eq!(metric_direction("acc"), Some(Direction::Up));
        assert_eq!(metric_direction("auc"), Some(Direction::Up));
        assert_eq!(metric_direction("mae"), Some(Direction::Down));
        assert_eq!(metric_direction("binary_crossentropy"), Some(Direction::Down));
        assert_eq!(metric_direction("mean"), None);
        assert_eq!(metric_direction("my_metric"), None);
    }

    #[test]
    fn improvements_compare_in_float32_beyond_min_delta() {
        let mut m = Monitor::new("val_loss", Mode::Min, None, 0.01);
        m.op = Some(Direction::Down);
        assert!(m.is_improvement(0.5, None));
        assert!(m.is_improvement(0.5, Some(0.52)));
        assert!(!m.is_improvement(0.5, Some(0.505)));
        assert!(!m.is_improvement(f64::NAN, Some(1.0)));
        let mut m = Monitor::new("x", Mode::Max, None, 0.0);
        m.op = Some(Direction::Up);
        // Equal as float32: no improvement, as in Keras.
        assert!(!m.is_improvement(0.1 + 1e-12, Some(0.1)));
    }
}
