//! Optimizers with Keras 3's update formulas, defaults, configs and variable order.
//!
//! Mirrors `keras/src/optimizers/base_optimizer.py` and one file per algorithm there
//! (`sgd.py`, `adam.py`, `adamw.py`, `rmsprop.py`, `adagrad.py`, `adadelta.py`, `adamax.py`,
//! `nadam.py`, `lion.py`). Arithmetic is f32 in Keras's operation order.
//!
//! # One step (`BaseOptimizer.apply`)
//! 1. gradients are divided by `loss_scale_factor` when set;
//! 2. clipped: `clipnorm` (each gradient to that L2 norm), else `global_clipnorm` (all together),
//!    else `clipvalue` (element-wise); Keras allows only one of the three;
//! 3. weight decay, when `weight_decay` is set (every optimizer, as the base class does it):
//!    `w -= w * weight_decay * lr`, before the update and with the same learning rate;
//! 4. the algorithm's `update_step` per variable, with `lr` = the constant rate or
//!    `schedule(iterations)` read before the increment;
//! 5. `iterations += 1`.
//!
//! # Variable order (what `.weights.h5` stores under `optimizer/vars/0..N`)
//! Keras saves `optimizer.variables` in creation order, and [`Optimizer::variables`] returns the
//! same list: `iteration` (int64 scalar), `learning_rate` (float32 scalar, absent when the rate is
//! a schedule), then the slots. `add_optimizer_variables(vars, [a, b])` interleaves per model
//! variable (`w0_a, w0_b, w1_a, w1_b`), and each call appends a new block:
//!
//! | optimizer | slots (blocks in order; names interleaved inside a block) |
//! |---|---|
//! | SGD | `[momentum]` only when `momentum != 0` |
//! | Adam, AdamW | `[momentum, velocity]`, then `[velocity_hat]` when `amsgrad` |
//! | RMSprop | `[velocity]`, `[momentum]` when `momentum > 0`, `[average_gradient]` when `centered` |
//! | Adagrad | `[accumulator]` (initialised to `initial_accumulator_value`) |
//! | Adadelta | `[accumulated_grad, accumulated_delta_var]` |
//! | Adamax | `[momentum, norm]` |
//! | Nadam | `[momentum, velocity]`, then the scalar `u_product` (Keras path `<name>/variable`) |
//! | Lion | `[momentum]` |
//!
//! Slot paths are `<optimizer name>/<variable path with / as _>_<slot>`, as Keras names them.
//! With `use_ema`, Keras's `build` first adds an `[average]` block (before the algorithm's
//! slots); after each update `average = m * average + (1 - m) * w` with `m = ema_momentum`
//! (0 on the first step), and every `ema_overwrite_frequency` steps the weights are replaced by
//! their averages ([`Optimizer::finalize_variable_values`] does it at the end of training).
//! With `gradient_accumulation_steps = n`, a `[gradient_accumulator]` block follows (after the
//! averages); steps that are not the n-th only add the gradients to the accumulators; the n-th
//! step updates with `(g + acc) / n` (then clipping and weight decay) and resets them. As in
//! Keras, the algorithms' step count and EMA read `iterations // n`, while a schedule reads the
//! raw count.
//!
//! [`Optimizer::exclude_from_weight_decay`] takes names as Keras's `var_names` does; strata
//! matches them as substrings of the variable's name (the last path component) rather than as
//! regular expressions.

use crate::config::{Reader, opt_f64_json, serialized, split_serialized};
use crate::error::{Error, Result};
use crate::schedules::LearningRateSchedule;
use strata_format::json::{Json, Object};
use strata_tensor::{DType, Tensor};

/// A named model variable the optimizer updates (Keras's `variable.path`, e.g. `dense/kernel`).
#[derive(Clone, Debug)]
pub struct Variable {
    /// The variable's path; slot names derive from it.
    pub path: String,
    /// Its current value.
    pub value: Tensor,
}

impl Variable {
    /// A variable with a path and a value.
    pub fn new(path: impl Into<String>, value: Tensor) -> Variable {
        Variable { path: path.into(), value }
    }
}

/// A constant learning rate (stored as Keras stores it, a float32 variable) or a schedule.
#[derive(Clone, Debug, PartialEq)]
pub enum LearningRate {
    /// A float32 value (saved as the `learning_rate` optimizer variable).
    Constant(f32),
    /// A schedule evaluated at the iteration count.
    Schedule(LearningRateSchedule),
}

impl From<f64> for LearningRate {
    fn from(v: f64) -> Self {
        LearningRate::Constant(v as f32)
    }
}

impl From<f32> for LearningRate {
    fn from(v: f32) -> Self {
        LearningRate::Constant(v)
    }
}

impl From<LearningRateSchedule> for LearningRate {
    fn from(s: LearningRateSchedule) -> Self {
        LearningRate::Schedule(s)
    }
}

/// The algorithm and its own hyperparameters (Keras defaults in each builder).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Algorithm {
    /// `keras.optimizers.SGD`
    Sgd {
        /// Momentum in [0, 1].
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// `keras.optimizers.Adam` (`adamw: true` for `AdamW`, whose weight decay is the base one).
    Adam {
        /// First-moment decay.
        beta_1: f64,
        /// Second-moment decay.
        beta_2: f64,
        /// Fuzz factor.
        epsilon: f64,
        /// AMSGrad variant.
        amsgrad: bool,
        /// Whether this is `AdamW`.
        adamw: bool,
    },
    /// `keras.optimizers.RMSprop`
    RmsProp {
        /// Discount factor.
        rho: f64,
        /// Momentum.
        momentum: f64,
        /// Fuzz factor.
        epsilon: f64,
        /// Centered variant.
        centered: bool,
    },
    /// `keras.optimizers.Adagrad`
    Adagrad {
        /// Starting accumulator value.
        initial_accumulator_value: f64,
        /// Fuzz factor.
        epsilon: f64,
    },
    /// `keras.optimizers.Adadelta`
    Adadelta {
        /// Decay rate.
        rho: f64,
        /// Fuzz factor.
        epsilon: f64,
    },
    /// `keras.optimizers.Adamax`
    Adamax {
        /// First-moment decay.
        beta_1: f64,
        /// Infinity-norm decay.
        beta_2: f64,
        /// Fuzz factor.
        epsilon: f64,
    },
    /// `keras.optimizers.Nadam`
    Nadam {
        /// First-moment decay.
        beta_1: f64,
        /// Second-moment decay.
        beta_2: f64,
        /// Fuzz factor.
        epsilon: f64,
    },
    /// `keras.optimizers.Lion`
    Lion {
        /// Update interpolation.
        beta_1: f64,
        /// Momentum decay.
        beta_2: f64,
    },
}

/// Names `keras.optimizers.get` resolves (the lower-cased class names).
pub const OPTIMIZER_NAMES: &[&str] =
    &["adadelta", "adagrad", "adam", "adamax", "adamw", "lion", "nadam", "rmsprop", "sgd"];

