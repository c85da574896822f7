//! [`H5File`], [`Group`], path lookup and the bounded walk.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::attr::{Attr, read_attrs};
use crate::cursor::{Cursor, UNDEF};
use crate::dataset::Dataset;
use crate::error::{Error, FIX_RESAVE, Result};
use crate::header::{Header, Superblock, msg};
use crate::limits::Limits;
use crate::links::{Target, read_links};

/// The bytes of an open file.
pub(crate) enum Backing {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Owned(v) => v,
            Backing::Mapped(m) => m,
        }
    }
}

/// hdf5-pure reads through this, so both crates see the same bytes without a copy.
struct SharedSource(Arc<Backing>);

impl hdf5_pure::Source for SharedSource {
    fn len(&self) -> u64 {
        self.0.bytes().len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), hdf5_pure::FormatError> {
        let data = self.0.bytes();
        let eof = || hdf5_pure::FormatError::UnexpectedEof {
            expected: usize::try_from(offset).unwrap_or(usize::MAX).saturating_add(buf.len()),
            available: data.len(),
        };
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let src = data.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

pub(crate) struct Inner {
    bytes: Arc<Backing>,
    pub limits: Limits,
    pub sb: Superblock,
    pure: OnceLock<hdf5_pure::File>,
}

impl Inner {
    pub fn data(&self) -> &[u8] {
        self.bytes.bytes()
    }

    /// Absolute offset of relative address `addr`.
    pub fn abs(&self, addr: u64, object: &str, what: &'static str) -> Result<u64> {
        if addr == UNDEF {
            return Err(Error::malformed(object, what, addr));
        }
        self.sb.base.checked_add(addr).ok_or_else(|| Error::malformed(object, what, addr))
    }

    /// `len` bytes at relative address `addr`, or [`Error::Truncated`].
    pub fn slice(&self, addr: u64, len: u64, object: &str, what: &'static str) -> Result<&[u8]> {
        let start = self.abs(addr, object, what)?;
        let data = self.data();
        let end = start.checked_add(len).ok_or_else(|| Error::malformed(object, what, start))?;
        let truncated =
            || Error::Truncated { object: object.to_string(), what, start, end, file_len: data.len() as u64 };
        let (s, e) = (usize::try_from(start).map_err(|_| truncated())?, usize::try_from(end).map_err(|_| truncated())?);
        data.get(s..e).ok_or_else(truncated)
    }

    /// A cursor from relative address `addr` to the end of the file.
    pub fn cursor_at(&self, addr: u64, object: &str, what: &'static str) -> Result<Cursor<'_>> {
        let start = self.abs(addr, object, what)?;
        let data = self.data();
        let rest =
            usize::try_from(start).ok().and_then(|s| data.get(s..)).filter(|r| !r.is_empty()).ok_or_else(|| {
                Error::Truncated {
                    object: object.to_string(),
                    what,
                    start,
                    end: start.saturating_add(1),
                    file_len: data.len() as u64,
                }
            })?;
        Ok(Cursor::new(rest, start))
    }

    /// The hdf5-pure view of the same bytes, opened on first use.
    pub fn pure(&self, path: &str) -> Result<&hdf5_pure::File> {
        if let Some(f) = self.pure.get() {
            return Ok(f);
        }
        let f = crate::guard::call(path, "opening the file", || {
            hdf5_pure::File::from_source(SharedSource(Arc::clone(&self.bytes)))
        })?;
        let _ = self.pure.set(f);
        self.pure.get().ok_or_else(|| Error::malformed(path, "file (hdf5-pure handle)", 0))
    }
}

/// An open HDF5 file. Cloning is cheap (the bytes are shared).
#[derive(Clone)]
pub struct H5File {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for H5File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H5File")
            .field("len", &self.inner.data().len())
            .field("superblock_version", &self.inner.sb.version)
            .finish()
    }
}

/// What a link or object is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A group (reached by a hard link).
    Group,
    /// A dataset (reached by a hard link).
    Dataset,
    /// A soft link; never followed.
    SoftLink {
        /// The path it names.
        target: String,
    },
    /// A link into another file; never followed.
    ExternalLink {
        /// The other file's name as stored.
        file: String,
        /// The object path in that file.
        path: String,
    },
    /// Anything else: `named datatype`, `user-defined link (class N)`, ...
    Other(String),
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The link name.
    pub name: String,
    /// What it is.
    pub kind: NodeKind,
}

/// One object found by [`H5File::walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Absolute path, `/` for the root.
    pub path: String,
    /// What it is.
    pub kind: NodeKind,
}

/// A group. Cloning is cheap.
#[derive(Clone)]
pub struct Group {
    inner: Arc<Inner>,
    path: String,
    addr: u64,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("path", &self.path).finish()
    }
}

pub(crate) fn is_group(h: &Header<'_>) -> bool {
    h.has(msg::SYMBOL_TABLE) || h.has(msg::LINK_INFO) || h.has(msg::LINK)
}

