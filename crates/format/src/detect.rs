//! What kind of file this is, from its bytes, never from its name.
//!
//! Keras itself dispatches on the file name (`keras/src/saving/saving_api.py`, `load_model`: a
//! `.keras` suffix goes to `saving_lib`, `.h5`/`.hdf5` to `legacy_h5_format`, anything else is
//! tried as a SavedModel) and then fails deep inside `zipfile` or `h5py` when the bytes disagree
//! ("File is not a zip file", "Unable to synchronously open file (file signature not found)").
//! Users hit exactly that with Git LFS pointers committed in place of models, with HDF5 files
//! renamed `.keras`, and with truncated downloads (keras-facts §6). We therefore look at the
//! bytes (house style §4.4):
//!
//! - HDF5: the signature `\x89HDF\r\n\x1a\n` at offset 0 or at a userblock offset (512, 1024, 2048,
//!   ... doubling), as the HDF5 library searches for it. The superblock's end-of-file address then
//!   says whether the file was cut short.
//! - zip (`.keras`, `.npz`): a local header `PK\x03\x04`, or the end record `PK\x05\x06` of an empty
//!   zip. Without an end-of-central-directory record in the last 64 KiB the zip is truncated.
//! - JSON (`model.json`, `to_json`): first non-space byte `{` or `[`.
//! - Git LFS pointers, pickles (`\x80` + protocol), `.npy` arrays, SavedModel directories: named
//!   precisely so the refusal can say what to do.
//!
//! A name that disagrees with the bytes is not an error: [`extension_mismatch`] gives a note
//! (a doctor finding) and the bytes win.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::limits::human_bytes;

/// The HDF5 format signature.
pub const HDF5_SIGNATURE: [u8; 8] = *b"\x89HDF\r\n\x1a\n";
/// Local file header signature of a zip archive.
pub const ZIP_LOCAL_SIGNATURE: [u8; 4] = *b"PK\x03\x04";
/// End-of-central-directory signature (the whole of an empty zip).
pub const ZIP_END_SIGNATURE: [u8; 4] = *b"PK\x05\x06";
/// Magic of a NumPy `.npy` array.
pub const NPY_MAGIC: [u8; 6] = *b"\x93NUMPY";
/// First line of a Git LFS pointer file.
pub const LFS_VERSION_LINE: &str = "version https://git-lfs.github.com/spec/v1";

/// How many bytes of the head [`detect_path`] reads.
pub const HEAD_BYTES: usize = 4096;
/// How many bytes of the tail [`detect_path`] reads to look for a zip end record
/// (the 22-byte record plus the longest possible archive comment).
pub const ZIP_TAIL_BYTES: u64 = 22 + 65_535;
/// Number of bytes of an unknown file shown in hex.
const UNKNOWN_HEAD: usize = 16;

/// The kind of a file, decided from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detected {
    /// HDF5, with the signature at `userblock` (0 unless a userblock precedes it).
    Hdf5 {
        /// Offset of the HDF5 signature.
        userblock: u64,
    },
    /// A zip archive (`.keras`, `.npz`, ...).
    Zip,
    /// A zip archive with no members (only an end record).
    EmptyZip,
    /// JSON text.
    Json,
    /// A Git LFS pointer instead of the real file.
    GitLfsPointer(LfsPointer),
    /// A Python pickle.
    Pickle {
        /// Pickle protocol (the byte after `\x80`).
        protocol: u8,
    },
    /// A NumPy `.npy` array.
    Npy,
    /// A TensorFlow SavedModel directory (holds `saved_model.pb`).
    SavedModelDir,
    /// The directory form of a `.keras` archive (holds `config.json`).
    KerasDir,
    /// A directory that is neither a SavedModel nor a Keras directory.
    Directory,
    /// Zero bytes.
    Empty,
    /// Nothing we know; `head` holds the first bytes.
    Unknown {
        /// Up to the first 16 bytes.
        head: Vec<u8>,
    },
    /// Starts like a zip but has no end-of-central-directory record.
    TruncatedZip {
        /// Length of the file.
        len: u64,
    },
    /// HDF5 whose superblock says it ends beyond the end of the file.
    TruncatedHdf5 {
        /// Offset of the HDF5 signature.
        userblock: u64,
        /// Where the superblock says the file ends.
        declared_end: u64,
        /// Length of the file.
        len: u64,
    },
}

