//! The fetch cache: an HTTP(S) URI marked `cache` is downloaded once into a cache directory and
//! copied from there into each sandbox, as the Mesos fetcher cache does.
//!
//! Layout: `<dir>/.lock` (taken while entries are added or evicted) and one directory per task
//! user (`user-<name, %-encoded>`, `default` for the image's user) holding, per URI,
//! `<key>` (the content), `<key>.lock` and, while it is being downloaded, `<key>.part`, where
//! `<key>` is the SHA-256 of the URI in hex (the URI may carry credentials: it never becomes a
//! file name). The cache is shared by every process using the directory (each `deimos launch`,
//! each executor) and survives restarts; entries carry their last use as their modification
//! time, the index is the directory itself.
//!
//! - A reader takes `<key>.lock` shared and copies `<key>` if it is there, marking it used.
//! - Otherwise it takes `<key>.lock` exclusively, looks again (another fetch may just have
//!   added it), downloads into `<key>.part`, syncs it, and under `.lock` evicts the least
//!   recently used entries nobody is reading until the new one fits in the size limit, then
//!   renames `<key>.part` to `<key>`. So concurrent fetches of one URI download it once, and no
//!   reader ever sees a partial entry. A failed or cancelled download removes `<key>.part`.
//! - A file larger than the limit, or one that cannot be made room for (every other entry in
//!   use), is given to the sandbox without being kept.
//! - When the cache directory cannot be used (it cannot be created, is not a directory owned by
//!   this user, or others may write to it), the URI is downloaded directly and the reason
//!   logged, as the Mesos fetcher falls back to direct fetching.
//!
//! Local files (`file://`, absolute paths) are never cached: copying them into the cache would
//! cost as much as copying them into the sandbox, and each fetch re-checks the opened file
//! against the allowed directories.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use url::Url;

use super::filelock::{self, Mode};
use super::transfer::{self, Target};
use super::FetchError;

/// Default most bytes the cached files may take together (2 GiB, the Mesos agent's default
/// `--fetcher_cache_size`).
pub const DEFAULT_CACHE_SIZE: u64 = 2 << 30;

/// Where cached URIs are kept and how much room they may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// The cache directory, created (mode 0700) when a cached URI is first fetched.
    pub dir: PathBuf,
    /// Most bytes the cached files may take together; least recently used ones are evicted.
    pub max_size: u64,
    /// The setting naming [`CacheOptions::dir`], for messages (`[uris] cache_dir`, …).
    pub setting: &'static str,
}

/// One URI to fetch through the cache.
pub(super) struct Request<'a> {
    /// The URI as shown.
    pub(super) shown: &'a str,
    /// The URL downloaded; its text is the cache key.
    pub(super) url: &'a Url,
    /// The task's user, naming its directory in the cache.
    pub(super) user: Option<&'a str>,
    /// The largest download allowed.
    pub(super) max_size: u64,
}

/// The files of one cache entry.
struct Entry {
    content: PathBuf,
    lock: PathBuf,
    part: PathBuf,
}

impl Entry {
    fn new(user_dir: &Path, url: &Url) -> Self {
        let key = hex::encode(Sha256::digest(url.as_str().as_bytes()));
        Entry {
            content: user_dir.join(&key),
            lock: user_dir.join(format!("{key}.lock")),
            part: user_dir.join(format!("{key}.part")),
        }
    }
}

/// Writes the URI's content into `out` (the sandbox's temporary file at `out_path`) from the
/// cache, downloading it into the cache first when it is not there. Returns its size.
pub(super) async fn fill(
    cache: &CacheOptions,
    request: &Request<'_>,
    client: &reqwest::Client,
    out: &mut tokio::fs::File,
    out_path: &Path,
) -> Result<u64, FetchError> {
    let user_dir = match prepare(&cache.dir, request.user) {
        Ok(dir) => dir,
        Err(reason) => {
            log::warn!(
                "{} is fetched without the cache: {} {}: {reason}",
                request.shown,
                cache.setting,
                cache.dir.display()
            );
            let target = Target::new(request.shown, out_path, request.max_size);
            return transfer::download(client, request.url, out, &target).await;
        }
    };
    let entry = Entry::new(&user_dir, request.url);
    let locked = |e| io_error(request, "locking", &entry.lock, e);
    {
        let _reading = filelock::lock(&entry.lock, Mode::Shared)
            .await
            .map_err(locked)?;
        if let Some(size) = copy_entry(&entry.content, request, out).await? {
            return Ok(size);
        }
    }
    let _writing = filelock::lock(&entry.lock, Mode::Exclusive)
        .await
        .map_err(locked)?;
    // Another fetch may have added it while we waited for the exclusive lock.
    if let Some(size) = copy_entry(&entry.content, request, out).await? {
        return Ok(size);
    }
    let mut part =
        PartFile::create(&entry.part).map_err(|e| io_error(request, "creating", &entry.part, e))?;
    let target = Target::new(request.shown, &entry.part, request.max_size);
    let size = transfer::download(client, request.url, &mut part.file, &target).await?;
    part.file
        .sync_all()
        .await
        .map_err(|e| io_error(request, "syncing", &entry.part, e))?;
    let admitted = admit(cache, &entry, size)
        .await
        .map_err(|e| io_error(request, "adding to the cache", &entry.content, e))?;
    let source = if admitted {
        part.kept();
        &entry.content
    } else {
        log::info!(
            "{} ({}) is not kept in the cache: {} {} has no room for it",
            request.shown,
            super::format_size(size),
            cache.setting,
            cache.dir.display()
        );
        &entry.part
    };
    copy_file(source, request, out).await
}

