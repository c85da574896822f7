//! The `.keras` (v3) archive: a zip holding `metadata.json`, `config.json`, `model.weights.h5` and
//! optional `assets/...` (keras-facts §1.1), or the same names in a directory.
//!
//! **Reading.** The zip structure is parsed here with one bounds-checked cursor rather than through
//! the `zip` crate's reader, so that every guard below runs on the same parse that locates the bytes
//! (no second parser that could see a different archive), and so that a STORED member can be handed
//! to the HDF5 reader as a byte range without copying ([`KerasArchive::weights_range`]). Deflate is
//! inflated with `flate2`. The guards, and the Keras behaviour each mirrors or tightens
//! (`keras/src/saving/saving_lib.py` unless noted):
//!
//! | guard | Keras |
//! |---|---|
//! | member names must be relative, without `..`, `.`, empty components, backslashes, drive letters or NUL | asset paths must stay inside the extraction directory (3.15, PR #23017; CVE-2026-12479); Python's `zipfile.extract` sanitises names silently, we refuse |
//! | duplicate member names refused | `zipfile` keeps the last one silently; a parser differential, so we refuse (house style §4.5) |
//! | symlink members refused | `zipfile` never creates links; extracting tools do, so we refuse |
//! | encrypted members refused | `zipfile` raises "File ... is encrypted, password required for extraction" |
//! | declared size and ratio checked before inflating; inflating stops at the declared size | `_reject_zip_bomb` (3.15): >4 GiB and >100x; our rule is stricter, see [`crate::limits`] |
//! | at most `max_zip_entries` entries, at most `max_member_bytes` per member and `max_decompressed_bytes` in all | none in Keras |
//! | local header must agree with the central directory (name, method, compressed size) | `zipfile` checks the name only ("File name in directory ... and header ... differ.") |
//! | member bytes must lie inside the file, must not overlap each other or the central directory | `zipfile` reads whatever the offsets say; overlapping members are the classic non-recursive zip bomb |
//! | the central directory must end where the end record begins (no prepended or spliced data) | `zipfile` tolerates prepended data |
//! | CRC-32 verified on every read | `zipfile` raises "Bad CRC-32 for file ..." |
//! | non-UTF-8 names refused | Keras writes UTF-8 names (ASCII, or flag bit 11 set) |
//! | `model.weights.npz` is flagged and never unpickled | Keras loads npz with `allow_pickle=False` and so cannot reload its own npz archives (keras-facts §1.1) |
//! | `config.json` / `metadata.json` bounded by `max_json_bytes` | none in Keras |
//! | neither weights member: error | `_load_model_from_fileobj`: "Expected a model.weights.h5 or model.weights.npz file." |
//!
//! The directory form (`model.save(dir, zipped=False)`, Keras >= 3.4) is read with the same names;
//! symbolic links inside it are refused.
//!
//! **Writing.** [`ArchiveWriter`] writes what Keras writes (`_save_model_to_fileobj`): members in the
//! order `metadata.json`, `config.json`, `model.weights.h5`, then assets (sorted by name), all
//! ZIP_STORED, no directory entries. Unlike Keras, every member carries the fixed timestamp
//! 1980-01-01 00:00:00 (Keras stamps `model.weights.h5` with the current time), the Unix system
//! byte and permissions 0600 (as Keras's `zipfile` writes them; the `zip` crate adds the regular-file
//! type bits that `zipfile` leaves out), so that saving the same model twice gives identical bytes (house style §4.9).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::atomic::{AtomicError, write_atomic};
use crate::detect::{Detected, detect, hex};
use crate::limits::{Limits, human_bytes};

/// Name of the metadata member.
pub const METADATA_NAME: &str = "metadata.json";
/// Name of the config member.
pub const CONFIG_NAME: &str = "config.json";
/// Name of the HDF5 weights member.
pub const WEIGHTS_H5_NAME: &str = "model.weights.h5";
/// Name of the npz weights member (Keras's alternative `weights_format="npz"`).
pub const WEIGHTS_NPZ_NAME: &str = "model.weights.npz";
/// Prefix of asset members.
pub const ASSETS_PREFIX: &str = "assets/";

const SIG_LOCAL: u32 = 0x0403_4b50;
const SIG_CENTRAL: u32 = 0x0201_4b50;
const SIG_END: u32 = 0x0605_4b50;
const SIG_END64: u32 = 0x0606_4b50;
const SIG_LOCATOR64: u32 = 0x0706_4b50;
const END_LEN: u64 = 22;
const LOCATOR64_LEN: u64 = 20;
const END64_LEN: u64 = 56;
const CENTRAL_LEN: u64 = 46;
const LOCAL_LEN: u64 = 30;
const MAX_COMMENT: u64 = 65_535;
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
const METHOD_AES: u16 = 99;
const SYSTEM_UNIX: u8 = 3;
const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;

/// How a member's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// Uncompressed (what Keras writes).
    Stored,
    /// Deflate.
    Deflated,
    /// Any other zip method, by its number; reading such a member is refused.
    Other(u16),
}

impl Method {
    fn from_code(code: u16) -> Method {
        match code {
            0 => Method::Stored,
            8 => Method::Deflated,
            other => Method::Other(other),
        }
    }

    /// The zip method number.
    pub fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
            Method::Other(c) => c,
        }
    }

    /// The method's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Method::Stored => "stored",
            Method::Deflated => "deflate",
            Method::Other(12) => "bzip2",
            Method::Other(14) => "lzma",
            Method::Other(93) => "zstd",
            Method::Other(95) => "xz",
            Method::Other(METHOD_AES) => "AES-encrypted",
            Method::Other(_) => "unknown",
        }
    }
}

/// One member of an archive (or one file of the directory form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Name inside the archive, `/`-separated (validated: relative, no `..`).
    pub name: String,
    /// Uncompressed size in bytes (declared by the central directory; checked on read).
    pub size: u64,
    /// Stored size in bytes (equal to `size` for STORED members and in the directory form).
    pub compressed_size: u64,
    /// How the bytes are stored.
    pub method: Method,
    /// CRC-32 from the central directory; `None` in the directory form.
    pub crc32: Option<u32>,
    /// Byte range of the stored (possibly compressed) data inside the archive file; `None` in the
    /// directory form.
    pub data: Option<Range<u64>>,
    /// Whether this is a directory entry (name ends with `/`, no data).
    pub is_dir: bool,
}

/// Where the weights of an archive are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// `model.weights.h5` (the default, and what strata reads).
    H5,
    /// `model.weights.npz` only (pickled object arrays; never read).
    Npz,
    /// Neither.
    Missing,
}

/// Why a member name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name starts with `/`.
    Absolute,
    /// The name starts with a drive letter such as `C:`.
    DriveLetter,
    /// The name contains a `\`.
    Backslash,
    /// A path component is `..`.
    ParentDir,
    /// A path component is `.` or empty (`a//b`).
    DotOrEmptyComponent,
    /// The name contains a NUL byte.
    Nul,
}

impl NameProblem {
    fn reason(self) -> &'static str {
        match self {
            NameProblem::Empty => "is empty",
            NameProblem::Absolute => "is an absolute path",
            NameProblem::DriveLetter => "starts with a drive letter",
            NameProblem::Backslash => {
                "contains a backslash (a Windows separator that unpacking tools treat as a directory separator)"
            }
            NameProblem::ParentDir => "has a `..` component that climbs out of the archive",
            NameProblem::DotOrEmptyComponent => "has a `.` or empty path component",
            NameProblem::Nul => "contains a NUL byte",
        }
    }
}

