//! Bytes -> `H5File::from_bytes` -> `walk`, then every group's attributes and members and every
//! dataset's attributes and `read_raw`. Errors are fine; a panic, hang or unbounded allocation is a bug.
//!
//! Limits are the defaults except `shape_bomb_min_bytes`, lowered from 256 MiB to 64 MiB: a dataset
//! with no stored bytes may declare up to that many bytes of fill values, and smaller allocations keep
//! runs fast under libFuzzer's memory limit. (The default was 4 GiB, as in Keras, until fuzzing found a
//! 25 KB file declaring 2.7 GB; see fuzz/README.md.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_hdf5::{H5File, Limits, NodeKind};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { shape_bomb_min_bytes: 64 << 20, ..Limits::default() };
    let Ok(file) = H5File::from_bytes(data.to_vec(), &limits) else {
        return;
    };
    let _ = file.superblock_version();
    let root = file.root();
    for (_, a) in root.attrs().unwrap_or_default() {
        let _ = a.as_strings();
    }
    let _ = root.members();
    let Ok(nodes) = file.walk() else {
        return;
    };
    for node in &nodes {
        match node.kind {
            NodeKind::Group => {
                if let Ok(g) = file.group(&node.path) {
                    for (_, a) in g.attrs().unwrap_or_default() {
                        let _ = a.as_strings();
                        let _ = a.as_string();
                    }
                    let _ = g.members();
                }
            }
            NodeKind::Dataset => {
                if let Ok(d) = file.dataset(&node.path) {
                    let _ = d.attrs();
                    let _ = (d.shape(), d.dtype(), d.nelem(), d.storage());
                    if let Ok(raw) = d.read_raw() {
                        std::hint::black_box(raw);
                    }
                }
            }
            _ => {}
        }
    }
});
