//! One test per `ArchiveError` variant not covered by `fixtures/hostile/`, asserting the message.

mod archive_support;

use archive_support::*;
use strata_format::archive::{ArchiveError, ArchiveWriter, KerasArchive, Method, WeightsFormat};
use strata_format::limits::{Limits, human_bytes};

fn open(bytes: Vec<u8>) -> Result<KerasArchive, ArchiveError> {
    KerasArchive::from_bytes(bytes, &Limits::default())
}

fn open_err(bytes: Vec<u8>, limits: &Limits) -> String {
    match KerasArchive::from_bytes(bytes, limits) {
        Ok(a) => panic!("accepted: {:?}", a.members()),
        Err(e) => e.to_string(),
    }
}

fn valid() -> Vec<u8> {
    build(&standard())
}

#[test]
fn builder_output_is_valid() {
    let a = open(valid()).expect("valid archive");
    let names: Vec<&str> = a.members().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["metadata.json", "config.json", "model.weights.h5"]);
    assert_eq!(a.config_bytes().expect("config").as_ref(), CONFIG);
    assert_eq!(a.weights_format(), WeightsFormat::H5);
}

#[test]
fn file_too_large() {
    let msg = open_err(valid(), &Limits::default().with_max_file_bytes(100));
    let len = valid().len();
    assert_eq!(
        msg,
        format!(
            "the archive is {} but the limit is 100 bytes; raise it with `Limits::with_max_file_bytes` if the file is trusted",
            human_bytes(len as u64)
        )
    );
}

#[test]
fn too_many_entries() {
    let msg = open_err(valid(), &Limits::default().with_max_zip_entries(2));
    assert_eq!(
        msg,
        "the zip archive has 3 entries but the limit is 2; a Keras archive has 3 plus its assets; raise it with `Limits::with_max_zip_entries` if the file is trusted"
    );
}

#[test]
fn member_too_large() {
    let msg = open_err(valid(), &Limits::default().with_max_member_bytes(100));
    assert_eq!(
        msg,
        format!(
            "zip member `model.weights.h5` declares {} uncompressed but the limit is 100 bytes; raise it with `Limits::with_max_member_bytes` if the file is trusted",
            human_bytes(weights().len() as u64)
        )
    );
}

#[test]
fn total_too_large() {
    let limit = (METADATA.len() + CONFIG.len()) as u64;
    let total = limit + weights().len() as u64;
    let msg = open_err(valid(), &Limits::default().with_max_decompressed_bytes(limit));
    assert_eq!(
        msg,
        format!(
            "the zip members declare {} uncompressed in all but the limit is {}; raise it with `Limits::with_max_decompressed_bytes` if the file is trusted",
            human_bytes(total),
            human_bytes(limit)
        )
    );
}

#[test]
fn json_too_large() {
    let a = KerasArchive::from_bytes(valid(), &Limits::default().with_max_json_bytes(10)).expect("opens");
    let msg = a.config_bytes().map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        msg,
        format!(
            "zip member `config.json` is {} bytes of JSON but the limit is 10 bytes; raise it with `Limits::with_max_json_bytes` if the file is trusted",
            CONFIG.len()
        )
    );
}

#[test]
fn not_zip_hdf5() {
    let msg = open_err(weights(), &Limits::default());
    assert_eq!(
        msg,
        "not a .keras archive (a zip file): the bytes are HDF5; read it as a legacy .h5 model or a .weights.h5 file instead"
    );
    let msg = open_err(b"GIF89a....".to_vec(), &Limits::default());
    assert_eq!(
        msg,
        "not a .keras archive (a zip file): it starts with bytes 47 49 46 38 39 61 2e 2e 2e 2e where a zip starts with 50 4b 03 04"
    );
    let msg = open_err(Vec::new(), &Limits::default());
    assert_eq!(
        msg,
        "not a .keras archive (a zip file): it is empty (0 bytes); the save was probably interrupted or the download failed"
    );
}

