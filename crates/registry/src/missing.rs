//! Finding every custom object a model uses (layer classes, functions and objects inside layer
//! configs, the compile config's loss and metrics), and the message for those not registered.

use crate::registry::{Kind, Registry, layer_key};
use strata_format::config::{LayerConfig, ModelConfig};
use strata_format::json::Json;

/// A custom object a model uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedObject {
    /// What it is.
    pub kind: Kind,
    /// The name the file gives it (`my_custom_layers>CustomDense`, or a bare name).
    pub name: String,
    /// Where it is used (`layer `custom_dense``, `compile config `loss``).
    pub used_by: String,
}

/// A custom object that is not registered.
pub type MissingObject = UsedObject;

/// Loss and metric names Keras writes as plain strings for its own functions.
pub use strata_format::builtin::LOSS_METRIC_NAMES as BUILTIN_LOSS_METRIC_NAMES;

fn is_keras_module(m: &str) -> bool {
    m == "keras" || m.starts_with("keras.") || m == "tf_keras" || m.starts_with("tf_keras.")
}

/// Whether a layer config names a custom class (not one of Keras's own): a `package>Name` class
/// name (legacy `.h5`), a module outside Keras (`__main__` is written as `null`), or a
/// registered name with no Keras module.
pub fn is_custom_layer(l: &LayerConfig) -> bool {
    if l.class_name.contains('>') || l.registered_name.as_deref().is_some_and(|r| r.contains('>')) {
        return true;
    }
    match l.module.as_deref() {
        Some(m) => !is_keras_module(m),
        // Keras 3 writes `module: null` with a registered name for `__main__` classes; legacy
        // files have neither, and there a class that is no Keras class is custom (Keras writes an
        // unregistered class under its bare name)
        None => {
            l.registered_name.is_some()
                || !(strata_layers::is_supported(&l.class_name)
                    || strata_format::builtin::is_keras_layer(&l.class_name)
                    || l.class_name == "Functional"
                    || l.class_name == "Sequential"
                    || l.class_name == "Model")
        }
    }
}

/// Every custom object `config` (and the training config, when given) uses, in model order.
pub fn used_objects(config: &ModelConfig, training: Option<&Json>) -> Vec<UsedObject> {
    let mut out = Vec::new();
    for (path, _, l) in strata_format::bind::all_layers(config) {
        if l.nested.is_none() && is_custom_layer(l) {
            out.push(UsedObject {
                kind: Kind::Layer,
                name: layer_key(l).to_string(),
                used_by: format!("layer `{path}`"),
            });
        }
        if let Some(obj) = l.config.as_object() {
            for (k, v) in obj.iter().filter(|(k, _)| !matches!(*k, "name" | "trainable" | "dtype" | "layers")) {
                scan_value(v, key_kind(k), &format!("layer `{path}` (config key `{k}`)"), &mut out);
            }
        }
    }
    if let Some(t) = training {
        for key in ["loss", "metrics", "weighted_metrics"] {
            let kind = if key == "loss" { Kind::Loss } else { Kind::Metric };
            if let Some(v) = t.get(key) {
                scan_compile(v, kind, key, &mut out);
            }
        }
    }
    out
}

fn key_kind(key: &str) -> Kind {
    if key.ends_with("activation") {
        Kind::Activation
    } else if key.ends_with("_initializer") {
        Kind::Initializer
    } else if key.ends_with("_regularizer") {
        Kind::Regularizer
    } else if key.ends_with("_constraint") {
        Kind::Constraint
    } else if matches!(key, "layer" | "cell" | "cells" | "forward_layer" | "backward_layer") {
        Kind::Layer
    } else {
        Kind::Object
    }
}

/// The custom name of one serialized object, if it is custom.
fn custom_name(v: &Json) -> Option<String> {
    let class = v.get("class_name")?.as_str()?;
    if class.starts_with("__") {
        return None; // markers: __keras_tensor__, __lambda__, __numpy__, ...
    }
    let module = v.get("module").and_then(Json::as_str);
    if class == "function" && module == Some("builtins") {
        let name = v.get("config")?.as_str()?;
        return (name.contains('>') || !BUILTIN_LOSS_METRIC_NAMES.contains(&name)).then(|| name.to_string());
    }
    let registered = v.get("registered_name").and_then(Json::as_str);
    match module {
        Some(m) if is_keras_module(m) && !registered.is_some_and(|r| r.contains('>')) => None,
        Some(_) => Some(registered.unwrap_or(class).to_string()),
        None if v.get("module").is_some() => Some(registered.unwrap_or(class).to_string()),
        // legacy shape (no `module` key): custom only when the class name is `package>Name`
        None => class.contains('>').then(|| class.to_string()),
    }
}

fn scan_value(v: &Json, kind: Kind, used_by: &str, out: &mut Vec<UsedObject>) {
    match v {
        Json::String(s) if s.contains('>') => {
            out.push(UsedObject { kind, name: s.clone(), used_by: used_by.to_string() })
        }
        Json::Object(_) => {
            if let Some(name) = custom_name(v) {
                out.push(UsedObject { kind, name, used_by: used_by.to_string() });
            }
        }
        Json::Array(items) => items.iter().for_each(|i| scan_value(i, kind, used_by, out)),
        _ => {}
    }
}

