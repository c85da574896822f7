//! Open any Keras model file: the kind comes from the bytes, the result is one [`ModelFile`]
//! whatever the format (`.keras` archive or directory, legacy full-model `.h5`, legacy or
//! Keras 3 weights-only `.h5`, or `model.to_json()` JSON).

use std::path::{Path, PathBuf};

use strata_hdf5::H5File;

use crate::archive::{KerasArchive, WeightsFormat};
use crate::config::ModelConfig;
use crate::detect::{self, Detected};
use crate::error::{Error, Location, Result};
use crate::json::Json;
use crate::limits::Limits;
use crate::weights::{self, WeightStore};

/// The kinds of file strata reads, named as `strata inspect --json` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// A `.keras` v3 zip archive (or its unzipped directory form).
    KerasV3,
    /// A legacy full-model HDF5 file (`model.save("x.h5")`, Keras 1 to 3).
    LegacyH5Model,
    /// A legacy weights-only HDF5 file (`save_weights("x.h5")` before Keras 3).
    LegacyH5Weights,
    /// A Keras 3 weights-only file (`save_weights("x.weights.h5")`).
    WeightsH5V3,
    /// An architecture-only JSON file (`model.to_json()`).
    ModelJson,
}

impl FileFormat {
    /// The stable name used in JSON output.
    pub fn as_str(&self) -> &'static str {
        match self {
            FileFormat::KerasV3 => "keras_v3",
            FileFormat::LegacyH5Model => "legacy_h5_model",
            FileFormat::LegacyH5Weights => "legacy_h5_weights",
            FileFormat::WeightsH5V3 => "weights_h5_v3",
            FileFormat::ModelJson => "model_json",
        }
    }
    /// A phrase for people.
    pub fn describe(&self) -> &'static str {
        match self {
            FileFormat::KerasV3 => "Keras v3 archive (.keras)",
            FileFormat::LegacyH5Model => "legacy full-model HDF5 (.h5)",
            FileFormat::LegacyH5Weights => "legacy weights-only HDF5 (.h5)",
            FileFormat::WeightsH5V3 => "Keras 3 weights-only HDF5 (.weights.h5)",
            FileFormat::ModelJson => "model architecture JSON (to_json)",
        }
    }
}

/// Everything one model file holds, parsed but not interpreted: no layer is built and nothing
/// in the file runs.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Which format the bytes are.
    pub format: FileFormat,
    /// The Keras version that wrote it, when recorded (`metadata.json` or the `keras_version` attribute).
    pub keras_version: Option<String>,
    /// The backend that wrote it, when recorded (legacy `.h5` only).
    pub backend: Option<String>,
    /// When it was saved, when recorded (`.keras` only).
    pub date_saved: Option<String>,
    /// The whole model config as stored (`config.json`, `model_config`, or the JSON file).
    pub config_json: Option<Json>,
    /// The config, typed.
    pub config: Option<ModelConfig>,
    /// The training config: legacy `training_config`, or Keras 3's `compile_config`.
    pub training_config: Option<Json>,
    /// The weights, when the file has any.
    pub weights: Option<WeightStore>,
    /// Things a user should know that are not errors (e.g. HDF5 bytes behind a `.keras` name).
    pub notes: Vec<String>,
    /// Names of `.keras` archive members, in archive order.
    pub members: Vec<String>,
}

fn io_err(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io { action, path: path.to_path_buf(), source }
}

fn h5_err(path: &Path, member: Option<&str>, source: strata_hdf5::Error) -> Error {
    let mut location = Location::file(path);
    if let Some(m) = member {
        location = location.with_member(m);
    }
    Error::Hdf5 { location, source }
}

fn parse_json(bytes: &[u8], location: Location, limits: &Limits) -> Result<Json> {
    Json::parse(bytes, &limits.json()).map_err(|source| Error::Json { location, source })
}

fn parse_config(json: &Json, location: Location) -> Result<ModelConfig> {
    ModelConfig::parse(json).map_err(|source| Error::Config { location, source })
}

impl ModelFile {
    /// Opens `path` with the default [`Limits`].
    pub fn open(path: impl AsRef<Path>) -> Result<ModelFile> {
        Self::open_with(path.as_ref(), &Limits::default())
    }

