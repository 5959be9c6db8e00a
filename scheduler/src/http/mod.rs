//! The HTTP layer: Eremetic's REST API (v1 and the deprecated v0) over a [`TaskService`],
//! plus server-sent events, followed logs, Prometheus metrics, authentication and TLS.
//!
//! [`router`] builds the axum router; [`serve`] runs it on a listener (plain or TLS) until a
//! shutdown signal. Differences from Eremetic, all deliberate:
//! - bad requests are 400 with an error document naming every invalid field (Eremetic: 422
//!   without validation, E-17); bodies over 1 MiB are 413 (E-31);
//! - unknown task ids are 404 everywhere (E-3); kill of a dead task and delete of a live one
//!   are 409 (Eremetic: 500 and, for delete, only exact `TASK_RUNNING`, E-24);
//! - with credentials configured every route but the version routes needs them, unknown paths
//!   included; 401s carry `WWW-Authenticate` (E-19);
//! - unknown paths answer a JSON error document, or an HTML page for browsers (E-20); a known path with another method
//!   answers 405 (Eremetic: 404);
//! - the log endpoints read the task's output files and can follow them (E-21).

mod agent_files;
mod auth;
mod cluster;
mod error;
mod events;
mod host;
mod logs;
mod openapi;
mod origin;
mod response;
mod routes;
mod serve;
mod tasks;
mod ui;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Extension, Request, State};
use axum::http::header::{HeaderValue, ACCEPT, LOCATION, VARY};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use origin::HostNames;
pub use serve::{load_tls, serve, TlsFiles};

use crate::metrics::Metrics;
use crate::service::TaskService;
use crate::task::MASK;
use error::ApiError;
use response::{with_content_type, TEXT_CONTENT_TYPE};
use serve::ConnectionInfo;

/// Settings of the HTTP layer. Its `Debug` output masks the password and the tokens.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpConfig {
    /// Eremetic's `url_prefix`: prepended to generated URLs (`Location`, redirects), not to
    /// routes; a proxy in front strips it.
    pub url_prefix: String,
    /// Basic credentials (`user`, `password`), Eremetic's `http_credentials`.
    pub basic: Option<(String, String)>,
    /// Accepted bearer tokens (empty strings are ignored).
    pub bearer_tokens: Vec<String>,
    /// The version `/api/v1/version` reports.
    pub version: String,
    /// The host names requests may be addressed to.
    pub host_names: HostNames,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("url_prefix", &self.url_prefix)
            .field("basic", &self.basic.as_ref().map(|(user, _)| (user, MASK)))
            .field("bearer_tokens", &vec![MASK; self.bearer_tokens.len()])
            .field("version", &self.version)
            .field("host_names", &self.host_names)
            .finish()
    }
}

/// Why the server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A TLS file could not be read.
    #[error("cannot read TLS file {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file is not valid PEM.
    #[error("TLS file {} is not valid PEM: {reason}", path.display())]
    InvalidPem {
        /// The file.
        path: PathBuf,
        /// The parser's description.
        reason: String,
    },
    /// The certificate file holds no certificate.
    #[error("TLS certificate file {} contains no CERTIFICATE block", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error(
        "TLS key file {} contains no private key (expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
        path.display()
    )]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the certificate and key (e.g. they do not match).
    #[error("TLS certificate {} and key {} are not usable: {source}", cert.display(), key.display())]
    TlsConfig {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The rustls error.
        #[source]
        source: tokio_rustls::rustls::Error,
    },
}

/// Which API a route belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiVersion {
    /// `/api/v1/...`.
    V1,
    /// The deprecated root routes (`/task...`).
    V0,
}

impl ApiVersion {
    /// The path of the task collection (`/api/v1/task`, `/task`).
    pub(crate) fn task_collection(self) -> &'static str {
        match self {
            ApiVersion::V1 => "/api/v1/task",
            ApiVersion::V0 => "/task",
        }
    }
}

