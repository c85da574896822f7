//! `strata predict MODEL [--weights W] --inputs X.npz|X.npy [--output Y.npz] [--batch-size N] [--json]`.
//!
//! Inputs are matched to the model's inputs by name when any array is named after a model input
//! (then every input needs its array; other arrays are listed as unused), otherwise in file order
//! (then the counts must agree). Every array is cast to float32. Outputs are written to `--output`,
//! by default `<inputs stem>.pred.npz` beside the inputs, as `arr_0..` in the model's output order.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use strata::format::bind;
use strata::format::config::{ModelConfig, ModelKind};
use strata::format::json::Json;
use strata::format::limits::Limits;
use strata::format::model::{FileFormat, ModelFile};
use strata::format::npy::{self, NpyArray, format_shape};
use strata_layers::model::InputSpec;
use strata_layers::{BuildCtx, Model};
use strata_tensor::Tensor;

/// What `strata predict` was asked to do.
pub struct Args<'a> {
    pub model: &'a Path,
    pub weights: Option<&'a Path>,
    pub inputs: &'a Path,
    pub output: Option<&'a Path>,
    pub batch_size: usize,
    pub json: bool,
}

/// `x.npz` -> `x.pred.npz`, `dir/x.npy` -> `dir/x.pred.npz`.
fn default_output(inputs: &Path) -> PathBuf {
    let stem = inputs.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "inputs".into());
    inputs.with_file_name(format!("{stem}.pred.npz"))
}

fn array_text(a: &NpyArray) -> String {
    format!("`{}` {} {}", a.name, format_shape(&a.shape), a.dtype)
}

