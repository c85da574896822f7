//! `strata train MODEL --x X.npy --y Y.npy --epochs N [...]`: continue training any Keras model
//! from the command line, then save it (atomically) beside the original unless told where.
//!
//! The compile setup comes from the file (`compile_config` / `training_config`, with the
//! optimizer state, so training resumes where it stopped), or from `--optimizer`/`--loss`/
//! `--metrics`. Models with custom objects need them registered, which only a Rust program can do
//! (`strata_model::Model::load(path, &registry)`); the error names each one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use strata::format::limits::Limits;
use strata::format::npy::read_arrays;
use strata_model::{FitOptions, Model};
use strata_registry::Registry;
use strata_tensor::Tensor;
use strata_train::optimizers::Optimizer;

/// What `strata train` was asked to do.
pub struct Args<'a> {
    pub model: &'a Path,
    pub x: &'a Path,
    pub y: &'a Path,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: Option<&'a str>,
    pub learning_rate: Option<f64>,
    pub loss: Option<&'a str>,
    pub metrics: &'a [String],
    pub validation_split: f64,
    pub shuffle: bool,
    pub output: Option<&'a Path>,
    pub plot: Option<&'a Path>,
    pub csv: Option<&'a Path>,
    pub verbose: Option<u8>,
}

fn read_one(path: &Path, what: &str) -> anyhow::Result<Tensor> {
    let (_, arrays) =
        read_arrays(path, &Limits::default()).with_context(|| format!("reading {what} from {}", path.display()))?;
    let [a] = arrays.as_slice() else {
        bail!("{} holds {} arrays; give {what} as a .npy (or a .npz with one array)", path.display(), arrays.len());
    };
    Ok(Tensor::from_vec(&a.shape, a.to_f32())?)
}

/// `m.keras` -> `m.trained.keras`.
fn default_output(model: &Path) -> PathBuf {
    let name = model.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model.keras".into());
    let (stem, ext) = match name.rfind('.') {
        Some(i) => (name[..i].to_string(), name[i..].to_string()),
        None => (name.clone(), ".keras".to_string()),
    };
    let ext = if ext == ".json" { ".keras".to_string() } else { ext };
    model.with_file_name(format!("{stem}.trained{ext}"))
}

pub fn run(a: &Args<'_>, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let mut model = Model::load(a.model, &Registry::new()).map_err(|e| {
        anyhow::anyhow!(
            "{e}\n  (the command line registers no custom objects: write a small Rust program that registers them and calls Model::load(path, &registry) and fit; see examples/reference_b.rs)"
        )
    })?;
    let x = read_one(a.x, "the inputs")?;
    let y = read_one(a.y, "the targets")?;
    let from_file = a.optimizer.is_none() && a.loss.is_none() && a.metrics.is_empty() && model.compile_from_file()?;
    if from_file {
        writeln!(
            out,
            "compiled as saved: resuming at optimizer iteration {}",
            model.optimizer().map(|o| o.iterations()).unwrap_or(0)
        )?;
    } else {
        let Some(loss) = a.loss.map(str::to_string).or_else(|| model.compiled_loss_name()) else {
            bail!(
                "`{}` is not compiled: pass --loss (e.g. mse, sparse_categorical_crossentropy) and optionally --optimizer",
                a.model.display()
            );
        };
        let mut opt = Optimizer::get(a.optimizer.unwrap_or("adam"))?;
        if let Some(lr) = a.learning_rate {
            opt.set_learning_rate(lr as f32);
        }
        let metrics: Vec<&str> = a.metrics.iter().map(String::as_str).collect();
        model.compile(opt, loss.as_str(), &metrics)?;
    }
    if from_file && let Some(lr) = a.learning_rate {
        model.set_learning_rate(lr)?;
    }
    let mut opts = FitOptions::new(a.epochs, a.batch_size).shuffle(a.shuffle).validation_split(a.validation_split);
    if let Some(v) = a.verbose {
        opts = opts.verbose(match v {
            0 => strata_model::progress::Verbosity::Zero,
            1 => strata_model::progress::Verbosity::One,
            _ => strata_model::progress::Verbosity::Two,
        });
    }
    let mut callbacks: Vec<Box<dyn strata_train::callbacks::Callback>> = Vec::new();
    if let Some(csv) = a.csv {
        callbacks.push(Box::new(strata_train::callbacks::CSVLogger::new(csv)));
    }
    let history = model.fit_with(&[x], &y, opts, &mut callbacks)?;
    let output = a.output.map(Path::to_path_buf).unwrap_or_else(|| default_output(a.model));
    model.save(&output)?;
    writeln!(out, "saved {}", output.display())?;
    if let Some(png) = a.plot {
        history.plot_png(png, &format!("{} training", model.name()))?;
        writeln!(out, "training curves in {}", png.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
