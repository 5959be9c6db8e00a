//! The agent's `files` process (`src/files/files.cpp`): virtual paths
//! attached to real directories, their resolution, and the answers of
//! `/files/read`, `/files/download` and `/files/browse`, as pure functions
//! of the request and the file system.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::version::Version;
use crate::cluster::sandbox::AgentBook;

/// The most a read returns: 16 pages of 4 KiB (`os::pagesize() * 16`).
pub(crate) const MAX_READ: u64 = 16 * 4096;

/// An answer of a files endpoint that is not 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FilesError {
    /// 400 with this body.
    Invalid(String),
    /// 404 with an empty body.
    NotFound,
    /// 500 with this body.
    Unknown(String),
}

/// Virtual path → real directory, as the agent attaches executor sandboxes
/// (`Slave::launchExecutor`/`Executor` recovery): every run under its own
/// absolute path; from 1.4 also `<runs>/latest`; from 1.5 also
/// `/frameworks/<fw>/executors/<exec>/runs/latest` (both naming the latest
/// run: a new run re-attaches them). Targets are canonical, as
/// `Files::attach` stores `realpath`; paths that cannot be resolved are not
/// attached (attach fails).
pub(crate) fn attachments(book: &AgentBook, version: Version) -> BTreeMap<String, PathBuf> {
    let mut attached = BTreeMap::new();
    for run in book.executors() {
        let Ok(real) = std::fs::canonicalize(&run.directory) else {
            continue;
        };
        attached.insert(
            clean_virtual(&run.directory.display().to_string()),
            real.clone(),
        );
        if version >= Version::new(1, 4) {
            let latest = book
                .runs_dir(&run.framework_id, &run.executor_id)
                .join("latest");
            attached.insert(clean_virtual(&latest.display().to_string()), real.clone());
        }
        if version >= Version::new(1, 5) {
            let virtual_latest = format!(
                "/frameworks/{}/executors/{}/runs/latest",
                run.framework_id, run.executor_id
            );
            attached.insert(virtual_latest, real);
        }
    }
    attached
}

/// A virtual path without its trailing slashes (how `attach` keys them).
fn clean_virtual(path: &str) -> String {
    path.trim_end_matches('/').to_owned()
}

/// `FilesProcess::resolve`: the longest attached prefix of `path`, then the
/// rest below it. `Ok(None)` is "not found"; `Err` an invalid path (a
/// target outside the attached directory, e.g. through `..` or a link).
pub(crate) fn resolve(
    attached: &BTreeMap<String, PathBuf>,
    path: &str,
) -> Result<Option<PathBuf>, String> {
    let cleaned = clean_virtual(path);
    let mut tokens: Vec<&str> = cleaned.split('/').collect();
    let mut suffix: Vec<&str> = Vec::new();
    while !tokens.is_empty() {
        let prefix = tokens.join("/");
        let Some(target) = attached.get(&prefix) else {
            suffix.insert(0, tokens.pop().unwrap_or_default());
            continue;
        };
        if !target.is_dir() {
            // A suffix below a file is "not found", not "bad request".
            return Ok(suffix.is_empty().then(|| target.clone()));
        }
        let joined = target.join(suffix.join("/"));
        let real = match std::fs::canonicalize(&joined) {
            Ok(real) => real,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(format!(
                    "Failed to determine canonical path of '{}': {error}",
                    joined.display()
                ))
            }
        };
        // A string prefix, as the agent compares them.
        if !real
            .display()
            .to_string()
            .starts_with(&target.display().to_string())
        {
            return Err(format!("'{}' is inaccessible", joined.display()));
        }
        return Ok(Some(real));
    }
    Ok(None)
}

/// The parameters of `/files/read`, checked as `FilesProcess::__read` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadRequest {
    /// The virtual path.
    pub(crate) path: String,
    /// `-1` (or absent): only the size is asked for.
    pub(crate) offset: i64,
    /// `None`: to the end (at most [`MAX_READ`]).
    pub(crate) length: Option<u64>,
}

