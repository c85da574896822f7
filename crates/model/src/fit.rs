//! `fit`, `evaluate`, `train_on_batch`: Keras 3's training loop.
//!
//! What Keras does and strata mirrors (keras/src/trainers/trainer.py, data_adapters):
//! * batches of `batch_size` rows in order (the last one partial), the rows reshuffled each epoch
//!   when `shuffle` (strata's own seeded generator: the same order on every run, not Keras's);
//! * `validation_split` holds out the *last* `floor(n * split)` rows before any shuffling;
//! * `class_weight` becomes per-sample weights (`class_weight[label]`); it cannot be combined with
//!   `sample_weight`, as in Keras;
//! * one step: forward in training mode, the compiled loss (plus layer regularization losses),
//!   gradients of every trainable variable, one optimizer update; the metrics are updated with
//!   that step's predictions (before the update), as Keras's `train_step` does;
//! * the epoch's `loss` is the mean of the step losses weighted by batch size (Keras's loss
//!   tracker), the metrics their running results; validation runs `evaluate` at epoch end and its
//!   values are logged with a `val_` prefix.

use std::collections::BTreeMap;

use strata_tensor::{Tape, Tensor};
use strata_train::callbacks::{Callback, Logs, TrainContext};
use strata_train::history::History;
use strata_train::optimizers::Variable;
use strata_train::progress::{ProgbarLogger, Verbosity};

use crate::compile::{LossSpec, MetricSlot};
use crate::error::{Error, Result};
use crate::model::Model;

/// The options of [`Model::fit`] (Keras's keyword arguments, with its defaults).
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Number of epochs (default 1).
    pub epochs: usize,
    /// Rows per step (default 32).
    pub batch_size: usize,
    /// Progress output (default [`Verbosity::Auto`]: Keras's bar redrawn per batch when stdout is
    /// a terminal, one line per epoch otherwise; [`Verbosity::One`] forces the bar,
    /// [`Verbosity::Two`] the lines, [`Verbosity::Zero`] prints nothing).
    pub verbose: Verbosity,
    /// Reshuffle the training rows each epoch (default true).
    pub shuffle: bool,
    /// Fraction of the rows, taken from the end, used for validation (default 0).
    pub validation_split: f64,
    /// Explicit validation inputs and targets (wins over `validation_split`).
    pub validation_data: Option<(Vec<Tensor>, Tensor)>,
    /// One weight per row.
    pub sample_weight: Option<Tensor>,
    /// Weight per class index (from integer labels, or the argmax of one-hot targets).
    pub class_weight: Option<BTreeMap<usize, f64>>,
    /// The epoch to start at (resuming).
    pub initial_epoch: usize,
    /// Seed of the shuffling order.
    pub seed: u64,
}

impl Default for FitOptions {
    fn default() -> FitOptions {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            verbose: Verbosity::Auto,
            shuffle: true,
            validation_split: 0.0,
            validation_data: None,
            sample_weight: None,
            class_weight: None,
            initial_epoch: 0,
            seed: 0x5eed,
        }
    }
}

impl FitOptions {
    /// `epochs` epochs of `batch_size` rows, other options at Keras's defaults.
    pub fn new(epochs: usize, batch_size: usize) -> FitOptions {
        FitOptions { epochs, batch_size, ..FitOptions::default() }
    }
    /// Sets `verbose`.
    pub fn verbose(mut self, v: Verbosity) -> FitOptions {
        self.verbose = v;
        self
    }
    /// Sets `shuffle`.
    pub fn shuffle(mut self, s: bool) -> FitOptions {
        self.shuffle = s;
        self
    }
    /// Sets `validation_split`.
    pub fn validation_split(mut self, s: f64) -> FitOptions {
        self.validation_split = s;
        self
    }
    /// Sets `validation_data`.
    pub fn validation_data(mut self, x: Vec<Tensor>, y: Tensor) -> FitOptions {
        self.validation_data = Some((x, y));
        self
    }
    /// Sets `sample_weight`.
    pub fn sample_weight(mut self, w: Tensor) -> FitOptions {
        self.sample_weight = Some(w);
        self
    }
    /// Sets `class_weight`.
    pub fn class_weight(mut self, w: impl IntoIterator<Item = (usize, f64)>) -> FitOptions {
        self.class_weight = Some(w.into_iter().collect());
        self
    }
}