impl Algorithm {
    /// The Keras class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            Algorithm::Sgd { .. } => "SGD",
            Algorithm::Adam { adamw: false, .. } => "Adam",
            Algorithm::Adam { adamw: true, .. } => "AdamW",
            Algorithm::RmsProp { .. } => "RMSprop",
            Algorithm::Adagrad { .. } => "Adagrad",
            Algorithm::Adadelta { .. } => "Adadelta",
            Algorithm::Adamax { .. } => "Adamax",
            Algorithm::Nadam { .. } => "Nadam",
            Algorithm::Lion { .. } => "Lion",
        }
    }

    /// Keras's default for `name` (`auto_name` of the class: its snake-case name).
    fn default_name(&self) -> &'static str {
        match self {
            Algorithm::Sgd { .. } => "sgd",
            Algorithm::Adam { adamw: false, .. } => "adam",
            Algorithm::Adam { adamw: true, .. } => "adamw",
            Algorithm::RmsProp { .. } => "rmsprop",
            Algorithm::Adagrad { .. } => "adagrad",
            Algorithm::Adadelta { .. } => "adadelta",
            Algorithm::Adamax { .. } => "adamax",
            Algorithm::Nadam { .. } => "nadam",
            Algorithm::Lion { .. } => "lion",
        }
    }

    fn default_learning_rate(&self) -> f64 {
        match self {
            Algorithm::Sgd { .. } => 0.01,
            _ => 0.001,
        }
    }

    /// Slot blocks in creation order; names inside a block are interleaved per variable.
    fn slot_blocks(&self) -> Vec<Vec<&'static str>> {
        match *self {
            Algorithm::Sgd { momentum, .. } => {
                if momentum != 0.0 {
                    vec![vec!["momentum"]]
                } else {
                    vec![]
                }
            }
            Algorithm::Adam { amsgrad, .. } => {
                let mut b = vec![vec!["momentum", "velocity"]];
                if amsgrad {
                    b.push(vec!["velocity_hat"]);
                }
                b
            }
            Algorithm::RmsProp { momentum, centered, .. } => {
                let mut b = vec![vec!["velocity"]];
                if momentum > 0.0 {
                    b.push(vec!["momentum"]);
                }
                if centered {
                    b.push(vec!["average_gradient"]);
                }
                b
            }
            Algorithm::Adagrad { .. } => vec![vec!["accumulator"]],
            Algorithm::Adadelta { .. } => vec![vec!["accumulated_grad", "accumulated_delta_var"]],
            Algorithm::Adamax { .. } => vec![vec!["momentum", "norm"]],
            Algorithm::Nadam { .. } => vec![vec!["momentum", "velocity"]],
            Algorithm::Lion { .. } => vec![vec!["momentum"]],
        }
    }

    fn slot_init(&self) -> f32 {
        match self {
            Algorithm::Adagrad { initial_accumulator_value, .. } => *initial_accumulator_value as f32,
            _ => 0.0,
        }
    }
}

/// Options every Keras optimizer takes (`BaseOptimizer.__init__`).
#[derive(Clone, Debug, PartialEq)]
pub struct BaseOptions {
    /// `name`
    pub name: String,
    /// `learning_rate`
    pub learning_rate: LearningRate,
    /// `weight_decay` (decoupled, applied before the update)
    pub weight_decay: Option<f64>,
    /// `clipnorm`
    pub clipnorm: Option<f64>,
    /// `clipvalue`
    pub clipvalue: Option<f64>,
    /// `global_clipnorm`
    pub global_clipnorm: Option<f64>,
    /// `use_ema`: keep an exponential moving average of the weights
    pub use_ema: bool,
    /// `ema_momentum`
    pub ema_momentum: f64,
    /// `ema_overwrite_frequency`: replace the weights by their averages every this many steps
    pub ema_overwrite_frequency: Option<i64>,
    /// `loss_scale_factor`: gradients are divided by it
    pub loss_scale_factor: Option<f64>,
    /// `gradient_accumulation_steps`: update every this many calls with the mean gradient
    pub gradient_accumulation_steps: Option<i64>,
}

#[derive(Clone, Debug)]
struct State {
    iterations: u64,
    paths: Vec<String>,
    shapes: Vec<Vec<usize>>,
    /// `slots[k][i]`: slot kind `k` (flattened over blocks) of variable `i`.
    slots: Vec<Vec<Vec<f32>>>,
    /// Nadam's running product of momentum factors.
    u_product: f32,
    /// Moving averages of the model variables (`use_ema`), else empty.
    averages: Vec<Vec<f32>>,
    /// Gradient accumulators (`gradient_accumulation_steps`), else empty.
    accumulators: Vec<Vec<f32>>,
}

/// A Keras optimizer: hyperparameters, and once built, its variables.
#[derive(Clone, Debug)]
pub struct Optimizer {
    base: BaseOptions,
    algorithm: Algorithm,
    state: Option<State>,
    weight_decay_excluded: Vec<String>,
}

