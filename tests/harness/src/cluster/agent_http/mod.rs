//! The HTTP endpoints of a harness agent on `127.0.0.1:<ephemeral port>`,
//! answered from its [`AgentBook`] as a Mesos agent answers them:
//! `/state` (also `/state.json`, `/slave(1)/state`, `/slave(1)/state.json`),
//! `/files/read`, `/files/download` and `/files/browse` (the `files`
//! process has no `/slave(1)` prefix).
//!
//! Sandboxes are reachable under their absolute paths; agents of version
//! 1.4 and later also attach `<runs>/latest`, and from 1.5 the virtual
//! `/frameworks/<framework>/executors/<executor>/runs/latest`
//! ([`AgentEndpoints::start`]'s `version`). Errors are the agent's
//! (`src/files/files.cpp`): 400 for a missing `path`, an unparsable or
//! negative `offset`/`length`, a directory read or downloaded, or a path
//! escaping its attached directory; 404 (empty body) for anything not
//! attached or missing. The agent here has no authorizer, so 403 never
//! occurs. `jsonp=<callback>` wraps JSON answers as libprocess does, and
//! JSON bodies of 1 KiB or more are gzipped for clients whose
//! `Accept-Encoding` takes gzip (downloads never are).

mod files;
mod state;
mod version;

pub use version::Version;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCEPT_ENCODING, CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_TYPE,
};
use hyper::{Request, Response, StatusCode};

use crate::cluster::sandbox::AgentBook;
use crate::common::http::{empty_response, text_response, Body, ServerHandle};
use crate::error::HarnessError;
use files::FilesError;
use state::AgentIdentity;

/// The default agent version (`MasterSetup`'s too).
pub const DEFAULT_AGENT_VERSION: &str = "1.12.0";

struct Agent {
    book: AgentBook,
    identity: AgentIdentity,
    version: Version,
}

/// A running agent HTTP server.
#[derive(Debug)]
pub struct AgentEndpoints {
    address: SocketAddr,
    server: Option<ServerHandle>,
}

impl AgentEndpoints {
    /// Serves the endpoints of the agent whose book is `book`, calling
    /// itself `hostname` and `version` (e.g. `1.12.0`; refused with the
    /// reason unless it is `major.minor[.patch]`).
    pub async fn start(
        book: AgentBook,
        hostname: &str,
        version: &str,
    ) -> Result<AgentEndpoints, HarnessError> {
        let parsed = Version::parse(version).map_err(|reason| HarnessError::InvalidSetting {
            setting: "agent version",
            reason,
        })?;
        let wildcard = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = crate::common::http::bind(wildcard)?;
        let address = listener.local_addr().map_err(|source| HarnessError::Bind {
            address: wildcard,
            source,
        })?;
        let agent = Arc::new(Agent {
            book,
            identity: AgentIdentity {
                hostname: hostname.to_owned(),
                address,
                version: version.to_owned(),
            },
            version: parsed,
        });
        let server = crate::common::http::serve(listener, move |request| {
            let agent = Arc::clone(&agent);
            async move { handle(&agent, &request) }
        });
        Ok(AgentEndpoints {
            address,
            server: Some(server),
        })
    }

    /// `127.0.0.1:<port>`.
    pub fn endpoint(&self) -> SocketAddr {
        self.address
    }

    /// The port (the agent's `AgentSpec.port`, so offers' `url` point here).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops serving and waits until the port is closed.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

fn handle(agent: &Agent, request: &Request<Incoming>) -> Response<Body> {
    let query = parse_query(request.uri().query().unwrap_or(""));
    let jsonp = query.get("jsonp").cloned();
    let gzip = request
        .headers()
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accepts_encoding(accept, "gzip"));
    let json = |document: &serde_json::Value| json_response(document, jsonp.as_deref(), gzip);
    match request.uri().path() {
        "/state" | "/state.json" | "/slave(1)/state" | "/slave(1)/state.json" => {
            json(&state::state(&agent.book, &agent.identity))
        }
        "/files/read" => read(agent, &query, json),
        // A file response (libprocess' PATH type): never compressed.
        "/files/download" => download(agent, &query),
        "/files/browse" => browse(agent, &query, json),
        _ => empty_response(StatusCode::NOT_FOUND),
    }
}

/// libprocess' `Request::acceptsEncoding`: listed (or `*`) without a zero
/// q value; no or an empty `Accept-Encoding` accepts only identity.
fn accepts_encoding(accept: &str, encoding: &str) -> bool {
    let accept: String = accept
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n'))
        .collect();
    for candidate in [encoding, "*"] {
        for coding in accept.split(',').filter(|c| !c.is_empty()) {
            let mut parts = coding.split(';').filter(|p| !p.is_empty());
            let Some(name) = parts.next() else { continue };
            if !name.eq_ignore_ascii_case(candidate) {
                continue;
            }
            let q: Vec<&str> = parts.filter_map(|p| p.strip_prefix("q=")).collect();
            return match q.as_slice() {
                [value] => value.parse::<f64>().is_ok_and(|q| q > 0.0),
                // No q value, or a malformed one.
                _ => true,
            };
        }
    }
    false
}