/// Rows `idx` of `t` (first axis).
pub(crate) fn take_rows(t: &Tensor, idx: &[usize]) -> Result<Tensor> {
    let n = t.shape().first().copied().unwrap_or(0);
    let row: usize = t.shape().iter().skip(1).product();
    let src = t.as_slice();
    let mut out = Vec::with_capacity(row * idx.len());
    for &i in idx {
        if i >= n {
            return Err(Error::invalid(format!("row {i} of a tensor with {n} rows"), "internal batching error"));
        }
        out.extend_from_slice(&src[i * row..(i + 1) * row]);
    }
    let mut shape = t.shape().to_vec();
    if let Some(first) = shape.first_mut() {
        *first = idx.len();
    }
    Ok(Tensor::from_vec(&shape, out)?)
}

fn rows(t: &Tensor) -> usize {
    t.shape().first().copied().unwrap_or(0)
}

/// Per-sample weights from `class_weight` and integer or one-hot targets.
fn class_weights_to_samples(y: &Tensor, cw: &BTreeMap<usize, f64>) -> Result<Tensor> {
    let n = rows(y);
    let row: usize = y.shape().iter().skip(1).product::<usize>().max(1);
    let ys = y.as_slice();
    let mut w = Vec::with_capacity(n);
    for r in 0..n {
        let vals = &ys[r * row..(r + 1) * row];
        let class = if row == 1 {
            vals[0].round() as usize
        } else {
            vals.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0
        };
        let weight = cw.get(&class).copied().ok_or_else(|| {
            Error::invalid(
                format!("class_weight has no entry for class {class} (row {r})"),
                "give a weight for every class that appears in y",
            )
        })?;
        w.push(weight as f32);
    }
    Ok(Tensor::from_vec(&[n], w)?)
}

fn train_err(object: &str, problem: impl Into<String>) -> strata_train::Error {
    strata_train::Error::Invalid { object: object.to_string(), problem: problem.into() }
}

/// The training state callbacks see.
struct Ctx<'a> {
    model: &'a mut Model,
    stop: bool,
}

impl TrainContext for Ctx<'_> {
    fn stop_training(&mut self) {
        self.stop = true;
    }
    fn learning_rate(&self) -> f64 {
        self.model.compiled.as_ref().map(|c| f64::from(c.optimizer.current_learning_rate())).unwrap_or(0.0)
    }
    fn set_learning_rate(&mut self, lr: f64) -> strata_train::Result<()> {
        if let Some(c) = self.model.compiled.as_mut() {
            c.optimizer.set_learning_rate(lr as f32);
        }
        Ok(())
    }
    fn save_model(&mut self, path: &std::path::Path) -> strata_train::Result<()> {
        self.model.rebuild().map_err(|e| train_err("ModelCheckpoint", e.to_string()))?;
        self.model.save(path).map_err(|e| train_err("ModelCheckpoint", e.to_string()))
    }
    fn save_weights(&mut self, path: &std::path::Path) -> strata_train::Result<()> {
        self.model.save_weights(path).map_err(|e| train_err("ModelCheckpoint", e.to_string()))
    }
    fn snapshot_weights(&self) -> Box<dyn std::any::Any + Send> {
        Box::new(self.model.get_weights())
    }
    fn restore_weights(&mut self, snapshot: &(dyn std::any::Any + Send)) -> strata_train::Result<()> {
        let Some(w) = snapshot.downcast_ref::<Vec<Tensor>>() else {
            return Err(train_err("restore_weights", "not a snapshot of this model"));
        };
        self.model.set_weights(w).map_err(|e| train_err("restore_weights", e.to_string()))
    }
}

