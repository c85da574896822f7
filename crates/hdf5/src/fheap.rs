//! Dense storage: fractal heap objects found through a version-2 B-tree.
//!
//! New-style groups with many links, and objects with many or large
//! attributes (libver >= 1.8), store their Link / Attribute messages as
//! objects in a fractal heap and index them by name hash in a version-2
//! B-tree. Keras never writes these (h5py defaults to old-style groups), but
//! files rewritten with libver='latest' or by other tools do. This module
//! walks the B-tree, decodes each heap ID, and returns the message bytes;
//! every count, level and offset is bounded.
//!
//! Not supported (reported as [`Error::Unsupported`]): filtered heaps and
//! "huge" heap objects (stored outside the heap blocks).

use std::collections::HashSet;

use crate::cursor::{Cursor, Short, UNDEF};
use crate::error::{Error, FIX_RESAVE, Result};
use crate::file::Inner;

/// Deepest v2 B-tree or indirect-block nesting accepted.
const MAX_DEPTH: u16 = 32;

struct Heap {
    id_len: usize,
    off_size: usize,
    len_size: usize,
    width: u64,
    start_size: u64,
    max_direct: u64,
    /// (heap offset, absolute file offset, block size) of every direct block.
    blocks: Vec<(u64, u64, u64)>,
}

fn enc_size(v: u64) -> usize {
    // Bytes needed to encode v: floor(log2(v)) / 8 + 1 (HDF5's H5VM_limit_enc_size).
    let log2 = if v == 0 { 0 } else { 63 - v.leading_zeros() as usize };
    log2 / 8 + 1
}

fn log2(v: u64) -> u32 {
    if v == 0 { 0 } else { 63 - v.leading_zeros() }
}

/// The message bodies stored in the dense storage whose fractal heap is at
/// `heap` and whose name index B-tree is at `btree`, each with its absolute offset.
pub(crate) fn dense_records(
    inner: &Inner,
    heap: u64,
    btree: u64,
    object: &str,
    what: &'static str,
) -> Result<Vec<(Vec<u8>, u64)>> {
    let heap = read_heap(inner, heap, object)?;
    let ids = btree_records(inner, btree, heap.id_len, object)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(heap_object(inner, &heap, &id, object, what)?);
    }
    Ok(out)
}

fn read_heap(inner: &Inner, addr: u64, object: &str) -> Result<Heap> {
    let o = inner.sb.osize;
    let l = inner.sb.lsize;
    let start = inner.abs(addr, object, "fractal heap")?;
    let err = |s: Short| Error::malformed(object, "fractal heap header", s.at);
    let mut c = inner.cursor_at(addr, object, "fractal heap of")?;
    if c.bytes(4).map_err(err)? != b"FRHP" {
        return Err(Error::malformed(object, "fractal heap signature", start));
    }
    c.skip(1).map_err(err)?;
    let id_len = usize::from(c.u16().map_err(err)?);
    let filter_len = c.u16().map_err(err)?;
    c.skip(1).map_err(err)?; // flags
    let max_managed = u64::from(c.u32().map_err(err)?);
    c.skip(l + o + l + o + l + l + l + l + l + l + l + l).map_err(err)?;
    let width = u64::from(c.u16().map_err(err)?);
    let start_size = c.uint(l).map_err(err)?;
    let max_direct = c.uint(l).map_err(err)?;
    let max_heap_bits = c.u16().map_err(err)?;
    c.skip(2).map_err(err)?; // starting rows
    let root = c.addr(o).map_err(err)?;
    let root_rows = c.u16().map_err(err)?;
    if filter_len != 0 {
        return Err(Error::unsupported(object, "filtered fractal heap (dense storage with I/O filters)", FIX_RESAVE));
    }
    let pow2 = |v: u64| v != 0 && v.is_power_of_two();
    if width == 0
        || !pow2(start_size)
        || !pow2(max_direct)
        || max_direct < start_size
        || max_heap_bits == 0
        || max_heap_bits > 64
        || id_len == 0
    {
        return Err(Error::malformed(object, "fractal heap doubling table", start));
    }
    let off_size = usize::from(max_heap_bits).div_ceil(8);
    let len_size = enc_size(max_direct).min(enc_size(max_managed));
    let mut heap = Heap { id_len, off_size, len_size, width, start_size, max_direct, blocks: Vec::new() };
    if root != UNDEF {
        if root_rows == 0 {
            direct_block(inner, &mut heap, root, start_size, object)?;
        } else {
            let mut seen = HashSet::new();
            indirect_block(inner, &mut heap, root, u64::from(root_rows), 0, object, &mut seen)?;
        }
    }
    Ok(heap)
}