/// Parses `/files/read`'s query (texts of `files.cpp` and stout's `numify`).
pub(crate) fn parse_read(query: &BTreeMap<String, String>) -> Result<ReadRequest, String> {
    let path = required_path(query)?;
    let offset = match query.get("offset") {
        None => -1,
        Some(text) => {
            let offset = numify(text).map_err(|e| format!("Failed to parse offset: {e}.\n"))?;
            if offset < -1 {
                return Err(format!("Negative offset provided: {offset}.\n"));
            }
            offset
        }
    };
    let length = match query.get("length") {
        None => None,
        Some(text) => {
            let length = numify(text).map_err(|e| format!("Failed to parse length: {e}.\n"))?;
            if length < -1 {
                return Err(format!("Negative length provided: {length}.\n"));
            }
            u64::try_from(length).ok()
        }
    };
    Ok(ReadRequest {
        path,
        offset,
        length,
    })
}

/// The `path` parameter, which must be present and non-empty.
pub(crate) fn required_path(query: &BTreeMap<String, String>) -> Result<String, String> {
    match query.get("path") {
        Some(path) if !path.is_empty() => Ok(path.clone()),
        _ => Err("Expecting 'path=value' in query.\n".to_owned()),
    }
}

/// stout's `numify<off_t>` for what clients send (decimal, optionally hex).
fn numify(text: &str) -> Result<i64, String> {
    let failed = || format!("Failed to convert '{text}' to number");
    if let Ok(value) = text.parse::<i64>() {
        return Ok(value);
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let hex = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .ok_or_else(failed)?;
    let value = i64::from_str_radix(hex, 16).map_err(|_| failed())?;
    Ok(if negative { -value } else { value })
}

/// `/files/read`: the JSON `{"data", "offset"}` for `request`.
pub(crate) fn read(
    attached: &BTreeMap<String, PathBuf>,
    request: &ReadRequest,
) -> Result<serde_json::Value, FilesError> {
    let real = resolve(attached, &request.path)
        .map_err(|e| FilesError::Invalid(format!("{e}.\n")))?
        .ok_or(FilesError::NotFound)?;
    if real.is_dir() {
        return Err(FilesError::Invalid("Cannot read a directory.\n".to_owned()));
    }
    let (start, length) = match request.offset {
        -1 => (0, Some(0)),
        offset => (offset.unsigned_abs(), request.length),
    };
    let (size, data) = read_range(&real, start, length).map_err(|error| {
        FilesError::Unknown(format!(
            "Failed to open file at '{}': {error}.\n",
            real.display()
        ))
    })?;
    let offset = if request.offset == -1 {
        size
    } else {
        request.offset.unsigned_abs()
    };
    Ok(serde_json::json!({
        "data": String::from_utf8_lossy(&data),
        "offset": offset,
    }))
}

/// The file's size and at most [`MAX_READ`] bytes from `start`.
fn read_range(path: &Path, start: u64, length: Option<u64>) -> std::io::Result<(u64, Vec<u8>)> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let size = file.seek(SeekFrom::End(0))?;
    if start >= size {
        return Ok((size, Vec::new()));
    }
    let length = length.unwrap_or(size - start).min(MAX_READ);
    file.seek(SeekFrom::Start(start))?;
    let mut data = Vec::new();
    file.take(length).read_to_end(&mut data)?;
    Ok((size, data))
}

/// `/files/download`: the real file to send.
pub(crate) fn download(
    attached: &BTreeMap<String, PathBuf>,
    path: &str,
) -> Result<PathBuf, FilesError> {
    let real = resolve(attached, path)
        .map_err(|e| FilesError::Invalid(format!("{e}.\n")))?
        .ok_or(FilesError::NotFound)?;
    if real.is_dir() {
        return Err(FilesError::Invalid(
            "Cannot download a directory.\n".to_owned(),
        ));
    }
    Ok(real)
}

