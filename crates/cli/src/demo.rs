//! `strata demo`: the three reference cases end to end (keras-facts.md, appendix 1), each load in
//! a fresh process, then the same files through Python Keras when the oracle is installed.
//!
//! The fresh-process loads run this binary again as `strata demo-load ...` (hidden), which prints
//! one JSON line; the parent prints what happened and why.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use strata::format::json::Json;
use strata::format::limits::Limits;
use strata::format::npy::{NpyArray, npy_bytes, read_npy};
use strata_model::reference::{Case, CustomDense, UnregisteredCustomDense, custom_loss, seed_data};
use strata_model::{FitOptions, Model};
use strata_registry::Registry;
use strata_tensor::Tensor;
use strata_train::optimizers::Adam;

/// What the fresh process registers before loading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Register {
    /// Nothing: the common case of a file opened where its code is absent.
    None,
    /// The custom layer only.
    Layer,
    /// The custom layer and the custom loss.
    All,
}

fn letter(case: Case) -> &'static str {
    match case {
        Case::A => "a",
        Case::B => "b",
        Case::C => "c",
    }
}

fn case_of(s: &str) -> anyhow::Result<Case> {
    Ok(match s {
        "a" => Case::A,
        "b" => Case::B,
        "c" => Case::C,
        other => bail!("unknown case `{other}` (a, b or c)"),
    })
}

fn registry_for(case: Case, reg: Register) -> Registry {
    match (case, reg) {
        (_, Register::None) => Registry::new(),
        (Case::A, _) => Registry::new().layer::<UnregisteredCustomDense>(),
        (_, Register::Layer) => Registry::new().layer::<CustomDense>(),
        (_, Register::All) => {
            Registry::new().layer::<CustomDense>().loss("my_custom_losses", "custom_loss", custom_loss)
        }
    }
}

fn write_npy(path: &Path, t: &Tensor) -> anyhow::Result<()> {
    let a = NpyArray::from_f32("a", t.shape(), t.as_slice())?;
    std::fs::write(path, npy_bytes(&a)).with_context(|| format!("writing {}", path.display()))
}

fn read_tensor(path: &Path) -> anyhow::Result<Tensor> {
    let a = read_npy(path, &Limits::default())?;
    Ok(Tensor::from_vec(&a.shape, a.to_f32())?)
}

/// `0 (identical)` or `3.0e-8`.
fn diff_text(d: f64) -> String {
    if d == 0.0 { "0 (identical)".into() } else { format!("{d:.1e}") }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    a.as_slice().iter().zip(b.as_slice()).map(|(x, y)| f64::from((x - y).abs())).fold(0.0, f64::max)
}

/// The hidden `demo-load`: load FILE in this (fresh) process and report as one JSON line.
pub fn run_load(
    file: &Path,
    case: &str,
    register: Register,
    x: &Path,
    expect: &Path,
    resume: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let case = case_of(case)?;
    let mut fields: Vec<(&str, Json)> = vec![("file", Json::from(file.display().to_string()))];
    match Model::load(file, &registry_for(case, register)) {
        Err(e) => {
            fields.push(("ok", Json::from(false)));
            fields.push(("error", Json::from(e.to_string())));
        }
        Ok(mut model) => {
            let x = read_tensor(x)?;
            let want = read_tensor(expect)?;
            let got = model.predict1(&x)?;
            let diff = max_abs_diff(&got, &want);
            fields.push(("ok", Json::from(got.shape() == want.shape() && diff <= 1e-6)));
            fields.push(("max_abs_diff", Json::from(diff)));
            if resume && model.compile_from_file()? {
                let before = model.optimizer().map(|o| o.iterations()).unwrap_or(0);
                let y = Tensor::zeros(&[x.shape()[0], 1])?;
                model.fit(&x, &y, FitOptions::new(1, 32).verbose(strata_model::progress::Verbosity::Zero))?;
                let after = model.optimizer().map(|o| o.iterations()).unwrap_or(0);
                fields.push(("iterations_before", Json::from(before as i64)));
                fields.push(("iterations_after", Json::from(after as i64)));
            }
        }
    }
    writeln!(out, "{}", Json::object(fields).to_string_python())?;
    Ok(ExitCode::SUCCESS)
}

struct Demo<'a> {
    dir: PathBuf,
    out: &'a mut dyn Write,
    exe: PathBuf,
    python: Option<PathBuf>,
    failures: Vec<String>,
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}")).collect::<Vec<_>>().join("\n")
}

