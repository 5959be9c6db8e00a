//! Safe archive extraction (blocking; run it on a blocking thread).
//!
//! Every entry is checked before it is written, so that an archive cannot write outside the
//! target directory ("zip slip"/"tar slip"):
//! - entry paths must be relative without `..`;
//! - no entry is written through a symbolic link (an existing symlink at an entry's own path is
//!   replaced, one among its parent directories is refused);
//! - symlink targets must be relative, with `..` only at the start and not climbing above the
//!   target directory, so that every link resolves inside it;
//! - hard links must name a path inside the target;
//! - device files and FIFOs are refused.
//!
//! [`extract_staged`] unpacks into a hidden staging directory next to the files it is meant
//! for, counts the unpacked stream against a limit, and only when everything went well gives
//! the tree to its owner and moves it into place.

use std::cell::Cell;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use super::owner::FileOwner;
use super::plan::ArchiveKind;

/// Longest symlink target read from a zip entry.
const MAX_LINK_TARGET: u64 = 4096;

/// Why an extraction failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ExtractError {
    /// An entry would escape the target or is of a refused kind.
    #[error("unsafe entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: String },
    /// The archive is malformed, or writing an entry failed.
    #[error("{0}")]
    Archive(String),
    /// The per-URI deadline passed.
    #[error("the deadline passed during extraction")]
    TimedOut,
    /// The unpacked stream is larger than the limit.
    #[error("the unpacked archive is larger than the limit")]
    TooLarge,
}

impl ExtractError {
    fn unsafe_entry(entry: &Path, reason: impl Into<String>) -> Self {
        ExtractError::Unsafe {
            entry: entry.display().to_string(),
            reason: reason.into(),
        }
    }

    fn from_io(error: io::Error, deadline: Instant) -> Self {
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<OverBudget>())
        {
            ExtractError::TooLarge
        } else if error.kind() == io::ErrorKind::TimedOut && Instant::now() >= deadline {
            ExtractError::TimedOut
        } else {
            ExtractError::Archive(error.to_string())
        }
    }
}

/// One archive to unpack.
pub(super) struct Job<'a> {
    /// The archive file.
    pub(super) archive: &'a Path,
    /// Its format.
    pub(super) kind: ArchiveKind,
    /// When to give up.
    pub(super) deadline: Instant,
    /// Largest unpacked size, in bytes.
    pub(super) limit: u64,
    /// Who gets the unpacked files.
    pub(super) owner: Option<FileOwner>,
}

/// Unpacks into a staging directory inside `target`, then moves the result into `target`.
/// On any failure the staging directory is removed with whatever it holds.
pub(super) fn extract_staged(job: &Job<'_>, target: &Path) -> Result<(), ExtractError> {
    let staging = tempfile::Builder::new()
        .prefix(".deimos-extract-")
        .tempdir_in(target)
        .map_err(|e| ExtractError::Archive(format!("creating a staging directory: {e}")))?;
    extract(job, staging.path())?;
    if let Some(owner) = job.owner {
        for entry in read_dir(staging.path())? {
            owner
                .apply_tree(&entry)
                .map_err(|e| ExtractError::Archive(format!("changing the owner: {e}")))?;
        }
    }
    merge_into(staging.path(), target)
}

/// Moves every entry of `from` into `into`: new names are renamed into place, directories
/// present on both sides are merged, files and links replace files and links (as unpacking
/// in place would have done). A directory is never replaced by a file.
fn merge_into(from: &Path, into: &Path) -> Result<(), ExtractError> {
    for source in read_dir(from)? {
        let Some(name) = source.file_name() else {
            continue;
        };
        let destination = into.join(name);
        let failed = |e: io::Error| {
            ExtractError::Archive(format!("moving into {}: {e}", destination.display()))
        };
        let source_is_dir = fs::symlink_metadata(&source).map_err(failed)?.is_dir();
        match fs::symlink_metadata(&destination) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(e)),
            Ok(existing) if existing.is_dir() && source_is_dir => {
                merge_into(&source, &destination)?;
                continue;
            }
            Ok(existing) if existing.is_dir() => {
                return Err(ExtractError::Archive(format!(
                    "{} is a directory and the archive has a file there",
                    destination.display()
                )));
            }
            Ok(_) => fs::remove_file(&destination).map_err(failed)?,
        }
        fs::rename(&source, &destination).map_err(failed)?;
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, ExtractError> {
    let read = |e: io::Error| ExtractError::Archive(format!("reading {}: {e}", dir.display()));
    fs::read_dir(dir)
        .map_err(read)?
        .map(|entry| entry.map(|e| e.path()).map_err(read))
        .collect()
}

