//! `strata inspect`: what a model file holds, as a report a person reads (like Keras's
//! `model.summary()`) or a JSON object a program reads. Nothing in the file runs: Lambda layers
//! and custom classes are listed as such.

use crate::bind::{self, Binding};
use crate::builtin;
use crate::config::{LambdaFunction, LayerConfig, ModelConfig, ModelKind, TrainingConfig};
use crate::json::Json;
use crate::model::ModelFile;
use crate::weights::TensorInfo;

/// One row of the layer table.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    /// The layer's name.
    pub name: String,
    /// Names from the top model down (`outer/inner/dense`); equal to `name` at the top level.
    pub path: String,
    /// 0 at the top level.
    pub depth: usize,
    /// The class as written (`Dense`, `CustomDense`, `my_pkg>Scale`).
    pub class_name: String,
    /// Keras 3 `registered_name`, when present.
    pub registered_name: Option<String>,
    /// Keras 3 `module`, when present.
    pub module: Option<String>,
    /// Parameters (the layer and, for a nested model, everything inside it).
    pub params: u64,
    /// The output shape, when the file tells it (`(None, 4)`).
    pub output_shape: Option<String>,
    /// Inbound tensors as `layer[node][tensor]`.
    pub connected_to: Vec<String>,
    /// What kind of class it is.
    pub kind: ClassKind,
}

/// Whether a class is Keras's own, a custom class, a Lambda, or a nested model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassKind {
    /// A Keras layer class.
    Keras,
    /// A nested model.
    Model,
    /// A `Lambda` layer (Python code stored in the file; never run).
    Lambda,
    /// A class that Keras does not define: it needs registering to load.
    Custom,
}

impl ClassKind {
    fn as_str(self) -> &'static str {
        match self {
            ClassKind::Keras => "keras",
            ClassKind::Model => "model",
            ClassKind::Lambda => "lambda",
            ClassKind::Custom => "custom",
        }
    }
}

/// The whole report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file as given.
    pub file: String,
    /// `keras_v3`, `legacy_h5_model`, ...
    pub format: &'static str,
    /// A phrase for people.
    pub format_description: &'static str,
    /// The Keras version that wrote it, when recorded.
    pub keras_version: Option<String>,
    /// The backend, when recorded.
    pub backend: Option<String>,
    /// When it was saved, when recorded.
    pub date_saved: Option<String>,
    /// The model's name and class, when there is a config.
    pub model: Option<(String, String)>,
    /// Which writer the config looks like.
    pub dialect: Option<String>,
    /// Every layer (nested ones too, with `depth > 0`).
    pub layers: Vec<LayerRow>,
    /// Sum of all weight elements.
    pub total_params: u64,
    /// Trainable part of `total_params`.
    pub trainable_params: u64,
    /// Non-trainable part of `total_params`.
    pub non_trainable_params: u64,
    /// Bytes of all model weights.
    pub total_bytes: u64,
    /// Bytes of the non-trainable weights.
    pub non_trainable_bytes: u64,
    /// Every stored model tensor: (path, layer path, shape, dtype).
    pub weights: Vec<(String, String, Vec<u64>, String)>,
    /// Optimizer state tensors.
    pub optimizer_weights: usize,
    /// `optimizer`, `loss`, `metrics` as short strings.
    pub compile: Option<(Option<String>, Option<String>, Option<String>)>,
    /// Lambda layers: (layer path, how the function is stored).
    pub lambdas: Vec<(String, String)>,
    /// Custom classes: (layer path, class name, registered name).
    pub custom_objects: Vec<(String, String, Option<String>)>,
    /// Binding problems.
    pub problems: Vec<String>,
    /// Notes.
    pub notes: Vec<String>,
}

fn shape_str(shape: &Json) -> Option<String> {
    let dims = shape.as_array()?;
    let parts: Vec<String> = dims
        .iter()
        .map(|d| {
            if d.is_null() {
                "None".to_string()
            } else {
                d.as_i64().map(|v| v.to_string()).unwrap_or_else(|| "?".into())
            }
        })
        .collect();
    if parts.len() == 1 { Some(format!("({},)", parts[0])) } else { Some(format!("({})", parts.join(", "))) }
}