/// Where a truncated archive is cut, found by walking the local headers from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Name of the member that is cut (lossy if not UTF-8), if its header was complete.
    pub name: Option<String>,
    /// Offset of its local header.
    pub start: u64,
    /// Where its data would end.
    pub end: u64,
}

/// An error reading or writing a `.keras` archive. Messages name the member; the lead wraps them
/// with the file's location.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Reading a file failed.
    #[error("could not read `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file exceeds `max_file_bytes`.
    #[error(
        "the archive is {} but the limit is {}; raise it with `Limits::with_max_file_bytes` if the file is trusted",
        human_bytes(*size),
        human_bytes(*limit)
    )]
    FileTooLarge {
        /// Size of the file.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes are not a zip archive.
    #[error("not a .keras archive (a zip file): {}", not_zip_detail(found))]
    NotZip {
        /// What the bytes are.
        found: Detected,
    },
    /// No end-of-central-directory record: the archive is cut short.
    #[error(
        "the zip archive is incomplete: there is no end-of-central-directory record in the last 64 KiB of its {}; {}; the file was probably cut short by an interrupted save, download or copy; save or fetch it again",
        human_bytes(*len),
        truncation_detail(*intact, last_intact.as_deref(), cut.as_ref(), *len)
    )]
    Truncated {
        /// Length of the file.
        len: u64,
        /// Number of complete members found walking local headers.
        intact: usize,
        /// Name of the last complete member.
        last_intact: Option<String>,
        /// The member that runs past the end, if one was found.
        cut: Option<Cut>,
    },
    /// The end record is malformed or points outside the file.
    #[error("the zip end record is corrupt: {}; the archive was damaged or crafted; save or fetch it again", what)]
    BadEndRecord {
        /// What is wrong with it.
        what: EndProblem,
    },
    /// Split (multi-disk) archives are not `.keras` files.
    #[error(
        "the zip archive spans several disks (disk {disk}); a .keras archive is a single file; join the parts with `zip -s 0` first"
    )]
    MultiDisk {
        /// The disk number found.
        disk: u32,
    },
    /// The central directory is not where the end record says, or not adjacent to it.
    #[error(
        "the zip end record places the central directory at bytes {start}..{end}, but it must end at byte {expected_end} where the end record begins (the file is {}); the archive has extra data spliced in or is corrupt; save it again",
        human_bytes(*len)
    )]
    CentralDirectoryMisplaced {
        /// Start of the central directory per the end record.
        start: u64,
        /// End of the central directory per the end record.
        end: u64,
        /// Where it should end.
        expected_end: u64,
        /// Length of the file.
        len: u64,
    },
    /// More entries than `max_zip_entries`.
    #[error(
        "the zip archive has {count} entries but the limit is {limit}; a Keras archive has 3 plus its assets; raise it with `Limits::with_max_zip_entries` if the file is trusted"
    )]
    TooManyEntries {
        /// Entries declared (or found, in the directory form).
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// A central directory entry is malformed.
    #[error(
        "zip central directory entry #{index} at byte {offset} is corrupt ({what}); the archive was damaged or crafted; save or fetch it again"
    )]
    BadCentralEntry {
        /// Index of the entry.
        index: u64,
        /// Its offset in the file.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// A member name is not UTF-8.
    #[error(
        "zip member at index {index} of the central directory has a name that is not UTF-8 (bytes {}); Keras writes UTF-8 names, so this archive was not written by Keras; re-create it with UTF-8 names",
        hex(raw)
    )]
    NonUtf8Name {
        /// Index of the entry.
        index: u64,
        /// The raw name.
        raw: Vec<u8>,
    },
    /// A member name could escape the extraction directory or is ambiguous.
    #[error(
        "zip member `{}` {}; a .keras archive holds only plain relative paths (Keras 3.15 refuses such paths too, CVE-2026-12479); this archive was crafted or damaged, do not unpack it",
        shown(name),
        problem.reason()
    )]
    UnsafeMemberName {
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// Two members have the same name.
    #[error(
        "zip member `{}` appears twice; tools disagree on which copy wins (Python's zipfile takes the last), so strata refuses the archive; re-create it without duplicates",
        shown(name)
    )]
    DuplicateMember {
        /// The name.
        name: String,
    },
    /// A member is a symbolic link.
    #[error(
        "zip member `{}` is a symbolic link; a .keras archive holds only regular files and a link could point outside the archive when unpacked; re-create the archive without links",
        shown(name)
    )]
    SymlinkMember {
        /// The name.
        name: String,
    },
    /// A member is encrypted.
    #[error(
        "zip member `{}` is encrypted; Keras never encrypts archive members and strata does not decrypt them; decrypt the archive and zip it again without a password",
        shown(name)
    )]
    EncryptedMember {
        /// The name.
        name: String,
    },
    /// A member's compression method is not stored or deflate.
    #[error(
        "zip member `{}` is compressed with {} (method {method}), which strata does not read; Keras writes members uncompressed; re-zip it with stored or deflate members",
        shown(name),
        Method::from_code(*method).name()
    )]
    UnsupportedMethod {
        /// The name.
        name: String,
        /// The zip method number.
        method: u16,
    },
    /// A member declares more than `max_member_bytes`.
    #[error(
        "zip member `{}` declares {} uncompressed but the limit is {}; raise it with `Limits::with_max_member_bytes` if the file is trusted",
        shown(name),
        human_bytes(*size),
        human_bytes(*limit)
    )]
    MemberTooLarge {
        /// The name.
        name: String,
        /// Declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// All members together declare more than `max_decompressed_bytes`.
    #[error(
        "the zip members declare {} uncompressed in all but the limit is {}; raise it with `Limits::with_max_decompressed_bytes` if the file is trusted",
        human_bytes(*total),
        human_bytes(*limit)
    )]
    TotalTooLarge {
        /// Sum of the declared sizes (saturating).
        total: u64,
        /// The limit.
        limit: u64,
    },
    /// A member trips the zip-bomb rule.
    #[error(
        "zip member `{}` looks like a zip bomb: it declares {} from {} compressed (ratio above {max_ratio}x for a member over {}); refused before inflating; raise `Limits::with_max_compression_ratio` if the file is trusted",
        shown(name),
        human_bytes(*size),
        human_bytes(*compressed),
        human_bytes(*floor)
    )]
    ZipBomb {
        /// The name.
        name: String,
        /// Declared uncompressed size.
        size: u64,
        /// Compressed size.
        compressed: u64,
        /// The ratio limit.
        max_ratio: u64,
        /// The size above which the ratio is checked.
        floor: u64,
    },
    /// A stored member whose sizes disagree.
    #[error(
        "zip member `{}` is stored uncompressed but declares {size} bytes uncompressed and {compressed} bytes stored; the archive is corrupt or crafted; save it again",
        shown(name)
    )]
    StoredSizeMismatch {
        /// The name.
        name: String,
        /// Declared uncompressed size.
        size: u64,
        /// Declared stored size.
        compressed: u64,
    },
    /// A directory entry that carries data.
    #[error(
        "zip member `{}` is a directory entry but holds {size} bytes; the archive is corrupt or crafted",
        shown(name)
    )]
    DirectoryWithData {
        /// The name.
        name: String,
        /// Its declared size.
        size: u64,
    },
    /// A member's bytes lie beyond the end of the file.
    #[error(
        "zip central directory says member `{}` is at offset {start}..{end} but the file is {len} bytes; the file was cut short or the directory is corrupt; save or fetch it again",
        shown(name)
    )]
    MemberOutOfBounds {
        /// The name.
        name: String,
        /// Offset of its local header.
        start: u64,
        /// End of its data.
        end: u64,
        /// Length of the file.
        len: u64,
    },
    /// No local header where the central directory says.
    #[error(
        "zip member `{}`: the central directory says its header is at byte {offset}, but no local header is there; the archive is corrupt or crafted; save or fetch it again",
        shown(name)
    )]
    BadLocalHeader {
        /// The name.
        name: String,
        /// The offset.
        offset: u64,
    },
    /// The local header and the central directory disagree.
    #[error(
        "zip member `{}`: its local header and the central directory disagree on the {field} (central directory: {central}, local header: {local}); such archives unpack differently in different tools, so strata refuses them; save the model again",
        shown(name)
    )]
    LocalHeaderMismatch {
        /// The name (from the central directory).
        name: String,
        /// Which field.
        field: &'static str,
        /// Value in the central directory.
        central: String,
        /// Value in the local header.
        local: String,
    },
    /// Two members (or a member and the central directory) share bytes.
    #[error(
        "zip member `{}` overlaps {} (bytes {}..{} and {}..{}); overlapping members are how non-recursive zip bombs work, so strata refuses the archive",
        shown(first),
        overlap_other(second),
        first_range.start,
        first_range.end,
        second_range.start,
        second_range.end
    )]
    Overlap {
        /// The member that comes first.
        first: String,
        /// Its bytes (local header to end of data).
        first_range: Range<u64>,
        /// The other member, or `None` for the central directory.
        second: Option<String>,
        /// Its bytes.
        second_range: Range<u64>,
    },
    /// Inflating produced more than the declared size.
    #[error(
        "zip member `{}` inflates past its declared {}; stopped there; the archive is corrupt or crafted (a zip bomb lies about sizes)",
        shown(name),
        human_bytes(*declared)
    )]
    InflateOverrun {
        /// The name.
        name: String,
        /// Declared size.
        declared: u64,
    },
    /// Inflating failed or produced less than the declared size.
    #[error(
        "zip member `{}` is corrupt: its deflate data {}; save or fetch the file again",
        shown(name),
        inflate_detail(*declared, *got, reason.as_deref())
    )]
    InflateFailed {
        /// The name.
        name: String,
        /// Declared size.
        declared: u64,
        /// Bytes produced before the failure.
        got: u64,
        /// The decoder's complaint, if any.
        reason: Option<String>,
    },
    /// Data does not match its CRC-32.
    #[error(
        "zip member `{}` is corrupt: its CRC-32 is {found:08x} but the central directory says {expected:08x}; the file was damaged after saving (disk or transfer error); save or fetch it again",
        shown(name)
    )]
    CrcMismatch {
        /// The name.
        name: String,
        /// CRC-32 in the central directory.
        expected: u32,
        /// CRC-32 of the data.
        found: u32,
    },
    /// A required member is missing.
    #[error(
        "the archive has no `{name}` member (it has: {}); a Keras 3 `.keras` archive holds metadata.json, config.json and model.weights.h5; was this file written by `model.save(\"model.keras\")` in Keras 3?",
        list_names(present)
    )]
    MissingMember {
        /// The missing name.
        name: String,
        /// The names present.
        present: Vec<String>,
    },
    /// Neither weights member.
    #[error(
        "the archive has neither model.weights.h5 nor model.weights.npz (it has: {}); Keras raises \"Expected a model.weights.h5 or model.weights.npz file.\" for it too; save the model again with `model.save(\"model.keras\")`",
        list_names(present)
    )]
    MissingWeights {
        /// The names present.
        present: Vec<String>,
    },
    /// The weights are in the npz format.
    #[error(
        "the weights are in model.weights.npz, Keras's npz weights format whose entries are pickled object arrays; strata never unpickles (and Keras itself cannot reload them: \"Object arrays cannot be loaded when allow_pickle=False\"); in Python, save the model again with the default weights format (model.weights.h5)"
    )]
    NpzWeights,
    /// A JSON member exceeds `max_json_bytes`.
    #[error(
        "zip member `{}` is {} of JSON but the limit is {}; raise it with `Limits::with_max_json_bytes` if the file is trusted",
        shown(name),
        human_bytes(*size),
        human_bytes(*limit)
    )]
    JsonTooLarge {
        /// The name.
        name: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A directory-form path is a symbolic link.
    #[error(
        "`{}` in the model directory is a symbolic link; strata does not follow links in a model directory (they could point anywhere); copy the real file there instead",
        path.display()
    )]
    DirSymlink {
        /// The link.
        path: PathBuf,
    },
    /// A directory-form file name is not UTF-8.
    #[error(
        "`{}` in the model directory has a name that is not UTF-8; Keras writes UTF-8 names; rename it",
        path.display()
    )]
    DirNonUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// An asset name given to the writer is unsafe.
    #[error(
        "cannot write asset `{}`: the name {}; give a relative `/`-separated path inside assets/",
        shown(name),
        problem.reason()
    )]
    BadAssetName {
        /// The name given.
        name: String,
        /// What is wrong.
        problem: NameProblem,
    },
    /// An asset name given twice to the writer.
    #[error("cannot write asset `{}` twice", shown(name))]
    DuplicateAsset {
        /// The name given.
        name: String,
    },
    /// The zip writer failed.
    #[error("writing the zip archive failed: {source}")]
    Write {
        /// The zip error.
        #[source]
        source: zip::result::ZipError,
    },
    /// The atomic save failed.
    #[error(transparent)]
    Save(#[from] AtomicError),
}