impl Optimizer {
    /// An optimizer with Keras's defaults for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Optimizer {
        let weight_decay = match algorithm {
            Algorithm::Adam { adamw: true, .. } => Some(0.004),
            _ => None,
        };
        Optimizer {
            base: BaseOptions {
                name: algorithm.default_name().into(),
                learning_rate: LearningRate::from(algorithm.default_learning_rate()),
                weight_decay,
                clipnorm: None,
                clipvalue: None,
                global_clipnorm: None,
                use_ema: false,
                ema_momentum: 0.99,
                ema_overwrite_frequency: None,
                loss_scale_factor: None,
                gradient_accumulation_steps: None,
            },
            algorithm,
            state: None,
            weight_decay_excluded: Vec::new(),
        }
    }

    /// The optimizer named by a string as `keras.optimizers.get("adam")` resolves it
    /// (case-insensitive class name), with defaults.
    pub fn get(identifier: &str) -> Result<Optimizer> {
        Self::from_config(identifier, &Json::Null)
    }

    /// The algorithm and its hyperparameters.
    pub fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    /// The options every optimizer has.
    pub fn base(&self) -> &BaseOptions {
        &self.base
    }

    /// Keras class name (`Adam`, `SGD`, ...).
    pub fn class_name(&self) -> &'static str {
        self.algorithm.class_name()
    }

    /// Number of steps applied (`optimizer.iterations`).
    pub fn iterations(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.iterations)
    }

    /// The learning rate the next step uses.
    pub fn current_learning_rate(&self) -> f32 {
        match &self.base.learning_rate {
            LearningRate::Constant(v) => *v,
            LearningRate::Schedule(s) => s.call(self.iterations()),
        }
    }

    /// Sets a constant learning rate (what a `ReduceLROnPlateau` or `LearningRateScheduler` does).
    pub fn set_learning_rate(&mut self, lr: impl Into<LearningRate>) {
        self.base.learning_rate = lr.into();
    }

    /// Whether [`Optimizer::build`] (or a first [`Optimizer::apply`]) has run.
    pub fn is_built(&self) -> bool {
        self.state.is_some()
    }

    fn check_options(&self) -> Result<()> {
        let c = self.class_name();
        if !(0.0..=1.0).contains(&self.base.ema_momentum) {
            return Err(Error::invalid(
                c,
                format!("`ema_momentum` must be in the range [0, 1], found {}", self.base.ema_momentum),
            ));
        }
        if self.base.ema_overwrite_frequency.is_some_and(|f| f < 1) {
            return Err(Error::invalid(
                c,
                format!(
                    "`ema_overwrite_frequency` must be an integer >= 1 or None, found {:?}",
                    self.base.ema_overwrite_frequency
                ),
            ));
        }
        // Keras: 0 / None disable accumulation, 1 and negatives are refused.
        if self.base.gradient_accumulation_steps.is_some_and(|n| n != 0 && n < 2) {
            return Err(Error::invalid(
                c,
                format!(
                    "`gradient_accumulation_steps` must be an integer >= 2, found {:?}",
                    self.base.gradient_accumulation_steps
                ),
            ));
        }
        let clips = [self.base.clipnorm, self.base.clipvalue, self.base.global_clipnorm];
        if clips.iter().filter(|c| c.is_some()).count() > 1 {
            return Err(Error::invalid(
                c,
                format!(
                    "only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set, found clipnorm={:?}, clipvalue={:?}, global_clipnorm={:?}",
                    self.base.clipnorm, self.base.clipvalue, self.base.global_clipnorm
                ),
            ));
        }
        if let Algorithm::Sgd { momentum, .. } = self.algorithm
            && !(0.0..=1.0).contains(&momentum)
        {
            return Err(Error::invalid(c, format!("`momentum` must be a float between [0, 1], found {momentum}")));
        }
        if let Algorithm::Adam { adamw: true, .. } = self.algorithm
            && self.base.weight_decay.is_none()
        {
            return Err(Error::invalid(c, "argument `weight_decay` must be a float, found None"));
        }
        Ok(())
    }

    /// Creates the slot variables for model variables `(path, shape)` (Keras's `build`).
    pub fn build(&mut self, variables: &[(&str, &[usize])]) -> Result<()> {
        self.check_options()?;
        let init = self.algorithm.slot_init();
        let kinds: usize = self.algorithm.slot_blocks().iter().map(Vec::len).sum();
        let mut slots = Vec::with_capacity(kinds);
        for _ in 0..kinds {
            let mut per_var = Vec::with_capacity(variables.len());
            for (path, shape) in variables {
                let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| {
                    Error::invalid(self.class_name(), format!("variable `{path}` shape {shape:?} overflows"))
                })?;
                per_var.push(vec![init; n]);
            }
            slots.push(per_var);
        }
        self.state = Some(State {
            iterations: 0,
            paths: variables.iter().map(|(p, _)| p.to_string()).collect(),
            shapes: variables.iter().map(|(_, s)| s.to_vec()).collect(),
            slots,
            u_product: 1.0,
            averages: if self.base.use_ema {
                variables.iter().map(|(_, s)| vec![0.0; s.iter().product()]).collect()
            } else {
                Vec::new()
            },
            accumulators: if self.accumulation().is_some() {
                variables.iter().map(|(_, s)| vec![0.0; s.iter().product()]).collect()
            } else {
                Vec::new()
            },
        });
        Ok(())
    }

    /// The optimizer's variables in Keras's order, as `(path, value)` (see the module docs).
    /// Empty until built. `iteration` is an int64 scalar (exact up to 2^24 steps, as strata
    /// tensors are f32-backed; [`Optimizer::iterations`] is exact), everything else float32.
    pub fn variables(&self) -> Result<Vec<(String, Tensor)>> {
        let Some(st) = &self.state else { return Ok(Vec::new()) };
        let name = &self.base.name;
        let mut out = Vec::new();
        out.push((format!("{name}/iteration"), Tensor::scalar(st.iterations as f32).with_dtype(DType::I64)));
        if let LearningRate::Constant(v) = self.base.learning_rate {
            out.push((format!("{name}/learning_rate"), Tensor::scalar(v)));
        }
        for (i, path) in st.paths.iter().enumerate() {
            if let Some(avg) = st.averages.get(i) {
                let shape = st.shapes.get(i).cloned().unwrap_or_default();
                out.push((
                    format!("{name}/{}_average", path.replace('/', "_")),
                    Tensor::from_vec(&shape, avg.clone())?,
                ));
            }
        }
        for (i, path) in st.paths.iter().enumerate() {
            if let Some(acc) = st.accumulators.get(i) {
                let shape = st.shapes.get(i).cloned().unwrap_or_default();
                out.push((
                    format!("{name}/{}_gradient_accumulator", path.replace('/', "_")),
                    Tensor::from_vec(&shape, acc.clone())?,
                ));
            }
        }
        let mut k0 = 0;
        for block in self.algorithm.slot_blocks() {
            for (i, path) in st.paths.iter().enumerate() {
                for (j, slot) in block.iter().enumerate() {
                    let data = st.slots.get(k0 + j).and_then(|s| s.get(i)).cloned().unwrap_or_default();
                    let shape = st.shapes.get(i).cloned().unwrap_or_default();
                    out.push((format!("{name}/{}_{slot}", path.replace('/', "_")), Tensor::from_vec(&shape, data)?));
                }
            }
            k0 += block.len();
        }
        if matches!(self.algorithm, Algorithm::Nadam { .. }) {
            out.push((format!("{name}/variable"), Tensor::scalar(st.u_product)));
        }
        Ok(out)
    }

    /// Restores variables saved in Keras's order (`optimizer/vars/0..N`). The optimizer must be
    /// built on the model's variables first; the count and every shape must match.
    pub fn load_variables(&mut self, values: &[Tensor]) -> Result<()> {
        let expected = self.variables()?;
        if self.state.is_none() {
            return Err(Error::invalid(
                self.class_name(),
                "the optimizer is not built; call `build` with the model's variables before loading its state",
            ));
        }
        if expected.len() != values.len() {
            return Err(Error::Count {
                what: format!("optimizer `{}` variables", self.base.name),
                expected: expected.len(),
                found: values.len(),
            });
        }
        for ((path, want), got) in expected.iter().zip(values) {
            if want.shape() != got.shape() {
                return Err(Error::shape(format!("optimizer variable `{path}`"), want.shape(), got.shape()));
            }
        }
        let mut it = values.iter();
        let has_lr = matches!(self.base.learning_rate, LearningRate::Constant(_));
        let blocks = self.algorithm.slot_blocks();
        let is_nadam = matches!(self.algorithm, Algorithm::Nadam { .. });
        let Some(st) = self.state.as_mut() else { return Ok(()) };
        if let Some(t) = it.next() {
            let v = t.item().unwrap_or(0.0);
            st.iterations = if v.is_finite() && v > 0.0 { v as u64 } else { 0 };
        }
        if has_lr && let Some(v) = it.next().and_then(Tensor::item) {
            self.base.learning_rate = LearningRate::Constant(v);
        }
        for avg in st.averages.iter_mut().chain(st.accumulators.iter_mut()) {
            if let Some(t) = it.next() {
                *avg = t.to_vec();
            }
        }
        let mut k0 = 0;
        for block in &blocks {
            for i in 0..st.paths.len() {
                for j in 0..block.len() {
                    if let (Some(t), Some(slot)) = (it.next(), st.slots.get_mut(k0 + j).and_then(|s| s.get_mut(i))) {
                        *slot = t.to_vec();
                    }
                }
            }
            k0 += block.len();
        }
        if is_nadam && let Some(v) = it.next().and_then(Tensor::item) {
            st.u_product = v;
        }
        Ok(())
    }

    /// One optimizer step (`optimizer.apply(grads, variables)`): builds on first use.
    pub fn apply(&mut self, grads: &[Tensor], variables: &mut [Variable]) -> Result<()> {
        if grads.len() != variables.len() {
            return Err(Error::Count {
                what: format!("gradients for optimizer `{}`", self.base.name),
                expected: variables.len(),
                found: grads.len(),
            });
        }
        for (g, v) in grads.iter().zip(variables.iter()) {
            if g.shape() != v.value.shape() {
                return Err(Error::shape(format!("gradient of `{}`", v.path), v.value.shape(), g.shape()));
            }
        }
        if self.state.is_none() {
            let spec: Vec<(&str, &[usize])> = variables.iter().map(|v| (v.path.as_str(), v.value.shape())).collect();
            self.build(&spec)?;
        } else if let Some(st) = &self.state
            && (st.paths.len() != variables.len()
                || st.shapes.iter().zip(variables.iter()).any(|(s, v)| s != v.value.shape()))
        {
            return Err(Error::Count {
                what: format!("variables for optimizer `{}` (built on {:?})", self.base.name, st.paths),
                expected: st.paths.len(),
                found: variables.len(),
            });
        }
        self.check_options()?;
        let mut g: Vec<Vec<f32>> = grads.iter().map(Tensor::to_vec).collect();
        if let Some(scale) = self.base.loss_scale_factor {
            let s = scale as f32;
            g.iter_mut().flatten().for_each(|x| *x /= s);
        }
        let mut w: Vec<Vec<f32>> = variables.iter().map(|v| v.value.to_vec()).collect();
        let mut is_update_step = true;
        if let (Some(n), Some(st)) = (self.accumulation(), self.state.as_mut()) {
            is_update_step = (st.iterations + 1) % n == 0;
            for (acc, gi) in st.accumulators.iter_mut().zip(g.iter_mut()) {
                if is_update_step {
                    for (a, x) in acc.iter_mut().zip(gi.iter_mut()) {
                        *x = (*x + *a) / n as f32;
                        *a = 0.0;
                    }
                } else {
                    acc.iter_mut().zip(gi.iter()).for_each(|(a, x)| *a += *x);
                }
            }
        }
        if is_update_step {
            self.clip(&mut g);
            let lr = self.current_learning_rate();
            if let Some(wd) = self.base.weight_decay {
                let wd = wd as f32;
                for (v, wi) in variables.iter().zip(w.iter_mut()) {
                    if self.uses_weight_decay(&v.path) {
                        wi.iter_mut().for_each(|x| *x -= *x * wd * lr);
                    }
                }
            }
            self.update(&g, &mut w, lr);
        }
        self.update_averages(&mut w);
        for (v, data) in variables.iter_mut().zip(w) {
            v.value = Tensor::from_vec(v.value.shape(), data)?;
        }
        if let Some(st) = self.state.as_mut() {
            st.iterations += 1;
        }
        Ok(())
    }

    /// The effective accumulation step count (None when off).
    fn accumulation(&self) -> Option<u64> {
        self.base.gradient_accumulation_steps.filter(|&n| n >= 2).map(|n| n as u64)
    }

    /// Excludes variables from weight decay by name (Keras's `exclude_from_weight_decay(var_names=...)`):
    /// a variable whose name (the last component of its path) contains one of `names` is not decayed.
    /// Must be called before the optimizer is built, as in Keras.
    pub fn exclude_from_weight_decay(&mut self, names: &[&str]) -> Result<()> {
        if self.state.is_some() {
            return Err(Error::invalid(
                self.class_name(),
                "`exclude_from_weight_decay()` can only be configured before the optimizer is built",
            ));
        }
        self.weight_decay_excluded = names.iter().map(|s| s.to_string()).collect();
        Ok(())
    }

    fn uses_weight_decay(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        !self.weight_decay_excluded.iter().any(|p| name.contains(p.as_str()))
    }

    /// EMA bookkeeping after an update (`_update_model_variables_moving_average`, then the
    /// periodic overwrite), reading the iteration count before its increment as Keras does.
    fn update_averages(&mut self, w: &mut [Vec<f32>]) {
        let Some(st) = self.state.as_mut() else { return };
        if st.averages.is_empty() {
            return;
        }
        let it = st.iterations / self.base.gradient_accumulation_steps.filter(|&n| n >= 2).map_or(1, |n| n as u64);
        let m = if it != 0 { self.base.ema_momentum as f32 } else { 0.0 };
        for (avg, wi) in st.averages.iter_mut().zip(w.iter()) {
            for (a, &x) in avg.iter_mut().zip(wi) {
                *a = m * *a + (1.0 - m) * x;
            }
        }
        if let Some(f) = self.base.ema_overwrite_frequency.filter(|f| *f >= 1)
            && (it + 1).is_multiple_of(f as u64)
        {
            for (wi, avg) in w.iter_mut().zip(&st.averages) {
                wi.clone_from(avg);
            }
        }
    }

    /// With `use_ema`, replaces the variables by their moving averages (Keras's
    /// `finalize_variable_values`, which `fit` calls after the last epoch). A no-op otherwise.
    pub fn finalize_variable_values(&self, variables: &mut [Variable]) -> Result<()> {
        let Some(st) = &self.state else { return Ok(()) };
        if st.averages.is_empty() {
            return Ok(());
        }
        if st.averages.len() != variables.len() {
            return Err(Error::Count {
                what: format!("variables to overwrite with optimizer `{}` averages", self.base.name),
                expected: st.averages.len(),
                found: variables.len(),
            });
        }
        for (v, avg) in variables.iter_mut().zip(&st.averages) {
            v.value = Tensor::from_vec(v.value.shape(), avg.clone())?;
        }
        Ok(())
    }

    fn clip(&self, g: &mut [Vec<f32>]) {
        if let Some(c) = self.base.clipnorm.filter(|c| *c > 0.0) {
            let c = c as f32;
            for t in g.iter_mut() {
                let l2sum: f32 = t.iter().map(|x| x * x).sum();
                let l2 = if l2sum > 0.0 { l2sum.sqrt() } else { l2sum };
                let d = l2.max(c);
                t.iter_mut().for_each(|x| *x = *x * c / d);
            }
        } else if let Some(c) = self.base.global_clipnorm.filter(|c| *c > 0.0) {
            let c = c as f32;
            let norm = g.iter().map(|t| t.iter().map(|x| x * x).sum::<f32>()).sum::<f32>().sqrt();
            // `norm - norm` is 0 for a finite norm and NaN otherwise, as in Keras.
            #[allow(clippy::eq_op)]
            let scale = c * (1.0 / norm).min(1.0 / c) + (norm - norm);
            g.iter_mut().flatten().for_each(|x| *x *= scale);
        } else if let Some(c) = self.base.clipvalue.filter(|c| *c > 0.0) {
            let c = c as f32;
            g.iter_mut().flatten().for_each(|x| *x = x.clamp(-c, c));
        }
    }

    fn update(&mut self, g: &[Vec<f32>], w: &mut [Vec<f32>], lr: f32) {
        let Some(st) = self.state.as_mut() else { return };
        // Keras's `self.iterations`: the raw count, floor-divided under gradient accumulation.
        let t = (st.iterations / self.base.gradient_accumulation_steps.filter(|&n| n >= 2).map_or(1, |n| n as u64) + 1)
            as f32;
        let slots = &mut st.slots;
        match self.algorithm {
            Algorithm::Sgd { momentum, nesterov } => {
                let mo = momentum as f32;
                for (i, (gi, wi)) in g.iter().zip(w.iter_mut()).enumerate() {
                    if momentum != 0.0 {
                        let Some(m) = slots.get_mut(0).and_then(|s| s.get_mut(i)) else { continue };
                        for ((x, &gr), mk) in wi.iter_mut().zip(gi).zip(m.iter_mut()) {
                            *mk = *mk * mo - gr * lr;
                            if nesterov {
                                *x += *mk * mo - gr * lr;
                            } else {
                                *x += *mk;
                            }
                        }
                    } else {
                        for (x, &gr) in wi.iter_mut().zip(gi) {
                            *x -= gr * lr;
                        }
                    }
                }
            }
            Algorithm::Adam { beta_1, beta_2, epsilon, amsgrad, .. } => {
                let (b1, b2, eps) = (beta_1 as f32, beta_2 as f32, epsilon as f32);
                let alpha = lr * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
                for (i, (gi, wi)) in g.iter().zip(w.iter_mut()).enumerate() {
                    let [ms, vs, rest @ ..] = slots.as_mut_slice() else { return };
                    let (Some(m), Some(v)) = (ms.get_mut(i), vs.get_mut(i)) else { continue };
                    let vhat = rest.first_mut().and_then(|s| s.get_mut(i));
                    // zipped slices (no bounds checks, no branch per element) so the loop vectorizes;
                    // the arithmetic is the same, in the same order, as Keras's update
                    let (c1, c2) = (1.0 - b1, 1.0 - b2);
                    match vhat {
                        Some(h) if amsgrad => {
                            for ((((x, &gr), mk), vk), hk) in
                                wi.iter_mut().zip(gi.iter()).zip(m.iter_mut()).zip(v.iter_mut()).zip(h.iter_mut())
                            {
                                *mk += (gr - *mk) * c1;
                                *vk += (gr * gr - *vk) * c2;
                                *hk = hk.max(*vk);
                                *x -= *mk * alpha / (hk.sqrt() + eps);
                            }
                        }
                        _ => {
                            for (((x, &gr), mk), vk) in wi.iter_mut().zip(gi.iter()).zip(m.iter_mut()).zip(v.iter_mut())
                            {
                                *mk += (gr - *mk) * c1;
                                *vk += (gr * gr - *vk) * c2;
                                *x -= *mk * alpha / (vk.sqrt() + eps);
                            }
                        }
                    }
                }
            }
            Algorithm::RmsProp { rho, momentum, epsilon, centered } => {
                let (rho, mo, eps) = (rho as f32, momentum as f32, epsilon as f32);
                let has_m = momentum > 0.0;
                let ka = if has_m { 2 } else { 1 };
                for (i, (gi, wi)) in g.iter().zip(w.iter_mut()).enumerate() {
                    for k in 0..wi.len().min(gi.len()) {
                        let gr = gi[k];
                        let Some(v) = slots.get_mut(0).and_then(|s| s.get_mut(i)).and_then(|s| s.get_mut(k)) else {
                            continue;
                        };
                        *v = rho * *v + (1.0 - rho) * (gr * gr);
                        let vel = *v;
                        let denom = if centered {
                            let Some(a) = slots.get_mut(ka).and_then(|s| s.get_mut(i)).and_then(|s| s.get_mut(k))
                            else {
                                continue;
                            };
                            *a = rho * *a + (1.0 - rho) * gr;
                            vel - *a * *a + eps
                        } else {
                            vel + eps
                        };
                        let inc = lr * gr / denom.sqrt();
                        if has_m {
                            let Some(m) = slots.get_mut(1).and_then(|s| s.get_mut(i)).and_then(|s| s.get_mut(k)) else {
                                continue;
                            };
                            *m = mo * *m + inc;
                            wi[k] -= *m;
                        } else {
                            wi[k] -= inc;
                        }
                    }
                }
            }
            Algorithm::Adagrad { epsilon, .. } => {
                let eps = epsilon as f32;
                for (i, (gi, wi)) in g.iter().zip(w.iter_mut()).enumerate() {
                    let Some(acc) = slots.get_mut(0).and_then(|s| s.get_mut(i)) else { continue };
                    for ((x, &gr), a) in wi.iter_mut().zip(gi).zip(acc.iter_mut()) {
                        *a += gr * gr;
                        *x -= lr * gr / (*a + eps).sqrt();
                    }
                }
            }
            Algorithm::Adadelta { rho, epsilon } => {
                let (rho, eps) = (rho as f32, epsilon as f32);
                for (i, (gi, wi)) in g.iter().zip(w.iter_mut()).enumerate() {
                    let [ag, ad, ..] = slots.as_mut_slice() else { return };
                    let (Some(ag), Some(ad)) = (ag.get_mut(i), ad.get_mut(i)) else { continue };
                    for (((x, &gr), a), d) in wi.iter_mut().zip(gi).zip(ag.iter_mut()).zip(ad.iter_mut()) {
                        *a = rho * *a + (1.0 - rho) * (gr * gr);
                        let delta = -((*d + eps).sqrt() * gr / (*a + eps).sqrt());
                        *d = rho * *d + (1.0 - rho) * (delta * delta);
                        *x += lr * delta;
                    }
                }
            }
            Algorithm::Adamax { beta_1, beta_2, epsilon } => {
                let (b1, b2, eps) = (beta_1 as f32, beta_2 as f32, epsilon as f32);
                let b1p = b1.powf(t);
                for (i, (gi, wi)) in g.iter().zip(w.iter_mut()).enumerate() {
                    let [ms, us, ..] = slots.as_mut_slice() else { return };
                    let (Some(m), Some(u)) = (ms.get_mut(i), us.get_mut(i)) else { continue };
                    for (((x, &gr), mk), uk) in wi.iter_mut().zip(gi).zip(m.iter_mut()).zip(u.iter_mut()) {
                        *mk += (gr - *mk) * (1.0 - b1);
                        *uk = (b2 * *uk).max(gr.abs());
                        *x -= lr * *mk / ((1.0 - b1p) * (*uk + eps));
                    }
                }
            }
            Algorithm::Nadam { beta_1, beta_2, epsilon } => {
                let (b1, b2, eps) = (beta_1 as f32, beta_2 as f32, epsilon as f32);
                let decay = 0.96f32;
                st.u_product = st.u_product * b1 * (1.0 - 0.5 * decay.powf(t));
                let u_t = b1 * (1.0 - 0.5 * decay.powf(t));
                let u_t1 = b1 * (1.0 - 0.5 * decay.powf(t + 1.0));
                let up_t = st.u_product;
                let up_t1 = up_t * u_t1;
                let b2p = b2.powf(t);
                for (i, (gi, wi)) in g.iter().zip(w.iter_mut()).enumerate() {
                    let [ms, vs, ..] = slots.as_mut_slice() else { return };
                    let (Some(m), Some(v)) = (ms.get_mut(i), vs.get_mut(i)) else { continue };
                    for (((x, &gr), mk), vk) in wi.iter_mut().zip(gi).zip(m.iter_mut()).zip(v.iter_mut()) {
                        *mk += (gr - *mk) * (1.0 - b1);
                        *vk += (gr * gr - *vk) * (1.0 - b2);
                        let m_hat = u_t1 * *mk / (1.0 - up_t1) + (1.0 - u_t) * gr / (1.0 - up_t);
                        let v_hat = *vk / (1.0 - b2p);
                        *x -= m_hat * lr / (v_hat.sqrt() + eps);
                    }
                }
            }
            Algorithm::Lion { beta_1, beta_2 } => {
                let (b1, b2) = (beta_1 as f32, beta_2 as f32);
                for (i, (gi, wi)) in g.iter().zip(w.iter_mut()).enumerate() {
                    let Some(m) = slots.get_mut(0).and_then(|s| s.get_mut(i)) else { continue };
                    for ((x, &gr), mk) in wi.iter_mut().zip(gi).zip(m.iter_mut()) {
                        let c = *mk * b1 + gr * (1.0 - b1);
                        let sign = if c > 0.0 {
                            1.0
                        } else if c < 0.0 {
                            -1.0
                        } else {
                            0.0
                        };
                        *x -= lr * sign;
                        *mk = *mk * b2 + gr * (1.0 - b2);
                    }
                }
            }
        }
    }

    /// Keras's `get_config()`: the base keys, then the algorithm's, in Keras's order.
    pub fn get_config(&self) -> Json {
        let b = &self.base;
        let lr = match &b.learning_rate {
            LearningRate::Constant(v) => Json::from(f64::from(*v)),
            LearningRate::Schedule(s) => s.serialize(),
        };
        let mut o = Object::new();
        o.insert("name", Json::from(b.name.as_str()));
        o.insert("learning_rate", lr);
        o.insert("weight_decay", opt_f64_json(b.weight_decay));
        o.insert("clipnorm", opt_f64_json(b.clipnorm));
        o.insert("global_clipnorm", opt_f64_json(b.global_clipnorm));
        o.insert("clipvalue", opt_f64_json(b.clipvalue));
        o.insert("use_ema", Json::from(b.use_ema));
        o.insert("ema_momentum", Json::from(b.ema_momentum));
        o.insert("ema_overwrite_frequency", b.ema_overwrite_frequency.map_or(Json::Null, Json::from));
        o.insert("loss_scale_factor", opt_f64_json(b.loss_scale_factor));
        o.insert("gradient_accumulation_steps", b.gradient_accumulation_steps.map_or(Json::Null, Json::from));
        match &self.algorithm {
            Algorithm::Sgd { momentum, nesterov } => {
                o.insert("momentum", Json::from(*momentum));
                o.insert("nesterov", Json::from(*nesterov));
            }
            Algorithm::Adam { beta_1, beta_2, epsilon, amsgrad, .. } => {
                o.insert("beta_1", Json::from(*beta_1));
                o.insert("beta_2", Json::from(*beta_2));
                o.insert("epsilon", Json::from(*epsilon));
                o.insert("amsgrad", Json::from(*amsgrad));
            }
            Algorithm::RmsProp { rho, momentum, epsilon, centered } => {
                o.insert("rho", Json::from(*rho));
                o.insert("momentum", Json::from(*momentum));
                o.insert("epsilon", Json::from(*epsilon));
                o.insert("centered", Json::from(*centered));
            }
            Algorithm::Adagrad { initial_accumulator_value, epsilon } => {
                o.insert("initial_accumulator_value", Json::from(*initial_accumulator_value));
                o.insert("epsilon", Json::from(*epsilon));
            }
            Algorithm::Adadelta { rho, epsilon } => {
                o.insert("rho", Json::from(*rho));
                o.insert("epsilon", Json::from(*epsilon));
            }
            Algorithm::Adamax { beta_1, beta_2, epsilon } | Algorithm::Nadam { beta_1, beta_2, epsilon } => {
                o.insert("beta_1", Json::from(*beta_1));
                o.insert("beta_2", Json::from(*beta_2));
                o.insert("epsilon", Json::from(*epsilon));
            }
            Algorithm::Lion { beta_1, beta_2 } => {
                o.insert("beta_1", Json::from(*beta_1));
                o.insert("beta_2", Json::from(*beta_2));
            }
        }
        Json::Object(o)
    }

    /// The serialized form (`keras.optimizers.serialize`), as in a file's `compile_config`.
    pub fn serialize(&self) -> Json {
        serialized("keras.optimizers", self.class_name(), self.get_config())
    }

    /// Parses `keras.optimizers.serialize` output or a bare name (`"adam"`).
    pub fn deserialize(value: &Json) -> Result<Optimizer> {
        let (class, cfg) = split_serialized("optimizer", value)?;
        Self::from_config(class, cfg)
    }

    /// Builds an optimizer from a class name (matched case-insensitively, as
    /// `keras.optimizers.deserialize` does) and its `get_config()` dict.
    pub fn from_config(class_name: &str, cfg: &Json) -> Result<Optimizer> {
        let lower = class_name.to_ascii_lowercase();
        let algorithm = match lower.as_str() {
            "sgd" => Algorithm::Sgd { momentum: 0.0, nesterov: false },
            "adam" | "adamw" => {
                Algorithm::Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false, adamw: lower == "adamw" }
            }
            "rmsprop" => Algorithm::RmsProp { rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: false },
            "adagrad" => Algorithm::Adagrad { initial_accumulator_value: 0.1, epsilon: 1e-7 },
            "adadelta" => Algorithm::Adadelta { rho: 0.95, epsilon: 1e-7 },
            "adamax" => Algorithm::Adamax { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 },
            "nadam" => Algorithm::Nadam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 },
            "lion" => Algorithm::Lion { beta_1: 0.9, beta_2: 0.99 },
            _ => {
                return Err(Error::UnknownName {
                    kind: "optimizer",
                    name: class_name.into(),
                    known: OPTIMIZER_NAMES.to_vec(),
                });
            }
        };
        let mut opt = Optimizer::new(algorithm);
        let class = opt.class_name();
        let mut r = Reader::new(class, cfg)?;
        let b = &mut opt.base;
        if let Some(n) = r.opt_str("name")? {
            b.name = n.to_string();
        }
        match r.raw("learning_rate") {
            None => {}
            Some(Json::Number(n)) => b.learning_rate = LearningRate::from(n.as_f64()),
            Some(v @ Json::Object(_)) => {
                b.learning_rate = LearningRate::Schedule(LearningRateSchedule::deserialize(v)?)
            }
            Some(other) => {
                return Err(r.err("learning_rate", format!("must be a float or a schedule, found {}", other.kind())));
            }
        }
        if r.has("weight_decay") || !matches!(opt.algorithm, Algorithm::Adam { adamw: true, .. }) {
            b.weight_decay = r.opt_f64("weight_decay")?;
        }
        b.clipnorm = r.opt_f64("clipnorm")?;
        b.global_clipnorm = r.opt_f64("global_clipnorm")?;
        b.clipvalue = r.opt_f64("clipvalue")?;
        b.use_ema = r.bool("use_ema", false)?;
        b.ema_momentum = r.f64("ema_momentum", 0.99)?;
        b.ema_overwrite_frequency = r.opt_int("ema_overwrite_frequency")?;
        b.loss_scale_factor = r.opt_f64("loss_scale_factor")?;
        b.gradient_accumulation_steps = r.opt_int("gradient_accumulation_steps")?;
        // Keras 3 pops `decay` and ignores it (with a warning); strata accepts the no-op values
        // and refuses a real decay rather than silently dropping it.
        if let Some(d) = r.opt_f64("decay")?
            && d != 0.0
        {
            return Err(Error::Unsupported {
                object: class.into(),
                option: "decay".into(),
                why: format!(
                    "decay={d} is a Keras 2 argument that Keras 3 ignores; use a schedule such as InverseTimeDecay for the learning rate"
                ),
            });
        }
        match &mut opt.algorithm {
            Algorithm::Sgd { momentum, nesterov } => {
                *momentum = r.f64("momentum", *momentum)?;
                *nesterov = r.bool("nesterov", *nesterov)?;
            }
            Algorithm::Adam { beta_1, beta_2, epsilon, amsgrad, .. } => {
                *beta_1 = r.f64("beta_1", *beta_1)?;
                *beta_2 = r.f64("beta_2", *beta_2)?;
                *epsilon = r.f64("epsilon", *epsilon)?;
                *amsgrad = r.bool("amsgrad", *amsgrad)?;
            }
            Algorithm::RmsProp { rho, momentum, epsilon, centered } => {
                *rho = r.f64("rho", *rho)?;
                *momentum = r.f64("momentum", *momentum)?;
                *epsilon = r.f64("epsilon", *epsilon)?;
                *centered = r.bool("centered", *centered)?;
            }
            Algorithm::Adagrad { initial_accumulator_value, epsilon } => {
                *initial_accumulator_value = r.f64("initial_accumulator_value", *initial_accumulator_value)?;
                *epsilon = r.f64("epsilon", *epsilon)?;
            }
            Algorithm::Adadelta { rho, epsilon } => {
                *rho = r.f64("rho", *rho)?;
                *epsilon = r.f64("epsilon", *epsilon)?;
            }
            Algorithm::Adamax { beta_1, beta_2, epsilon } | Algorithm::Nadam { beta_1, beta_2, epsilon } => {
                *beta_1 = r.f64("beta_1", *beta_1)?;
                *beta_2 = r.f64("beta_2", *beta_2)?;
                *epsilon = r.f64("epsilon", *epsilon)?;
            }
            Algorithm::Lion { beta_1, beta_2 } => {
                *beta_1 = r.f64("beta_1", *beta_1)?;
                *beta_2 = r.f64("beta_2", *beta_2)?;
            }
        }
        r.finish()?;
        opt.check_options()?;
        Ok(opt)
    }
}

