//! Python pickle data, read by its opcodes only: which `module.name` globals it would import
//! (`GLOBAL`, `INST`, `STACK_GLOBAL`) and whether it calls them (`REDUCE`, `OBJ`, `NEWOBJ`).
//! Nothing is unpickled, imported or called; this is the static check modelscan and fickling do.

/// What a pickle stream names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PickleScan {
    /// `module.name` of every global it imports, in order, without repeats.
    pub imports: Vec<String>,
    /// It calls something (`REDUCE`, `OBJ`, `INST`, `NEWOBJ`, `NEWOBJ_EX`).
    pub calls: bool,
    /// The highest protocol seen (`PROTO`).
    pub protocol: Option<u8>,
    /// The opcode walk stopped early (unknown opcode or cut short) at this offset.
    pub stopped_at: Option<usize>,
}

/// Globals that give a pickle code execution, file or network access (modelscan's unsafe list).
const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "subprocess",
    "sys",
    "socket",
    "shutil",
    "runpy",
    "importlib",
    "pty",
    "webbrowser",
    "commands",
    "pickle",
    "_pickle",
    "marshal",
    "ctypes",
    "code",
    "codeop",
    "bdb",
    "pdb",
    "asyncio",
    "requests",
    "urllib",
    "http",
    "ftplib",
    "telnetlib",
    "smtplib",
    "multiprocessing",
    "shelve",
    "tempfile",
];
const DANGEROUS_BUILTINS: &[&str] = &[
    "eval",
    "exec",
    "compile",
    "open",
    "getattr",
    "setattr",
    "__import__",
    "globals",
    "locals",
    "breakpoint",
    "input",
];

/// Whether `module.name` lets a pickle run code or touch files.
pub fn is_dangerous(global: &str) -> bool {
    let (module, name) = global.rsplit_once('.').unwrap_or(("", global));
    let top = module.split('.').next().unwrap_or("");
    if matches!(top, "builtins" | "__builtin__") {
        return DANGEROUS_BUILTINS.contains(&name);
    }
    DANGEROUS_MODULES.contains(&top)
}

impl PickleScan {
    /// The imports that let it run code or touch files.
    pub fn dangerous(&self) -> Vec<&str> {
        self.imports.iter().map(String::as_str).filter(|g| is_dangerous(g)).collect()
    }
}

