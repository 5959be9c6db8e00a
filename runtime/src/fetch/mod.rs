//! Fetching `CommandInfo` URIs into the task sandbox before the container starts.
//!
//! Sources: `http://` and `https://` (rustls with the system's trust store), `file://` URLs on
//! this host and absolute paths (copied). Other schemes (`s3://`, `hdfs://`, …) are rejected.
//!
//! Local files are copied only from under the directories of [`FetchOptions::local_files`]
//! (none by default): the fetch runs with the privileges of the service or the agent, so
//! otherwise any task could read any file they can (`/etc/shadow`, credentials, other tasks'
//! data). The path is checked as written before anything is fetched, and the file actually
//! opened is checked again (its resolved path, symbolic links followed), so a file replaced by
//! a link in the meantime is refused.
//!
//! Sizes are capped: one URI's download or copy by [`FetchOptions::max_size`], what one
//! archive unpacks to by [`FetchOptions::max_extracted_size`]. Archives are unpacked into a
//! hidden staging directory in the sandbox and moved into place only when complete, so a
//! refused or failed extraction leaves nothing behind. Fetched files (and unpacked trees) are
//! given to [`FetchOptions::owner`] when set ([`FileOwner::for_user`]).
//!
//! Differences from Deimos (D-19), each deliberate:
//! - a failed fetch is an error naming the URI and the cause, and the launch fails; Deimos
//!   logged it and ran the task without the file;
//! - the file name is the last path segment without query string or fragment (or the URI's
//!   `output_file`, which must be relative without `..`); an empty name is an error;
//! - archives are extracted only when the URI's `extract` flag AND the global `unpack` setting
//!   are both true (Deimos ignored the flag); as in the Mesos fetcher an `executable` URI is
//!   never extracted; the archive file is kept after extraction;
//! - no external programs (`curl`, `tar`, `unzip`) are needed, and extraction refuses entries
//!   that would escape the sandbox (absolute paths, `..`, links pointing outside, writes
//!   through links, device files).
//!
//! URIs marked `cache` (HTTP(S) only) are downloaded once into the fetch cache
//! ([`FetchOptions::cache`]: a directory per task user, entries keyed by the URI, a size limit
//! with least-recently-used eviction, one download for concurrent fetches of one URI, shared by
//! every process using the directory) and copied from there; see the `cache` module. The
//! copy in the sandbox is then handled like a download: mode, owner, extraction.
//!
//! HTTP proxies come from the usual environment variables (`http_proxy`, `https_proxy`,
//! `no_proxy`), as they did for Deimos's `curl`; redirects are followed (up to 10).
//!
//! Each download streams into a temporary file in the destination directory that is renamed
//! into place once complete, so a partial file never appears under the final name. Files get
//! mode 0644, or 0755 when `executable`. URIs are fetched one after the other; each has an
//! overall deadline ([`FetchOptions::timeout`]) covering transfer and extraction.

mod cache;
mod extract;
mod filelock;
mod owner;
mod plan;
mod transfer;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use cache::{CacheOptions, DEFAULT_CACHE_SIZE};
pub use owner::FileOwner;
pub use plan::{local_file_path, ArchiveKind};
use plan::{Planned, Source};

use crate::hostpath::AllowedPaths;

/// Default overall time allowed for one URI (transfer and extraction).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Default time allowed to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default largest download or copy of one URI (1 GiB).
pub const DEFAULT_MAX_SIZE: u64 = 1 << 30;
/// Default largest unpacked size of one archive (1 GiB).
pub const DEFAULT_MAX_EXTRACTED_SIZE: u64 = 1 << 30;
/// The setting named when local files are refused by [`FetchOptions::default`].
pub const DEFAULT_LOCAL_FILES_SETTING: &str = "[uris] allowed_local_paths";

