//! `model.compile(optimizer, loss, metrics)`: the training setup and its `compile_config`.

use strata_format::json::Json;
use strata_registry::{Kind, LossFn, Registry};
use strata_tensor::Tensor;
use strata_train::losses::Loss;
use strata_train::metrics::{self, Mean, Metric};
use strata_train::optimizers::Optimizer;

use crate::error::{Error, Result};
use crate::model::Model;

/// The loss given to [`Model::compile`]: a Keras name (`"mse"`, `"sparse_categorical_crossentropy"`,
/// or a registered `package>name`), or a configured [`Loss`].
#[derive(Clone)]
pub enum LossArg {
    /// A name, resolved like `keras.losses.get` after the registry's custom functions.
    Name(String),
    /// A loss object.
    Loss(Loss),
    /// An object of a registered custom loss class ([`LossArg::class`]).
    Class {
        /// Its serialized form (Keras's `serialize_keras_object`).
        serialized: Json,
        /// Its per-sample function.
        f: LossFn,
    },
}

impl std::fmt::Debug for LossArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LossArg::Name(n) => write!(f, "LossArg::Name({n:?})"),
            LossArg::Loss(l) => write!(f, "LossArg::Loss({l:?})"),
            LossArg::Class { serialized, .. } => write!(f, "LossArg::Class({})", serialized.to_string_python()),
        }
    }
}

impl LossArg {
    /// A custom loss object (`compile(loss=ScaledMse(scale=2.0))`): its struct fields are its
    /// config; its class must be registered (`Registry::loss_class`) to load the saved model.
    pub fn class<T>(loss: T) -> Result<LossArg>
    where
        T: strata_registry::CustomLoss + strata_registry::KerasClass + serde::Serialize,
    {
        let serialized = strata_registry::serialize_loss(&loss).map_err(|e| {
            Error::invalid(format!("serializing `{}`: {e}", T::registered_name()), "make its fields serde-serializable")
        })?;
        let loss = std::sync::Arc::new(loss);
        let f: LossFn = std::sync::Arc::new(move |t: &Tensor, p: &Tensor| loss.call(t, p));
        Ok(LossArg::Class { serialized, f })
    }
}

impl From<&str> for LossArg {
    fn from(s: &str) -> LossArg {
        LossArg::Name(s.to_string())
    }
}

impl From<String> for LossArg {
    fn from(s: String) -> LossArg {
        LossArg::Name(s)
    }
}

impl From<Loss> for LossArg {
    fn from(l: Loss) -> LossArg {
        LossArg::Loss(l)
    }
}

/// A metric given to [`Model::compile_with_metrics`]: a Keras name or a registered class's object.
#[derive(Clone, Debug)]
pub struct MetricArg(Json);

impl MetricArg {
    /// A metric by Keras name (`"accuracy"`, `"mae"`) or registered function name.
    pub fn name(name: &str) -> MetricArg {
        MetricArg(Json::from(name))
    }

    /// An object of a custom metric class, logged as `name`; its class must be registered
    /// (`Registry::metric_class`), which is also what loading the saved model needs.
    pub fn class<T>(metric: &T, name: &str) -> Result<MetricArg>
    where
        T: strata_registry::CustomMetric + strata_registry::KerasClass + serde::Serialize,
    {
        strata_registry::serialize_metric(metric, name).map(MetricArg).map_err(|e| {
            Error::invalid(format!("serializing `{}`: {e}", T::registered_name()), "make its fields serde-serializable")
        })
    }
}

/// The compiled loss.
#[derive(Clone)]
pub(crate) enum LossSpec {
    Builtin(Loss),
    /// A registered function or loss class: `(y_true, y_pred) -> per-sample losses`, reduced as
    /// Keras reduces them (`sum_over_batch_size`, with sample weights). `serialized` is set for a
    /// class object (its config), `None` for a function (serialized by name).
    Custom {
        name: String,
        f: LossFn,
        serialized: Option<Json>,
    },
}

impl LossSpec {
    fn serialize(&self) -> Json {
        match self {
            LossSpec::Builtin(l) => l.serialize(),
            LossSpec::Custom { serialized: Some(j), .. } => j.clone(),
            LossSpec::Custom { name, .. } => function_json(name),
        }
    }
}

/// `{"module": "builtins", "class_name": "function", "config": "pkg>name", "registered_name": "function"}`.
fn function_json(name: &str) -> Json {
    Json::object([
        ("module", Json::from("builtins")),
        ("class_name", Json::from("function")),
        ("config", Json::from(name)),
        ("registered_name", Json::from("function")),
    ])
}

/// One compiled metric: resolved at the first batch (Keras's `"accuracy"` depends on the shapes).
pub(crate) enum MetricSlot {
    Pending(String),
    Builtin(Box<dyn Metric>),
    Custom {
        name: String,
        f: LossFn,
        mean: Mean,
    },
    /// An object of a registered metric class.
    Class {
        name: String,
        m: Box<dyn strata_registry::CustomMetric>,
    },
}

