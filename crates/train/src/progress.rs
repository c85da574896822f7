//! Keras 3's progress bar (`keras/src/utils/progbar.py`) and the callback that drives it during
//! `fit` (`keras/src/callbacks/progbar_logger.py`), with the same text byte for byte.
//!
//! * verbose 1: one line per epoch, redrawn in place after each batch (at most every 50 ms, and
//!   always at the end): `\b` times the previous line's visible width, then `\r`, then
//!   `3/4 ━━━━━━━━━━━━━━━╺━━━━ 1s 20ms/step - loss: 0.1234` with ANSI bold on the counter and
//!   the time, green for the done part of the bar and white for the rest. While the epoch runs
//!   the time is the ETA (`%ds`, `%d:%02d`, `%d:%02d:%02d`), at the end the elapsed seconds.
//!   Values print as `%.4f`, or `%.4e` when `|v| <= 1e-3`.
//! * verbose 2: one plain line per epoch at its end: `4/4 - 0s - 5ms/step - loss: 0.1234`
//!   (here `v <= 1e-3`, sign included, selects `%.4e`, as in Keras).
//! * verbose 0: nothing.
//! * [`Verbosity::Auto`] is 1, as Keras 3.15.1 resolves `verbose="auto"` in `ProgbarLogger`
//!   regardless of the terminal. Keras also redraws with `\b`/`\r` whenever the `posix` module is
//!   loaded (every Linux/macOS Python), so strata does too, even when stdout is a file; a caller
//!   that wants one line per epoch in logs passes `Verbosity::Two`.
//!
//! The `Epoch 1/2` header is printed before each epoch when `epochs > 1` (also at verbose 2).
//!
//! Written by hand rather than with `indicatif`: indicatif draws its own templates, throttles
//! by its own clock and clears lines with terminal escape sequences, so it cannot give Keras's
//! exact bytes (the `\b` run, the trailing-space padding, the ETA rules); house style also keeps
//! indicatif in the CLI only. The clock is injected ([`Clock`]) so tests can check the exact
//! text.

use crate::callbacks::{Callback, Logs, Output, TrainContext};
use crate::error::Result;
use std::io::Write as _;
use std::time::Instant;

/// Seconds since some fixed start, for measuring steps.
pub trait Clock: Send {
    /// The current time in seconds.
    fn now(&mut self) -> f64;
}

/// The wall clock ([`Instant`]).
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&mut self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// `fit(verbose=...)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verbosity {
    /// Silent.
    Zero,
    /// A progress bar per epoch, redrawn in place.
    One,
    /// One line per epoch.
    Two,
    /// Keras's `"auto"`: 1.
    #[default]
    Auto,
}

impl Verbosity {
    /// 0, 1 or 2 (`Auto` is 1, as in Keras 3).
    pub fn level(self) -> u8 {
        match self {
            Verbosity::Zero => 0,
            Verbosity::One | Verbosity::Auto => 1,
            Verbosity::Two => 2,
        }
    }
}

/// Keras's `Progbar` with every metric shown as given (what `ProgbarLogger` does: its metrics
/// are already averaged by the model).
pub struct Progbar {
    target: Option<usize>,
    width: usize,
    verbose: u8,
    interval: f64,
    unit_name: String,
    values: Vec<(String, f64)>,
    start: f64,
    last_update: f64,
    time_after_first_step: Option<f64>,
    prev_total_width: usize,
    clock: Box<dyn Clock>,
    out: Output,
}

impl Progbar {
    /// A bar for `target` steps (`None`: unknown), Keras's defaults: width 20, interval 0.05 s,
    /// unit `step`. The clock's current time is the start.
    pub fn new(target: Option<usize>, verbose: u8, mut clock: Box<dyn Clock>, out: Output) -> Progbar {
        let start = clock.now();
        Progbar {
            target,
            width: 20,
            verbose,
            interval: 0.05,
            unit_name: "step".into(),
            values: Vec::new(),
            start,
            last_update: 0.0,
            time_after_first_step: None,
            prev_total_width: 0,
            clock,
            out,
        }
    }

    /// Gives back the clock and the writer.
    pub fn into_parts(self) -> (Box<dyn Clock>, Output) {
        (self.clock, self.out)
    }

    /// Sets the number of steps (when it was unknown).
    pub fn set_target(&mut self, target: usize) {
        self.target = Some(target);
    }