/// What is wrong with an end record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndProblem {
    /// The zip64 locator is missing though the end record needs it.
    #[error("the end record at byte {end_at} has zip64 markers but no zip64 locator precedes it")]
    MissingZip64Locator {
        /// Offset of the end record.
        end_at: u64,
    },
    /// The zip64 end record is not where the locator says.
    #[error("the zip64 locator points to byte {offset}, where there is no zip64 end record")]
    BadZip64Record {
        /// The offset.
        offset: u64,
    },
    /// Fewer central-directory bytes than the declared entries need.
    #[error(
        "it declares {entries} entries but only {cd_size} bytes of central directory (each entry needs at least 46)"
    )]
    EntriesDontFit {
        /// Declared entries.
        entries: u64,
        /// Declared central directory size.
        cd_size: u64,
    },
    /// The entry counts disagree.
    #[error("it declares {on_disk} entries on this disk but {total} in total")]
    CountMismatch {
        /// Entries on this disk.
        on_disk: u64,
        /// Entries in total.
        total: u64,
    },
    /// The entries do not fill the central directory exactly.
    #[error("its {entries} entries end at byte {parsed_end} but the central directory ends at byte {cd_end}")]
    DirectoryLength {
        /// Declared entries.
        entries: u64,
        /// Where the parsed entries end.
        parsed_end: u64,
        /// Where the central directory ends.
        cd_end: u64,
    },
}

fn not_zip_detail(found: &Detected) -> String {
    match found {
        Detected::Hdf5 { .. } | Detected::TruncatedHdf5 { .. } => {
            "the bytes are HDF5; read it as a legacy .h5 model or a .weights.h5 file instead".to_string()
        }
        Detected::Json => {
            "the bytes are JSON (a model config such as `model.to_json()` writes?); read it as a config instead"
                .to_string()
        }
        Detected::GitLfsPointer(p) => format!(
            "it is a Git LFS pointer to {}{}, not the archive; run `git lfs pull` to fetch the real file",
            p.size.map(|s| format!("a {} file", human_bytes(s))).unwrap_or_else(|| "a file".to_string()),
            p.oid.as_deref().map(|o| format!(" (oid sha256:{o})")).unwrap_or_default()
        ),
        Detected::Empty => {
            "it is empty (0 bytes); the save was probably interrupted or the download failed".to_string()
        }
        Detected::Pickle { protocol } => {
            format!("it is a Python pickle (protocol {protocol}); strata never unpickles (unpickling runs code)")
        }
        Detected::Unknown { head } => format!("it starts with bytes {} where a zip starts with 50 4b 03 04", hex(head)),
        other => format!("the bytes are a {}", other.name()),
    }
}

