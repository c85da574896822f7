//! Guards: links are listed but never followed; external storage, virtual
//! datasets, shape bombs, truncation, limits and unsupported layouts are refused
//! with messages that say what, where and the fix.

mod common;

use common::{fixture, open};
use strata_hdf5::{Error, H5File, Limits, Member, NodeKind};

#[test]
fn soft_and_external_links_are_listed_not_followed() {
    let f = open("links.h5");
    let members = f.root().members().unwrap();
    assert!(members.contains(&Member { name: "soft".into(), kind: NodeKind::SoftLink { target: "/target".into() } }));
    assert!(members.contains(&Member {
        name: "external".into(),
        kind: NodeKind::ExternalLink { file: "other.h5".into(), path: "/weights".into() }
    }));
    let e = f.dataset("/soft").unwrap_err();
    assert_eq!(
        e.to_string(),
        "refusing to follow soft link `/soft` -> `/target`: links are never followed (as in Keras >= 3.14); \
         replace the link with the object itself"
    );
    let e = f.group("external/weights").unwrap_err();
    assert_eq!(
        e.to_string(),
        "refusing to follow external link `/external` -> `other.h5:/weights`: links to other files are never \
         followed (as in Keras >= 3.14); copy the object into this file"
    );
    assert!(matches!(f.group("/g/soft_in_group").unwrap_err(), Error::SoftLink { .. }));
}

#[test]
fn external_storage_and_virtual_datasets_are_refused() {
    let f = open("links.h5");
    let e = f.dataset("external_storage").unwrap().read_raw().unwrap_err();
    assert_eq!(
        e.to_string(),
        "refusing to read dataset `/external_storage`: its elements are stored in external files, which are \
         never read (as in Keras >= 3.14); re-save the data inside the file"
    );
    let e = f.dataset("virtual").unwrap().read_raw().unwrap_err();
    assert_eq!(
        e.to_string(),
        "refusing to read dataset `/virtual`: it is a virtual dataset, which is never resolved (as in Keras >= 3.14); \
         re-save the data as a regular dataset"
    );
}

#[test]
fn shape_bombs_are_refused_before_allocating() {
    let f = open("hostile_shape_bomb.h5");
    for (name, stored) in [("chunked_bomb", 0), ("contiguous_bomb", 0)] {
        let e = f.dataset(name).unwrap().read_raw().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "refusing dataset `/{name}`: its shape declares 8589934592 bytes but the file stores only {stored} bytes \
                 for it (more than 1000x), a shape bomb; the file is damaged or hostile (raise `Limits::shape_bomb_ratio` \
                 only if the file is trusted)"
            )
        );
    }
    assert_eq!(f.dataset("ok").unwrap().read_raw().unwrap().len(), 16);
}

#[test]
fn dataset_size_limit_is_enforced() {
    let limits = Limits { max_dataset_bytes: 8, ..Limits::default() };
    let f = H5File::open(&fixture("hostile_shape_bomb.h5"), &limits).unwrap();
    let e = f.dataset("ok").unwrap().read_raw().unwrap_err();
    assert_eq!(
        e.to_string(),
        "dataset size in bytes at `/ok` is 16, over the limit of 8; raise `Limits::max_dataset_bytes` if the file is trusted"
    );
}

#[test]
fn truncated_dataset_names_the_byte_range() {
    let bytes = std::fs::read(fixture("keras_like_earliest.h5")).unwrap();
    let f = H5File::from_bytes(bytes.clone(), &Limits::default()).unwrap();
    // Cut the file one byte short of a dataset's end, choosing a dataset whose
    // metadata all lies before the cut (datasets stored last first).
    let mut candidates: Vec<(String, u64, u64)> = f
        .walk()
        .unwrap()
        .into_iter()
        .filter(|n| n.kind == NodeKind::Dataset)
        .filter_map(|n| match f.dataset(&n.path).unwrap().storage() {
            strata_hdf5::Storage::Contiguous { offset, len } if len > 0 => Some((n.path, offset, len)),
            _ => None,
        })
        .collect();
    candidates.sort_by_key(|(_, o, l)| std::cmp::Reverse(o + l));
    let (path, offset, len, cut, f) = candidates
        .into_iter()
        .find_map(|(path, offset, len)| {
            let cut = (offset + len - 1) as usize;
            let f = H5File::from_bytes(bytes[..cut].to_vec(), &Limits::default()).ok()?;
            f.dataset(&path).ok()?;
            Some((path, offset, len, cut, f))
        })
        .expect("some dataset's metadata precedes its data");
    let e = f.dataset(&path).unwrap().read_raw().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "truncated file: dataset `{path}` needs bytes {offset}..{} but the file ends at {cut}; the file \
             was cut short (interrupted download or copy), get a complete copy",
            offset + len
        )
    );
}

