//! Weight initializers under every Keras name, with Keras's distributions and parameters.
//!
//! Mirrors `keras/src/initializers/constant_initializers.py` and `random_initializers.py`:
//! `compute_fans` (for rank > 2 the receptive field is the product of all but the last two
//! dims: `fan_in = shape[-2] * receptive`, `fan_out = shape[-1] * receptive`), `VarianceScaling`
//! (`scale / max(1, fan)`; `truncated_normal` uses `stddev = sqrt(scale) / 0.87962566103423978`
//! and resamples beyond two standard deviations; `uniform` uses `limit = sqrt(3 * scale)`), the
//! Glorot/He/LeCun presets, `Orthogonal` (QR of a normal matrix, signs fixed by `diag(r)`) and
//! `Identity`.
//!
//! Random numbers come from strata's own generator (xoshiro256** seeded through splitmix64;
//! Box-Muller normals), so values are **not** bit-identical to Keras's (which uses the backend's
//! stateless RNG); the distributions and their parameters are. A `seed` gives the same values on
//! every run; without one, seeds are drawn from a process-wide counter (deterministic for a
//! given program, like a fixed global seed).

use crate::config::{Num, Reader, serialized, split_serialized};
use crate::error::{Error, Result};
use crate::reduce::numel;
use std::sync::atomic::{AtomicU64, Ordering};
use strata_format::json::{Json, Object};
use strata_tensor::Tensor;

/// `compute_fans(shape)` exactly as Keras (returns `(fan_in, fan_out)`).
pub fn compute_fans(shape: &[usize]) -> (f64, f64) {
    match shape.len() {
        0 => (1.0, 1.0),
        1 => (shape[0] as f64, shape[0] as f64),
        2 => (shape[0] as f64, shape[1] as f64),
        n => {
            let receptive: f64 = shape[..n - 2].iter().map(|&d| d as f64).product();
            (shape[n - 2] as f64 * receptive, shape[n - 1] as f64 * receptive)
        }
    }
}

/// Which fan `VarianceScaling` divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// `"fan_in"`
    FanIn,
    /// `"fan_out"`
    FanOut,
    /// `"fan_avg"`
    FanAvg,
}

/// `VarianceScaling`'s distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// `"truncated_normal"` (also what `"normal"` means)
    TruncatedNormal,
    /// `"untruncated_normal"`
    UntruncatedNormal,
    /// `"uniform"`
    Uniform,
}

/// A Keras initializer. Variants keep the class they came from (so `GlorotUniform` serializes
/// as itself, not as `VarianceScaling`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Initializer {
    /// `Zeros`
    Zeros,
    /// `Ones`
    Ones,
    /// `Constant(value)`
    Constant {
        /// The value.
        value: Num,
    },
    /// `RandomNormal(mean=0.0, stddev=0.05)`
    RandomNormal {
        /// Mean.
        mean: Num,
        /// Standard deviation.
        stddev: Num,
        /// Seed.
        seed: Option<i64>,
    },
    /// `RandomUniform(minval=-0.05, maxval=0.05)`
    RandomUniform {
        /// Lower bound.
        minval: Num,
        /// Upper bound.
        maxval: Num,
        /// Seed.
        seed: Option<i64>,
    },
    /// `TruncatedNormal(mean=0.0, stddev=0.05)`: values beyond 2 stddev are redrawn.
    TruncatedNormal {
        /// Mean.
        mean: Num,
        /// Standard deviation (before truncation).
        stddev: Num,
        /// Seed.
        seed: Option<i64>,
    },
    /// `VarianceScaling` and its presets.
    VarianceScaling {
        /// The Keras class (`VarianceScaling`, `GlorotUniform`, `HeNormal`, ...).
        class: &'static str,
        /// Scale.
        scale: Num,
        /// Fan mode.
        mode: FanMode,
        /// Distribution.
        distribution: Distribution,
        /// Seed.
        seed: Option<i64>,
    },
    /// `Orthogonal(gain=1.0)`
    Orthogonal {
        /// Multiplier.
        gain: Num,
        /// Seed.
        seed: Option<i64>,
    },
    /// `Identity(gain=1.0)` (2-D only)
    Identity {
        /// Multiplier.
        gain: Num,
    },
}

/// Every name `keras.initializers.get` resolves for the initializers strata implements.
pub const INITIALIZER_NAMES: &[&str] = &[
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "IdentityInitializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "OrthogonalInitializer",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "constant",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "one",
    "ones",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "zero",
    "zeros",
];

