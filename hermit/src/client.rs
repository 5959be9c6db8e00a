//! The HTTP side of `hermit`: settings from the environment, credentials, and the client that
//! turns every answer into a value or a [`HermitError`].

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::error::HermitError;

/// The server when `EREMETIC_URL` is unset or empty (Eremetic's hermit assumed port 8000; the
/// eremetic service listens on 8080).
pub const DEFAULT_URL: &str = "http://localhost:8080";

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request that does not stream may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How `hermit` authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// HTTP Basic.
    Basic {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Bearer(_) => f.write_str("Bearer(*******)"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user}:*******)"),
        }
    }
}

impl Credentials {
    /// The `Authorization` header value, if any.
    pub fn header(&self) -> Option<String> {
        match self {
            Credentials::None => None,
            Credentials::Bearer(token) => Some(format!("Bearer {token}")),
            Credentials::Basic { user, password } => {
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {encoded}"))
            }
        }
    }
}

/// Where and how to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The server's base URL, without credentials and without a trailing `/`.
    pub base: Url,
    /// Skip TLS certificate verification (`HERMIT_INSECURE`).
    pub insecure: bool,
    /// The credentials.
    pub credentials: Credentials,
}

impl Settings {
    /// Reads `EREMETIC_URL`, `HERMIT_INSECURE`, `EREMETIC_TOKEN`, `EREMETIC_USER`,
    /// `EREMETIC_PASSWORD` through `var` (empty values count as unset). A token wins over
    /// `EREMETIC_USER`/`EREMETIC_PASSWORD`, which win over `user:password@` in the URL.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Settings, HermitError> {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        let text = var("EREMETIC_URL").unwrap_or_else(|| DEFAULT_URL.to_owned());
        let bad = |reason: &str| HermitError::BadUrl {
            url: redact(&text),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(&text).map_err(|error| bad(&error.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(bad("expected http://host[:port][/prefix] or https://..."));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad("a query or fragment is not allowed"));
        }
        let from_url = (!base.username().is_empty()).then(|| Credentials::Basic {
            user: percent_decode(base.username()),
            password: base.password().map(percent_decode).unwrap_or_default(),
        });
        // Cannot fail for http(s) URLs with a host, checked above.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let path = base.path().trim_end_matches('/').to_owned();
        base.set_path(&path);
        let credentials = match (var("EREMETIC_TOKEN"), var("EREMETIC_USER")) {
            (Some(token), _) => Credentials::Bearer(token),
            (None, Some(user)) => {
                let password = var("EREMETIC_PASSWORD").ok_or_else(|| {
                    HermitError::Usage("EREMETIC_USER is set but EREMETIC_PASSWORD is not".into())
                })?;
                Credentials::Basic { user, password }
            }
            (None, None) => from_url.unwrap_or(Credentials::None),
        };
        Ok(Settings {
            base,
            insecure: var("HERMIT_INSECURE").is_some(),
            credentials,
        })
    }

    /// The URL of an API path: the base (with its path prefix) followed by `segments`, each
    /// percent-encoded (a task id cannot escape its segment).
    pub fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }
}

/// `text` with any `user:password@` removed, for messages.
fn redact(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => text.to_owned(),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The message of an error answer: an error document's `message: error`, a JSON string, or the
/// (short) raw text; empty bodies and `null` give the status text.
pub(super) fn error_detail(status: StatusCode, body: &[u8]) -> String {
    let fallback = || {
        status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_owned()
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(document)) => {
            let text = |key: &str| document.get(key).and_then(Value::as_str).unwrap_or("");
            match (text("message"), text("error")) {
                ("", "") => fallback(),
                (message, "") => message.to_owned(),
                ("", error) => error.to_owned(),
                (message, error) => format!("{message}: {error}"),
            }
        }
        Ok(Value::String(text)) if !text.is_empty() => text,
        Ok(_) => fallback(),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                fallback()
            } else {
                text.chars().take(300).collect()
            }
        }
    }
}