fn truncation_detail(intact: usize, last: Option<&str>, cut: Option<&Cut>, len: u64) -> String {
    let before = match (intact, last) {
        (0, _) | (_, None) => "no member before it is complete".to_string(),
        (1, Some(l)) => format!("the one member before it, `{}`, is complete", shown(l)),
        (n, Some(l)) => format!("the {n} members before it, up to `{}`, are complete", shown(l)),
    };
    match cut {
        Some(c) => format!(
            "{} starting at byte {} needs bytes up to {} but the file ends at {len}; {before}",
            match &c.name {
                Some(n) => format!("member `{}`", shown(n)),
                None => "a member header".to_string(),
            },
            c.start,
            c.end
        ),
        None => match (intact, last) {
            (0, _) | (_, None) => "no complete member was found".to_string(),
            (1, Some(l)) => format!("the one member `{}` is complete but nothing after it is", shown(l)),
            (n, Some(l)) => format!(
                "the {n} members up to `{}` are complete but the central directory after them is missing",
                shown(l)
            ),
        },
    }
}

fn overlap_other(second: &Option<String>) -> String {
    match second {
        Some(n) => format!("member `{}`", shown(n)),
        None => "the central directory".to_string(),
    }
}

fn inflate_detail(declared: u64, got: u64, reason: Option<&str>) -> String {
    match reason {
        Some(r) => format!("fails to inflate after {got} of {declared} bytes ({r})"),
        None => format!("inflates to {got} bytes but the central directory declares {declared}"),
    }
}

/// A member name for messages: control characters escaped, everything else as is.
fn shown(name: &str) -> String {
    name.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        return "no members".to_string();
    }
    let shown: Vec<String> = names.iter().take(20).map(|n| shown(n)).collect();
    let mut s = shown.join(", ");
    if names.len() > 20 {
        s.push_str(&format!(", and {} more", names.len() - 20));
    }
    s
}

/// Checks a member name: relative, `/`-separated, no `..`/`.`/empty components, no backslash,
/// drive letter or NUL. A trailing `/` (directory entry) is allowed.
pub fn check_member_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.contains('\0') {
        return Err(NameProblem::Nul);
    }
    if name.contains('\\') {
        return Err(NameProblem::Backslash);
    }
    if name.starts_with('/') {
        return Err(NameProblem::Absolute);
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err(NameProblem::DriveLetter);
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    for comp in body.split('/') {
        match comp {
            ".." => return Err(NameProblem::ParentDir),
            "" | "." => return Err(NameProblem::DotOrEmptyComponent),
            _ => {}
        }
    }
    Ok(())
}

/// Bounds-checked little-endian cursor over a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        let s = self.take(2)?;
        Some(u16::from_le_bytes([*s.first()?, *s.get(1)?]))
    }
    fn u32(&mut self) -> Option<u32> {
        let s = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(s);
        Some(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Option<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(u64::from_le_bytes(a))
    }
}

fn le_u32(b: &[u8]) -> Option<u32> {
    Cursor::new(b).u32()
}

enum Source {
    Bytes(Vec<u8>),
    File { file: Mutex<File>, path: PathBuf, len: u64 },
    Dir { root: PathBuf },
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::Bytes(b) => b.len() as u64,
            Source::File { len, .. } => *len,
            Source::Dir { .. } => 0,
        }
    }

    fn path(&self) -> PathBuf {
        match self {
            Source::Bytes(_) => PathBuf::from("(bytes in memory)"),
            Source::File { path, .. } => path.clone(),
            Source::Dir { root } => root.clone(),
        }
    }

    /// Bytes `off..off+n`; callers check the range against `len()` first, a bad range is an error.
    fn read_at(&self, off: u64, n: u64) -> Result<Cow<'_, [u8]>, ArchiveError> {
        let eof = || ArchiveError::Io {
            path: self.path(),
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "range past the end of the file"),
        };
        let end = off.checked_add(n).ok_or_else(eof)?;
        if end > self.len() {
            return Err(eof());
        }
        match self {
            Source::Bytes(b) => {
                let s = usize::try_from(off).map_err(|_| eof())?;
                let e = usize::try_from(end).map_err(|_| eof())?;
                b.get(s..e).map(Cow::Borrowed).ok_or_else(eof)
            }
            Source::File { file, path, .. } => {
                let io_err = |source| ArchiveError::Io { path: path.clone(), source };
                let n = usize::try_from(n).map_err(|_| eof())?;
                let mut buf = vec![0u8; n];
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                f.seek(SeekFrom::Start(off)).map_err(io_err)?;
                f.read_exact(&mut buf).map_err(io_err)?;
                Ok(Cow::Owned(buf))
            }
            Source::Dir { .. } => Err(eof()),
        }
    }
}

/// A `.keras` archive (zip or directory form), parsed and checked, members read on demand.
pub struct KerasArchive {
    source: Source,
    members: Vec<Member>,
    limits: Limits,
}

impl std::fmt::Debug for KerasArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerasArchive").field("source", &self.source.path()).field("members", &self.members).finish()
    }
}

impl KerasArchive {
    /// Opens a `.keras` zip file, or a Keras model directory (the `zipped=False` form), and checks
    /// its structure. Only the head, the end record, the central directory and the local headers
    /// are read here; member bytes are read by the accessors.
    pub fn open(path: &Path, limits: &Limits) -> Result<KerasArchive, ArchiveError> {
        let io_err = |source| ArchiveError::Io { path: path.to_path_buf(), source };
        let meta = fs::metadata(path).map_err(io_err)?;
        if meta.is_dir() {
            return open_dir(path, limits);
        }
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let source = Source::File { file: Mutex::new(file), path: path.to_path_buf(), len };
        Self::from_source(source, limits)
    }

    /// Parses an archive held in memory.
    pub fn from_bytes(bytes: Vec<u8>, limits: &Limits) -> Result<KerasArchive, ArchiveError> {
        Self::from_source(Source::Bytes(bytes), limits)
    }

    fn from_source(source: Source, limits: &Limits) -> Result<KerasArchive, ArchiveError> {
        let members = parse_zip(&source, limits)?;
        Ok(KerasArchive { source, members, limits: limits.clone() })
    }

    /// The members, in central-directory order (file-system walk order, sorted, for a directory).
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Whether this is the directory form.
    pub fn is_directory_form(&self) -> bool {
        matches!(self.source, Source::Dir { .. })
    }