/// `Content-Type` of a download: by extension (libprocess' `mime::types`
/// for the common ones), else `application/octet-stream`.
pub(crate) fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match extension {
        "txt" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" => "application/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "gz" | "tgz" => "application/x-gzip",
        "tar" => "application/x-tar",
        "zip" => "application/zip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// `/files/browse`: the entries of the directory, sorted by path, each as
/// `model(FileInfo)` (`path` under the virtual path asked for). A file
/// lists nothing.
pub(crate) fn browse(
    attached: &BTreeMap<String, PathBuf>,
    path: &str,
) -> Result<serde_json::Value, FilesError> {
    let real = resolve(attached, path)
        .map_err(|e| FilesError::Invalid(format!("{e}.\n")))?
        .ok_or(FilesError::NotFound)?;
    let names = Names::load();
    let mut entries = BTreeMap::new();
    if let Ok(listing) = std::fs::read_dir(&real) {
        for entry in listing.flatten() {
            let full = real.join(entry.file_name());
            // Followed, as stat(2) does.
            let Ok(metadata) = std::fs::metadata(&full) else {
                continue;
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            let virtual_path = format!("{}/{name}", path.trim_end_matches('/'));
            entries.insert(full, file_info(&virtual_path, &metadata, &names));
        }
    }
    Ok(serde_json::Value::Array(entries.into_values().collect()))
}

fn file_info(path: &str, metadata: &std::fs::Metadata, names: &Names) -> serde_json::Value {
    serde_json::json!({
        "path": path,
        "nlink": metadata.nlink(),
        "size": metadata.size(),
        "mtime": metadata.mtime(),
        "mode": mode_string(metadata.permissions().mode()),
        "uid": names.user(metadata.uid()),
        "gid": names.group(metadata.gid()),
    })
}

/// `-rw-r--r--` style, as `model(FileInfo)` writes it.
pub(crate) fn mode_string(mode: u32) -> String {
    let kind = match mode & 0o170_000 {
        0o040_000 => 'd',
        0o020_000 => 'c',
        0o060_000 => 'b',
        0o010_000 => 'p',
        0o120_000 => 'l',
        0o140_000 => 's',
        _ => '-',
    };
    let mut text = String::from(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    text
}

/// User and group names (`getpwuid`/`getgrgid` read the same files),
/// numbers when unnamed.
struct Names {
    users: BTreeMap<u32, String>,
    groups: BTreeMap<u32, String>,
}

impl Names {
    fn load() -> Names {
        Names {
            users: read_id_names("/etc/passwd"),
            groups: read_id_names("/etc/group"),
        }
    }

    fn user(&self, uid: u32) -> String {
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }

    fn group(&self, gid: u32) -> String {
        self.groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| gid.to_string())
    }
}

/// `name:x:id:...` lines → id → name.
fn read_id_names(file: &str) -> BTreeMap<u32, String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse().ok()?;
            Some((id, name.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn read_parameters_are_checked_with_the_agents_texts() {
        assert_eq!(
            parse_read(&query(&[])),
            Err("Expecting 'path=value' in query.\n".to_owned())
        );
        assert_eq!(
            parse_read(&query(&[("path", "/x"), ("offset", "abc")])),
            Err("Failed to parse offset: Failed to convert 'abc' to number.\n".to_owned())
        );
        assert_eq!(
            parse_read(&query(&[("path", "/x"), ("offset", "-2")])),
            Err("Negative offset provided: -2.\n".to_owned())
        );
        assert_eq!(
            parse_read(&query(&[("path", "/x"), ("length", "-5")])),
            Err("Negative length provided: -5.\n".to_owned())
        );
        let request = parse_read(&query(&[
            ("path", "/x"),
            ("offset", "0x10"),
            ("length", "-1"),
        ]));
        assert_eq!(
            request,
            Ok(ReadRequest {
                path: "/x".to_owned(),
                offset: 16,
                length: None
            })
        );
    }

    #[test]
    fn modes_are_written_as_ls_does() {
        assert_eq!(mode_string(0o100_644), "-rw-r--r--");
        assert_eq!(mode_string(0o040_755), "drwxr-xr-x");
        assert_eq!(mode_string(0o120_777), "lrwxrwxrwx");
    }

    #[test]
    fn unattached_paths_are_not_found_and_escapes_are_invalid() {
        let root = std::env::temp_dir().join(format!("files-resolve-{}", std::process::id()));
        let sandbox = root.join("sandbox");
        std::fs::create_dir_all(&sandbox).unwrap();
        std::fs::write(sandbox.join("stdout"), "x").unwrap();
        std::fs::write(root.join("secret"), "s").unwrap();
        let real = std::fs::canonicalize(&sandbox).unwrap();
        let attached: BTreeMap<String, PathBuf> =
            [("/virtual/sandbox".to_owned(), real.clone())].into();
        assert_eq!(
            resolve(&attached, "/virtual/sandbox/stdout"),
            Ok(Some(real.join("stdout")))
        );
        assert_eq!(resolve(&attached, "/virtual/sandbox/missing"), Ok(None));
        assert_eq!(resolve(&attached, "/elsewhere/stdout"), Ok(None));
        assert!(resolve(&attached, "/virtual/sandbox/../secret").is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