impl MetricSlot {
    pub(crate) fn name(&self) -> &str {
        match self {
            MetricSlot::Pending(n) => n,
            MetricSlot::Builtin(m) => m.name(),
            MetricSlot::Class { name, .. } => name,
            MetricSlot::Custom { name, .. } => name,
        }
    }

    /// Resolves a pending metric for these targets and predictions (Keras's `get_metric`).
    pub(crate) fn resolve(&mut self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        let MetricSlot::Pending(id) = self else { return Ok(()) };
        let lower = id.to_ascii_lowercase();
        let m: Box<dyn Metric> = if lower == "accuracy" || lower == "acc" {
            let last = |t: &Tensor| t.shape().last().copied().unwrap_or(1);
            let class = if last(y_pred) == 1 {
                "binary_accuracy"
            } else if y_true.rank() + 1 == y_pred.rank() || last(y_true) == 1 {
                "sparse_categorical_accuracy"
            } else {
                "categorical_accuracy"
            };
            metrics::from_config(class, &Json::object([("name", Json::from(id.as_str()))]))?
        } else {
            // Keras names a metric given as a string by that string (`"mae"`, not `mean_absolute_error`)
            metrics::from_config(id, &Json::object([("name", Json::from(id.as_str()))]))?
        };
        *self = MetricSlot::Builtin(m);
        Ok(())
    }

    pub(crate) fn update(&mut self, y_true: &Tensor, y_pred: &Tensor, sw: Option<&Tensor>) -> Result<()> {
        self.resolve(y_true, y_pred)?;
        match self {
            MetricSlot::Pending(_) => Ok(()),
            MetricSlot::Builtin(m) => Ok(m.update_state(y_true, y_pred, sw)?),
            MetricSlot::Class { m, .. } => Ok(m.update_state(&y_true.detach(), &y_pred.detach())?),
            MetricSlot::Custom { f, mean, .. } => {
                let values = f(&y_true.detach(), &y_pred.detach())?;
                Ok(mean.update_values(&values, sw)?)
            }
        }
    }

    pub(crate) fn result(&self) -> f64 {
        match self {
            MetricSlot::Pending(_) => 0.0,
            MetricSlot::Builtin(m) => f64::from(m.result()),
            MetricSlot::Class { m, .. } => f64::from(m.result()),
            MetricSlot::Custom { mean, .. } => f64::from(mean.result()),
        }
    }

    pub(crate) fn reset(&mut self) {
        match self {
            MetricSlot::Pending(_) => {}
            MetricSlot::Builtin(m) => m.reset_state(),
            MetricSlot::Class { m, .. } => m.reset_state(),
            MetricSlot::Custom { mean, .. } => mean.reset_state(),
        }
    }
}

/// What `compile` set up.
pub(crate) struct Compiled {
    pub(crate) optimizer: Optimizer,
    pub(crate) loss: LossSpec,
    /// The metric identifiers as given (for `compile_config`).
    pub(crate) metric_ids: Vec<Json>,
    pub(crate) metrics: Vec<MetricSlot>,
    pub(crate) registry: Registry,
    /// Each variable's regularizer and constraint, read once from the layer configs.
    pub(crate) penalties: crate::fit::Penalties,
}

impl Compiled {
    /// Keras 3's `compile_config`.
    pub(crate) fn compile_config(&self) -> Json {
        Json::object([
            ("optimizer", self.optimizer.serialize()),
            ("loss", self.loss.serialize()),
            ("loss_weights", Json::Null),
            ("metrics", if self.metric_ids.is_empty() { Json::Null } else { Json::array(self.metric_ids.clone()) }),
            ("weighted_metrics", Json::Null),
            ("run_eagerly", Json::from(false)),
            ("steps_per_execution", Json::from(1i64)),
            ("jit_compile", Json::from(false)),
        ])
    }

    /// Fresh metric slots (names as given) for an evaluation pass.
    pub(crate) fn fresh_metrics(&self) -> Result<Vec<MetricSlot>> {
        self.metric_ids.iter().map(|id| metric_slot(id, &self.registry)).collect()
    }
}

/// A registered loss/metric function: a [`LossFn`] (`Registry::loss`), or a plain `fn` pointer
/// registered with `Registry::function`.
fn registered_fn(registry: &Registry, key: &str) -> Option<LossFn> {
    type Plain = fn(&Tensor, &Tensor) -> strata_tensor::Result<Tensor>;
    if let Some(f) = registry.get_function::<LossFn>(key) {
        return Some(f.clone());
    }
    registry.get_function::<Plain>(key).map(|f| {
        let f = *f;
        std::sync::Arc::new(move |a: &Tensor, b: &Tensor| f(a, b)) as LossFn
    })
}

