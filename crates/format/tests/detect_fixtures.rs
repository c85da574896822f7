//! Detection of the files Keras wrote under `fixtures/`, whatever their names say.

use std::path::{Path, PathBuf};

use strata_format::detect::{Detected, detect_path, extension_mismatch};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

#[test]
fn real_files_are_detected_by_their_bytes() {
    let mut seen = 0;
    for generation in std::fs::read_dir(fixtures()).into_iter().flatten().flatten() {
        if generation.file_name() == "hostile" {
            continue;
        }
        for case in std::fs::read_dir(generation.path()).into_iter().flatten().flatten() {
            for entry in std::fs::read_dir(case.path()).into_iter().flatten().flatten() {
                let p = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                let expected = if name.ends_with(".keras") || name.ends_with(".npz") {
                    Detected::Zip
                } else if name.ends_with(".h5") {
                    Detected::Hdf5 { userblock: 0 }
                } else if name.ends_with(".json") {
                    Detected::Json
                } else {
                    continue;
                };
                let d = detect_path(&p).expect("readable");
                assert_eq!(d, expected, "{}", p.display());
                assert_eq!(extension_mismatch(&p, &d), None, "{}", p.display());
                seen += 1;
            }
        }
    }
    if seen == 0 {
        eprintln!("no fixtures yet; skipping");
    }
}

#[test]
fn directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(detect_path(dir.path()).expect("ok"), Detected::Directory);
    std::fs::write(dir.path().join("saved_model.pb"), b"\x08\x01").expect("write");
    assert_eq!(detect_path(dir.path()).expect("ok"), Detected::SavedModelDir);
    std::fs::write(dir.path().join("config.json"), b"{}").expect("write");
    assert_eq!(detect_path(dir.path()).expect("ok"), Detected::KerasDir);
}

#[test]
fn userblock_beyond_the_head_is_probed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("ub.h5");
    let mut bytes = vec![0u8; 8192];
    bytes.extend_from_slice(b"\x89HDF\r\n\x1a\n");
    bytes.resize(9000, 0);
    std::fs::write(&p, &bytes).expect("write");
    assert_eq!(detect_path(&p).expect("ok"), Detected::Hdf5 { userblock: 8192 });
}

#[test]
fn missing_path_message() {
    let msg = detect_path(Path::new("/nonexistent/x.keras")).unwrap_err().to_string();
    assert_eq!(msg, "could not read `/nonexistent/x.keras`: No such file or directory (os error 2)");
}