/// Output shapes the config states: inputs' batch shapes, and the shapes of `__keras_tensor__`
/// markers that consume a layer's output.
fn known_output_shapes(config: &ModelConfig) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    fn scan(j: &Json, out: &mut Vec<(String, String)>) {
        match j {
            Json::Object(o) => {
                if o.get("class_name").and_then(Json::as_str) == Some("__keras_tensor__") {
                    if let Some(cfg) = o.get("config") {
                        let layer = cfg.get("keras_history").and_then(|h| h.at(0)).and_then(Json::as_str);
                        let tidx = cfg.get("keras_history").and_then(|h| h.at(2)).and_then(Json::as_i64);
                        if let (Some(layer), Some(0), Some(shape)) = (layer, tidx, cfg.get("shape").and_then(shape_str))
                        {
                            if !out.iter().any(|(l, _)| l == layer) {
                                out.push((layer.to_string(), shape));
                            }
                        }
                    }
                }
                for (_, v) in o.iter() {
                    scan(v, out);
                }
            }
            Json::Array(a) => a.iter().for_each(|v| scan(v, out)),
            _ => {}
        }
    }
    for (i, l) in config.layers.iter().enumerate() {
        if let Some(s) = l.batch_input_shape().and_then(shape_str) {
            if bind::python_class_name(l) == "InputLayer" {
                out.push((l.name.clone(), s));
            }
        }
        for n in &l.inbound_nodes {
            scan(&n.raw, &mut out);
        }
        // Keras 3 Sequential: a layer's build_config input shape is its predecessor's output
        if config.kind == ModelKind::Sequential && i > 0 {
            if let Some(s) = l.build_config.as_ref().and_then(|b| b.get("input_shape")).and_then(shape_str) {
                let prev = &config.layers[i - 1].name;
                if !out.iter().any(|(n, _)| n == prev) {
                    out.push((prev.clone(), s));
                }
            }
        }
    }
    out
}

/// Parses `(None, 4)` back into dims (`None` as `None`).
fn parse_shape(s: &str) -> Option<Vec<Option<u64>>> {
    let inner = s.strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| if p == "None" { Some(None) } else { p.parse::<u64>().ok().map(Some) })
        .collect()
}

fn format_shape(dims: &[Option<u64>]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.map(|v| v.to_string()).unwrap_or_else(|| "None".into())).collect();
    if parts.len() == 1 { format!("({},)", parts[0]) } else { format!("({})", parts.join(", ")) }
}

/// The output shape of `l` given its input shape, for the layers whose rule is simple.
fn infer_output(l: &LayerConfig, input: &[Option<u64>]) -> Option<Vec<Option<u64>>> {
    let class = bind::python_class_name(l);
    let units = || l.config.get("units").or_else(|| l.config.get("output_dim")).and_then(Json::as_u64);
    match class.as_str() {
        "Dense" | "CustomDense" => {
            let mut out = input.to_vec();
            *out.last_mut()? = Some(units()?);
            Some(out)
        }
        "Activation"
        | "Dropout"
        | "BatchNormalization"
        | "LayerNormalization"
        | "GroupNormalization"
        | "UnitNormalization"
        | "GaussianNoise"
        | "GaussianDropout"
        | "AlphaDropout"
        | "ReLU"
        | "LeakyReLU"
        | "PReLU"
        | "ELU"
        | "ThresholdedReLU"
        | "Softmax"
        | "Rescaling"
        | "Normalization"
        | "Identity"
        | "ActivityRegularization"
        | "SpatialDropout1D"
        | "SpatialDropout2D"
        | "SpatialDropout3D"
        | "Masking" => Some(input.to_vec()),
        "Flatten" => {
            let rest = input.get(1..)?;
            let n = rest.iter().try_fold(1u64, |a, d| d.and_then(|d| a.checked_mul(d)));
            Some(vec![input.first().copied().flatten(), n])
        }
        _ => None,
    }
}