    /// The file or directory this was opened from (`None` for [`KerasArchive::from_bytes`]).
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::Bytes(_) => None,
            Source::File { path, .. } => Some(path),
            Source::Dir { root } => Some(root),
        }
    }

    /// The whole archive, for [`KerasArchive::from_bytes`] (use with [`Member::data`]).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.source {
            Source::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The bytes of member `name`, inflated and CRC-checked; borrowed from the input when the
    /// archive is in memory and the member is stored.
    pub fn read_member(&self, name: &str) -> Result<Cow<'_, [u8]>, ArchiveError> {
        let m = self.member(name).ok_or_else(|| self.missing(name))?;
        self.read(m)
    }

    /// `metadata.json`, if present (Keras writes it but never reads it back).
    pub fn metadata(&self) -> Result<Option<Cow<'_, [u8]>>, ArchiveError> {
        match self.member(METADATA_NAME) {
            Some(m) => self.read_json(m).map(Some),
            None => Ok(None),
        }
    }

    /// `config.json`.
    pub fn config_bytes(&self) -> Result<Cow<'_, [u8]>, ArchiveError> {
        let m = self.member(CONFIG_NAME).ok_or_else(|| self.missing(CONFIG_NAME))?;
        self.read_json(m)
    }

    /// Where the weights are.
    pub fn weights_format(&self) -> WeightsFormat {
        if self.member(WEIGHTS_H5_NAME).is_some() {
            WeightsFormat::H5
        } else if self.member(WEIGHTS_NPZ_NAME).is_some() {
            WeightsFormat::Npz
        } else {
            WeightsFormat::Missing
        }
    }

    /// The `model.weights.npz` member, if the archive has one (flagged, never read).
    pub fn npz_weights(&self) -> Option<&Member> {
        self.member(WEIGHTS_NPZ_NAME)
    }

    /// The bytes of `model.weights.h5`. Errors with [`ArchiveError::NpzWeights`] when the archive
    /// has only npz weights.
    pub fn weights_bytes(&self) -> Result<Cow<'_, [u8]>, ArchiveError> {
        match self.weights_format() {
            WeightsFormat::H5 => self.read_member(WEIGHTS_H5_NAME),
            WeightsFormat::Npz => Err(ArchiveError::NpzWeights),
            WeightsFormat::Missing => Err(ArchiveError::MissingWeights { present: self.names() }),
        }
    }

    /// For a STORED `model.weights.h5` in a zip: its byte range inside the archive file (or inside
    /// [`KerasArchive::as_bytes`]), so that the HDF5 reader can use it without copying. The range
    /// is not CRC-checked; [`KerasArchive::weights_bytes`] is.
    pub fn weights_range(&self) -> Option<Range<u64>> {
        let m = self.member(WEIGHTS_H5_NAME)?;
        if m.method == Method::Stored { m.data.clone() } else { None }
    }

    /// For the directory form: the path of `model.weights.h5`.
    pub fn weights_path(&self) -> Option<PathBuf> {
        match &self.source {
            Source::Dir { root } if self.member(WEIGHTS_H5_NAME).is_some() => Some(root.join(WEIGHTS_H5_NAME)),
            _ => None,
        }
    }

    /// The asset files (members under `assets/`, directory entries excluded).
    pub fn assets(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.name.starts_with(ASSETS_PREFIX) && !m.is_dir)
    }

    fn names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    fn missing(&self, name: &str) -> ArchiveError {
        ArchiveError::MissingMember { name: name.to_string(), present: self.names() }
    }

    fn read_json(&self, m: &Member) -> Result<Cow<'_, [u8]>, ArchiveError> {
        if m.size > self.limits.max_json_bytes {
            return Err(ArchiveError::JsonTooLarge {
                name: m.name.clone(),
                size: m.size,
                limit: self.limits.max_json_bytes,
            });
        }
        self.read(m)
    }

    fn read(&self, m: &Member) -> Result<Cow<'_, [u8]>, ArchiveError> {
        if let Source::Dir { root } = &self.source {
            return read_dir_member(root, m, &self.limits).map(Cow::Owned);
        }
        let Some(range) = m.data.clone() else {
            return Ok(Cow::Borrowed(&[]));
        };
        let raw = self.source.read_at(range.start, range.end - range.start)?;
        let data = match m.method {
            Method::Stored => raw,
            Method::Deflated => Cow::Owned(inflate(&m.name, &raw, m.size)?),
            Method::Other(code) => {
                return Err(ArchiveError::UnsupportedMethod { name: m.name.clone(), method: code });
            }
        };
        if let Some(expected) = m.crc32 {
            let found = crc32fast::hash(&data);
            if found != expected {
                return Err(ArchiveError::CrcMismatch { name: m.name.clone(), expected, found });
            }
        }
        Ok(data)
    }
}

fn inflate(name: &str, raw: &[u8], declared: u64) -> Result<Vec<u8>, ArchiveError> {
    let cap = usize::try_from(declared.min(64 << 20)).unwrap_or(0);
    let mut out = Vec::with_capacity(cap);
    let decoder = flate2::read::DeflateDecoder::new(raw);
    let limit = declared.saturating_add(1);
    let res = decoder.take(limit).read_to_end(&mut out);
    let got = out.len() as u64;
    match res {
        Err(e) => {
            Err(ArchiveError::InflateFailed { name: name.to_string(), declared, got, reason: Some(e.to_string()) })
        }
        Ok(_) if got > declared => Err(ArchiveError::InflateOverrun { name: name.to_string(), declared }),
        Ok(_) if got < declared => {
            Err(ArchiveError::InflateFailed { name: name.to_string(), declared, got, reason: None })
        }
        Ok(_) => Ok(out),
    }
}

struct EndRecord {
    at: u64,
    entries: u64,
    cd_size: u64,
    cd_offset: u64,
    /// Where the central directory must end (the zip64 end record, or the end record).
    cd_must_end: u64,
}

fn parse_zip(src: &Source, limits: &Limits) -> Result<Vec<Member>, ArchiveError> {
    let len = src.len();
    if len > limits.max_file_bytes {
        return Err(ArchiveError::FileTooLarge { size: len, limit: limits.max_file_bytes });
    }
    let head = src.read_at(0, len.min(crate::detect::HEAD_BYTES as u64))?;
    let kind = detect(&head);
    if !matches!(kind, Detected::Zip | Detected::EmptyZip) {
        return Err(ArchiveError::NotZip { found: kind });
    }
    drop(head);
    let end = find_end_record(src, len)?;
    if end.entries > limits.max_zip_entries {
        return Err(ArchiveError::TooManyEntries { count: end.entries, limit: limits.max_zip_entries });
    }
    let cd_end = end.cd_offset.checked_add(end.cd_size);
    if cd_end != Some(end.cd_must_end) {
        return Err(ArchiveError::CentralDirectoryMisplaced {
            start: end.cd_offset,
            end: cd_end.unwrap_or(u64::MAX),
            expected_end: end.cd_must_end,
            len,
        });
    }
    if end.entries.checked_mul(CENTRAL_LEN).is_none_or(|n| n > end.cd_size) {
        return Err(ArchiveError::BadEndRecord {
            what: EndProblem::EntriesDontFit { entries: end.entries, cd_size: end.cd_size },
        });
    }
    let cd = src.read_at(end.cd_offset, end.cd_size)?;
    let mut cur = Cursor::new(&cd);
    // entries * 46 <= cd_size <= len, so this capacity is bounded by the file.
    let mut members = Vec::with_capacity(usize::try_from(end.entries).unwrap_or(0));
    let mut seen = HashSet::new();
    let mut total: u64 = 0;
    // (start, end, name) of every member's bytes, for the overlap check
    let mut spans: Vec<(u64, u64, Option<String>)> = Vec::new();
    for index in 0..end.entries {
        let offset = end.cd_offset + cur.pos as u64;
        let bad = |what| ArchiveError::BadCentralEntry { index, offset, what };
        let e = parse_central_entry(&mut cur).map_err(bad)?;
        let name = String::from_utf8(e.name.to_vec())
            .map_err(|_| ArchiveError::NonUtf8Name { index, raw: e.name.to_vec() })?;
        check_member_name(&name).map_err(|problem| ArchiveError::UnsafeMemberName { name: name.clone(), problem })?;
        if !seen.insert(name.clone()) {
            return Err(ArchiveError::DuplicateMember { name });
        }
        if e.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0 || e.method == METHOD_AES {
            return Err(ArchiveError::EncryptedMember { name });
        }
        if e.system == SYSTEM_UNIX && (e.external_attr >> 16) & S_IFMT == S_IFLNK {
            return Err(ArchiveError::SymlinkMember { name });
        }
        let is_dir = name.ends_with('/');
        if is_dir && (e.size != 0 || e.compressed_size != 0) {
            return Err(ArchiveError::DirectoryWithData { name, size: e.size });
        }
        if e.size > limits.max_member_bytes {
            return Err(ArchiveError::MemberTooLarge { name, size: e.size, limit: limits.max_member_bytes });
        }
        total = total.saturating_add(e.size);
        if total > limits.max_decompressed_bytes {
            return Err(ArchiveError::TotalTooLarge { total, limit: limits.max_decompressed_bytes });
        }
        let method = Method::from_code(e.method);
        if method == Method::Stored && e.size != e.compressed_size {
            return Err(ArchiveError::StoredSizeMismatch { name, size: e.size, compressed: e.compressed_size });
        }
        if limits.is_zip_bomb(e.size, e.compressed_size) {
            return Err(ArchiveError::ZipBomb {
                name,
                size: e.size,
                compressed: e.compressed_size,
                max_ratio: limits.max_compression_ratio,
                floor: limits.ratio_floor_bytes,
            });
        }
        let data = locate_data(src, len, &name, &e)?;
        spans.push((e.header_offset, data.end, Some(name.clone())));
        members.push(Member {
            name,
            size: e.size,
            compressed_size: e.compressed_size,
            method,
            crc32: Some(e.crc32),
            data: Some(data),
            is_dir,
        });
    }
    if cur.pos as u64 != end.cd_size {
        return Err(ArchiveError::BadEndRecord {
            what: EndProblem::DirectoryLength {
                entries: end.entries,
                parsed_end: end.cd_offset + cur.pos as u64,
                cd_end: end.cd_offset + end.cd_size,
            },
        });
    }
    spans.push((end.cd_offset, end.at, None));
    check_overlaps(spans)?;
    Ok(members)
}

