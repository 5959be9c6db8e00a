//! [`ApiError`]: the one error type every handler returns, and the task-id path extractor
//! whose rejection it is (axum's `examples/error-handling` style).
//!
//! Client errors keep Eremetic's bodies byte for byte: an error document
//! `{"error", "message"}`, a bare JSON string (kill and delete), or an HTML page for browsers.
//! Internal errors answer 500 with a body that names only the kind of failure, log the whole
//! cause chain once, and mark the response with an [`InternalErrorKind`] that the metrics
//! middleware counts (`eremetic_http_internal_errors_total{kind}`).

use std::error::Error as _;

use axum::extract::{FromRequestParts, MatchedPath, Path};
use axum::http::header::{HeaderValue, CONNECTION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{response, ui, AppState};
use crate::api::{ErrorDocument, Problem, ValidationErrors, MAX_BODY_BYTES};
use crate::service::{DeleteError, KillError, ReadError, StoreFailure, SubmitError};
use crate::task::TaskId;

/// The message of a 401 error document.
const MSG_UNAUTHORIZED: &str = "Authentication required";

/// The error text of a 401 error document; it never repeats what the client sent.
const ERR_UNAUTHORIZED: &str =
    "missing or invalid credentials: send Authorization: Basic or Authorization: Bearer";

/// Message of a 404 for a task.
pub(crate) const MSG_TASK_NOT_FOUND: &str = "Task not found";

/// How an error is written, chosen by the route (Eremetic's kill and delete answer bare JSON
/// strings; the web UI answers pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Form {
    /// The error document `{"error": ..., "message": ...}`.
    Document,
    /// The error text as a bare JSON string.
    Bare,
    /// An HTML page of the web UI with this URL prefix and version.
    Page {
        /// The normalized `url_prefix`.
        prefix: String,
        /// The reported version.
        version: String,
    },
}

impl Form {
    /// The form of the errors of a request: bare on the kill and delete routes, a page on the
    /// task pages (`/web/task/{id}`, and the v0 `GET /task/{id}` for browsers), the document
    /// elsewhere.
    pub(crate) fn of(parts: &Parts, state: &AppState) -> Form {
        let matched = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let page = || Form::Page {
            prefix: state.settings.url_prefix.clone(),
            version: state.settings.version.clone(),
        };
        match matched {
            Some(path) if path.ends_with("/kill") => Form::Bare,
            Some(_) if parts.method == Method::DELETE => Form::Bare,
            Some("/web/task/{id}") => page(),
            Some("/task/{id}") if ui::wants_html(&parts.headers) => page(),
            _ => Form::Document,
        }
    }
}

/// A failure inside the server: what answers 500.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Internal {
    /// The task store failed; the kind says how.
    #[error(transparent)]
    Store(#[from] StoreFailure),
    /// Something else failed; the text says what.
    #[error("{0}")]
    Other(String),
}

impl Internal {
    /// The metrics label of the failure (`disk_full`, `database_corrupt`, `store_closed`,
    /// `database`, `other`).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Internal::Store(failure) => failure.kind().label(),
            Internal::Other(_) => "other",
        }
    }

    /// The failure and every cause below it, `: `-separated, for the log.
    fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = self.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

impl From<ReadError> for Internal {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Store(failure) => Internal::Store(failure),
            ReadError::Other(text) => Internal::Other(text),
        }
    }
}

/// Marks a response as an internal error of this kind, for the metrics middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InternalErrorKind(pub(crate) &'static str);

/// Every error a handler answers with.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// A refusal: `status` with `error` (what is wrong) and `message` (Eremetic's summary).
    Refused {
        /// The status.
        status: StatusCode,
        /// What is wrong.
        error: String,
        /// The summary.
        message: &'static str,
        /// How to write it.
        form: Form,
    },
    /// The path segment is not a task id: 404, as for an unknown task.
    MalformedTaskId {
        /// The segment (`None` when it could not even be decoded).
        raw: Option<String>,
        /// Why it is not an id.
        reason: String,
        /// How to write it.
        form: Form,
    },
    /// The request body is invalid: 400 with every problem.
    Invalid(ValidationErrors),
    /// The request body is over [`MAX_BODY_BYTES`]: 413 with `Connection: close`.
    TooLarge,
    /// The queue is full: 503 with `Retry-After: 1`.
    QueueFull,
    /// No valid credentials: 401 with one `WWW-Authenticate` challenge per accepted scheme.
    Unauthorized {
        /// The challenges (`Basic realm=...`, `Bearer`).
        challenges: Vec<HeaderValue>,
    },
    /// A failure inside the server: 500, logged and counted by kind.
    Internal {
        /// The failure.
        failure: Internal,
        /// Eremetic's summary of what could not be done.
        message: &'static str,
        /// How to write it.
        form: Form,
    },
}