/// Walks the opcodes of `data` (one or more pickles back to back). Bounded by the input: each
/// argument length is checked against the bytes left.
pub fn scan(data: &[u8]) -> PickleScan {
    let mut out = PickleScan::default();
    // The last two string values pushed, for STACK_GLOBAL.
    let mut strings: Vec<String> = Vec::new();
    let mut i = 0usize;
    let push_import = |out: &mut PickleScan, g: String| {
        if !out.imports.contains(&g) && out.imports.len() < 1000 {
            out.imports.push(g);
        }
    };
    while i < data.len() {
        let op = data[i];
        let at = i;
        i += 1;
        let rest = &data[i..];
        let fixed = |n: usize| if rest.len() >= n { Some(n) } else { None };
        let len_prefixed = |w: usize| -> Option<(usize, usize)> {
            let head = rest.get(..w)?;
            let mut n: u64 = 0;
            for (k, b) in head.iter().enumerate() {
                n |= u64::from(*b) << (8 * k);
            }
            let n = usize::try_from(n).ok()?;
            let end = w.checked_add(n)?;
            if end <= rest.len() { Some((w, end)) } else { None }
        };
        let line = |from: usize| -> Option<(String, usize)> {
            let r = rest.get(from..)?;
            let nl = r.iter().position(|&b| b == b'\n')?;
            Some((String::from_utf8_lossy(&r[..nl]).into_owned(), from + nl + 1))
        };
        let step: Option<usize> = match op {
            b'c' | b'i' => {
                if op == b'i' {
                    out.calls = true;
                }
                line(0).and_then(|(m, a)| line(a).map(|(n, b)| (m, n, b))).map(|(m, n, b)| {
                    push_import(&mut out, format!("{m}.{n}"));
                    b
                })
            }
            b'I' | b'L' | b'F' | b'P' | b'g' | b'p' => line(0).map(|(_, n)| n),
            b'S' | b'V' => line(0).map(|(s, n)| {
                strings.push(s.trim_matches(|c| c == '\'' || c == '"').to_owned());
                n
            }),
            b'K' | b'h' | b'q' | 0x82 => fixed(1),
            b'M' | 0x83 => fixed(2),
            b'J' | b'j' | b'r' | 0x84 => fixed(4),
            b'G' | 0x95 => fixed(8),
            0x80 => fixed(1).inspect(|_| out.protocol = out.protocol.max(rest.first().copied())),
            b'U' | 0x8c | b'C' | 0x8a => len_prefixed(1).map(|(s, e)| {
                if op != b'C' && op != 0x8a {
                    strings.push(String::from_utf8_lossy(&rest[s..e]).into_owned());
                }
                e
            }),
            b'T' | b'X' | b'B' | 0x8b => len_prefixed(4).map(|(s, e)| {
                if op == b'T' || op == b'X' {
                    strings.push(String::from_utf8_lossy(&rest[s..e]).into_owned());
                }
                e
            }),
            0x8d | 0x8e | 0x96 => len_prefixed(8).map(|(s, e)| {
                if op == 0x8d {
                    strings.push(String::from_utf8_lossy(&rest[s..e]).into_owned());
                }
                e
            }),
            0x93 => {
                if strings.len() >= 2 {
                    let name = strings.pop().unwrap_or_default();
                    let module = strings.pop().unwrap_or_default();
                    push_import(&mut out, format!("{module}.{name}"));
                } else {
                    push_import(&mut out, "<unknown>.<unknown>".into());
                }
                Some(0)
            }
            b'R' | b'o' | 0x81 | 0x92 => {
                out.calls = true;
                Some(0)
            }
            b'(' | b'.' | b'0' | b'1' | b'2' | b'N' | b')' | b']' | b'}' | b'a' | b'e' | b'l' | b't' | b'd' | b's'
            | b'u' | b'b' | b'Q' | 0x85 | 0x86 | 0x87 | 0x88 | 0x89 | 0x8f | 0x90 | 0x91 | 0x94 | 0x97 | 0x98 => {
                Some(0)
            }
            _ => None,
        };
        if strings.len() > 8 {
            strings.drain(..strings.len() - 2);
        }
        match step {
            Some(n) => i += n,
            None => {
                out.stopped_at = Some(at);
                break;
            }
        }
    }
    out
}

/// Whether `data` starts like a pickle (`PROTO` 2-5, or a protocol-0/1 opening).
pub fn looks_like_pickle(data: &[u8]) -> bool {
    matches!(data, [0x80, 2..=5, ..])
}

/// For a `.npy` member: the pickle stream after the header when its dtype is an object array
/// (`'descr': '|O'`), which `numpy.load(allow_pickle=True)` would unpickle.
pub fn npy_object_payload(data: &[u8]) -> Option<&[u8]> {
    if !data.starts_with(b"\x93NUMPY") || data.len() < 10 {
        return None;
    }
    let major = *data.get(6)?;
    let (hlen, start) = if major == 1 {
        (usize::from(u16::from_le_bytes([*data.get(8)?, *data.get(9)?])), 10usize)
    } else {
        let b = data.get(8..12)?;
        (usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()?, 12usize)
    };
    let end = start.checked_add(hlen)?;
    let header = data.get(start..end)?;
    let header = String::from_utf8_lossy(header);
    if header.contains("'|O'") || header.contains("\"|O\"") { data.get(end..) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short_unicode(s: &str) -> Vec<u8> {
        let mut v = vec![0x8c, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    #[test]
    fn stack_global_and_global_are_listed() {
        // protocol 4: STACK_GLOBAL('posix', 'system'), then GLOBAL builtins eval, REDUCE, STOP.
        let mut p = vec![0x80, 4];
        p.extend(short_unicode("posix"));
        p.extend(short_unicode("system"));
        p.push(0x93);
        p.extend_from_slice(b"cbuiltins\neval\n");
        p.extend_from_slice(b"R.");
        let s = scan(&p);
        assert_eq!(s.imports, vec!["posix.system", "builtins.eval"]);
        assert!(s.calls);
        assert_eq!(s.protocol, Some(4));
        assert_eq!(s.dangerous(), vec!["posix.system", "builtins.eval"]);
        assert_eq!(s.stopped_at, None);
    }

    #[test]
    fn lengths_past_the_end_stop_the_walk() {
        let s = scan(&[0x80, 4, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(s.stopped_at, Some(2));
        assert!(!is_dangerous("numpy.core.multiarray._reconstruct"));
    }
}
