//! HDF5 for Keras files: read with limits and guards, write what Keras needs.
//!
//! This crate knows HDF5, not Keras. It gives the `strata-format` crate what
//! Keras `.h5` / `.weights.h5` files hold: groups, attributes (every string
//! encoding h5py has written), and datasets of the dtypes Keras uses
//! (f16/bf16/f32/f64, integers, bool).
//!
//! Main types: [`H5File`] (open, look up, [`walk`](H5File::walk)), [`Group`],
//! [`Dataset`] ([`read_raw`](Dataset::read_raw)), [`Attr`], [`Limits`],
//! [`Writer`] and [`Error`].
//!
//! Safety rules (mirroring Keras >= 3.14/3.15 `saving_lib.py`): soft links,
//! external links, external storage and virtual datasets are listed but never
//! followed or read; a dataset's byte size is computed with checked arithmetic
//! and refused before allocating when it exceeds [`Limits`] or is a shape bomb
//! (declared > 4 GiB and > 1000x the stored bytes); object counts and nesting
//! are bounded; no input makes the library panic.
//!
//! Structure (superblock, object headers, groups and links, attributes,
//! dataset metadata) is decoded here with bounds-checked cursors, because
//! hdf5-pure's public API hides link kinds, attribute shapes and raw string
//! bytes. Chunked/filtered dataset bytes are decoded by hdf5-pure, and
//! [`Writer`] builds files with hdf5-pure's `FileBuilder`.
//!
//! ```
//! use strata_hdf5::{DType, H5File, Limits, Writer, WriteAttr, NodeKind};
//!
//! let mut w = Writer::new();
//! w.create_dataset("/layers/dense/vars/0", DType::F32, &[2], &[0, 0, 128, 63, 0, 0, 0, 64])?;
//! w.set_attr("/layers/dense/vars", "name", WriteAttr::VlenUtf8("dense".into()))?;
//! let bytes = w.finish()?;
//!
//! let f = H5File::from_bytes(bytes, &Limits::default())?;
//! let vars = f.group("/layers/dense/vars")?;
//! assert_eq!(vars.attr("name")?.and_then(|a| a.as_string()).as_deref(), Some("dense"));
//! let ds = f.dataset("layers/dense/vars/0")?;
//! assert_eq!((ds.shape(), ds.dtype()), (&[2u64][..], &DType::F32));
//! assert_eq!(ds.read_raw()?, [0, 0, 128, 63, 0, 0, 0, 64]);
//! assert!(f.walk()?.iter().any(|n| n.path == "/layers/dense/vars/0" && n.kind == NodeKind::Dataset));
//! # Ok::<(), strata_hdf5::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod attr;
mod cursor;
mod dataset;
mod datatype;
mod error;
mod fheap;
mod file;
mod guard;
mod header;
mod limits;
mod links;
mod writer;

pub use attr::{Attr, AttrValue, StrEncoding};
pub use dataset::{Dataset, Storage};
pub use datatype::{DType, StrPad};
pub use error::{Error, Result, WriteProblem};
pub use file::{Group, H5File, Member, Node, NodeKind};
pub use limits::Limits;
pub use writer::{WriteAttr, Writer};