macro_rules! builder {
    ($(#[$doc:meta])* $ty:ident, $algo:expr, { $($field:ident : $fty:ty),* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $ty(Optimizer);

        impl Default for $ty {
            fn default() -> Self {
                $ty(Optimizer::new($algo))
            }
        }

        impl $ty {
            /// `learning_rate`: a float or a [`LearningRateSchedule`].
            pub fn learning_rate(mut self, lr: impl Into<LearningRate>) -> Self {
                self.0.base.learning_rate = lr.into();
                self
            }
            /// `name` (slot variable paths start with it).
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.0.base.name = name.into();
                self
            }
            /// `weight_decay`
            pub fn weight_decay(mut self, v: f64) -> Self {
                self.0.base.weight_decay = Some(v);
                self
            }
            /// `clipnorm`
            pub fn clipnorm(mut self, v: f64) -> Self {
                self.0.base.clipnorm = Some(v);
                self
            }
            /// `clipvalue`
            pub fn clipvalue(mut self, v: f64) -> Self {
                self.0.base.clipvalue = Some(v);
                self
            }
            /// `global_clipnorm`
            pub fn global_clipnorm(mut self, v: f64) -> Self {
                self.0.base.global_clipnorm = Some(v);
                self
            }
            /// `loss_scale_factor`
            pub fn loss_scale_factor(mut self, v: f64) -> Self {
                self.0.base.loss_scale_factor = Some(v);
                self
            }
            $(
                #[doc = concat!("`", stringify!($field), "`")]
                pub fn $field(mut self, value: $fty) -> Self {
                    set_field(&mut self.0.algorithm, stringify!($field), value.into());
                    self
                }
            )*
            /// The optimizer (checks the options as Keras's constructor does).
            pub fn build(self) -> Result<Optimizer> {
                self.0.check_options()?;
                Ok(self.0)
            }
        }

        impl From<$ty> for Optimizer {
            fn from(b: $ty) -> Optimizer {
                b.0
            }
        }
    };
}

