//! Writer: every WriteAttr variant and dtype, read back by strata-hdf5 and
//! (when the oracle venv exists) by h5py through h5dump_json.py.

mod common;

use strata_hdf5::{Attr, AttrValue, DType, Error, H5File, Limits, StrPad, WriteAttr, WriteProblem, Writer};

const DTYPES: [DType; 13] = [
    DType::F16,
    DType::BF16,
    DType::F32,
    DType::F64,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::Bool,
];

/// Deterministic element bytes (bools are 0/1).
fn bytes_for(dtype: &DType, n: usize, seed: u8) -> Vec<u8> {
    let size = dtype.size().unwrap();
    (0..n * size)
        .map(
            |i| {
                if *dtype == DType::Bool {
                    ((i as u8) ^ seed) & 1
                } else {
                    (i as u8).wrapping_mul(37).wrapping_add(seed)
                }
            },
        )
        .collect()
}

fn attrs() -> Vec<(&'static str, WriteAttr)> {
    vec![
        ("vlen_utf8", WriteAttr::VlenUtf8("caf\u{e9} \u{2603}".into())),
        ("vlen_ascii", WriteAttr::VlenAscii(b"{\"class_name\": \"Sequential\"}".to_vec())),
        ("vlen_ascii_array", WriteAttr::VlenAsciiArray(vec![b"dense".to_vec(), b"".to_vec(), b"dropout_1".to_vec()])),
        ("vlen_utf8_array", WriteAttr::VlenUtf8Array(vec!["\u{fc}".into(), "b".into()])),
        ("fixed_ascii_array", WriteAttr::FixedAsciiArray(vec![b"ab".to_vec(), b"abcd".to_vec(), b"".to_vec()])),
        ("empty_f64", WriteAttr::EmptyF64Array),
        ("f64", WriteAttr::F64(0.1)),
        ("i64", WriteAttr::I64(-(1 << 62))),
        ("i64_array", WriteAttr::I64Array(vec![i64::MIN, 0, i64::MAX])),
    ]
}

fn build() -> Vec<u8> {
    let mut w = Writer::new();
    w.create_group("/model_weights/dense").unwrap();
    for (name, value) in attrs() {
        w.set_attr("/", name, value.clone()).unwrap();
        w.set_attr("/model_weights/dense", name, value).unwrap();
    }
    for (i, dt) in DTYPES.iter().enumerate() {
        let name = dt.numpy_name();
        w.create_dataset(&format!("/dtypes/{name}"), dt.clone(), &[3, 2], &bytes_for(dt, 6, i as u8)).unwrap();
        w.create_dataset(&format!("/dtypes/{name}_scalar"), dt.clone(), &[], &bytes_for(dt, 1, i as u8)).unwrap();
    }
    w.create_dataset("/model_weights/dense/dense/kernel", DType::F32, &[2, 2], &bytes_for(&DType::F32, 4, 9)).unwrap();
    w.set_attr("/model_weights/dense/dense/kernel", "note", WriteAttr::VlenUtf8("on a dataset".into())).unwrap();
    w.create_dataset("/empty", DType::F32, &[0, 4], &[]).unwrap();
    for depth in 0..6 {
        let path: String = (0..=depth).map(|d| format!("/l{d}")).collect();
        w.create_group(&path).unwrap();
    }
    for i in 0..40 {
        w.create_dataset(&format!("/wide/m{i:02}"), DType::I32, &[], &bytes_for(&DType::I32, 1, i)).unwrap();
    }
    w.finish().unwrap()
}

fn expect_attr(name: &str, got: &Attr) {
    let strings = |values: &[&[u8]]| values.iter().map(|v| v.to_vec()).collect::<Vec<_>>();
    match (name, &got.value) {
        ("vlen_utf8", AttrValue::Strings { values, encoding }) => {
            assert!(encoding.vlen && encoding.utf8);
            assert_eq!(values, &strings(&["caf\u{e9} \u{2603}".as_bytes()]));
            assert!(got.shape.is_empty());
        }
        ("vlen_ascii", AttrValue::Strings { values, encoding }) => {
            assert!(encoding.vlen && !encoding.utf8);
            assert_eq!(got.as_string().unwrap(), "{\"class_name\": \"Sequential\"}");
            assert_eq!(values.len(), 1);
        }
        ("vlen_ascii_array", AttrValue::Strings { encoding, .. }) => {
            assert!(encoding.vlen && !encoding.utf8);
            assert_eq!(got.shape, [3]);
            assert_eq!(got.as_strings().unwrap(), ["dense", "", "dropout_1"]);
        }
        ("vlen_utf8_array", AttrValue::Strings { encoding, .. }) => {
            assert!(encoding.vlen && encoding.utf8);
            assert_eq!(got.as_strings().unwrap(), ["\u{fc}", "b"]);
        }
        ("fixed_ascii_array", AttrValue::Strings { values, encoding }) => {
            assert_eq!(
                (encoding.vlen, encoding.utf8, encoding.fixed_len, encoding.pad),
                (false, false, Some(4), StrPad::NullPad)
            );
            assert_eq!(values, &strings(&[b"ab\0\0", b"abcd", b"\0\0\0\0"]));
            assert_eq!(got.as_strings().unwrap(), ["ab", "abcd", ""]);
        }
        ("empty_f64", AttrValue::Float(v)) => {
            assert!(v.is_empty());
            assert_eq!(got.shape, [0]);
        }
        ("f64", AttrValue::Float(v)) => {
            assert_eq!((v.as_slice(), got.shape.len()), (&[0.1][..], 0))
        }
        ("i64", AttrValue::Int(v)) => assert_eq!(v, &[-(1i64 << 62)]),
        ("i64_array", AttrValue::Int(v)) => {
            assert_eq!((v.as_slice(), got.shape.as_slice()), (&[i64::MIN, 0, i64::MAX][..], &[3u64][..]))
        }
        _ => panic!("attribute {name} read back as {got:?}"),
    }
}

