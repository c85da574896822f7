//! `model.summary()`: Keras 3's table of layers, output shapes and parameter counts.
//!
//! Output shapes come from the config itself, as Keras records them: a Sequential layer's output
//! is the next layer's `build_config.input_shape`; a functional layer's is the `shape` of the
//! `__keras_tensor__` its consumers read. The model's own outputs are found by running it on a
//! batch of one (zeros), so nothing is guessed.

use std::collections::HashMap;

use strata_format::config::ModelKind;
use strata_format::json::Json;
use strata_tensor::Tensor;

use crate::model::Model;

fn shape_text(shape: &Json) -> String {
    match shape.as_array() {
        Some(dims) => {
            let parts: Vec<String> =
                dims.iter().map(|d| if d.is_null() { "None".to_string() } else { d.to_string_python() }).collect();
            if parts.len() == 1 { format!("({},)", parts[0]) } else { format!("({})", parts.join(", ")) }
        }
        None => "?".to_string(),
    }
}

fn memory(bytes: f64) -> String {
    strata_format::inspect::human_bytes(bytes as u64)
}

fn count(n: usize) -> String {
    strata_format::inspect::group_digits(n as u64)
}

/// Collects `layer name -> output shape` from every `__keras_tensor__` in `v`.
fn collect_tensors(v: &Json, out: &mut HashMap<String, Json>) {
    match v {
        Json::Object(o) => {
            if o.get("class_name").and_then(Json::as_str) == Some("__keras_tensor__")
                && let Some(cfg) = o.get("config")
                && let Some(name) = cfg.get("keras_history").and_then(|h| h.at(0)).and_then(Json::as_str)
                && let Some(shape) = cfg.get("shape")
            {
                out.entry(name.to_string()).or_insert_with(|| shape.clone());
            }
            for (_, x) in o.iter() {
                collect_tensors(x, out);
            }
        }
        Json::Array(a) => a.iter().for_each(|x| collect_tensors(x, out)),
        _ => {}
    }
}