/// The error of a non-success answer to `what`.
pub(super) fn status_error(
    what: &str,
    status: StatusCode,
    body: &[u8],
    credentials: &Credentials,
) -> HermitError {
    let detail = error_detail(status, body);
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            let hint = match credentials {
                Credentials::None => "; set EREMETIC_TOKEN, or EREMETIC_USER and EREMETIC_PASSWORD",
                _ => "; check EREMETIC_TOKEN / EREMETIC_USER / EREMETIC_PASSWORD",
            };
            HermitError::Unauthorized {
                what: what.to_owned(),
                status: status.as_u16(),
                detail: format!("{detail}{hint}"),
            }
        }
        StatusCode::NOT_FOUND => HermitError::NotFound {
            what: what.to_owned(),
            detail,
        },
        _ => HermitError::Server {
            what: what.to_owned(),
            status: status.as_u16(),
            detail,
        },
    }
}

/// A reqwest error's causes on one line; reqwest's own top message ("error sending request
/// for url (...)") is left out when there are causes, as the URL is already named.
fn causes(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    }
}

/// The HTTP client.
#[derive(Debug, Clone)]
pub struct Client {
    settings: Settings,
    http: reqwest::Client,
}

/// A successful answer whose body has not been read yet.
pub struct Answer {
    /// The operation, for messages.
    pub what: String,
    /// The status.
    pub status: StatusCode,
    response: reqwest::Response,
}

