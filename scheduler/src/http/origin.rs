//! Requests a browser was tricked into sending: cross-site requests that change something
//! (a form on any web page can POST a task, and the browser adds cached Basic credentials),
//! and DNS rebinding against a server that has no credentials (a page whose host name
//! resolves to 127.0.0.1 becomes "same origin" with the local server).
//!
//! Non-browser clients (hermit, curl, Eremetic's Go client) send neither `Origin` nor
//! `Sec-Fetch-Site`, and reach an open server by IP address or `localhost`, so they are not
//! affected.

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::response;

/// Why a request was refused, or `None` to let it through. `open`: the server has no
/// credentials configured.
pub(crate) fn refusal(method: &Method, headers: &HeaderMap, open: bool) -> Option<String> {
    let host = headers.get(HOST).and_then(|value| value.to_str().ok());
    if open {
        if let Some(host) = host {
            if !is_local_or_ip(host) {
                return Some(format!(
                    "host {host:?} refused: a server without credentials only answers requests \
                     addressed to an IP address or localhost (configure http_credentials or \
                     bearer_tokens to serve it under a name)"
                ));
            }
        }
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if site == Some("cross-site") {
        return Some("cross-site request refused".to_owned());
    }
    let origin = headers.get(ORIGIN).and_then(|value| value.to_str().ok())?;
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(origin_host), Some(host)) if origin_host.eq_ignore_ascii_case(host) => None,
        _ => Some(format!(
            "cross-origin request refused: origin {origin:?} is not this server ({})",
            host.unwrap_or("no Host header")
        )),
    }
}

/// Whether a `Host` value names this machine by address or as `localhost` (any port).
pub(crate) fn is_local_or_ip(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Middleware refusing such requests with 403 and an error document.
pub(crate) async fn guard(State(open): State<bool>, request: Request, next: Next) -> Response {
    match refusal(request.method(), request.headers(), open) {
        Some(reason) => response::error(
            StatusCode::FORBIDDEN,
            reason,
            "The request was refused to protect the server from other web sites",
        ),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn clients_without_origin_are_let_through() {
        let plain = headers(&[("host", "10.0.0.5:8080")]);
        assert_eq!(refusal(&Method::POST, &plain, false), None);
        assert_eq!(refusal(&Method::POST, &plain, true), None);
    }

    #[test]
    fn same_origin_posts_pass_and_cross_origin_posts_are_refused() {
        let same = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert_eq!(refusal(&Method::POST, &same, true), None);
        let other = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(refusal(&Method::POST, &other, false).is_some());
        assert!(refusal(&Method::DELETE, &other, false).is_some());
        assert_eq!(refusal(&Method::GET, &other, false), None);
        let null = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(refusal(&Method::POST, &null, false).is_some());
        let fetch = headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]);
        assert!(refusal(&Method::POST, &fetch, false).is_some());
    }

    #[test]
    fn an_open_server_answers_only_addresses_and_localhost() {
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "10.1.2.3",
        ] {
            assert!(is_local_or_ip(host), "{host}");
            assert_eq!(
                refusal(&Method::GET, &headers(&[("host", host)]), true),
                None
            );
        }
        let rebound = headers(&[("host", "attacker.example:8080")]);
        assert!(refusal(&Method::GET, &rebound, true).is_some());
        assert_eq!(
            refusal(&Method::GET, &rebound, false),
            None,
            "with credentials, names are fine"
        );
    }
}
