//! `GET /api/v1/openapi.yaml`: the OpenAPI 3.0 description of the API (`scheduler/openapi.yaml`,
//! compiled into the binary so that the served description always matches the server).

use axum::http::StatusCode;
use axum::response::Response;

use super::response::with_content_type;

/// The path the description is served at.
pub(crate) const OPENAPI_PATH: &str = "/api/v1/openapi.yaml";

/// The description, byte for byte the file `scheduler/openapi.yaml`.
pub(crate) const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// Its media type (RFC 9512; without a charset parameter, YAML is UTF-8).
pub(crate) const OPENAPI_CONTENT_TYPE: &str = "application/yaml";

/// `GET /api/v1/openapi.yaml`.
pub(crate) async fn openapi_yaml() -> Response {
    with_content_type(StatusCode::OK, OPENAPI_CONTENT_TYPE, OPENAPI_YAML.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_description_is_openapi_3_0_and_describes_itself() {
        let document: serde_json::Value = serde_norway::from_str(OPENAPI_YAML).unwrap();
        assert_eq!(document["openapi"], "3.0.3");
        let served = &document["paths"][OPENAPI_PATH]["get"];
        assert!(served.is_object(), "the description lacks {OPENAPI_PATH}");
        assert_eq!(
            served["security"],
            serde_json::json!([]),
            "the description is served without credentials"
        );
    }

    #[tokio::test]
    async fn description_is_served_as_yaml() {
        let response = openapi_yaml().await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[axum::http::header::CONTENT_TYPE],
            OPENAPI_CONTENT_TYPE
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&body[..], OPENAPI_YAML.as_bytes());
    }
}