impl Demo<'_> {
    fn load(&mut self, file: &Path, case: Case, register: Register, resume: bool) -> anyhow::Result<Json> {
        let l = letter(case);
        let mut cmd = Command::new(&self.exe);
        cmd.arg("demo-load")
            .arg(file)
            .args(["--case", l, "--register"])
            .arg(match register {
                Register::None => "none",
                Register::Layer => "layer",
                Register::All => "all",
            })
            .arg("--x")
            .arg(self.dir.join("x.npy"))
            .arg("--expect")
            .arg(self.dir.join(format!("pred_{l}.npy")));
        if resume {
            cmd.arg("--resume");
        }
        let o = cmd.output().context("running `strata demo-load` in a fresh process")?;
        let text = String::from_utf8_lossy(&o.stdout);
        let line = text.lines().last().unwrap_or_default();
        Json::parse(line.as_bytes(), &Default::default())
            .with_context(|| format!("demo-load said: {text} {}", String::from_utf8_lossy(&o.stderr)))
    }

    fn expect(&mut self, what: &str, ok: bool, detail: &str) -> anyhow::Result<()> {
        writeln!(
            self.out,
            "    {} {what}{}",
            if ok { "ok  " } else { "FAIL" },
            if detail.is_empty() { String::new() } else { format!(": {detail}") }
        )?;
        if !ok {
            self.failures.push(what.to_string());
        }
        Ok(())
    }

    fn case(&mut self, case: Case) -> anyhow::Result<()> {
        let l = letter(case);
        let title = match case {
            Case::A => "(a) CustomDense defined but never registered (Keras saves it as plain `CustomDense`)",
            Case::B => "(b) CustomDense registered as `my_custom_layers>CustomDense`",
            Case::C => "(c) (b) plus the loss `my_custom_losses>custom_loss` (mean squared error by hand)",
        };
        writeln!(self.out, "\n{title}")?;
        writeln!(
            self.out,
            "  Input(10) -> CustomDense(32) -> Dense(1); compile(adam, {}); fit 2 epochs on 100 random-normal samples",
            case.loss()
        )?;
        let mut model = case.model()?;
        model.compile(Adam::default(), case.loss(), &[])?;
        let (x, y) = seed_data(42)?;
        model.fit(&x, &y, FitOptions::new(2, 32).verbose(strata_model::progress::Verbosity::Two))?;
        write_npy(&self.dir.join("x.npy"), &x)?;
        write_npy(&self.dir.join(format!("pred_{l}.npy")), &model.predict1(&x)?)?;
        for ext in ["keras", "h5"] {
            let file = self.dir.join(format!("my_model_{l}.{ext}"));
            model.save(&file)?;
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            writeln!(self.out, "  saved {} ({size} bytes)", file.display())?;
            // 1. the common failure: a fresh process without the code
            let r = self.load(&file, case, Register::None, false)?;
            let err = r.get("error").and_then(Json::as_str).unwrap_or_default().to_string();
            writeln!(self.out, "  fresh process, nothing registered -> refused, as it must be:")?;
            writeln!(self.out, "{}", indent(&err, "      | "))?;
            self.expect(
                "the error names CustomDense, where it is used and the Rust line that registers it",
                err.contains("CustomDense") && err.contains("used by layer `custom_dense`") && err.contains("Rust:"),
                "",
            )?;
            // 2. (c) with the layer but not the loss
            if case == Case::C {
                let r = self.load(&file, case, Register::Layer, false)?;
                let err = r.get("error").and_then(Json::as_str).unwrap_or_default().to_string();
                writeln!(self.out, "  fresh process, layer registered but not the loss -> refused:")?;
                writeln!(self.out, "{}", indent(&err, "      | "))?;
                self.expect(
                    "the error names my_custom_losses>custom_loss and how to register it",
                    err.contains("my_custom_losses>custom_loss") && err.contains("registry.loss("),
                    "",
                )?;
            }
            // 3. registered: loads, same predictions, resumes training from the saved optimizer state
            let reg = if case == Case::C { Register::All } else { Register::Layer };
            let r = self.load(&file, case, reg, true)?;
            let diff = r.get("max_abs_diff").and_then(Json::as_f64).unwrap_or(f64::NAN);
            let detail = match (
                r.get("iterations_before").and_then(Json::as_i64),
                r.get("iterations_after").and_then(Json::as_i64),
            ) {
                (Some(b), Some(a)) => format!(
                    "max |diff| {}; optimizer resumed at iteration {b}, {a} after one more epoch",
                    diff_text(diff)
                ),
                _ => format!("max |diff| {}; {}", diff_text(diff), r.get("error").and_then(Json::as_str).unwrap_or("")),
            };
            let what = match case {
                Case::A => "fresh process with CustomDense passed in (custom_objects) -> loads, same predictions",
                _ => "fresh process with the registrations -> loads, same predictions",
            };
            self.expect(what, r.get("ok").and_then(Json::as_bool) == Some(true), &detail)?;
        }
        Ok(())
    }

    fn python(&mut self, py: &Path) -> anyhow::Result<()> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/oracle/reference.py");
        writeln!(self.out, "\nPython Keras ({}):", py.display())?;
        if !script.exists() {
            writeln!(self.out, "  skipped: {} not found (run from the strata source tree)", script.display())?;
            return Ok(());
        }
        let run = |args: &[&str]| -> anyhow::Result<Json> {
            let o = Command::new(py).arg(&script).args(args).env("TF_CPP_MIN_LOG_LEVEL", "3").output()?;
            let text = String::from_utf8_lossy(&o.stdout);
            Json::parse(text.lines().last().unwrap_or_default().as_bytes(), &Default::default())
                .with_context(|| format!("reference.py said: {text} {}", String::from_utf8_lossy(&o.stderr)))
        };
        let d = self.dir.clone();
        let x = d.join("x.npy");
        for case in [Case::A, Case::B, Case::C] {
            let l = letter(case);
            for ext in ["keras", "h5"] {
                let f = d.join(format!("my_model_{l}.{ext}"));
                let p = d.join(format!("pred_{l}.npy"));
                let mut args = vec![
                    "load",
                    f.to_str().unwrap_or_default(),
                    "--case",
                    l,
                    "--x",
                    x.to_str().unwrap_or_default(),
                    "--expect",
                    p.to_str().unwrap_or_default(),
                    "--define",
                ];
                // .keras: Keras must also resume from strata's optimizer state (2 epochs x 4 steps)
                if ext == "keras" {
                    args.extend(["--iterations", "8"]);
                }
                let r = run(&args)?;
                let diff = r.get("max_abs_diff").and_then(Json::as_f64).unwrap_or(f64::NAN);
                let note = match (
                    r.get("compile_error").and_then(Json::as_str),
                    r.get("iterations_after_fit").and_then(Json::as_i64),
                ) {
                    (Some(e), _) => format!(
                        " (compile=False: Keras 3 cannot compile a legacy .h5 with loss \"mse\", its own files neither: {e})"
                    ),
                    (None, Some(after)) => {
                        format!("; Keras resumed the optimizer at iteration 8, {after} after one more epoch")
                    }
                    (None, None) => String::new(),
                };
                self.expect(
                    &format!(
                        "Keras loads strata's my_model_{l}.{ext} with the Python CustomDense {}",
                        if case == Case::A { "in custom_objects" } else { "registered" }
                    ),
                    r.get("ok").and_then(Json::as_bool) == Some(true),
                    &format!("max |diff| {}{note}", diff_text(diff)),
                )?;
            }
            let r = run(&["train", d.to_str().unwrap_or_default(), "--case", l])?;
            if r.get("ok").and_then(Json::as_bool) != Some(true) {
                self.expect(&format!("Keras trains and saves case ({l})"), false, &r.to_string_python())?;
                continue;
            }
            let want = read_tensor(&d.join(format!("keras_{l}_pred.npy")))?;
            let kx = read_tensor(&d.join(format!("keras_{l}_x.npy")))?;
            for ext in ["keras", "h5"] {
                let f = d.join(format!("keras_{l}.{ext}"));
                let reg = registry_for(case, if case == Case::C { Register::All } else { Register::Layer });
                let (ok, detail) = match Model::load(&f, &reg) {
                    Ok(m) => {
                        let got = m.predict1(&kx)?;
                        let diff = max_abs_diff(&got, &want);
                        (diff <= 1e-5, format!("max |diff| {}", diff_text(diff)))
                    }
                    Err(e) => (false, e.to_string()),
                };
                self.expect(&format!("strata loads Keras's keras_{l}.{ext}"), ok, &detail)?;
            }
        }
        Ok(())
    }
}