/// One URI to fetch (the fields of Mesos's `CommandInfo.URI`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UriSpec {
    /// An `http(s)://` or `file://` URL, or an absolute path on the agent.
    pub value: String,
    /// Make the file executable (mode 0755); such a file is never extracted.
    pub executable: bool,
    /// Extract the file if it is an archive (and [`FetchOptions::unpack`] is set).
    pub extract: bool,
    /// File name relative to the sandbox; defaults to the URI's last path segment.
    pub output_file: Option<String>,
    /// Download an HTTP(S) URI once into the fetch cache ([`FetchOptions::cache`]) and copy it
    /// from there; without a cache, or for local files, the URI is fetched as usual.
    pub cache: bool,
}

/// How URIs are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// The global unpack setting (`[uris] unpack`): archives are extracted only when this and
    /// the URI's `extract` flag are both true.
    pub unpack: bool,
    /// Overall time allowed for one URI, transfer and extraction together.
    pub timeout: Duration,
    /// Time allowed to establish an HTTP connection.
    pub connect_timeout: Duration,
    /// Where local files (`file://` URLs, absolute paths) may be copied from; none by default.
    pub local_files: AllowedPaths,
    /// Largest download or copy of one URI, in bytes.
    pub max_size: u64,
    /// Largest size one archive may unpack to (its unpacked stream), in bytes.
    pub max_extracted_size: u64,
    /// Owner given to fetched files and unpacked trees; `None` leaves them to this process.
    pub owner: Option<FileOwner>,
    /// The fetch cache for URIs marked `cache`; `None` fetches them every time.
    pub cache: Option<CacheOptions>,
    /// The task's user as the container gets it (`name`, `uid`, `uid:gid`): its cached files
    /// are kept apart from other users' (`None`: the image's user).
    pub user: Option<String>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            unpack: true,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            local_files: AllowedPaths::none(DEFAULT_LOCAL_FILES_SETTING),
            max_size: DEFAULT_MAX_SIZE,
            max_extracted_size: DEFAULT_MAX_EXTRACTED_SIZE,
            owner: None,
            cache: None,
            user: None,
        }
    }
}

/// A fetched file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    /// The URI as shown in logs (password and query string hidden).
    pub uri: String,
    /// Where the file is now.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The archive it was extracted as into the sandbox, if it was.
    pub extracted: Option<ArchiveKind>,
}