enum FieldValue {
    F(f64),
    B(bool),
}

impl From<f64> for FieldValue {
    fn from(v: f64) -> Self {
        FieldValue::F(v)
    }
}

impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        FieldValue::B(v)
    }
}

fn set_field(a: &mut Algorithm, field: &str, value: FieldValue) {
    use FieldValue::{B, F};
    match (a, field, value) {
        (Algorithm::Sgd { momentum, .. } | Algorithm::RmsProp { momentum, .. }, "momentum", F(v)) => *momentum = v,
        (Algorithm::Sgd { nesterov, .. }, "nesterov", B(v)) => *nesterov = v,
        (
            Algorithm::Adam { beta_1, .. }
            | Algorithm::Adamax { beta_1, .. }
            | Algorithm::Nadam { beta_1, .. }
            | Algorithm::Lion { beta_1, .. },
            "beta_1",
            F(v),
        ) => *beta_1 = v,
        (
            Algorithm::Adam { beta_2, .. }
            | Algorithm::Adamax { beta_2, .. }
            | Algorithm::Nadam { beta_2, .. }
            | Algorithm::Lion { beta_2, .. },
            "beta_2",
            F(v),
        ) => *beta_2 = v,
        (
            Algorithm::Adam { epsilon, .. }
            | Algorithm::Adamax { epsilon, .. }
            | Algorithm::Nadam { epsilon, .. }
            | Algorithm::RmsProp { epsilon, .. }
            | Algorithm::Adagrad { epsilon, .. }
            | Algorithm::Adadelta { epsilon, .. },
            "epsilon",
            F(v),
        ) => *epsilon = v,
        (Algorithm::Adam { amsgrad, .. }, "amsgrad", B(v)) => *amsgrad = v,
        (Algorithm::RmsProp { rho, .. } | Algorithm::Adadelta { rho, .. }, "rho", F(v)) => *rho = v,
        (Algorithm::RmsProp { centered, .. }, "centered", B(v)) => *centered = v,
        (Algorithm::Adagrad { initial_accumulator_value, .. }, "initial_accumulator_value", F(v)) => {
            *initial_accumulator_value = v
        }
        _ => {}
    }
}

