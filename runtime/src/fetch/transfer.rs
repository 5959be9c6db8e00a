//! Streaming a URI's content into an open file: HTTP(S) downloads and local copies.

use std::error::Error as _;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use super::FetchError;
use crate::hostpath::AllowedPaths;

/// Builds the HTTP client shared by the downloads of one fetch.
pub(super) fn http_client(options: &super::FetchOptions) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .user_agent(concat!("deimos/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| error_chain(&error))
}

/// Where one URI's content goes and how much of it is allowed.
pub(super) struct Target<'a> {
    /// The URI as shown.
    shown: &'a str,
    /// The temporary file being written.
    path: &'a Path,
    /// The largest size allowed.
    limit: u64,
}

impl<'a> Target<'a> {
    pub(super) fn new(shown: &'a str, path: &'a Path, limit: u64) -> Self {
        Self { shown, path, limit }
    }

    fn too_large(&self, what: &'static str) -> FetchError {
        FetchError::TooLarge {
            uri: self.shown.to_owned(),
            what,
            limit: self.limit,
        }
    }

    fn write_error(&self, source: std::io::Error) -> FetchError {
        FetchError::Io {
            uri: self.shown.to_owned(),
            action: "writing",
            path: self.path.to_owned(),
            source,
        }
    }
}

/// Downloads `url` into `out`, chunk by chunk; returns the number of bytes written. A body
/// larger than the target's limit (announced or actual) is refused.
pub(super) async fn download(
    client: &reqwest::Client,
    url: &Url,
    out: &mut tokio::fs::File,
    target: &Target<'_>,
) -> Result<u64, FetchError> {
    let shown = target.shown;
    let transfer_error = |error: reqwest::Error| FetchError::Transfer {
        uri: shown.to_owned(),
        // The URL may carry credentials; the error names the URI in its shown form instead.
        cause: error_chain(&error.without_url()),
    };
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(transfer_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::HttpStatus {
            uri: shown.to_owned(),
            status: status.as_u16(),
        });
    }
    if response
        .content_length()
        .is_some_and(|length| length > target.limit)
    {
        return Err(target.too_large("the download"));
    }
    let mut body = response.bytes_stream();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(transfer_error)?;
        size += chunk.len() as u64;
        if size > target.limit {
            return Err(target.too_large("the download"));
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| target.write_error(e))?;
    }
    flush(out, target).await?;
    Ok(size)
}

/// Copies the local regular file `source_path` into `out` when it is allowed; returns the
/// number of bytes copied.
///
/// The file is opened first and the path it was actually opened at (the kernel's view of the
/// open descriptor) is what gets checked against `allowed`, so a link swapped in after the
/// request was checked cannot redirect the copy. Opening does not block on a FIFO, and
/// anything but a regular file is refused.
pub(super) async fn copy_local(
    source_path: &Path,
    allowed: &AllowedPaths,
    out: &mut tokio::fs::File,
    target: &Target<'_>,
) -> Result<u64, FetchError> {
    let shown = target.shown;
    let io_error = |action, source| FetchError::Io {
        uri: shown.to_owned(),
        action,
        path: source_path.to_owned(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(source_path)
        .map_err(|e| io_error("opening", e))?;
    let opened_at = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| io_error("resolving", e))?;
    allowed
        .check_resolved(source_path, &opened_at)
        .map_err(|reason| FetchError::LocalFileRefused {
            uri: shown.to_owned(),
            reason,
        })?;
    let metadata = file.metadata().map_err(|e| io_error("reading", e))?;
    if !metadata.is_file() {
        return Err(FetchError::InvalidUri {
            uri: shown.to_owned(),
            reason: format!("{} is not a regular file", source_path.display()),
        });
    }
    if metadata.len() > target.limit {
        return Err(target.too_large("the file"));
    }
    let source = tokio::fs::File::from_std(file);
    // The file may grow while it is copied: never copy more than the limit (+1 to notice).
    let size = tokio::io::copy(&mut source.take(target.limit + 1), out)
        .await
        .map_err(|e| io_error("copying", e))?;
    if size > target.limit {
        return Err(target.too_large("the file"));
    }
    flush(out, target).await?;
    Ok(size)
}

/// Waits until every write has reached the file (tokio writes in the background).
async fn flush(out: &mut tokio::fs::File, target: &Target<'_>) -> Result<(), FetchError> {
    out.flush().await.map_err(|e| target.write_error(e))
}

/// An error and its causes, `: `-separated (reqwest's own message alone says little, e.g.
/// "error sending request"; the cause says "Connection refused").
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
