//! Task handlers: submit, get, list, kill, delete (v1 and v0).

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::header::{CONTENT_LENGTH, HOST, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::Response;

use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::error::{ApiError, Form, TaskIdPath};
use super::response;
use super::{ApiVersion, AppState, ConnectionInfo};
use crate::api::{
    TaskV0, TaskV1, MAX_BODY_BYTES, MSG_BAD_QUERY, MSG_INVALID_REQUEST, MSG_LIST_FAILED,
    MSG_UNREADABLE,
};
use std::sync::Arc;

use crate::service::{Submission, TaskService};
use crate::task::{StateFilter, Task, TaskId};

/// The `Idempotency-Key` request header.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Longest accepted `Idempotency-Key`, in characters.
pub(crate) const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Message of a 500 when a task could not be read.
const MSG_READ_FAILED: &str = "Unable to read the task";

/// `POST /api/v1/task`, `POST /task`.
pub(crate) async fn submit(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    connection: Option<Extension<ConnectionInfo>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency_key(&headers).map_err(|reason| {
        ApiError::refused(StatusCode::BAD_REQUEST, reason, MSG_INVALID_REQUEST)
    })?;
    let bytes = read_body(&headers, body).await?;
    let parsed = match version {
        ApiVersion::V1 => crate::api::parse_v1(&bytes),
        ApiVersion::V0 => crate::api::parse_v0(&bytes),
    };
    let submission = Submission {
        task: parsed.map_err(ApiError::Invalid)?,
        idempotency_key,
    };
    let accepted = state.service.submit(submission).await?;
    let tls = connection.is_some_and(|Extension(info)| info.tls);
    let target = LocationTarget {
        headers: &headers,
        uri: &uri,
        tls,
        url_prefix: &state.settings.url_prefix,
    };
    Ok(accepted_response(
        &target.location(version, &accepted.id),
        &accepted.id,
    ))
}

/// The `Idempotency-Key` header: absent is fine; present, it must be 1 to 255 visible ASCII
/// characters.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, String> {
    let Some(value) = headers.get(&IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| "Idempotency-Key header must be visible ASCII".to_owned())?
        .trim();
    if text.is_empty() {
        return Err("Idempotency-Key header is empty".to_owned());
    }
    if text.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(format!(
            "Idempotency-Key header is {} characters long, at most {MAX_IDEMPOTENCY_KEY_LEN} allowed",
            text.len()
        ));
    }
    Ok(Some(text.to_owned()))
}

/// Reads the body up to [`MAX_BODY_BYTES`]; a larger one is refused with 413 (E-31: Eremetic
/// truncated it and then failed to parse it).
/// How long a request body may take to arrive.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(ApiError::TooLarge);
    }
    // A client that announces a body and then trickles it must not hold the request forever.
    let collected = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        Limited::new(body, MAX_BODY_BYTES).collect(),
    );
    let Ok(collected) = collected.await else {
        return Err(ApiError::refused(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body was not received within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ),
            MSG_UNREADABLE,
        ));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::TooLarge),
        Err(error) => Err(ApiError::refused(
            StatusCode::BAD_REQUEST,
            format!("the request body could not be read: {error}"),
            MSG_UNREADABLE,
        )),
    }
}

/// What the `Location` of an accepted task is built from.
pub(crate) struct LocationTarget<'a> {
    /// The request headers (`X-Forwarded-Proto`, `Host`).
    pub(crate) headers: &'a HeaderMap,
    /// The request URI (its authority, for HTTP/2 requests without `Host`).
    pub(crate) uri: &'a Uri,
    /// Whether the connection is TLS.
    pub(crate) tls: bool,
    /// The configured `url_prefix`, normalized.
    pub(crate) url_prefix: &'a str,
}

impl LocationTarget<'_> {
    /// Eremetic's absolute URL of a task: scheme from `X-Forwarded-Proto` (else `https` on TLS,
    /// `http` otherwise), host from `Host`, then `url_prefix` and the task path. Without any
    /// host the URL is relative.
    pub(crate) fn location(&self, version: ApiVersion, id: &TaskId) -> String {
        let forwarded = self
            .headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.split(',').next())
            .map(|proto| proto.trim().to_ascii_lowercase())
            .filter(|proto| proto == "http" || proto == "https");
        let scheme = forwarded.unwrap_or_else(|| if self.tls { "https" } else { "http" }.into());
        let host = self
            .headers
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            // An HTTP/2 authority may carry user information: only host and port are kept.
            .or_else(|| {
                self.uri
                    .authority()
                    .map(|authority| match authority.port() {
                        Some(port) => format!("{}:{port}", authority.host()),
                        None => authority.host().to_owned(),
                    })
            });
        let path = format!("{}{}/{id}", self.url_prefix, version.task_collection());
        match host {
            Some(host) if !host.is_empty() => format!("{scheme}://{host}{path}"),
            _ => path,
        }
    }
}

