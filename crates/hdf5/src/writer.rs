//! [`Writer`]: builds a new HDF5 file in memory, through hdf5-pure.
//!
//! hdf5-pure 0.47 writes libver >= 1.8 structures only (its oldest writable
//! bound is `LibVer::V18`): superblock version 2, version-2 object headers,
//! compact link groups, contiguous datasets, compact attributes, and global
//! heap vlen strings. It cannot write the superblock-0 / symbol-table layout
//! h5py writes by default; h5py (HDF5 >= 1.8) and Keras read these files, and
//! this crate's tests check that with h5py. The writer asks for the v1.8 bound
//! so that the oldest HDF5 libraries that can read such files can read ours.

use hdf5_pure::{
    AttrValue as PureAttr, Datatype, DatatypeByteOrder, EnumTypeBuilder, FileBuilder, FloatingPointLayout, LibVer,
};

use crate::datatype::DType;
use crate::error::{Error, Result, WriteProblem};

/// An attribute value to write, named by the encoding h5py would produce.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteAttr {
    /// Scalar vlen UTF-8 string (h5py `str`; Keras `keras_version`, `backend`, `name`).
    VlenUtf8(String),
    /// Scalar vlen ASCII string (h5py `bytes`; Keras `model_config`). Must be valid UTF-8.
    VlenAscii(Vec<u8>),
    /// 1-D vlen ASCII array (h5py 3 list of bytes; Keras `layer_names`, `weight_names`).
    VlenAsciiArray(Vec<Vec<u8>>),
    /// 1-D vlen UTF-8 array.
    VlenUtf8Array(Vec<String>),
    /// 1-D fixed-length ASCII array, NULLPAD, width = longest item (numpy `S`;
    /// Keras `layer_names0`, ... chunks and h5py 2 lists).
    FixedAsciiArray(Vec<Vec<u8>>),
    /// Empty float64 array of shape `(0,)` (what h5py writes for an empty list).
    EmptyF64Array,
    /// Scalar float64.
    F64(f64),
    /// Scalar int64.
    I64(i64),
    /// 1-D int64 array.
    I64Array(Vec<i64>),
}

#[derive(Debug, Clone)]
enum WNode {
    Group { children: Vec<(String, WNode)>, attrs: Vec<(String, WriteAttr)> },
    Dataset { dtype: DType, shape: Vec<u64>, raw: Vec<u8>, attrs: Vec<(String, WriteAttr)> },
}

impl WNode {
    fn group() -> WNode {
        WNode::Group { children: Vec::new(), attrs: Vec::new() }
    }
}

/// Builds a new HDF5 file in memory. Objects are written in creation order.
#[derive(Debug, Clone)]
pub struct Writer {
    root: WNode,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

fn components(path: &str) -> Result<Vec<&str>> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(Error::write(path, WriteProblem::InvalidPath));
    }
    Ok(parts)
}

impl Writer {
    /// An empty file (just the root group).
    pub fn new() -> Writer {
        Writer { root: WNode::group() }
    }

    /// Walks to the group at `parts`, creating missing groups.
    fn group_mut(&mut self, path: &str, parts: &[&str]) -> Result<&mut WNode> {
        let mut node = &mut self.root;
        let mut walked = String::new();
        for part in parts {
            walked.push('/');
            walked.push_str(part);
            let WNode::Group { children, .. } = node else {
                return Err(Error::write(path, WriteProblem::ParentIsDataset(parent_of(&walked))));
            };
            let i = match children.iter().position(|(n, _)| n == part) {
                Some(i) => i,
                None => {
                    children.push(((*part).to_string(), WNode::group()));
                    children.len() - 1
                }
            };
            node = &mut children[i].1;
        }
        if matches!(node, WNode::Dataset { .. }) {
            return Err(Error::write(path, WriteProblem::ParentIsDataset(walked)));
        }
        Ok(node)
    }

    fn find_mut(&mut self, parts: &[&str]) -> Option<&mut WNode> {
        let mut node = &mut self.root;
        for part in parts {
            let WNode::Group { children, .. } = node else {
                return None;
            };
            node = &mut children.iter_mut().find(|(n, _)| n == part)?.1;
        }
        Some(node)
    }