/// Extracts the job's archive into the directory `target`, failing once the deadline has
/// passed or more than the limit has been unpacked.
fn extract(job: &Job<'_>, target: &Path) -> Result<(), ExtractError> {
    let (archive, deadline) = (job.archive, job.deadline);
    let file = fs::File::open(archive)
        .map_err(|e| ExtractError::Archive(format!("opening {}: {e}", archive.display())))?;
    let reader = DeadlineReader {
        inner: io::BufReader::new(file),
        deadline,
    };
    let budget = Rc::new(Cell::new(job.limit));
    let limited = |inner: Box<dyn Read>| Budgeted {
        inner,
        left: Rc::clone(&budget),
    };
    match job.kind {
        ArchiveKind::Tar => extract_tar(limited(Box::new(reader)), target, deadline),
        ArchiveKind::TarGz => extract_tar(
            limited(Box::new(flate2::read::MultiGzDecoder::new(reader))),
            target,
            deadline,
        ),
        ArchiveKind::TarBz2 => extract_tar(
            limited(Box::new(bzip2::read::MultiBzDecoder::new(reader))),
            target,
            deadline,
        ),
        ArchiveKind::TarXz => extract_tar(
            limited(Box::new(liblzma::read::XzDecoder::new_multi_decoder(
                reader,
            ))),
            target,
            deadline,
        ),
        ArchiveKind::Zip => extract_zip(reader, target, deadline, &budget),
    }
}

/// The marker inside the I/O error a [`Budgeted`] reader fails with.
#[derive(Debug)]
struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the unpacked archive is larger than the limit")
    }
}

impl std::error::Error for OverBudget {}

/// A reader that fails once more than the shared budget has been read through it (all the
/// readers of one archive share one budget).
struct Budgeted<R> {
    inner: R,
    left: Rc<Cell<u64>>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        // One byte beyond the budget is asked for, to tell "exactly at the limit" from "over".
        let window = usize::try_from(left.saturating_add(1)).unwrap_or(usize::MAX);
        let end = buf.len().min(window);
        let n = self.inner.read(&mut buf[..end])?;
        if n as u64 > left {
            return Err(io::Error::other(OverBudget));
        }
        self.left.set(left - n as u64);
        Ok(n)
    }
}

/// A reader that fails with `TimedOut` once the deadline has passed, so that a blocking
/// extraction stops soon after the async side gave up on it.
struct DeadlineReader<R> {
    inner: R,
    deadline: Instant,
}

impl<R: Read> Read for DeadlineReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() >= self.deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "fetch deadline passed",
            ));
        }
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for DeadlineReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn extract_tar(reader: impl Read, target: &Path, deadline: Instant) -> Result<(), ExtractError> {
    // tar wraps the reader's errors in its own: look for the budget marker in the chain.
    let io_error = |e: io::Error| match over_budget(&e) {
        true => ExtractError::TooLarge,
        false => ExtractError::from_io(e, deadline),
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(io_error)? {
        let mut entry = entry.map_err(io_error)?;
        let path = entry.path().map_err(io_error)?.into_owned();
        let Some(relative) = safe_relative(&path)? else {
            continue;
        };
        let link = entry.link_name().map_err(io_error)?.map(|l| l.into_owned());
        use tar::EntryType as T;
        match entry.header().entry_type() {
            T::Regular | T::Continuous | T::Directory => {}
            T::Symlink => check_symlink_target(&relative, link.as_deref())?,
            T::Link => check_hard_link(target, &path, link.as_deref())?,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            other => {
                let reason = format!(
                    "entry type {other:?} is not extracted (only files, \
                                      directories and links)"
                );
                return Err(ExtractError::unsafe_entry(&path, reason));
            }
        }
        prepare_destination(target, &relative)?;
        if !entry.unpack_in(target).map_err(io_error)? {
            return Err(ExtractError::unsafe_entry(
                &path,
                "refused by the tar reader",
            ));
        }
    }
    Ok(())
}

fn extract_zip(
    reader: impl Read + Seek,
    target: &Path,
    deadline: Instant,
    budget: &Rc<Cell<u64>>,
) -> Result<(), ExtractError> {
    let zip_error = |e: zip::result::ZipError| match e {
        zip::result::ZipError::Io(io) => ExtractError::from_io(io, deadline),
        other => ExtractError::Archive(other.to_string()),
    };
    let mut archive = zip::ZipArchive::new(reader).map_err(zip_error)?;
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).map_err(zip_error)?;
        let path = PathBuf::from(file.name());
        let Some(relative) = safe_relative(&path)? else {
            continue;
        };
        if file.enclosed_name().is_none() {
            return Err(ExtractError::unsafe_entry(
                &path,
                "the zip reader finds it unsafe",
            ));
        }
        prepare_destination(target, &relative)?;
        let destination = target.join(&relative);
        let mode = file.unix_mode();
        let write_error =
            |e: io::Error| ExtractError::from_io(e, deadline).in_context(&destination);
        if file.is_dir() {
            fs::create_dir_all(&destination).map_err(write_error)?;
        } else if file.is_symlink() {
            let mut link = String::new();
            file.by_ref()
                .take(MAX_LINK_TARGET)
                .read_to_string(&mut link)
                .map_err(write_error)?;
            check_symlink_target(&relative, Some(Path::new(&link)))?;
            std::os::unix::fs::symlink(&link, &destination).map_err(write_error)?;
        } else {
            let mut out = fs::File::create(&destination).map_err(write_error)?;
            let mut counted = Budgeted {
                inner: &mut file,
                left: Rc::clone(budget),
            };
            io::copy(&mut counted, &mut out).map_err(write_error)?;
            let permissions = fs::Permissions::from_mode(mode.map_or(0o644, |m| m & 0o777));
            fs::set_permissions(&destination, permissions).map_err(write_error)?;
        }
    }
    Ok(())
}