    /// `update(current, values, finalize)`: records the values and redraws.
    pub fn update(&mut self, current: usize, values: &Logs, finalize: bool) {
        for (k, v) in values.iter() {
            match self.values.iter_mut().find(|(n, _)| n == k) {
                Some(e) => e.1 = v,
                None => self.values.push((k.to_string(), v)),
            }
        }
        let now = self.clock.now();
        let time_per_unit = self.estimate_step_duration(current, now);
        match self.verbose {
            1 => {
                if now - self.last_update < self.interval && !finalize {
                    return;
                }
                let mut message = "\u{8}".repeat(self.prev_total_width);
                message.push('\r');
                let mut special = 0;
                let bar = match self.target.filter(|&t| t > 0) {
                    Some(target) => {
                        let nd = digits(target);
                        let mut bar = format!("\x1b[1m{current:>nd$}/{target}\x1b[0m ");
                        special += 8;
                        let prog_width = (self.width as f64 * (current as f64 / target as f64)) as usize;
                        if prog_width > 0 {
                            bar += &format!("\x1b[32m{}\x1b[0m", "━".repeat(prog_width));
                            special += 9;
                        }
                        bar += &format!("\x1b[37m{}\x1b[0m", "━".repeat(self.width.saturating_sub(prog_width)));
                        special += 9;
                        bar
                    }
                    None => format!("{current:>7}/Unknown"),
                };
                message += &bar;
                let mut info = match self.target.filter(|&t| t > 0 && !finalize) {
                    Some(target) => {
                        let eta = time_per_unit * (target as f64 - current as f64);
                        let eta_format = if eta > 3600.0 {
                            format!(
                                "{}:{:02}:{:02}",
                                (eta / 3600.0).floor() as i64,
                                ((eta % 3600.0) / 60.0).floor() as i64,
                                (eta % 60.0) as i64
                            )
                        } else if eta > 60.0 {
                            format!("{}:{:02}", (eta / 60.0).floor() as i64, (eta % 60.0) as i64)
                        } else {
                            format!("{}s", eta.trunc() as i64)
                        };
                        format!(" \x1b[1m{eta_format}\x1b[0m")
                    }
                    None => format!(" \x1b[1m{:.0}s\x1b[0m", now - self.start),
                };
                special += 8;
                info += &format_time(time_per_unit, &self.unit_name);
                for (k, v) in &self.values {
                    info += &format!(" - {k}: {}", format_value(*v, v.abs() > 1e-3));
                }
                message += &info;
                let total_width = (bar.chars().count() + info.chars().count()).saturating_sub(special);
                if self.prev_total_width > total_width {
                    message += &" ".repeat(self.prev_total_width - total_width);
                }
                if finalize {
                    message.push('\n');
                }
                let _ = self.out.write_all(message.as_bytes());
                let _ = self.out.flush();
                self.prev_total_width = total_width;
            }
            2 => {
                if let Some(target) = self.target.filter(|&t| finalize && t > 0) {
                    let nd = digits(target);
                    let mut info = format!("{current:>nd$}/{target} - {:.0}s", now - self.start);
                    info += &format!(" -{}", format_time(time_per_unit, &self.unit_name));
                    for (k, v) in &self.values {
                        info += &format!(" - {k}: {}", format_value(*v, *v > 1e-3));
                    }
                    info.push('\n');
                    let _ = self.out.write_all(info.as_bytes());
                    let _ = self.out.flush();
                }
            }
            _ => {}
        }
        self.last_update = now;
    }

    fn estimate_step_duration(&mut self, current: usize, now: f64) -> f64 {
        if current == 0 {
            return 0.0;
        }
        let t = match self.time_after_first_step {
            Some(t1) if current > 1 => (now - t1) / (current - 1) as f64,
            _ => (now - self.start) / current as f64,
        };
        if current == 1 {
            self.time_after_first_step = Some(now);
        }
        t
    }
}

/// `int(math.log10(n)) + 1`.
fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// `%.4f` when `fixed`, else `%.4e` (Python spelling: two-digit exponent with its sign).
fn format_value(v: f64, fixed: bool) -> String {
    if !v.is_finite() {
        return crate::pyformat::py_repr(v);
    }
    if fixed {
        format!("{v:.4}")
    } else {
        let s = format!("{v:.4e}");
        // `{:e}` of a finite value always has an exponent
        let Some((m, e)) = s.split_once('e') else { return s };
        let (sign, d) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        format!("{m}e{sign}{d:0>2}")
    }
}