/// What a Git LFS pointer file says about the real file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfsPointer {
    /// The sha256 object id (64 hex digits), when the pointer has a valid one.
    pub oid: Option<String>,
    /// Size of the real file in bytes, when the pointer has one.
    pub size: Option<u64>,
}

impl Detected {
    /// A short name of the kind, as used in messages ("HDF5", "zip", ...).
    pub fn name(&self) -> &'static str {
        match self {
            Detected::Hdf5 { .. } => "HDF5",
            Detected::Zip | Detected::EmptyZip => "zip",
            Detected::Json => "JSON",
            Detected::GitLfsPointer(_) => "Git LFS pointer",
            Detected::Pickle { .. } => "pickle",
            Detected::Npy => "NumPy .npy",
            Detected::SavedModelDir => "SavedModel directory",
            Detected::KerasDir => "Keras model directory",
            Detected::Directory => "directory",
            Detected::Empty => "empty file",
            Detected::Unknown { .. } => "unknown",
            Detected::TruncatedZip { .. } => "truncated zip",
            Detected::TruncatedHdf5 { .. } => "truncated HDF5",
        }
    }

    /// Whether strata can go on reading this kind (HDF5, zip, JSON or a Keras directory).
    pub fn is_readable(&self) -> bool {
        matches!(self, Detected::Hdf5 { .. } | Detected::Zip | Detected::EmptyZip | Detected::Json | Detected::KerasDir)
    }

    /// The error to report for a kind strata cannot read, naming `path`; `None` when it can.
    pub fn refusal(&self, path: &Path) -> Option<DetectError> {
        let path = path.to_path_buf();
        Some(match self {
            Detected::Hdf5 { .. } | Detected::Zip | Detected::EmptyZip | Detected::Json | Detected::KerasDir => {
                return None;
            }
            Detected::GitLfsPointer(p) => DetectError::GitLfsPointer { path, oid: p.oid.clone(), size: p.size },
            Detected::Pickle { protocol } => DetectError::Pickle { path, protocol: *protocol },
            Detected::Npy => DetectError::Npy { path },
            Detected::SavedModelDir => DetectError::SavedModel { path },
            Detected::Directory => DetectError::Directory { path },
            Detected::Empty => DetectError::Empty { path },
            Detected::Unknown { head } => DetectError::Unknown { path, head: head.clone() },
            Detected::TruncatedZip { len } => DetectError::TruncatedZip { path, len: *len },
            Detected::TruncatedHdf5 { declared_end, len, .. } => {
                DetectError::TruncatedHdf5 { path, declared_end: *declared_end, len: *len }
            }
        })
    }
}

/// Why a file cannot be read, as decided from its bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    /// Reading the file failed.
    #[error("could not read `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is a Git LFS pointer, not the file itself.
    #[error(
        "`{}` is a Git LFS pointer to {} ({}), not the model itself; run `git lfs pull` (or `git lfs fetch --include={}` then `git lfs checkout`) to fetch the real file",
        path.display(),
        lfs_size(*size),
        lfs_oid(oid.as_deref()),
        path.display()
    )]
    GitLfsPointer {
        /// The pointer file.
        path: PathBuf,
        /// sha256 object id of the real file.
        oid: Option<String>,
        /// Size of the real file.
        size: Option<u64>,
    },
    /// The file is a Python pickle.
    #[error(
        "`{}` is a Python pickle (protocol {protocol}), not a Keras model file; strata never unpickles (unpickling runs code from the file); if it holds a Keras model, load it in Python and save it with `model.save(\"model.keras\")`",
        path.display()
    )]
    Pickle {
        /// The file.
        path: PathBuf,
        /// Pickle protocol.
        protocol: u8,
    },
    /// The file is a NumPy array.
    #[error(
        "`{}` is a NumPy .npy array, not a Keras model file; strata reads .keras archives, .h5 full models and .weights.h5 weights",
        path.display()
    )]
    Npy {
        /// The file.
        path: PathBuf,
    },
    /// The path is a TensorFlow SavedModel directory.
    #[error(
        "`{}` is a TensorFlow SavedModel directory (it holds saved_model.pb), which strata does not read; in Python with the TensorFlow that wrote it, load it and save it with `model.save(\"model.keras\")`",
        path.display()
    )]
    SavedModel {
        /// The directory.
        path: PathBuf,
    },
    /// The path is a directory that holds no model.
    #[error(
        "`{}` is a directory without config.json (a Keras model directory) or saved_model.pb (a SavedModel); pass the model file or the model directory itself",
        path.display()
    )]
    Directory {
        /// The directory.
        path: PathBuf,
    },
    /// The file is empty.
    #[error(
        "`{}` is empty (0 bytes); the save was probably interrupted or the download failed; save or download it again",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file kind is unknown.
    #[error(
        "`{}` is not a file kind strata knows: it starts with bytes {}; a .keras archive starts with 50 4b 03 04 (zip), an .h5 file with 89 48 44 46 0d 0a 1a 0a (HDF5), a .json file with `{{`",
        path.display(),
        hex(head)
    )]
    Unknown {
        /// The file.
        path: PathBuf,
        /// Its first bytes.
        head: Vec<u8>,
    },
    /// A zip without its end record.
    #[error(
        "`{}` starts like a zip archive but has no end-of-central-directory record (the file is {}); it was probably cut short by an interrupted save, download or copy; save or fetch it again",
        path.display(),
        human_bytes(*len)
    )]
    TruncatedZip {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// HDF5 shorter than its superblock says.
    #[error(
        "`{}` is HDF5 but shorter than its superblock says: it should end at byte {declared_end} but is {}; it was probably cut short by an interrupted save, download or copy; save or fetch it again",
        path.display(),
        human_bytes(*len)
    )]
    TruncatedHdf5 {
        /// The file.
        path: PathBuf,
        /// Where the superblock says it ends.
        declared_end: u64,
        /// Its length.
        len: u64,
    },
}