fn preset(class: &str) -> Option<(&'static str, f64, FanMode, Distribution)> {
    use Distribution::{TruncatedNormal as T, Uniform as U};
    use FanMode::{FanAvg, FanIn};
    Some(match class {
        "GlorotNormal" | "glorot_normal" => ("GlorotNormal", 1.0, FanAvg, T),
        "GlorotUniform" | "glorot_uniform" => ("GlorotUniform", 1.0, FanAvg, U),
        "HeNormal" | "he_normal" => ("HeNormal", 2.0, FanIn, T),
        "HeUniform" | "he_uniform" => ("HeUniform", 2.0, FanIn, U),
        "LecunNormal" | "lecun_normal" => ("LecunNormal", 1.0, FanIn, T),
        "LecunUniform" | "lecun_uniform" => ("LecunUniform", 1.0, FanIn, U),
        _ => return None,
    })
}

static NEXT_SEED: AtomicU64 = AtomicU64::new(0x5eed_5eed);

/// strata's seeded generator: xoshiro256** with splitmix64 seeding.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Standard normal restricted to [-2, 2] by redrawing.
    pub fn truncated_normal(&mut self) -> f64 {
        loop {
            let z = self.normal();
            if z.abs() <= 2.0 {
                return z;
            }
        }
    }
}

fn rng_for(seed: Option<i64>) -> Rng {
    match seed {
        Some(s) => Rng::new(s as u64),
        None => Rng::new(NEXT_SEED.fetch_add(0x9e37_79b9, Ordering::Relaxed)),
    }
}

impl Initializer {
    /// Resolves a name (`"glorot_uniform"`, `"HeNormal"`, `"zeros"`...) with defaults.
    pub fn get(name: &str) -> Result<Initializer> {
        Self::from_config(name, &Json::Null)
    }