    /// Opens `path`, deciding the format from its bytes (never its extension).
    pub fn open_with(path: &Path, limits: &Limits) -> Result<ModelFile> {
        let meta = std::fs::metadata(path).map_err(|e| io_err("open", path, e))?;
        if meta.is_dir() {
            return Self::open_dir(path, limits);
        }
        let kind = detect::detect_path(path).map_err(|source| Error::Detect { source })?;
        let ext = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
        let mut notes = Vec::new();
        match kind {
            Detected::Zip | Detected::EmptyZip | Detected::TruncatedZip { .. } => {
                if !ext.ends_with(".keras") && !ext.ends_with(".zip") {
                    notes.push(format!("the file is a zip archive although its name does not end in `.keras`; read as the .keras archive it is"));
                }
                let archive = KerasArchive::open(path, limits)
                    .map_err(|source| Error::Archive { location: Location::file(path), source })?;
                let mut mf = Self::from_archive(path, &archive, limits)?;
                mf.notes.splice(0..0, notes);
                Ok(mf)
            }
            Detected::Hdf5 { .. } => {
                if ext.ends_with(".keras") {
                    notes.push("HDF5 bytes behind a `.keras` name: this is a legacy HDF5 file, not a Keras v3 zip archive; read as the HDF5 it is (rename it to `.h5` so that Keras accepts it)".to_string());
                }
                let file = H5File::open(path, &limits.hdf5).map_err(|e| h5_err(path, None, e))?;
                let mut mf = Self::from_hdf5(path, file, limits)?;
                mf.notes.splice(0..0, notes);
                Ok(mf)
            }
            Detected::Json => {
                let bytes = read_bounded(path, limits.max_json_bytes)?;
                let json = parse_json(&bytes, Location::file(path), limits)?;
                let config = parse_config(&json, Location::file(path))?;
                Ok(ModelFile {
                    path: path.to_path_buf(),
                    format: FileFormat::ModelJson,
                    keras_version: json.get("keras_version").and_then(|v| v.as_str()).map(str::to_string),
                    backend: json.get("backend").and_then(|v| v.as_str()).map(str::to_string),
                    date_saved: None,
                    training_config: None,
                    config_json: Some(json),
                    config: Some(config),
                    weights: None,
                    notes,
                    members: Vec::new(),
                })
            }
            other => Err(match other.refusal(path) {
                Some(source) => Error::Detect { source },
                None => Error::NotAModel {
                    path: path.to_path_buf(),
                    why: format!("this is not a Keras model file (it reads as {})", other.name()),
                    help: "strata reads .keras archives, .h5 files written by Keras, .weights.h5 files and model.to_json() JSON".into(),
                },
            }),
        }
    }

    fn open_dir(path: &Path, limits: &Limits) -> Result<ModelFile> {
        let archive = KerasArchive::open(path, limits)
            .map_err(|source| Error::Archive { location: Location::file(path), source })?;
        Self::from_archive(path, &archive, limits)
    }

    /// Builds a [`ModelFile`] from an opened `.keras` archive.
    pub fn from_archive(path: &Path, archive: &KerasArchive, limits: &Limits) -> Result<ModelFile> {
        let arch = |source| Error::Archive { location: Location::file(path), source };
        let members: Vec<String> = archive.members().iter().map(|m| m.name.clone()).collect();
        let mut notes = Vec::new();
        let (keras_version, date_saved) = match archive.metadata().map_err(arch)? {
            Some(bytes) => {
                let m = parse_json(&bytes, Location::file(path).with_member("metadata.json"), limits)?;
                (
                    m.get("keras_version").and_then(|v| v.as_str()).map(str::to_string),
                    m.get("date_saved").and_then(|v| v.as_str()).map(str::to_string),
                )
            }
            None => {
                notes.push("the archive has no metadata.json (Keras always writes one; the file may have been re-packed by another tool)".to_string());
                (None, None)
            }
        };
        let cfg_bytes = archive.config_bytes().map_err(arch)?;
        let cfg_loc = Location::file(path).with_member("config.json");
        let json = parse_json(&cfg_bytes, cfg_loc.clone(), limits)?;
        let config = parse_config(&json, cfg_loc)?;
        let training_config = json.get("compile_config").filter(|c| !c.is_null()).cloned();
        let weights = match archive.weights_format() {
            WeightsFormat::H5 => {
                // an uncompressed member of an archive on disk is mapped where it lies, without
                // a copy (its CRC is not checked on this path; the HDF5 structure still is)
                let in_place =
                    match (archive.weights_range(), archive.is_directory_form(), archive.as_bytes(), archive.path()) {
                        (Some(r), false, None, Some(p)) => Some((p.to_path_buf(), r)),
                        _ => None,
                    };
                let file = match (archive.weights_path(), in_place) {
                    (Some(p), _) => H5File::open(&p, &limits.hdf5),
                    (None, Some((p, r))) => H5File::open_range(&p, r.start, r.end - r.start, &limits.hdf5),
                    (None, None) => {
                        H5File::from_bytes(archive.weights_bytes().map_err(arch)?.into_owned(), &limits.hdf5)
                    }
                }
                .map_err(|e| h5_err(path, Some("model.weights.h5"), e))?;
                Some(WeightStore::open(&file).map_err(|e| with_member(e, path, "model.weights.h5"))?)
            }
            WeightsFormat::Npz => {
                notes.push("weights are stored as model.weights.npz (pickled object arrays); strata never unpickles, and Keras 3.15 cannot reload such files either".to_string());
                None
            }
            _ => {
                notes.push("the archive has no model.weights.h5".to_string());
                None
            }
        };
        Ok(ModelFile {
            path: path.to_path_buf(),
            format: FileFormat::KerasV3,
            keras_version,
            backend: None,
            date_saved,
            config_json: Some(json),
            config: Some(config),
            training_config,
            weights,
            notes,
            members,
        })
    }