/// `path`: where in the compile config (`loss`, `metrics[1]`, `loss["out"]`).
fn scan_compile(v: &Json, kind: Kind, path: &str, out: &mut Vec<UsedObject>) {
    let used_by = || format!("compile config `{path}`");
    match v {
        Json::String(s) if s.contains('>') || !BUILTIN_LOSS_METRIC_NAMES.contains(&s.as_str()) => {
            out.push(UsedObject { kind, name: s.clone(), used_by: used_by() })
        }
        Json::Object(o) if !(o.contains_key("class_name") && o.contains_key("config")) => {
            for (k, item) in o.iter() {
                scan_compile(item, kind, &format!("{path}[\"{k}\"]"), out);
            }
        }
        Json::Object(_) => scan_value(v, kind, &used_by(), out),
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                scan_compile(item, kind, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

impl Registry {
    /// Whether `obj` resolves in this registry (layers by key; functions by key or `>name` suffix).
    pub fn resolves(&self, obj: &UsedObject) -> bool {
        self.layer_entry(&obj.name).is_some() || self.function_entry(&obj.name).is_some()
    }

    /// Every object of `used` that does not resolve.
    pub fn missing(&self, used: &[UsedObject]) -> Vec<MissingObject> {
        used.iter().filter(|o| !self.resolves(o)).cloned().collect()
    }
}

/// The Rust identifier a name suggests (`custom_loss` from `my_custom_losses>custom_loss`).
fn short(name: &str) -> &str {
    name.rsplit('>').next().unwrap_or(name)
}

/// The typed registration method for a kind of function, with the Rust signature it takes.
fn typed_method(kind: Kind) -> Option<(&'static str, &'static str)> {
    const PAIR: &str = "(y_true: &Tensor, y_pred: &Tensor) -> strata_tensor::Result<Tensor>";
    const ONE: &str = "(x: &Tensor) -> strata_tensor::Result<Tensor>";
    Some(match kind {
        Kind::Loss => ("loss", PAIR),
        Kind::Metric => ("metric", PAIR),
        Kind::Activation => ("activation", ONE),
        Kind::Regularizer => ("regularizer", ONE),
        Kind::Constraint => ("constraint", ONE),
        Kind::Initializer => ("initializer", "(shape: &[usize]) -> strata_tensor::Result<Tensor>"),
        _ => return None,
    })
}

/// The fix lines for one missing object (Rust registration, then the Python decorator).
pub fn fix_lines(m: &MissingObject) -> [String; 2] {
    let short_name = short(&m.name);
    let package = m.name.split_once('>').map(|(p, _)| p);
    let is_class = m.kind == Kind::Layer || short_name.chars().next().is_some_and(char::is_uppercase);
    match (is_class, package) {
        (true, Some(p)) if m.kind == Kind::Loss => [
            format!(
                "#[derive(KerasLayer, Serialize, Deserialize)] #[keras(package = \"{p}\")] struct {short_name} {{ .. }} with impl CustomLoss, then registry.loss_class::<{short_name}>()"
            ),
            format!(
                "@keras.saving.register_keras_serializable(package=\"{p}\") on class {short_name}(keras.losses.Loss)"
            ),
        ],
        (true, Some(p)) if m.kind == Kind::Metric => [
            format!(
                "#[derive(KerasLayer, Serialize, Deserialize)] #[keras(package = \"{p}\")] struct {short_name} {{ .. }} with impl CustomMetric, then registry.metric_class::<{short_name}>()"
            ),
            format!(
                "@keras.saving.register_keras_serializable(package=\"{p}\") on class {short_name}(keras.metrics.Metric)"
            ),
        ],
        (true, Some(p)) => [
            format!(
                "#[derive(KerasLayer, Serialize, Deserialize)] #[keras(package = \"{p}\")] struct {short_name} {{ .. }}, then registry.layer::<{short_name}>()"
            ),
            format!("@keras.saving.register_keras_serializable(package=\"{p}\") on class {short_name}"),
        ],
        (true, None) => [
            format!(
                "#[derive(KerasLayer, Serialize, Deserialize)] #[keras(unregistered)] struct {short_name} {{ .. }}, then registry.layer::<{short_name}>() (the file names the class without a package: it was not registered when saved)"
            ),
            format!(
                "custom_objects={{\"{short_name}\": {short_name}}}, or register it with @keras.saving.register_keras_serializable() and save again"
            ),
        ],
        (false, Some(p)) if typed_method(m.kind).is_some() => [
            {
                let (method, signature) = typed_method(m.kind).unwrap_or_default();
                format!("registry.{method}(\"{p}\", \"{short_name}\", {short_name}) with fn {short_name}{signature}")
            },
            format!("@keras.saving.register_keras_serializable(package=\"{p}\") on def {short_name}"),
        ],
        (false, Some(p)) => [
            format!("registry.function(\"{p}\", \"{short_name}\", {}, {short_name})", m.kind.rust()),
            format!("@keras.saving.register_keras_serializable(package=\"{p}\") on def {short_name}"),
        ],
        (false, None) => [
            format!("registry.function_as(\"{short_name}\", {}, {short_name})", m.kind.rust()),
            format!("custom_objects={{\"{short_name}\": {short_name}}}"),
        ],
    }
}

/// The message for missing objects (the text of [`crate::Error::Missing`]).
pub fn render(file: &str, missing: &[MissingObject]) -> String {
    let mut s =
        format!("cannot load `{file}`: {} custom object(s) used by the model are not registered:", missing.len());
    for m in missing {
        let [rust, python] = fix_lines(m);
        s.push_str(&format!(
            "\n  - {} `{}`, used by {}\n      Rust:   {rust}\n      Python: {python}",
            m.kind.describe(),
            m.name,
            m.used_by
        ));
    }
    s.push_str(
        "\nregister them on the Registry passed to strata_model::Model::load(path, &registry) (or strata_registry::load_model); LoadOptions { compile: false } skips the compile config (loss, metrics) like Keras's compile=False",
    );
    s
}
