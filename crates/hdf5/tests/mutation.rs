//! Robustness: random truncations and bit flips of real h5py files go through
//! open + walk + attrs + read_raw of every dataset without panicking (errors are fine).
//! `PROPTEST_CASES` raises the case count.

mod common;

use proptest::prelude::*;
use strata_hdf5::{H5File, Limits, NodeKind};

fn limits() -> Limits {
    Limits { max_dataset_bytes: 64 << 20, max_attr_bytes: 16 << 20, max_objects: 100_000, ..Limits::default() }
}

/// Everything a reader would do with a file; returns how many datasets were read.
fn exercise(bytes: Vec<u8>) -> usize {
    let Ok(f) = H5File::from_bytes(bytes, &limits()) else {
        return 0;
    };
    let _ = f.root().members();
    let _ = f.root().attrs();
    let Ok(nodes) = f.walk() else { return 0 };
    let mut read = 0;
    for n in nodes {
        match n.kind {
            NodeKind::Group => {
                if let Ok(g) = f.group(&n.path) {
                    let _ = g.members();
                    if let Ok(attrs) = g.attrs() {
                        for (_, a) in attrs {
                            let _ = a.as_strings();
                        }
                    }
                }
            }
            NodeKind::Dataset => {
                if let Ok(d) = f.dataset(&n.path) {
                    let _ = d.attrs();
                    let _ = d.storage();
                    if d.read_raw().is_ok() {
                        read += 1;
                    }
                }
            }
            _ => {}
        }
    }
    read
}

fn base(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(name)).unwrap()
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(Vec<(usize, u8)>),
    Smash { at: usize, byte: u8, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec((any::<usize>(), 0u8..8), 1..8).prop_map(Mutation::Flip),
        (any::<usize>(), prop_oneof![Just(0u8), Just(0xff), any::<u8>()], 1usize..9)
            .prop_map(|(at, byte, len)| Mutation::Smash { at, byte, len }),
    ]
}

fn apply(mut b: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let n = b.len();
    match m {
        Mutation::Truncate(at) => b.truncate(at % n),
        Mutation::Flip(flips) => {
            for (at, bit) in flips {
                b[at % n] ^= 1 << bit;
            }
        }
        Mutation::Smash { at, byte, len } => {
            let at = at % n;
            for x in b.iter_mut().skip(at).take(*len) {
                *x = *byte;
            }
        }
    }
    b
}

#[test]
fn unmutated_files_read_fully() {
    for name in ["links.h5", "chunked.h5", "keras_like_latest.h5", "keras_like_earliest.h5"] {
        assert!(exercise(base(name)) >= 2, "{name}: expected to read its datasets");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_keras_like_file_never_panics(m in mutation()) {
        exercise(apply(base("keras_like_earliest.h5"), &m));
    }

    #[test]
    fn mutated_new_style_file_never_panics(m in mutation()) {
        exercise(apply(base("keras_like_latest.h5"), &m));
    }

    #[test]
    fn mutated_chunked_file_never_panics(m in mutation()) {
        exercise(apply(base("chunked.h5"), &m));
    }

    #[test]
    fn mutated_links_file_never_panics(m in mutation()) {
        exercise(apply(base("links.h5"), &m));
    }
}