    /// Builds a [`ModelFile`] from an opened HDF5 file: a legacy full model, a legacy weights
    /// file or a Keras 3 weights file.
    pub fn from_hdf5(path: &Path, file: H5File, limits: &Limits) -> Result<ModelFile> {
        let root_attr = |name: &str| weights::string_attr(&file, "/", name).map_err(|e| relocate(e, path));
        let keras_version = root_attr("keras_version")?;
        let backend = root_attr("backend")?;
        let model_config = root_attr("model_config")?;
        if let Some(text) = model_config {
            let loc = Location::file(path).with_hdf5_path("/@model_config");
            let json = parse_json(text.as_bytes(), loc.clone(), limits)?;
            let config = parse_config(&json, loc)?;
            let training_config = match root_attr("training_config")? {
                Some(t) => {
                    Some(parse_json(t.as_bytes(), Location::file(path).with_hdf5_path("/@training_config"), limits)?)
                }
                None => None,
            };
            let members = file.root().members().map_err(|e| h5_err(path, None, e))?;
            let weights = if members.iter().any(|m| m.name == "model_weights") {
                Some(weights::read_legacy(&file, "/model_weights").map_err(|e| relocate(e, path))?)
            } else {
                None
            };
            // model_weights/keras_version is where Keras 1 wrote it
            let keras_version = match keras_version {
                Some(v) => Some(v),
                None if weights.is_some() => {
                    weights::string_attr(&file, "/model_weights", "keras_version").unwrap_or(None)
                }
                None => None,
            };
            let backend = match backend {
                Some(b) => Some(b),
                None if weights.is_some() => weights::string_attr(&file, "/model_weights", "backend").unwrap_or(None),
                None => None,
            };
            return Ok(ModelFile {
                path: path.to_path_buf(),
                format: FileFormat::LegacyH5Model,
                keras_version,
                backend,
                date_saved: None,
                config_json: Some(json),
                config: Some(config),
                training_config,
                weights,
                notes: Vec::new(),
                members: Vec::new(),
            });
        }
        let store = WeightStore::open(&file).map_err(|e| relocate(e, path))?;
        let format = match store.layout {
            weights::Layout::Legacy => FileFormat::LegacyH5Weights,
            weights::Layout::Keras3 => FileFormat::WeightsH5V3,
        };
        Ok(ModelFile {
            path: path.to_path_buf(),
            format,
            keras_version,
            backend,
            date_saved: None,
            config_json: None,
            config: None,
            training_config: None,
            weights: Some(store),
            notes: Vec::new(),
            members: Vec::new(),
        })
    }
}

/// Puts the file name on an error raised without one.
fn relocate(e: Error, path: &Path) -> Error {
    match e {
        Error::Hdf5 { mut location, source } => {
            location.file.get_or_insert_with(|| path.to_path_buf());
            Error::Hdf5 { location, source }
        }
        Error::Invalid { mut location, what, help } => {
            location.file.get_or_insert_with(|| path.to_path_buf());
            Error::Invalid { location, what, help }
        }
        other => other,
    }
}

fn with_member(e: Error, path: &Path, member: &str) -> Error {
    match relocate(e, path) {
        Error::Hdf5 { mut location, source } => {
            location.member.get_or_insert_with(|| member.to_string());
            Error::Hdf5 { location, source }
        }
        Error::Invalid { mut location, what, help } => {
            location.member.get_or_insert_with(|| member.to_string());
            Error::Invalid { location, what, help }
        }
        other => other,
    }
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).map_err(|e| io_err("read", path, e))?.len();
    if len > max {
        return Err(Error::Invalid {
            location: Location::file(path),
            what: format!("the JSON file is {len} bytes, over the limit of {max} bytes"),
            help: "raise `Limits::max_json_bytes` if the file is trusted".into(),
        });
    }
    std::fs::read(path).map_err(|e| io_err("read", path, e))
}