    /// The Keras class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            Initializer::Zeros => "Zeros",
            Initializer::Ones => "Ones",
            Initializer::Constant { .. } => "Constant",
            Initializer::RandomNormal { .. } => "RandomNormal",
            Initializer::RandomUniform { .. } => "RandomUniform",
            Initializer::TruncatedNormal { .. } => "TruncatedNormal",
            Initializer::VarianceScaling { class, .. } => class,
            Initializer::Orthogonal { .. } => "Orthogonal",
            Initializer::Identity { .. } => "Identity",
        }
    }

    /// The distribution's parameters for `shape`, as Keras computes them: `(kind, a, b)` with
    /// kind "normal" (mean a, stddev b), "truncated_normal" (mean a, stddev b, cut at 2 b) or
    /// "uniform" (a..b). `None` for the deterministic and orthogonal initializers.
    pub fn distribution_for(&self, shape: &[usize]) -> Option<(&'static str, f64, f64)> {
        match self {
            Initializer::RandomNormal { mean, stddev, .. } => Some(("normal", mean.value, stddev.value)),
            Initializer::RandomUniform { minval, maxval, .. } => Some(("uniform", minval.value, maxval.value)),
            Initializer::TruncatedNormal { mean, stddev, .. } => Some(("truncated_normal", mean.value, stddev.value)),
            Initializer::VarianceScaling { scale, mode, distribution, .. } => {
                let (fi, fo) = compute_fans(shape);
                let s = scale.value
                    / match mode {
                        FanMode::FanIn => fi.max(1.0),
                        FanMode::FanOut => fo.max(1.0),
                        FanMode::FanAvg => ((fi + fo) / 2.0).max(1.0),
                    };
                Some(match distribution {
                    Distribution::TruncatedNormal => ("truncated_normal", 0.0, s.sqrt() / 0.879_625_661_034_239_8),
                    Distribution::UntruncatedNormal => ("normal", 0.0, s.sqrt()),
                    Distribution::Uniform => {
                        let l = (3.0 * s).sqrt();
                        ("uniform", -l, l)
                    }
                })
            }
            _ => None,
        }
    }

    /// Draws a tensor of `shape`.
    pub fn call(&self, shape: &[usize]) -> Result<Tensor> {
        let obj = self.class_name();
        let n = numel(obj, shape)?;
        if n > 1 << 31 {
            return Err(Error::invalid(obj, format!("shape {shape:?} has {n} elements, more than the 2^31 limit")));
        }
        let seed = match self {
            Initializer::RandomNormal { seed, .. }
            | Initializer::RandomUniform { seed, .. }
            | Initializer::TruncatedNormal { seed, .. }
            | Initializer::VarianceScaling { seed, .. }
            | Initializer::Orthogonal { seed, .. } => *seed,
            _ => None,
        };
        let data: Vec<f32> = match self {
            Initializer::Zeros => vec![0.0; n],
            Initializer::Ones => vec![1.0; n],
            Initializer::Constant { value } => vec![value.value as f32; n],
            Initializer::Identity { gain } => {
                let [r, c] = shape else {
                    return Err(Error::invalid(
                        obj,
                        format!("the identity initializer only makes 2-D matrices, found shape {shape:?}"),
                    ));
                };
                (0..n).map(|i| if i / c == i % c && i / c < *r { gain.value as f32 } else { 0.0 }).collect()
            }
            Initializer::Orthogonal { gain, .. } => {
                if shape.len() < 2 {
                    return Err(Error::invalid(
                        obj,
                        format!("the tensor to initialize must be at least two-dimensional, found shape {shape:?}"),
                    ));
                }
                orthogonal(shape, gain.value, &mut rng_for(seed))
            }
            _ => {
                let Some((kind, a, b)) = self.distribution_for(shape) else { return Ok(Tensor::zeros(shape)?) };
                let mut rng = rng_for(seed);
                (0..n)
                    .map(|_| {
                        (match kind {
                            "uniform" => a + (b - a) * rng.uniform(),
                            "normal" => a + b * rng.normal(),
                            _ => a + b * rng.truncated_normal(),
                        }) as f32
                    })
                    .collect()
            }
        };
        Ok(Tensor::from_vec(shape, data)?)
    }

    /// Keras's `get_config()` (keys in Keras's order; `Identity` writes `{}` as Keras does).
    pub fn get_config(&self) -> Json {
        let seed = |s: &Option<i64>| s.map_or(Json::Null, Json::from);
        let mut o = Object::new();
        match self {
            Initializer::Zeros | Initializer::Ones | Initializer::Identity { .. } => {}
            Initializer::Constant { value } => {
                o.insert("value", value.to_json());
            }
            Initializer::RandomNormal { mean, stddev, seed: s }
            | Initializer::TruncatedNormal { mean, stddev, seed: s } => {
                o.insert("seed", seed(s));
                o.insert("mean", mean.to_json());
                o.insert("stddev", stddev.to_json());
            }
            Initializer::RandomUniform { minval, maxval, seed: s } => {
                o.insert("seed", seed(s));
                o.insert("minval", minval.to_json());
                o.insert("maxval", maxval.to_json());
            }
            Initializer::VarianceScaling { class, scale, mode, distribution, seed: s } => {
                o.insert("seed", seed(s));
                if *class == "VarianceScaling" {
                    o.insert("scale", scale.to_json());
                    o.insert(
                        "mode",
                        Json::from(match mode {
                            FanMode::FanIn => "fan_in",
                            FanMode::FanOut => "fan_out",
                            FanMode::FanAvg => "fan_avg",
                        }),
                    );
                    o.insert(
                        "distribution",
                        Json::from(match distribution {
                            Distribution::TruncatedNormal => "truncated_normal",
                            Distribution::UntruncatedNormal => "untruncated_normal",
                            Distribution::Uniform => "uniform",
                        }),
                    );
                }
                o.insert("input_axes", Json::Null);
                o.insert("output_axes", Json::Null);
            }
            Initializer::Orthogonal { gain, seed: s } => {
                o.insert("seed", seed(s));
                o.insert("gain", gain.to_json());
            }
        }
        Json::Object(o)
    }

    /// The serialized form (`{"module": "keras.initializers", ...}`).
    pub fn serialize(&self) -> Json {
        serialized("keras.initializers", self.class_name(), self.get_config())
    }

    /// Parses a serialized initializer or a name.
    pub fn deserialize(value: &Json) -> Result<Initializer> {
        let (class, cfg) = split_serialized("initializer", value)?;
        Self::from_config(class, cfg)
    }

    /// Builds an initializer from a class name (or any Keras alias) and its config.
    pub fn from_config(class_name: &str, cfg: &Json) -> Result<Initializer> {
        let mut r = Reader::new(class_name, cfg)?;
        let init = if let Some((class, scale, mode, distribution)) = preset(class_name) {
            Initializer::VarianceScaling {
                class,
                scale: Num::float(scale),
                mode,
                distribution,
                seed: r.opt_int("seed")?,
            }
        } else {
            match class_name {
                "Zeros" | "zeros" | "zero" => Initializer::Zeros,
                "Ones" | "ones" | "one" => Initializer::Ones,
                "Constant" | "constant" => Initializer::Constant { value: r.num("value", Num::float(0.0))? },
                "RandomNormal" | "random_normal" | "normal" => Initializer::RandomNormal {
                    seed: r.opt_int("seed")?,
                    mean: r.num("mean", Num::float(0.0))?,
                    stddev: r.num("stddev", Num::float(0.05))?,
                },
                "TruncatedNormal" | "truncated_normal" => Initializer::TruncatedNormal {
                    seed: r.opt_int("seed")?,
                    mean: r.num("mean", Num::float(0.0))?,
                    stddev: r.num("stddev", Num::float(0.05))?,
                },
                "RandomUniform" | "random_uniform" | "uniform" => Initializer::RandomUniform {
                    seed: r.opt_int("seed")?,
                    minval: r.num("minval", Num::float(-0.05))?,
                    maxval: r.num("maxval", Num::float(0.05))?,
                },
                "VarianceScaling" | "variance_scaling" => {
                    let scale = r.num("scale", Num::float(1.0))?;
                    if scale.value <= 0.0 {
                        return Err(r.err("scale", format!("must be a positive float, found {}", scale.value)));
                    }
                    let mode = match r.str("mode", "fan_in")? {
                        "fan_in" => FanMode::FanIn,
                        "fan_out" => FanMode::FanOut,
                        "fan_avg" => FanMode::FanAvg,
                        other => {
                            return Err(r.err("mode", format!("must be fan_in, fan_out or fan_avg, found {other:?}")));
                        }
                    };
                    let distribution = match r.str("distribution", "truncated_normal")?.to_ascii_lowercase().as_str() {
                        "truncated_normal" | "normal" => Distribution::TruncatedNormal,
                        "untruncated_normal" => Distribution::UntruncatedNormal,
                        "uniform" => Distribution::Uniform,
                        other => {
                            return Err(r.err(
                                "distribution",
                                format!("must be uniform, truncated_normal or untruncated_normal, found {other:?}"),
                            ));
                        }
                    };
                    Initializer::VarianceScaling {
                        class: "VarianceScaling",
                        scale,
                        mode,
                        distribution,
                        seed: r.opt_int("seed")?,
                    }
                }
                "Orthogonal" | "orthogonal" | "OrthogonalInitializer" => {
                    Initializer::Orthogonal { seed: r.opt_int("seed")?, gain: r.num("gain", Num::float(1.0))? }
                }
                "Identity" | "identity" | "IdentityInitializer" => {
                    Initializer::Identity { gain: r.num("gain", Num::float(1.0))? }
                }
                other => {
                    return Err(Error::UnknownName {
                        kind: "initializer",
                        name: other.into(),
                        known: INITIALIZER_NAMES.to_vec(),
                    });
                }
            }
        };
        for axes in ["input_axes", "output_axes"] {
            let key: &'static str = if axes == "input_axes" { "input_axes" } else { "output_axes" };
            if r.has(key) {
                return Err(Error::Unsupported {
                    object: class_name.into(),
                    option: key.into(),
                    why: "custom fan axes are not implemented; the default fan computation is used only when both are null".into(),
                });
            }
        }
        r.finish()?;
        Ok(init)
    }
}