    /// Creates the group at `path` and any missing parents; an existing group is kept.
    pub fn create_group(&mut self, path: &str) -> Result<()> {
        let parts = components(path)?;
        if parts.is_empty() {
            return Ok(());
        }
        if let Some(WNode::Dataset { .. }) = self.find_mut(&parts) {
            return Err(Error::write(path, WriteProblem::Exists));
        }
        self.group_mut(path, &parts).map(|_| ())
    }

    /// Sets (or replaces) attribute `name` on the group or dataset at `object_path` (`/` for the root).
    pub fn set_attr(&mut self, object_path: &str, name: &str, value: WriteAttr) -> Result<()> {
        if name.is_empty() {
            return Err(Error::write(object_path, WriteProblem::EmptyAttrName));
        }
        let parts = components(object_path)?;
        let node = self.find_mut(&parts).ok_or_else(|| Error::write(object_path, WriteProblem::NoSuchObject))?;
        let (WNode::Group { attrs, .. } | WNode::Dataset { attrs, .. }) = node;
        match attrs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => attrs.push((name.to_string(), value)),
        }
        Ok(())
    }

    /// Creates a contiguous dataset from little-endian element bytes; `shape`
    /// empty means a scalar. Parent groups are created. bfloat16 datasets get
    /// the attribute `dtype="bfloat16"` as Keras writes it.
    pub fn create_dataset(&mut self, path: &str, dtype: DType, shape: &[u64], raw_le: &[u8]) -> Result<()> {
        let parts = components(path)?;
        let Some((leaf, parents)) = parts.split_last() else {
            return Err(Error::write(path, WriteProblem::InvalidPath));
        };
        let Some(esize) = dtype.size() else {
            return Err(Error::write(path, WriteProblem::Dtype(dtype.to_string())));
        };
        let expected = shape
            .iter()
            .try_fold(esize as u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::SizeOverflow { path: path.to_string(), shape: shape.to_vec() })?;
        if expected != raw_le.len() as u64 {
            return Err(Error::write(path, WriteProblem::DataLength { expected, found: raw_le.len() as u64 }));
        }
        let parent = self.group_mut(path, parents)?;
        let WNode::Group { children, .. } = parent else {
            return Err(Error::write(path, WriteProblem::ParentIsDataset(parent_of(path))));
        };
        if children.iter().any(|(n, _)| n == leaf) {
            return Err(Error::write(path, WriteProblem::Exists));
        }
        let mut attrs = Vec::new();
        if dtype == DType::BF16 {
            attrs.push(("dtype".to_string(), WriteAttr::VlenUtf8("bfloat16".into())));
        }
        children
            .push(((*leaf).to_string(), WNode::Dataset { dtype, shape: shape.to_vec(), raw: raw_le.to_vec(), attrs }));
        Ok(())
    }

    /// Serializes the file.
    pub fn finish(self) -> Result<Vec<u8>> {
        let mut b = FileBuilder::new();
        b.with_libver_bounds(LibVer::Earliest, LibVer::V18);
        let WNode::Group { children, attrs } = self.root else {
            return Err(Error::write("/", WriteProblem::InvalidPath));
        };
        for (name, value) in attrs {
            b.set_attr(&name, pure_attr("/", &name, value)?);
        }
        for (name, child) in children {
            let path = format!("/{name}");
            match child {
                WNode::Dataset { dtype, shape, raw, attrs } => {
                    let ds = b.create_dataset(&name);
                    fill_dataset(ds, &path, dtype, &shape, raw, attrs)?;
                }
                WNode::Group { children, attrs } => {
                    let mut g = b.create_group(&name);
                    fill_group(&mut g, &path, children, attrs)?;
                    b.add_group(g.finish());
                }
            }
        }
        crate::guard::call("/", "writing the file", || b.finish())
    }
}

fn parent_of(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((p, _)) => p.into(),
    }
}

fn fill_group(
    g: &mut hdf5_pure::GroupBuilder,
    path: &str,
    children: Vec<(String, WNode)>,
    attrs: Vec<(String, WriteAttr)>,
) -> Result<()> {
    for (name, value) in attrs {
        g.set_attr(&name, pure_attr(path, &name, value)?);
    }
    for (name, child) in children {
        let cpath = format!("{path}/{name}");
        match child {
            WNode::Dataset { dtype, shape, raw, attrs } => {
                let ds = g.create_dataset(&name);
                fill_dataset(ds, &cpath, dtype, &shape, raw, attrs)?;
            }
            WNode::Group { children, attrs } => {
                let mut sub = g.create_group(&name);
                fill_group(&mut sub, &cpath, children, attrs)?;
                g.add_group(sub.finish());
            }
        }
    }
    Ok(())
}

