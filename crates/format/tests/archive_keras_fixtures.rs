//! Every `.keras` that Keras wrote under `fixtures/*/*/model.keras` opens, has the three members in
//! Keras's order, and hands out its weights as an HDF5 byte range.

use std::path::{Path, PathBuf};

use strata_format::archive::{KerasArchive, WeightsFormat};
use strata_format::detect::{Detected, HDF5_SIGNATURE, detect, detect_path};
use strata_format::limits::Limits;

fn keras_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let mut out = Vec::new();
    for generation in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for case in std::fs::read_dir(generation.path()).into_iter().flatten().flatten() {
            let p = case.path().join("model.keras");
            if p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_keras_fixture_opens_with_three_members() {
    let files = keras_files();
    if files.is_empty() {
        assert!(
            std::env::var_os("STRATA_REQUIRE_ORACLE").is_none(),
            "no fixtures/*/*/model.keras found; generate them with tools/oracle"
        );
        eprintln!("no .keras fixtures yet; skipping");
        return;
    }
    for p in &files {
        assert_eq!(detect_path(p).expect("readable"), Detected::Zip, "{}", p.display());
        let a = KerasArchive::open(p, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let names: Vec<&str> = a.members().iter().take(3).map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["metadata.json", "config.json", "model.weights.h5"], "{}", p.display());
        assert_eq!(a.weights_format(), WeightsFormat::H5);
        let meta = a.metadata().expect("metadata").expect("present");
        assert!(meta.starts_with(b"{"), "{}", p.display());
        assert_eq!(detect(&a.config_bytes().expect("config")), Detected::Json);
        let w = a.weights_bytes().expect("weights");
        assert!(w.starts_with(&HDF5_SIGNATURE), "{}", p.display());
        let r = a.weights_range().expect("Keras stores members uncompressed");
        let whole = std::fs::read(p).expect("read");
        assert_eq!(&whole[r.start as usize..r.end as usize], w.as_ref());
        // from_bytes agrees with open
        let b = KerasArchive::from_bytes(whole, &Limits::default()).expect("from_bytes");
        assert_eq!(b.members(), a.members());
    }
}
