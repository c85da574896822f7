//! A tiny zip builder for tests: every offset and length is computed, none typed by hand.
#![allow(dead_code)]

use std::io::Write;

pub const UNIX: u16 = 3 << 8;
pub const MODE_FILE: u32 = 0o100600 << 16;
pub const MODE_LINK: u32 = 0o120777 << 16;

pub const METADATA: &[u8] = br#"{"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"}"#;
pub const CONFIG: &[u8] = br#"{"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": []}}"#;

/// Stand-in weights: an HDF5 signature and some bytes.
pub fn weights() -> Vec<u8> {
    let mut w = b"\x89HDF\r\n\x1a\n".to_vec();
    w.extend((0..=255u8).cycle().take(1000));
    w
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub name: Vec<u8>,
    pub local_name: Option<Vec<u8>>,
    /// bytes as stored
    pub data: Vec<u8>,
    pub method: u16,
    pub size: u64,
    pub crc: u32,
    pub flags: u16,
    pub made_by: u16,
    pub ext_attr: u32,
    /// central-directory header offset override
    pub offset: Option<u64>,
}

impl Entry {
    pub fn stored(name: &str, data: &[u8]) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            local_name: None,
            data: data.to_vec(),
            method: 0,
            size: data.len() as u64,
            crc: crc32fast::hash(data),
            flags: 0,
            made_by: UNIX | 20,
            ext_attr: MODE_FILE,
            offset: None,
        }
    }

    pub fn deflated(name: &str, data: &[u8]) -> Entry {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).expect("in-memory write");
        let packed = enc.finish().expect("in-memory write");
        Entry { method: 8, data: packed, ..Entry::stored(name, data) }
    }
}

pub fn standard() -> Vec<Entry> {
    vec![
        Entry::stored("metadata.json", METADATA),
        Entry::stored("config.json", CONFIG),
        Entry::stored("model.weights.h5", &weights()),
    ]
}

#[derive(Default, Clone, Copy)]
pub struct Options {
    /// write zip64 sizes/offsets and the zip64 end record
    pub zip64: bool,
    /// entries-on-disk field differs from the total
    pub count_mismatch: bool,
    /// disk number in the end record
    pub disk: u16,
}

fn local_record(e: &Entry) -> Vec<u8> {
    let name = e.local_name.as_ref().unwrap_or(&e.name);
    let mut out = Vec::new();
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes());
    out.extend_from_slice(&e.flags.to_le_bytes());
    out.extend_from_slice(&e.method.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0x21, 0]);
    out.extend_from_slice(&e.crc.to_le_bytes());
    out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(e.size as u32).to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&e.data);
    out
}

pub fn build(entries: &[Entry]) -> Vec<u8> {
    build_with(entries, Options::default())
}

pub fn build_with(entries: &[Entry], o: Options) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(out.len() as u64);
        out.extend(local_record(e));
    }
    let cd_start = out.len() as u64;
    for (e, off) in entries.iter().zip(offsets) {
        let off = e.offset.unwrap_or(off);
        let mut extra = Vec::new();
        let (csize, size, off32) = if o.zip64 {
            extra.extend_from_slice(&1u16.to_le_bytes());
            extra.extend_from_slice(&24u16.to_le_bytes());
            extra.extend_from_slice(&e.size.to_le_bytes());
            extra.extend_from_slice(&(e.data.len() as u64).to_le_bytes());
            extra.extend_from_slice(&off.to_le_bytes());
            (u32::MAX, u32::MAX, u32::MAX)
        } else {
            (e.data.len() as u32, e.size as u32, off as u32)
        };
        out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        out.extend_from_slice(&e.made_by.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]);
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&csize.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        out.extend_from_slice(&e.ext_attr.to_le_bytes());
        out.extend_from_slice(&off32.to_le_bytes());
        out.extend_from_slice(&e.name);
        out.extend_from_slice(&extra);
    }
    let cd_size = out.len() as u64 - cd_start;
    let n = entries.len() as u64;
    if o.zip64 {
        let rec_at = out.len() as u64;
        out.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        out.extend_from_slice(&44u64.to_le_bytes());
        out.extend_from_slice(&[45, 3, 45, 0]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&cd_size.to_le_bytes());
        out.extend_from_slice(&cd_start.to_le_bytes());
        out.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&rec_at.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
    }
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&o.disk.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    let (on_disk, total, size32, off32) = if o.zip64 {
        (u16::MAX, u16::MAX, u32::MAX, u32::MAX)
    } else {
        let total = n as u16;
        let on_disk = if o.count_mismatch { total + 1 } else { total };
        (on_disk, total, cd_size as u32, cd_start as u32)
    };
    out.extend_from_slice(&on_disk.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&size32.to_le_bytes());
    out.extend_from_slice(&off32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}