fn classify(h: &Header<'_>) -> NodeKind {
    if h.has(msg::LAYOUT) {
        NodeKind::Dataset
    } else if is_group(h) {
        NodeKind::Group
    } else if h.has(msg::DATATYPE) {
        NodeKind::Other("named datatype".to_string())
    } else {
        NodeKind::Other("object without group or dataset messages".to_string())
    }
}

fn describe(kind: &NodeKind) -> String {
    match kind {
        NodeKind::Group => "a group".into(),
        NodeKind::Dataset => "a dataset".into(),
        NodeKind::SoftLink { target } => format!("a soft link to `{target}`"),
        NodeKind::ExternalLink { file, path } => format!("an external link to `{file}:{path}`"),
        NodeKind::Other(s) => format!("a {s}"),
    }
}

pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

impl H5File {
    /// Memory-maps the file at `path` (read-only) and checks its superblock.
    ///
    /// The file must not be truncated by another process while it is open
    /// (on Unix that would end this process with SIGBUS); read it with
    /// `std::fs::read` and [`H5File::from_bytes`] when that cannot be ruled out.
    pub fn open(path: &Path, limits: &Limits) -> Result<H5File> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        check_file_len(len, limits)?;
        if len == 0 {
            return H5File::from_bytes(Vec::new(), limits);
        }
        // SAFETY: the map is read-only and private to this process; its bytes are only ever
        // read through bounds-checked slices. The one hazard, another process truncating the
        // file while it is mapped, is documented on this function.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        H5File::with_backing(Backing::Mapped(map), limits)
    }

    /// Memory-maps `len` bytes of the file at `path` from `offset` and reads them as an HDF5
    /// file: an uncompressed `model.weights.h5` inside a `.keras` zip, without copying it. The
    /// same truncation hazard as [`H5File::open`] applies.
    pub fn open_range(path: &Path, offset: u64, len: u64, limits: &Limits) -> Result<H5File> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        if offset.checked_add(len).is_none_or(|e| e > file_len) {
            return Err(Error::Truncated {
                object: path.display().to_string(),
                what: "embedded HDF5 file",
                start: offset,
                end: offset.saturating_add(len),
                file_len,
            });
        }
        check_file_len(len, limits)?;
        let n = usize::try_from(len).map_err(|_| io(std::io::Error::other("range too large")))?;
        if n == 0 {
            return H5File::from_bytes(Vec::new(), limits);
        }
        // SAFETY: as in `open`: read-only, private, only read through bounds-checked slices.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(n).map(&file) }.map_err(io)?;
        H5File::with_backing(Backing::Mapped(map), limits)
    }

    /// Reads a file held in memory (for example a member of a `.keras` zip).
    pub fn from_bytes(bytes: Vec<u8>, limits: &Limits) -> Result<H5File> {
        check_file_len(bytes.len() as u64, limits)?;
        H5File::with_backing(Backing::Owned(bytes), limits)
    }

    fn with_backing(backing: Backing, limits: &Limits) -> Result<H5File> {
        let sb = Superblock::find(backing.bytes())?;
        let inner = Arc::new(Inner { bytes: Arc::new(backing), limits: limits.clone(), sb, pure: OnceLock::new() });
        let file = H5File { inner };
        // The root must be a readable group.
        let h = Header::read(&file.inner, file.inner.sb.root, "/")?;
        if !is_group(&h) {
            return Err(Error::NotAGroup { path: "/".into(), found: describe(&classify(&h)) });
        }
        Ok(file)
    }

    /// The file's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.inner.data()
    }

    /// The superblock version (0 for files h5py writes by default, 2 or 3 for libver >= 1.8).
    pub fn superblock_version(&self) -> u8 {
        self.inner.sb.version
    }

    /// The root group.
    pub fn root(&self) -> Group {
        Group { inner: Arc::clone(&self.inner), path: "/".into(), addr: self.inner.sb.root }
    }

    /// The group at `path` (`"/a/b"` or `"a/b"`; `"/"` is the root). Links on the way are refused.
    pub fn group(&self, path: &str) -> Result<Group> {
        self.root().group(path)
    }

    /// The dataset at `path`. Links on the way are refused.
    pub fn dataset(&self, path: &str) -> Result<Dataset> {
        self.root().dataset(path)
    }

    /// Every object depth-first (pre-order, members by name), the root first.
    ///
    /// Soft and external links are listed as such and not followed; an object
    /// reached again through a second hard link is listed again but not
    /// descended into. Bounded by [`Limits::max_objects`] and [`Limits::max_depth`].
    pub fn walk(&self) -> Result<Vec<Node>> {
        let inner = &*self.inner;
        let mut out = vec![Node { path: "/".into(), kind: NodeKind::Group }];
        let mut seen = HashSet::new();
        seen.insert(inner.sb.root);
        walk_group(inner, "/", inner.sb.root, 0, &mut seen, &mut out)?;
        Ok(out)
    }
}

/// The walk recurses once per level, so nesting is capped here whatever
/// [`Limits::max_depth`] says.
const HARD_MAX_DEPTH: usize = 1024;