#[test]
fn chunked_layout_v5_is_unsupported_with_the_fix() {
    let f = open("unsupported_layout_v5.h5");
    let e = f.dataset("chunked").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported hdf5 feature at `/chunked`: HDF5 data layout message version 5 (written by HDF5 >= 2.0 with \
         libver='latest'); re-save the file with h5py using libver='earliest' or libver='v110' \
         (h5py.File(path, 'w', libver='v110')), or rewrite it with `h5repack -l CONTI` / h5repack from HDF5 1.14"
    );
    // The walk still lists it, so a scanner can report it.
    assert!(f.walk().unwrap().iter().any(|n| n.path == "/chunked" && n.kind == NodeKind::Dataset));
}

#[test]
fn hdf5_pure_layout_v5_error_maps_to_unsupported() {
    // hdf5-pure itself refuses the same file with InvalidLayoutVersion(5).
    let bytes = std::fs::read(fixture("unsupported_layout_v5.h5")).unwrap();
    let pure = hdf5_pure::File::from_bytes(bytes).unwrap();
    let e = pure.dataset("chunked").and_then(|d| d.read_raw()).unwrap_err();
    assert!(
        matches!(e, hdf5_pure::Error::Format(hdf5_pure::FormatError::InvalidLayoutVersion(5))),
        "hdf5-pure now says {e:?}; revisit the version-5 mapping"
    );
}

#[test]
fn object_count_and_depth_limits() {
    let path = fixture("keras_like_earliest.h5");
    let f = H5File::open(&path, &Limits { max_objects: 100, ..Limits::default() }).unwrap();
    let e = f.walk().unwrap_err();
    assert!(matches!(e, Error::Limit { field: "max_objects", limit: 100, .. }), "{e}");
    let f = H5File::open(&path, &Limits { max_depth: 3, ..Limits::default() }).unwrap();
    let e = f.walk().unwrap_err();
    assert_eq!(
        e.to_string(),
        "group depth at `/level0/level1/level2/level3` is 4, over the limit of 3; raise `Limits::max_depth` if the file is trusted"
    );
}

#[test]
fn file_size_limit_and_non_hdf5_input() {
    let e = H5File::open(&fixture("links.h5"), &Limits { max_file_bytes: 100, ..Limits::default() }).unwrap_err();
    assert!(e.to_string().starts_with("file size in bytes at `/` is "), "{e}");
    let input = b"PK\x03\x04 not hdf5 at all".to_vec();
    let n = input.len();
    let e = H5File::from_bytes(input, &Limits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "not an hdf5 file: no superblock signature found in the first {n} bytes; check that the file is an .h5 \
             file and was copied completely"
        )
    );
}

#[test]
fn lookups_name_what_they_found() {
    let f = open("keras_like_earliest.h5");
    assert_eq!(f.group("/model_weights/nope").unwrap_err().to_string(), "no hdf5 object at `/model_weights/nope`");
    assert_eq!(
        f.dataset("model_weights/dense").unwrap_err().to_string(),
        "`/model_weights/dense` is not a dataset (it is a group)"
    );
    assert_eq!(
        f.group("dtypes/float32").unwrap_err().to_string(),
        "`/dtypes/float32` is not a group (it is a dataset)"
    );
    let g = f.group("model_weights").unwrap();
    assert_eq!(g.path(), "/model_weights");
    assert_eq!(g.dataset("dense/dense/kernel").unwrap().path(), "/model_weights/dense/dense/kernel");
    let names = g.attr("layer_names").unwrap().unwrap().as_strings().unwrap();
    assert_eq!(names, ["dense", "dropout"]);
}