#[test]
fn stored_size_mismatch() {
    let mut e = standard();
    e[1].size += 1;
    assert_eq!(
        open_err(build(&e), &Limits::default()),
        format!(
            "zip member `config.json` is stored uncompressed but declares {} bytes uncompressed and {} bytes stored; the archive is corrupt or crafted; save it again",
            CONFIG.len() + 1,
            CONFIG.len()
        )
    );
}

#[test]
fn directory_with_data() {
    let mut e = standard();
    e.push(Entry::stored("assets/", b"data"));
    assert_eq!(
        open_err(build(&e), &Limits::default()),
        "zip member `assets/` is a directory entry but holds 4 bytes; the archive is corrupt or crafted"
    );
    // an empty directory entry is fine (zip -r writes them)
    let mut e = standard();
    e.push(Entry::stored("assets/", b""));
    let a = open(build(&e)).expect("directory entries are accepted");
    assert!(a.member("assets/").is_some_and(|m| m.is_dir));
    assert_eq!(a.assets().count(), 0);
}

#[test]
fn bad_central_entry() {
    let mut bytes = valid();
    let a = open(bytes.clone()).expect("valid");
    let weights_end = a.members()[2].data.clone().expect("range").end as usize;
    // the first central entry starts right after the last member's data
    bytes[weights_end] = b'X';
    assert_eq!(
        open_err(bytes, &Limits::default()),
        format!(
            "zip central directory entry #0 at byte {weights_end} is corrupt (no central directory signature); the archive was damaged or crafted; save or fetch it again"
        )
    );
}

#[test]
fn bad_local_header() {
    let mut bytes = valid();
    let a = open(bytes.clone()).expect("valid");
    let start = a.members()[1].data.clone().expect("range").start as usize;
    let header = start - 30 - "config.json".len();
    bytes[header] = b'X';
    assert_eq!(
        open_err(bytes, &Limits::default()),
        format!(
            "zip member `config.json`: the central directory says its header is at byte {header}, but no local header is there; the archive is corrupt or crafted; save or fetch it again"
        )
    );
}

#[test]
fn local_header_method_and_size_mismatch() {
    let mut bytes = valid();
    let a = open(bytes.clone()).expect("valid");
    let start = a.members()[1].data.clone().expect("range").start as usize;
    let header = start - 30 - "config.json".len();
    let mut b2 = bytes.clone();
    b2[header + 8] = 8; // method: deflate in the local header only
    assert_eq!(
        open_err(b2, &Limits::default()),
        "zip member `config.json`: its local header and the central directory disagree on the compression method (central directory: 0, local header: 8); such archives unpack differently in different tools, so strata refuses them; save the model again"
    );
    bytes[header + 18] ^= 1; // compressed size in the local header
    assert_eq!(
        open_err(bytes, &Limits::default()),
        format!(
            "zip member `config.json`: its local header and the central directory disagree on the compressed size (central directory: {}, local header: {}); such archives unpack differently in different tools, so strata refuses them; save the model again",
            CONFIG.len(),
            CONFIG.len() ^ 1
        )
    );
}

#[test]
fn end_record_problems() {
    let o = Options { count_mismatch: true, ..Options::default() };
    assert_eq!(
        open_err(build_with(&standard(), o), &Limits::default()),
        "the zip end record is corrupt: it declares 4 entries on this disk but 3 in total; the archive was damaged or crafted; save or fetch it again"
    );
    let o = Options { disk: 2, ..Options::default() };
    assert_eq!(
        open_err(build_with(&standard(), o), &Limits::default()),
        "the zip archive spans several disks (disk 2); a .keras archive is a single file; join the parts with `zip -s 0` first"
    );
    // zip64 markers with the locator destroyed
    let mut z = build_with(&standard(), Options { zip64: true, ..Options::default() });
    let loc = z.len() - 22 - 20;
    z[loc] = b'X';
    let end_at = z.len() - 22;
    assert_eq!(
        open_err(z, &Limits::default()),
        format!(
            "the zip end record is corrupt: the end record at byte {end_at} has zip64 markers but no zip64 locator precedes it; the archive was damaged or crafted; save or fetch it again"
        )
    );
    // zip64 record destroyed
    let mut z = build_with(&standard(), Options { zip64: true, ..Options::default() });
    let rec = z.len() - 22 - 20 - 56;
    z[rec] = b'X';
    assert_eq!(
        open_err(z, &Limits::default()),
        format!(
            "the zip end record is corrupt: the zip64 locator points to byte {rec}, where there is no zip64 end record; the archive was damaged or crafted; save or fetch it again"
        )
    );
}