fn check_overlaps(mut spans: Vec<(u64, u64, Option<String>)>) -> Result<(), ArchiveError> {
    spans.sort_by_key(|s| (s.0, s.1));
    for pair in spans.windows(2) {
        let [(s0, e0, n0), (s1, e1, n1)] = pair else {
            continue;
        };
        if s1 < e0 {
            // report a member first; the central directory (None) second
            let ((fs, fe, f), (ss, se, s)) = match (n0, n1) {
                (None, Some(_)) => ((s1, e1, n1), (s0, e0, n0)),
                _ => ((s0, e0, n0), (s1, e1, n1)),
            };
            return Err(ArchiveError::Overlap {
                first: f.clone().unwrap_or_default(),
                first_range: *fs..*fe,
                second: s.clone(),
                second_range: *ss..*se,
            });
        }
    }
    Ok(())
}

struct CentralEntry<'a> {
    system: u8,
    flags: u16,
    method: u16,
    crc32: u32,
    compressed_size: u64,
    size: u64,
    external_attr: u32,
    header_offset: u64,
    name: &'a [u8],
}

fn parse_central_entry<'a>(cur: &mut Cursor<'a>) -> Result<CentralEntry<'a>, &'static str> {
    const SHORT: &str = "the entry runs past the end of the central directory";
    if cur.u32().ok_or(SHORT)? != SIG_CENTRAL {
        return Err("no central directory signature");
    }
    let made_by = cur.u16().ok_or(SHORT)?;
    let _needed = cur.u16().ok_or(SHORT)?;
    let flags = cur.u16().ok_or(SHORT)?;
    let method = cur.u16().ok_or(SHORT)?;
    let _time = cur.u16().ok_or(SHORT)?;
    let _date = cur.u16().ok_or(SHORT)?;
    let crc32 = cur.u32().ok_or(SHORT)?;
    let csize32 = cur.u32().ok_or(SHORT)?;
    let size32 = cur.u32().ok_or(SHORT)?;
    let name_len = cur.u16().ok_or(SHORT)?;
    let extra_len = cur.u16().ok_or(SHORT)?;
    let comment_len = cur.u16().ok_or(SHORT)?;
    let disk16 = cur.u16().ok_or(SHORT)?;
    let _internal = cur.u16().ok_or(SHORT)?;
    let external_attr = cur.u32().ok_or(SHORT)?;
    let offset32 = cur.u32().ok_or(SHORT)?;
    let name = cur.take(usize::from(name_len)).ok_or(SHORT)?;
    let extra = cur.take(usize::from(extra_len)).ok_or(SHORT)?;
    cur.take(usize::from(comment_len)).ok_or(SHORT)?;

    let mut size = u64::from(size32);
    let mut compressed_size = u64::from(csize32);
    let mut header_offset = u64::from(offset32);
    let mut disk = u32::from(disk16);
    let needs64 = size32 == u32::MAX || csize32 == u32::MAX || offset32 == u32::MAX || disk16 == u16::MAX;
    if needs64 {
        let field = find_extra(extra, 0x0001).ok_or("zip64 sizes are marked but no zip64 extra field is present")?;
        let mut z = Cursor::new(field);
        const Z64: &str = "the zip64 extra field is too short";
        if size32 == u32::MAX {
            size = z.u64().ok_or(Z64)?;
        }
        if csize32 == u32::MAX {
            compressed_size = z.u64().ok_or(Z64)?;
        }
        if offset32 == u32::MAX {
            header_offset = z.u64().ok_or(Z64)?;
        }
        if disk16 == u16::MAX {
            disk = z.u32().ok_or(Z64)?;
        }
    }
    if disk != 0 {
        return Err("the member is on another disk of a split archive");
    }
    Ok(CentralEntry {
        system: (made_by >> 8) as u8,
        flags,
        method,
        crc32,
        compressed_size,
        size,
        external_attr,
        header_offset,
        name,
    })
}

/// The data of the extra field with header `id`, if present and well formed.
fn find_extra(mut extra: &[u8], id: u16) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let mut c = Cursor::new(extra);
        let hid = c.u16()?;
        let n = usize::from(c.u16()?);
        let data = c.take(n)?;
        if hid == id {
            return Some(data);
        }
        extra = extra.get(4 + n..)?;
    }
    None
}

