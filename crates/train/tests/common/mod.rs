//! Shared by the parity tests: the oracle's index (`fixtures/train/index.json`) and arrays
//! (`fixtures/train/<family>.npz`, keys `<case>/<name>`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use strata_format::json::{Json, JsonLimits};
use strata_tensor::{DType, Tensor};
use strata_testkit::tol;

/// The parsed index.
pub fn index() -> Json {
    let path = strata_testkit::fixture("train/index.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Json::parse(text, &JsonLimits::default()).expect("index.json parses")
}

fn parse_npy(name: &str, bytes: &[u8]) -> Tensor {
    assert_eq!(bytes.get(..6), Some(&b"\x93NUMPY"[..]), "{name}: not an npy file");
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).expect("ascii header");
    let descr = header.split("'descr':").nth(1).and_then(|s| s.split('\'').nth(1)).expect("descr");
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
        "<i8" => DType::I64,
        other => panic!("{name}: dtype {other}"),
    };
    Tensor::from_le_bytes(dtype, &shape, &bytes[start + hlen..]).expect("npy data")
}

/// Every array of one family's npz, by key.
pub fn arrays(family: &str) -> BTreeMap<String, Tensor> {
    let path = strata_testkit::fixture(&format!("train/{family}.npz"));
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut zip = zip::ZipArchive::new(f).expect("npz is a zip");
    let names: Vec<String> = zip.file_names().map(|r| r.expect("member name").into_owned()).collect();
    let mut out = BTreeMap::new();
    for n in names {
        let mut buf = Vec::new();
        zip.by_name(&n).expect("member").read_to_end(&mut buf).expect("read");
        out.insert(n.trim_end_matches(".npy").to_string(), parse_npy(&n, &buf));
    }
    out
}

/// Compares within the forward tier; returns the worst relative excess as a message on failure.
pub fn close(what: &str, got: &[f32], want: &[f32]) -> Result<f64, String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} values, expected {}", got.len(), want.len()));
    }
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (f64::from(g), f64::from(w));
        let d = (g - w).abs();
        worst = worst.max(d);
        if !tol::forward_close(g, w) {
            return Err(format!("{what}[{i}]: got {g}, Keras {w} (diff {d:e})"));
        }
    }
    Ok(worst)
}

/// Runs every case, collecting failures; panics with all of them.
pub fn report(family: &str, results: Vec<(String, Result<f64, String>)>) {
    let mut bad = Vec::new();
    for (case, r) in &results {
        match r {
            Ok(d) => eprintln!("PASS {family}/{case} (max abs diff {d:e})"),
            Err(e) => {
                eprintln!("FAIL {family}/{case}: {e}");
                bad.push(format!("{case}: {e}"));
            }
        }
    }
    assert!(!results.is_empty(), "no {family} cases");
    assert!(bad.is_empty(), "{} {family} case(s) differ from Keras:\n{}", bad.len(), bad.join("\n"));
}
