//! The web UI, served by the scheduler itself (issue #5): server-rendered pages built with an
//! escaping HTML builder ([`html`]), embedded assets ([`assets`]) and a little plain
//! JavaScript for the form, live updates from `/api/v1/events` and log follow.
//!
//! Routes (all behind the API's authentication):
//! - `GET /` with `Accept: text/html`: launch form and task list (`?state=&name=` filter);
//!   other clients keep Eremetic's 204.
//! - `GET /task/{id}` with `Accept: text/html` (v0, as Eremetic) and `GET /web/task/{id}`:
//!   the task page; an unknown id is an HTML 404 naming it (E-20).
//! - `GET /web/task/{id}/usage`: the task's resource usage as JSON, for the task page.
//! - `GET /cluster` with `Accept: text/html`: backend, capacity, free resources, queue depth,
//!   the engine's settings or the Mesos master, connection and agents; other clients get the
//!   same as JSON (`http::cluster`).
//! - `GET /static/{file}`: the embedded stylesheet, scripts and logo.
//!
//! Every generated link and fetch URL starts with `url_prefix` (E-30: Eremetic's logo ignored
//! it); times are UTC (E-30: Eremetic used the server's zone).

mod ansi;
mod assets;
mod format;
mod html;
mod pages;
mod tail;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, Request, State};
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, VARY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use time::OffsetDateTime;

use super::error::{ApiError, Form, TaskIdPath};
use super::tasks;
use super::{response, ApiVersion, AppState};
use crate::service::{LogLocation, LogStream, ReadError, TaskService};
use crate::task::{StateFilter, TaskId};
use pages::index::{option_for, ListFilter};
use pages::layout::{self, Site};
use pages::task::{LogView, TaskView};

/// `Content-Type` of every page.
const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// The pages load scripts and styles from `/static/` only and talk to this server only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// How much of a log file the task page includes (the end of it).
const LOG_PAGE_BYTES: u64 = 512 * 1024;

/// Why part of a page could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UiError {
    /// The service could not read a task or the list.
    #[error("cannot read {what}: {source}")]
    Read {
        /// What was being read (`task eremetic-task.…`, `the task list`).
        what: String,
        /// The service's error.
        #[source]
        source: ReadError,
    },
    /// A log file exists but could not be read.
    #[error("cannot read the {stream} of task {id} from {}: {source}", path.display())]
    LogFile {
        /// The task.
        id: TaskId,
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The UI routes that are not shared with the API (`/` and `/task/{id}` negotiate instead).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/task/{id}", get(web_task))
        .route("/web/task/{id}/usage", get(task_usage))
        .route("/cluster", get(cluster))
        .route("/static/{file}", get(assets::serve))
}

/// Whether the client asked for HTML (`Accept` contains `text/html`), as Eremetic decides.
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("text/html"))
}

fn site(state: &AppState) -> Site<'_> {
    Site {
        prefix: &state.settings.url_prefix,
        version: &state.settings.version,
    }
}

