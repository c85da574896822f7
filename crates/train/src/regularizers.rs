//! Weight regularizers `L1`, `L2`, `L1L2` (`keras/src/regularizers/regularizers.py`): the
//! penalty `l1 * sum(|x|) + l2 * sum(x^2)` and its gradient `l1 * sign(x) + 2 * l2 * x`.

use crate::config::{Reader, serialized, split_serialized};
use crate::error::{Error, Result};
use strata_format::json::{Json, Object};
use strata_tensor::Tensor;

/// A Keras regularizer; factors are stored as Keras stores them (`L1` keeps its factor as a
/// float32 tensor, so its config shows the float32 value).
#[derive(Clone, Debug, PartialEq)]
pub enum Regularizer {
    /// `L1(l1=0.01)`
    L1 {
        /// Factor.
        l1: f64,
    },
    /// `L2(l2=0.01)`
    L2 {
        /// Factor.
        l2: f64,
    },
    /// `L1L2(l1=0.0, l2=0.0)`
    L1L2 {
        /// L1 factor.
        l1: f64,
        /// L2 factor.
        l2: f64,
    },
}

/// Names `keras.regularizers.get` resolves.
pub const REGULARIZER_NAMES: &[&str] = &["L1", "L1L2", "L2", "l1", "l1_l2", "l2"];

fn check(name: &'static str, v: f64) -> Result<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::invalid(
            name,
            format!("invalid value for argument {name}: expected a non-negative float, found {v}"),
        ))
    }
}

impl Regularizer {
    /// `L1(l1)`.
    pub fn l1(l1: f64) -> Result<Regularizer> {
        // Keras keeps L1's factor as a float32 tensor.
        Ok(Regularizer::L1 { l1: f64::from(check("l1", l1)? as f32) })
    }
    /// `L2(l2)`.
    pub fn l2(l2: f64) -> Result<Regularizer> {
        Ok(Regularizer::L2 { l2: check("l2", l2)? })
    }
    /// `L1L2(l1, l2)`.
    pub fn l1_l2(l1: f64, l2: f64) -> Result<Regularizer> {
        Ok(Regularizer::L1L2 { l1: check("l1", l1)?, l2: check("l2", l2)? })
    }

    fn factors(&self) -> (f64, f64) {
        match *self {
            Regularizer::L1 { l1 } => (l1, 0.0),
            Regularizer::L2 { l2 } => (0.0, l2),
            Regularizer::L1L2 { l1, l2 } => (l1, l2),
        }
    }

    /// The penalty for `x`.
    pub fn call(&self, x: &Tensor) -> f32 {
        let (l1, l2) = self.factors();
        let (mut a, mut s) = (0.0f64, 0.0f64);
        for &v in x.as_slice() {
            let v = f64::from(v);
            a += v.abs();
            s += v * v;
        }
        (l1 * a + l2 * s) as f32
    }

    /// d penalty / d x.
    pub fn grad(&self, x: &Tensor) -> Result<Tensor> {
        let (l1, l2) = self.factors();
        let g = x
            .as_slice()
            .iter()
            .map(|&v| {
                let v = f64::from(v);
                let s = if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                (l1 * s + 2.0 * l2 * v) as f32
            })
            .collect();
        Ok(Tensor::from_vec(x.shape(), g)?)
    }

    /// The Keras class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            Regularizer::L1 { .. } => "L1",
            Regularizer::L2 { .. } => "L2",
            Regularizer::L1L2 { .. } => "L1L2",
        }
    }

    /// Keras's `get_config()`.
    pub fn get_config(&self) -> Json {
        let mut o = Object::new();
        match *self {
            Regularizer::L1 { l1 } => {
                o.insert("l1", Json::from(l1));
            }
            Regularizer::L2 { l2 } => {
                o.insert("l2", Json::from(l2));
            }
            Regularizer::L1L2 { l1, l2 } => {
                o.insert("l1", Json::from(l1));
                o.insert("l2", Json::from(l2));
            }
        }
        Json::Object(o)
    }

    /// The serialized form (`{"module": "keras.regularizers", ...}`).
    pub fn serialize(&self) -> Json {
        serialized("keras.regularizers", self.class_name(), self.get_config())
    }

    /// Parses a serialized regularizer or a name.
    pub fn deserialize(value: &Json) -> Result<Regularizer> {
        let (class, cfg) = split_serialized("regularizer", value)?;
        Self::from_config(class, cfg)
    }

    /// Builds a regularizer from its class name (or alias) and config.
    pub fn from_config(class_name: &str, cfg: &Json) -> Result<Regularizer> {
        let mut r = Reader::new(class_name, cfg)?;
        let reg = match class_name {
            "L1" | "l1" => Regularizer::l1(r.f64("l1", 0.01)?)?,
            "L2" | "l2" => Regularizer::l2(r.f64("l2", 0.01)?)?,
            "L1L2" | "l1_l2" => Regularizer::l1_l2(r.f64("l1", 0.0)?, r.f64("l2", 0.0)?)?,
            other => {
                return Err(Error::UnknownName {
                    kind: "regularizer",
                    name: other.into(),
                    known: REGULARIZER_NAMES.to_vec(),
                });
            }
        };
        r.finish()?;
        Ok(reg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_factor_is_refused() {
        let e = Regularizer::l2(-1.0).unwrap_err().to_string();
        assert_eq!(e, "l2: invalid value for argument l2: expected a non-negative float, found -1");
    }
}
