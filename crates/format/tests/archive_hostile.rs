//! Every file in `fixtures/hostile/` produces exactly the message its row in
//! `fixtures/hostile/README.md` states. `STRATA_BLESS=1` rewrites the message column (review the diff).

use std::fs;
use std::path::{Path, PathBuf};

use strata_format::archive::KerasArchive;
use strata_format::detect::{Detected, detect_path, extension_mismatch};
use strata_format::limits::Limits;

const START: &str = "<!-- table:start -->";
const END: &str = "<!-- table:end -->";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What loading `path` reports, the way a loader is expected to chain the format layer: detection
/// first (kinds that are not zip are refused or noted from their bytes), then the archive, then
/// every member.
fn outcome(path: &Path, shown: &Path) -> String {
    let d = match detect_path(path) {
        Ok(d) => d,
        Err(e) => return e.to_string(),
    };
    let zipish = matches!(d, Detected::Zip | Detected::EmptyZip | Detected::TruncatedZip { .. });
    if !zipish {
        if let Some(e) = d.refusal(shown) {
            return e.to_string();
        }
        if let Some(note) = extension_mismatch(shown, &d) {
            return format!("note: {note}");
        }
    }
    let archive = match KerasArchive::open(path, &Limits::default()) {
        Ok(a) => a,
        Err(e) => return e.to_string(),
    };
    if let Err(e) = archive.config_bytes() {
        return e.to_string();
    }
    if let Err(e) = archive.metadata() {
        return e.to_string();
    }
    if let Err(e) = archive.weights_bytes() {
        return e.to_string();
    }
    for m in archive.members() {
        if let Err(e) = archive.read_member(&m.name) {
            return e.to_string();
        }
    }
    "ok".to_string()
}

struct Row {
    file: String,
    why: String,
    message: String,
}

fn parse_rows(readme: &str) -> Vec<Row> {
    let Some(start) = readme.find(START) else {
        return Vec::new();
    };
    let end = readme.find(END).unwrap_or(readme.len());
    readme[start + START.len()..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let cells: Vec<String> = split_cells(l);
            match cells.as_slice() {
                [file, why, message] => {
                    Some(Row { file: file.trim_matches('`').to_string(), why: why.clone(), message: message.clone() })
                }
                _ => None,
            }
        })
        .collect()
}

fn split_cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    cells.push(cur.trim().to_string());
    cells
}

#[test]
fn hostile_fixtures_give_their_documented_messages() {
    let dir = repo().join("fixtures/hostile");
    let readme_path = dir.join("README.md");
    let readme = fs::read_to_string(&readme_path).unwrap_or_default();
    let rows = parse_rows(&readme);
    let mut files: Vec<String> = fs::read_dir(&dir)
        .expect("fixtures/hostile exists (run tools/hostile/make_hostile.py)")
        .filter_map(|e| e.ok())
        // fixtures/hostile/fuzz/ holds fuzzer finds, each tested by its own regression test
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "README.md")
        .collect();
    files.sort();
    assert!(files.len() >= 20, "hostile fixtures missing: {files:?}");

    let bless = std::env::var_os("STRATA_BLESS").is_some();
    let mut table = String::from("| file | why it is hostile | expected message |\n|---|---|---|\n");
    let mut failures = Vec::new();
    for file in &files {
        let shown = Path::new("fixtures/hostile").join(file);
        let got = outcome(&dir.join(file), &shown);
        assert_ne!(got, "ok", "{file} was accepted");
        let row = rows.iter().find(|r| &r.file == file);
        let why = row.map(|r| r.why.clone()).unwrap_or_else(|| "TODO".into());
        table.push_str(&format!("| `{file}` | {why} | {} |\n", got.replace('|', "\\|")));
        match row {
            None => failures.push(format!("{file}: no row in README.md; message: {got}")),
            Some(r) if r.message != got => {
                failures.push(format!("{file}:\n  README:  {}\n  actual:  {got}", r.message))
            }
            Some(_) => {}
        }
    }
    for r in &rows {
        if !files.contains(&r.file) {
            failures.push(format!("{}: listed in README.md but the file is missing", r.file));
        }
    }
    if bless {
        let (head, tail) = match (readme.find(START), readme.find(END)) {
            (Some(s), Some(e)) => (readme[..s].to_string(), readme[e + END.len()..].to_string()),
            _ => (readme.clone(), "\n".to_string()),
        };
        let new = format!("{head}{START}\n{table}{END}{tail}");
        fs::write(&readme_path, new).expect("write README.md");
        return;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