const ADAM: Algorithm = Algorithm::Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false, adamw: false };
const ADAMW: Algorithm = Algorithm::Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false, adamw: true };

builder!(
    /// `keras.optimizers.SGD` builder (`learning_rate=0.01, momentum=0.0, nesterov=False`).
    SGD, Algorithm::Sgd { momentum: 0.0, nesterov: false }, { momentum: f64, nesterov: bool });
builder!(
    /// `keras.optimizers.Adam` builder (`learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7`).
    Adam, ADAM, { beta_1: f64, beta_2: f64, epsilon: f64, amsgrad: bool });
builder!(
    /// `keras.optimizers.AdamW` builder (Adam's defaults and `weight_decay=0.004`).
    AdamW, ADAMW, { beta_1: f64, beta_2: f64, epsilon: f64, amsgrad: bool });
builder!(
    /// `keras.optimizers.RMSprop` builder (`learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7`).
    RMSprop, Algorithm::RmsProp { rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: false },
    { rho: f64, momentum: f64, epsilon: f64, centered: bool });
builder!(
    /// `keras.optimizers.Adagrad` builder (`learning_rate=0.001, initial_accumulator_value=0.1`).
    Adagrad, Algorithm::Adagrad { initial_accumulator_value: 0.1, epsilon: 1e-7 },
    { initial_accumulator_value: f64, epsilon: f64 });