#[test]
fn zip64_archives_are_read() {
    let bytes = build_with(&standard(), Options { zip64: true, ..Options::default() });
    let a = open(bytes).expect("zip64 archive");
    assert_eq!(a.config_bytes().expect("config").as_ref(), CONFIG);
    assert_eq!(a.weights_bytes().expect("weights").as_ref(), &weights()[..]);
}

#[test]
fn entries_dont_fit_and_directory_length() {
    // declare more entries than the central directory can hold: patch both counts
    let mut bytes = valid();
    let end = bytes.len() - 22;
    let cd_size = u32::from_le_bytes([bytes[end + 12], bytes[end + 13], bytes[end + 14], bytes[end + 15]]);
    let many = (cd_size / 46 + 1) as u16;
    bytes[end + 8..end + 10].copy_from_slice(&many.to_le_bytes());
    bytes[end + 10..end + 12].copy_from_slice(&many.to_le_bytes());
    assert_eq!(
        open_err(bytes, &Limits::default()),
        format!(
            "the zip end record is corrupt: it declares {many} entries but only {cd_size} bytes of central directory (each entry needs at least 46); the archive was damaged or crafted; save or fetch it again"
        )
    );
    // declare one entry fewer: the parsed entries stop before the directory ends
    let mut bytes = valid();
    bytes[end + 8..end + 10].copy_from_slice(&2u16.to_le_bytes());
    bytes[end + 10..end + 12].copy_from_slice(&2u16.to_le_bytes());
    let cd_start = u32::from_le_bytes([bytes[end + 16], bytes[end + 17], bytes[end + 18], bytes[end + 19]]) as u64;
    let third = 46 + "metadata.json".len() as u64 + 46 + "config.json".len() as u64;
    assert_eq!(
        open_err(bytes, &Limits::default()),
        format!(
            "the zip end record is corrupt: its 2 entries end at byte {} but the central directory ends at byte {}; the archive was damaged or crafted; save or fetch it again",
            cd_start + third,
            cd_start + cd_size as u64
        )
    );
}

#[test]
fn inflate_failed_short() {
    let mut e = standard();
    let mut cfg = Entry::deflated("config.json", CONFIG);
    cfg.size += 5; // declares more than it inflates to
    e[1] = cfg;
    let a = open(build(&e)).expect("opens");
    assert_eq!(
        a.config_bytes().map(|_| ()).unwrap_err().to_string(),
        format!(
            "zip member `config.json` is corrupt: its deflate data inflates to {} bytes but the central directory declares {}; save or fetch the file again",
            CONFIG.len(),
            CONFIG.len() + 5
        )
    );
    // garbage deflate stream
    let mut e = standard();
    let mut cfg = Entry::deflated("config.json", CONFIG);
    cfg.data = vec![0xff; 16];
    e[1] = cfg;
    let a = open(build(&e)).expect("opens");
    let msg = a.config_bytes().map(|_| ()).unwrap_err().to_string();
    assert!(
        msg.starts_with("zip member `config.json` is corrupt: its deflate data fails to inflate after 0 of "),
        "{msg}"
    );
}

#[test]
fn deflated_members_are_read() {
    let mut e = standard();
    e[1] = Entry::deflated("config.json", CONFIG);
    e[2] = Entry::deflated("model.weights.h5", &weights());
    let a = open(build(&e)).expect("opens");
    assert_eq!(a.member("config.json").map(|m| m.method), Some(Method::Deflated));
    assert_eq!(a.config_bytes().expect("config").as_ref(), CONFIG);
    assert_eq!(a.weights_bytes().expect("weights").as_ref(), &weights()[..]);
    // a deflated weights member has no zero-copy range
    assert_eq!(a.weights_range(), None);
}