/// Fills in output shapes that follow from known ones through simple layers, in config order
/// (Sequential: from the previous layer; functional: from a single inbound tensor).
fn propagate_shapes(config: &ModelConfig, prefix: &str, shapes: &mut Vec<(String, String)>) {
    let known = |shapes: &Vec<(String, String)>, p: &str| shapes.iter().find(|(k, _)| k == p).map(|(_, s)| s.clone());
    let mut prev: Option<String> = None;
    for l in &config.layers {
        let path = format!("{prefix}{}", l.name);
        let input = if config.kind == ModelKind::Sequential {
            l.build_config
                .as_ref()
                .and_then(|b| b.get("input_shape"))
                .and_then(shape_str)
                .or_else(|| l.batch_input_shape().and_then(shape_str))
                .or_else(|| prev.clone())
        } else {
            let ins: Vec<_> = l.inbound_nodes.iter().flat_map(|n| n.inputs.iter()).collect();
            match ins.as_slice() {
                [one] if one.tensor_index == 0 => known(shapes, &format!("{prefix}{}", one.layer)),
                _ => None,
            }
        };
        if known(shapes, &path).is_none() {
            if let Some(out) = input.as_deref().and_then(parse_shape).and_then(|i| infer_output(l, &i)) {
                shapes.push((path.clone(), format_shape(&out)));
            } else if bind::python_class_name(l) == "InputLayer" {
                if let Some(i) = input.clone() {
                    shapes.push((path.clone(), i));
                }
            }
        }
        if let Some(inner) = &l.nested {
            propagate_shapes(inner, &format!("{path}/"), shapes);
        }
        prev = known(shapes, &path);
    }
}

fn class_kind(l: &LayerConfig) -> ClassKind {
    if l.is_model() {
        return ClassKind::Model;
    }
    let class = l.class_name.as_str();
    if class == "Lambda" {
        return ClassKind::Lambda;
    }
    let keras_module = match &l.module {
        Some(m) => m == "keras" || m.starts_with("keras.") || m.starts_with("tf_keras") || m.starts_with("keras_"),
        None => l.registered_name.is_none(),
    };
    if class.contains('>') || !builtin::is_keras_layer(class) || !keras_module {
        ClassKind::Custom
    } else {
        ClassKind::Keras
    }
}

fn lambda_desc(f: &LambdaFunction) -> String {
    match f {
        LambdaFunction::Keras3Lambda { .. } => "marshaled Python bytecode (Keras 3 __lambda__)".into(),
        LambdaFunction::Keras2 { function_type, module, .. } => format!(
            "marshaled Python bytecode (Keras 2 `{function_type}`{})",
            module.as_deref().map(|m| format!(", module `{m}`")).unwrap_or_default()
        ),
        LambdaFunction::Keras1Raw { .. } => "marshaled Python bytecode (Keras <= 2.1.1 raw_unicode_escape text)".into(),
        LambdaFunction::NamedFunction { module, name, .. } => format!(
            "a reference to function `{name}`{}",
            module.as_deref().map(|m| format!(" in module `{m}`")).unwrap_or_default()
        ),
        #[allow(unreachable_patterns)]
        _ => "a Python function".into(),
    }
}

fn short(j: &Json) -> String {
    match j {
        Json::String(s) => s.clone(),
        Json::Null => "null".into(),
        Json::Object(o) => {
            // {"module": "builtins", "class_name": "function", "config": "pkg>fn"}
            if o.get("class_name").and_then(Json::as_str) == Some("function") {
                if let Some(s) = o.get("config").and_then(Json::as_str) {
                    return s.to_string();
                }
            }
            match o.get("class_name").and_then(Json::as_str) {
                Some(c) => c.to_string(),
                None => j.to_string_python(),
            }
        }
        Json::Array(a) => format!("[{}]", a.iter().map(short).collect::<Vec<_>>().join(", ")),
        other => other.to_string_python(),
    }
}

fn optimizer_summary(tc: &TrainingConfig) -> Option<String> {
    let opt = tc.optimizer.as_ref()?;
    let class = tc.optimizer_class_name().unwrap_or("?").to_string();
    let lr = opt.get("config").and_then(|c| c.get("learning_rate")).and_then(Json::as_f64);
    Some(match lr {
        // Keras stores a float32 learning rate widened to f64: show it as the f32 it was
        Some(lr) if (lr as f32) as f64 == lr => format!("{class} (learning_rate={})", lr as f32),
        Some(lr) => format!("{class} (learning_rate={})", crate::json::python_float_repr(lr)),
        None => class,
    })
}