/// Reads the local header of `e` and returns the byte range of its data.
fn locate_data(src: &Source, len: u64, name: &str, e: &CentralEntry<'_>) -> Result<Range<u64>, ArchiveError> {
    let oob = |end: u64| ArchiveError::MemberOutOfBounds { name: name.to_string(), start: e.header_offset, end, len };
    let header_end = e.header_offset.checked_add(LOCAL_LEN).ok_or(oob(u64::MAX))?;
    if header_end > len {
        let end = header_end.saturating_add(e.compressed_size);
        return Err(oob(end));
    }
    let h = src.read_at(e.header_offset, LOCAL_LEN)?;
    let mut c = Cursor::new(&h);
    let bad = || ArchiveError::BadLocalHeader { name: name.to_string(), offset: e.header_offset };
    if c.u32() != Some(SIG_LOCAL) {
        return Err(bad());
    }
    let _needed = c.u16().ok_or_else(bad)?;
    let flags = c.u16().ok_or_else(bad)?;
    let method = c.u16().ok_or_else(bad)?;
    let _time = c.u16().ok_or_else(bad)?;
    let _date = c.u16().ok_or_else(bad)?;
    let _crc = c.u32().ok_or_else(bad)?;
    let csize = c.u32().ok_or_else(bad)?;
    let _size = c.u32().ok_or_else(bad)?;
    let name_len = u64::from(c.u16().ok_or_else(bad)?);
    let extra_len = u64::from(c.u16().ok_or_else(bad)?);
    let mismatch = |field, central: String, local: String| ArchiveError::LocalHeaderMismatch {
        name: name.to_string(),
        field,
        central,
        local,
    };
    let data_start = header_end + name_len + extra_len;
    let data_end = data_start.checked_add(e.compressed_size).ok_or(oob(u64::MAX))?;
    if data_end > len {
        return Err(oob(data_end));
    }
    let local_name = src.read_at(header_end, name_len)?;
    if *local_name != *e.name {
        return Err(mismatch(
            "name",
            format!("`{}`", shown(name)),
            format!("`{}`", shown(&String::from_utf8_lossy(&local_name))),
        ));
    }
    if method != e.method {
        return Err(mismatch("compression method", e.method.to_string(), method.to_string()));
    }
    let has_descriptor = flags & (1 << 3) != 0;
    if !has_descriptor && csize != u32::MAX && u64::from(csize) != e.compressed_size {
        return Err(mismatch("compressed size", e.compressed_size.to_string(), csize.to_string()));
    }
    Ok(data_start..data_end)
}

fn find_end_record(src: &Source, len: u64) -> Result<EndRecord, ArchiveError> {
    let tail_len = len.min(END_LEN + MAX_COMMENT);
    let tail_start = len - tail_len;
    let tail = src.read_at(tail_start, tail_len)?;
    // the last signature whose comment length reaches exactly to the end of the file
    let mut found = None;
    let mut i = tail.len().saturating_sub(END_LEN as usize);
    loop {
        if le_u32(tail.get(i..).unwrap_or(&[])) == Some(SIG_END) {
            let comment = tail.get(i + 20..i + 22).map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])));
            if comment.is_some_and(|c| tail_start + i as u64 + END_LEN + c == len) {
                found = Some(i);
                break;
            }
        }
        if i == 0 {
            break;
        }
        i -= 1;
    }
    let Some(i) = found else {
        return Err(truncated(src, len));
    };
    let at = tail_start + i as u64;
    let mut c = Cursor::new(tail.get(i + 4..).unwrap_or(&[]));
    // 18 bytes after the signature are present: i + 22 <= tail.len()
    let disk = c.u16().unwrap_or(0);
    let cd_disk = c.u16().unwrap_or(0);
    let on_disk = c.u16().unwrap_or(0);
    let total = c.u16().unwrap_or(0);
    let cd_size = c.u32().unwrap_or(0);
    let cd_offset = c.u32().unwrap_or(0);
    if disk != 0 || cd_disk != 0 {
        return Err(ArchiveError::MultiDisk { disk: u32::from(disk.max(cd_disk)) });
    }
    let zip64 = on_disk == u16::MAX || total == u16::MAX || cd_size == u32::MAX || cd_offset == u32::MAX;
    if !zip64 {
        if on_disk != total {
            return Err(ArchiveError::BadEndRecord {
                what: EndProblem::CountMismatch { on_disk: u64::from(on_disk), total: u64::from(total) },
            });
        }
        return Ok(EndRecord {
            at,
            entries: u64::from(total),
            cd_size: u64::from(cd_size),
            cd_offset: u64::from(cd_offset),
            cd_must_end: at,
        });
    }
    let missing = ArchiveError::BadEndRecord { what: EndProblem::MissingZip64Locator { end_at: at } };
    let loc_at = at.checked_sub(LOCATOR64_LEN).ok_or(missing)?;
    let loc = src.read_at(loc_at, LOCATOR64_LEN)?;
    let mut c = Cursor::new(&loc);
    if c.u32() != Some(SIG_LOCATOR64) {
        return Err(ArchiveError::BadEndRecord { what: EndProblem::MissingZip64Locator { end_at: at } });
    }
    let disk64 = c.u32().unwrap_or(0);
    let rec_at = c.u64().unwrap_or(u64::MAX);
    let disks = c.u32().unwrap_or(1);
    if disk64 != 0 || disks > 1 {
        return Err(ArchiveError::MultiDisk { disk: disk64.max(disks.saturating_sub(1)) });
    }
    let bad64 = || ArchiveError::BadEndRecord { what: EndProblem::BadZip64Record { offset: rec_at } };
    if rec_at.checked_add(END64_LEN).is_none_or(|e| e > loc_at) {
        return Err(bad64());
    }
    let rec = src.read_at(rec_at, END64_LEN)?;
    let mut c = Cursor::new(&rec);
    if c.u32() != Some(SIG_END64) {
        return Err(bad64());
    }
    let _rec_size = c.u64().ok_or_else(bad64)?;
    let _made_by = c.u16().ok_or_else(bad64)?;
    let _needed = c.u16().ok_or_else(bad64)?;
    let disk = c.u32().ok_or_else(bad64)?;
    let cd_disk = c.u32().ok_or_else(bad64)?;
    let on_disk = c.u64().ok_or_else(bad64)?;
    let total = c.u64().ok_or_else(bad64)?;
    let cd_size = c.u64().ok_or_else(bad64)?;
    let cd_offset = c.u64().ok_or_else(bad64)?;
    if disk != 0 || cd_disk != 0 {
        return Err(ArchiveError::MultiDisk { disk: disk.max(cd_disk) });
    }
    if on_disk != total {
        return Err(ArchiveError::BadEndRecord { what: EndProblem::CountMismatch { on_disk, total } });
    }
    Ok(EndRecord { at, entries: total, cd_size, cd_offset, cd_must_end: rec_at })
}

/// Walks the local headers from the start to say where a zip without an end record is cut.
fn truncated(src: &Source, len: u64) -> ArchiveError {
    let mut off = 0u64;
    let mut intact = 0usize;
    let mut last_intact = None;
    let mut cut = None;
    // bounded by the file: each step advances at least LOCAL_LEN bytes
    while off < len {
        let avail = (len - off).min(LOCAL_LEN);
        let Ok(h) = src.read_at(off, avail) else {
            break;
        };
        let mut c = Cursor::new(&h);
        if c.u32() != Some(SIG_LOCAL) {
            break;
        }
        if avail < LOCAL_LEN {
            cut = Some(Cut { name: None, start: off, end: off + LOCAL_LEN });
            break;
        }
        let fields = (|| {
            let _needed = c.u16()?;
            let flags = c.u16()?;
            let _m = c.u16()?;
            let _t = c.u32()?;
            let _crc = c.u32()?;
            let csize = c.u32()?;
            let _size = c.u32()?;
            let n = c.u16()?;
            let m = c.u16()?;
            Some((flags, csize, u64::from(n), u64::from(m)))
        })();
        let Some((flags, csize, n, m)) = fields else {
            break;
        };
        let name_end = off + LOCAL_LEN + n;
        if name_end > len {
            cut = Some(Cut { name: None, start: off, end: name_end + m });
            break;
        }
        let name = src.read_at(off + LOCAL_LEN, n).map(|b| String::from_utf8_lossy(&b).into_owned()).ok();
        if flags & (1 << 3) != 0 || csize == u32::MAX {
            // sizes live in a data descriptor or zip64 field: cannot follow further
            if name_end + m > len {
                cut = Some(Cut { name, start: off, end: name_end + m });
            }
            break;
        }
        let end = name_end + m + u64::from(csize);
        if end > len {
            cut = Some(Cut { name, start: off, end });
            break;
        }
        intact += 1;
        last_intact = name;
        off = end;
    }
    ArchiveError::Truncated { len, intact, last_intact, cut }
}

