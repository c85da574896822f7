//! [`Dataset`]: metadata and guarded reads.
//!
//! Contiguous data (all Keras writes) is copied once, straight from the file
//! bytes at the storage offset, after checking that `nelem * size` neither
//! overflows nor exceeds the limits, that it is not a shape bomb (Keras 3.15
//! `saving_lib.py`: declared > 4 GiB and > 1000x stored), and that the range
//! lies inside the file. Chunked data is decoded by hdf5-pure after the same
//! checks, with the stored size taken from the chunk index. External storage
//! and virtual datasets are refused, as Keras >= 3.14 refuses them.

use std::sync::Arc;

use crate::attr::{Attr, read_attrs};
use crate::cursor::{Cursor, Short, UNDEF};
use crate::datatype::{DType, RawType, Space};
use crate::error::{Error, FIX_RESAVE, Result};
use crate::file::Inner;
use crate::header::{Header, msg};

/// Where a dataset's elements are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// One block of `len` bytes at absolute file offset `offset`.
    Contiguous {
        /// Absolute byte offset in the file.
        offset: u64,
        /// Stored length in bytes.
        len: u64,
    },
    /// Chunks, through these filters in order (`deflate`, `shuffle`, `fletcher32`, `lzf`, ...).
    Chunked {
        /// Filter names.
        filters: Vec<String>,
    },
    /// Inside the object header.
    Compact,
    /// Never written (reads as zeros).
    Unallocated,
    /// In other files (`H5Pset_external`); never read.
    External,
    /// A virtual dataset; never read.
    Virtual,
}

#[derive(Debug, Clone)]
enum Layout {
    Compact {
        data: Vec<u8>,
    },
    /// `size` is `None` for layout versions 1-2, which do not store it reliably.
    Contiguous {
        addr: u64,
        size: Option<u64>,
    },
    Chunked,
    Virtual,
}

/// A dataset. Metadata is read when it is opened; elements by [`read_raw`](Self::read_raw).
#[derive(Clone)]
pub struct Dataset {
    inner: Arc<Inner>,
    path: String,
    addr: u64,
    shape: Vec<u64>,
    null_space: bool,
    raw: RawType,
    dtype: DType,
    layout: Layout,
    filters: Vec<String>,
    external: bool,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("path", &self.path)
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .field("storage", &self.storage())
            .finish()
    }
}

fn filter_name(id: u16) -> String {
    match id {
        1 => "deflate".into(),
        2 => "shuffle".into(),
        3 => "fletcher32".into(),
        4 => "szip".into(),
        5 => "nbit".into(),
        6 => "scaleoffset".into(),
        32000 => "lzf".into(),
        32001 => "blosc".into(),
        32004 => "lz4".into(),
        32008 => "bitshuffle".into(),
        32015 => "zstd".into(),
        other => format!("filter {other}"),
    }
}

impl Dataset {
    pub(crate) fn open(inner: Arc<Inner>, path: String, addr: u64) -> Result<Dataset> {
        let header = Header::read(&inner, addr, &path)?;
        let Some(layout_msg) = header.first(msg::LAYOUT) else {
            let found = if crate::file::is_group(&header) { "a group" } else { "not a dataset" };
            return Err(Error::NotADataset { path, found: found.into() });
        };
        let (Some(space_msg), Some(type_msg)) = (header.first(msg::DATASPACE), header.first(msg::DATATYPE)) else {
            return Err(Error::malformed(&path, "dataset header (no dataspace or datatype message)", header.offset));
        };
        if space_msg.is_shared() || type_msg.is_shared() {
            return Err(Error::unsupported(&path, "shared (committed) datatype or dataspace on a dataset", FIX_RESAVE));
        }
        let space = Space::parse(space_msg.body, space_msg.offset, &path, inner.sb.lsize)?;
        let raw = RawType::parse(type_msg.body, type_msg.offset, &path)?;
        let layout = parse_layout(&inner, layout_msg.body, layout_msg.offset, &path)?;
        let filters = match header.first(msg::FILTERS) {
            Some(m) => parse_filters(m.body, m.offset, &path)?,
            None => Vec::new(),
        };
        let external = header.has(msg::EXTERNAL_FILES);
        let bf16 = matches!(raw, RawType::Opaque { size: 2 })
            && read_attrs(&inner, &header, &path)?
                .iter()
                .any(|(n, a)| n == "dtype" && a.as_string().as_deref() == Some("bfloat16"));
        let dtype = raw.dtype(bf16);
        Ok(Dataset {
            inner,
            path,
            addr,
            shape: space.dims,
            null_space: space.null,
            raw,
            dtype,
            layout,
            filters,
            external,
        })
    }

