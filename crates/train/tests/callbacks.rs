//! Replays `fixtures/train/callbacks.json` (written by `tools/oracle/gen_callbacks.py` with Keras
//! 3.15.1) through strata's callbacks with a fake model, and compares per epoch: stop_training,
//! learning rate, the logs after `on_epoch_end`, checkpoint files, printed text; at the end the
//! CSV file, the restored weights and the printed text. Then replays the progress bar runs with
//! the same scripted clock and compares the exact bytes.

use std::any::Any;
use std::path::{Path, PathBuf};
use strata_format::json::{Json, JsonLimits};
use strata_train::Result;
use strata_train::callbacks::*;
use strata_train::progress::{Clock, ProgbarLogger, Verbosity};

fn fixture() -> Json {
    let path = strata_testkit::fixture("train/callbacks.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Json::parse(text, &JsonLimits::default()).expect("callbacks.json parses")
}

fn num(j: &Json) -> f64 {
    match j.as_str() {
        Some("nan") => f64::NAN,
        Some("inf") => f64::INFINITY,
        Some("-inf") => f64::NEG_INFINITY,
        Some(s) => panic!("unexpected string {s:?}"),
        None => j.as_f64().expect("a number"),
    }
}

fn logs(j: &Json) -> Logs {
    j.as_array()
        .expect("logs array")
        .iter()
        .map(|kv| (kv.at(0).and_then(Json::as_str).expect("key").to_string(), num(kv.at(1).expect("value"))))
        .collect()
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

/// A model whose weights are one number (the epoch they were marked with) and whose learning
/// rate is a float32 variable, as in Keras.
struct Fake {
    stop: bool,
    lr: f32,
    weights: f64,
}

impl TrainContext for Fake {
    fn stop_training(&mut self) {
        self.stop = true;
    }
    fn learning_rate(&self) -> f64 {
        self.lr as f64
    }
    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        self.lr = lr as f32;
        Ok(())
    }
    fn save_model(&mut self, path: &Path) -> Result<()> {
        std::fs::write(path, b"model").unwrap();
        Ok(())
    }
    fn save_weights(&mut self, path: &Path) -> Result<()> {
        std::fs::write(path, b"weights").unwrap();
        Ok(())
    }
    fn snapshot_weights(&self) -> Box<dyn Any + Send> {
        Box::new(self.weights)
    }
    fn restore_weights(&mut self, snapshot: &(dyn Any + Send)) -> Result<()> {
        self.weights = *snapshot.downcast_ref::<f64>().expect("an f64 snapshot");
        Ok(())
    }
}

/// The same callback configurations as `cases()` in gen_callbacks.py.
fn make(name: &str, dir: &Path, cap: &Capture) -> Box<dyn Callback> {
    let out = cap.output();
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let es = || EarlyStopping::new().output(cap.output());
    let ck = |f: &str| ModelCheckpoint::new(p(f)).output(cap.output());
    let rlr = || ReduceLROnPlateau::new().output(cap.output());
    match name {
        "es_default" => Box::new(es()),
        "es_patience3_verbose" => Box::new(es().patience(3).verbose(1)),
        "es_min_delta" => Box::new(es().min_delta(0.001).patience(1).verbose(1)),
        "es_acc_auto" => Box::new(es().monitor("val_accuracy").patience(2).verbose(1)),
        "es_loss_max" => Box::new(es().monitor("loss").mode(Mode::Max).patience(1)),
        "es_baseline" => Box::new(es().baseline(0.6).patience(2).verbose(1)),
        "es_restore" => Box::new(es().patience(2).restore_best_weights(true).verbose(1)),
        "es_restore_no_stop" => Box::new(es().patience(20).restore_best_weights(true).verbose(1)),
        "es_start_from" => Box::new(es().patience(1).start_from_epoch(4).verbose(1)),
        "es_nan" => Box::new(es().patience(2).verbose(1).restore_best_weights(true)),
        "es_missing" => Box::new(es().monitor("val_auc").mode(Mode::Max).patience(1)),
        "ckpt_all" => Box::new(ck("m-{epoch:02d}-{val_loss:.2f}.keras").verbose(1)),
        "ckpt_best" => Box::new(ck("best.keras").save_best_only(true).verbose(1)),
        "ckpt_best_weights_acc" => Box::new(
            ck("w{epoch}_{val_accuracy:.3f}.weights.h5")
                .monitor("val_accuracy")
                .save_best_only(true)
                .save_weights_only(true)
                .verbose(1),
        ),
        "ckpt_threshold" => Box::new(
            ck("e{epoch:03d}_{loss:08.4f}_{accuracy:.1%}.keras")
                .monitor("loss")
                .save_best_only(true)
                .initial_value_threshold(0.7)
                .verbose(1),
        ),
        "ckpt_nan" => Box::new(ck("n{epoch:d}.keras").save_best_only(true).verbose(1)),
        "ckpt_format" => Box::new(ck("f{epoch:>4}_{val_loss}_{loss:+.3e}_{accuracy:<8.2f}|.keras")),
        "rlr_default" => Box::new(rlr().verbose(1)),
        "rlr_patience1" => Box::new(rlr().patience(1).factor(0.5).verbose(1)),
        "rlr_cooldown_minlr" => Box::new(rlr().patience(1).factor(0.2).cooldown(2).min_lr(0.003).verbose(1)),
        "rlr_acc_min_delta" => {
            Box::new(rlr().monitor("val_accuracy").patience(1).min_delta(0.01).factor(0.5).verbose(1))
        }
        "rlr_nan" => Box::new(rlr().patience(1).factor(0.5).verbose(1)),
        "csv_default" | "csv_nan" => Box::new(CSVLogger::new(dir.join("log.csv"))),
        "csv_sep_no_val" => Box::new(CSVLogger::new(dir.join("log.csv")).separator(';')),
        "nan_batches" | "nan_batches_nan" => Box::new(TerminateOnNaN::new().output(out)),
        "lrs_halve" => {
            Box::new(LearningRateScheduler::new(|e, lr| if e >= 2 { lr * 0.5 } else { lr }).verbose(1).output(out))
        }
        "lrs_exp" => Box::new(LearningRateScheduler::new(|e, _| 0.01 * (-0.3 * e as f64).exp()).verbose(1).output(out)),
        other => panic!("no strata configuration for oracle case `{other}`"),
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut f: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".csv"))
        .collect();
    f.sort();
    f
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strata-cb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn callbacks_match_keras() {
    let fx = fixture();
    let cases = fx.get("cases").and_then(Json::as_array).expect("cases");
    assert!(cases.len() >= 25);
    for case in cases {
        let name = case.get("name").and_then(Json::as_str).expect("name");
        let dir = temp_dir(name);
        let cap = Capture::new();
        let text = |cap: &Capture| {
            let t = cap.text().replace(&format!("{}/", dir.display()), "<DIR>/");
            cap.clear();
            t
        };
        let mut cb = make(name, &dir, &cap);
        let lr0 = case.get("lr").map(num).expect("lr");
        let mut ctx = Fake { stop: false, lr: lr0 as f32, weights: -1.0 };
        let epoch_logs: Vec<Logs> = case.get("logs").and_then(Json::as_array).expect("logs").iter().map(logs).collect();
        let batches = case.get("batches").and_then(Json::as_array);
        let expected = case.get("epochs").and_then(Json::as_array).expect("epochs");
        cb.on_train_begin(&mut ctx).unwrap();
        assert_eq!(text(&cap), case.get("begin_out").and_then(Json::as_str).unwrap(), "{name}: begin output");
        let mut last = Logs::new();
        let mut ran = 0;
        for (epoch, mut l) in epoch_logs.into_iter().enumerate() {
            cb.on_epoch_begin(epoch, &mut ctx).unwrap();
            let lr_begin = ctx.learning_rate();
            if let Some(b) = batches {
                for (i, loss) in b[epoch].as_array().unwrap().iter().enumerate() {
                    let bl: Logs = [("loss", num(loss))].into_iter().collect();
                    cb.on_train_batch_end(i, &bl, &mut ctx).unwrap();
                }
            }
            ctx.weights = epoch as f64;
            cb.on_epoch_end(epoch, &mut l, &mut ctx).unwrap();
            let want = &expected[epoch];
            let at = format!("{name}, epoch {epoch}");
            assert_eq!(ctx.stop, want.get("stop_training").and_then(Json::as_bool).unwrap(), "{at}: stop_training");
            assert_eq!(lr_begin, num(want.get("lr_begin").unwrap()), "{at}: learning rate after on_epoch_begin");
            assert_eq!(ctx.learning_rate(), num(want.get("lr").unwrap()), "{at}: learning rate");
            let want_logs = logs(want.get("logs_after").unwrap());
            assert_eq!(l.keys().collect::<Vec<_>>(), want_logs.keys().collect::<Vec<_>>(), "{at}: log names");
            for ((k, a), (_, b)) in l.iter().zip(want_logs.iter()) {
                assert!(same(a, b), "{at}: logs[{k}] = {a}, Keras {b}");
            }
            let want_files: Vec<String> = want
                .get("files")
                .and_then(Json::as_array)
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            assert_eq!(files(&dir), want_files, "{at}: checkpoint files");
            assert_eq!(text(&cap), want.get("out").and_then(Json::as_str).unwrap(), "{at}: printed text");
            ran += 1;
            last = l;
            if ctx.stop {
                break;
            }
        }
        assert_eq!(ran, expected.len(), "{name}: epochs run");
        cb.on_train_end(&last, &mut ctx).unwrap();
        assert_eq!(text(&cap), case.get("end_out").and_then(Json::as_str).unwrap(), "{name}: end output");
        assert_eq!(ctx.weights, num(case.get("weights_epoch").unwrap()), "{name}: weights after training");
        let csv = std::fs::read_to_string(dir.join("log.csv")).ok();
        assert_eq!(csv.as_deref(), case.get("csv").and_then(Json::as_str), "{name}: CSV file");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Returns the scripted times in turn, then repeats the last.
struct Script(Vec<f64>, usize);

impl Clock for Script {
    fn now(&mut self) -> f64 {
        let t = self.0[self.1.min(self.0.len() - 1)];
        self.1 += 1;
        t
    }
}

#[test]
fn progress_bar_matches_keras_bytes() {
    let fx = fixture();
    let runs = fx.get("progbar").and_then(Json::as_array).expect("progbar runs");
    assert!(runs.len() >= 5);
    for run in runs {
        let name = run.get("name").and_then(Json::as_str).unwrap();
        let verbose = match run.get("verbose").and_then(Json::as_str).unwrap() {
            "1" => Verbosity::One,
            "2" => Verbosity::Two,
            "auto" => Verbosity::Auto,
            v => panic!("verbose {v}"),
        };
        let epochs = run.get("epochs").and_then(Json::as_usize).unwrap();
        let steps = run.get("steps").and_then(Json::as_usize);
        let clock: Vec<f64> = run.get("clock").and_then(Json::as_array).unwrap().iter().map(num).collect();
        let batch_logs: Vec<Logs> = run.get("batch_logs").and_then(Json::as_array).unwrap().iter().map(logs).collect();
        let epoch_logs: Vec<Logs> = run.get("epoch_logs").and_then(Json::as_array).unwrap().iter().map(logs).collect();
        let cap = Capture::new();
        let mut p = ProgbarLogger::with_clock(verbose, epochs, steps, Box::new(Script(clock, 0)), cap.output());
        let mut ctx = Fake { stop: false, lr: 0.1, weights: 0.0 };
        p.on_train_begin(&mut ctx).unwrap();
        for (e, el) in epoch_logs.iter().enumerate() {
            p.on_epoch_begin(e, &mut ctx).unwrap();
            for (b, bl) in batch_logs.iter().enumerate() {
                p.on_train_batch_end(b, bl, &mut ctx).unwrap();
            }
            p.on_epoch_end(e, &mut el.clone(), &mut ctx).unwrap();
        }
        p.on_train_end(epoch_logs.last().unwrap(), &mut ctx).unwrap();
        assert_eq!(cap.text(), run.get("out").and_then(Json::as_str).unwrap(), "{name}");
    }
}

#[test]
fn callback_list_shares_logs_in_kerass_order() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let lambda = LambdaCallback::new().on_epoch_end(move |e, logs| {
        s2.lock().unwrap().push((e, logs.get("learning_rate")));
    });
    let mut list = CallbackList::new(vec![
        Box::new(ReduceLROnPlateau::new().patience(0).output(Capture::new().output())),
        Box::new(lambda),
    ])
    .with_history();
    let mut ctx = Fake { stop: false, lr: 0.5, weights: 0.0 };
    list.on_train_begin(&mut ctx).unwrap();
    for e in 0..3 {
        list.on_epoch_begin(e, &mut ctx).unwrap();
        let mut l: Logs = [("loss", 1.0), ("val_loss", 1.0)].into_iter().collect();
        list.on_epoch_end(e, &mut l, &mut ctx).unwrap();
    }
    let h = list.take_history().unwrap();
    assert_eq!(h.epoch, vec![0, 1, 2]);
    assert_eq!(h.history.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["loss", "val_loss", "learning_rate"]);
    // Logged before the epoch's reduction: 0.5, then 0.5 (first plateau epoch reduces after logging), ...
    let lrs = h.get("learning_rate").unwrap().to_vec();
    assert_eq!(seen.lock().unwrap().iter().map(|(_, lr)| lr.unwrap()).collect::<Vec<_>>(), lrs);
}

#[test]
fn errors_render_as_documented() {
    let mut ctx = Fake { stop: false, lr: 0.1, weights: 0.0 };
    let e = ModelCheckpoint::new("model.txt").on_train_begin(&mut ctx).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ModelCheckpoint: config key `filepath` must end in `.keras` (Keras model format), found \"model.txt\""
    );
    let e = ReduceLROnPlateau::new().factor(1.0).on_train_begin(&mut ctx).unwrap_err();
    assert_eq!(e.to_string(), "ReduceLROnPlateau: config key `factor` must be < 1.0, found 1.0");
    let mut es = EarlyStopping::new().monitor("val_custom");
    let mut l: Logs = [("val_custom", 1.0)].into_iter().collect();
    let e = es.on_epoch_end(0, &mut l, &mut ctx).unwrap_err();
    assert!(e.to_string().starts_with("EarlyStopping: received monitor=val_custom, but Keras isn't able"), "{e}");
    let mut t = TerminateOnNaN::new().raise_error(true);
    let l: Logs = [("loss", f64::NAN)].into_iter().collect();
    let e = t.on_train_batch_end(3, &l, &mut ctx).unwrap_err();
    assert_eq!(
        e.to_string(),
        "TerminateOnNaN: NaN or Inf loss encountered at batch 3. Loss value: nan. Terminating training immediately."
    );
}