fn accepted_response(location: &str, id: &TaskId) -> Response {
    let mut response = response::json(StatusCode::ACCEPTED, id.as_str());
    // The location is built from header values and a validated id, so it is a valid value;
    // should it ever not be, the task is still accepted, only without the header.
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// `GET /api/v1/task/{id}`, `GET /task/{id}`.
pub(crate) async fn get_task(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    TaskIdPath(id): TaskIdPath,
) -> Result<Response, ApiError> {
    let task = state
        .service
        .get(&id)
        .await
        .map_err(|error| ApiError::internal(error, MSG_READ_FAILED))?
        .ok_or_else(|| ApiError::task_not_found(&id, Form::Document))?;
    Ok(match version {
        ApiVersion::V1 => response::json(StatusCode::OK, &TaskV1::from_task(&task)),
        ApiVersion::V0 => response::json(StatusCode::OK, &TaskV0::from_task(&task)),
    })
}

/// The list query: `name` (exact, empty = any) and `state`; the last value of a repeated key
/// wins, as in Eremetic; any other key is an error.
pub(crate) fn list_query(
    pairs: &[(String, String)],
) -> Result<(StateFilter, Option<String>), String> {
    let mut name = None;
    let mut state = None;
    for (key, value) in pairs {
        match key.as_str() {
            "name" => name = Some(value.clone()).filter(|name| !name.is_empty()),
            "state" => state = Some(value.as_str()),
            other => return Err(format!("unknown query parameter {other:?}")),
        }
    }
    let filter = StateFilter::parse(state).map_err(|error| error.to_string())?;
    Ok((filter, name))
}

/// `GET /api/v1/task`, `GET /task`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (filter, name) = query
        .map_err(|rejection| rejection.body_text())
        .and_then(|Query(pairs)| list_query(&pairs))
        .map_err(|error| {
            ApiError::refused(StatusCode::UNPROCESSABLE_ENTITY, error, MSG_BAD_QUERY)
        })?;
    // The first page decides the status; later pages are fetched while the body is sent, so
    // a long list never sits in memory whole.
    let first = state
        .service
        .list_page(filter, name.as_deref(), 0, LIST_PAGE)
        .await
        .map_err(|error| ApiError::internal(error, MSG_LIST_FAILED))?;
    Ok(list_response(
        state.service.clone(),
        version,
        filter,
        name,
        first,
    ))
}

/// Tasks per page of a streamed list answer.
const LIST_PAGE: usize = 500;

/// Where a streamed list answer is.
enum ListCursor {
    /// A page to send; `first` when nothing has been sent yet.
    Page {
        tasks: Vec<(u64, Task)>,
        first: bool,
    },
    /// Everything was sent.
    Done,
}

/// The JSON array of task documents, sent page by page: each page is encoded while its records
/// are consumed, and the next one is read from the service only when the client has taken the
/// previous one. A failure after the first page ends the body early (the status was sent).
fn list_response(
    service: Arc<dyn TaskService>,
    version: ApiVersion,
    filter: StateFilter,
    name: Option<String>,
    first: Vec<(u64, Task)>,
) -> Response {
    let cursor = ListCursor::Page {
        tasks: first,
        first: true,
    };
    let body = futures::stream::unfold(cursor, move |cursor| {
        let service = service.clone();
        let name = name.clone();
        async move {
            let ListCursor::Page { tasks, first } = cursor else {
                return None;
            };
            let complete = tasks.len() < LIST_PAGE;
            let last_seq = tasks.last().map(|(seq, _)| *seq);
            let mut chunk = encode_page(version, tasks, first);
            let next = match last_seq {
                Some(after) if !complete => {
                    match service
                        .list_page(filter, name.as_deref(), after, LIST_PAGE)
                        .await
                    {
                        Ok(tasks) => ListCursor::Page {
                            tasks,
                            first: false,
                        },
                        Err(error) => {
                            tracing::error!("listing tasks after position {after}: {error}");
                            let failure = std::io::Error::other(error.to_string());
                            return Some((Err(failure), ListCursor::Done));
                        }
                    }
                }
                _ => ListCursor::Done,
            };
            if matches!(next, ListCursor::Done) {
                chunk.extend_from_slice(b"]\n");
            }
            Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), next))
        }
    });
    response::with_content_type(
        StatusCode::OK,
        response::JSON_CONTENT_TYPE,
        Body::from_stream(body),
    )
}