/// `_format_time`: ` 2s/step`, ` 15ms/step` or ` 80us/step`.
fn format_time(t: f64, unit: &str) -> String {
    if t >= 1.0 || t == 0.0 {
        format!(" {t:.0}s/{unit}")
    } else if t >= 1e-3 {
        format!(" {:.0}ms/{unit}", t * 1000.0)
    } else {
        format!(" {:.0}us/{unit}", t * 1_000_000.0)
    }
}

/// The callback `fit` adds when `verbose != 0` (`ProgbarLogger`): prints `Epoch i/n` (when
/// `epochs > 1`), updates the bar after each batch (verbose 1) and finalizes it with the epoch's
/// logs.
pub struct ProgbarLogger {
    verbose: u8,
    epochs: usize,
    target: Option<usize>,
    seen: usize,
    progbar: Option<Progbar>,
    parts: Option<(Box<dyn Clock>, Output)>,
}

impl ProgbarLogger {
    /// A logger for `epochs` epochs of `steps` batches each (`None` when unknown: learnt from
    /// the first epoch), printing to stdout with the wall clock.
    pub fn new(verbose: Verbosity, epochs: usize, steps: Option<usize>) -> Self {
        Self::with_clock(verbose, epochs, steps, Box::new(SystemClock::default()), Box::new(std::io::stdout()))
    }

    /// The same with an injected clock and writer (for tests and other sinks).
    pub fn with_clock(
        verbose: Verbosity,
        epochs: usize,
        steps: Option<usize>,
        clock: Box<dyn Clock>,
        out: Output,
    ) -> Self {
        ProgbarLogger {
            verbose: verbose.level(),
            epochs,
            target: steps,
            seen: 0,
            progbar: None,
            parts: Some((clock, out)),
        }
    }

    fn reset(&mut self) {
        self.seen = 0;
        if let Some(p) = self.progbar.take() {
            self.parts = Some(p.into_parts());
        }
    }

    /// The epoch's bar, created (reading the clock) at its first use. The clock and writer are in
    /// `parts` whenever no bar holds them, so this is always `Some`; a `None` would only skip output.
    fn bar(&mut self) -> Option<&mut Progbar> {
        if self.progbar.is_none()
            && let Some((clock, out)) = self.parts.take()
        {
            self.progbar = Some(Progbar::new(self.target, self.verbose, clock, out));
        }
        self.progbar.as_mut()
    }
}

impl Callback for ProgbarLogger {
    fn on_epoch_begin(&mut self, epoch: usize, _ctx: &mut dyn TrainContext) -> Result<()> {
        self.reset();
        let (verbose, epochs) = (self.verbose, self.epochs);
        if let Some(bar) = self.bar()
            && verbose > 0
            && epochs > 1
        {
            let _ = writeln!(bar.out, "Epoch {}/{epochs}", epoch + 1);
            let _ = bar.out.flush();
        }
        Ok(())
    }

    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, _ctx: &mut dyn TrainContext) -> Result<()> {
        self.seen = batch + 1;
        let (seen, verbose) = (self.seen, self.verbose);
        if let Some(bar) = self.bar()
            && verbose == 1
        {
            bar.update(seen, logs, false);
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, _ctx: &mut dyn TrainContext) -> Result<()> {
        if self.target.is_none() {
            self.target = Some(self.seen);
            let seen = self.seen;
            if let Some(bar) = self.bar() {
                bar.set_target(seen);
            }
        }
        let target = self.target.unwrap_or(self.seen);
        if let Some(bar) = self.bar() {
            bar.update(target, logs, true);
        }
        Ok(())
    }
}

// The exact bar text is checked against Keras's own output in `tests/callbacks.rs`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_times_use_kerass_formats() {
        assert_eq!(format_value(0.1234567, true), "0.1235");
        assert_eq!(format_value(1e-4, false), "1.0000e-04");
        assert_eq!(format_value(123456.0, false), "1.2346e+05");
        assert_eq!(format_time(0.0, "step"), " 0s/step");
        assert_eq!(format_time(2.4, "step"), " 2s/step");
        assert_eq!(format_time(0.0153, "step"), " 15ms/step");
        assert_eq!(format_time(0.00008, "step"), " 80us/step");
    }
}