fn dtype_bytes(t: &TensorInfo) -> u64 {
    t.num_bytes().unwrap_or(0)
}

impl Report {
    /// Builds the report for an opened file.
    pub fn new(mf: &ModelFile) -> Report {
        let mut r = Report {
            file: mf.path.display().to_string(),
            format: mf.format.as_str(),
            format_description: mf.format.describe(),
            keras_version: mf.keras_version.clone(),
            backend: mf.backend.clone(),
            date_saved: mf.date_saved.clone(),
            model: None,
            dialect: None,
            layers: Vec::new(),
            total_params: 0,
            trainable_params: 0,
            non_trainable_params: 0,
            total_bytes: 0,
            non_trainable_bytes: 0,
            weights: Vec::new(),
            optimizer_weights: 0,
            compile: None,
            lambdas: Vec::new(),
            custom_objects: Vec::new(),
            problems: Vec::new(),
            notes: mf.notes.clone(),
        };
        if let Some(store) = &mf.weights {
            r.optimizer_weights = store.optimizer.len();
        }
        if let Some(tc) = mf.training_config.as_ref().and_then(|j| TrainingConfig::parse(j).ok()) {
            let some = |j: &Option<Json>| j.as_ref().filter(|v| !v.is_null()).map(short);
            let c = (optimizer_summary(&tc), some(&tc.loss), some(&tc.metrics));
            if c.0.is_some() || c.1.is_some() {
                r.compile = Some(c);
            }
        }
        let Some(config) = &mf.config else {
            // weights only: one row per stored owner
            if let Some(store) = &mf.weights {
                for o in &store.owners {
                    let params = o.tensors.iter().map(TensorInfo::num_elements).fold(0u64, u64::saturating_add);
                    r.layers.push(LayerRow {
                        name: o.owner.clone(),
                        path: o.owner.clone(),
                        depth: 0,
                        class_name: "?".into(),
                        registered_name: None,
                        module: None,
                        params,
                        output_shape: None,
                        connected_to: Vec::new(),
                        kind: ClassKind::Keras,
                    });
                    for t in &o.tensors {
                        r.weights.push((
                            t.h5_path.clone(),
                            o.owner.clone(),
                            t.shape.clone(),
                            t.dtype.numpy_name().to_string(),
                        ));
                    }
                }
                r.total_params = store.total_elements();
                r.trainable_params = r.total_params;
                r.total_bytes = store.tensors().map(dtype_bytes).fold(0u64, u64::saturating_add);
                r.notes.push("weights-only file: layer classes and trainability are not recorded; pass the architecture to see them".into());
            }
            return r;
        };
        r.model = Some((config.name.clone(), config.envelope.class_name.clone()));
        r.dialect = Some(format!("{:?}", config.source));
        let binding: Option<Binding<'_>> = mf.weights.as_ref().map(|s| bind::bind(config, s));
        let mut shapes: Vec<(String, String)> = Vec::new();
        let mut walk: Vec<(&ModelConfig, String)> = vec![(config, String::new())];
        while let Some((m, prefix)) = walk.pop() {
            for (l, s) in known_output_shapes(m) {
                shapes.push((format!("{prefix}{l}"), s));
            }
            for l in &m.layers {
                if let Some(inner) = &l.nested {
                    walk.push((inner, format!("{prefix}{}/", l.name)));
                }
            }
        }
        let rows: Vec<(String, usize, &LayerConfig)> = match &binding {
            Some(b) => b.layers.iter().map(|bl| (bl.path.clone(), bl.depth, bl.layer)).collect(),
            None => bind::all_layers(config),
        };
        propagate_shapes(config, "", &mut shapes);
        for (path, depth, l) in rows {
            let kind = class_kind(l);
            let params = binding.as_ref().map(|b| b.subtree_params(&path)).unwrap_or(0);
            let connected_to = l
                .inbound_nodes
                .iter()
                .flat_map(|n| n.inputs.iter())
                .map(|t| format!("{}[{}][{}]", t.layer, t.node_index, t.tensor_index))
                .collect();
            if kind == ClassKind::Lambda {
                let how = l.lambda_function().map(|f| lambda_desc(&f)).unwrap_or_else(|| "a function".into());
                r.lambdas.push((path.clone(), how));
            }
            if kind == ClassKind::Custom {
                r.custom_objects.push((path.clone(), l.class_name.clone(), l.registered_name.clone()));
            }
            r.layers.push(LayerRow {
                name: l.name.clone(),
                output_shape: shapes.iter().find(|(p, _)| *p == path).map(|(_, s)| s.clone()),
                path,
                depth,
                class_name: l.class_name.clone(),
                registered_name: l.registered_name.clone(),
                module: l.module.clone(),
                params,
                connected_to,
                kind,
            });
        }
        if let Some(b) = &binding {
            r.total_params = b.total_params();
            r.non_trainable_params = b.non_trainable_params();
            r.trainable_params = r.total_params.saturating_sub(r.non_trainable_params);
            for bl in &b.layers {
                let nt = bl.non_trainable_count();
                for (i, t) in bl.tensors.iter().enumerate() {
                    // sizes come from shapes in the file: saturate, as the parameter counts do
                    r.total_bytes = r.total_bytes.saturating_add(dtype_bytes(t));
                    if i >= bl.tensors.len().saturating_sub(nt) || !bl.layer.trainable() {
                        r.non_trainable_bytes = r.non_trainable_bytes.saturating_add(dtype_bytes(t));
                    }
                    r.weights.push((
                        t.h5_path.clone(),
                        bl.path.clone(),
                        t.shape.clone(),
                        t.dtype.numpy_name().to_string(),
                    ));
                }
            }
            r.problems = b.problems.iter().map(|p| p.to_string()).collect();
        }
        r
    }