impl Model {
    /// The model's summary table, like Keras's `model.summary()`: each layer with its type,
    /// output shape and parameter count, then the totals (and the optimizer's, once built).
    pub fn summary(&self) -> String {
        let layers_json =
            self.config_json.get("config").and_then(|c| c.get("layers")).and_then(Json::as_array).unwrap_or(&[]);
        let sequential = self.config.kind == ModelKind::Sequential;
        let mut shapes: HashMap<String, Json> = HashMap::new();
        if sequential {
            // a layer's output is what the next one was built on
            let names: Vec<&str> = layers_json
                .iter()
                .filter_map(|l| l.get("config").and_then(|c| c.get("name")).and_then(Json::as_str))
                .collect();
            for (i, l) in layers_json.iter().enumerate().skip(1) {
                if let (Some(prev), Some(s)) =
                    (names.get(i - 1), l.get("build_config").and_then(|b| b.get("input_shape")))
                {
                    shapes.insert(prev.to_string(), s.clone());
                }
            }
        } else {
            layers_json
                .iter()
                .for_each(|l| collect_tensors(l.get("inbound_nodes").unwrap_or(&Json::Null), &mut shapes));
        }
        // the model outputs: run it on zeros shaped like its inputs
        let input_layers: Vec<&Json> = if sequential {
            layers_json.iter().filter(|l| l.get("class_name").and_then(Json::as_str) == Some("InputLayer")).collect()
        } else {
            // in the model's input order
            self.config
                .inputs
                .iter()
                .filter_map(|r| {
                    layers_json.iter().find(|l| {
                        l.get("config").and_then(|c| c.get("name")).and_then(Json::as_str) == Some(r.layer.as_str())
                    })
                })
                .collect()
        };
        let probes: Option<Vec<Tensor>> = input_layers
            .into_iter()
            .map(|l| {
                let dims = l.get("config")?.get("batch_shape")?.as_array()?;
                let mut s = vec![1usize];
                for d in dims.iter().skip(1) {
                    s.push(d.as_usize()?);
                }
                Tensor::zeros(&s).ok()
            })
            .collect();
        let out_names: Vec<String> = if sequential {
            self.config.layers.last().map(|l| vec![l.name.clone()]).unwrap_or_default()
        } else {
            self.config.outputs.iter().map(|r| r.layer.clone()).collect()
        };
        if let Some(p) = probes.filter(|p| !p.is_empty())
            && let Ok(outs) = self.engine.predict(&p)
        {
            for (name, t) in out_names.iter().zip(outs) {
                let dims = std::iter::once(Json::Null).chain(t.shape().iter().skip(1).map(|&d| Json::from(d as i64)));
                shapes.entry(name.clone()).or_insert_with(|| Json::array(dims));
            }
        }
        let params_of = |name: &str| -> (usize, usize) {
            let prefix = format!("{name}/");
            self.layers
                .iter()
                .filter(|l| l.path == name || l.path.starts_with(&prefix))
                .flat_map(|l| l.values.iter().zip(&l.trainable))
                .fold((0, 0), |(t, nt), (v, &tr)| if tr { (t + v.len(), nt) } else { (t, nt + v.len()) })
        };
        let mut rows = Vec::new();
        for l in &self.config.layers {
            if sequential && l.class_name == "InputLayer" {
                continue;
            }
            let shape = if l.class_name == "InputLayer" {
                l.config.get("batch_shape").map(shape_text).unwrap_or_else(|| "?".into())
            } else {
                shapes.get(&l.name).map(shape_text).unwrap_or_else(|| "?".into())
            };
            let (t, nt) = params_of(&l.name);
            // functional models also say which tensors each layer reads (Keras's "Connected to")
            let connected = l
                .inbound_nodes
                .iter()
                .flat_map(|n| n.inputs.iter())
                .map(|r| format!("{}[{}][{}]", r.layer, r.node_index, r.tensor_index))
                .collect::<Vec<_>>();
            let connected = if connected.is_empty() { "-".to_string() } else { connected.join(", ") };
            rows.push(vec![format!("{} ({})", l.name, l.class_name), shape, count(t + nt), connected]);
        }
        // Keras's column widths (content), widened when a cell needs more; no wrapping
        let (heads, mins): (Vec<&str>, Vec<usize>) = if sequential {
            (vec!["Layer (type)", "Output Shape", "Param #"], vec![31, 22, 13])
        } else {
            (vec!["Layer (type)", "Output Shape", "Param #", "Connected to"], vec![19, 17, 10, 17])
        };
        let widths: Vec<usize> = (0..heads.len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0).max(heads[c].len()).max(mins[c]))
            .collect();
        let line = |l: char, m: char, r: char, fill: char| {
            let cells: Vec<String> = widths.iter().map(|w| fill.to_string().repeat(w + 2)).collect();
            format!("{l}{}{r}\n", cells.join(&m.to_string()))
        };
        let cell = |c: usize, text: &str| {
            let w = widths[c];
            if c == 2 { format!(" {text:>w$} ") } else { format!(" {text:<w$} ") }
        };
        let mut s = format!("Model: \"{}\"\n", self.name());
        s += &line('┏', '┳', '┓', '━');
        s += &format!("┃{}┃\n", heads.iter().enumerate().map(|(c, h)| cell(c, h)).collect::<Vec<_>>().join("┃"));
        s += &line('┡', '╇', '┩', '━');
        for (i, r) in rows.iter().enumerate() {
            s += &format!("│{}│\n", (0..heads.len()).map(|c| cell(c, &r[c])).collect::<Vec<_>>().join("│"));
            s += &if i + 1 == rows.len() { line('└', '┴', '┘', '─') } else { line('├', '┼', '┤', '─') };
        }
        let (t, nt) = self
            .layers
            .iter()
            .flat_map(|l| l.values.iter().zip(&l.trainable))
            .fold((0usize, 0usize), |(t, nt), (v, &tr)| if tr { (t + v.len(), nt) } else { (t, nt + v.len()) });
        // the optimizer's iteration counter is an int64 in Keras (8 bytes), the rest float32
        let (opt, opt_bytes) = self
            .optimizer_variables()
            .map(|v| {
                v.iter().fold((0usize, 0f64), |(n, b), (name, t)| {
                    let size = if name.ends_with("iteration") || name.ends_with("iterations") { 8.0 } else { 4.0 };
                    (n + t.len(), b + size * t.len() as f64)
                })
            })
            .unwrap_or((0, 0.0));
        s += &format!(" Total params: {} ({})\n", count(t + nt + opt), memory(4.0 * (t + nt) as f64 + opt_bytes));
        s += &format!(" Trainable params: {} ({})\n", count(t), memory(4.0 * t as f64));
        s += &format!(" Non-trainable params: {} ({})\n", count(nt), memory(4.0 * nt as f64));
        if opt > 0 {
            s += &format!(" Optimizer params: {} ({})\n", count(opt), memory(opt_bytes));
        }
        s
    }
}
