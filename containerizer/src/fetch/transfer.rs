//! Streaming a URI's content into an open file: HTTP(S) downloads and local copies.

use std::error::Error as _;
use std::path::Path;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use url::Url;

use super::FetchError;

/// Builds the HTTP client shared by the downloads of one fetch.
pub(super) fn http_client(options: &super::FetchOptions) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .user_agent(concat!("deimos/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| error_chain(&error))
}

/// Downloads `url` into `out`, chunk by chunk; returns the number of bytes written.
pub(super) async fn download(
    client: &reqwest::Client,
    url: &Url,
    shown: &str,
    out: &mut tokio::fs::File,
    out_path: &Path,
) -> Result<u64, FetchError> {
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
    let mut body = response.bytes_stream();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(transfer_error)?;
        out.write_all(&chunk)
            .await
            .map_err(|source| FetchError::Io {
                uri: shown.to_owned(),
                action: "writing",
                path: out_path.to_owned(),
                source,
            })?;
        size += chunk.len() as u64;
    }
    flush(out, shown, out_path).await?;
    Ok(size)
}

/// Copies the local regular file `source_path` into `out`; returns the number of bytes copied.
pub(super) async fn copy_local(
    source_path: &Path,
    shown: &str,
    out: &mut tokio::fs::File,
    out_path: &Path,
) -> Result<u64, FetchError> {
    let io_error = |action, source| FetchError::Io {
        uri: shown.to_owned(),
        action,
        path: source_path.to_owned(),
        source,
    };
    let mut source = tokio::fs::File::open(source_path)
        .await
        .map_err(|e| io_error("opening", e))?;
    let metadata = source
        .metadata()
        .await
        .map_err(|e| io_error("reading", e))?;
    if !metadata.is_file() {
        return Err(FetchError::InvalidUri {
            uri: shown.to_owned(),
            reason: format!("{} is not a regular file", source_path.display()),
        });
    }
    let size = tokio::io::copy(&mut source, out)
        .await
        .map_err(|e| io_error("copying", e))?;
    flush(out, shown, out_path).await?;
    Ok(size)
}

/// Waits until every write has reached the file (tokio writes in the background).
async fn flush(out: &mut tokio::fs::File, shown: &str, out_path: &Path) -> Result<(), FetchError> {
    out.flush().await.map_err(|source| FetchError::Io {
        uri: shown.to_owned(),
        action: "writing",
        path: out_path.to_owned(),
        source,
    })
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
