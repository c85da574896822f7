//! Shared by the integration tests: the strata-hdf5 side of the JSON dump that
//! `tools/oracle/hdf5/h5dump_json.py` prints from h5py, and oracle helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value, json};
use strata_hdf5::{Attr, AttrValue, Dataset, Error, H5File, Limits, NodeKind, Storage};

/// Same cut-off as h5dump_json.py.
const MAX_DATA: u64 = 64 << 20;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn f64_hex(v: f64) -> String {
    hex(&v.to_le_bytes())
}

pub fn attr_json(a: &Attr) -> Value {
    let mut m = Map::new();
    m.insert("shape".into(), json!(a.shape));
    match &a.value {
        AttrValue::Strings { values, encoding } => {
            m.insert("type".into(), json!("string"));
            m.insert("vlen".into(), json!(encoding.vlen));
            m.insert("utf8".into(), json!(encoding.utf8));
            m.insert("fixed_len".into(), json!(encoding.fixed_len));
            m.insert("pad".into(), json!(encoding.pad.name()));
            m.insert("values".into(), json!(values.iter().map(|v| hex(v)).collect::<Vec<_>>()));
        }
        AttrValue::Float(v) => {
            m.insert("type".into(), json!("float"));
            m.insert("values".into(), json!(v.iter().map(|x| f64_hex(*x)).collect::<Vec<_>>()));
        }
        AttrValue::Int(v) => {
            m.insert("type".into(), json!("int"));
            m.insert("values".into(), json!(v));
        }
        AttrValue::UInt(v) => {
            m.insert("type".into(), json!("uint"));
            m.insert("values".into(), json!(v));
        }
        AttrValue::Opaque(v) => {
            m.insert("type".into(), json!("opaque"));
            m.insert("data".into(), json!(hex(v)));
        }
        AttrValue::Unsupported(_) => {
            m.insert("type".into(), json!("unsupported"));
        }
    }
    Value::Object(m)
}

fn attrs_json(attrs: Vec<(String, Attr)>) -> Value {
    Value::Object(attrs.into_iter().map(|(n, a)| (n, attr_json(&a))).collect())
}

pub fn dataset_json(ds: &Dataset) -> Result<Value, Error> {
    let mut m = Map::new();
    m.insert("kind".into(), json!("dataset"));
    m.insert("shape".into(), json!(ds.shape()));
    let dtype = ds.dtype().numpy_name();
    let dtype = if matches!(
        dtype,
        "float16"
            | "bfloat16"
            | "float32"
            | "float64"
            | "int8"
            | "int16"
            | "int32"
            | "int64"
            | "uint8"
            | "uint16"
            | "uint32"
            | "uint64"
            | "bool"
            | "str"
    ) || dtype.starts_with("opaque")
    {
        dtype
    } else {
        "other"
    };
    m.insert("dtype".into(), json!(dtype));
    m.insert("attrs".into(), attrs_json(ds.attrs()?));
    let storage = ds.storage();
    let name = match &storage {
        Storage::Contiguous { offset, len } => {
            m.insert("offset".into(), json!(offset));
            m.insert("len".into(), json!(len));
            "contiguous"
        }
        Storage::Chunked { filters } => {
            m.insert("filters".into(), json!(filters));
            "chunked"
        }
        Storage::Compact => "compact",
        Storage::Unallocated => "unallocated",
        Storage::External => "external",
        Storage::Virtual => "virtual",
    };
    m.insert("storage".into(), json!(name));
    let nbytes = ds.nelem().unwrap_or(u64::MAX).saturating_mul(ds.dtype().size().unwrap_or(0) as u64);
    let skip = matches!(storage, Storage::External | Storage::Virtual)
        || ds.dtype().size().is_none()
        || dtype.starts_with("opaque")
        || nbytes > MAX_DATA;
    m.insert("data".into(), if skip { Value::Null } else { json!(hex(&ds.read_raw()?)) });
    Ok(Value::Object(m))
}

/// The dump of `file`, as h5dump_json.py prints it.
pub fn dump(file: &H5File) -> Result<Value, Error> {
    let mut objects = Map::new();
    for node in file.walk()? {
        let v = match &node.kind {
            NodeKind::Group => {
                json!({"kind": "group", "attrs": attrs_json(file.group(&node.path)?.attrs()?)})
            }
            NodeKind::Dataset => dataset_json(&file.dataset(&node.path)?)?,
            NodeKind::SoftLink { target } => json!({"kind": "soft_link", "target": target}),
            NodeKind::ExternalLink { file, path } => {
                json!({"kind": "external_link", "file": file, "path": path})
            }
            NodeKind::Other(what) => json!({"kind": "other", "what": what}),
        };
        objects.insert(node.path.clone(), v);
    }
    Ok(json!({ "objects": Value::Object(objects) }))
}

pub fn fixture(name: &str) -> PathBuf {
    strata_testkit::fixture(&format!("hdf5/{name}"))
}

pub fn open(name: &str) -> H5File {
    let p = fixture(name);
    H5File::open(&p, &Limits::default()).unwrap_or_else(|e| panic!("opening {}: {e}", p.display()))
}

/// The oracle interpreter (needs h5py): `$STRATA_ORACLE_DIR/venv/bin/python`,
/// else `$HOME/.cache/strata/oracle/venv/bin/python`; `None` (test skipped) when absent.
pub fn python() -> Option<PathBuf> {
    strata_testkit::oracle_python()
}

/// Runs h5dump_json.py on `path`.
pub fn h5py_dump(python: &Path, path: &Path) -> Value {
    let script = strata_testkit::repo_root().join("tools/oracle/hdf5/h5dump_json.py");
    let out = Command::new(python).arg(&script).arg(path).output().expect("running h5dump_json.py");
    assert!(
        out.status.success(),
        "h5dump_json.py failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("h5dump_json.py prints JSON")
}

/// Asserts two dumps are equal, reporting the first differing object.
pub fn assert_same(ours: &Value, theirs: &Value, what: &str) {
    let (Some(a), Some(b)) = (ours["objects"].as_object(), theirs["objects"].as_object()) else {
        panic!("{what}: dump without objects");
    };
    let ka: Vec<_> = a.keys().collect();
    let kb: Vec<_> = b.keys().collect();
    assert_eq!(ka, kb, "{what}: object paths differ");
    for (k, v) in a {
        assert_eq!(v, &b[k], "{what}: object `{k}` differs (left: strata-hdf5, right: h5py)");
    }
}
