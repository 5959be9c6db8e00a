//! Response builders shared by the handlers: JSON bodies the way Eremetic writes them (Go's
//! `json.Encoder`, so a trailing newline), error documents, the v0 deprecation header.

use axum::body::Body;
use axum::http::header::{HeaderValue, CONTENT_TYPE};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::ErrorDocument;

/// `Content-Type` of every JSON response (Eremetic's exact value).
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// `Content-Type` of the version and log responses.
pub(crate) const TEXT_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";

/// The header every v0 response carries.
pub(crate) const WARNING: HeaderName = HeaderName::from_static("warning");

/// Its value (Eremetic's exact text).
pub(crate) const DEPRECATED_API: &str = "299 - 'Deprecated API'";

/// A body that failed to serialize; cannot happen with our documents, but a handler must not
/// panic if it ever did.
const SERIALIZATION_FAILED: &str =
    "{\"error\":\"the response could not be serialized\",\"message\":\"Internal server error\"}\n";

/// `value` as JSON followed by a newline, with `status` and the JSON content type.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            with_content_type(status, JSON_CONTENT_TYPE, Body::from(bytes))
        }
        Err(_) => with_content_type(
            StatusCode::INTERNAL_SERVER_ERROR,
            JSON_CONTENT_TYPE,
            Body::from(SERIALIZATION_FAILED),
        ),
    }
}

/// An error document `{"error": error, "message": message}`.
pub(crate) fn error(
    status: StatusCode,
    error: impl Into<String>,
    message: impl Into<String>,
) -> Response {
    json(status, &ErrorDocument::new(error, message))
}

/// A body with `status` and `content_type`.
pub(crate) fn with_content_type(
    status: StatusCode,
    content_type: &'static str,
    body: Body,
) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Adds the v0 deprecation header to a response.
pub(crate) fn mark_deprecated(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(WARNING, HeaderValue::from_static(DEPRECATED_API));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn json_bodies_end_with_a_newline_like_go_encoders() {
        let response = json(StatusCode::ACCEPTED, "eremetic-task.x");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()[CONTENT_TYPE], JSON_CONTENT_TYPE);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"\"eremetic-task.x\"\n");
    }

    #[test]
    fn deprecated_responses_carry_the_warning_header() {
        let response = mark_deprecated(StatusCode::NO_CONTENT.into_response());
        assert_eq!(response.headers()[WARNING], DEPRECATED_API);
    }
}
