//! Weight constraints `MaxNorm`, `NonNeg`, `UnitNorm`, `MinMaxNorm`
//! (`keras/src/constraints/constraints.py`), applied after each optimizer step. Norms are L2 over
//! `axis` (default 0, an int or a list), with `epsilon = 1e-7` added to the denominator.

use crate::config::{Num, Reader, serialized, split_serialized};
use crate::error::{Error, Result};
use crate::reduce::{axis as norm_axis, group_map};
use strata_format::json::{Json, Object};
use strata_tensor::Tensor;

/// Axis spec as Keras keeps it: an int or a list of ints.
#[derive(Clone, Debug, PartialEq)]
pub enum Axis {
    /// One axis.
    One(i64),
    /// Several axes.
    Many(Vec<i64>),
}

impl Axis {
    fn to_json(&self) -> Json {
        match self {
            Axis::One(a) => Json::from(*a),
            Axis::Many(v) => Json::array(v.iter().map(|&a| Json::from(a))),
        }
    }
    fn resolve(&self, obj: &str, rank: usize) -> Result<Vec<usize>> {
        match self {
            Axis::One(a) => Ok(vec![norm_axis(obj, *a, rank)?]),
            Axis::Many(v) => v.iter().map(|&a| norm_axis(obj, a, rank)).collect(),
        }
    }
}

/// A Keras weight constraint.
#[derive(Clone, Debug, PartialEq)]
pub enum Constraint {
    /// `MaxNorm(max_value=2, axis=0)`
    MaxNorm {
        /// Maximum norm.
        max_value: Num,
        /// Norm axes.
        axis: Axis,
    },
    /// `NonNeg()`
    NonNeg,
    /// `UnitNorm(axis=0)`
    UnitNorm {
        /// Norm axes.
        axis: Axis,
    },
    /// `MinMaxNorm(min_value=0.0, max_value=1.0, rate=1.0, axis=0)`
    MinMaxNorm {
        /// Minimum norm.
        min_value: Num,
        /// Maximum norm.
        max_value: Num,
        /// Interpolation towards the clipped norm.
        rate: Num,
        /// Norm axes.
        axis: Axis,
    },
}