fn resolve_loss(arg: LossArg, registry: &Registry) -> Result<LossSpec> {
    match arg {
        LossArg::Loss(l) => Ok(LossSpec::Builtin(l)),
        LossArg::Class { serialized, f } => {
            let name = serialized.get("registered_name").and_then(Json::as_str).unwrap_or_default().to_string();
            Ok(LossSpec::Custom { name, f, serialized: Some(serialized) })
        }
        LossArg::Name(name) => {
            if let Some(e) = registry.function_entry(&name).filter(|e| e.kind == Kind::Loss)
                && let Some(f) = registered_fn(registry, &e.key)
            {
                return Ok(LossSpec::Custom { name: e.key.clone(), f, serialized: None });
            }
            Loss::get(&name).map(LossSpec::Builtin).map_err(|e| {
                Error::invalid(
                    format!("unknown loss `{name}`: {e}"),
                    "use a Keras loss name (mse, mae, binary_crossentropy, sparse_categorical_crossentropy, ...) or register a Rust function with Registry::loss(package, name, f) and pass \"package>name\"",
                )
            })
        }
    }
}

/// A serialized loss object of a registered custom class, rebuilt from its config.
fn custom_loss_object(j: &Json, registry: &Registry) -> Result<Option<LossArg>> {
    let Some(key) = j.get("registered_name").and_then(Json::as_str) else { return Ok(None) };
    let Some(factory) = registry.get_function::<strata_registry::LossFactory>(key) else { return Ok(None) };
    let config = j.get("config").cloned().unwrap_or(Json::Null);
    let f = factory(&config).map_err(|e| {
        Error::invalid(
            format!("the loss config of `{key}` does not fit the registered Rust type: {e}"),
            "make the struct's fields match the config keys Keras wrote",
        )
    })?;
    Ok(Some(LossArg::Class { serialized: j.clone(), f }))
}

fn metric_slot(id: &Json, registry: &Registry) -> Result<MetricSlot> {
    if let Some(name) = id.as_str() {
        if let Some(e) = registry.function_entry(name).filter(|e| matches!(e.kind, Kind::Metric | Kind::Loss))
            && let Some(f) = registered_fn(registry, &e.key)
        {
            return Ok(MetricSlot::Custom {
                name: name.rsplit('>').next().unwrap_or(name).to_string(),
                f,
                mean: Mean::new(name.rsplit('>').next().unwrap_or(name)),
            });
        }
        return Ok(MetricSlot::Pending(name.to_string()));
    }
    // an object of a registered metric class
    if let Some(key) = id.get("registered_name").and_then(Json::as_str)
        && let Some(factory) = registry.get_function::<strata_registry::MetricFactory>(key)
    {
        let config = id.get("config").cloned().unwrap_or(Json::Null);
        let m = factory(&config).map_err(|e| {
            Error::invalid(
                format!("the metric config of `{key}` does not fit the registered Rust type: {e}"),
                "make the struct's fields match the config keys Keras wrote",
            )
        })?;
        let name = config.get("name").and_then(Json::as_str).unwrap_or(key).to_string();
        return Ok(MetricSlot::Class { name, m });
    }
    // a serialized function or metric object
    if id.get("class_name").and_then(Json::as_str) == Some("function")
        && let Some(name) = id.get("config").and_then(Json::as_str)
    {
        return metric_slot(&Json::from(name), registry);
    }
    Ok(MetricSlot::Builtin(metrics::deserialize(id)?))
}

impl Model {
    /// Configures training, as `model.compile(optimizer=..., loss=..., metrics=[...])`.
    ///
    /// `optimizer`: an [`Optimizer`] (`Adam::default().into()`, `Optimizer::get("sgd")?`).
    /// `loss`: a Keras loss name, a registered `package>name` function, or a [`Loss`].
    /// `metrics`: Keras metric names (`"accuracy"`, `"mae"`, ...) or registered functions.
    pub fn compile(
        &mut self,
        optimizer: impl Into<Optimizer>,
        loss: impl Into<LossArg>,
        metrics: &[&str],
    ) -> Result<()> {
        let ids: Vec<Json> = metrics.iter().map(|m| Json::from(*m)).collect();
        self.compile_with(optimizer.into(), loss.into(), ids)
    }

    /// [`Model::compile`] with metric objects: each a name ([`MetricArg::name`]) or an object of a
    /// registered metric class ([`MetricArg::class`]).
    pub fn compile_with_metrics(
        &mut self,
        optimizer: impl Into<Optimizer>,
        loss: impl Into<LossArg>,
        metrics: Vec<MetricArg>,
    ) -> Result<()> {
        self.compile_with(optimizer.into(), loss.into(), metrics.into_iter().map(|m| m.0).collect())
    }