fn lfs_size(size: Option<u64>) -> String {
    match size {
        Some(n) => format!("a {} file", human_bytes(n)),
        None => "a file of unstated size".to_string(),
    }
}

fn lfs_oid(oid: Option<&str>) -> String {
    match oid {
        Some(o) => format!("oid sha256:{o}"),
        None => "no valid oid".to_string(),
    }
}

/// Space-separated lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The kind of a file from its first bytes (a prefix: truncation cannot be judged from it).
///
/// Pass at least [`HEAD_BYTES`] bytes where the file has them, so that an HDF5 signature behind a
/// userblock of up to 2048 bytes is found.
pub fn detect(bytes_prefix: &[u8]) -> Detected {
    classify(bytes_prefix)
}

/// The kind of a file given all of its bytes: as [`detect`], plus the truncation checks
/// ([`Detected::TruncatedZip`], [`Detected::TruncatedHdf5`]).
pub fn detect_file_bytes(bytes: &[u8]) -> Detected {
    let kind = classify(bytes);
    let len = bytes.len() as u64;
    match kind {
        Detected::Zip => {
            let tail_start = bytes.len().saturating_sub(ZIP_TAIL_BYTES as usize);
            let tail = bytes.get(tail_start..).unwrap_or(&[]);
            if has_end_record(tail) { Detected::Zip } else { Detected::TruncatedZip { len } }
        }
        Detected::Hdf5 { userblock } => {
            let sb = usize::try_from(userblock).ok().and_then(|u| bytes.get(u..)).unwrap_or(&[]);
            hdf5_truncation(userblock, sb, len)
        }
        other => other,
    }
}