/// Why fetching a URI failed. Every message names the URI (password and query string hidden).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URI cannot be fetched (unsupported scheme, relative path, not a regular file, …).
    #[error("cannot fetch {uri}: {reason}")]
    InvalidUri {
        /// The URI.
        uri: String,
        /// Why.
        reason: String,
    },
    /// A local file outside the directories local files may be copied from.
    #[error("cannot fetch {uri}: local file refused: {reason}")]
    LocalFileRefused {
        /// The URI.
        uri: String,
        /// Why (names the path and the setting that allows directories).
        reason: String,
    },
    /// The download, the copy or the unpacked archive is larger than allowed.
    #[error("fetching {uri} failed: {what} exceeds the limit of {}", format_size(*limit))]
    TooLarge {
        /// The URI.
        uri: String,
        /// What is too large (`the download`, `the unpacked archive`, …).
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
    /// The URI's `output_file` would not stay inside the sandbox.
    #[error("cannot fetch {uri}: invalid output_file {output_file:?}: {reason}")]
    InvalidOutputFile {
        /// The URI.
        uri: String,
        /// The output file as given.
        output_file: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The URI's path has no last segment to name the file after.
    #[error("cannot fetch {uri}: the URI has no file name (set output_file)")]
    EmptyFileName {
        /// The URI.
        uri: String,
    },
    /// Two URIs would write the same file.
    #[error("cannot fetch {uri}: {first} is also fetched to {}", output.display())]
    DuplicateOutput {
        /// The second URI.
        uri: String,
        /// The first URI.
        first: String,
        /// The file both would write, relative to the sandbox.
        output: PathBuf,
    },
    /// The HTTP client could not be created (e.g. unreadable system certificates).
    #[error("cannot fetch {uri}: creating the HTTP client failed: {cause}")]
    Client {
        /// The first HTTP URI.
        uri: String,
        /// The cause.
        cause: String,
    },
    /// The server answered with a non-success status.
    #[error("fetching {uri} failed: HTTP status {status}{}", status_reason(*status))]
    HttpStatus {
        /// The URI.
        uri: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The request or the body transfer failed (DNS, connection refused, TLS, reset, …).
    #[error("fetching {uri} failed: {cause}")]
    Transfer {
        /// The URI.
        uri: String,
        /// The cause, with its chain of causes.
        cause: String,
    },
    /// The URI took longer than [`FetchOptions::timeout`].
    #[error("fetching {uri} failed: timed out after {timeout:?}")]
    TimedOut {
        /// The URI.
        uri: String,
        /// The limit.
        timeout: Duration,
    },
    /// A local file operation failed.
    #[error("fetching {uri} failed: {action} {}: {source}", path.display())]
    Io {
        /// The URI.
        uri: String,
        /// What was being done (`opening`, `writing`, …).
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The archive has an entry that would escape the sandbox or is of a refused kind.
    #[error("extracting {} (fetched from {uri}) refused: {reason}", archive.display())]
    UnsafeArchiveEntry {
        /// The URI.
        uri: String,
        /// The archive file.
        archive: PathBuf,
        /// The entry and why it is refused.
        reason: String,
    },
    /// The archive could not be extracted (malformed, or writing failed).
    #[error("extracting {} (fetched from {uri}) failed: {reason}", archive.display())]
    Extract {
        /// The URI.
        uri: String,
        /// The archive file.
        archive: PathBuf,
        /// The cause.
        reason: String,
    },
}

/// A byte count for messages: `1 GiB (1073741824 bytes)`, or just bytes below 1 KiB.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    match UNITS.iter().find(|(unit, _)| bytes >= *unit) {
        Some((unit, name)) if bytes % unit == 0 => {
            format!("{} {name} ({bytes} bytes)", bytes / unit)
        }
        Some((unit, name)) => format!("{:.1} {name} ({bytes} bytes)", bytes as f64 / *unit as f64),
        None => format!("{bytes} bytes"),
    }
}

fn status_reason(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .map(|reason| format!(" ({reason})"))
        .unwrap_or_default()
}

/// Fetches every URI into the existing directory `sandbox`, in order, stopping at the first
/// failure (files fetched before it stay in the sandbox).
///
/// Everything is validated first (sources, file names, duplicates, local paths as written),
/// so a bad URI fails the fetch before anything is downloaded.
pub async fn fetch_all(
    uris: &[UriSpec],
    sandbox: &Path,
    options: &FetchOptions,
) -> Result<Vec<FetchedFile>, FetchError> {
    let planned = plan::plan_all(uris, options.unpack)?;
    for uri in &planned {
        if let Source::Local(path) = &uri.source {
            options
                .local_files
                .check_requested(path)
                .map_err(|reason| FetchError::LocalFileRefused {
                    uri: uri.shown.clone(),
                    reason,
                })?;
        }
    }
    let client = match planned.iter().find(|p| matches!(p.source, Source::Http(_))) {
        Some(first) => {
            Some(
                transfer::http_client(options).map_err(|cause| FetchError::Client {
                    uri: first.shown.clone(),
                    cause,
                })?,
            )
        }
        None => None,
    };
    let mut fetched = Vec::with_capacity(planned.len());
    for uri in &planned {
        let deadline = Instant::now() + options.timeout;
        let work = fetch_one(uri, sandbox, client.as_ref(), options, deadline);
        let file = tokio::time::timeout_at(deadline.into(), work)
            .await
            .map_err(|_| FetchError::TimedOut {
                uri: uri.shown.clone(),
                timeout: options.timeout,
            })??;
        fetched.push(file);
    }
    Ok(fetched)
}

async fn fetch_one(
    uri: &Planned,
    sandbox: &Path,
    client: Option<&reqwest::Client>,
    options: &FetchOptions,
    deadline: Instant,
) -> Result<FetchedFile, FetchError> {
    let io_error = |action, path: &Path| {
        let uri = uri.shown.clone();
        let path = path.to_owned();
        move |source| FetchError::Io {
            uri,
            action,
            path,
            source,
        }
    };
    let destination = sandbox.join(&uri.output);
    let directory = destination.parent().unwrap_or(sandbox);
    tokio::fs::create_dir_all(directory)
        .await
        .map_err(io_error("creating directory", directory))?;
    // Deleted when dropped, so a failed or cancelled fetch leaves no partial file behind.
    let temp = tempfile::Builder::new()
        .prefix(".deimos-fetch-")
        .tempfile_in(directory)
        .map_err(io_error("creating a temporary file in", directory))?;
    let (file, temp_path) = temp.into_parts();
    let mut out = tokio::fs::File::from_std(file);
    let size = match &uri.source {
        Source::Http(url) => {
            // fetch_all creates the client whenever there is an HTTP URI.
            let client = client.ok_or_else(|| FetchError::Client {
                uri: uri.shown.clone(),
                cause: "no HTTP client was created for this fetch".into(),
            })?;
            match options.cache.as_ref().filter(|_| uri.cache) {
                Some(cache) => {
                    let request = cache::Request {
                        shown: &uri.shown,
                        url,
                        user: options.user.as_deref(),
                        max_size: options.max_size,
                    };
                    cache::fill(cache, &request, client, &mut out, &temp_path).await?
                }
                None => {
                    let target = transfer::Target::new(&uri.shown, &temp_path, options.max_size);
                    transfer::download(client, url, &mut out, &target).await?
                }
            }
        }
        Source::Local(path) => {
            let target = transfer::Target::new(&uri.shown, &temp_path, options.max_size);
            transfer::copy_local(path, &options.local_files, &mut out, &target).await?
        }
    };
    drop(out);
    let mode = if uri.executable { 0o755 } else { 0o644 };
    tokio::fs::set_permissions(&temp_path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(io_error("setting the mode of", &temp_path))?;
    if let Some(owner) = options.owner {
        owner
            .apply(&temp_path)
            .map_err(io_error("changing the owner of", &temp_path))?;
    }
    temp_path
        .persist(&destination)
        .map_err(|e| io_error("renaming a temporary file to", &destination)(e.error))?;
    if let Some(kind) = uri.extract {
        extract_into(uri, &destination, kind, sandbox, options, deadline).await?;
    }
    Ok(FetchedFile {
        uri: uri.shown.clone(),
        path: destination,
        size,
        extracted: uri.extract,
    })
}

async fn extract_into(
    uri: &Planned,
    archive: &Path,
    kind: ArchiveKind,
    sandbox: &Path,
    options: &FetchOptions,
    deadline: Instant,
) -> Result<(), FetchError> {
    let (archive_owned, sandbox) = (archive.to_owned(), sandbox.to_owned());
    let (limit, owner) = (options.max_extracted_size, options.owner);
    let result = tokio::task::spawn_blocking(move || {
        let job = extract::Job {
            archive: &archive_owned,
            kind,
            deadline,
            limit,
            owner,
        };
        extract::extract_staged(&job, &sandbox)
    })
    .await;
    let (uri, archive) = (uri.shown.clone(), archive.to_owned());
    let timeout = options.timeout;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(extract::ExtractError::TimedOut)) => Err(FetchError::TimedOut { uri, timeout }),
        Ok(Err(extract::ExtractError::TooLarge)) => Err(FetchError::TooLarge {
            uri,
            what: "the unpacked archive",
            limit,
        }),
        Ok(Err(unsafe_entry @ extract::ExtractError::Unsafe { .. })) => {
            Err(FetchError::UnsafeArchiveEntry {
                uri,
                archive,
                reason: unsafe_entry.to_string(),
            })
        }
        Ok(Err(other)) => Err(FetchError::Extract {
            uri,
            archive,
            reason: other.to_string(),
        }),
        Err(join) => Err(FetchError::Extract {
            uri,
            archive,
            reason: join.to_string(),
        }),
    }
}