/// An HTML page response with the security headers every page carries.
fn page(status: StatusCode, body: String) -> Response {
    let mut response = response::with_content_type(status, HTML_CONTENT_TYPE, Body::from(body));
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The page of an error: the 404 page naming `text` for 404s, the error page otherwise.
pub(crate) fn error_page(status: StatusCode, prefix: &str, version: &str, text: &str) -> Response {
    let site = Site { prefix, version };
    let body = if status == StatusCode::NOT_FOUND {
        layout::not_found(site, text)
    } else {
        layout::server_error(site, text)
    };
    page(status, body)
}

/// The form of a UI page's errors: a page of this site.
pub(crate) fn page_form(state: &AppState) -> Form {
    Form::Page {
        prefix: state.settings.url_prefix.clone(),
        version: state.settings.version.clone(),
    }
}

/// A 404 for a path under `/static/`: a page for browsers, an error document otherwise.
fn not_found_response(headers: &HeaderMap, what: String) -> Response {
    let error = ApiError::refused(StatusCode::NOT_FOUND, what, "Not found");
    if wants_html(headers) {
        // Without the site's prefix: the page must not depend on the state.
        let form = Form::Page {
            prefix: String::new(),
            version: String::new(),
        };
        return error.in_form(form).into_response();
    }
    error.into_response()
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Most tasks the index page lists; use the filters to narrow a longer list.
const UI_LIST_LIMIT: usize = 1000;

/// `GET /`: the index page for browsers, 204 for other clients (Eremetic's answer).
pub(crate) async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    if !wants_html(&headers) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let parsed = query
        .map_err(|rejection| rejection.body_text())
        .and_then(|Query(pairs)| tasks::list_query(&pairs));
    let (status, state_filter, filter) = match parsed {
        Ok((state_filter, name)) => {
            let state_value = option_for(state_filter);
            let filter = ListFilter {
                state: state_value,
                name,
                error: None,
            };
            (StatusCode::OK, state_filter, filter)
        }
        Err(error) => {
            let filter = ListFilter {
                state: option_for(StateFilter::default()),
                name: None,
                error: Some(format!("The filter was ignored: {error}")),
            };
            (StatusCode::BAD_REQUEST, StateFilter::default(), filter)
        }
    };
    // A page shows at most UI_LIST_LIMIT tasks (the oldest first, as the API lists them):
    // rendering every stored task would hold them all in memory.
    let listed = state
        .service
        .list_page(state_filter, filter.name.as_deref(), 0, UI_LIST_LIMIT)
        .await
        .map(|page| page.into_iter().map(|(_, task)| task).collect::<Vec<_>>());
    let mut filter = filter;
    if listed
        .as_ref()
        .is_ok_and(|list| list.len() >= UI_LIST_LIMIT)
    {
        filter.error.get_or_insert_with(|| {
            format!("Showing the first {UI_LIST_LIMIT} tasks: narrow the list with the filters.")
        });
    }
    let list = listed.map_err(|error| {
        ApiError::internal(error, "Unable to list the tasks").in_form(page_form(&state))
    })?;
    Ok(page(
        status,
        pages::index::render(site(&state), &list, &filter, now()),
    ))
}

/// `GET /api/v1/task/{id}` and `GET /task/{id}`: the v0 route renders the task page for
/// browsers (as Eremetic); everything else is the JSON document.
pub(crate) async fn get_task(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    headers: HeaderMap,
    id: TaskIdPath,
) -> Result<Response, ApiError> {
    if version == ApiVersion::V0 && wants_html(&headers) {
        return task_page(&state, id).await;
    }
    tasks::get_task(State(state), Extension(version), id).await
}

/// `GET /web/task/{id}`: the task page whatever the `Accept` header.
async fn web_task(State(state): State<AppState>, id: TaskIdPath) -> Result<Response, ApiError> {
    task_page(&state, id).await
}

async fn task_page(state: &AppState, TaskIdPath(id): TaskIdPath) -> Result<Response, ApiError> {
    let task = state
        .service
        .get(&id)
        .await
        .map_err(|error| {
            ApiError::internal(error, "Unable to read the task").in_form(page_form(state))
        })?
        .ok_or_else(|| ApiError::task_not_found(&id, page_form(state)))?;
    // Usage is a nicety: a failure to read it only leaves the section empty.
    let usage = if task.is_running() {
        state.service.usage(&id).await.ok().flatten()
    } else {
        None
    };
    let view = TaskView {
        task: &task,
        usage,
        stdout: log_view(state.service.as_ref(), &id, LogStream::Stdout).await,
        stderr: log_view(state.service.as_ref(), &id, LogStream::Stderr).await,
    };
    Ok(page(
        StatusCode::OK,
        pages::task::render(site(state), &view),
    ))
}

/// The output so far, or a note saying why it is not shown.
async fn log_view(service: &dyn TaskService, id: &TaskId, stream: LogStream) -> LogView {
    let path = match service.log_location(id, stream).await {
        Ok(Some(LogLocation::File { path, .. })) => path,
        Ok(Some(LogLocation::NotStarted)) | Ok(None) => return LogView::default(),
        Ok(Some(LogLocation::Agent { url, path, .. })) => {
            return agent_log_view(&url, &path).await;
        }
        Err(source) => {
            let what = format!("the {} location of task {id}", stream.file_name());
            return log_note(&UiError::Read { what, source });
        }
    };
    match tail::read_tail(&path, LOG_PAGE_BYTES).await {
        Ok(tail) => LogView {
            content: ansi::render(&tail.text),
            note: tail.note(LOG_PAGE_BYTES),
        },
        Err(source) => log_note(&UiError::LogFile {
            id: id.clone(),
            stream: stream.file_name(),
            path,
            source,
        }),
    }
}

/// The end of an output file on a Mesos agent, read through its `/files/read`.
async fn agent_log_view(url: &str, path: &str) -> LogView {
    match super::agent_files::read_tail(url, path, LOG_PAGE_BYTES).await {
        Ok((bytes, total)) => {
            let tail = tail::Tail {
                text: String::from_utf8_lossy(&bytes).into_owned(),
                total,
                dropped: 0,
            };
            LogView {
                content: ansi::render(&tail.text),
                note: tail.note(LOG_PAGE_BYTES),
            }
        }
        Err(error) => {
            tracing::warn!(%error, "task page shows no output");
            LogView {
                content: html::Html::new(),
                note: Some(error.to_string()),
            }
        }
    }
}

fn log_note(error: &UiError) -> LogView {
    tracing::warn!(%error, "task page shows no output");
    LogView {
        content: html::Html::new(),
        note: Some(error.to_string()),
    }
}

/// `GET /web/task/{id}/usage`: `{"task_id", "state", "usage": {...} | null}` (usage only while
/// the task runs).
async fn task_usage(
    State(state): State<AppState>,
    TaskIdPath(id): TaskIdPath,
) -> Result<Response, ApiError> {
    let read = || async {
        state
            .service
            .get(&id)
            .await
            .map_err(read_failed)?
            .ok_or_else(|| ApiError::task_not_found(&id, Form::Document))
    };
    let mut task = read().await?;
    let usage = if task.is_running() {
        let usage = state.service.usage(&id).await;
        // The container may have ended during the call: then the answer is no usage and the
        // state as it is now, not a failure.
        task = read().await?;
        match usage {
            Ok(usage) => usage.filter(|_| task.is_running()),
            Err(_) if !task.is_running() => None,
            Err(error) => return Err(read_failed(error)),
        }
    } else {
        None
    };
    let usage = usage.map(|usage| {
        json!({
            "cpu_seconds": usage.cpu_seconds,
            "memory_bytes": usage.memory_bytes,
            "memory_limit_bytes": usage.memory_limit_bytes,
        })
    });
    let state_name = task.current_state().map(|state| state.as_str());
    Ok(response::json(
        StatusCode::OK,
        &json!({"task_id": id.as_str(), "state": state_name, "usage": usage}),
    ))
}

fn read_failed(error: ReadError) -> ApiError {
    ApiError::internal(error, "Unable to read the task")
}

/// `GET /cluster`: the cluster page for browsers, the overview as JSON for other clients.
async fn cluster(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let status = state.service.cluster();
    let mut response = if wants_html(&headers) {
        page(
            StatusCode::OK,
            pages::cluster::render(site(&state), &status),
        )
    } else {
        response::json(StatusCode::OK, &super::cluster::document(&status))
    };
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("Accept"));
    response
}

/// Middleware: a 401 for a browser gets a small HTML page instead of the error document; the
/// `WWW-Authenticate` challenge is kept, so that the browser asks for credentials.
pub(crate) async fn html_unauthorized(request: Request, next: Next) -> Response {
    let browser = wants_html(request.headers());
    let response = next.run(request).await;
    if !browser || response.status() != StatusCode::UNAUTHORIZED {
        return response;
    }
    let (mut parts, _json) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(HTML_CONTENT_TYPE));
    Response::from_parts(parts, Body::from(layout::unauthorized()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_wanted_only_when_accept_names_it() {
        let mut headers = HeaderMap::new();
        assert!(!wants_html(&headers));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json, */*"));
        assert!(!wants_html(&headers));
        headers.append(
            ACCEPT,
            HeaderValue::from_static("Text/HTML,application/xhtml+xml;q=0.9"),
        );
        assert!(wants_html(&headers));
    }
}