/// Lists the members of the group at `addr`, descending into each subgroup the
/// first time it is met (as h5py's `visititems` does).
fn walk_group(
    inner: &Inner,
    path: &str,
    addr: u64,
    depth: usize,
    seen: &mut HashSet<u64>,
    out: &mut Vec<Node>,
) -> Result<()> {
    let limits = &inner.limits;
    let header = Header::read(inner, addr, path)?;
    let links = read_links(inner, &header, path)?;
    for link in links {
        let child = join(path, &link.name);
        if out.len() >= limits.max_objects {
            return Err(Error::limit(
                &child,
                "object count",
                out.len() as u64 + 1,
                limits.max_objects as u64,
                "max_objects",
            ));
        }
        match link.target {
            Target::Hard(a) => {
                let kind = classify(&Header::read(inner, a, &child)?);
                let descend = kind == NodeKind::Group && seen.insert(a);
                out.push(Node { path: child.clone(), kind });
                if descend {
                    let max = limits.max_depth.min(HARD_MAX_DEPTH);
                    if depth + 1 > max {
                        return Err(Error::limit(&child, "group depth", depth as u64 + 1, max as u64, "max_depth"));
                    }
                    walk_group(inner, &child, a, depth + 1, seen, out)?;
                }
            }
            other => out.push(Node { path: child, kind: link_kind(other) }),
        }
    }
    Ok(())
}

fn link_kind(t: Target) -> NodeKind {
    match t {
        Target::Hard(_) => NodeKind::Other("hard link".into()),
        Target::Soft(target) => NodeKind::SoftLink { target },
        Target::External { file, path } => NodeKind::ExternalLink { file, path },
        Target::UserDefined(c) => NodeKind::Other(format!("user-defined link (class {c})")),
    }
}

fn check_file_len(len: u64, limits: &Limits) -> Result<()> {
    if len > limits.max_file_bytes {
        return Err(Error::limit("/", "file size in bytes", len, limits.max_file_bytes, "max_file_bytes"));
    }
    Ok(())
}

impl Group {
    /// The group's absolute path (`/` for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The members, sorted by name. Soft and external links are listed, never followed.
    pub fn members(&self) -> Result<Vec<Member>> {
        let inner = &*self.inner;
        let header = Header::read(inner, self.addr, &self.path)?;
        let links = read_links(inner, &header, &self.path)?;
        let mut out = Vec::with_capacity(links.len());
        for link in links {
            let kind = match link.target {
                Target::Hard(a) => classify(&Header::read(inner, a, &join(&self.path, &link.name))?),
                other => link_kind(other),
            };
            out.push(Member { name: link.name, kind });
        }
        Ok(out)
    }

    /// The subgroup at relative path `name` (`"a"` or `"a/b"`; a leading `/` starts at the root).
    pub fn group(&self, name: &str) -> Result<Group> {
        let (path, addr) = self.resolve(name)?;
        let h = Header::read(&self.inner, addr, &path)?;
        if !is_group(&h) {
            return Err(Error::NotAGroup { found: describe(&classify(&h)), path });
        }
        Ok(Group { inner: Arc::clone(&self.inner), path, addr })
    }

    /// The dataset at relative path `name`.
    pub fn dataset(&self, name: &str) -> Result<Dataset> {
        let (path, addr) = self.resolve(name)?;
        Dataset::open(Arc::clone(&self.inner), path, addr)
    }

    /// All attributes, sorted by name.
    pub fn attrs(&self) -> Result<Vec<(String, Attr)>> {
        let header = Header::read(&self.inner, self.addr, &self.path)?;
        read_attrs(&self.inner, &header, &self.path)
    }

    /// The attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Result<Option<Attr>> {
        Ok(self.attrs()?.into_iter().find(|(n, _)| n == name).map(|(_, a)| a))
    }

    /// Resolves a path relative to this group to (absolute path, header address).
    fn resolve(&self, rel: &str) -> Result<(String, u64)> {
        let inner = &*self.inner;
        let (mut path, mut addr) =
            if rel.starts_with('/') { ("/".to_string(), inner.sb.root) } else { (self.path.clone(), self.addr) };
        let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
        let depth = path.split('/').filter(|s| !s.is_empty()).count() + parts.len();
        if depth > inner.limits.max_depth {
            return Err(Error::limit(rel, "path depth", depth as u64, inner.limits.max_depth as u64, "max_depth"));
        }
        for part in parts {
            let header = Header::read(inner, addr, &path)?;
            if !is_group(&header) {
                return Err(Error::NotAGroup { found: describe(&classify(&header)), path });
            }
            let links = read_links(inner, &header, &path)?;
            let child = join(&path, part);
            let link =
                links.into_iter().find(|l| l.name == part).ok_or_else(|| Error::NotFound { path: child.clone() })?;
            addr = match link.target {
                Target::Hard(a) => a,
                Target::Soft(target) => {
                    return Err(Error::SoftLink { path: child, target });
                }
                Target::External { file, path: target } => {
                    return Err(Error::ExternalLink { path: child, file, target });
                }
                Target::UserDefined(c) => {
                    return Err(Error::unsupported(&child, format!("user-defined link class {c}"), FIX_RESAVE));
                }
            };
            path = child;
        }
        Ok((path, addr))
    }
}