impl Model {
    fn compiled_or_err(&self) -> Result<()> {
        if self.compiled.is_some() {
            return Ok(());
        }
        Err(Error::invalid(
            format!("model `{}` is not compiled", self.name()),
            "call model.compile(optimizer, loss, metrics) first (or compile_from_file() for a model loaded from a compiled file)",
        ))
    }

    /// Refuses models with layers whose training behaviour strata does not implement, naming
    /// each (rather than silently training them in inference mode).
    fn check_trainable(&self) -> Result<()> {
        let bad: Vec<String> = self
            .config
            .iter_layers_recursive()
            .filter_map(|(path, l)| {
                strata_layers::training_unsupported(l).map(|why| format!("`{path}` ({}: {why})", l.class_name))
            })
            .collect();
        if bad.is_empty() {
            return Ok(());
        }
        Err(Error::invalid(
            format!("strata cannot train these layers yet: {}", bad.join(", ")),
            "freeze them (set trainable to false) or train this model in Keras",
        ))
    }

    /// The loss on one batch and its gradient with respect to every trainable variable, in
    /// Keras order (`model.trainable_variables`), as `tf.GradientTape` gives them; includes
    /// the layers' regularization penalties. Also returns the predictions (training mode).
    pub fn compute_gradients(
        &self,
        xs: &[Tensor],
        y: &Tensor,
        sw: Option<&Tensor>,
    ) -> Result<(f64, Vec<Tensor>, Tensor)> {
        let (loss, grads, y_pred, _) = self.gradients_and_updates(xs, y, sw)?;
        Ok((loss, grads, y_pred))
    }

    /// [`Model::compute_gradients`], also returning the state updates of the training forward
    /// (BatchNormalization's new moving statistics, see
    /// [`strata_layers::Model::take_state_updates`]).
    fn gradients_and_updates(
        &self,
        xs: &[Tensor],
        y: &Tensor,
        sw: Option<&Tensor>,
    ) -> Result<(f64, Vec<Tensor>, Tensor, Vec<strata_layers::StateUpdate>)> {
        let compiled = self.compiled.as_ref().ok_or_else(|| {
            Error::invalid(
                format!("model `{}` is not compiled", self.name()),
                "call model.compile(optimizer, loss, metrics) first",
            )
        })?;
        let tape = Tape::new();
        let (engine, watched) = self.tracked_engine(&tape)?;
        let mut outs = engine.forward(xs, true)?;
        let updates = engine.take_state_updates();
        if outs.len() != 1 {
            return Err(Error::invalid(
                format!("model `{}` has {} outputs; strata's fit trains single-output models", self.name(), outs.len()),
                "train a single-output model, or combine the outputs in the model",
            ));
        }
        let y_pred = outs.remove(0);
        let (mut loss_value, objective) = loss_objective(&compiled.loss, y, &y_pred, sw)?;
        let grads = tape.backward(&objective)?;
        let penalties = &compiled.penalties;
        let mut out = Vec::new();
        for (li, (l, w)) in self.layers.iter().zip(&watched).enumerate() {
            for (vi, t) in w.iter().enumerate() {
                let Some(t) = t else { continue };
                let mut g = match grads.get(t) {
                    Some(g) => g.clone(),
                    None => Tensor::zeros(t.shape())?,
                };
                if let Some(Some(reg)) = penalties.get(&(li, vi)).map(|p| p.0.as_ref()) {
                    let (p, pg) = reg.value_and_grad(&l.values[vi])?;
                    loss_value += p;
                    g = g.add(&pg)?;
                }
                out.push(g);
            }
        }
        Ok((loss_value, out, y_pred.detach(), updates))
    }