/// The kind of the file or directory at `path`, reading at most [`HEAD_BYTES`] from its head,
/// [`ZIP_TAIL_BYTES`] from its tail and a few small probes for an HDF5 userblock.
pub fn detect_path(path: &Path) -> Result<Detected, DetectError> {
    let io_err = |source| DetectError::Io { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if meta.is_dir() {
        let has = |name: &str| path.join(name).is_file();
        return Ok(if has("config.json") {
            Detected::KerasDir
        } else if has("saved_model.pb") || has("saved_model.pbtxt") {
            Detected::SavedModelDir
        } else {
            Detected::Directory
        });
    }
    let mut file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let head = read_at(&mut file, 0, HEAD_BYTES as u64).map_err(io_err)?;
    let mut kind = classify(&head);
    if matches!(kind, Detected::Unknown { .. }) {
        // userblocks past the head: 4096, 8192, ... (the HDF5 library's search order)
        let mut off: u64 = HEAD_BYTES as u64;
        while off < len {
            let probe = read_at(&mut file, off, HDF5_SIGNATURE.len() as u64).map_err(io_err)?;
            if probe == HDF5_SIGNATURE {
                kind = Detected::Hdf5 { userblock: off };
                break;
            }
            off = match off.checked_mul(2) {
                Some(o) => o,
                None => break,
            };
        }
    }
    Ok(match kind {
        Detected::Zip => {
            let start = len.saturating_sub(ZIP_TAIL_BYTES);
            let tail = read_at(&mut file, start, len - start).map_err(io_err)?;
            if has_end_record(&tail) { Detected::Zip } else { Detected::TruncatedZip { len } }
        }
        Detected::Hdf5 { userblock } => {
            let sb = read_at(&mut file, userblock, 128).map_err(io_err)?;
            hdf5_truncation(userblock, &sb, len)
        }
        other => other,
    })
}

fn read_at(file: &mut File, offset: u64, max: u64) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

fn has_end_record(tail: &[u8]) -> bool {
    tail.windows(ZIP_END_SIGNATURE.len()).any(|w| w == ZIP_END_SIGNATURE)
}

fn classify(b: &[u8]) -> Detected {
    if b.is_empty() {
        return Detected::Empty;
    }
    for off in [0usize, 512, 1024, 2048] {
        if b.get(off..off + HDF5_SIGNATURE.len()) == Some(&HDF5_SIGNATURE[..]) {
            return Detected::Hdf5 { userblock: off as u64 };
        }
    }
    if b.starts_with(&ZIP_LOCAL_SIGNATURE) {
        return Detected::Zip;
    }
    if b.starts_with(&ZIP_END_SIGNATURE) {
        return Detected::EmptyZip;
    }
    if b.starts_with(&NPY_MAGIC) {
        return Detected::Npy;
    }
    if let [0x80, protocol @ 2..=5, ..] = b {
        return Detected::Pickle { protocol: *protocol };
    }
    if b.starts_with(LFS_VERSION_LINE.as_bytes()) {
        return Detected::GitLfsPointer(parse_lfs(b));
    }
    let text = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b);
    if let Some(b'{' | b'[') = text.iter().find(|c| !c.is_ascii_whitespace()) {
        return Detected::Json;
    }
    Detected::Unknown { head: b.iter().take(UNKNOWN_HEAD).copied().collect() }
}

fn parse_lfs(b: &[u8]) -> LfsPointer {
    let text = String::from_utf8_lossy(b);
    let mut oid = None;
    let mut size = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("oid sha256:") {
            let h = h.trim();
            if h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()) {
                oid = Some(h.to_ascii_lowercase());
            }
        } else if let Some(s) = line.strip_prefix("size ") {
            size = s.trim().parse::<u64>().ok();
        }
    }
    LfsPointer { oid, size }
}

/// Reads the end-of-file address from a superblock starting at `sb` (the signature) and compares
/// it with the file length.
fn hdf5_truncation(userblock: u64, sb: &[u8], len: u64) -> Detected {
    let ok = Detected::Hdf5 { userblock };
    let Some(&version) = sb.get(8) else {
        return truncated_hdf5(userblock, userblock.saturating_add(9), len, ok);
    };
    // (offset of size-of-offsets byte, offset of the base address)
    let (size_at, base_at) = match version {
        0 => (13usize, 24usize),
        1 => (13, 28),
        2 | 3 => (9, 12),
        _ => return ok,
    };
    let Some(&o) = sb.get(size_at) else {
        return ok;
    };
    if !matches!(o, 2 | 4 | 8) {
        return ok;
    }
    let o = usize::from(o);
    // base address, then (v0/1 free-space address | v2/3 extension address), then end of file
    let eof_at = base_at + 2 * o;
    let Some(field) = sb.get(eof_at..eof_at + o) else {
        return ok;
    };
    let mut eof: u64 = 0;
    for (i, byte) in field.iter().enumerate() {
        eof |= u64::from(*byte) << (8 * i);
    }
    if field.iter().all(|b| *b == 0xff) {
        return ok; // undefined address
    }
    match userblock.checked_add(eof) {
        Some(end) => truncated_hdf5(userblock, end, len, ok),
        None => ok,
    }
}

fn truncated_hdf5(userblock: u64, declared_end: u64, len: u64, ok: Detected) -> Detected {
    if declared_end > len { Detected::TruncatedHdf5 { userblock, declared_end, len } } else { ok }
}

/// A disagreement between a file's name and its bytes (a doctor finding, not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The file.
    pub path: PathBuf,
    /// Its extension as written (without the dot), e.g. `keras`.
    pub extension: String,
    /// The kind the bytes show, e.g. `HDF5`.
    pub found: &'static str,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes behind a .{} name: reading it as the {} it is", self.found, self.extension, self.found)
    }
}

