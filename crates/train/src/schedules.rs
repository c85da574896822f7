//! Learning-rate schedules, mirroring `keras/src/optimizers/schedules/learning_rate_schedule.py`.
//!
//! A schedule maps the optimizer's iteration count (before the step's increment, as Keras's
//! `_get_current_learning_rate` reads `self._iterations`) to a learning rate. Values are
//! computed in f64 and rounded to f32 (Keras computes in float32; the two agree within the
//! forward tolerance). Configs round-trip Keras's serialized form
//! `{"module": "keras.optimizers.schedules", "class_name", "config", "registered_name": null}`.

use crate::config::{Num, Reader, serialized, split_serialized};
use crate::error::{Error, Result};
use strata_format::json::Json;

/// One of Keras's built-in learning-rate schedules.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum LearningRateSchedule {
    /// `initial * decay_rate ^ (step / decay_steps)` (floored when `staircase`).
    ExponentialDecay {
        /// Starting rate.
        initial_learning_rate: Num,
        /// Steps per decay period (> 0).
        decay_steps: Num,
        /// Decay factor per period.
        decay_rate: Num,
        /// Floor `step / decay_steps`.
        staircase: bool,
        /// Name (Keras default "ExponentialDecay").
        name: String,
    },
    /// Constant pieces: `values[i]` for `boundaries[i-1] < step <= boundaries[i]`.
    PiecewiseConstantDecay {
        /// Step boundaries (one fewer than values).
        boundaries: Vec<Num>,
        /// Rates.
        values: Vec<Num>,
        /// Name (Keras default "PiecewiseConstant").
        name: String,
    },
    /// Cosine decay with optional linear warmup.
    CosineDecay {
        /// Starting rate (the warmup's start when warmup is on).
        initial_learning_rate: Num,
        /// Decay length (> 0).
        decay_steps: Num,
        /// Floor as a fraction of the peak rate.
        alpha: Num,
        /// Name (Keras default "CosineDecay").
        name: String,
        /// Peak rate reached after warmup (None: no warmup).
        warmup_target: Option<Num>,
        /// Warmup length.
        warmup_steps: Num,
    },
    /// `initial / (1 + decay_rate * step / decay_steps)`.
    InverseTimeDecay {
        /// Starting rate.
        initial_learning_rate: Num,
        /// Steps per period (> 0).
        decay_steps: Num,
        /// Rate.
        decay_rate: Num,
        /// Floor `step / decay_steps`.
        staircase: bool,
        /// Name (Keras default "InverseTimeDecay").
        name: String,
    },
    /// Polynomial decay to `end_learning_rate`, optionally cycling.
    PolynomialDecay {
        /// Starting rate.
        initial_learning_rate: Num,
        /// Decay length (> 0).
        decay_steps: Num,
        /// Final rate.
        end_learning_rate: Num,
        /// Exponent.
        power: Num,
        /// Restart after `decay_steps` with a longer period.
        cycle: bool,
        /// Name (Keras default "PolynomialDecay").
        name: String,
    },
    /// SGDR: cosine decay with warm restarts.
    CosineDecayRestarts {
        /// Starting rate.
        initial_learning_rate: Num,
        /// First period (> 0).
        first_decay_steps: Num,
        /// Period growth factor.
        t_mul: Num,
        /// Rate factor per restart.
        m_mul: Num,
        /// Floor as a fraction.
        alpha: Num,
        /// Name (Keras default "SGDRDecay").
        name: String,
    },
}

/// Class names of the built-in schedules.
pub const SCHEDULE_NAMES: &[&str] = &[
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "CosineDecay",
    "InverseTimeDecay",
    "PolynomialDecay",
    "CosineDecayRestarts",
];

fn check_steps(class: &str, key: &str, n: Num) -> Result<()> {
    if n.value > 0.0 && n.value.is_finite() {
        Ok(())
    } else {
        Err(Error::Config { object: class.into(), key: key.into(), problem: format!("must be > 0, found {}", n.value) })
    }
}

