//! Reading a task's output from a Mesos agent: the agent's `/files/read` endpoint, which
//! answers `{"data": "<text>", "offset": <n>}` for `path`, `offset` and `length`, and 404 for a
//! file it does not have (yet). With `offset=-1` it answers the file's size as `offset`.
//!
//! The agent writes the file's bytes into the JSON string as they are (stout escapes only
//! quotes, backslashes and control characters), so a chunk that ends inside a multi-byte
//! character, or output that is not UTF-8 at all, is not valid UTF-8: `data` is read as raw
//! bytes, and offsets count those bytes.

use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use serde::de::{Deserializer, Visitor};
use serde::Deserialize;

/// How long one read from an agent may take.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The agent's answer.
#[derive(Debug, Deserialize)]
struct FileChunk {
    #[serde(deserialize_with = "raw_bytes")]
    data: Vec<u8>,
    /// The offset read from (with `offset=-1`: the file's size).
    offset: Option<u64>,
}

/// A JSON string as the bytes it holds, escapes decoded, UTF-8 or not.
fn raw_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct RawBytes;
    impl Visitor<'_> for RawBytes {
        type Value = Vec<u8>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a string")
        }

        fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_str<E>(self, text: &str) -> Result<Vec<u8>, E> {
            Ok(text.as_bytes().to_vec())
        }
    }
    deserializer.deserialize_bytes(RawBytes)
}

fn client() -> io::Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let built = reqwest::Client::builder()
        .timeout(READ_TIMEOUT)
        .build()
        .map_err(|error| io::Error::other(format!("building the agent files client: {error}")))?;
    Ok(CLIENT.get_or_init(|| built))
}

/// `path` percent-encoded for a query (slashes kept, as the agent's own UI sends them).
fn encode(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                encoded.push(char::from(byte));
            }
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

/// Up to `length` bytes of `path` on the agent at `url` from `offset`; empty at its end or
/// while the agent does not have the file yet.
pub(crate) async fn read(url: &str, path: &str, offset: u64, length: usize) -> io::Result<Bytes> {
    let chunk = request(url, path, &offset.to_string(), length).await?;
    Ok(chunk.map_or_else(Bytes::new, |chunk| Bytes::from(chunk.data)))
}

/// The size of `path` on the agent at `url`; 0 while the agent does not have it yet.
pub(crate) async fn size(url: &str, path: &str) -> io::Result<u64> {
    let chunk = request(url, path, "-1", 0).await?;
    Ok(chunk.and_then(|chunk| chunk.offset).unwrap_or(0))
}

/// The last `limit` bytes of `path` on the agent at `url`, and the file's size.
pub(crate) async fn read_tail(url: &str, path: &str, limit: u64) -> io::Result<(Vec<u8>, u64)> {
    let total = size(url, path).await?;
    let mut offset = total.saturating_sub(limit);
    let mut bytes = Vec::new();
    // An agent may answer less than asked: read on until the size known at the start.
    while offset < total {
        let wanted = usize::try_from(total - offset).unwrap_or(usize::MAX);
        let chunk = read(url, path, offset, wanted).await?;
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        bytes.extend_from_slice(&chunk);
    }
    Ok((bytes, total))
}

/// One `/files/read` request; `None` for a file the agent does not have (yet).
async fn request(
    url: &str,
    path: &str,
    offset: &str,
    length: usize,
) -> io::Result<Option<FileChunk>> {
    let address = format!(
        "{}/files/read?path={}&offset={offset}&length={length}",
        url.trim_end_matches('/'),
        encode(path)
    );
    let failed =
        |what: String| io::Error::other(format!("reading {path} from the agent {url}: {what}"));
    let response = client()?
        .get(&address)
        .send()
        .await
        .map_err(|error| failed(error.to_string()))?;
    match response.status() {
        reqwest::StatusCode::OK => {
            let body = response
                .bytes()
                .await
                .map_err(|error| failed(error.to_string()))?;
            let chunk: FileChunk = serde_json::from_slice(&body)
                .map_err(|error| failed(format!("unreadable answer: {error}")))?;
            Ok(Some(chunk))
        }
        reqwest::StatusCode::NOT_FOUND => Ok(None),
        status => Err(failed(format!("the agent answered {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_their_slashes_and_escape_the_rest() {
        assert_eq!(
            encode("/frameworks/f-1/executors/t.0/runs/latest/stdout"),
            "/frameworks/f-1/executors/t.0/runs/latest/stdout"
        );
        assert_eq!(encode("/a b&c"), "/a%20b%26c");
    }

    #[test]
    fn data_is_read_as_the_bytes_the_agent_wrote_utf8_or_not() {
        // "é" is C3 A9: a chunk ending after C3 holds half a character.
        let answer = b"{\"data\":\"caf\xc3\",\"offset\":0}";
        let chunk: FileChunk = serde_json::from_slice(answer).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(chunk.data, b"caf\xc3");
        let escaped = br#"{"data":"a\"b\n\u0001","offset":7}"#;
        let chunk: FileChunk = serde_json::from_slice(escaped).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(chunk.data, b"a\"b\n\x01");
        assert_eq!(chunk.offset, Some(7));
    }
}
