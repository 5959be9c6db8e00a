//! Small file-system helpers: atomic writes, tolerant reads, no-replace renames.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether state writes are flushed to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync every written file and the directory holding it (the default; D-17).
    #[default]
    Fsync,
    /// Skip fsync: for state roots on tmpfs (nothing survives a reboot anyway) and for tests
    /// and benchmarks. Writes stay atomic (temp file + rename) either way.
    NoSync,
}

/// A unique suffix for temporary names created by this process.
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{}.{nanos}.{n}", std::process::id())
}

/// fsyncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path, durability: Durability) -> io::Result<()> {
    if durability == Durability::Fsync {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Writes `contents` to a new file `path` that must not exist yet (mode 0644).
pub(crate) fn write_new(path: &Path, contents: &[u8], durability: Durability) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)?;
    file.write_all(contents)?;
    if durability == Durability::Fsync {
        file.sync_all()?;
    }
    Ok(())
}

/// Replaces `path` atomically: temp file in the same directory, write, fsync, rename, fsync
/// the directory. Readers see either the old or the new content, never a partial file.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], durability: Durability) -> io::Result<()> {
    let dir = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp: PathBuf = dir.join(format!(".{name}.tmp.{}", unique_suffix()));
    let result = write_new(&temp, contents, durability).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        // Best effort: the temp file is garbage whatever went wrong.
        let _ = fs::remove_file(&temp);
    }
    result?;
    sync_dir(dir, durability)
}

/// Reads a small text file without its trailing newline; `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim_end_matches('\n').to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `path` exists (without following a final symlink); errors other than "not found"
/// are reported.
pub(crate) fn exists_no_follow(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a file or symlink; a missing one is not an error. Returns whether it existed.
pub(crate) fn remove_file_if_present(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a directory tree; a missing one is not an error. Returns whether it existed.
pub(crate) fn remove_dir_all_if_present(path: &Path) -> io::Result<bool> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Renames `from` to `to`, failing with `AlreadyExists` instead of replacing an existing `to`
/// (plain rename(2) silently replaces an empty directory).
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::errno::Errno;
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(Errno::EEXIST | Errno::ENOTEMPTY) => {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists))
            }
            // File systems without RENAME_NOREPLACE: fall through to check-then-rename.
            Err(Errno::EINVAL | Errno::ENOSYS) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    if exists_no_follow(to)? {
        return Err(io::Error::from(io::ErrorKind::AlreadyExists));
    }
    fs::rename(from, to)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exit");
        write_atomic(&path, b"one\n", Durability::Fsync).unwrap();
        write_atomic(&path, b"two\n", Durability::NoSync).unwrap();
        assert_eq!(read_optional(&path).unwrap().as_deref(), Some("two"));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn read_optional_returns_none_for_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_optional(&dir.path().join("nope")).unwrap(), None);
    }

    #[test]
    fn rename_no_replace_refuses_to_replace_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        fs::create_dir(&from).unwrap();
        fs::create_dir(&to).unwrap();
        let error = rename_no_replace(&from, &to).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        fs::remove_dir(&to).unwrap();
        rename_no_replace(&from, &to).unwrap();
        assert!(to.is_dir() && !from.exists());
    }
}