/// `step / decay_steps`, floored when `staircase` (ExponentialDecay, InverseTimeDecay).
fn progress(step: f64, decay_steps: f64, staircase: bool) -> f64 {
    let p = step / decay_steps;
    if staircase { p.floor() } else { p }
}

impl LearningRateSchedule {
    /// `ExponentialDecay(initial_learning_rate, decay_steps, decay_rate)` with Keras defaults.
    pub fn exponential_decay(initial_learning_rate: f64, decay_steps: i64, decay_rate: f64, staircase: bool) -> Self {
        LearningRateSchedule::ExponentialDecay {
            initial_learning_rate: Num::float(initial_learning_rate),
            decay_steps: Num::int(decay_steps),
            decay_rate: Num::float(decay_rate),
            staircase,
            name: "ExponentialDecay".into(),
        }
    }

    /// `PiecewiseConstantDecay(boundaries, values)`.
    pub fn piecewise_constant_decay(boundaries: &[i64], values: &[f64]) -> Result<Self> {
        let s = LearningRateSchedule::PiecewiseConstantDecay {
            boundaries: boundaries.iter().map(|&b| Num::int(b)).collect(),
            values: values.iter().map(|&v| Num::float(v)).collect(),
            name: "PiecewiseConstant".into(),
        };
        s.validate()?;
        Ok(s)
    }

    /// `CosineDecay(initial_learning_rate, decay_steps, alpha)`; warmup with [`Self::with_warmup`].
    pub fn cosine_decay(initial_learning_rate: f64, decay_steps: i64, alpha: f64) -> Self {
        LearningRateSchedule::CosineDecay {
            initial_learning_rate: Num::float(initial_learning_rate),
            decay_steps: Num::int(decay_steps),
            alpha: Num::float(alpha),
            name: "CosineDecay".into(),
            warmup_target: None,
            warmup_steps: Num::int(0),
        }
    }

    /// Adds linear warmup to a `CosineDecay` (other schedules are returned unchanged).
    pub fn with_warmup(mut self, target: f64, steps: i64) -> Self {
        if let LearningRateSchedule::CosineDecay { warmup_target, warmup_steps, .. } = &mut self {
            *warmup_target = Some(Num::float(target));
            *warmup_steps = Num::int(steps);
        }
        self
    }

    /// `InverseTimeDecay(initial_learning_rate, decay_steps, decay_rate, staircase)`.
    pub fn inverse_time_decay(initial_learning_rate: f64, decay_steps: i64, decay_rate: f64, staircase: bool) -> Self {
        LearningRateSchedule::InverseTimeDecay {
            initial_learning_rate: Num::float(initial_learning_rate),
            decay_steps: Num::int(decay_steps),
            decay_rate: Num::float(decay_rate),
            staircase,
            name: "InverseTimeDecay".into(),
        }
    }

    /// `PolynomialDecay(initial_learning_rate, decay_steps, end_learning_rate, power, cycle)`.
    pub fn polynomial_decay(initial: f64, decay_steps: i64, end: f64, power: f64, cycle: bool) -> Self {
        LearningRateSchedule::PolynomialDecay {
            initial_learning_rate: Num::float(initial),
            decay_steps: Num::int(decay_steps),
            end_learning_rate: Num::float(end),
            power: Num::float(power),
            cycle,
            name: "PolynomialDecay".into(),
        }
    }

    /// `CosineDecayRestarts(initial_learning_rate, first_decay_steps, t_mul, m_mul, alpha)`.
    pub fn cosine_decay_restarts(initial: f64, first_decay_steps: i64, t_mul: f64, m_mul: f64, alpha: f64) -> Self {
        LearningRateSchedule::CosineDecayRestarts {
            initial_learning_rate: Num::float(initial),
            first_decay_steps: Num::int(first_decay_steps),
            t_mul: Num::float(t_mul),
            m_mul: Num::float(m_mul),
            alpha: Num::float(alpha),
            name: "SGDRDecay".into(),
        }
    }

