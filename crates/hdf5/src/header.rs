//! Superblock and object headers.
//!
//! This crate decodes the *structure* of a file itself (superblock, object
//! headers, groups, attributes, dataset metadata) because hdf5-pure 0.47 does
//! not expose what a safe Keras reader needs: the kind of every link (soft and
//! external links are silently skipped by its group listing), the dataspace of
//! an attribute, and the raw bytes of string attributes. Dataset bytes in
//! chunked/filtered storage, and all writing, go through hdf5-pure.
//!
//! Supported: superblock versions 0-3, object header versions 1 and 2 with
//! continuation blocks. Checksums of version-2 structures are not verified
//! (every length is still bounds-checked).

use std::collections::HashSet;

use crate::cursor::{Cursor, Short, UNDEF};
use crate::error::{Error, Result};
use crate::file::Inner;

/// HDF5 file signature.
pub(crate) const SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];

/// Header message types used here.
pub(crate) mod msg {
    pub const DATASPACE: u16 = 0x0001;
    pub const LINK_INFO: u16 = 0x0002;
    pub const DATATYPE: u16 = 0x0003;
    pub const LINK: u16 = 0x0006;
    pub const EXTERNAL_FILES: u16 = 0x0007;
    pub const LAYOUT: u16 = 0x0008;
    pub const FILTERS: u16 = 0x000B;
    pub const ATTRIBUTE: u16 = 0x000C;
    pub const CONTINUATION: u16 = 0x0010;
    pub const SYMBOL_TABLE: u16 = 0x0011;
    pub const ATTRIBUTE_INFO: u16 = 0x0015;
}

/// The fields of the superblock this crate uses.
#[derive(Debug, Clone)]
pub(crate) struct Superblock {
    pub version: u8,
    /// Size of file addresses, in bytes.
    pub osize: usize,
    /// Size of lengths, in bytes.
    pub lsize: usize,
    /// Absolute offset all stored addresses are relative to (the superblock's position).
    pub base: u64,
    /// Root group object header address (relative).
    pub root: u64,
}

fn short<'o>(object: &'o str, what: &'static str) -> impl Fn(Short) -> Error + 'o {
    move |s| Error::malformed(object, what, s.at)
}

impl Superblock {
    /// Finds and decodes the superblock: HDF5 looks at offset 0, then 512, 1024, 2048, ...
    pub fn find(data: &[u8]) -> Result<Superblock> {
        let mut at: u64 = 0;
        loop {
            let start = usize::try_from(at).map_err(|_| Error::NotHdf5 { searched: data.len() as u64 })?;
            let Some(window) = data.get(start..) else {
                break;
            };
            if window.len() < SIGNATURE.len() {
                break;
            }
            if window.starts_with(&SIGNATURE) {
                return Superblock::parse(window, at);
            }
            at = if at == 0 { 512 } else { at.saturating_mul(2) };
        }
        Err(Error::NotHdf5 { searched: data.len() as u64 })
    }

    fn parse(window: &[u8], at: u64) -> Result<Superblock> {
        let err = short("/", "superblock");
        let mut c = Cursor::new(window, at);
        c.skip(8).map_err(&err)?;
        let version = c.u8().map_err(&err)?;
        match version {
            0 | 1 => {
                c.skip(4).map_err(&err)?; // free-space, root stab, reserved, shared header versions
                let osize = usize::from(c.u8().map_err(&err)?);
                let lsize = usize::from(c.u8().map_err(&err)?);
                check_sizes(osize, lsize, at)?;
                c.skip(1 + 2 + 2 + 4).map_err(&err)?; // reserved, leaf K, internal K, flags
                if version == 1 {
                    c.skip(4).map_err(&err)?; // indexed storage K + reserved
                }
                c.skip(4 * osize).map_err(&err)?; // base, free space, EOF, driver info
                // Root group symbol table entry.
                c.skip(osize).map_err(&err)?; // link name offset
                let root = c.addr(osize).map_err(&err)?;
                Ok(Superblock { version, osize, lsize, base: at, root })
            }
            2 | 3 => {
                let osize = usize::from(c.u8().map_err(&err)?);
                let lsize = usize::from(c.u8().map_err(&err)?);
                check_sizes(osize, lsize, at)?;
                c.skip(1).map_err(&err)?; // flags
                c.skip(3 * osize).map_err(&err)?; // base, extension, EOF
                let root = c.addr(osize).map_err(&err)?;
                Ok(Superblock { version, osize, lsize, base: at, root })
            }
            _ => Err(Error::unsupported("/", format!("superblock version {version}"), crate::error::FIX_RESAVE)),
        }
    }
}