fn direct_block(inner: &Inner, heap: &mut Heap, addr: u64, size: u64, object: &str) -> Result<()> {
    let start = inner.abs(addr, object, "fractal heap direct block")?;
    let bytes = inner.slice(addr, size, object, "fractal heap direct block of")?;
    let err = |s: Short| Error::malformed(object, "fractal heap direct block", s.at);
    let mut c = Cursor::new(bytes, start);
    if c.bytes(4).map_err(err)? != b"FHDB" {
        return Err(Error::malformed(object, "fractal heap direct block signature", start));
    }
    c.skip(1 + inner.sb.osize).map_err(err)?;
    let block_off = c.uint(heap.off_size).map_err(err)?;
    if heap.blocks.len() >= inner.limits.max_objects {
        return Err(Error::limit(
            object,
            "fractal heap block count",
            heap.blocks.len() as u64,
            inner.limits.max_objects as u64,
            "max_objects",
        ));
    }
    heap.blocks.push((block_off, start, size));
    Ok(())
}

fn indirect_block(
    inner: &Inner,
    heap: &mut Heap,
    addr: u64,
    rows: u64,
    depth: u16,
    object: &str,
    seen: &mut HashSet<u64>,
) -> Result<()> {
    let start = inner.abs(addr, object, "fractal heap indirect block")?;
    if depth > MAX_DEPTH || !seen.insert(start) {
        return Err(Error::malformed(object, "fractal heap indirect block (loop or too deep)", start));
    }
    let o = inner.sb.osize;
    let err = |s: Short| Error::malformed(object, "fractal heap indirect block", s.at);
    let mut c = inner.cursor_at(addr, object, "fractal heap indirect block of")?;
    if c.bytes(4).map_err(err)? != b"FHIB" {
        return Err(Error::malformed(object, "fractal heap indirect block signature", start));
    }
    c.skip(1 + o + heap.off_size).map_err(err)?;
    let max_direct_rows = u64::from(log2(heap.max_direct) - log2(heap.start_size) + 2);
    if rows > 64 {
        return Err(Error::malformed(object, "fractal heap indirect block rows", start));
    }
    for row in 0..rows {
        let size = if row == 0 {
            heap.start_size
        } else {
            heap.start_size
                .checked_shl(u32::try_from(row - 1).unwrap_or(u32::MAX))
                .filter(|v| *v != 0)
                .ok_or_else(|| Error::malformed(object, "fractal heap block size", start))?
        };
        for _ in 0..heap.width {
            let child = c.addr(o).map_err(err)?;
            if child == UNDEF {
                continue;
            }
            if row < max_direct_rows {
                direct_block(inner, heap, child, size, object)?;
            } else {
                let child_rows = (u64::from(log2(size)) + 1)
                    .checked_sub(u64::from(log2(heap.start_size.saturating_mul(heap.width))))
                    .ok_or_else(|| Error::malformed(object, "fractal heap indirect block rows", start))?;
                indirect_block(inner, heap, child, child_rows, depth + 1, object, seen)?;
            }
        }
    }
    Ok(())
}

fn heap_object(inner: &Inner, heap: &Heap, id: &[u8], object: &str, what: &'static str) -> Result<(Vec<u8>, u64)> {
    let err = |s: Short| Error::malformed(object, "fractal heap ID", s.at);
    let mut c = Cursor::new(id, 0);
    let flags = c.u8().map_err(err)?;
    match (flags >> 4) & 3 {
        0 => {
            let off = c.uint(heap.off_size).map_err(err)?;
            let len = c.uint(heap.len_size).map_err(err)?;
            for &(block_off, abs, size) in &heap.blocks {
                if off >= block_off && off - block_off < size {
                    let rel = off - block_off;
                    let end = rel
                        .checked_add(len)
                        .filter(|e| *e <= size)
                        .ok_or_else(|| Error::malformed(object, "fractal heap object length", abs))?;
                    let from =
                        usize::try_from(abs + rel).map_err(|_| Error::malformed(object, "fractal heap object", abs))?;
                    let to =
                        usize::try_from(abs + end).map_err(|_| Error::malformed(object, "fractal heap object", abs))?;
                    let bytes = inner
                        .data()
                        .get(from..to)
                        .ok_or_else(|| Error::malformed(object, "fractal heap object", abs))?;
                    return Ok((bytes.to_vec(), abs + rel));
                }
            }
            Err(Error::malformed(object, "fractal heap ID (offset outside every block)", 0))
        }
        2 => {
            let len = usize::from(flags & 0x0f) + 1;
            let bytes = c.bytes(len).map_err(err)?;
            Ok((bytes.to_vec(), 0))
        }
        _ => Err(Error::unsupported(object, format!("huge fractal heap objects in dense {what} storage"), FIX_RESAVE)),
    }
}