fn open_dir(root: &Path, limits: &Limits) -> Result<KerasArchive, ArchiveError> {
    let mut members = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let io_err = |source| ArchiveError::Io { path: dir.clone(), source };
        let mut entries: Vec<_> = fs::read_dir(&dir).map_err(io_err)?.collect::<Result<Vec<_>, _>>().map_err(io_err)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let fname = entry.file_name().into_string().map_err(|_| ArchiveError::DirNonUtf8 { path: path.clone() })?;
            let ft = fs::symlink_metadata(&path).map_err(|source| ArchiveError::Io { path: path.clone(), source })?;
            if ft.file_type().is_symlink() {
                return Err(ArchiveError::DirSymlink { path });
            }
            let name = format!("{prefix}{fname}");
            if members.len() as u64 >= limits.max_zip_entries {
                return Err(ArchiveError::TooManyEntries {
                    count: members.len() as u64 + 1,
                    limit: limits.max_zip_entries,
                });
            }
            if ft.is_dir() {
                stack.push((path, format!("{name}/")));
                continue;
            }
            members.push(Member {
                name,
                size: ft.len(),
                compressed_size: ft.len(),
                method: Method::Stored,
                crc32: None,
                data: None,
                is_dir: false,
            });
        }
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    if !members.iter().any(|m| m.name == CONFIG_NAME) {
        return Err(ArchiveError::MissingMember {
            name: CONFIG_NAME.to_string(),
            present: members.iter().map(|m| m.name.clone()).collect(),
        });
    }
    Ok(KerasArchive { source: Source::Dir { root: root.to_path_buf() }, members, limits: limits.clone() })
}

fn read_dir_member(root: &Path, m: &Member, limits: &Limits) -> Result<Vec<u8>, ArchiveError> {
    let mut path = root.to_path_buf();
    for comp in m.name.split('/') {
        path.push(comp);
    }
    let io_err = |source| ArchiveError::Io { path: path.clone(), source };
    let meta = fs::symlink_metadata(&path).map_err(io_err)?;
    if meta.file_type().is_symlink() {
        return Err(ArchiveError::DirSymlink { path });
    }
    if meta.len() > limits.max_member_bytes {
        return Err(ArchiveError::MemberTooLarge {
            name: m.name.clone(),
            size: meta.len(),
            limit: limits.max_member_bytes,
        });
    }
    let mut out = Vec::new();
    File::open(&path).map_err(io_err)?.take(limits.max_member_bytes).read_to_end(&mut out).map_err(io_err)?;
    Ok(out)
}

/// Writes a `.keras` archive as Keras does, deterministically (see the module docs).
///
/// ```
/// use strata_format::archive::{ArchiveWriter, KerasArchive};
/// use strata_format::limits::Limits;
/// let bytes = ArchiveWriter::new(br#"{"keras_version": "3.15.1"}"#, b"{}", b"weights")
///     .to_bytes()
///     .unwrap();
/// let archive = KerasArchive::from_bytes(bytes, &Limits::default()).unwrap();
/// assert_eq!(archive.config_bytes().unwrap().as_ref(), b"{}");
/// ```
#[derive(Debug, Clone)]
pub struct ArchiveWriter<'a> {
    metadata: &'a [u8],
    config: &'a [u8],
    weights: &'a [u8],
    assets: Vec<(String, &'a [u8])>,
}

impl<'a> ArchiveWriter<'a> {
    /// A writer for the three standard members.
    pub fn new(metadata: &'a [u8], config: &'a [u8], weights_h5: &'a [u8]) -> Self {
        ArchiveWriter { metadata, config, weights: weights_h5, assets: Vec::new() }
    }

    /// Adds an asset at `assets/<path>` (`path` relative, `/`-separated).
    pub fn with_asset(mut self, path: &str, bytes: &'a [u8]) -> Result<Self, ArchiveError> {
        let name = format!("{ASSETS_PREFIX}{path}");
        let problem = check_member_name(path)
            .err()
            .or_else(|| if path.ends_with('/') { Some(NameProblem::DotOrEmptyComponent) } else { None });
        if let Some(problem) = problem {
            return Err(ArchiveError::BadAssetName { name: path.to_string(), problem });
        }
        if self.assets.iter().any(|(n, _)| *n == name) {
            return Err(ArchiveError::DuplicateAsset { name: path.to_string() });
        }
        self.assets.push((name, bytes));
        Ok(self)
    }

    /// Writes the archive to `w` and returns it.
    pub fn write_to<W: Write + Seek>(&self, w: W) -> Result<W, ArchiveError> {
        let zerr = |source| ArchiveError::Write { source };
        let ioerr = |e: io::Error| ArchiveError::Write { source: zip::result::ZipError::Io(e) };
        let mut assets: Vec<&(String, &[u8])> = self.assets.iter().collect();
        assets.sort_by(|a, b| a.0.cmp(&b.0));
        let mut zw = zip::ZipWriter::new(w);
        let fixed = [(METADATA_NAME, self.metadata), (CONFIG_NAME, self.config), (WEIGHTS_H5_NAME, self.weights)];
        let all = fixed.iter().map(|(n, b)| (*n, *b)).chain(assets.iter().map(|(n, b)| (n.as_str(), *b)));
        for (name, bytes) in all {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .last_modified_time(zip::DateTime::default())
                .system(zip::System::Unix)
                .unix_permissions(0o600)
                .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
            zw.start_file(name, options).map_err(zerr)?;
            zw.write_all(bytes).map_err(ioerr)?;
        }
        zw.finish().map_err(zerr)
    }

    /// The archive as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArchiveError> {
        Ok(self.write_to(io::Cursor::new(Vec::new()))?.into_inner())
    }

    /// Saves the archive to `path` atomically ([`crate::atomic::write_atomic`]).
    pub fn save(&self, path: &Path) -> Result<(), ArchiveError> {
        write_atomic(path, |f| self.write_to(f).map(|_| ()).map_err(|e| io::Error::other(e.to_string())))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_name_rules() {
        assert_eq!(check_member_name("assets/a/b.txt"), Ok(()));
        assert_eq!(check_member_name("assets/"), Ok(()));
        assert_eq!(check_member_name("../x"), Err(NameProblem::ParentDir));
        assert_eq!(check_member_name("a/../../x"), Err(NameProblem::ParentDir));
        assert_eq!(check_member_name("/etc/passwd"), Err(NameProblem::Absolute));
        assert_eq!(check_member_name("C:/x"), Err(NameProblem::DriveLetter));
        assert_eq!(check_member_name("a\\b"), Err(NameProblem::Backslash));
        assert_eq!(check_member_name("a//b"), Err(NameProblem::DotOrEmptyComponent));
        assert_eq!(check_member_name("./a"), Err(NameProblem::DotOrEmptyComponent));
        assert_eq!(check_member_name("a\0b"), Err(NameProblem::Nul));
        assert_eq!(check_member_name(""), Err(NameProblem::Empty));
    }

    #[test]
    fn find_extra_walks_fields() {
        let mut extra = vec![0x55, 0x54, 1, 0, 9];
        extra.extend_from_slice(&[1, 0, 8, 0]);
        extra.extend_from_slice(&42u64.to_le_bytes());
        assert_eq!(find_extra(&extra, 1), Some(&42u64.to_le_bytes()[..]));
        assert_eq!(find_extra(&extra, 7), None);
        assert_eq!(find_extra(&[1, 0, 200, 0], 1), None);
    }
}
