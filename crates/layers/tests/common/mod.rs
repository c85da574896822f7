//! Shared by the parity tests: io.npz reading and running one fixture case against it.
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use strata_layers::{Model, unsupported_layers};
use strata_tensor::{DType, Tensor};
use strata_testkit::tol;

/// Parses one `.npy` member (format versions 1-3, little-endian, C order).
pub fn parse_npy(name: &str, bytes: &[u8]) -> Tensor {
    assert_eq!(bytes.get(..6), Some(&b"\x93NUMPY"[..]), "{name}: not an npy file");
    let major = bytes[6];
    let (hlen, start) = if major == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).expect("npy header is ASCII");
    let descr = header.split("'descr':").nth(1).and_then(|s| s.split('\'').nth(1)).expect("descr");
    assert!(header.contains("'fortran_order': False"), "{name}: fortran order unsupported");
    let shape_txt = header.split("'shape':").nth(1).and_then(|s| s.split('(').nth(1)).and_then(|s| s.split(')').next());
    let shape: Vec<usize> = shape_txt
        .expect("shape")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("shape entry"))
        .collect();
    let dtype = match descr {
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        "<f2" => DType::F16,
        "<i4" => DType::I32,
        "<i8" => DType::I64,
        other => panic!("{name}: npy dtype {other} not handled by the test"),
    };
    let data = &bytes[start + hlen..];
    // bool / other types are not expected in fixtures.
    Tensor::from_le_bytes(dtype, &shape, data).expect("npy data")
}

/// `(inputs, outputs)` of an `io.npz`, ordered by index.
pub fn read_npz(path: &Path) -> (Vec<Tensor>, Vec<Tensor>) {
    let f = std::fs::File::open(path).expect("open npz");
    let mut zip = zip::ZipArchive::new(f).expect("npz is a zip");
    let mut ins = Vec::new();
    let mut outs = Vec::new();
    let mut names: Vec<String> = zip.file_names().map(|r| r.expect("member name").into_owned()).collect();
    names.sort_by_key(|n| {
        let idx: usize = n.trim_end_matches(".npy").rsplit('_').next().and_then(|s| s.parse().ok()).unwrap_or(0);
        (n.starts_with("out_"), idx)
    });
    for n in names {
        let mut buf = Vec::new();
        zip.by_name(&n).expect("member").read_to_end(&mut buf).expect("read member");
        let t = parse_npy(&n, &buf);
        if n.starts_with("in_") {
            ins.push(t);
        } else if n.starts_with("out_") {
            outs.push(t);
        }
    }
    (ins, outs)
}

pub enum Outcome {
    Pass,
    Unsupported(Vec<String>),
    Fail(String),
}

pub fn run_case(dir: &Path, model_file: &str) -> Outcome {
    let file = match strata_format::model::ModelFile::open(dir.join(model_file)) {
        Ok(f) => f,
        Err(e) => return Outcome::Fail(format!("open: {e}")),
    };
    run_file(&file, &dir.join("io.npz"))
}

/// Runs an opened model file (config and weights) against the oracle's `io.npz`.
pub fn run_file(file: &strata_format::model::ModelFile, npz: &Path) -> Outcome {
    let Some(config) = file.config.as_ref() else { return Outcome::Fail("no config".into()) };
    let missing = unsupported_layers(config);
    if !missing.is_empty() {
        return Outcome::Unsupported(missing.iter().map(|u| u.class.clone()).collect());
    }
    let Some(store) = file.weights.as_ref() else { return Outcome::Fail("no weights".into()) };
    let _ = store;
    let model = match Model::from_file(file) {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(format!("build: {e}")),
    };
    let (ins, outs) = read_npz(npz);
    let got = match model.predict(&ins) {
        Ok(g) => g,
        Err(e) => return Outcome::Fail(format!("predict: {e}")),
    };
    if got.len() != outs.len() {
        return Outcome::Fail(format!("{} outputs, oracle has {}", got.len(), outs.len()));
    }
    for (k, (g, w)) in got.iter().zip(&outs).enumerate() {
        if g.shape() != w.shape() {
            return Outcome::Fail(format!("output {k}: shape {:?}, oracle {:?}", g.shape(), w.shape()));
        }
        let mut worst = 0.0f64;
        let mut bad = 0usize;
        for (&a, &b) in g.as_slice().iter().zip(w.as_slice()) {
            worst = worst.max((f64::from(a) - f64::from(b)).abs());
            if !tol::forward_close(f64::from(a), f64::from(b)) {
                bad += 1;
            }
        }
        if bad > 0 {
            return Outcome::Fail(format!("output {k}: {bad} values outside tolerance, max abs diff {worst:e}"));
        }
    }
    Outcome::Pass
}