#[test]
fn missing_weights() {
    let e = vec![Entry::stored("metadata.json", METADATA), Entry::stored("config.json", CONFIG)];
    let a = open(build(&e)).expect("opens");
    assert_eq!(a.weights_format(), WeightsFormat::Missing);
    assert_eq!(
        a.weights_bytes().map(|_| ()).unwrap_err().to_string(),
        "the archive has neither model.weights.h5 nor model.weights.npz (it has: metadata.json, config.json); Keras raises \"Expected a model.weights.h5 or model.weights.npz file.\" for it too; save the model again with `model.save(\"model.keras\")`"
    );
    assert_eq!(
        a.read_member("nope").map(|_| ()).unwrap_err().to_string(),
        "the archive has no `nope` member (it has: metadata.json, config.json); a Keras 3 `.keras` archive holds metadata.json, config.json and model.weights.h5; was this file written by `model.save(\"model.keras\")` in Keras 3?"
    );
}

#[test]
fn overlap_with_central_directory() {
    // a member whose declared data runs into the central directory
    let mut e = standard();
    e[2].size += 10;
    let mut bytes = build(&e);
    // make the stored size agree so only the overlap is wrong: patch the central entry's
    // compressed size and the local header's
    let a_len = e[2].data.len() as u32 + 10;
    let cd_entry = find(&bytes, b"PK\x01\x02", 2);
    bytes[cd_entry + 20..cd_entry + 24].copy_from_slice(&a_len.to_le_bytes());
    let local = find(&bytes, b"PK\x03\x04", 2);
    bytes[local + 18..local + 22].copy_from_slice(&a_len.to_le_bytes());
    let data_start = (local + 30 + "model.weights.h5".len()) as u64;
    let cd_start = find(&bytes, b"PK\x01\x02", 0) as u64;
    let end_at = (bytes.len() - 22) as u64;
    assert_eq!(
        open_err(bytes, &Limits::default()),
        format!(
            "zip member `model.weights.h5` overlaps the central directory (bytes {}..{} and {cd_start}..{end_at}); overlapping members are how non-recursive zip bombs work, so strata refuses the archive",
            local,
            data_start + a_len as u64
        )
    );
}

/// Offset of the `nth` occurrence of `needle`.
fn find(hay: &[u8], needle: &[u8], nth: usize) -> usize {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .nth(nth)
        .map(|(i, _)| i)
        .expect("needle present")
}

#[test]
fn writer_asset_errors() {
    let w = ArchiveWriter::new(METADATA, CONFIG, b"w");
    assert_eq!(
        w.clone().with_asset("../x", b"").map(|_| ()).unwrap_err().to_string(),
        "cannot write asset `../x`: the name has a `..` component that climbs out of the archive; give a relative `/`-separated path inside assets/"
    );
    assert_eq!(
        w.clone().with_asset("dir/", b"").map(|_| ()).unwrap_err().to_string(),
        "cannot write asset `dir/`: the name has a `.` or empty path component; give a relative `/`-separated path inside assets/"
    );
    let w = w.with_asset("a.txt", b"1").expect("valid asset");
    assert_eq!(w.with_asset("a.txt", b"2").map(|_| ()).unwrap_err().to_string(), "cannot write asset `a.txt` twice");
}

#[test]
fn unsafe_names_in_every_form() {
    for (name, reason) in [
        ("a/./b", "has a `.` or empty path component"),
        ("a//b", "has a `.` or empty path component"),
        ("a\u{0}b", "contains a NUL byte"),
    ] {
        let mut e = standard();
        e.push(Entry::stored(name, b"x"));
        let shown = name.replace('\u{0}', "\\u{0}");
        assert_eq!(
            open_err(build(&e), &Limits::default()),
            format!(
                "zip member `{shown}` {reason}; a .keras archive holds only plain relative paths (Keras 3.15 refuses such paths too, CVE-2026-12479); this archive was crafted or damaged, do not unpack it"
            )
        );
    }
}