    /// The dataset's absolute path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Dimensions; empty for a scalar.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> &DType {
        &self.dtype
    }

    /// Number of elements (`None` if the product overflows); 0 for an HDF5 null dataspace.
    pub fn nelem(&self) -> Option<u64> {
        Space { dims: self.shape.clone(), null: self.null_space }.nelem()
    }

    /// All attributes of the dataset, sorted by name.
    pub fn attrs(&self) -> Result<Vec<(String, Attr)>> {
        let header = Header::read(&self.inner, self.addr, &self.path)?;
        read_attrs(&self.inner, &header, &self.path)
    }

    /// Where the elements are stored.
    pub fn storage(&self) -> Storage {
        if self.external {
            return Storage::External;
        }
        match &self.layout {
            Layout::Compact { .. } => Storage::Compact,
            Layout::Contiguous { addr, size } => {
                if *addr == UNDEF {
                    Storage::Unallocated
                } else {
                    Storage::Contiguous {
                        offset: self.inner.sb.base.saturating_add(*addr),
                        len: size.unwrap_or_else(|| self.declared_bytes().unwrap_or(0)),
                    }
                }
            }
            Layout::Chunked => Storage::Chunked { filters: self.filters.clone() },
            Layout::Virtual => Storage::Virtual,
        }
    }

    fn declared_bytes(&self) -> Option<u64> {
        let esize = self.dtype.size().or(match self.raw {
            RawType::Opaque { size } if size > 0 => Some(size),
            _ => None,
        })?;
        self.nelem()?.checked_mul(esize as u64)
    }

    /// The elements as little-endian bytes, `nelem * dtype.size()` long (C order).
    ///
    /// Refuses, before allocating: non-numeric dtypes, sizes over
    /// [`Limits::max_dataset_bytes`](crate::Limits::max_dataset_bytes), shape
    /// bombs, ranges past the end of the file, external storage and virtual
    /// datasets. Unallocated storage reads as zeros (h5py's default fill value).
    pub fn read_raw(&self) -> Result<Vec<u8>> {
        let path = &self.path;
        let limits = &self.inner.limits;
        if self.external {
            return Err(Error::ExternalStorage { path: path.clone() });
        }
        if matches!(self.layout, Layout::Virtual) {
            return Err(Error::VirtualDataset { path: path.clone() });
        }
        // opaque elements (bfloat16 written without its `dtype` attribute) are plain bytes too
        let opaque = match self.raw {
            RawType::Opaque { size } if size > 0 => Some(size),
            _ => None,
        };
        let Some(esize) = self.dtype.size().or(opaque) else {
            return Err(Error::unsupported(
                path,
                format!("reading elements of dtype `{}` as raw bytes", self.dtype),
                "read it with h5py; Keras weights are always numeric",
            ));
        };
        let declared = self
            .nelem()
            .and_then(|n| n.checked_mul(esize as u64))
            .ok_or_else(|| Error::SizeOverflow { path: path.clone(), shape: self.shape.clone() })?;
        if declared > limits.max_dataset_bytes {
            return Err(Error::limit(
                path,
                "dataset size in bytes",
                declared,
                limits.max_dataset_bytes,
                "max_dataset_bytes",
            ));
        }
        let file_len = self.inner.data().len() as u64;
        let stored = match &self.layout {
            Layout::Compact { data } => data.len() as u64,
            Layout::Contiguous { addr, size } if *addr != UNDEF => {
                let start = self.inner.sb.base.saturating_add(*addr);
                size.unwrap_or(declared).min(file_len.saturating_sub(start))
            }
            Layout::Contiguous { .. } => 0,
            Layout::Chunked => self.chunked_stored_bytes()?,
            Layout::Virtual => 0,
        };
        if declared > limits.shape_bomb_min_bytes && declared > stored.saturating_mul(limits.shape_bomb_ratio) {
            return Err(Error::ShapeBomb { path: path.clone(), declared, stored, ratio: limits.shape_bomb_ratio });
        }
        let mut out = match &self.layout {
            Layout::Compact { data } => data
                .get(..declared as usize)
                .ok_or_else(|| Error::malformed(path, "compact storage (shorter than the shape)", 0))?
                .to_vec(),
            Layout::Contiguous { addr, .. } if *addr == UNDEF => vec![0u8; declared as usize],
            Layout::Contiguous { addr, size } => {
                if size.is_some_and(|s| s < declared) {
                    return Err(Error::malformed(
                        path,
                        "contiguous storage (smaller than the shape)",
                        self.inner.sb.base.saturating_add(*addr),
                    ));
                }
                self.inner.slice(*addr, declared, path, "dataset")?.to_vec()
            }
            Layout::Chunked => {
                let bytes = self.pure_read(esize, declared)?;
                if bytes.len() as u64 != declared {
                    return Err(Error::malformed(path, "chunked data (decoded size differs from the shape)", 0));
                }
                bytes
            }
            Layout::Virtual => return Err(Error::VirtualDataset { path: path.clone() }),
        };
        if self.raw.big_endian() && esize > 1 {
            for e in out.chunks_exact_mut(esize) {
                e.reverse();
            }
        }
        Ok(out)
    }

    fn pure_dataset(&self) -> Result<hdf5_pure::Dataset> {
        let file = self.inner.pure(&self.path)?;
        crate::guard::call(&self.path, "opening the dataset", || file.dataset(&self.path))
    }

    fn chunked_stored_bytes(&self) -> Result<u64> {
        let ds = self.pure_dataset()?;
        let chunks = crate::guard::call(&self.path, "reading the chunk index", || ds.chunks())?;
        if chunks.len() > self.inner.limits.max_objects {
            return Err(Error::limit(
                &self.path,
                "chunk count",
                chunks.len() as u64,
                self.inner.limits.max_objects as u64,
                "max_objects",
            ));
        }
        let file_len = self.inner.data().len() as u64;
        let mut total: u64 = 0;
        for c in &chunks {
            let end = c.address.saturating_add(c.storage_size);
            if end > file_len {
                return Err(Error::Truncated {
                    object: self.path.clone(),
                    what: "chunk of dataset",
                    start: c.address,
                    end,
                    file_len,
                });
            }
            total = total.saturating_add(c.storage_size);
        }
        Ok(total)
    }

    /// Decodes chunked data with hdf5-pure, after checking the chunk grid: hdf5-pure adds chunk
    /// offsets from the file to coordinates unchecked, so an offset near `u64::MAX` overflowed
    /// (a panic with overflow checks on), and a huge chunk shape made it loop per row.
    fn pure_read(&self, esize: usize, declared: u64) -> Result<Vec<u8>> {
        if declared == 0 {
            return Ok(Vec::new());
        }
        let path = &self.path;
        let ds = self.pure_dataset()?;
        let shape = crate::guard::call(path, "reading the shape", || ds.shape())?;
        let chunk = crate::guard::call(path, "reading the chunk shape", || ds.chunk_shape())?.unwrap_or_default();
        let bad_shape = || Error::malformed(path, "chunk shape (rank, a zero dimension, or a chunk over 4 GiB)", 0);
        // HDF5 itself refuses chunks of 4 GiB or more
        let chunk_bytes = chunk
            .iter()
            .try_fold(esize as u64, |acc, &d| acc.checked_mul(d).filter(|_| d > 0))
            .ok_or_else(bad_shape)?;
        if chunk.len() != shape.len() || chunk_bytes > u64::from(u32::MAX) {
            return Err(bad_shape());
        }
        // cells of the chunk grid (every dimension is >= 1: `declared` is not 0)
        let cells =
            shape.iter().zip(&chunk).try_fold(1u64, |acc, (&n, &c)| acc.checked_mul(n.div_ceil(c))).unwrap_or(u64::MAX);
        let chunks = crate::guard::call(path, "reading the chunk index", || ds.chunks())?;
        if chunks.len() as u64 > cells {
            return Err(Error::malformed(path, "chunk index (more chunks than cells of the chunk grid)", 0));
        }
        for c in &chunks {
            let on_grid = c.offset.len() == shape.len()
                && c.offset.iter().zip(&shape).zip(&chunk).all(|((&o, &n), &d)| o < n && o % d == 0);
            if !on_grid {
                return Err(Error::malformed(
                    path,
                    "chunk index (a chunk offset outside the dataset or off the chunk grid)",
                    c.address,
                ));
            }
        }
        crate::guard::call(path, "reading chunked data", || ds.read_raw())
    }
}

