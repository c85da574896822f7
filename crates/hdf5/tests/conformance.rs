//! Conformance against h5py: every fixture made by tools/oracle/hdf5/make_matrix.py
//! is read with strata-hdf5 and compared, exactly, with the h5py dump stored beside it.

mod common;

use common::{assert_same, dump, fixture, open};

fn check(name: &str) {
    let file = open(&format!("{name}.h5"));
    let ours = dump(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
    let text = std::fs::read_to_string(fixture(&format!("{name}.json"))).expect("fixture json");
    let theirs: serde_json::Value = serde_json::from_str(&text).expect("valid json");
    assert_same(&ours, &theirs, name);
}

#[test]
fn keras_like_earliest_matches_h5py() {
    let f = open("keras_like_earliest.h5");
    assert_eq!(f.superblock_version(), 0);
    check("keras_like_earliest");
}

#[test]
fn keras_like_latest_matches_h5py() {
    let f = open("keras_like_latest.h5");
    assert!(f.superblock_version() >= 2);
    check("keras_like_latest");
}

#[test]
fn chunked_gzip_shuffle_lzf_fletcher_match_h5py() {
    check("chunked");
}

#[test]
fn links_external_virtual_and_named_types_are_listed_like_h5py() {
    check("links");
}

#[test]
fn compact_dataset_and_userblock_match_h5py() {
    check("compact_userblock");
}