fn spec_text(s: &InputSpec) -> String {
    format!("`{}` {} {}", s.name, s.shape_text(), s.dtype)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The names Keras gives the model's outputs (the output layers), in output order.
fn output_layers(config: &ModelConfig) -> Vec<String> {
    if config.kind == ModelKind::Sequential {
        return config.layers.last().map(|l| vec![l.name.clone()]).unwrap_or_default();
    }
    config.outputs.iter().map(|r| r.layer.clone()).collect()
}

/// Picks one array per model input: by name when any array is named after an input, else in
/// file order. Returns the chosen arrays (in input order) and the names of unused arrays.
fn match_inputs(
    specs: &[InputSpec],
    mut arrays: Vec<NpyArray>,
    inputs_path: &Path,
    model_name: &str,
) -> anyhow::Result<(Vec<NpyArray>, Vec<String>)> {
    let by_name = arrays.iter().any(|a| specs.iter().any(|s| s.name == a.name));
    if by_name {
        let missing: Vec<&InputSpec> = specs.iter().filter(|s| !arrays.iter().any(|a| a.name == s.name)).collect();
        if !missing.is_empty() {
            bail!(
                "`{}` names arrays after model inputs but has none for {}; name every array after its input ({}), or name none and give them in input order",
                inputs_path.display(),
                missing.iter().map(|s| spec_text(s)).collect::<Vec<_>>().join(", "),
                specs.iter().map(|s| format!("`{}`", s.name)).collect::<Vec<_>>().join(", ")
            );
        }
        let mut chosen = Vec::with_capacity(specs.len());
        for s in specs {
            if let Some(i) = arrays.iter().position(|a| a.name == s.name) {
                chosen.push(arrays.swap_remove(i));
            }
        }
        let unused = arrays.into_iter().map(|a| a.name).collect();
        return Ok((chosen, unused));
    }
    if arrays.len() != specs.len() {
        bail!(
            "model `{model_name}` takes {}: {}; but `{}` holds {}{}{}; give one array per input, in input order or named after the inputs",
            plural(specs.len(), "input", "inputs"),
            specs.iter().map(spec_text).collect::<Vec<_>>().join(", "),
            inputs_path.display(),
            plural(arrays.len(), "array", "arrays"),
            if arrays.is_empty() { "" } else { ": " },
            arrays.iter().map(array_text).collect::<Vec<_>>().join(", ")
        );
    }
    Ok((arrays, Vec::new()))
}

pub fn run(args: &Args<'_>, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let src = ModelFile::open(args.model)?;
    let Some(config) = src.config.as_ref() else {
        bail!(
            "`{}` is a {} and holds no architecture; pass the model (a .keras, .h5 or model.to_json() file) as MODEL and this file with --weights",
            args.model.display(),
            src.format.describe()
        );
    };
    let wfile = match args.weights {
        Some(w) => Some(ModelFile::open(w)?),
        None => None,
    };
    let wsrc = wfile.as_ref().unwrap_or(&src);
    let Some(store) = wsrc.weights.as_ref() else {
        if wfile.is_some() {
            bail!(
                "`{}` holds no weights ({}); --weights takes a .weights.h5, a legacy weights .h5 or a full model file",
                wsrc.path.display(),
                wsrc.format.describe()
            );
        }
        let what =
            if src.format == FileFormat::ModelJson { "only an architecture" } else { "an architecture but no weights" };
        bail!(
            "`{}` holds {what}; pass --weights W with its weights (a .weights.h5 or legacy .h5 file)",
            args.model.display()
        );
    };
    let binding = bind::bind(config, store);
    if !binding.problems.is_empty() {
        bail!(
            "the weights in `{}` do not fit the architecture of `{}` ({}): {}; check that the weights belong to this model (`strata inspect` lists both)",
            wsrc.path.display(),
            src.path.display(),
            plural(binding.problems.len(), "problem", "problems"),
            binding.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        );
    }
    // the weights file knows the backend that wrote the kernels (Theano kernels are flipped)
    let ctx = BuildCtx {
        dialect: config.source,
        backend: wsrc.backend.as_deref().or(src.backend.as_deref()),
        keras_version: src.keras_version.as_deref().or(wsrc.keras_version.as_deref()),
    };
    let model = Model::build_with(config, &binding, store, &ctx)
        .with_context(|| format!("cannot build the model of `{}`", args.model.display()))?;
    let specs = Model::input_specs(config);
    let model_name = if config.name.is_empty() { "model" } else { config.name.as_str() };

    let (_, arrays) = npy::read_arrays(args.inputs, &Limits::default())?;
    let (arrays, unused) = match_inputs(&specs, arrays, args.inputs, model_name)?;
    for (s, a) in specs.iter().zip(&arrays) {
        if !s.accepts(&a.shape) {
            bail!(
                "input `{}` of model `{model_name}` expects shape {} but array `{}` in `{}` has shape {}; None marks a free dimension (the first is the batch)",
                s.name,
                s.shape_text(),
                a.name,
                args.inputs.display(),
                format_shape(&a.shape)
            );
        }
    }
    if let (Some(first), Some(bad)) =
        (arrays.first(), arrays.iter().find(|a| a.shape.first() != arrays.first().and_then(|f| f.shape.first())))
    {
        bail!(
            "array {} and array {} in `{}` have different batch sizes (first dimensions); every input needs one row per sample",
            array_text(first),
            array_text(bad),
            args.inputs.display()
        );
    }
    let tensors = arrays
        .iter()
        .map(|a| Tensor::from_vec(&a.shape, a.to_f32()).with_context(|| format!("array `{}`", a.name)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let samples = arrays.first().and_then(|a| a.shape.first().copied()).unwrap_or(0);

    let outputs = model
        .predict_batched(&tensors, args.batch_size)
        .with_context(|| format!("running `{}` on `{}` failed", args.model.display(), args.inputs.display()))?;
    let written: Vec<NpyArray> = outputs
        .iter()
        .enumerate()
        .map(|(k, t)| NpyArray::from_f32(format!("arr_{k}"), t.shape(), t.as_slice()))
        .collect::<Result<_, _>>()?;
    let output = args.output.map(Path::to_path_buf).unwrap_or_else(|| default_output(args.inputs));
    npy::write_npz(&output, &written)?;

    let layers = output_layers(config);
    let casts: Vec<&NpyArray> = arrays.iter().filter(|a| a.dtype != npy::NpyDType::F32).collect();
    if args.json {
        let shape = |s: &[usize]| Json::array(s.iter().map(|&d| Json::from(d as u64)));
        let j = Json::object([
            ("model", Json::from(args.model.display().to_string())),
            ("weights", args.weights.map(|w| Json::from(w.display().to_string())).unwrap_or(Json::Null)),
            ("inputs_file", Json::from(args.inputs.display().to_string())),
            ("output", Json::from(output.display().to_string())),
            ("samples", Json::from(samples as u64)),
            ("batch_size", Json::from(args.batch_size as u64)),
            (
                "inputs",
                Json::array(specs.iter().zip(&arrays).map(|(s, a)| {
                    Json::object([
                        ("name", Json::from(s.name.as_str())),
                        ("expected_shape", Json::from(s.shape_text())),
                        ("array", Json::from(a.name.as_str())),
                        ("shape", shape(&a.shape)),
                        ("dtype", Json::from(a.dtype.name())),
                    ])
                })),
            ),
            (
                "outputs",
                Json::array(written.iter().enumerate().map(|(k, a)| {
                    Json::object([
                        ("name", Json::from(a.name.as_str())),
                        ("layer", layers.get(k).map(|l| Json::from(l.as_str())).unwrap_or(Json::Null)),
                        ("shape", shape(&a.shape)),
                    ])
                })),
            ),
            ("unused_arrays", Json::array(unused.iter().map(|n| Json::from(n.as_str())))),
        ]);
        writeln!(out, "{}", j.to_string_pretty())?;
    } else {
        for (s, a) in specs.iter().zip(&arrays) {
            writeln!(
                out,
                "input  {:<16} {:<14} <- {} {} {}",
                s.name,
                s.shape_text(),
                a.name,
                format_shape(&a.shape),
                a.dtype
            )?;
        }
        for (k, a) in written.iter().enumerate() {
            let layer = layers.get(k).map(String::as_str).unwrap_or("?");
            writeln!(out, "output {:<16} {:<14} (layer `{layer}`)", a.name, format_shape(&a.shape))?;
        }
        writeln!(
            out,
            "wrote {}: {} for {}",
            output.display(),
            plural(written.len(), "array", "arrays"),
            plural(samples, "sample", "samples")
        )?;
        for a in casts {
            writeln!(out, "note: array `{}` is {}; cast to float32", a.name, a.dtype)?;
        }
        if !unused.is_empty() {
            writeln!(
                out,
                "note: unused arrays (not named after a model input): {}",
                unused.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_output_sits_beside_the_inputs() {
        assert_eq!(default_output(Path::new("data/x.npz")), PathBuf::from("data/x.pred.npz"));
        assert_eq!(default_output(Path::new("x.npy")), PathBuf::from("x.pred.npz"));
    }
}