fn parse_layout(inner: &Inner, body: &[u8], offset: u64, path: &str) -> Result<Layout> {
    let err = |s: Short| Error::malformed(path, "data layout message", s.at);
    let mut c = Cursor::new(body, offset);
    let version = c.u8().map_err(err)?;
    let o = inner.sb.osize;
    match version {
        1 | 2 => {
            let rank = c.u8().map_err(err)?;
            let class = c.u8().map_err(err)?;
            c.skip(5).map_err(err)?;
            let addr = if class != 0 { c.addr(o).map_err(err)? } else { UNDEF };
            c.skip(4 * usize::from(rank)).map_err(err)?;
            match class {
                0 => {
                    let n = c.u32().map_err(err)?;
                    Ok(Layout::Compact { data: c.bytes(n as usize).map_err(err)?.to_vec() })
                }
                1 => Ok(Layout::Contiguous { addr, size: None }),
                2 => Ok(Layout::Chunked),
                _ => Err(Error::malformed(path, "data layout class", offset)),
            }
        }
        3 | 4 => {
            let class = c.u8().map_err(err)?;
            match class {
                0 => {
                    let n = c.u16().map_err(err)?;
                    Ok(Layout::Compact { data: c.bytes(usize::from(n)).map_err(err)?.to_vec() })
                }
                1 => {
                    let addr = c.addr(o).map_err(err)?;
                    let size = c.uint(inner.sb.lsize).map_err(err)?;
                    Ok(Layout::Contiguous { addr, size: Some(size) })
                }
                2 => Ok(Layout::Chunked),
                3 if version == 4 => Ok(Layout::Virtual),
                _ => Err(Error::malformed(path, "data layout class", offset)),
            }
        }
        v => Err(Error::unsupported(
            path,
            format!("HDF5 data layout message version {v} (written by HDF5 >= 2.0 with libver='latest')"),
            FIX_RESAVE,
        )),
    }
}