impl ApiError {
    /// A refusal written as an error document.
    pub(crate) fn refused(
        status: StatusCode,
        error: impl Into<String>,
        message: &'static str,
    ) -> Self {
        ApiError::Refused {
            status,
            error: error.into(),
            message,
            form: Form::Document,
        }
    }

    /// The 404 for a task id that names no task.
    pub(crate) fn task_not_found(id: &TaskId, form: Form) -> Self {
        let error = match form {
            Form::Page { .. } => format!("No task with id {id}."),
            _ => format!("no task with id {id}"),
        };
        ApiError::Refused {
            status: StatusCode::NOT_FOUND,
            error,
            message: MSG_TASK_NOT_FOUND,
            form,
        }
    }

    /// A 500 written as an error document.
    pub(crate) fn internal(failure: impl Into<Internal>, message: &'static str) -> Self {
        ApiError::Internal {
            failure: failure.into(),
            message,
            form: Form::Document,
        }
    }

    /// The same error written in `form`.
    pub(crate) fn in_form(mut self, new: Form) -> Self {
        match &mut self {
            ApiError::Refused { form, .. }
            | ApiError::MalformedTaskId { form, .. }
            | ApiError::Internal { form, .. } => *form = new,
            ApiError::Invalid(_)
            | ApiError::TooLarge
            | ApiError::QueueFull
            | ApiError::Unauthorized { .. } => {}
        }
        self
    }

    fn too_large_errors() -> ValidationErrors {
        ValidationErrors::single(
            "body",
            Problem::Invalid(format!(
                "is larger than {MAX_BODY_BYTES} bytes (1 MiB), the limit"
            )),
        )
    }
}

/// Writes `error` and `message` in `form` with `status`.
fn written(status: StatusCode, form: &Form, error: &str, message: &str) -> Response {
    match form {
        Form::Document => response::error(status, error, message),
        Form::Bare => response::json(status, error),
        Form::Page { prefix, version } => ui::error_page(status, prefix, version, error),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Refused {
                status,
                error,
                message,
                form,
            } => written(status, &form, &error, message),
            ApiError::MalformedTaskId { raw, reason, form } => {
                let error = match (&form, raw) {
                    (_, None) => reason,
                    (Form::Page { .. }, Some(raw)) => format!("No task with id {raw}: {reason}."),
                    (_, Some(raw)) => format!("no task with id {raw:?}: {reason}"),
                };
                written(StatusCode::NOT_FOUND, &form, &error, MSG_TASK_NOT_FOUND)
            }
            ApiError::Invalid(errors) => response::json(
                StatusCode::BAD_REQUEST,
                &ErrorDocument::invalid_request(&errors),
            ),
            // The rest of the body is not read, so the connection cannot carry another
            // request: the client must not reuse it.
            ApiError::TooLarge => {
                let mut answer = response::json(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &ErrorDocument::invalid_request(&ApiError::too_large_errors()),
                );
                answer
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                answer
            }
            ApiError::QueueFull => {
                let mut answer = response::json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &ErrorDocument::queue_full(),
                );
                answer
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                answer
            }
            ApiError::Unauthorized { challenges } => {
                let mut answer =
                    response::error(StatusCode::UNAUTHORIZED, ERR_UNAUTHORIZED, MSG_UNAUTHORIZED);
                for challenge in challenges {
                    answer.headers_mut().append(WWW_AUTHENTICATE, challenge);
                }
                answer
            }
            ApiError::Internal {
                failure,
                message,
                form,
            } => {
                let kind = failure.kind();
                // The only place a 500's detail is logged: the body names the kind only.
                tracing::error!(kind, error = %failure.chain(), "{message}");
                let mut answer = written(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &form,
                    &failure.to_string(),
                    message,
                );
                answer.extensions_mut().insert(InternalErrorKind(kind));
                answer
            }
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        use crate::api::MSG_CANNOT_SCHEDULE;
        match error {
            SubmitError::QueueFull { .. } => ApiError::QueueFull,
            SubmitError::Forbidden(reason) => ApiError::refused(
                StatusCode::FORBIDDEN,
                reason,
                "The task is not allowed by the server's policy",
            ),
            SubmitError::Unsatisfiable(reason) => ApiError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                reason,
                MSG_CANNOT_SCHEDULE,
            ),
            SubmitError::IdempotencyConflict { .. } => ApiError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                error.to_string(),
                "The Idempotency-Key was already used for a different request",
            ),
            SubmitError::Store(failure) => ApiError::internal(failure, MSG_CANNOT_SCHEDULE),
            SubmitError::Internal(text) => {
                ApiError::internal(Internal::Other(text), MSG_CANNOT_SCHEDULE)
            }
        }
    }
}