/// The documents of one page, comma-separated, preceded by `[` on the first page.
fn encode_page(version: ApiVersion, tasks: Vec<(u64, Task)>, first: bool) -> Vec<u8> {
    let mut chunk = Vec::with_capacity(tasks.len().saturating_mul(768).saturating_add(1));
    if first {
        chunk.push(b'[');
    }
    for (index, (_, task)) in tasks.into_iter().enumerate() {
        if index > 0 || !first {
            chunk.push(b',');
        }
        // Documents are plain data: encoding them into memory cannot fail.
        let _ = match version {
            ApiVersion::V1 => serde_json::to_writer(&mut chunk, &TaskV1::from_task(&task)),
            ApiVersion::V0 => serde_json::to_writer(&mut chunk, &TaskV0::from_task(&task)),
        };
    }
    chunk
}

/// `POST /api/v1/task/{id}/kill`, `POST /task/{id}/kill`: 202 `""`; errors are bare JSON
/// strings, as in Eremetic.
pub(crate) async fn kill(
    State(state): State<AppState>,
    TaskIdPath(id): TaskIdPath,
) -> Result<Response, ApiError> {
    state.service.kill(&id).await?;
    Ok(response::json(StatusCode::ACCEPTED, ""))
}

/// `DELETE /api/v1/task/{id}`, `DELETE /task/{id}`: 202 `""`; errors are bare JSON strings.
pub(crate) async fn delete(
    State(state): State<AppState>,
    TaskIdPath(id): TaskIdPath,
) -> Result<Response, ApiError> {
    state.service.delete(&id).await?;
    Ok(response::json(StatusCode::ACCEPTED, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn list_query_defaults_to_active_and_queued() {
        let (filter, name) = list_query(&[]).unwrap();
        assert_eq!(filter, StateFilter::default());
        assert_eq!(name, None);
    }

    #[test]
    fn list_query_uses_the_last_state_and_a_non_empty_name() {
        let (filter, name) = list_query(&pairs(&[
            ("state", "queued"),
            ("state", "terminated"),
            ("name", "x"),
        ]))
        .unwrap();
        assert!(filter.terminated && !filter.queued && !filter.active);
        assert_eq!(name.as_deref(), Some("x"));
        let (_, name) = list_query(&pairs(&[("name", "")])).unwrap();
        assert_eq!(name, None);
    }

    #[test]
    fn list_query_rejects_unknown_keys_and_tokens() {
        let error = list_query(&pairs(&[("limit", "3")])).unwrap_err();
        assert!(error.contains("\"limit\""), "{error}");
        let error = list_query(&pairs(&[("state", "running")])).unwrap_err();
        assert!(error.contains("running"), "{error}");
    }

    #[test]
    fn idempotency_key_is_optional_but_bounded() {
        let mut headers = HeaderMap::new();
        assert_eq!(idempotency_key(&headers), Ok(None));
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("abc"));
        assert_eq!(idempotency_key(&headers), Ok(Some("abc".to_owned())));
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static(""));
        assert!(idempotency_key(&headers).is_err());
        let long = "k".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1);
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_str(&long).unwrap());
        assert!(idempotency_key(&headers).unwrap_err().contains("256"));
    }

    fn location(headers: &HeaderMap, tls: bool, prefix: &str, version: ApiVersion) -> String {
        let uri = Uri::from_static("/api/v1/task");
        let target = LocationTarget {
            headers,
            uri: &uri,
            tls,
            url_prefix: prefix,
        };
        target.location(version, &TaskId::parse("eremetic-task.abc").unwrap())
    }

    #[test]
    fn location_uses_forwarded_proto_host_and_prefix() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("example.org:8080"));
        assert_eq!(
            location(&headers, false, "", ApiVersion::V1),
            "http://example.org:8080/api/v1/task/eremetic-task.abc"
        );
        assert_eq!(
            location(&headers, true, "/eremetic", ApiVersion::V0),
            "https://example.org:8080/eremetic/task/eremetic-task.abc"
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS, http"));
        assert_eq!(
            location(&headers, false, "", ApiVersion::V1),
            "https://example.org:8080/api/v1/task/eremetic-task.abc"
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("javascript"));
        assert!(location(&headers, false, "", ApiVersion::V1).starts_with("http://"));
    }

    #[test]
    fn location_without_host_is_relative() {
        assert_eq!(
            location(&HeaderMap::new(), false, "", ApiVersion::V1),
            "/api/v1/task/eremetic-task.abc"
        );
    }
}