fn fill_dataset(
    ds: &mut hdf5_pure::DatasetBuilder,
    path: &str,
    dtype: DType,
    shape: &[u64],
    raw: Vec<u8>,
    attrs: Vec<(String, WriteAttr)>,
) -> Result<()> {
    let nelem = shape.iter().product::<u64>();
    ds.with_raw_data(datatype(path, &dtype)?, raw, nelem).with_shape(shape);
    for (name, value) in attrs {
        ds.set_attr(&name, pure_attr(path, &name, value)?);
    }
    Ok(())
}

fn le_int(size: u32, signed: bool) -> Datatype {
    Datatype::FixedPoint {
        size,
        byte_order: DatatypeByteOrder::LittleEndian,
        layout: hdf5_pure::FixedPointLayout { signed, bit_offset: 0, bit_precision: (size * 8) as u16 },
    }
}

fn datatype(path: &str, dtype: &DType) -> Result<Datatype> {
    let float = |size: u32, layout: FloatingPointLayout| Datatype::FloatingPoint {
        size,
        byte_order: DatatypeByteOrder::LittleEndian,
        layout,
    };
    Ok(match dtype {
        DType::F16 => float(
            2,
            FloatingPointLayout {
                bit_offset: 0,
                bit_precision: 16,
                exponent_location: 10,
                exponent_size: 5,
                mantissa_location: 0,
                mantissa_size: 10,
                exponent_bias: 15,
            },
        ),
        DType::F32 => float(4, FloatingPointLayout::IEEE754_BINARY32),
        DType::F64 => float(8, FloatingPointLayout::IEEE754_BINARY64),
        DType::BF16 => Datatype::Opaque { size: 2, tag: Vec::new() },
        DType::I8 => le_int(1, true),
        DType::I16 => le_int(2, true),
        DType::I32 => le_int(4, true),
        DType::I64 => le_int(8, true),
        DType::U8 => le_int(1, false),
        DType::U16 => le_int(2, false),
        DType::U32 => le_int(4, false),
        DType::U64 => le_int(8, false),
        DType::Bool => {
            EnumTypeBuilder::with_base(le_int(1, true)).value("FALSE", 0).value("TRUE", 1).build().map_err(|e| {
                Error::Backend {
                    path: path.to_string(),
                    doing: "building the bool datatype",
                    source: hdf5_pure::Error::Format(e),
                }
            })?
        }
        DType::Str | DType::Other(_) => {
            return Err(Error::write(path, WriteProblem::Dtype(dtype.to_string())));
        }
    })
}

fn utf8(path: &str, name: &str, v: Vec<u8>) -> Result<String> {
    String::from_utf8(v).map_err(|_| Error::write(path, WriteProblem::NotUtf8(name.to_string())))
}

fn pure_attr(path: &str, name: &str, value: WriteAttr) -> Result<PureAttr> {
    Ok(match value {
        WriteAttr::VlenUtf8(s) => PureAttr::VarLenString(s),
        WriteAttr::VlenAscii(b) => PureAttr::VarLenAsciiString(utf8(path, name, b)?),
        WriteAttr::VlenAsciiArray(v) => {
            PureAttr::VarLenAsciiStringArray(v.into_iter().map(|b| utf8(path, name, b)).collect::<Result<_>>()?)
        }
        WriteAttr::VlenUtf8Array(v) => PureAttr::VarLenStringArray(v),
        WriteAttr::FixedAsciiArray(v) => {
            PureAttr::AsciiStringArray(v.into_iter().map(|b| utf8(path, name, b)).collect::<Result<_>>()?)
        }
        WriteAttr::EmptyF64Array => PureAttr::F64Array(Vec::new()),
        WriteAttr::F64(x) => PureAttr::F64(x),
        WriteAttr::I64(x) => PureAttr::I64(x),
        WriteAttr::I64Array(v) => PureAttr::I64Array(v),
    })
}
