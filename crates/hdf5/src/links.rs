//! Group members: the links a group holds, of every kind.
//!
//! Two storage schemes exist. Old-style groups (what h5py/Keras write by
//! default) keep a symbol table: a version-1 B-tree whose leaves are symbol
//! nodes (`SNOD`) and a local heap holding the names; a symbol entry with cache
//! type 2 is a soft link. New-style groups (libver >= 1.8) keep Link messages
//! in the object header ("compact") or, past 8 links, in a fractal heap indexed
//! by a version-2 B-tree ("dense").
//!
//! Links are decoded here so they can be *listed*; nothing here follows a soft
//! or external link.

use std::collections::HashSet;

use crate::cursor::{Cursor, UNDEF};
use crate::error::{Error, Result};
use crate::file::Inner;
use crate::header::{Header, msg};

/// Where a link points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// An object header in this file (relative address).
    Hard(u64),
    Soft(String),
    External {
        file: String,
        path: String,
    },
    /// A user-defined link class.
    UserDefined(u8),
}

#[derive(Debug, Clone)]
pub(crate) struct RawLink {
    pub name: String,
    pub target: Target,
}

/// Deepest version-1 B-tree accepted (HDF5 itself never builds more than a handful of levels).
const MAX_BTREE_LEVEL: u8 = 32;

fn name_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every link of the group whose header is `header`, sorted by name.
pub(crate) fn read_links(inner: &Inner, header: &Header<'_>, object: &str) -> Result<Vec<RawLink>> {
    let mut links = Vec::new();
    if let Some(stab) = header.first(msg::SYMBOL_TABLE) {
        let err = |s: crate::cursor::Short| Error::malformed(object, "symbol table message", s.at);
        let mut c = stab.cursor();
        let btree = c.addr(inner.sb.osize).map_err(err)?;
        let heap = c.addr(inner.sb.osize).map_err(err)?;
        symbol_table(inner, btree, heap, object, &mut links)?;
    }
    for m in header.all(msg::LINK) {
        links.push(link_message(inner, m.body, m.offset, object)?);
        check_count(inner, links.len(), object)?;
    }
    if let Some(info) = header.first(msg::LINK_INFO) {
        let err = |s: crate::cursor::Short| Error::malformed(object, "link info message", s.at);
        let mut c = info.cursor();
        c.skip(1).map_err(err)?;
        let flags = c.u8().map_err(err)?;
        if flags & 1 != 0 {
            c.skip(8).map_err(err)?;
        }
        let heap = c.addr(inner.sb.osize).map_err(err)?;
        let index = c.addr(inner.sb.osize).map_err(err)?;
        if heap != UNDEF {
            for (body, offset) in crate::fheap::dense_records(inner, heap, index, object, "links")? {
                links.push(link_message(inner, &body, offset, object)?);
                check_count(inner, links.len(), object)?;
            }
        }
    }
    links.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    for pair in links.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(Error::malformed(object, "group (duplicate member name)", header.offset));
        }
    }
    Ok(links)
}

fn check_count(inner: &Inner, n: usize, object: &str) -> Result<()> {
    if n > inner.limits.max_objects {
        return Err(Error::limit(object, "member count", n as u64, inner.limits.max_objects as u64, "max_objects"));
    }
    Ok(())
}

/// Decodes one Link message body.
pub(crate) fn link_message(inner: &Inner, body: &[u8], offset: u64, object: &str) -> Result<RawLink> {
    let err = |s: crate::cursor::Short| Error::malformed(object, "link message", s.at);
    let mut c = Cursor::new(body, offset);
    if c.u8().map_err(err)? != 1 {
        return Err(Error::malformed(object, "link message version", offset));
    }
    let flags = c.u8().map_err(err)?;
    let kind = if flags & 0x08 != 0 { c.u8().map_err(err)? } else { 0 };
    if flags & 0x04 != 0 {
        c.skip(8).map_err(err)?;
    }
    if flags & 0x10 != 0 {
        c.skip(1).map_err(err)?;
    }
    let len = c.uint(1 << (flags & 3)).map_err(err)?;
    let len = usize::try_from(len).map_err(|_| Error::malformed(object, "link name length", offset))?;
    let name = name_of(c.bytes(len).map_err(err)?);
    let target = match kind {
        0 => Target::Hard(c.addr(inner.sb.osize).map_err(err)?),
        1 => {
            let n = c.u16().map_err(err)?;
            Target::Soft(name_of(c.bytes(usize::from(n)).map_err(err)?))
        }
        64 => {
            let n = c.u16().map_err(err)?;
            let mut v = c.sub(usize::from(n)).map_err(err)?;
            v.skip(1).map_err(err)?; // version and flags
            let file = name_of(v.cstr().map_err(err)?);
            let path = name_of(v.cstr().map_err(err)?);
            Target::External { file, path }
        }
        other => Target::UserDefined(other),
    };
    Ok(RawLink { name, target })
}