/// `gain * q` where `q` comes from the QR of a normal (max(r,c), min(r,c)) matrix, signs fixed
/// so `diag(r) > 0` (what modified Gram-Schmidt yields directly), transposed when rows < cols.
fn orthogonal(shape: &[usize], gain: f64, rng: &mut Rng) -> Vec<f32> {
    let cols = *shape.last().unwrap_or(&1);
    let rows: usize = shape[..shape.len() - 1].iter().product();
    let (m, n) = (rows.max(cols), rows.min(cols));
    // Column-major columns of the m x n matrix.
    let mut q: Vec<Vec<f64>> = (0..n).map(|_| (0..m).map(|_| rng.normal()).collect()).collect();
    for j in 0..n {
        for k in 0..j {
            let (head, tail) = q.split_at_mut(j);
            let dot: f64 = head[k].iter().zip(&tail[0]).map(|(a, b)| a * b).sum();
            tail[0].iter_mut().zip(&head[k]).for_each(|(x, y)| *x -= dot * y);
        }
        let norm = q[j].iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 0.0 {
            q[j].iter_mut().for_each(|x| *x /= norm);
        }
    }
    let mut out = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            // q is m x n; the result is rows x cols (q itself, or its transpose).
            let v = if rows >= cols { q[c][r] } else { q[r][c] };
            out[r * cols + c] = (gain * v) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_initializer_names_the_known_ones() {
        let e = Initializer::get("xavier").unwrap_err().to_string();
        assert!(e.starts_with("unknown initializer `xavier`; known names: Constant, GlorotNormal"), "{e}");
    }

    #[test]
    fn seeded_draws_repeat() {
        let i = Initializer::from_config("RandomNormal", &Json::object([("seed", Json::from(7i64))])).unwrap();
        assert_eq!(i.call(&[5, 3]).unwrap().to_vec(), i.call(&[5, 3]).unwrap().to_vec());
    }

    #[test]
    fn identity_needs_a_matrix() {
        let e = Initializer::get("identity").unwrap().call(&[2, 2, 2]).unwrap_err().to_string();
        assert!(e.contains("only makes 2-D matrices"), "{e}");
    }
}