/// Fixed settings the handlers read.
#[derive(Debug)]
pub(crate) struct Settings {
    /// Normalized `url_prefix`: empty, or `/` followed by segments, without a trailing `/`.
    pub(crate) url_prefix: String,
    /// The reported version.
    pub(crate) version: String,
}

/// The state every handler gets.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) service: Arc<dyn TaskService>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) settings: Arc<Settings>,
}

/// `url_prefix` as a path prefix: `eremetic/` → `/eremetic`, `/` → ``.
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// The API router: Eremetic's v1 and v0 routes, `/`, `/metrics`, `/api/v1/events`, with
/// authentication (when configured) and request metrics applied to every request.
pub fn router(service: Arc<dyn TaskService>, metrics: Arc<Metrics>, config: HttpConfig) -> Router {
    let authenticator = auth::Authenticator::new(config.basic.as_ref(), &config.bearer_tokens);
    let open = authenticator.is_none();
    let state = AppState {
        service,
        metrics: Arc::clone(&metrics),
        settings: Arc::new(Settings {
            url_prefix: normalize_prefix(&config.url_prefix),
            version: config.version,
        }),
    };
    let top = Router::new()
        .route("/", get(ui::index))
        .route("/metrics", get(render_metrics))
        .route("/api/v1/events", get(events::events))
        .route(openapi::OPENAPI_PATH, get(openapi::openapi_yaml))
        .merge(ui::routes())
        .method_not_allowed_fallback(method_not_allowed);
    let router = top
        .nest("/api/v1", api_routes(ApiVersion::V1))
        .merge(api_routes(ApiVersion::V0).layer(map_response(deprecated)))
        .fallback(not_found)
        .with_state(state);
    let router = match authenticator {
        Some(authenticator) => router.layer(from_fn_with_state(
            Arc::new(authenticator),
            auth::require_credentials,
        )),
        None => router,
    };
    // Outside authentication, so that a browser's 401 becomes an HTML page.
    let router = router.layer(axum::middleware::from_fn(ui::html_unauthorized));
    let guard = origin::Guard {
        names: config.host_names,
        open,
    };
    // Outermost but metrics: nothing may see a Host header that is not host[:port] (checked
    // first by this guard), nor a request another site's page made.
    let router = router.layer(from_fn_with_state(Arc::new(guard), origin::guard));
    router.layer(from_fn_with_state(metrics, routes::observe))
}

/// The routes v1 (nested under `/api/v1`) and v0 share.
fn api_routes(version: ApiVersion) -> Router<AppState> {
    Router::new()
        .route("/task", get(tasks::list).post(tasks::submit))
        .route("/task/{id}", get(ui::get_task).delete(tasks::delete))
        .route("/task/{id}/kill", axum::routing::post(tasks::kill))
        .route("/task/{id}/stdout", get(logs::stdout))
        .route("/task/{id}/stderr", get(logs::stderr))
        .route("/version", get(version_text))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(version))
}

/// Marks a v0 response as deprecated.
async fn deprecated(response: Response) -> Response {
    response::mark_deprecated(response)
}

/// `GET /api/v1/version`, `GET /version`: the version JSON-quoted in a `text/plain` body, as
/// Eremetic (E-23, kept for `hermit version` and scripts).
async fn version_text(State(state): State<AppState>) -> Response {
    let mut body = serde_json::Value::from(state.settings.version.as_str()).to_string();
    body.push('\n');
    with_content_type(StatusCode::OK, TEXT_CONTENT_TYPE, body.into())
}

/// `GET /metrics`: OpenMetrics for scrapers that prefer it, else the Prometheus text format
/// 0.0.4 (Eremetic's), see [`crate::metrics::exposition`].
async fn render_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(ACCEPT).and_then(|value| value.to_str().ok());
    let format = crate::metrics::negotiate(accept);
    let mut response = with_content_type(
        StatusCode::OK,
        format.content_type(),
        state.metrics.render_as(format).into(),
    );
    // Caches must not hand one scraper's format to another.
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("Accept"));
    response
}