/// A [`Note`] when the extension of `path` names a different kind than the bytes show.
///
/// Only readable kinds (HDF5, zip, JSON) produce a note; unreadable ones have their own refusal.
/// Unknown extensions never produce one.
pub fn extension_mismatch(path: &Path, kind: &Detected) -> Option<Note> {
    let ext = path.extension()?.to_str()?;
    let expected: &[&str] = match ext.to_ascii_lowercase().as_str() {
        "keras" | "npz" | "zip" => &["zip"],
        "h5" | "hdf5" | "he5" | "hdf" => &["HDF5"],
        "json" => &["JSON"],
        _ => return None,
    };
    let found = match kind {
        Detected::Hdf5 { .. } | Detected::Zip | Detected::EmptyZip | Detected::Json => kind.name(),
        Detected::KerasDir if ext.eq_ignore_ascii_case("keras") => return None,
        _ => return None,
    };
    if expected.contains(&found) {
        return None;
    }
    Some(Note { path: path.to_path_buf(), extension: ext.to_string(), found })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn superblock_v0(eof: u64) -> Vec<u8> {
        let mut b = HDF5_SIGNATURE.to_vec();
        b.extend_from_slice(&[0, 0, 0, 0, 0, 8, 8, 0]); // versions, sizes of offsets/lengths
        b.extend_from_slice(&[4, 0, 16, 0]); // group K values
        b.extend_from_slice(&[0; 4]); // consistency flags
        b.extend_from_slice(&0u64.to_le_bytes()); // base address
        b.extend_from_slice(&u64::MAX.to_le_bytes()); // free-space address (undefined)
        b.extend_from_slice(&eof.to_le_bytes()); // end-of-file address
        b.extend_from_slice(&u64::MAX.to_le_bytes()); // driver info
        b
    }

    fn superblock_v2(eof: u64) -> Vec<u8> {
        let mut b = HDF5_SIGNATURE.to_vec();
        b.extend_from_slice(&[2, 8, 8, 0]);
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&eof.to_le_bytes());
        b.extend_from_slice(&48u64.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b
    }

    #[test]
    fn hdf5_at_zero_and_behind_userblock() {
        assert_eq!(detect(&HDF5_SIGNATURE), Detected::Hdf5 { userblock: 0 });
        let mut b = vec![0u8; 512];
        b.extend_from_slice(&HDF5_SIGNATURE);
        assert_eq!(detect(&b), Detected::Hdf5 { userblock: 512 });
        let mut b = vec![0u8; 100];
        b.extend_from_slice(&HDF5_SIGNATURE);
        assert!(matches!(detect(&b), Detected::Unknown { .. }));
    }

    #[test]
    fn hdf5_truncation_from_superblock() {
        for sb in [superblock_v0(4096), superblock_v2(4096)] {
            let mut whole = sb.clone();
            whole.resize(4096, 0);
            assert_eq!(detect_file_bytes(&whole), Detected::Hdf5 { userblock: 0 });
            let mut cut = sb.clone();
            cut.resize(1000, 0);
            assert_eq!(
                detect_file_bytes(&cut),
                Detected::TruncatedHdf5 { userblock: 0, declared_end: 4096, len: 1000 }
            );
        }
    }

    #[test]
    fn zip_kinds() {
        assert_eq!(detect(b"PK\x03\x04rest"), Detected::Zip);
        let mut empty = ZIP_END_SIGNATURE.to_vec();
        empty.resize(22, 0);
        assert_eq!(detect(&empty), Detected::EmptyZip);
        assert_eq!(detect_file_bytes(b"PK\x03\x04 cut here"), Detected::TruncatedZip { len: 13 });
    }

    #[test]
    fn json_pickle_npy_empty() {
        assert_eq!(detect(b"  \n{\"class_name\": 1}"), Detected::Json);
        assert_eq!(detect(b"\xef\xbb\xbf[1]"), Detected::Json);
        assert_eq!(detect(b"\x80\x04\x95"), Detected::Pickle { protocol: 4 });
        assert_eq!(detect(b"\x93NUMPY\x01\x00"), Detected::Npy);
        assert_eq!(detect(b""), Detected::Empty);
        assert_eq!(detect(b"   "), Detected::Unknown { head: b"   ".to_vec() });
    }

    #[test]
    fn lfs_pointer_message() {
        let oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";
        let text = format!("{LFS_VERSION_LINE}\noid sha256:{oid}\nsize 128974848\n");
        let d = detect(text.as_bytes());
        assert_eq!(d, Detected::GitLfsPointer(LfsPointer { oid: Some(oid.to_string()), size: Some(128974848) }));
        let e = d.refusal(Path::new("models/m.keras")).map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "`models/m.keras` is a Git LFS pointer to a 128974848 bytes (123.0 MiB) file (oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393), not the model itself; run `git lfs pull` (or `git lfs fetch --include=models/m.keras` then `git lfs checkout`) to fetch the real file"
            )
        );
    }

    #[test]
    fn refusal_messages() {
        let p = Path::new("m.bin");
        let msg = |d: Detected| d.refusal(p).map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            msg(Detected::Unknown { head: b"GIF89a".to_vec() }),
            "`m.bin` is not a file kind strata knows: it starts with bytes 47 49 46 38 39 61; a .keras archive starts with 50 4b 03 04 (zip), an .h5 file with 89 48 44 46 0d 0a 1a 0a (HDF5), a .json file with `{`"
        );
        assert_eq!(
            msg(Detected::Empty),
            "`m.bin` is empty (0 bytes); the save was probably interrupted or the download failed; save or download it again"
        );
        assert_eq!(
            msg(Detected::Pickle { protocol: 4 }),
            "`m.bin` is a Python pickle (protocol 4), not a Keras model file; strata never unpickles (unpickling runs code from the file); if it holds a Keras model, load it in Python and save it with `model.save(\"model.keras\")`"
        );
        assert_eq!(
            msg(Detected::Npy),
            "`m.bin` is a NumPy .npy array, not a Keras model file; strata reads .keras archives, .h5 full models and .weights.h5 weights"
        );
        assert_eq!(
            msg(Detected::SavedModelDir),
            "`m.bin` is a TensorFlow SavedModel directory (it holds saved_model.pb), which strata does not read; in Python with the TensorFlow that wrote it, load it and save it with `model.save(\"model.keras\")`"
        );
        assert_eq!(
            msg(Detected::Directory),
            "`m.bin` is a directory without config.json (a Keras model directory) or saved_model.pb (a SavedModel); pass the model file or the model directory itself"
        );
        assert_eq!(
            msg(Detected::TruncatedZip { len: 2048 }),
            "`m.bin` starts like a zip archive but has no end-of-central-directory record (the file is 2048 bytes (2.0 KiB)); it was probably cut short by an interrupted save, download or copy; save or fetch it again"
        );
        assert_eq!(
            msg(Detected::TruncatedHdf5 { userblock: 0, declared_end: 4096, len: 1000 }),
            "`m.bin` is HDF5 but shorter than its superblock says: it should end at byte 4096 but is 1000 bytes; it was probably cut short by an interrupted save, download or copy; save or fetch it again"
        );
        assert_eq!(
            msg(Detected::GitLfsPointer(LfsPointer { oid: None, size: None })),
            "`m.bin` is a Git LFS pointer to a file of unstated size (no valid oid), not the model itself; run `git lfs pull` (or `git lfs fetch --include=m.bin` then `git lfs checkout`) to fetch the real file"
        );
        assert!(Detected::Zip.refusal(p).is_none());
    }

    #[test]
    fn extension_notes() {
        let n = extension_mismatch(Path::new("m.keras"), &Detected::Hdf5 { userblock: 0 });
        assert_eq!(
            n.map(|n| n.to_string()).as_deref(),
            Some("HDF5 bytes behind a .keras name: reading it as the HDF5 it is")
        );
        let n = extension_mismatch(Path::new("m.h5"), &Detected::Zip);
        assert_eq!(
            n.map(|n| n.to_string()).as_deref(),
            Some("zip bytes behind a .h5 name: reading it as the zip it is")
        );
        assert!(extension_mismatch(Path::new("m.keras"), &Detected::Zip).is_none());
        assert!(extension_mismatch(Path::new("m.weights.h5"), &Detected::Hdf5 { userblock: 0 }).is_none());
        assert!(extension_mismatch(Path::new("m.bin"), &Detected::Zip).is_none());
        assert!(extension_mismatch(Path::new("m.keras"), &Detected::Empty).is_none());
    }
}