/// Whether the budget marker is anywhere in the error's chain of causes.
fn over_budget(error: &io::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<OverBudget>() {
            return true;
        }
        if let Some(io) = current.downcast_ref::<io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.is::<OverBudget>()) {
                return true;
            }
        }
        cause = current.source();
    }
    false
}

impl ExtractError {
    fn in_context(self, path: &Path) -> Self {
        match self {
            ExtractError::Archive(message) => {
                ExtractError::Archive(format!("writing {}: {message}", path.display()))
            }
            other => other,
        }
    }
}

/// The entry path as a clean relative path; `None` for the archive root (`./`).
fn safe_relative(path: &Path) -> Result<Option<PathBuf>, ExtractError> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(ExtractError::unsafe_entry(path, "its path contains '..'"))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ExtractError::unsafe_entry(path, "its path is absolute"))
            }
        }
    }
    Ok(Some(clean).filter(|clean| !clean.as_os_str().is_empty()))
}

/// A symlink at `relative` pointing to `target` must resolve inside the extraction directory.
fn check_symlink_target(relative: &Path, target: Option<&Path>) -> Result<(), ExtractError> {
    let Some(target) = target.filter(|t| !t.as_os_str().is_empty()) else {
        return Err(ExtractError::unsafe_entry(
            relative,
            "the symlink has no target",
        ));
    };
    let mut depth = relative.components().count().saturating_sub(1);
    let mut seen_normal = false;
    for component in target.components() {
        match component {
            Component::Normal(_) => seen_normal = true,
            Component::CurDir => {}
            // `..` after a name could climb out of a directory reached through another link.
            Component::ParentDir if seen_normal => {
                return Err(ExtractError::unsafe_entry(
                    relative,
                    format!("symlink target {target:?} has '..' after a name"),
                ))
            }
            Component::ParentDir if depth == 0 => {
                return Err(ExtractError::unsafe_entry(
                    relative,
                    format!("symlink target {target:?} points outside the extraction directory"),
                ))
            }
            Component::ParentDir => depth -= 1,
            Component::RootDir | Component::Prefix(_) => {
                return Err(ExtractError::unsafe_entry(
                    relative,
                    format!("symlink target {target:?} is absolute"),
                ))
            }
        }
    }
    Ok(())
}

/// A tar hard link names another entry, relative to the archive root.
fn check_hard_link(target: &Path, entry: &Path, link: Option<&Path>) -> Result<(), ExtractError> {
    let Some(link) = link else {
        return Err(ExtractError::unsafe_entry(
            entry,
            "the hard link has no target",
        ));
    };
    let linked = safe_relative(link)
        .map_err(|_| {
            ExtractError::unsafe_entry(entry, format!("hard link target {link:?} is outside"))
        })?
        .ok_or_else(|| ExtractError::unsafe_entry(entry, "the hard link has no target"))?;
    check_no_symlink_parents(target, &linked).map_err(|_| {
        ExtractError::unsafe_entry(entry, "its hard link target goes through a symlink")
    })
}

/// Refuses parents that are symlinks and removes a symlink at the entry's own path, so that the
/// entry is written in the extraction directory and not where a link points.
fn prepare_destination(target: &Path, relative: &Path) -> Result<(), ExtractError> {
    check_no_symlink_parents(target, relative)?;
    let destination = target.join(relative);
    if fs::symlink_metadata(&destination).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(&destination).map_err(|e| {
            ExtractError::Archive(format!("replacing symlink {}: {e}", destination.display()))
        })?;
    }
    Ok(())
}

fn check_no_symlink_parents(target: &Path, relative: &Path) -> Result<(), ExtractError> {
    let mut current = target.to_path_buf();
    let parents = relative
        .parent()
        .map(Path::components)
        .into_iter()
        .flatten();
    for component in parents {
        current.push(component);
        if fs::symlink_metadata(&current).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(ExtractError::unsafe_entry(
                relative,
                "it would be written through a symlink",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_must_be_relative_without_parent_components() {
        assert_eq!(
            safe_relative(Path::new("./a/b")).unwrap(),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(safe_relative(Path::new("./")).unwrap(), None);
        assert!(safe_relative(Path::new("a/../../b")).is_err());
        assert!(safe_relative(Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn symlink_targets_must_resolve_inside() {
        let ok = |link: &str, target: &str| {
            check_symlink_target(Path::new(link), Some(Path::new(target))).is_ok()
        };
        assert!(ok("a", "b"));
        assert!(ok("a", "./b/c"));
        assert!(ok("d/a", "../b"));
        assert!(ok("d/e/a", "../../b"));
        assert!(!ok("a", "../b"));
        assert!(!ok("d/a", "../../b"));
        assert!(!ok("a", "/etc/passwd"));
        assert!(!ok("a", "b/../c"));
        assert!(!ok("a", ""));
    }
}