/// The cache directory of `user` under `dir`, both created when missing. `dir` must be a
/// directory of this process' user that nobody else may write to.
fn prepare(dir: &Path, user: Option<&str>) -> Result<PathBuf, String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder
        .create(dir)
        .map_err(|e| format!("creating it failed: {e}"))?;
    let metadata = std::fs::symlink_metadata(dir).map_err(|e| format!("reading it failed: {e}"))?;
    if !metadata.is_dir() {
        return Err("it is not a directory".into());
    }
    let uid = nix::unistd::geteuid().as_raw();
    if metadata.uid() != uid {
        return Err(format!(
            "it belongs to uid {}, not to this process' uid {uid}",
            metadata.uid()
        ));
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(format!(
            "others may write to it (mode {:o})",
            metadata.mode() & 0o777
        ));
    }
    let user_dir = dir.join(user_dir_name(user));
    builder
        .create(&user_dir)
        .map_err(|e| format!("creating {} failed: {e}", user_dir.display()))?;
    Ok(user_dir)
}

/// `user-<name>` with every byte but ASCII letters, digits, `.`, `_` and `-` as `%XX` (so
/// `1000:1000` and a name with `/` stay one directory), `default` without a user.
fn user_dir_name(user: Option<&str>) -> String {
    let Some(user) = user else {
        return "default".into();
    };
    let mut name = String::from("user-");
    for byte in user.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            name.push(byte as char);
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    name
}

/// Copies the entry `content` into `out` and marks it used; `Ok(None)` when there is none.
async fn copy_entry(
    content: &Path,
    request: &Request<'_>,
    out: &mut tokio::fs::File,
) -> Result<Option<u64>, FetchError> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(content)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(request, "opening", content, e)),
    };
    if let Err(error) = file.set_modified(SystemTime::now()) {
        // Only the eviction order suffers.
        log::warn!("marking {} used: {error}", content.display());
    }
    copy_open(file, content, request, out).await.map(Some)
}

/// Copies the file at `path` into `out`.
async fn copy_file(
    path: &Path,
    request: &Request<'_>,
    out: &mut tokio::fs::File,
) -> Result<u64, FetchError> {
    let file = std::fs::File::open(path).map_err(|e| io_error(request, "opening", path, e))?;
    copy_open(file, path, request, out).await
}

async fn copy_open(
    file: std::fs::File,
    path: &Path,
    request: &Request<'_>,
    out: &mut tokio::fs::File,
) -> Result<u64, FetchError> {
    let length = file
        .metadata()
        .map_err(|e| io_error(request, "reading", path, e))?
        .len();
    // The limit may have been lowered since the entry was added.
    if length > request.max_size {
        return Err(FetchError::TooLarge {
            uri: request.shown.to_owned(),
            what: "the cached file",
            limit: request.max_size,
        });
    }
    let mut source = tokio::fs::File::from_std(file);
    let size = tokio::io::copy(&mut source, out)
        .await
        .map_err(|e| io_error(request, "copying", path, e))?;
    out.flush()
        .await
        .map_err(|e| io_error(request, "copying", path, e))?;
    Ok(size)
}

/// Makes room for `size` bytes by evicting least recently used entries nobody reads, then
/// renames the entry's part file into place. `Ok(false)` when there is not enough room.
async fn admit(cache: &CacheOptions, entry: &Entry, size: u64) -> io::Result<bool> {
    if size > cache.max_size {
        return Ok(false);
    }
    let global = filelock::lock(&cache.dir.join(".lock"), Mode::Exclusive).await?;
    let (dir, max_size) = (cache.dir.clone(), cache.max_size);
    let (part, content) = (entry.part.clone(), entry.content.clone());
    tokio::task::spawn_blocking(move || {
        let _global = global;
        if !make_room(&dir, max_size - size)? {
            return Ok(false);
        }
        std::fs::rename(&part, &content)?;
        std::fs::File::open(&content)?.set_modified(SystemTime::now())?;
        Ok(true)
    })
    .await
    .map_err(io::Error::other)?
}