/// A known path with a method it does not serve.
async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::refused(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on this path"),
        "Method not allowed",
    )
}

/// Unknown paths: a path that is not in its clean form (repeated slashes, `.` or `..`
/// segments, trailing slashes) is redirected to its clean form, as Eremetic's router does
/// (gorilla/mux cleans every path and has `StrictSlash` on); anything else is a 404 error
/// document. A client whose base URL ends in `/` sends `//api/v1/task`, and gets there.
///
/// GET and HEAD get Eremetic's 301. Other methods get 308, which keeps the method and body:
/// clients answer a 301 to a POST by sending a GET without the body (Go's client, which
/// Eremetic's hermit uses, does), so a submission would silently become a task listing.
async fn not_found(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    if let Some(target) = clean_path(request.uri().path()) {
        let query = request
            .uri()
            .query()
            .map(|query| format!("?{query}"))
            .unwrap_or_default();
        let location = format!("{}{target}{query}", state.settings.url_prefix);
        if let Ok(value) = HeaderValue::from_str(&location) {
            let status = match *request.method() {
                Method::GET | Method::HEAD => StatusCode::MOVED_PERMANENTLY,
                _ => StatusCode::PERMANENT_REDIRECT,
            };
            return Ok((status, [(LOCATION, value)]).into_response());
        }
    }
    if ui::wants_html(request.headers()) {
        let what = format!("There is no page at {}.", request.uri().path());
        return Err(ApiError::refused(StatusCode::NOT_FOUND, what, "Not found")
            .in_form(ui::page_form(&state)));
    }
    Err(ApiError::refused(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", request.method(), request.uri().path()),
        "Not found",
    ))
}

/// The clean form of `path` when it differs, `None` when `path` is clean: repeated slashes
/// collapsed, `.` segments dropped, `..` segments applied (never above the root), trailing
/// slashes removed (except for `/` itself). Go's `path.Clean`, which gorilla/mux applies, plus
/// its `StrictSlash`. The result always starts with exactly one `/`, so it can never be taken
/// for a protocol-relative URL (`//other.host/`).
pub(crate) fn clean_path(path: &str) -> Option<String> {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let clean = format!("/{}", segments.join("/"));
    if clean == path || clean.contains('\\') {
        return None;
    }
    Some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_masks_credentials() {
        let config = HttpConfig {
            basic: Some(("admin".into(), "p4ssw0rd".into())),
            bearer_tokens: vec!["t0ken".into()],
            ..HttpConfig::default()
        };
        let text = format!("{config:?}");
        assert!(text.contains("admin"), "{text}");
        assert!(
            !text.contains("p4ssw0rd") && !text.contains("t0ken"),
            "{text}"
        );
    }

    #[test]
    fn url_prefix_is_normalized_to_a_path_prefix() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("eremetic/"), "/eremetic");
        assert_eq!(normalize_prefix("/a/b"), "/a/b");
    }

    #[test]
    fn unclean_paths_redirect_to_their_clean_form() {
        assert_eq!(clean_path("/api/v1/task/").as_deref(), Some("/api/v1/task"));
        assert_eq!(clean_path("/task//").as_deref(), Some("/task"));
        assert_eq!(clean_path("//api/v1/task").as_deref(), Some("/api/v1/task"));
        assert_eq!(
            clean_path("/api//v1///task/x/kill").as_deref(),
            Some("/api/v1/task/x/kill")
        );
        assert_eq!(clean_path("/a/./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(clean_path("/../../etc").as_deref(), Some("/etc"));
        assert_eq!(clean_path("///").as_deref(), Some("/"));
        assert_eq!(
            clean_path("//evil.example/").as_deref(),
            Some("/evil.example")
        );
        assert_eq!(clean_path("/"), None);
        assert_eq!(clean_path("/task"), None);
        assert_eq!(clean_path("/a\\b/"), None);
    }
}