fn check_sizes(osize: usize, lsize: usize, at: u64) -> Result<()> {
    let ok = |n: usize| matches!(n, 2 | 4 | 8);
    if ok(osize) && ok(lsize) { Ok(()) } else { Err(Error::malformed("/", "superblock offset/length size", at)) }
}

/// One header message; `body` borrows the file bytes.
#[derive(Debug, Clone)]
pub(crate) struct Message<'a> {
    pub kind: u16,
    pub flags: u8,
    pub body: &'a [u8],
    /// Absolute file offset of `body`.
    pub offset: u64,
}

impl Message<'_> {
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor::new(self.body, self.offset)
    }

    /// True when the message is stored in a shared-message table or another header.
    pub fn is_shared(&self) -> bool {
        self.flags & 0x02 != 0
    }
}

/// The messages of one object header, continuation blocks included.
#[derive(Debug, Clone)]
pub(crate) struct Header<'a> {
    pub messages: Vec<Message<'a>>,
    /// Absolute offset of the header, for error messages.
    pub offset: u64,
}

/// Most header chunks (the prefix and continuation blocks) one header may have.
const MAX_CHUNKS: usize = 4096;
/// Most messages one header may have.
const MAX_MESSAGES: usize = 1 << 20;

struct Walker<'h, 'a> {
    header: &'h mut Header<'a>,
    osize: usize,
    lsize: usize,
    order: bool,
    pending: Vec<(u64, u64)>,
}

impl<'a> Header<'a> {
    pub fn first(&self, kind: u16) -> Option<&Message<'a>> {
        self.messages.iter().find(|m| m.kind == kind)
    }

    pub fn all(&self, kind: u16) -> impl Iterator<Item = &Message<'a>> {
        self.messages.iter().filter(move |m| m.kind == kind)
    }

    pub fn has(&self, kind: u16) -> bool {
        self.first(kind).is_some()
    }

    /// Reads the object header at relative address `addr`; `object` names it in errors.
    pub fn read(inner: &'a Inner, addr: u64, object: &str) -> Result<Header<'a>> {
        let start = inner.abs(addr, object, "object header")?;
        let file_len = inner.data().len() as u64;
        let truncated =
            |end: u64| Error::Truncated { object: object.to_string(), what: "object header of", start, end, file_len };
        let first = usize::try_from(start)
            .ok()
            .and_then(|s| inner.data().get(s..))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| truncated(start.saturating_add(1)))?;
        let mut header = Header { messages: Vec::new(), offset: start };
        let v2 = first.starts_with(b"OHDR");
        let mut c = Cursor::new(first, start);
        let chunk;
        let order;
        if v2 {
            let err = short(object, "object header (v2)");
            c.skip(4).map_err(&err)?;
            if c.u8().map_err(&err)? != 2 {
                return Err(Error::malformed(object, "object header version", start));
            }
            let flags = c.u8().map_err(&err)?;
            if flags & 0x20 != 0 {
                c.skip(16).map_err(&err)?;
            }
            if flags & 0x10 != 0 {
                c.skip(4).map_err(&err)?;
            }
            let size = c.uint(1 << (flags & 3)).map_err(&err)?;
            let end = c.offset().saturating_add(size);
            let size = usize::try_from(size).map_err(|_| truncated(end))?;
            chunk = c.sub(size).map_err(|_| truncated(end))?;
            order = flags & 0x04 != 0;
        } else {
            let err = short(object, "object header (v1)");
            if c.u8().map_err(&err)? != 1 {
                return Err(Error::malformed(object, "object header version", start));
            }
            c.skip(1 + 2 + 4).map_err(&err)?; // reserved, message count, reference count
            let size = c.u32().map_err(&err)?;
            c.skip(4).map_err(&err)?; // padding to 8 bytes
            let end = c.offset().saturating_add(u64::from(size));
            chunk = c.sub(size as usize).map_err(|_| truncated(end))?;
            order = false;
        }
        let mut w =
            Walker { header: &mut header, osize: inner.sb.osize, lsize: inner.sb.lsize, order, pending: Vec::new() };
        if v2 {
            w.v2_messages(chunk, object)?;
        } else {
            w.v1_messages(chunk, object)?;
        }
        let mut seen = HashSet::new();
        seen.insert(start);
        while let Some((addr, len)) = w.pending.pop() {
            if seen.len() >= MAX_CHUNKS {
                return Err(Error::malformed(object, "object header (too many continuation blocks)", start));
            }
            let abs = inner.abs(addr, object, "object header continuation")?;
            if !seen.insert(abs) {
                return Err(Error::malformed(object, "object header continuation (loop)", abs));
            }
            let bytes = inner.slice(addr, len, object, "object header continuation of")?;
            let mut cc = Cursor::new(bytes, abs);
            if v2 {
                let err = short(object, "object header continuation block");
                if cc.bytes(4).map_err(&err)? != b"OCHK" {
                    return Err(Error::malformed(object, "object header continuation signature", abs));
                }
                // The block ends with a 4-byte checksum.
                let body_len = cc
                    .remaining()
                    .checked_sub(4)
                    .ok_or_else(|| Error::malformed(object, "object header continuation block", abs))?;
                let body = cc.sub(body_len).map_err(&err)?;
                w.v2_messages(body, object)?;
            } else {
                w.v1_messages(cc, object)?;
            }
        }
        Ok(header)
    }
}