#[test]
fn written_file_reads_back_exactly() {
    let f = H5File::from_bytes(build(), &Limits::default()).unwrap();
    for obj in ["/", "/model_weights/dense"] {
        let got = f.group(obj).unwrap().attrs().unwrap();
        assert_eq!(got.len(), attrs().len());
        for (name, a) in &got {
            expect_attr(name, a);
        }
    }
    for (i, dt) in DTYPES.iter().enumerate() {
        let name = dt.numpy_name();
        let d = f.dataset(&format!("dtypes/{name}")).unwrap();
        assert_eq!((d.shape(), d.dtype()), (&[3u64, 2][..], dt));
        assert_eq!(d.read_raw().unwrap(), bytes_for(dt, 6, i as u8));
        let s = f.dataset(&format!("dtypes/{name}_scalar")).unwrap();
        assert_eq!((s.shape(), s.dtype()), (&[][..], dt));
        assert_eq!(s.read_raw().unwrap(), bytes_for(dt, 1, i as u8));
    }
    let bf = f.dataset("dtypes/bfloat16").unwrap();
    assert_eq!(bf.attrs().unwrap()[0].1.as_string().as_deref(), Some("bfloat16"));
    assert_eq!(f.dataset("empty").unwrap().read_raw().unwrap(), Vec::<u8>::new());
    assert!(f.group("/l0/l1/l2/l3/l4/l5").is_ok());
    assert_eq!(f.group("wide").unwrap().members().unwrap().len(), 40);
    assert_eq!(
        f.dataset("/model_weights/dense/dense/kernel").unwrap().attrs().unwrap()[0].1.as_string().as_deref(),
        Some("on a dataset")
    );
}

#[test]
fn writing_twice_gives_identical_bytes() {
    assert_eq!(build(), build());
}

#[test]
fn h5py_reads_what_we_write() {
    let Some(python) = common::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("written.h5");
    std::fs::write(&path, build()).unwrap();
    let ours = common::dump(&H5File::open(&path, &Limits::default()).unwrap()).unwrap();
    let theirs = common::h5py_dump(&python, &path);
    common::assert_same(&ours, &theirs, "strata-hdf5 Writer output");
}

#[test]
fn writer_refuses_bad_input() {
    let mut w = Writer::new();
    let e = w.create_dataset("/x", DType::F32, &[2], &[0; 7]).unwrap_err();
    assert_eq!(e.to_string(), "cannot write `/x`: data has 7 bytes but the shape and dtype need 8");
    w.create_dataset("/x", DType::F32, &[2], &[0; 8]).unwrap();
    let e = w.create_dataset("/x/y", DType::F32, &[], &[0; 4]).unwrap_err();
    assert!(matches!(&e, Error::Write { reason: WriteProblem::ParentIsDataset(p), .. } if p == "/x"), "{e}");
    assert_eq!(e.to_string(), "cannot write `/x/y`: parent `/x` is a dataset, not a group");
    let e = w.create_dataset("/x", DType::F32, &[2], &[0; 8]).unwrap_err();
    assert_eq!(e.to_string(), "cannot write `/x`: an object already exists there");
    let e = w.set_attr("/nope", "a", WriteAttr::I64(1)).unwrap_err();
    assert_eq!(e.to_string(), "cannot write `/nope`: no group or dataset there; create it before setting attributes");
    let e = w.create_dataset("/s", DType::Str, &[], &[]).unwrap_err();
    assert_eq!(e.to_string(), "cannot write `/s`: dtype `str` cannot be written; use a numeric or bool dtype");
    let e = w.create_group("/a/../b").unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot write `/a/../b`: invalid object path; use names separated by `/` without `.` or `..`"
    );
}

#[test]
fn non_utf8_ascii_attribute_is_refused_at_finish() {
    let mut w = Writer::new();
    w.set_attr("/", "cfg", WriteAttr::VlenAscii(vec![0xff, 0xfe])).unwrap();
    let e = w.finish().unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot write `/`: attribute `cfg` holds bytes that are not valid UTF-8; the writer stores strings as text"
    );
}