    /// The Keras class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            LearningRateSchedule::ExponentialDecay { .. } => "ExponentialDecay",
            LearningRateSchedule::PiecewiseConstantDecay { .. } => "PiecewiseConstantDecay",
            LearningRateSchedule::CosineDecay { .. } => "CosineDecay",
            LearningRateSchedule::InverseTimeDecay { .. } => "InverseTimeDecay",
            LearningRateSchedule::PolynomialDecay { .. } => "PolynomialDecay",
            LearningRateSchedule::CosineDecayRestarts { .. } => "CosineDecayRestarts",
        }
    }

    fn validate(&self) -> Result<()> {
        let c = self.class_name();
        match self {
            LearningRateSchedule::ExponentialDecay { decay_steps, .. }
            | LearningRateSchedule::InverseTimeDecay { decay_steps, .. }
            | LearningRateSchedule::PolynomialDecay { decay_steps, .. }
            | LearningRateSchedule::CosineDecay { decay_steps, .. } => check_steps(c, "decay_steps", *decay_steps),
            LearningRateSchedule::CosineDecayRestarts { first_decay_steps, .. } => {
                check_steps(c, "first_decay_steps", *first_decay_steps)
            }
            LearningRateSchedule::PiecewiseConstantDecay { boundaries, values, .. } => {
                if boundaries.len() + 1 != values.len() || values.is_empty() {
                    return Err(Error::Config {
                        object: c.into(),
                        key: "boundaries".into(),
                        problem: format!(
                            "must have one entry fewer than `values`: found {} boundaries and {} values",
                            boundaries.len(),
                            values.len()
                        ),
                    });
                }
                Ok(())
            }
        }
    }

    /// The learning rate at `step` (the optimizer's iteration count).
    pub fn call(&self, step: u64) -> f32 {
        let s = step as f64;
        let v = match self {
            LearningRateSchedule::ExponentialDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
                ..
            } => {
                let p = progress(s, decay_steps.value, *staircase);
                initial_learning_rate.value * decay_rate.value.powf(p)
            }
            LearningRateSchedule::PiecewiseConstantDecay { boundaries, values, .. } => {
                let idx = boundaries.iter().position(|b| s <= b.value).unwrap_or(boundaries.len());
                values.get(idx).map_or(0.0, |v| v.value)
            }
            LearningRateSchedule::CosineDecay {
                initial_learning_rate,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
                ..
            } => {
                let decay = |step: f64, from: f64| {
                    let frac = step / decay_steps.value;
                    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * frac).cos());
                    from * ((1.0 - alpha.value) * cosine + alpha.value)
                };
                match warmup_target {
                    None => decay(s.min(decay_steps.value), initial_learning_rate.value),
                    Some(target) => {
                        let w = warmup_steps.value;
                        let s = s.min(decay_steps.value + w);
                        if s < w {
                            (target.value - initial_learning_rate.value) * (s / w) + initial_learning_rate.value
                        } else {
                            decay(s - w, target.value)
                        }
                    }
                }
            }
            LearningRateSchedule::InverseTimeDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
                ..
            } => {
                let p = progress(s, decay_steps.value, *staircase);
                initial_learning_rate.value / (1.0 + decay_rate.value * p)
            }
            LearningRateSchedule::PolynomialDecay {
                initial_learning_rate,
                decay_steps,
                end_learning_rate,
                power,
                cycle,
                ..
            } => {
                let (mut g, mut d) = (s, decay_steps.value);
                if *cycle {
                    let mult = if g == 0.0 { 1.0 } else { (g / d).ceil() };
                    d *= mult;
                } else {
                    g = g.min(d);
                }
                let p = g / d;
                (initial_learning_rate.value - end_learning_rate.value) * (1.0 - p).powf(power.value)
                    + end_learning_rate.value
            }
            LearningRateSchedule::CosineDecayRestarts {
                initial_learning_rate,
                first_decay_steps,
                t_mul,
                m_mul,
                alpha,
                ..
            } => {
                let mut frac = s / first_decay_steps.value;
                let t = t_mul.value;
                let i_restart = if t == 1.0 {
                    let i = frac.floor();
                    frac -= i;
                    i
                } else {
                    let i = ((1.0 - frac * (1.0 - t)).ln() / t.ln()).floor();
                    let sum_r = (1.0 - t.powf(i)) / (1.0 - t);
                    frac = (frac - sum_r) / t.powf(i);
                    i
                };
                let m_fac = m_mul.value.powf(i_restart);
                let cosine = 0.5 * m_fac * (1.0 + (std::f64::consts::PI * frac).cos());
                initial_learning_rate.value * ((1.0 - alpha.value) * cosine + alpha.value)
            }
        };
        v as f32
    }

    /// Keras's `get_config()` (keys in Keras's order).
    pub fn get_config(&self) -> Json {
        match self {
            LearningRateSchedule::ExponentialDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
                name,
            }
            | LearningRateSchedule::InverseTimeDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
                name,
            } => Json::object([
                ("initial_learning_rate", initial_learning_rate.to_json()),
                ("decay_steps", decay_steps.to_json()),
                ("decay_rate", decay_rate.to_json()),
                ("staircase", Json::from(*staircase)),
                ("name", Json::from(name.as_str())),
            ]),
            LearningRateSchedule::PiecewiseConstantDecay { boundaries, values, name } => Json::object([
                ("boundaries", Json::array(boundaries.iter().map(|b| b.to_json()))),
                ("values", Json::array(values.iter().map(|v| v.to_json()))),
                ("name", Json::from(name.as_str())),
            ]),
            LearningRateSchedule::CosineDecay {
                initial_learning_rate,
                decay_steps,
                alpha,
                name,
                warmup_target,
                warmup_steps,
            } => Json::object([
                ("initial_learning_rate", initial_learning_rate.to_json()),
                ("decay_steps", decay_steps.to_json()),
                ("alpha", alpha.to_json()),
                ("name", Json::from(name.as_str())),
                ("warmup_target", warmup_target.map_or(Json::Null, Num::to_json)),
                ("warmup_steps", warmup_steps.to_json()),
            ]),
            LearningRateSchedule::PolynomialDecay {
                initial_learning_rate,
                decay_steps,
                end_learning_rate,
                power,
                cycle,
                name,
            } => Json::object([
                ("initial_learning_rate", initial_learning_rate.to_json()),
                ("decay_steps", decay_steps.to_json()),
                ("end_learning_rate", end_learning_rate.to_json()),
                ("power", power.to_json()),
                ("cycle", Json::from(*cycle)),
                ("name", Json::from(name.as_str())),
            ]),
            LearningRateSchedule::CosineDecayRestarts {
                initial_learning_rate,
                first_decay_steps,
                t_mul,
                m_mul,
                alpha,
                name,
            } => Json::object([
                ("initial_learning_rate", initial_learning_rate.to_json()),
                ("first_decay_steps", first_decay_steps.to_json()),
                ("t_mul", t_mul.to_json()),
                ("m_mul", m_mul.to_json()),
                ("alpha", alpha.to_json()),
                ("name", Json::from(name.as_str())),
            ]),
        }
    }

    /// The serialized form Keras writes inside an optimizer config.
    pub fn serialize(&self) -> Json {
        serialized("keras.optimizers.schedules", self.class_name(), self.get_config())
    }

    /// Builds a schedule from `class_name` and its `get_config()` dict.
    pub fn from_config(class_name: &str, cfg: &Json) -> Result<Self> {
        let mut r = Reader::new(class_name, cfg)?;
        let s = match class_name {
            "ExponentialDecay" | "InverseTimeDecay" => {
                let initial_learning_rate = r.req_num("initial_learning_rate")?;
                let decay_steps = r.req_num("decay_steps")?;
                let decay_rate = r.req_num("decay_rate")?;
                let staircase = r.bool("staircase", false)?;
                let name = r.str("name", class_name)?.to_string();
                if class_name == "ExponentialDecay" {
                    LearningRateSchedule::ExponentialDecay {
                        initial_learning_rate,
                        decay_steps,
                        decay_rate,
                        staircase,
                        name,
                    }
                } else {
                    LearningRateSchedule::InverseTimeDecay {
                        initial_learning_rate,
                        decay_steps,
                        decay_rate,
                        staircase,
                        name,
                    }
                }
            }
            "PiecewiseConstantDecay" => LearningRateSchedule::PiecewiseConstantDecay {
                boundaries: r.nums("boundaries")?,
                values: r.nums("values")?,
                name: r.str("name", "PiecewiseConstant")?.to_string(),
            },
            "CosineDecay" => LearningRateSchedule::CosineDecay {
                initial_learning_rate: r.req_num("initial_learning_rate")?,
                decay_steps: r.req_num("decay_steps")?,
                alpha: r.num("alpha", Num::float(0.0))?,
                name: r.str("name", "CosineDecay")?.to_string(),
                warmup_target: r.opt_num("warmup_target")?,
                warmup_steps: r.num("warmup_steps", Num::int(0))?,
            },
            "PolynomialDecay" => LearningRateSchedule::PolynomialDecay {
                initial_learning_rate: r.req_num("initial_learning_rate")?,
                decay_steps: r.req_num("decay_steps")?,
                end_learning_rate: r.num("end_learning_rate", Num::float(0.0001))?,
                power: r.num("power", Num::float(1.0))?,
                cycle: r.bool("cycle", false)?,
                name: r.str("name", "PolynomialDecay")?.to_string(),
            },
            "CosineDecayRestarts" => LearningRateSchedule::CosineDecayRestarts {
                initial_learning_rate: r.req_num("initial_learning_rate")?,
                first_decay_steps: r.req_num("first_decay_steps")?,
                t_mul: r.num("t_mul", Num::float(2.0))?,
                m_mul: r.num("m_mul", Num::float(1.0))?,
                alpha: r.num("alpha", Num::float(0.0))?,
                name: r.str("name", "SGDRDecay")?.to_string(),
            },
            other => {
                return Err(Error::UnknownName {
                    kind: "learning rate schedule",
                    name: other.into(),
                    known: SCHEDULE_NAMES.to_vec(),
                });
            }
        };
        r.finish()?;
        s.validate()?;
        Ok(s)
    }

    /// Parses the serialized form (`{"class_name", "config", ...}`).
    pub fn deserialize(value: &Json) -> Result<Self> {
        let (class, cfg) = split_serialized("learning rate schedule", value)?;
        Self::from_config(class, cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_schedule_names_the_known_ones() {
        let e = LearningRateSchedule::from_config("StepDecay", &Json::Null).unwrap_err().to_string();
        assert!(e.starts_with("unknown learning rate schedule `StepDecay`; known names: ExponentialDecay"), "{e}");
        assert!(e.contains("CosineDecayRestarts"), "{e}");
    }

    #[test]
    fn bad_piecewise_lengths_are_refused() {
        let e = LearningRateSchedule::piecewise_constant_decay(&[1, 2], &[0.1, 0.2]).unwrap_err().to_string();
        assert!(e.contains("found 2 boundaries and 2 values"), "{e}");
    }

    #[test]
    fn builder_config_round_trips() {
        let s = LearningRateSchedule::cosine_decay(0.1, 10, 0.0).with_warmup(0.2, 3);
        let back = LearningRateSchedule::deserialize(&s.serialize()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.get_config()["warmup_steps"], Json::from(3i64));
    }
}