/// One entry found in the cache.
struct Found {
    content: PathBuf,
    size: u64,
    used: SystemTime,
}

/// Evicts entries, least recently used first, until they take at most `room` bytes; entries
/// being read are kept. Leftovers of failed downloads nobody holds are removed on the way.
fn make_room(dir: &Path, room: u64) -> io::Result<bool> {
    let mut found = scan(dir)?;
    let mut total: u64 = found.iter().map(|entry| entry.size).sum();
    found.sort_by(|a, b| (a.used, &a.content).cmp(&(b.used, &b.content)));
    for victim in found {
        if total <= room {
            break;
        }
        let lock = with_suffix(&victim.content, ".lock");
        let Some(_held) = filelock::try_lock(&lock, Mode::Exclusive)? else {
            continue;
        };
        std::fs::remove_file(&victim.content)?;
        std::fs::remove_file(&lock)?;
        total -= victim.size;
        log::info!(
            "evicted {} ({}) from the fetch cache",
            victim.content.display(),
            super::format_size(victim.size)
        );
    }
    Ok(total <= room)
}

/// Every entry of every user directory of the cache.
fn scan(dir: &Path) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    for user_dir in std::fs::read_dir(dir)? {
        let user_dir = user_dir?;
        if !user_dir.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(user_dir.path())? {
            let file = file?;
            let name = file.file_name().to_string_lossy().into_owned();
            if is_key(&name) {
                let metadata = file.metadata()?;
                found.push(Found {
                    content: file.path(),
                    size: metadata.len(),
                    used: metadata.modified()?,
                });
            } else if let Some(key) = name.strip_suffix(".lock").filter(|key| is_key(key)) {
                remove_abandoned(&user_dir.path(), key)?;
            }
        }
    }
    Ok(found)
}

/// Removes the lock and part file of a key without content when nobody holds its lock (a
/// download failed or was killed).
fn remove_abandoned(user_dir: &Path, key: &str) -> io::Result<()> {
    let content = user_dir.join(key);
    if content.exists() {
        return Ok(());
    }
    let lock = user_dir.join(format!("{key}.lock"));
    let Some(_held) = filelock::try_lock(&lock, Mode::Exclusive)? else {
        return Ok(());
    };
    if content.exists() {
        return Ok(());
    }
    match std::fs::remove_file(user_dir.join(format!("{key}.part"))) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::remove_file(&lock)
}

fn is_key(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io_error(
    request: &Request<'_>,
    action: &'static str,
    path: &Path,
    source: io::Error,
) -> FetchError {
    FetchError::Io {
        uri: request.shown.to_owned(),
        action,
        path: path.to_owned(),
        source,
    }
}

/// A download in progress into `<key>.part`, removed when dropped unless it became the entry.
struct PartFile {
    file: tokio::fs::File,
    path: Option<PathBuf>,
}

impl PartFile {
    fn create(path: &Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        Ok(PartFile {
            file: tokio::fs::File::from_std(file),
            path: Some(path.to_owned()),
        })
    }

    /// It was renamed into the cache: nothing to remove.
    fn kept(&mut self) {
        self.path = None;
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            if let Err(error) = std::fs::remove_file(&path) {
                if error.kind() != io::ErrorKind::NotFound {
                    log::warn!("removing {}: {error}", path.display());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_directories_are_one_safe_name_per_user() {
        assert_eq!(user_dir_name(None), "default");
        assert_eq!(user_dir_name(Some("nobody")), "user-nobody");
        assert_eq!(user_dir_name(Some("1000:1000")), "user-1000%3A1000");
        assert_eq!(user_dir_name(Some("../x/y")), "user-..%2Fx%2Fy");
    }

    #[test]
    fn entries_are_keyed_by_the_whole_url_never_naming_it() {
        let url = |text: &str| Url::parse(text).unwrap();
        let dir = Path::new("/c/user-a");
        let first = Entry::new(dir, &url("http://h/x?token=secret"));
        let second = Entry::new(dir, &url("http://h/x?token=other"));
        assert_ne!(first.content, second.content);
        let name = first.content.file_name().unwrap().to_string_lossy();
        assert!(is_key(&name) && !name.contains("secret"), "{name}");
        assert_eq!(first.lock, with_suffix(&first.content, ".lock"));
    }

    #[test]
    fn a_cache_directory_others_may_write_to_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let user_dir = prepare(&cache, Some("u")).unwrap();
        assert_eq!(user_dir, cache.join("user-u"));
        let mode = std::fs::metadata(&cache).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(prepare(&cache, None)
            .unwrap_err()
            .contains("others may write"));
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(prepare(&file, None).is_err());
    }
}
