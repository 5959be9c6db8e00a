//! HTTP authentication: Basic (Eremetic's `http_credentials`) and/or bearer tokens.
//!
//! Fixes E-19: when credentials are configured EVERY request needs them (also `/metrics` and
//! unknown paths) except `GET /api/v1/version` and `GET /version`, kept open as health checks;
//! secrets are compared in constant time (over SHA-256 digests, so that neither content nor
//! length leaks through timing); a refusal carries `WWW-Authenticate`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::error::ApiError;

type Sha256Digest = [u8; 32];

fn digest(bytes: &[u8]) -> Sha256Digest {
    Sha256::digest(bytes).into()
}

fn same(left: &Sha256Digest, right: &Sha256Digest) -> Choice {
    left.as_slice().ct_eq(right.as_slice())
}

/// The configured credentials, kept only as digests.
#[derive(Debug, Clone)]
pub(crate) struct Authenticator {
    basic: Option<(Sha256Digest, Sha256Digest)>,
    tokens: Vec<Sha256Digest>,
}

impl Authenticator {
    /// The authenticator for these credentials; `None` when there are none (the API is open).
    /// Empty tokens are ignored: they would accept a bare `Bearer` header.
    pub(crate) fn new(basic: Option<&(String, String)>, tokens: &[String]) -> Option<Self> {
        let basic =
            basic.map(|(user, password)| (digest(user.as_bytes()), digest(password.as_bytes())));
        let tokens: Vec<Sha256Digest> = tokens
            .iter()
            .filter(|token| !token.is_empty())
            .map(|token| digest(token.as_bytes()))
            .collect();
        if basic.is_none() && tokens.is_empty() {
            return None;
        }
        Some(Authenticator { basic, tokens })
    }

    /// Whether an `Authorization` header value carries valid credentials.
    pub(crate) fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization.and_then(|value| std::str::from_utf8(value).ok()) else {
            return false;
        };
        let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value, ""));
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            self.accepts_basic(credentials)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            self.accepts_bearer(credentials)
        } else {
            false
        }
    }

    fn accepts_basic(&self, encoded: &str) -> bool {
        let Some((user, password)) = &self.basic else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return false;
        };
        // The user name cannot contain a colon (RFC 7617), the password can.
        let Some(colon) = decoded.iter().position(|byte| *byte == b':') else {
            return false;
        };
        let user_ok = same(user, &digest(&decoded[..colon]));
        let password_ok = same(password, &digest(&decoded[colon + 1..]));
        bool::from(user_ok & password_ok)
    }

    fn accepts_bearer(&self, token: &str) -> bool {
        if token.is_empty() {
            return false;
        }
        let presented = digest(token.as_bytes());
        // Every token is compared, so that timing does not tell which one matched.
        let matched = self.tokens.iter().fold(Choice::from(0), |found, token| {
            found | same(token, &presented)
        });
        bool::from(matched)
    }

    /// The `WWW-Authenticate` challenges: `Basic` when Basic credentials are configured,
    /// `Bearer` when tokens are.
    pub(crate) fn challenges(&self) -> Vec<HeaderValue> {
        let mut challenges = Vec::new();
        if self.basic.is_some() {
            challenges.push(HeaderValue::from_static("Basic realm=\"Eremetic\""));
        }
        if !self.tokens.is_empty() {
            challenges.push(HeaderValue::from_static("Bearer realm=\"Eremetic\""));
        }
        challenges
    }
}

/// Whether a request may pass without credentials: the version routes, Eremetic's health
/// check, and the OpenAPI description, which describes the API and holds no data (clients and
/// tools read it before they are given credentials).
pub(crate) fn is_open(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && (path == "/api/v1/version" || path == "/version" || path == super::openapi::OPENAPI_PATH)
}

/// Middleware: lets authenticated (or open) requests through, answers 401 otherwise.
pub(crate) async fn require_credentials(
    State(authenticator): State<Arc<Authenticator>>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if is_open(request.method(), request.uri().path()) || authenticator.accepts(authorization) {
        return next.run(request).await;
    }
    unauthorized(&authenticator)
}

fn unauthorized(authenticator: &Authenticator) -> Response {
    let challenges = authenticator.challenges();
    ApiError::Unauthorized { challenges }.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic_header(user: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    }

    fn both() -> Authenticator {
        Authenticator::new(
            Some(&("admin".to_owned(), "s3:cret".to_owned())),
            &["token-one".to_owned(), "token-two".to_owned()],
        )
        .unwrap()
    }

    #[test]
    fn nothing_configured_means_no_authenticator() {
        assert!(Authenticator::new(None, &[]).is_none());
        assert!(Authenticator::new(None, &[String::new()]).is_none());
    }

    #[test]
    fn basic_credentials_must_match_user_and_password() {
        let auth = both();
        assert!(auth.accepts(Some(basic_header("admin", "s3:cret").as_bytes())));
        assert!(auth.accepts(Some(
            basic_header("admin", "s3:cret")
                .replace("Basic", "basic")
                .as_bytes()
        )));
        assert!(!auth.accepts(Some(basic_header("admin", "wrong").as_bytes())));
        assert!(!auth.accepts(Some(basic_header("root", "s3:cret").as_bytes())));
        assert!(!auth.accepts(Some(b"Basic not-base64!")));
        assert!(!auth.accepts(None));
    }

    #[test]
    fn any_configured_bearer_token_is_accepted() {
        let auth = both();
        assert!(auth.accepts(Some(b"Bearer token-one")));
        assert!(auth.accepts(Some(b"bearer token-two")));
        assert!(!auth.accepts(Some(b"Bearer token-three")));
        assert!(!auth.accepts(Some(b"Bearer ")));
        assert!(!auth.accepts(Some(b"Bearer")));
        assert!(!auth.accepts(Some(b"Token token-one")));
    }

    #[test]
    fn basic_is_refused_when_only_tokens_are_configured() {
        let auth = Authenticator::new(None, &["t".to_owned()]).unwrap();
        assert!(!auth.accepts(Some(basic_header("", "").as_bytes())));
        assert_eq!(
            auth.challenges(),
            vec![HeaderValue::from_static("Bearer realm=\"Eremetic\"")]
        );
    }

    #[test]
    fn challenges_name_every_configured_scheme() {
        let challenges = both().challenges();
        assert_eq!(challenges.len(), 2);
        assert_eq!(challenges[0], "Basic realm=\"Eremetic\"");
        assert_eq!(challenges[1], "Bearer realm=\"Eremetic\"");
    }

    #[test]
    fn only_the_version_routes_and_the_description_are_open() {
        assert!(is_open(&Method::GET, "/api/v1/version"));
        assert!(is_open(&Method::GET, "/version"));
        assert!(!is_open(&Method::POST, "/version"));
        assert!(!is_open(&Method::GET, "/metrics"));
        assert!(!is_open(&Method::GET, "/version/"));
        assert!(!is_open(&Method::GET, "/nope"));
        assert!(is_open(&Method::GET, "/api/v1/openapi.yaml"));
        assert!(!is_open(&Method::POST, "/api/v1/openapi.yaml"));
    }
}