fn parse_filters(body: &[u8], offset: u64, path: &str) -> Result<Vec<String>> {
    let err = |s: Short| Error::malformed(path, "filter pipeline message", s.at);
    let mut c = Cursor::new(body, offset);
    let version = c.u8().map_err(err)?;
    let n = c.u8().map_err(err)?;
    let mut out = Vec::with_capacity(usize::from(n));
    match version {
        1 => {
            c.skip(6).map_err(err)?;
            for _ in 0..n {
                let id = c.u16().map_err(err)?;
                let name_len = usize::from(c.u16().map_err(err)?);
                c.skip(2).map_err(err)?;
                let nvalues = usize::from(c.u16().map_err(err)?);
                c.skip(name_len.div_ceil(8) * 8).map_err(err)?;
                c.skip(4 * nvalues + if nvalues % 2 == 1 { 4 } else { 0 }).map_err(err)?;
                out.push(filter_name(id));
            }
        }
        2 => {
            for _ in 0..n {
                let id = c.u16().map_err(err)?;
                let name_len = if id >= 256 { usize::from(c.u16().map_err(err)?) } else { 0 };
                c.skip(2).map_err(err)?;
                let nvalues = usize::from(c.u16().map_err(err)?);
                c.skip(name_len).map_err(err)?;
                c.skip(4 * nvalues).map_err(err)?;
                out.push(filter_name(id));
            }
        }
        _ => return Err(Error::malformed(path, "filter pipeline version", offset)),
    }
    Ok(out)
}

#[cfg(test)]
mod fuzz_regressions {
    use crate::{H5File, Limits, NodeKind};

    /// Reads every dataset of a fuzzer-found file under `fixtures/hostile/fuzz/`; returns the
    /// rendered errors of the reads that failed.
    fn read_errors(name: &str) -> Vec<String> {
        let path = format!("{}/../../fixtures/hostile/fuzz/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).expect("the fixture is committed");
        let f = H5File::from_bytes(bytes, &Limits::default()).expect("the file opens");
        let nodes = f.walk().expect("the file walks");
        nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Dataset)
            .filter_map(|n| f.dataset(&n.path).and_then(|d| d.read_raw()).err())
            .map(|e| e.to_string())
            .collect()
    }

    /// hdf5_open crash-d7b7965c: a chunk offset near `u64::MAX` overflowed inside hdf5-pure's
    /// chunk placement (a panic with overflow checks on).
    #[test]
    fn chunk_offset_outside_the_dataset_is_refused() {
        let errors = read_errors("hdf5_chunk_offset_overflow.h5");
        let expected = "malformed hdf5 file at `/f16`: bad chunk index (a chunk offset outside the \
                        dataset or off the chunk grid) at byte offset 5818; the file is damaged or \
                        was not written by an hdf5 library";
        assert!(errors.iter().any(|e| e == expected), "{errors:#?}");
    }
}