/// Names `keras.constraints.get` resolves.
pub const CONSTRAINT_NAMES: &[&str] =
    &["MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "max_norm", "min_max_norm", "non_neg", "unit_norm"];

impl Constraint {
    /// The Keras class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            Constraint::MaxNorm { .. } => "MaxNorm",
            Constraint::NonNeg => "NonNeg",
            Constraint::UnitNorm { .. } => "UnitNorm",
            Constraint::MinMaxNorm { .. } => "MinMaxNorm",
        }
    }

    /// The constrained weights.
    pub fn call(&self, w: &Tensor) -> Result<Tensor> {
        let obj = self.class_name();
        let eps = f64::from(1e-7f32);
        let axis = match self {
            Constraint::NonNeg => {
                return Ok(Tensor::from_vec(w.shape(), w.as_slice().iter().map(|&x| x.max(0.0)).collect())?);
            }
            Constraint::MaxNorm { axis, .. } | Constraint::UnitNorm { axis } | Constraint::MinMaxNorm { axis, .. } => {
                axis
            }
        };
        let axes = axis.resolve(obj, w.rank())?;
        let (map, groups) = group_map(w.shape(), &axes);
        let mut sq = vec![0.0f64; groups];
        for (&g, &x) in map.iter().zip(w.as_slice()) {
            sq[g] += f64::from(x) * f64::from(x);
        }
        let factor: Vec<f64> = sq
            .iter()
            .map(|&s| {
                let n = s.sqrt();
                let desired = match self {
                    Constraint::MaxNorm { max_value, .. } => n.clamp(0.0, max_value.value),
                    Constraint::UnitNorm { .. } => 1.0,
                    Constraint::MinMaxNorm { min_value, max_value, rate, .. } => {
                        rate.value * n.clamp(min_value.value, max_value.value) + (1.0 - rate.value) * n
                    }
                    Constraint::NonNeg => n,
                };
                desired / (eps + n)
            })
            .collect();
        let out = map.iter().zip(w.as_slice()).map(|(&g, &x)| (f64::from(x) * factor[g]) as f32).collect();
        Ok(Tensor::from_vec(w.shape(), out)?)
    }

    /// Keras's `get_config()`.
    pub fn get_config(&self) -> Json {
        let mut o = Object::new();
        match self {
            Constraint::NonNeg => {}
            Constraint::MaxNorm { max_value, axis } => {
                o.insert("max_value", max_value.to_json());
                o.insert("axis", axis.to_json());
            }
            Constraint::UnitNorm { axis } => {
                o.insert("axis", axis.to_json());
            }
            Constraint::MinMaxNorm { min_value, max_value, rate, axis } => {
                o.insert("min_value", min_value.to_json());
                o.insert("max_value", max_value.to_json());
                o.insert("rate", rate.to_json());
                o.insert("axis", axis.to_json());
            }
        }
        Json::Object(o)
    }

    /// The serialized form (`{"module": "keras.constraints", ...}`).
    pub fn serialize(&self) -> Json {
        serialized("keras.constraints", self.class_name(), self.get_config())
    }

    /// Parses a serialized constraint or a name.
    pub fn deserialize(value: &Json) -> Result<Constraint> {
        let (class, cfg) = split_serialized("constraint", value)?;
        Self::from_config(class, cfg)
    }

    /// Builds a constraint from its class name (or alias) and config.
    pub fn from_config(class_name: &str, cfg: &Json) -> Result<Constraint> {
        let mut r = Reader::new(class_name, cfg)?;
        let axis = |r: &mut Reader| -> Result<Axis> {
            match r.raw("axis") {
                None => Ok(Axis::One(0)),
                Some(Json::Number(n)) => {
                    n.as_i64().map(Axis::One).ok_or_else(|| r.err("axis", "must be an integer or a list of integers"))
                }
                Some(Json::Array(items)) => items
                    .iter()
                    .map(Json::as_i64)
                    .collect::<Option<Vec<_>>>()
                    .map(Axis::Many)
                    .ok_or_else(|| r.err("axis", "must be an integer or a list of integers")),
                Some(other) => Err(r.err("axis", format!("must be an integer or a list, found {}", other.kind()))),
            }
        };
        let c = match class_name {
            "MaxNorm" | "max_norm" => {
                Constraint::MaxNorm { max_value: r.num("max_value", Num::int(2))?, axis: axis(&mut r)? }
            }
            "NonNeg" | "non_neg" => Constraint::NonNeg,
            "UnitNorm" | "unit_norm" => Constraint::UnitNorm { axis: axis(&mut r)? },
            "MinMaxNorm" | "min_max_norm" => Constraint::MinMaxNorm {
                min_value: r.num("min_value", Num::float(0.0))?,
                max_value: r.num("max_value", Num::float(1.0))?,
                rate: r.num("rate", Num::float(1.0))?,
                axis: axis(&mut r)?,
            },
            other => {
                return Err(Error::UnknownName {
                    kind: "constraint",
                    name: other.into(),
                    known: CONSTRAINT_NAMES.to_vec(),
                });
            }
        };
        r.finish()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_keras() {
        assert_eq!(
            Constraint::from_config("MaxNorm", &Json::Null).unwrap().get_config().to_string(),
            r#"{"max_value": 2, "axis": 0}"#
        );
    }

    #[test]
    fn axis_out_of_range_is_an_error() {
        let c = Constraint::from_config("UnitNorm", &Json::object([("axis", Json::from(3i64))])).unwrap();
        let e = c.call(&Tensor::zeros(&[2, 2]).unwrap()).unwrap_err().to_string();
        assert_eq!(e, "UnitNorm: axis 3 is out of range for rank 2");
    }
}