    /// The report as one JSON object (`strata inspect --json`).
    pub fn to_json(&self) -> Json {
        let opt = |s: &Option<String>| s.as_deref().map(Json::from).unwrap_or(Json::Null);
        let layers = self.layers.iter().map(|l| {
            let mut e: Vec<(&str, Json)> = vec![
                ("name", l.name.as_str().into()),
                ("path", l.path.as_str().into()),
                ("depth", l.depth.into()),
                ("class_name", l.class_name.as_str().into()),
            ];
            if let Some(rn) = &l.registered_name {
                e.push(("registered_name", rn.as_str().into()));
            }
            if let Some(m) = &l.module {
                e.push(("module", m.as_str().into()));
            }
            e.push(("kind", l.kind.as_str().into()));
            e.push(("params", l.params.into()));
            e.push(("output_shape", opt(&l.output_shape)));
            e.push(("connected_to", Json::array(l.connected_to.iter().map(|c| Json::from(c.as_str())))));
            Json::object(e)
        });
        let weights = self.weights.iter().map(|(p, layer, shape, dtype)| {
            Json::object([
                ("path", Json::from(p.as_str())),
                ("layer", layer.as_str().into()),
                ("shape", Json::array(shape.iter().map(|&d| Json::from(d)))),
                ("dtype", dtype.as_str().into()),
            ])
        });
        let compile = match &self.compile {
            Some((o, l, m)) => Json::object([("optimizer", opt(o)), ("loss", opt(l)), ("metrics", opt(m))]),
            None => Json::Null,
        };
        Json::object([
            ("file", Json::from(self.file.as_str())),
            ("format", self.format.into()),
            ("keras_version", opt(&self.keras_version)),
            ("backend", opt(&self.backend)),
            ("date_saved", opt(&self.date_saved)),
            (
                "model",
                match &self.model {
                    Some((n, c)) => Json::object([("name", Json::from(n.as_str())), ("class_name", c.as_str().into())]),
                    None => Json::Null,
                },
            ),
            ("config_dialect", opt(&self.dialect)),
            ("layers", Json::array(layers)),
            ("total_params", self.total_params.into()),
            ("trainable_params", self.trainable_params.into()),
            ("non_trainable_params", self.non_trainable_params.into()),
            ("weights", Json::array(weights)),
            ("optimizer_weights", self.optimizer_weights.into()),
            ("compile", compile),
            (
                "lambda_layers",
                Json::array(
                    self.lambdas.iter().map(|(p, h)| {
                        Json::object([("layer", Json::from(p.as_str())), ("function", h.as_str().into())])
                    }),
                ),
            ),
            (
                "custom_objects",
                Json::array(self.custom_objects.iter().map(|(p, c, r)| {
                    Json::object([
                        ("layer", Json::from(p.as_str())),
                        ("class_name", c.as_str().into()),
                        ("registered_name", opt(r)),
                    ])
                })),
            ),
            ("problems", Json::array(self.problems.iter().map(|p| Json::from(p.as_str())))),
            ("notes", Json::array(self.notes.iter().map(|p| Json::from(p.as_str())))),
        ])
    }

