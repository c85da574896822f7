//! The `strata` command line: `strata demo`, `inspect`, `doctor`, `scan`, `predict`, `convert`, `train`.
//!
//! Exit codes: 0 success, 1 findings (doctor and scan, later), 2 could not run. Every verb
//! prints JSON with `--json` (`--format json`). A closed pipe exits 0.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod convert;
mod demo;
mod doctor;
mod inspect;
mod predict;
mod train;

#[derive(Parser)]
#[command(name = "strata", version, about = "Keras models without Python: define, train, save, load, inspect, doctor, scan, predict, convert", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
enum Format {
    #[default]
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the three reference cases of Keras custom objects end to end (define, fit, save, load
    /// in fresh processes, the unregistered failures), then the same files through Python Keras
    Demo {
        /// Keep the files here (default: a new directory under the system temp dir)
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Skip the Python Keras part even when the oracle is installed
        #[arg(long)]
        no_python: bool,
    },
    /// Load a model file in this process and compare its predictions (used by `strata demo`)
    #[command(hide = true)]
    DemoLoad {
        file: PathBuf,
        #[arg(long)]
        case: String,
        #[arg(long, value_enum)]
        register: demo::Register,
        #[arg(long)]
        x: PathBuf,
        #[arg(long)]
        expect: PathBuf,
        #[arg(long)]
        resume: bool,
    },
    /// Continue training a Keras model on arrays from .npy files, then save it
    Train {
        /// The model: .keras or full-model .h5 (compiled: its optimizer state is resumed)
        model: PathBuf,
        /// Inputs (.npy, or a .npz with one array)
        #[arg(long)]
        x: PathBuf,
        /// Targets (.npy, or a .npz with one array)
        #[arg(long)]
        y: PathBuf,
        /// Epochs to run
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        /// Samples per step
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Optimizer name (adam, sgd, rmsprop, adamw, ...); default: the file's, else adam
        #[arg(long)]
        optimizer: Option<String>,
        /// Learning rate
        #[arg(long)]
        learning_rate: Option<f64>,
        /// Loss name (mse, binary_crossentropy, sparse_categorical_crossentropy, ...); default: the file's
        #[arg(long)]
        loss: Option<String>,
        /// Metrics, comma separated (accuracy,mae)
        #[arg(long, value_delimiter = ',')]
        metrics: Vec<String>,
        /// Fraction of the samples (the last ones) held out for validation
        #[arg(long, default_value_t = 0.0)]
        validation_split: f64,
        /// Keep the sample order (default: reshuffle each epoch)
        #[arg(long)]
        no_shuffle: bool,
        /// Where to save the trained model [default: <model stem>.trained.<ext> beside it]
        #[arg(long)]
        output: Option<PathBuf>,
        /// Write the training curves to this PNG
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Log each epoch to this CSV (Keras's CSVLogger)
        #[arg(long)]
        csv: Option<PathBuf>,
        /// 0 silent, 1 progress bar, 2 one line per epoch [default: 1, as Keras's "auto"]
        #[arg(long)]
        verbose: Option<u8>,
    },
    /// Show what a model file holds: format, Keras version, layers, parameters, weights, compile config
    Inspect {
        /// A .keras, .h5, .weights.h5 or model JSON file (the kind is read from the bytes)
        file: PathBuf,
        /// Print one JSON object instead of the table
        #[arg(long)]
        json: bool,
        /// Output format
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Convert between .keras, .h5 and .weights.h5 (config and weights; nothing is executed)
    Convert {
        /// The model file to read
        input: PathBuf,
        /// The file to write; its format comes from --to, else its extension (.keras, .weights.h5, .h5)
        output: PathBuf,
        /// Output format, overriding the extension
        #[arg(long, value_enum)]
        to: Option<convert::Target>,
        /// Take weights from this weights-only file (legacy .h5 or .weights.h5) instead of INPUT
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Print a JSON summary of what was written
        #[arg(long)]
        json: bool,
    },
    /// Run a model on arrays from a .npz or .npy file and write its outputs to a .npz
    Predict {
        /// The model: .keras, full-model .h5, or an architecture-only file (model.to_json() JSON) with --weights
        model: PathBuf,
        /// Take weights from this file (a .weights.h5 or legacy weights .h5) instead of MODEL
        #[arg(long)]
        weights: Option<PathBuf>,
        /// The input arrays: a .npz with one array per model input (named after the inputs, or in
        /// input order), or a .npy for a single-input model; any numeric dtype, cast to float32
        #[arg(long)]
        inputs: PathBuf,
        /// Where to write the outputs (arr_0, arr_1, ... in the model's output order)
        /// [default: <inputs stem>.pred.npz beside the inputs]
        #[arg(long)]
        output: Option<PathBuf>,
        /// Samples per chunk; chunks run in parallel (0: the whole batch at once)
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Print a JSON summary instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Explain every reason a model file will not load (Lambda bytecode, custom objects, version skew, weights, damage)
    Doctor {
        /// The model file (nothing in it is executed)
        file: PathBuf,
        /// The CPython that will load it (e.g. 3.11); default: a table for 3.8 to 3.14
        #[arg(long)]
        python: Option<String>,
        /// The Keras that will load it (default 3.15.1)
        #[arg(long)]
        keras: Option<String>,
        /// Print one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Scan files and directories for code-execution and data-exfiltration routes (exit 1 on findings)
    Scan {
        /// Files or directories (searched recursively)
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print JSON (findings, scanned, skipped, errors)
        #[arg(long, conflicts_with = "sarif")]
        json: bool,
        /// Print SARIF 2.1.0 for CI code scanning
        #[arg(long)]
        sarif: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::Demo { dir, no_python } => demo::run(dir.as_deref(), no_python, &mut out),
        Command::DemoLoad { file, case, register, x, expect, resume } => {
            demo::run_load(&file, &case, register, &x, &expect, resume, &mut out)
        }
        Command::Train {
            model,
            x,
            y,
            epochs,
            batch_size,
            optimizer,
            learning_rate,
            loss,
            metrics,
            validation_split,
            no_shuffle,
            output,
            plot,
            csv,
            verbose,
        } => train::run(
            &train::Args {
                model: &model,
                x: &x,
                y: &y,
                epochs,
                batch_size,
                optimizer: optimizer.as_deref(),
                learning_rate,
                loss: loss.as_deref(),
                metrics: &metrics,
                validation_split,
                shuffle: !no_shuffle,
                output: output.as_deref(),
                plot: plot.as_deref(),
                csv: csv.as_deref(),
                verbose,
            },
            &mut out,
        ),
        Command::Inspect { file, json, format } => inspect::run(&file, json || format == Format::Json, &mut out),
        Command::Convert { input, output, to, weights, json } => {
            convert::run(&input, &output, to, weights.as_deref(), json, &mut out)
        }
        Command::Predict { model, weights, inputs, output, batch_size, json } => {
            let args = predict::Args {
                model: &model,
                weights: weights.as_deref(),
                inputs: &inputs,
                output: output.as_deref(),
                batch_size,
                json,
            };
            predict::run(&args, &mut out)
        }
        Command::Doctor { file, python, keras, json } => {
            doctor::run_doctor(&file, python.as_deref(), keras.as_deref(), json, &mut out)
        }
        Command::Scan { paths, json, sarif } => doctor::run_scan(&paths, json, sarif, &mut out),
    };
    match result.and_then(|code| out.flush().map(|_| code).map_err(anyhow::Error::from)) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                let text = s.to_string();
                if !e.to_string().contains(&text) {
                    let _ = writeln!(err, "  caused by: {text}");
                }
                source = s.source();
            }
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
