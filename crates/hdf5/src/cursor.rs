//! A bounds-checked little-endian reader over a byte slice.
//!
//! Every HDF5 structure this crate decodes itself goes through [`Cursor`]:
//! each read checks the remaining length and returns `Err(Short)` instead of
//! panicking, and a sub-cursor only ever narrows the slice it was made from.
//! HDF5 stores every structure field little-endian.

/// A read ran past the end of the slice; `at` is the absolute file offset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Short {
    pub at: u64,
}

/// The value HDF5 uses for an undefined address (all bits set), after
/// widening to 64 bits.
pub(crate) const UNDEF: u64 = u64::MAX;

#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// Absolute file offset of `data[0]`, for error messages.
    origin: u64,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8], origin: u64) -> Self {
        Cursor { data, pos: 0, origin }
    }

    /// Absolute file offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.origin.saturating_add(self.pos as u64)
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn short(&self) -> Short {
        Short { at: self.offset() }
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let end = self.pos.checked_add(n).ok_or(self.short())?;
        let s = self.data.get(self.pos..end).ok_or(self.short())?;
        self.pos = end;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), Short> {
        self.bytes(n).map(|_| ())
    }

    /// Moves to `pos` (relative to the start of the slice), which must lie within it.
    pub fn seek(&mut self, pos: usize) -> Result<(), Short> {
        if pos > self.data.len() {
            return Err(Short { at: self.origin.saturating_add(pos as u64) });
        }
        self.pos = pos;
        Ok(())
    }

    /// Skips to the next multiple of `align` relative to the slice start.
    pub fn align(&mut self, align: usize) -> Result<(), Short> {
        let rem = self.pos % align;
        if rem != 0 {
            self.skip(align - rem)?;
        }
        Ok(())
    }

    pub fn u8(&mut self) -> Result<u8, Short> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, Short> {
        self.uint(2).map(|v| v as u16)
    }

    pub fn u32(&mut self) -> Result<u32, Short> {
        self.uint(4).map(|v| v as u32)
    }

    /// An unsigned little-endian integer of `n` bytes (1 to 8).
    pub fn uint(&mut self, n: usize) -> Result<u64, Short> {
        if n == 0 || n > 8 {
            return Err(self.short());
        }
        let b = self.bytes(n)?;
        Ok(le_uint(b))
    }

    /// An address of `n` bytes; all bits set means undefined ([`UNDEF`]).
    pub fn addr(&mut self, n: usize) -> Result<u64, Short> {
        let v = self.uint(n)?;
        if n < 8 && v == (1u64 << (8 * n)) - 1 {
            return Ok(UNDEF);
        }
        Ok(v)
    }

    /// The bytes up to (not including) the next NUL; the NUL is consumed.
    pub fn cstr(&mut self) -> Result<&'a [u8], Short> {
        let rest = self.data.get(self.pos..).ok_or(self.short())?;
        let n = rest.iter().position(|&b| b == 0).ok_or(self.short())?;
        let s = self.bytes(n)?;
        self.pos += 1;
        Ok(s)
    }

    /// A sub-cursor over the next `n` bytes.
    pub fn sub(&mut self, n: usize) -> Result<Cursor<'a>, Short> {
        let origin = self.offset();
        let b = self.bytes(n)?;
        Ok(Cursor::new(b, origin))
    }

    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }
}

/// Little-endian unsigned value of up to 8 bytes (longer input keeps the low 8).
pub(crate) fn le_uint(b: &[u8]) -> u64 {
    b.iter().take(8).enumerate().fold(0u64, |acc, (i, &x)| acc | (u64::from(x) << (8 * i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let data = [1u8, 2, 3];
        let mut c = Cursor::new(&data, 100);
        assert_eq!(c.u16().unwrap(), 0x0201);
        let e = c.u16().unwrap_err();
        assert_eq!(e.at, 102);
        assert_eq!(c.u8().unwrap(), 3);
        assert!(c.u8().is_err());
        assert!(c.bytes(usize::MAX).is_err());
    }

    #[test]
    fn undefined_address_of_any_width() {
        let data = [0xffu8; 8];
        assert_eq!(Cursor::new(&data, 0).addr(4).unwrap(), UNDEF);
        assert_eq!(Cursor::new(&data, 0).addr(8).unwrap(), UNDEF);
        assert_eq!(Cursor::new(&[1, 0, 0, 0], 0).addr(4).unwrap(), 1);
    }

    #[test]
    fn cstr_needs_terminator() {
        let mut c = Cursor::new(b"ab\0cd", 0);
        assert_eq!(c.cstr().unwrap(), b"ab");
        assert!(c.cstr().is_err());
    }
}