    /// The report as text, with a layer table like Keras's `model.summary()`.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let push = |s: &mut String, line: String| {
            s.push_str(&line);
            s.push('\n');
        };
        push(&mut s, format!("File:      {}", self.file));
        push(&mut s, format!("Format:    {} ({})", self.format, self.format_description));
        let mut kv = self.keras_version.clone().unwrap_or_else(|| "not recorded".into());
        if let Some(d) = &self.date_saved {
            kv.push_str(&format!(", saved {d}"));
        }
        push(&mut s, format!("Keras:     {kv}"));
        push(&mut s, format!("Backend:   {}", self.backend.as_deref().unwrap_or("not recorded")));
        if let Some(d) = &self.dialect {
            push(&mut s, format!("Config:    {d} dialect"));
        }
        s.push('\n');
        match &self.model {
            Some((n, c)) if n.is_empty() => push(&mut s, format!("Model: unnamed ({c})")),
            Some((n, c)) => push(&mut s, format!("Model: \"{n}\" ({c})")),
            None => push(&mut s, "Weights (no model config in this file):".to_string()),
        }
        let functional = self.layers.iter().any(|l| !l.connected_to.is_empty());
        let mut header = vec!["Layer (type)".to_string(), "Output Shape".to_string(), "Param #".to_string()];
        if functional {
            header.push("Connected to".to_string());
        }
        let mut rows: Vec<Vec<String>> = Vec::new();
        let sequential = self.model.as_ref().is_some_and(|(_, c)| c == "Sequential");
        for l in &self.layers {
            if sequential && l.depth == 0 && l.class_name == "InputLayer" {
                continue;
            }
            let indent = "  ".repeat(l.depth);
            let mut class = l.class_name.clone();
            match l.kind {
                ClassKind::Custom => class.push_str(", custom"),
                ClassKind::Lambda => class.push_str(", code not run"),
                _ => {}
            }
            let mut row = vec![
                format!("{indent}{} ({class})", l.name),
                l.output_shape.clone().unwrap_or_else(|| "?".into()),
                group_digits(l.params),
            ];
            if functional {
                row.push(l.connected_to.join(", "));
            }
            rows.push(row);
        }
        s.push_str(&table(&header, &rows));
        push(&mut s, format!(" Total params: {} ({})", group_digits(self.total_params), human_bytes(self.total_bytes)));
        push(
            &mut s,
            format!(
                " Trainable params: {} ({})",
                group_digits(self.trainable_params),
                human_bytes(self.total_bytes.saturating_sub(self.non_trainable_bytes))
            ),
        );
        push(
            &mut s,
            format!(
                " Non-trainable params: {} ({})",
                group_digits(self.non_trainable_params),
                human_bytes(self.non_trainable_bytes)
            ),
        );
        if let Some((o, l, m)) = &self.compile {
            s.push('\n');
            push(&mut s, "Compile:".into());
            push(&mut s, format!("  optimizer: {}", o.as_deref().unwrap_or("none")));
            push(&mut s, format!("  loss:      {}", l.as_deref().unwrap_or("none")));
            push(&mut s, format!("  metrics:   {}", m.as_deref().unwrap_or("none")));
        }
        if !self.weights.is_empty() {
            s.push('\n');
            push(
                &mut s,
                format!(
                    "Weights: {} tensors, {}{}",
                    self.weights.len(),
                    human_bytes(self.total_bytes),
                    if self.optimizer_weights > 0 {
                        format!(" (plus {} optimizer tensors)", self.optimizer_weights)
                    } else {
                        String::new()
                    }
                ),
            );
            let w = self.weights.iter().map(|(p, ..)| p.chars().count()).max().unwrap_or(0);
            for (p, _, shape, dtype) in &self.weights {
                let sh = match shape.as_slice() {
                    [d] => format!("({d},)"),
                    dims => format!("({})", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
                };
                push(&mut s, format!("  {p:<w$}  {sh:<16} {dtype}"));
            }
        }
        if !self.lambdas.is_empty() {
            s.push('\n');
            push(&mut s, "Lambda layers (Python code stored in the file; strata never runs it):".into());
            for (p, h) in &self.lambdas {
                push(&mut s, format!("  {p}: {h}"));
            }
        }
        if !self.custom_objects.is_empty() {
            s.push('\n');
            push(&mut s, "Custom classes (not part of Keras; they must be registered to load):".into());
            for (p, c, r) in &self.custom_objects {
                push(
                    &mut s,
                    format!(
                        "  {p}: {c}{}",
                        r.as_deref().map(|r| format!(" (registered name `{r}`)")).unwrap_or_default()
                    ),
                );
            }
        }
        if !self.problems.is_empty() {
            s.push('\n');
            push(&mut s, "Problems:".into());
            for p in &self.problems {
                push(&mut s, format!("  - {p}"));
            }
        }
        if !self.notes.is_empty() {
            s.push('\n');
            push(&mut s, "Notes:".into());
            for n in &self.notes {
                push(&mut s, format!("  - {n}"));
            }
        }
        s
    }
}

