//! `model.save(path)` / `model.save_weights(path)`: `.keras`, legacy `.h5`, `.weights.h5`,
//! written atomically by `strata_format::save` (temp file in the same directory, fsync, rename).

use std::path::Path;

use strata_format::convert::Target;
use strata_format::save::{SaveLayer, SaveModel, SaveTensor, save_model};
use strata_hdf5::DType as H5;
use strata_tensor::{DType, Tensor};

use crate::error::{Error, Result};
use crate::model::Model;

fn save_tensor(name: &str, t: &Tensor) -> Result<SaveTensor> {
    let (h5, dtype) = match t.dtype() {
        DType::F16 => (H5::F16, DType::F16),
        DType::BF16 => (H5::BF16, DType::BF16),
        DType::F64 => (H5::F64, DType::F64),
        DType::I32 => (H5::I32, DType::I32),
        DType::I64 => (H5::I64, DType::I64),
        _ => (H5::F32, DType::F32),
    };
    Ok(SaveTensor {
        name: name.to_string(),
        dtype: h5,
        shape: t.shape().iter().map(|&d| d as u64).collect(),
        data: t.to_le_bytes(dtype)?,
    })
}

impl Model {
    fn save_request(
        &self,
        with_optimizer: bool,
    ) -> Result<(strata_format::json::Json, Vec<SaveLayer>, Option<Vec<SaveTensor>>)> {
        let config = self.to_config_json();
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(SaveLayer {
                    path: l.path.clone(),
                    weights: l
                        .values
                        .iter()
                        .zip(&l.names)
                        .map(|(v, n)| save_tensor(n, v))
                        .collect::<Result<Vec<_>>>()?,
                    trainable: l.trainable.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let optimizer = if with_optimizer {
            let vars = self.optimizer_variables()?;
            if vars.is_empty() {
                None
            } else {
                Some(vars.iter().map(|(n, t)| save_tensor(n, t)).collect::<Result<Vec<_>>>()?)
            }
        } else {
            None
        };
        Ok((config, layers, optimizer))
    }

    /// Saves the whole model (`model.save(path)`): `.keras` or legacy `.h5` by extension, with
    /// the compile config and the optimizer state when compiled (Keras reads both back and
    /// resumes training). Atomic: on failure the previous file is intact.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let target = match Target::from_path(path) {
            Some(Target::WeightsH5) => return self.save_weights(path),
            Some(t) => t,
            None => {
                return Err(Error::Save {
                    path: path.to_path_buf(),
                    problem: "the file name has no model extension".into(),
                    help: "name it `.keras` (Keras 3's format) or `.h5` (the legacy format), as model.save requires"
                        .into(),
                });
            }
        };
        self.write(path, target, true)
    }

    /// Saves the weights only (`model.save_weights(path)`, a Keras 3 `.weights.h5`).
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if Target::from_path(path) != Some(Target::WeightsH5) {
            return Err(Error::Save {
                path: path.to_path_buf(),
                problem: "save_weights writes `.weights.h5` files".into(),
                help: "name the file `<name>.weights.h5`, as Keras 3 requires".into(),
            });
        }
        self.write(path, Target::WeightsH5, false)
    }

    fn write(&self, path: &Path, target: Target, with_optimizer: bool) -> Result<()> {
        let (config, layers, optimizer) = self.save_request(with_optimizer)?;
        let req = SaveModel { config: &config, layers, optimizer, training_config: None };
        save_model(&req, target, path).map_err(|e| Error::Save {
            path: path.to_path_buf(),
            problem: e.to_string(),
            help: "the previous file (if any) is unchanged; check the directory exists and is writable".into(),
        })?;
        Ok(())
    }
}
