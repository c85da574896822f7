//! Atomic file replacement: a save either fully happens or leaves the old file untouched.
//!
//! Keras writes `model.save("m.keras")` straight into the target (`keras/src/saving/saving_lib.py`,
//! `save_model` opens the path with `open(filepath, "wb")` / `zipfile.ZipFile`), so a crash, a full
//! disk or Ctrl-C mid-save leaves a truncated archive where the good model used to be; the
//! "File is not a zip file" / truncated-file reports in keras-facts §6 come from exactly that.
//! We write into a sibling temporary file (`.<name>.strata-tmp-<pid>-<n>` in the same directory,
//! so the rename cannot cross file systems), fsync it, rename it over the target and fsync the
//! directory (house style §4.9).
//!
//! Contract:
//! - on any error (including a panic in the writer closure) the temporary file is removed and the
//!   target is untouched;
//! - if the process is killed mid-write the target is untouched; a stale `.strata-tmp-` file may
//!   remain next to it and can be deleted;
//! - an existing target's permissions are copied to the new file (Unix mode bits);
//! - a symbolic link at `path` is replaced by the new file, not followed.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Marker in the names of temporary files made by [`write_atomic`].
pub const TEMP_MARKER: &str = ".strata-tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Why an atomic write failed; in every case the target file was left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AtomicError {
    /// The target path has no file name.
    #[error("cannot save to `{}`: the path does not name a file; give a file name such as `model.keras`", path.display())]
    NoFileName {
        /// The target.
        path: PathBuf,
    },
    /// The temporary file could not be created.
    #[error("cannot save `{}`: creating the temporary file `{}` failed: {source}; check that the directory exists and is writable", path.display(), temp.display())]
    CreateTemp {
        /// The target.
        path: PathBuf,
        /// The temporary file.
        temp: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing the temporary file failed.
    #[error("cannot save `{}`: writing failed: {source}; the existing file (if any) was left untouched", path.display())]
    Write {
        /// The target.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Flushing the temporary file to disk failed.
    #[error("cannot save `{}`: flushing to disk failed: {source}; the existing file (if any) was left untouched; check free disk space", path.display())]
    Sync {
        /// The target.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Renaming the temporary file over the target failed.
    #[error("cannot save `{}`: replacing it with `{}` failed: {source}; the existing file (if any) was left untouched", path.display(), temp.display())]
    Rename {
        /// The target.
        path: PathBuf,
        /// The temporary file.
        temp: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The new file is in place but the directory entry could not be flushed.
    #[error("saved `{}`, but flushing its directory to disk failed: {source}; the new file may be lost if the machine crashes now", path.display())]
    SyncDir {
        /// The target.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Removes the temporary file on drop unless disarmed (covers errors and panics in the writer).
struct TempGuard {
    path: Option<PathBuf>,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Writes `path` atomically: `write` fills a fresh sibling temporary file, which is fsynced and then
/// renamed over `path`, and the directory is fsynced. See the module docs for the contract.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> Result<(), AtomicError> {
    let name = path.file_name().ok_or_else(|| AtomicError::NoFileName { path: path.to_path_buf() })?.to_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (mut file, temp) = create_temp(path, &dir, &name)?;
    let mut guard = TempGuard { path: Some(temp.clone()) };

    write(&mut file).map_err(|source| AtomicError::Write { path: path.to_path_buf(), source })?;
    copy_permissions(path, &file);
    file.sync_all().map_err(|source| AtomicError::Sync { path: path.to_path_buf(), source })?;
    drop(file);
    fs::rename(&temp, path).map_err(|source| AtomicError::Rename {
        path: path.to_path_buf(),
        temp: temp.clone(),
        source,
    })?;
    guard.path = None;
    sync_dir(&dir).map_err(|source| AtomicError::SyncDir { path: path.to_path_buf(), source })
}

fn create_temp(path: &Path, dir: &Path, name: &std::ffi::OsStr) -> Result<(File, PathBuf), AtomicError> {
    let pid = std::process::id();
    let mut attempt = 0;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!("{TEMP_MARKER}{pid}-{n}"));
        let temp = dir.join(temp_name);
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(f) => return Ok((f, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(source) => {
                return Err(AtomicError::CreateTemp { path: path.to_path_buf(), temp, source });
            }
        }
    }
}

/// Best effort: give the new file the old file's permissions.
fn copy_permissions(path: &Path, file: &File) {
    if let Ok(meta) = fs::metadata(path) {
        let _ = file.set_permissions(meta.permissions());
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for fsync on this platform; the rename is what we have.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn replaces_content_and_leaves_no_temp() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("m.keras");
        fs::write(&target, b"old")?;
        write_atomic(&target, |f| f.write_all(b"new content"))?;
        assert_eq!(fs::read(&target)?, b"new content");
        assert_eq!(leftovers(dir.path()), vec!["m.keras".to_string()]);
        Ok(())
    }

    #[test]
    fn failure_mid_write_keeps_old_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("m.keras");
        fs::write(&target, b"old model")?;
        let err = write_atomic(&target, |f| {
            f.write_all(b"half of the new")?;
            Err(io::Error::other("disk on fire"))
        });
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            msg,
            format!(
                "cannot save `{}`: writing failed: disk on fire; the existing file (if any) was left untouched",
                target.display()
            )
        );
        assert_eq!(fs::read(&target)?, b"old model");
        assert_eq!(leftovers(dir.path()), vec!["m.keras".to_string()]);
        Ok(())
    }

    #[test]
    fn panic_in_writer_removes_temp() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("m.keras");
        fs::write(&target, b"old")?;
        let t = target.clone();
        let r = std::panic::catch_unwind(move || {
            let _ = write_atomic(&t, |f| {
                f.write_all(b"partial")?;
                panic!("writer bug");
            });
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&target)?, b"old");
        assert_eq!(leftovers(dir.path()), vec!["m.keras".to_string()]);
        Ok(())
    }

    #[test]
    fn new_file_in_fresh_directory_and_error_messages() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("fresh.keras");
        write_atomic(&target, |f| f.write_all(b"x"))?;
        assert_eq!(fs::read(&target)?, b"x");

        let missing = dir.path().join("no/such/dir/m.keras");
        let msg = write_atomic(&missing, |_| Ok(())).err().map(|e| e.to_string()).unwrap_or_default();
        let prefix = format!(
            "cannot save `{}`: creating the temporary file `{}/.m.keras.strata-tmp-",
            missing.display(),
            dir.path().join("no/such/dir").display()
        );
        assert!(msg.starts_with(&prefix), "{msg}");
        assert!(msg.ends_with("check that the directory exists and is writable"), "{msg}");

        let msg = write_atomic(Path::new("/"), |_| Ok(())).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg, "cannot save to `/`: the path does not name a file; give a file name such as `model.keras`");
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn keeps_permissions_of_replaced_file() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("m.keras");
        fs::write(&target, b"old")?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640))?;
        write_atomic(&target, |f| f.write_all(b"new"))?;
        assert_eq!(fs::metadata(&target)?.permissions().mode() & 0o777, 0o640);
        Ok(())
    }

    #[test]
    fn rename_failure_keeps_old_and_cleans_temp() -> Result<(), Box<dyn std::error::Error>> {
        // a directory at the target path: rename of a file over a non-empty directory fails
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("m.keras");
        fs::create_dir(&target)?;
        fs::write(target.join("keep"), b"k")?;
        let err = write_atomic(&target, |f| f.write_all(b"new"));
        assert!(matches!(err, Err(AtomicError::Rename { .. })), "{err:?}");
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.starts_with(&format!("cannot save `{}`: replacing it with `", target.display())), "{msg}");
        assert_eq!(fs::read(target.join("keep"))?, b"k");
        assert_eq!(leftovers(dir.path()), vec!["m.keras".to_string()]);
        Ok(())
    }

    const CHILD_ENV: &str = "STRATA_ATOMIC_CHILD_TARGET";

    /// Not a test on its own: the body of the child process of `killed_writer_keeps_old_file`.
    /// It starts an atomic write, writes part of the new file, signals readiness and then waits
    /// forever to be killed.
    #[test]
    fn child_slow_writer() {
        let Some(target) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let target = PathBuf::from(target);
        let ready = target.with_extension("ready");
        let _ = write_atomic(&target, |f| {
            f.write_all(&[7u8; 64 * 1024])?;
            f.sync_all()?;
            fs::write(&ready, b"")?;
            loop {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }

    #[test]
    fn killed_writer_keeps_old_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("m.keras");
        fs::write(&target, b"old model bytes")?;
        let ready = target.with_extension("ready");
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--exact", "atomic::tests::child_slow_writer", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &target)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let start = Instant::now();
        while !ready.exists() {
            if let Some(status) = child.try_wait()? {
                return Err(format!("child exited early: {status}").into());
            }
            if start.elapsed() > Duration::from_secs(120) {
                child.kill()?;
                return Err("child never reached the middle of its write".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill()?;
        child.wait()?;
        assert_eq!(fs::read(&target)?, b"old model bytes");
        let names = leftovers(dir.path());
        // the target, the readiness marker, and the killed writer's stale temporary file
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(&"m.keras".to_string()));
        assert!(names.contains(&"m.ready".to_string()));
        assert!(names.iter().any(|n| n.starts_with(".m.keras.strata-tmp-")), "{names:?}");
        Ok(())
    }
}