builder!(
    /// `keras.optimizers.Adadelta` builder (`learning_rate=0.001, rho=0.95, epsilon=1e-7`).
    Adadelta, Algorithm::Adadelta { rho: 0.95, epsilon: 1e-7 }, { rho: f64, epsilon: f64 });
builder!(
    /// `keras.optimizers.Adamax` builder (`learning_rate=0.001, beta_1=0.9, beta_2=0.999`).
    Adamax, Algorithm::Adamax { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }, { beta_1: f64, beta_2: f64, epsilon: f64 });
builder!(
    /// `keras.optimizers.Nadam` builder (`learning_rate=0.001, beta_1=0.9, beta_2=0.999`).
    Nadam, Algorithm::Nadam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }, { beta_1: f64, beta_2: f64, epsilon: f64 });
builder!(
    /// `keras.optimizers.Lion` builder (`learning_rate=0.001, beta_1=0.9, beta_2=0.99`).
    Lion, Algorithm::Lion { beta_1: 0.9, beta_2: 0.99 }, { beta_1: f64, beta_2: f64 });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_name_lists_known_optimizers() {
        let e = Optimizer::get("adamm").unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown optimizer `adamm` (did you mean `adam`?); known names: adadelta, adagrad, adam, adamax, adamw, lion, nadam, rmsprop, sgd"
        );
    }

    #[test]
    fn names_resolve_case_insensitively() {
        assert_eq!(Optimizer::get("Adam").unwrap().class_name(), "Adam");
        assert_eq!(Optimizer::get("rmsprop").unwrap().class_name(), "RMSprop");
        assert_eq!(Optimizer::get("sgd").unwrap().current_learning_rate(), 0.01);
    }

    #[test]
    fn two_clip_options_are_refused() {
        let e = Adam::default().clipnorm(1.0).clipvalue(0.5).build().unwrap_err().to_string();
        assert!(e.contains("only one of `clipnorm`, `clipvalue` and `global_clipnorm`"), "{e}");
    }

    #[test]
    fn bad_accumulation_steps_are_refused() {
        let cfg = Json::object([("gradient_accumulation_steps", Json::from(1i64))]);
        let e = Optimizer::from_config("adam", &cfg).unwrap_err().to_string();
        assert!(e.contains("`gradient_accumulation_steps` must be an integer >= 2, found Some(1)"), "{e}");
        let cfg = Json::object([("gradient_accumulation_steps", Json::from(0i64))]);
        assert!(Optimizer::from_config("adam", &cfg).is_ok(), "0 disables accumulation, as in Keras");
    }

    #[test]
    fn excluded_variables_are_not_decayed() {
        let mut o: Optimizer = SGD::default().learning_rate(0.5).weight_decay(0.1).into();
        o.exclude_from_weight_decay(&["bias"]).unwrap();
        let mut vars = vec![
            Variable::new("dense/kernel", Tensor::from_vec(&[1], vec![1.0]).unwrap()),
            Variable::new("dense/bias", Tensor::from_vec(&[1], vec![1.0]).unwrap()),
        ];
        let zero = Tensor::from_vec(&[1], vec![0.0]).unwrap();
        o.apply(&[zero.clone(), zero], &mut vars).unwrap();
        assert_eq!(vars[0].value.as_slice(), &[0.95]);
        assert_eq!(vars[1].value.as_slice(), &[1.0]);
        let e = o.exclude_from_weight_decay(&["x"]).unwrap_err().to_string();
        assert!(e.contains("before the optimizer is built"), "{e}");
    }

    #[test]
    fn unknown_config_key_is_refused() {
        let cfg = Json::object([("lr", Json::from(0.1))]);
        let e = Optimizer::from_config("SGD", &cfg).unwrap_err().to_string();
        assert!(e.starts_with("SGD: config key `lr` is not an argument of SGD"), "{e}");
    }

    #[test]
    fn builder_sets_fields_and_round_trips() {
        let o: Optimizer = SGD::default().learning_rate(0.1).momentum(0.9).nesterov(true).into();
        assert_eq!(o.algorithm(), &Algorithm::Sgd { momentum: 0.9, nesterov: true });
        let back = Optimizer::deserialize(&o.serialize()).unwrap();
        assert_eq!(back.get_config(), o.get_config());
    }

    #[test]
    fn load_variables_checks_count() {
        let mut o: Optimizer = Adam::default().into();
        o.build(&[("w", &[2])]).unwrap();
        let e = o.load_variables(&[Tensor::scalar(0.0)]).unwrap_err().to_string();
        assert_eq!(e, "optimizer `adam` variables: expected 4, found 1");
    }
}
