//! Reading a task's output from a Mesos agent: the agent's `/files/read` endpoint, which
//! answers `{"data": "<text>", "offset": <n>}` for `path`, `offset` and `length`, and 404 for a
//! file it does not have (yet).

use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

/// How long one read from an agent may take.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The agent's answer.
#[derive(Debug, Deserialize)]
struct FileChunk {
    data: String,
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
            Ok(Bytes::from(chunk.data.into_bytes()))
        }
        reqwest::StatusCode::NOT_FOUND => Ok(Bytes::new()),
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
}