    fn compile_with(&mut self, optimizer: Optimizer, loss: LossArg, metric_ids: Vec<Json>) -> Result<()> {
        let loss = resolve_loss(loss, &self.registry)?;
        let metrics = metric_ids.iter().map(|id| metric_slot(id, &self.registry)).collect::<Result<Vec<_>>>()?;
        let penalties = crate::fit::weight_penalties(&self.config, &self.layers, &self.registry)?;
        self.compiled =
            Some(Compiled { optimizer, loss, metric_ids, metrics, registry: self.registry.clone(), penalties });
        Ok(())
    }

    /// Compiles the model as its file was compiled (`load_model(..., compile=True)`), restoring
    /// the optimizer's state (iterations, slots) so training resumes where it stopped. Returns
    /// `false` when the file was not compiled.
    pub fn compile_from_file(&mut self) -> Result<bool> {
        let Some(cc) = self.file_compile_config.clone() else { return Ok(false) };
        self.compile_from_config(&cc)?;
        if let Some(vars) = self.pending_optimizer.take() {
            self.restore_optimizer(&vars)?;
        }
        Ok(true)
    }

    /// Compiles from a Keras compile config (`compile_config` of a `.keras` file, or a legacy
    /// `training_config` with `optimizer_config`): optimizer, loss and metrics, with custom
    /// losses and metrics looked up in the model's registry. Untrusted input is fine: a config
    /// that does not describe a compile setup is an error, never a panic.
    pub fn compile_from_config(&mut self, cc: &Json) -> Result<()> {
        // Keras 3 `compile_config`, or a legacy `training_config` (`optimizer_config`)
        let opt_json = cc
            .get("optimizer")
            .filter(|o| !o.is_null())
            .or_else(|| cc.get("optimizer_config"))
            .cloned()
            .ok_or_else(|| {
                Error::invalid("the file's compile config names no optimizer", "compile the model with Model::compile")
            })?;
        let optimizer = Optimizer::deserialize(&opt_json)?;
        let loss_json = cc.get("loss").cloned().unwrap_or(Json::Null);
        let loss = match &loss_json {
            Json::String(s) => LossArg::Name(s.clone()),
            j if j.get("class_name").and_then(Json::as_str) == Some("function") => {
                LossArg::Name(j.get("config").and_then(Json::as_str).unwrap_or_default().to_string())
            }
            Json::Null => {
                return Err(Error::invalid(
                    "the file's compile config has no loss",
                    "compile the model with Model::compile",
                ));
            }
            j => match custom_loss_object(j, &self.registry)? {
                Some(arg) => arg,
                None => LossArg::Loss(Loss::deserialize(j)?),
            },
        };
        let metric_ids: Vec<Json> = match cc.get("metrics") {
            Some(Json::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        self.compile_with(optimizer, loss, metric_ids)
    }

    /// The loss name the file was compiled with (`"mse"`, `"my_custom_losses>custom_loss"`), if it
    /// names one (a loss object's class name otherwise).
    pub fn compiled_loss_name(&self) -> Option<String> {
        let cc = self.file_compile_config.as_ref()?;
        match cc.get("loss")? {
            Json::String(s) => Some(s.clone()),
            j if j.get("class_name").and_then(Json::as_str) == Some("function") => {
                j.get("config").and_then(Json::as_str).map(str::to_string)
            }
            j => j.get("class_name").and_then(Json::as_str).map(str::to_string),
        }
    }

    /// The optimizer variables as Keras saves them (iterations, learning rate, slots), empty
    /// before the first step.
    pub fn optimizer_variables(&self) -> Result<Vec<(String, Tensor)>> {
        match &self.compiled {
            Some(c) if c.optimizer.is_built() => Ok(c.optimizer.variables()?),
            _ => Ok(Vec::new()),
        }
    }

    /// The compiled optimizer.
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.compiled.as_ref().map(|c| &c.optimizer)
    }

    /// The trainable variables' paths and shapes, in Keras order (`model.trainable_variables`).
    pub(crate) fn trainable_specs(&self) -> Vec<(String, Vec<usize>)> {
        self.layers
            .iter()
            .flat_map(|l| {
                l.values
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| l.trainable.get(*i).copied().unwrap_or(false))
                    .map(|(i, v)| (l.variable_path(i), v.shape().to_vec()))
            })
            .collect()
    }

    fn restore_optimizer(&mut self, vars: &[Tensor]) -> Result<()> {
        let specs = self.trainable_specs();
        let Some(c) = self.compiled.as_mut() else { return Ok(()) };
        let spec_refs: Vec<(&str, &[usize])> = specs.iter().map(|(p, s)| (p.as_str(), s.as_slice())).collect();
        c.optimizer.build(&spec_refs)?;
        c.optimizer.load_variables(vars)?;
        Ok(())
    }
}