impl<'a> Walker<'_, 'a> {
    fn v1_messages(&mut self, mut c: Cursor<'a>, object: &str) -> Result<()> {
        let err = short(object, "object header message (v1)");
        while c.remaining() >= 8 {
            let kind = c.u16().map_err(&err)?;
            let size = c.u16().map_err(&err)?;
            let flags = c.u8().map_err(&err)?;
            c.skip(3).map_err(&err)?;
            let offset = c.offset();
            let body = c.bytes(usize::from(size)).map_err(&err)?;
            // Version 1 message bodies are padded to a multiple of 8; a short
            // final pad just ends the chunk.
            if c.align(8).is_err() {
                c.seek(c.pos() + c.remaining()).ok();
            }
            self.push(kind, flags, body, offset, object)?;
        }
        Ok(())
    }

    fn v2_messages(&mut self, mut c: Cursor<'a>, object: &str) -> Result<()> {
        let err = short(object, "object header message (v2)");
        let prefix = if self.order { 6 } else { 4 };
        while c.remaining() >= prefix {
            let kind = u16::from(c.u8().map_err(&err)?);
            let size = c.u16().map_err(&err)?;
            let flags = c.u8().map_err(&err)?;
            if self.order {
                c.skip(2).map_err(&err)?;
            }
            let offset = c.offset();
            let body = c.bytes(usize::from(size)).map_err(&err)?;
            self.push(kind, flags, body, offset, object)?;
        }
        Ok(())
    }

    fn push(&mut self, kind: u16, flags: u8, body: &'a [u8], offset: u64, object: &str) -> Result<()> {
        if self.header.messages.len() >= MAX_MESSAGES {
            return Err(Error::malformed(object, "object header (too many messages)", offset));
        }
        match kind {
            0 => {}
            msg::CONTINUATION => {
                let err = short(object, "continuation message");
                let mut c = Cursor::new(body, offset);
                let addr = c.addr(self.osize).map_err(&err)?;
                let len = c.uint(self.lsize).map_err(&err)?;
                if addr == UNDEF {
                    return Err(Error::malformed(object, "continuation message address", offset));
                }
                self.pending.push((addr, len));
            }
            _ => self.header.messages.push(Message { kind, flags, body, offset }),
        }
        Ok(())
    }
}