/// The heap IDs of every record of the v2 B-tree at `addr` (link name index, type 5,
/// or attribute name index, type 8).
fn btree_records(inner: &Inner, addr: u64, id_len: usize, object: &str) -> Result<Vec<Vec<u8>>> {
    let o = inner.sb.osize;
    let l = inner.sb.lsize;
    let start = inner.abs(addr, object, "v2 B-tree")?;
    let err = |s: Short| Error::malformed(object, "v2 B-tree header", s.at);
    let mut c = inner.cursor_at(addr, object, "v2 B-tree of")?;
    if c.bytes(4).map_err(err)? != b"BTHD" {
        return Err(Error::malformed(object, "v2 B-tree signature", start));
    }
    c.skip(1).map_err(err)?;
    let kind = c.u8().map_err(err)?;
    let node_size = u64::from(c.u32().map_err(err)?);
    let rec_size = u64::from(c.u16().map_err(err)?);
    let depth = c.u16().map_err(err)?;
    c.skip(2).map_err(err)?;
    let root = c.addr(o).map_err(err)?;
    let root_nrec = u64::from(c.u16().map_err(err)?);
    let _total = c.uint(l).map_err(err)?;
    let id_at = match kind {
        5 => 4,
        8 => 0,
        _ => return Err(Error::malformed(object, "v2 B-tree type", start)),
    };
    if depth > MAX_DEPTH || rec_size == 0 || node_size <= 10 || id_at + id_len as u64 > rec_size {
        return Err(Error::malformed(object, "v2 B-tree header", start));
    }
    // Per-level node capacities, as the HDF5 library derives them.
    let mut max_nrec = vec![(node_size - 10) / rec_size];
    let mut cum_max = vec![max_nrec[0]];
    let mut cum_size = vec![0usize];
    let nrec_size = enc_size(max_nrec[0]);
    for d in 1..=usize::from(depth) {
        let ptr = o as u64 + nrec_size as u64 + if d > 1 { cum_size[d - 1] as u64 } else { 0 };
        let m = node_size.saturating_sub(10 + ptr) / (rec_size + ptr);
        let cm = m.saturating_add(1).saturating_mul(cum_max[d - 1]).saturating_add(m);
        max_nrec.push(m);
        cum_max.push(cm);
        cum_size.push(enc_size(cm));
    }
    let mut out = Vec::new();
    if root == UNDEF {
        return Ok(out);
    }
    let mut stack = vec![(root, root_nrec, depth)];
    let mut seen = HashSet::new();
    while let Some((node, nrec, d)) = stack.pop() {
        let nstart = inner.abs(node, object, "v2 B-tree node")?;
        if !seen.insert(nstart) || seen.len() > inner.limits.max_objects {
            return Err(Error::malformed(object, "v2 B-tree node (loop or too many)", nstart));
        }
        let err = |s: Short| Error::malformed(object, "v2 B-tree node", s.at);
        let bytes = inner.slice(node, node_size, object, "v2 B-tree node of")?;
        let mut c = Cursor::new(bytes, nstart);
        let sig = c.bytes(4).map_err(err)?;
        if sig != if d == 0 { b"BTLF" } else { b"BTIN" } {
            return Err(Error::malformed(object, "v2 B-tree node signature", nstart));
        }
        c.skip(2).map_err(err)?;
        let di = usize::from(d);
        if nrec > max_nrec.get(di).copied().unwrap_or(0) {
            return Err(Error::malformed(object, "v2 B-tree node record count", nstart));
        }
        for _ in 0..nrec {
            let rec = c.bytes(rec_size as usize).map_err(err)?;
            let id = rec
                .get(id_at as usize..id_at as usize + id_len)
                .ok_or_else(|| Error::malformed(object, "v2 B-tree record", nstart))?;
            out.push(id.to_vec());
            if out.len() > inner.limits.max_objects {
                return Err(Error::limit(
                    object,
                    "dense storage record count",
                    out.len() as u64,
                    inner.limits.max_objects as u64,
                    "max_objects",
                ));
            }
        }
        if d > 0 {
            for _ in 0..=nrec {
                let child = c.addr(o).map_err(err)?;
                let child_nrec = c.uint(nrec_size).map_err(err)?;
                if d > 1 {
                    c.skip(cum_size[di - 1]).map_err(err)?;
                }
                stack.push((child, child_nrec, d - 1));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_sizes_match_hdf5() {
        assert_eq!(enc_size(0), 1);
        assert_eq!(enc_size(255), 1);
        assert_eq!(enc_size(256), 2);
        assert_eq!(enc_size(65536), 3);
    }
}