/// Summary of a failed kill or delete (kill and delete answers are bare strings: it is only
/// logged).
const MSG_CHANGE_FAILED: &str = "Unable to change the task";

impl From<KillError> for ApiError {
    fn from(error: KillError) -> Self {
        let status = match &error {
            KillError::NotFound(_) => StatusCode::NOT_FOUND,
            KillError::AlreadyTerminal { .. } => StatusCode::CONFLICT,
            KillError::Store(failure) => {
                return ApiError::internal(failure.clone(), MSG_CHANGE_FAILED).in_form(Form::Bare)
            }
            KillError::Internal(text) => {
                return ApiError::internal(Internal::Other(text.clone()), MSG_CHANGE_FAILED)
                    .in_form(Form::Bare)
            }
        };
        ApiError::refused(status, error.to_string(), MSG_TASK_NOT_FOUND).in_form(Form::Bare)
    }
}

impl From<DeleteError> for ApiError {
    fn from(error: DeleteError) -> Self {
        let status = match &error {
            DeleteError::NotFound(_) => StatusCode::NOT_FOUND,
            DeleteError::NotTerminal { .. } => StatusCode::CONFLICT,
            DeleteError::Store(failure) => {
                return ApiError::internal(failure.clone(), MSG_CHANGE_FAILED).in_form(Form::Bare)
            }
            DeleteError::Internal(text) => {
                return ApiError::internal(Internal::Other(text.clone()), MSG_CHANGE_FAILED)
                    .in_form(Form::Bare)
            }
        };
        ApiError::refused(status, error.to_string(), MSG_TASK_NOT_FOUND).in_form(Form::Bare)
    }
}

/// The task id of a `.../{id}` route. A segment that is not a valid id is rejected with the
/// route's 404 ([`ApiError::MalformedTaskId`]), before the handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskIdPath(pub(crate) TaskId);