    /// Writes state updates from a training forward into the (non-trainable) variables they name.
    fn apply_state_updates(&mut self, updates: Vec<strata_layers::StateUpdate>) -> Result<()> {
        for (path, vars) in updates {
            let Some(l) = self.layers.iter_mut().find(|l| l.path == path) else {
                return Err(Error::invalid(
                    format!("a training forward updated variables of `{path}`, which has no stored variables"),
                    "please report this",
                ));
            };
            for (i, value) in vars {
                match l.values.get_mut(i) {
                    Some(v) if v.shape() == value.shape() && !l.trainable.get(i).copied().unwrap_or(false) => {
                        *v = value.detach();
                    }
                    _ => {
                        return Err(Error::invalid(
                            format!(
                                "a training forward updated variable {i} of `{path}` with shape {:?}, which does not fit its non-trainable variables",
                                value.shape()
                            ),
                            "please report this",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// One optimizer step on one batch; returns the batch loss. Updates the compiled metrics.
    fn step(&mut self, xs: &[Tensor], y: &Tensor, sw: Option<&Tensor>) -> Result<f64> {
        let (loss_value, grad_list, y_pred, updates) = self.gradients_and_updates(xs, y, sw)?;
        // moving statistics (Keras assigns them during the forward; they feed no gradient)
        self.apply_state_updates(updates)?;
        let mut vars = Vec::with_capacity(grad_list.len());
        let mut slots = Vec::with_capacity(grad_list.len());
        for (li, l) in self.layers.iter().enumerate() {
            for (vi, v) in l.values.iter().enumerate() {
                if l.trainable.get(vi).copied().unwrap_or(false) {
                    vars.push(Variable::new(l.variable_path(vi), v.clone()));
                    slots.push((li, vi));
                }
            }
        }
        let Some(compiled) = self.compiled.as_mut() else {
            return Err(Error::invalid("not compiled", "compile first"));
        };
        compiled.optimizer.apply(&grad_list, &mut vars)?;
        for ((li, vi), v) in slots.into_iter().zip(vars) {
            // Keras applies a variable's constraint right after its update
            let value = match compiled.penalties.get(&(li, vi)).and_then(|p| p.1.as_ref()) {
                Some(c) => c.apply(&v.value)?,
                None => v.value,
            };
            self.layers[li].values[vi] = value;
        }
        // compiled `metrics` are unweighted in Keras 3 (only `weighted_metrics` see sample weights)
        for m in &mut compiled.metrics {
            m.update(y, &y_pred, None)?;
        }
        Ok(loss_value)
    }

    /// `model.train_on_batch(x, y)`: one step, returning the logs (`loss` and metrics).
    pub fn train_on_batch(&mut self, xs: &[Tensor], y: &Tensor, sample_weight: Option<&Tensor>) -> Result<Logs> {
        self.compiled_or_err()?;
        self.check_trainable()?;
        if let Some(c) = self.compiled.as_mut() {
            c.metrics.iter_mut().for_each(MetricSlot::reset);
        }
        let loss = self.step(xs, y, sample_weight)?;
        self.rebuild()?;
        Ok(self.current_logs(loss))
    }

    /// `model.fit(x, y, ...)` for a single-input model.
    pub fn fit(&mut self, x: &Tensor, y: &Tensor, opts: FitOptions) -> Result<History> {
        self.fit_with(std::slice::from_ref(x), y, opts, &mut [])
    }

    /// `model.fit` with one tensor per model input and callbacks.
    pub fn fit_with(
        &mut self,
        xs: &[Tensor],
        y: &Tensor,
        opts: FitOptions,
        callbacks: &mut [Box<dyn Callback>],
    ) -> Result<History> {
        self.compiled_or_err()?;
        self.check_trainable()?;
        let n = rows(y);
        for (i, x) in xs.iter().enumerate() {
            if rows(x) != n {
                return Err(Error::invalid(
                    format!("input {i} has {} rows but y has {n}", rows(x)),
                    "give x and y the same number of samples (first dimension)",
                ));
            }
        }
        if opts.batch_size == 0 {
            return Err(Error::invalid("batch_size is 0", "use a batch size of at least 1"));
        }
        if opts.sample_weight.is_some() && opts.class_weight.is_some() {
            return Err(Error::invalid(
                "both sample_weight and class_weight were given",
                "Keras refuses this too: fold the class weights into sample_weight",
            ));
        }
        if !(0.0..1.0).contains(&opts.validation_split) {
            return Err(Error::invalid(
                format!("validation_split {} is not in [0, 1)", opts.validation_split),
                "use a fraction such as 0.2",
            ));
        }
        let mut sw = opts.sample_weight.clone();
        if let Some(cw) = &opts.class_weight {
            sw = Some(class_weights_to_samples(y, cw)?);
        }
        if let Some(w) = &sw
            && rows(w) != n
        {
            return Err(Error::invalid(
                format!("sample_weight has {} rows but y has {n}", rows(w)),
                "give one weight per sample",
            ));
        }
        // validation: explicit data, or the last rows
        let (train_n, val) = match &opts.validation_data {
            Some((vx, vy)) => (n, Some((vx.clone(), vy.clone()))),
            None if opts.validation_split > 0.0 => {
                let split_at = ((n as f64) * (1.0 - opts.validation_split)).floor() as usize;
                let idx: Vec<usize> = (split_at..n).collect();
                let vx = xs.iter().map(|x| take_rows(x, &idx)).collect::<Result<Vec<_>>>()?;
                (split_at, Some((vx, take_rows(y, &idx)?)))
            }
            None => (n, None),
        };
        if train_n == 0 {
            return Err(Error::invalid("no training samples", "give x and y at least one row"));
        }
        let steps = train_n.div_ceil(opts.batch_size);
        let mut rng = strata_train::initializers::Rng::new(opts.seed);
        // Keras's CallbackList: the user's callbacks, then History, then the progress bar
        let mut history = History::new();
        // `Auto`: Keras's bar redrawn in place on a terminal; one line per epoch otherwise (Keras 3
        // redraws even into log files; a demanding user wants logs without carriage returns)
        let verbose = match opts.verbose {
            Verbosity::Auto if std::io::IsTerminal::is_terminal(&std::io::stdout()) => Verbosity::One,
            Verbosity::Auto => Verbosity::Two,
            v => v,
        };
        let mut progbar = (verbose.level() > 0).then(|| ProgbarLogger::new(verbose, opts.epochs, Some(steps)));
        let mut stop = false;
        macro_rules! each {
            ($ctx:ident, $cb:ident => $call:expr) => {{
                let mut $ctx = Ctx { model: &mut *self, stop: false };
                for $cb in callbacks.iter_mut() {
                    $call?;
                }
                {
                    let $cb = &mut history;
                    $call?;
                }
                if let Some($cb) = progbar.as_mut() {
                    $call?;
                }
                stop |= $ctx.stop;
            }};
        }
        each!(ctx, cb => cb.on_train_begin(&mut ctx));
        let mut last_logs = Logs::new();
        for epoch in opts.initial_epoch..opts.epochs {
            if stop {
                break;
            }
            each!(ctx, cb => cb.on_epoch_begin(epoch, &mut ctx));
            let mut order: Vec<usize> = (0..train_n).collect();
            if opts.shuffle {
                for i in (1..order.len()).rev() {
                    let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                    order.swap(i, j);
                }
            }
            if let Some(c) = self.compiled.as_mut() {
                c.metrics.iter_mut().for_each(MetricSlot::reset);
            }
            let (mut loss_sum, mut loss_count) = (0.0f64, 0.0f64);
            let mut logs = Logs::new();
            for (step, chunk) in order.chunks(opts.batch_size).enumerate() {
                let bx = xs.iter().map(|x| take_rows(x, chunk)).collect::<Result<Vec<_>>>()?;
                let by = take_rows(y, chunk)?;
                let bw = sw.as_ref().map(|w| take_rows(w, chunk)).transpose()?;
                let loss = self.step(&bx, &by, bw.as_ref())?;
                loss_sum += loss * chunk.len() as f64;
                loss_count += chunk.len() as f64;
                logs = self.current_logs(loss_sum / loss_count);
                each!(ctx, cb => cb.on_train_batch_end(step, &logs, &mut ctx));
                if stop {
                    break;
                }
            }
            self.rebuild()?;
            if let Some((vx, vy)) = &val {
                let vlogs = self.evaluate_with(vx, vy, opts.batch_size, None)?;
                for (k, v) in vlogs.iter() {
                    logs.insert(format!("val_{k}"), v);
                }
            }
            each!(ctx, cb => cb.on_epoch_end(epoch, &mut logs, &mut ctx));
            last_logs = logs;
        }
        each!(ctx, cb => cb.on_train_end(&last_logs, &mut ctx));
        let _ = stop;
        self.rebuild()?;
        Ok(history)
    }

    /// Sets the optimizer's learning rate (what `ReduceLROnPlateau` does; `model.optimizer.learning_rate = lr`).
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        match self.compiled.as_mut() {
            Some(c) => {
                c.optimizer.set_learning_rate(lr as f32);
                Ok(())
            }
            None => Err(Error::invalid("the model is not compiled", "compile it before setting the learning rate")),
        }
    }

    fn current_logs(&self, loss: f64) -> Logs {
        let mut logs = Logs::new();
        logs.insert("loss", loss);
        if let Some(c) = &self.compiled {
            for m in &c.metrics {
                logs.insert(m.name(), m.result());
            }
        }
        logs
    }

    /// `model.evaluate(x, y, batch_size)`: the loss and metrics over the data.
    pub fn evaluate(&self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Logs> {
        self.evaluate_with(std::slice::from_ref(x), y, batch_size, None)
    }

    /// [`Model::evaluate`] with one tensor per input and optional sample weights.
    pub fn evaluate_with(
        &self,
        xs: &[Tensor],
        y: &Tensor,
        batch_size: usize,
        sample_weight: Option<&Tensor>,
    ) -> Result<Logs> {
        self.compiled_or_err()?;
        let Some(c) = &self.compiled else { return Err(Error::invalid("not compiled", "compile first")) };
        let mut metrics = c.fresh_metrics()?;
        let n = rows(y);
        let idx: Vec<usize> = (0..n).collect();
        let (mut loss_sum, mut count) = (0.0f64, 0.0f64);
        for chunk in idx.chunks(batch_size.max(1)) {
            let bx = xs.iter().map(|x| take_rows(x, chunk)).collect::<Result<Vec<_>>>()?;
            let by = take_rows(y, chunk)?;
            let bw = sample_weight.map(|w| take_rows(w, chunk)).transpose()?;
            let mut outs = self.engine.forward(&bx, false)?;
            let y_pred = outs.remove(0);
            let (loss, _) = loss_objective(&c.loss, &by, &y_pred, bw.as_ref())?;
            loss_sum += loss * chunk.len() as f64;
            count += chunk.len() as f64;
            for m in &mut metrics {
                m.update(&by, &y_pred, None)?;
            }
        }
        let mut logs = Logs::new();
        logs.insert("loss", if count > 0.0 { loss_sum / count } else { 0.0 });
        for m in &metrics {
            logs.insert(m.name(), m.result());
        }
        Ok(logs)
    }
}

/// A variable's regularizer: Keras's, or a registered Rust function (`weight -> scalar`).
pub(crate) enum Reg {
    Builtin(strata_train::regularizers::Regularizer),
    Custom(strata_registry::TensorFn),
}

impl Reg {
    /// The penalty and its gradient with respect to `w`.
    fn value_and_grad(&self, w: &Tensor) -> Result<(f64, Tensor)> {
        match self {
            Reg::Builtin(r) => Ok((f64::from(r.call(w)), r.grad(w)?)),
            Reg::Custom(f) => {
                let tape = Tape::new();
                let tw = tape.watch(w);
                let p = f(&tw)?.sum(None, false)?;
                let g = match tape.backward(&p)?.get(&tw) {
                    Some(g) => g.clone(),
                    None => Tensor::zeros(w.shape())?,
                };
                Ok((p.item().map(f64::from).unwrap_or(f64::NAN), g))
            }
        }
    }
}

/// A variable's constraint: Keras's, or a registered Rust function.
pub(crate) enum Con {
    Builtin(strata_train::constraints::Constraint),
    Custom(strata_registry::TensorFn),
}

impl Con {
    fn apply(&self, w: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Con::Builtin(c) => c.call(w)?,
            Con::Custom(f) => f(w)?.detach(),
        })
    }
}

pub(crate) type Penalties = std::collections::HashMap<(usize, usize), (Option<Reg>, Option<Con>)>;

/// Each variable's regularizer and constraint from its layer's config (`kernel_regularizer`,
/// `bias_constraint`, ...: the config key is the variable's name plus the suffix); a registered
/// function where the config names one (`"package>name"`).
pub(crate) fn weight_penalties(
    config: &strata_format::config::ModelConfig,
    layers: &[crate::model::LayerWeights],
    registry: &strata_registry::Registry,
) -> Result<Penalties> {
    use strata_registry::{Kind, TensorFn};
    let mut out = Penalties::new();
    let by_path: std::collections::HashMap<String, &strata_format::config::LayerConfig> =
        config.iter_layers_recursive().collect();
    let custom = |j: &strata_format::json::Json, kind: Kind| -> Option<TensorFn> {
        let e = registry.function_named(j).filter(|e| e.kind == kind)?;
        registry.get_function::<TensorFn>(&e.key).cloned()
    };
    for (li, l) in layers.iter().enumerate() {
        let Some(lc) = by_path.get(&l.path) else { continue };
        for (vi, name) in l.names.iter().enumerate() {
            let base = name.rsplit('/').next().unwrap_or(name);
            let base = if base == "recurrent_kernel" { "recurrent" } else { base };
            let reg = match lc.config.get(&format!("{base}_regularizer")) {
                Some(j) if !j.is_null() => Some(match custom(j, Kind::Regularizer) {
                    Some(f) => Reg::Custom(f),
                    None => Reg::Builtin(strata_train::regularizers::Regularizer::deserialize(j)?),
                }),
                _ => None,
            };
            let con = match lc.config.get(&format!("{base}_constraint")) {
                Some(j) if !j.is_null() => Some(match custom(j, Kind::Constraint) {
                    Some(f) => Con::Custom(f),
                    None => Con::Builtin(strata_train::constraints::Constraint::deserialize(j)?),
                }),
                _ => None,
            };
            if reg.is_some() || con.is_some() {
                out.insert((li, vi), (reg, con));
            }
        }
    }
    Ok(out)
}

/// The loss value and a scalar whose gradient is the loss's gradient (on the tape of `y_pred`).
fn loss_objective(loss: &LossSpec, y: &Tensor, y_pred: &Tensor, sw: Option<&Tensor>) -> Result<(f64, Tensor)> {
    match loss {
        LossSpec::Builtin(l) => {
            let (value, g) = l.value_and_grad(y, &y_pred.detach(), sw)?;
            let objective = if y_pred.is_tracked() { y_pred.mul(&g)?.sum(None, false)? } else { Tensor::scalar(value) };
            Ok((f64::from(value), objective))
        }
        LossSpec::Custom { name, f, .. } => {
            let per = f(y, y_pred).map_err(|e| {
                Error::invalid(
                    format!("the registered loss `{name}` failed: {e}"),
                    "check the function's shapes against y_true and y_pred",
                )
            })?;
            let count = per.len().max(1) as f32;
            let weighted = match sw {
                Some(w) => {
                    // sample weights broadcast over the per-sample values' trailing axes
                    let mut shape = w.shape().to_vec();
                    while shape.len() < per.rank() {
                        shape.push(1);
                    }
                    per.mul(&w.reshape(&shape)?)?
                }
                None => per,
            };
            let total = weighted.sum(None, false)?.scale(1.0 / count);
            let value = total.item().map(f64::from).unwrap_or(f64::NAN);
            Ok((value, total))
        }
    }
}