/// Appends the entries of an old-style group.
fn symbol_table(inner: &Inner, btree: u64, heap: u64, object: &str, out: &mut Vec<RawLink>) -> Result<()> {
    let heap_data = local_heap(inner, heap, object)?;
    let mut seen = HashSet::new();
    let mut stack = vec![(btree, None::<u8>)];
    let o = inner.sb.osize;
    let l = inner.sb.lsize;
    while let Some((addr, expect_level)) = stack.pop() {
        if !seen.insert(addr) {
            return Err(Error::malformed(object, "group B-tree (node visited twice)", addr));
        }
        check_count(inner, seen.len(), object)?;
        let start = inner.abs(addr, object, "group B-tree node")?;
        let err = |s: crate::cursor::Short| Error::malformed(object, "group B-tree node", s.at);
        let mut c = inner.cursor_at(addr, object, "group B-tree node of")?;
        if c.bytes(4).map_err(err)? != b"TREE" {
            return Err(Error::malformed(object, "group B-tree node signature", start));
        }
        if c.u8().map_err(err)? != 0 {
            return Err(Error::malformed(object, "group B-tree node type", start));
        }
        let level = c.u8().map_err(err)?;
        if level > MAX_BTREE_LEVEL || expect_level.is_some_and(|e| e != level) {
            return Err(Error::malformed(object, "group B-tree node level", start));
        }
        let entries = c.u16().map_err(err)?;
        c.skip(2 * o).map_err(err)?; // siblings
        let mut children = Vec::with_capacity(usize::from(entries).min(c.remaining() / (o + l).max(1)));
        for _ in 0..entries {
            c.skip(l).map_err(err)?; // key
            children.push(c.addr(o).map_err(err)?);
        }
        if level > 0 {
            // Visit children left to right: push in reverse.
            for child in children.into_iter().rev() {
                stack.push((child, Some(level - 1)));
            }
        } else {
            for child in children {
                symbol_node(inner, child, heap_data, object, out)?;
                check_count(inner, out.len(), object)?;
            }
        }
    }
    Ok(())
}

fn symbol_node(inner: &Inner, addr: u64, heap: &[u8], object: &str, out: &mut Vec<RawLink>) -> Result<()> {
    let o = inner.sb.osize;
    let start = inner.abs(addr, object, "symbol table node")?;
    let err = |s: crate::cursor::Short| Error::malformed(object, "symbol table node", s.at);
    let mut c = inner.cursor_at(addr, object, "symbol table node of")?;
    if c.bytes(4).map_err(err)? != b"SNOD" {
        return Err(Error::malformed(object, "symbol table node signature", start));
    }
    c.skip(2).map_err(err)?; // version, reserved
    let count = c.u16().map_err(err)?;
    for _ in 0..count {
        let name_off = c.uint(o).map_err(err)?;
        let header = c.addr(o).map_err(err)?;
        let cache = c.u32().map_err(err)?;
        c.skip(4).map_err(err)?;
        let mut scratch = c.sub(16).map_err(err)?;
        let name = heap_string(heap, name_off, object, start)?;
        let target = if cache == 2 {
            let value = scratch.u32().map_err(err)?;
            Target::Soft(heap_string(heap, u64::from(value), object, start)?)
        } else {
            Target::Hard(header)
        };
        out.push(RawLink { name, target });
    }
    Ok(())
}

fn heap_string(heap: &[u8], off: u64, object: &str, at: u64) -> Result<String> {
    let off = usize::try_from(off).map_err(|_| Error::malformed(object, "local heap name offset", at))?;
    let rest = heap.get(off..).ok_or_else(|| Error::malformed(object, "local heap name offset", at))?;
    let mut c = Cursor::new(rest, at);
    let s = c.cstr().map_err(|_| Error::malformed(object, "local heap name (no terminator)", at))?;
    Ok(name_of(s))
}

/// The data segment of the local heap at `addr`.
fn local_heap<'a>(inner: &'a Inner, addr: u64, object: &str) -> Result<&'a [u8]> {
    let start = inner.abs(addr, object, "local heap")?;
    let err = |s: crate::cursor::Short| Error::malformed(object, "local heap", s.at);
    let mut c = inner.cursor_at(addr, object, "local heap of")?;
    if c.bytes(4).map_err(err)? != b"HEAP" {
        return Err(Error::malformed(object, "local heap signature", start));
    }
    c.skip(4).map_err(err)?; // version, reserved
    let size = c.uint(inner.sb.lsize).map_err(err)?;
    c.skip(inner.sb.lsize).map_err(err)?; // free list offset
    let data = c.addr(inner.sb.osize).map_err(err)?;
    inner.slice(data, size, object, "local heap of")
}