impl FromRequestParts<AppState> for TaskIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let form = Form::of(parts, state);
        let raw = match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(raw)) => raw,
            Err(rejection) => {
                return Err(ApiError::MalformedTaskId {
                    raw: None,
                    reason: rejection.body_text(),
                    form,
                })
            }
        };
        match TaskId::parse(&raw) {
            Ok(id) => Ok(TaskIdPath(id)),
            Err(error) => Err(ApiError::MalformedTaskId {
                raw: Some(raw),
                reason: error.to_string(),
                form,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use axum::http::header::CONTENT_TYPE;

    use super::*;
    use crate::store::StoreError;

    async fn answer(error: ApiError) -> (StatusCode, axum::http::HeaderMap, String, Response) {
        let response = error.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        (
            status,
            headers,
            text,
            Response::from_parts(parts, ().into()),
        )
    }

    fn full_disk() -> StoreError {
        StoreError::CreateFile {
            path: PathBuf::from("/var/lib/eremetic/eremetic.db"),
            source: Arc::new(std::io::Error::from_raw_os_error(28)),
        }
    }

    #[tokio::test]
    async fn queue_full_answers_503_with_retry_after_and_eremetic_body() {
        let (status, headers, body, _) =
            answer(SubmitError::QueueFull { capacity: 3 }.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[RETRY_AFTER], "1");
        assert_eq!(headers[CONTENT_TYPE], response::JSON_CONTENT_TYPE);
        assert_eq!(
            body,
            "{\"error\":\"task queue is full\",\"message\":\"Unable to schedule task\"}\n"
        );
    }

    #[tokio::test]
    async fn unauthorized_answers_401_with_every_challenge() {
        let challenges = vec![
            HeaderValue::from_static("Basic realm=\"eremetic\""),
            HeaderValue::from_static("Bearer"),
        ];
        let (status, headers, body, _) = answer(ApiError::Unauthorized { challenges }).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let sent: Vec<_> = headers.get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(sent, ["Basic realm=\"eremetic\"", "Bearer"]);
        assert!(body.contains(MSG_UNAUTHORIZED), "{body}");
    }

    #[tokio::test]
    async fn too_large_answers_413_and_closes_the_connection() {
        let (status, headers, body, _) = answer(ApiError::TooLarge).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(headers[CONNECTION], "close");
        assert!(body.contains("\"body\""), "{body}");
    }

    #[tokio::test]
    async fn kill_refusals_are_bare_json_strings() {
        let id = TaskId::parse("eremetic-task.abc").unwrap();
        let (status, _, body, _) = answer(KillError::NotFound(id).into()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, "\"no task with id eremetic-task.abc\"\n");
    }

    #[tokio::test]
    async fn refusals_are_error_documents() {
        let error = ApiError::refused(StatusCode::FORBIDDEN, "privileged: no", "Not allowed");
        let (status, _, body, _) = answer(error).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body,
            "{\"error\":\"privileged: no\",\"message\":\"Not allowed\"}\n"
        );
    }

    #[tokio::test]
    async fn malformed_ids_name_the_segment_in_each_form() {
        let malformed = |form| ApiError::MalformedTaskId {
            raw: Some("x y".into()),
            reason: "bad".into(),
            form,
        };
        let (status, _, body, _) = answer(malformed(Form::Document)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            "{\"error\":\"no task with id \\\"x y\\\": bad\",\"message\":\"Task not found\"}\n"
        );
        let (_, _, body, _) = answer(malformed(Form::Bare)).await;
        assert_eq!(body, "\"no task with id \\\"x y\\\": bad\"\n");
        let page = Form::Page {
            prefix: String::new(),
            version: "1".into(),
        };
        let (status, headers, body, _) = answer(malformed(page)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(body.contains("No task with id x y: bad."), "{body}");
    }

    #[tokio::test]
    async fn store_failures_answer_a_generic_500_marked_with_their_kind() {
        let error = SubmitError::Store(StoreFailure(full_disk()));
        let (status, _, body, response) = answer(error.into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            "{\"error\":\"the task store's disk is full\",\"message\":\"Unable to schedule task\"}\n"
        );
        assert!(!body.contains("/var/lib"), "{body}");
        assert_eq!(
            response.extensions().get::<InternalErrorKind>(),
            Some(&InternalErrorKind("disk_full"))
        );
    }

    /// A writer the log lines of a test go to.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_500_logs_its_kind_and_cause_chain_once() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let error = ApiError::internal(ReadError::from(full_disk()), "Unable to read the task");
        let response = tracing::subscriber::with_default(subscriber, move || error.into_response());
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(log.contains("kind=\"disk_full\""), "{log}");
        assert!(log.contains("/var/lib/eremetic/eremetic.db"), "{log}");
        assert!(log.contains("Unable to read the task"), "{log}");
    }

    #[test]
    fn the_logged_chain_keeps_the_typed_cause() {
        let failure = Internal::Store(StoreFailure(full_disk()));
        let chain = failure.chain();
        assert!(
            chain.starts_with("the task store's disk is full: "),
            "{chain}"
        );
        assert!(chain.contains("/var/lib/eremetic/eremetic.db"), "{chain}");
        let corrupt = Internal::Store(StoreFailure(StoreError::Corrupt {
            path: PathBuf::from("/db"),
            what: "record of task x".into(),
            reason: "not JSON".into(),
        }));
        assert_eq!(corrupt.kind(), "database_corrupt");
        assert_eq!(failure.kind(), "disk_full");
    }
}