fn attachments(agent: &Agent) -> BTreeMap<String, std::path::PathBuf> {
    files::attachments(&agent.book, agent.version)
}

fn read(
    agent: &Agent,
    query: &BTreeMap<String, String>,
    json: impl Fn(&serde_json::Value) -> Response<Body>,
) -> Response<Body> {
    let request = match files::parse_read(query) {
        Ok(request) => request,
        Err(message) => return text_response(StatusCode::BAD_REQUEST, message),
    };
    match files::read(&attachments(agent), &request) {
        Ok(document) => json(&document),
        Err(error) => files_error(error),
    }
}

fn download(agent: &Agent, query: &BTreeMap<String, String>) -> Response<Body> {
    let path = match files::required_path(query) {
        Ok(path) => path,
        Err(message) => return text_response(StatusCode::BAD_REQUEST, message),
    };
    let real = match files::download(&attachments(agent), &path) {
        Ok(real) => real,
        Err(error) => return files_error(error),
    };
    let content = match std::fs::read(&real) {
        Ok(content) => content,
        // Gone between the check and the read.
        Err(_) => return empty_response(StatusCode::NOT_FOUND),
    };
    let mut response = Response::new(Full::new(Bytes::from(content)).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(files::content_type(&real)),
    );
    let basename = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename={basename}")) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    response
}

fn browse(
    agent: &Agent,
    query: &BTreeMap<String, String>,
    json: impl Fn(&serde_json::Value) -> Response<Body>,
) -> Response<Body> {
    let path = match files::required_path(query) {
        Ok(path) => path,
        Err(message) => return text_response(StatusCode::BAD_REQUEST, message),
    };
    match files::browse(&attachments(agent), &path) {
        Ok(listing) => json(&listing),
        Err(error) => files_error(error),
    }
}

fn files_error(error: FilesError) -> Response<Body> {
    match error {
        FilesError::Invalid(message) => text_response(StatusCode::BAD_REQUEST, message),
        FilesError::NotFound => empty_response(StatusCode::NOT_FOUND),
        FilesError::Unknown(message) => text_response(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

/// The size from which libprocess gzips a body (`GZIP_MINIMUM_BODY_LENGTH`).
const GZIP_MINIMUM_BODY_LENGTH: usize = 1024;

/// 200 with JSON, or with `callback(<json>);` as `text/javascript` when a
/// `jsonp` callback is given (libprocess' `OK(json, jsonp)`); gzipped
/// (`Content-Encoding: gzip`) from 1 KiB when the client accepts it.
fn json_response(document: &serde_json::Value, jsonp: Option<&str>, gzip: bool) -> Response<Body> {
    let (body, content_type) = match jsonp {
        Some(callback) => (format!("{callback}({document});"), "text/javascript"),
        None => (document.to_string(), "application/json"),
    };
    let compressed = (gzip && body.len() >= GZIP_MINIMUM_BODY_LENGTH)
        .then(|| compress(body.as_bytes()))
        .and_then(Result::ok);
    let encoded = compressed.is_some();
    let bytes = compressed.map_or_else(|| Bytes::from(body), Bytes::from);
    let mut response = Response::new(Full::new(bytes).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if encoded {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn compress(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body)?;
    encoder.finish()
}

/// `a=1&b=x%2Fy` → map, percent- and `+`-decoded (libprocess'
/// `query::decode`; a later key wins).
fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        decoded.push(byte);
                        i += 2;
                    }
                    Err(_) => decoded.push(b'%'),
                }
            }
            byte => decoded.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_accepted_when_listed_or_starred_without_a_zero_q() {
        assert!(accepts_encoding("gzip, deflate", "gzip"));
        assert!(accepts_encoding("GZIP;q=0.5", "gzip"));
        assert!(accepts_encoding("deflate, *", "gzip"));
        assert!(!accepts_encoding("gzip;q=0", "gzip"));
        assert!(!accepts_encoding("deflate", "gzip"));
        assert!(!accepts_encoding("", "gzip"));
    }

    #[test]
    fn query_values_are_percent_and_plus_decoded() {
        let query = parse_query("path=%2Ftmp%2Fa+b&offset=-1&flag");
        assert_eq!(query["path"], "/tmp/a b");
        assert_eq!(query["offset"], "-1");
        assert_eq!(query["flag"], "");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }
}
