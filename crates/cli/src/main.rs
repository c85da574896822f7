//! The `strata` command line: `strata inspect`, `strata convert`, `strata predict`.
//!
//! Exit codes: 0 success, 1 findings (doctor and scan, later), 2 could not run. Every verb
//! prints JSON with `--json` (`--format json`). A closed pipe exits 0.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod convert;
mod inspect;
mod predict;

#[derive(Parser)]
#[command(name = "strata", version, about = "Keras model files without Python: inspect, convert, predict", long_about = None)]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
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