fn oracle_python() -> Option<PathBuf> {
    let dir = std::env::var_os("STRATA_ORACLE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/strata/oracle")))?;
    let py = dir.join("venv/bin/python");
    py.exists().then_some(py)
}

/// `strata demo [--dir DIR] [--no-python]`.
pub fn run(dir: Option<&Path>, no_python: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let tmp;
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.to_path_buf()
        }
        None => {
            tmp = std::env::temp_dir().join(format!("strata-demo-{}", std::process::id()));
            std::fs::create_dir_all(&tmp)?;
            tmp
        }
    };
    writeln!(out, "strata demo: Keras custom objects, the three reference cases, in Rust")?;
    writeln!(out, "files in {}", dir.display())?;
    let mut demo = Demo {
        dir,
        out,
        exe: std::env::current_exe().context("locating the strata binary for the fresh-process loads")?,
        python: if no_python { None } else { oracle_python() },
        failures: Vec::new(),
    };
    for case in [Case::A, Case::B, Case::C] {
        demo.case(case)?;
    }
    match demo.python.clone() {
        Some(py) => demo.python(&py)?,
        None if no_python => writeln!(demo.out, "\nPython Keras: skipped (--no-python)")?,
        None => writeln!(
            demo.out,
            "\nPython Keras: skipped, the oracle is not installed (tools/oracle/setup.sh installs it)"
        )?,
    }
    if demo.failures.is_empty() {
        writeln!(demo.out, "\nall checks passed")?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(demo.out, "\n{} check(s) FAILED: {}", demo.failures.len(), demo.failures.join("; "))?;
        Ok(ExitCode::from(1))
    }
}
