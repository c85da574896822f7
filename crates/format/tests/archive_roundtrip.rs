//! The writer, read back: member order, determinism, zero-copy weights range, atomic save,
//! directory form.

mod archive_support;

use std::fs;

use archive_support::{CONFIG, METADATA, weights};
use strata_format::archive::{ArchiveWriter, KerasArchive, Method, WeightsFormat};
use strata_format::limits::Limits;

fn sample() -> Vec<u8> {
    let w = weights();
    ArchiveWriter::new(METADATA, CONFIG, &w)
        .with_asset("string_lookup/vocabulary.txt", b"a\nb\n")
        .and_then(|x| x.with_asset("a_first/x.bin", b"\x00\x01"))
        .and_then(|x| x.to_bytes())
        .expect("writes")
}

#[test]
fn members_in_keras_order_all_stored() {
    let a = KerasArchive::from_bytes(sample(), &Limits::default()).expect("reads back");
    let names: Vec<&str> = a.members().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "metadata.json",
            "config.json",
            "model.weights.h5",
            "assets/a_first/x.bin",
            "assets/string_lookup/vocabulary.txt"
        ]
    );
    assert!(a.members().iter().all(|m| m.method == Method::Stored));
    assert_eq!(a.metadata().expect("ok").as_deref(), Some(METADATA));
    assert_eq!(a.config_bytes().expect("ok").as_ref(), CONFIG);
    assert_eq!(a.weights_bytes().expect("ok").as_ref(), &weights()[..]);
    let assets: Vec<&str> = a.assets().map(|m| m.name.as_str()).collect();
    assert_eq!(assets, ["assets/a_first/x.bin", "assets/string_lookup/vocabulary.txt"]);
    assert_eq!(a.read_member("assets/string_lookup/vocabulary.txt").expect("ok").as_ref(), b"a\nb\n");
}

#[test]
fn python_zipfile_conventions() {
    // what Python's zipfile writes for Keras: Unix system byte, mode 0600, 1980-01-01 00:00:00
    let bytes = sample();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip crate reads it");
    for i in 0..zip.len() {
        let f = zip.by_index(i).expect("entry");
        assert_eq!(f.unix_mode().map(|m| m & 0o777), Some(0o600), "{:?}", f.name_raw());
        assert_eq!(f.compression(), zip::CompressionMethod::Stored);
        let t = f.last_modified().expect("timestamp");
        assert_eq!((t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second()), (1980, 1, 1, 0, 0, 0));
    }
}

#[test]
fn saving_twice_gives_identical_bytes() {
    assert_eq!(sample(), sample());
    let dir = tempfile::tempdir().expect("tempdir");
    let (p1, p2) = (dir.path().join("a.keras"), dir.path().join("b.keras"));
    let w = weights();
    let writer = ArchiveWriter::new(METADATA, CONFIG, &w);
    writer.save(&p1).expect("save");
    writer.save(&p2).expect("save");
    assert_eq!(fs::read(&p1).expect("read"), fs::read(&p2).expect("read"));
    // overwriting an existing file goes through the atomic path
    writer.save(&p1).expect("save again");
    assert_eq!(fs::read(&p1).expect("read"), fs::read(&p2).expect("read"));
}

#[test]
fn weights_range_points_at_the_weights() {
    let bytes = sample();
    let a = KerasArchive::from_bytes(bytes.clone(), &Limits::default()).expect("reads");
    let r = a.weights_range().expect("stored weights have a range");
    assert_eq!(&bytes[r.start as usize..r.end as usize], &weights()[..]);
    assert_eq!(a.as_bytes().map(|b| b.len()), Some(bytes.len()));
    // borrowed, not copied, for in-memory archives
    assert!(matches!(a.weights_bytes().expect("ok"), std::borrow::Cow::Borrowed(_)));

    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("m.keras");
    fs::write(&p, &bytes).expect("write");
    let a = KerasArchive::open(&p, &Limits::default()).expect("opens");
    assert_eq!(a.weights_range(), Some(r));
    assert_eq!(a.weights_bytes().expect("ok").as_ref(), &weights()[..]);
    assert_eq!(a.path(), Some(p.as_path()));
}

#[test]
fn directory_form() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("model_dir");
    fs::create_dir_all(root.join("assets/lookup")).expect("mkdir");
    fs::write(root.join("metadata.json"), METADATA).expect("write");
    fs::write(root.join("config.json"), CONFIG).expect("write");
    fs::write(root.join("model.weights.h5"), weights()).expect("write");
    fs::write(root.join("assets/lookup/vocab.txt"), b"x\n").expect("write");
    let a = KerasArchive::open(&root, &Limits::default()).expect("directory form");
    assert!(a.is_directory_form());
    let names: Vec<&str> = a.members().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["assets/lookup/vocab.txt", "config.json", "metadata.json", "model.weights.h5"]);
    assert_eq!(a.config_bytes().expect("ok").as_ref(), CONFIG);
    assert_eq!(a.weights_format(), WeightsFormat::H5);
    assert_eq!(a.weights_bytes().expect("ok").as_ref(), &weights()[..]);
    assert_eq!(a.weights_path(), Some(root.join("model.weights.h5")));
    assert_eq!(a.weights_range(), None);

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc/passwd", root.join("assets/lookup/evil")).expect("link");
        let msg = KerasArchive::open(&root, &Limits::default()).map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "`{}` in the model directory is a symbolic link; strata does not follow links in a model directory (they could point anywhere); copy the real file there instead",
                root.join("assets/lookup/evil").display()
            )
        );
    }
}

#[test]
fn directory_without_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("model.weights.h5"), weights()).expect("write");
    let msg = KerasArchive::open(dir.path(), &Limits::default()).map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        msg,
        "the archive has no `config.json` member (it has: model.weights.h5); a Keras 3 `.keras` archive holds metadata.json, config.json and model.weights.h5; was this file written by `model.save(\"model.keras\")` in Keras 3?"
    );
}

#[test]
fn missing_file_io_error() {
    let msg = KerasArchive::open(std::path::Path::new("/nonexistent/m.keras"), &Limits::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert_eq!(msg, "could not read `/nonexistent/m.keras`: No such file or directory (os error 2)");
}
