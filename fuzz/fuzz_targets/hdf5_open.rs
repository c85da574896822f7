//! Bytes -> `H5File::from_bytes` -> `walk`, then every group's attributes and members and every
//! dataset's attributes and `read_raw`. Errors are fine; a panic, hang or unbounded allocation is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_hdf5::{H5File, Limits, NodeKind};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = H5File::from_bytes(data.to_vec(), &Limits::default()) else {
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