/// `1234567` -> `1,234,567`, as Keras prints parameter counts.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Keras's `readable_memory_size`: bytes with B / KB / MB / GB, two decimals, base 1024.
pub fn human_bytes(b: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2} {}", units[i])
}

fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |l: char, m: char, r: char, f: char| -> String {
        let mut s = String::new();
        s.push(l);
        for (i, wi) in w.iter().enumerate() {
            s.extend(std::iter::repeat_n(f, wi + 2));
            s.push(if i + 1 == n { r } else { m });
        }
        s.push('\n');
        s
    };
    let cells = |cells: &[String], sep: char| -> String {
        let mut s = String::new();
        s.push(sep);
        for (i, wi) in w.iter().enumerate() {
            let c = cells.get(i).map(String::as_str).unwrap_or("");
            let pad = wi - c.chars().count().min(*wi);
            // numbers right-aligned like Keras's Param # column
            if i == 2 {
                s.push_str(&format!(" {}{} ", " ".repeat(pad), c));
            } else {
                s.push_str(&format!(" {}{} ", c, " ".repeat(pad)));
            }
            s.push(sep);
        }
        s.push('\n');
        s
    };
    let mut s = line('┏', '┳', '┓', '━');
    s.push_str(&cells(header, '┃'));
    s.push_str(&line('┡', '╇', '┩', '━'));
    for r in rows {
        s.push_str(&cells(r, '│'));
    }
    s.push_str(&line('└', '┴', '┘', '─'));
    s
}

#[cfg(test)]
mod fuzz_regressions {
    use super::Report;
    use crate::limits::Limits;
    use crate::model::ModelFile;
    use std::path::Path;

    /// legacy_h5 crash-0ed26e9d: dataset shapes whose byte sizes add past `u64::MAX` overflowed
    /// the report's byte totals (a panic with overflow checks on); they saturate now.
    #[test]
    fn byte_totals_saturate() {
        let path =
            format!("{}/../../fixtures/hostile/fuzz/legacy_h5_tensor_bytes_overflow.h5", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).expect("the fixture is committed");
        let limits = Limits::default();
        let file = strata_hdf5::H5File::from_bytes(bytes, &limits.hdf5).expect("the file opens");
        let mf = ModelFile::from_hdf5(Path::new(&path), file, &limits).expect("the model reads");
        let report = Report::new(&mf);
        assert_eq!((report.total_bytes, report.total_params), (u64::MAX, u64::MAX));
    }
}