impl Client {
    /// A client for `settings`.
    pub fn new(settings: Settings) -> Result<Client, HermitError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .danger_accept_invalid_certs(settings.insecure)
            .user_agent(concat!("hermit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| HermitError::Unreachable {
                url: settings.base.to_string(),
                reason: format!("cannot set up the HTTP client: {}", causes(&error)),
            })?;
        Ok(Client { settings, http })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Sends `method` to the API path `segments` with an optional JSON `body` (and `query`);
    /// returns the answer if its status is a success, the mapped error otherwise. Streaming
    /// requests (`stream`) have no overall timeout.
    pub async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
        stream: bool,
    ) -> Result<Answer, HermitError> {
        let mut url = self.settings.endpoint(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let what = format!("{method} {}", url.path());
        let mut request = self.http.request(method, url.clone());
        if !stream {
            request = request.timeout(REQUEST_TIMEOUT);
        }
        if let Some(header) = self.settings.credentials.header() {
            request = request.header(reqwest::header::AUTHORIZATION, header);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|error| {
            if error.is_connect() || error.is_timeout() {
                HermitError::Unreachable {
                    url: url.to_string(),
                    reason: causes(&error),
                }
            } else {
                HermitError::Transport {
                    what: what.clone(),
                    reason: causes(&error),
                }
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(status_error(
                &what,
                status,
                &body,
                &self.settings.credentials,
            ));
        }
        Ok(Answer {
            what,
            status,
            response,
        })
    }

    /// `GET` of a JSON document.
    pub async fn get_json(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Value, HermitError> {
        self.send(Method::GET, segments, query, None, false)
            .await?
            .json()
            .await
    }
}

impl Answer {
    /// The whole body.
    pub async fn bytes(self) -> Result<Vec<u8>, HermitError> {
        let what = self.what;
        self.response
            .bytes()
            .await
            .map(|bytes| bytes.to_vec())
            .map_err(|error| HermitError::Transport {
                what,
                reason: causes(&error),
            })
    }

    /// The body as JSON.
    pub async fn json(self) -> Result<Value, HermitError> {
        let what = self.what.clone();
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|error| HermitError::BadResponse {
            what,
            reason: format!("the body is not JSON: {error}"),
        })
    }

    /// The next chunk of a streamed body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, HermitError> {
        self.response
            .chunk()
            .await
            .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
            .map_err(|error| HermitError::Transport {
                what: self.what.clone(),
                reason: causes(&error),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, HermitError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_env(|name| vars.get(name).cloned())
    }

    #[test]
    fn default_url_is_port_8080_without_credentials() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.base.as_str(), "http://localhost:8080/");
        assert_eq!(settings.credentials, Credentials::None);
        assert!(!settings.insecure);
        assert_eq!(
            settings.endpoint(&["api", "v1", "task"]).as_str(),
            "http://localhost:8080/api/v1/task"
        );
    }

    #[test]
    fn url_prefix_is_kept_and_ids_are_encoded() {
        let settings = settings(&[
            ("EREMETIC_URL", "https://h:9/eremetic/"),
            ("HERMIT_INSECURE", "1"),
        ])
        .unwrap();
        assert!(settings.insecure);
        assert_eq!(
            settings.endpoint(&["api", "v1", "task", "a/b?c"]).as_str(),
            "https://h:9/eremetic/api/v1/task/a%2Fb%3Fc"
        );
    }

    #[test]
    fn credentials_come_from_token_then_user_then_url() {
        let url = ("EREMETIC_URL", "http://u%40x:p%3Aw@h:1");
        let from_url = settings(&[url]).unwrap();
        assert_eq!(
            from_url.credentials,
            Credentials::Basic {
                user: "u@x".into(),
                password: "p:w".into()
            }
        );
        assert_eq!(from_url.base.as_str(), "http://h:1/");
        let user = settings(&[url, ("EREMETIC_USER", "a"), ("EREMETIC_PASSWORD", "b")]).unwrap();
        assert_eq!(user.credentials.header().unwrap(), "Basic YTpi");
        let token = settings(&[url, ("EREMETIC_TOKEN", "tok3n"), ("EREMETIC_USER", "a")]).unwrap();
        assert_eq!(token.credentials.header().unwrap(), "Bearer tok3n");
        assert!(!format!("{:?}", token.credentials).contains("tok3n"));
    }

    #[test]
    fn bad_environment_is_a_usage_error() {
        for vars in [
            vec![("EREMETIC_URL", "localhost:8080")],
            vec![("EREMETIC_URL", "ftp://h")],
            vec![("EREMETIC_URL", "http://h/?q=1")],
            vec![("EREMETIC_USER", "a")],
        ] {
            let error = settings(&vars).unwrap_err();
            assert_eq!(
                error.exit_code(),
                super::super::error::EXIT_USAGE,
                "{error}"
            );
        }
        let error = settings(&[("EREMETIC_URL", "ftp://u:secret@h")]).unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn error_details_prefer_the_server_message() {
        let status = StatusCode::BAD_REQUEST;
        let doc = br#"{"error":"cpu: must be greater than 0","message":"Unable to parse body into a valid request."}"#;
        assert_eq!(
            error_detail(status, doc),
            "Unable to parse body into a valid request.: cpu: must be greater than 0"
        );
        assert_eq!(
            error_detail(StatusCode::CONFLICT, br#""already dead""#),
            "already dead"
        );
        assert_eq!(error_detail(StatusCode::NOT_FOUND, b"null"), "Not Found");
        assert_eq!(error_detail(StatusCode::BAD_GATEWAY, b" oops \n"), "oops");
    }

    #[test]
    fn statuses_map_to_error_kinds() {
        let none = Credentials::None;
        let refused = status_error("GET /x", StatusCode::UNAUTHORIZED, b"", &none);
        assert!(matches!(
            refused,
            HermitError::Unauthorized { status: 401, .. }
        ));
        assert!(refused.to_string().contains("EREMETIC_TOKEN"), "{refused}");
        let missing = status_error("GET /x", StatusCode::NOT_FOUND, b"", &none);
        assert!(matches!(missing, HermitError::NotFound { .. }));
        let other = status_error("GET /x", StatusCode::SERVICE_UNAVAILABLE, b"", &none);
        assert!(matches!(other, HermitError::Server { status: 503, .. }));
    }
}
