//! Requests a browser was tricked into sending: cross-site requests that change something
//! (a form on any web page can POST a task, and the browser adds cached Basic credentials),
//! and DNS rebinding against a local server that has no credentials (a page whose host name
//! resolves to 127.0.0.1 becomes "same origin" with the local server).
//!
//! Non-browser clients (hermit, curl, Eremetic's Go client) send neither `Origin` nor
//! `Sec-Fetch-Site`, and reach a local open server by IP address or `localhost`, so they are
//! not affected. Which host names are answered is [`HostNames`]: the rebinding guard protects
//! the default loopback listener; an operator who puts an open server on the network serves
//! it under names ([`HostNames::Any`]) and may list them (`allowed_hosts`, [`HostNames::Only`]).

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Which host names (the `Host` of a request) the server answers. Requests addressed to an IP
/// address or `localhost` always pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HostNames {
    /// Any name when credentials or tokens are configured, none otherwise: an open server on
    /// loopback must not be reachable through DNS rebinding.
    #[default]
    UnlessOpen,
    /// Any name: the operator put the API on the network (a non-loopback `address`).
    Any,
    /// Only these names (lower case, without port), with or without credentials.
    Only(Vec<String>),
}

/// What the guard needs to know: the host names answered, and whether the server has no
/// credentials.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    pub(crate) names: HostNames,
    pub(crate) open: bool,
}

/// Why a request addressed to `host` is refused, or `None`.
fn host_refusal(host: &str, guard: &Guard) -> Option<String> {
    if is_local_or_ip(host) {
        return None;
    }
    match &guard.names {
        HostNames::Any => None,
        HostNames::UnlessOpen if !guard.open => None,
        HostNames::UnlessOpen => Some(format!(
            "host {host:?} refused: a server without credentials that listens on loopback only \
             answers requests addressed to an IP address or localhost (configure \
             http_credentials or bearer_tokens, or listen on a network address, to serve it \
             under a name)"
        )),
        HostNames::Only(names) => {
            let name = host_name(host);
            if names
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(name))
            {
                None
            } else {
                Some(format!(
                    "host {host:?} refused: this server answers only requests addressed to an \
                     IP address, localhost or one of allowed_hosts ({})",
                    names.join(", ")
                ))
            }
        }
    }
}

/// `name` of a `Host` value `name[:port]` (a trailing dot, as in `example.com.`, is dropped).
fn host_name(host: &str) -> &str {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    name.strip_suffix('.').unwrap_or(name)
}

/// Why a request was refused, or `None` to let it through.
pub(crate) fn refusal(method: &Method, headers: &HeaderMap, guard: &Guard) -> Option<String> {
    let host = headers.get(HOST).and_then(|value| value.to_str().ok());
    if let Some(reason) = host.and_then(|host| host_refusal(host, guard)) {
        return Some(reason);
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

/// Middleware refusing, before anything else, a request whose `Host` header is not one
/// `host[:port]` (400, see [`super::host::refusal`]), then such requests (403); each with an
/// error document.
pub(crate) async fn guard(
    State(guard): State<std::sync::Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    // First the Host header's syntax (400), then where the request comes from (403): one
    // layer, so that every request pays for one middleware, not two.
    if let Some(bad_host) = super::host::refusal(request.headers()) {
        return bad_host.into_response();
    }
    match refusal(request.method(), request.headers(), &guard) {
        Some(reason) => ApiError::refused(
            StatusCode::FORBIDDEN,
            reason,
            "The request was refused to protect the server from other web sites",
        )
        .into_response(),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const OPEN: Guard = Guard {
        names: HostNames::UnlessOpen,
        open: true,
    };
    const PROTECTED: Guard = Guard {
        names: HostNames::UnlessOpen,
        open: false,
    };

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
        assert_eq!(refusal(&Method::POST, &plain, &PROTECTED), None);
        assert_eq!(refusal(&Method::POST, &plain, &OPEN), None);
    }

    #[test]
    fn same_origin_posts_pass_and_cross_origin_posts_are_refused() {
        let same = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert_eq!(refusal(&Method::POST, &same, &OPEN), None);
        let other = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(refusal(&Method::POST, &other, &PROTECTED).is_some());
        assert!(refusal(&Method::DELETE, &other, &PROTECTED).is_some());
        assert_eq!(refusal(&Method::GET, &other, &PROTECTED), None);
        let null = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(refusal(&Method::POST, &null, &PROTECTED).is_some());
        let fetch = headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]);
        assert!(refusal(&Method::POST, &fetch, &PROTECTED).is_some());
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
                refusal(&Method::GET, &headers(&[("host", host)]), &OPEN),
                None
            );
        }
        let rebound = headers(&[("host", "attacker.example:8080")]);
        assert!(refusal(&Method::GET, &rebound, &OPEN).is_some());
        assert_eq!(
            refusal(&Method::GET, &rebound, &PROTECTED),
            None,
            "with credentials, names are fine"
        );
    }

    #[test]
    fn an_open_server_on_the_network_answers_names_unless_allowed_hosts_restricts_them() {
        let named = headers(&[("host", "eremetic.corp.example:8080")]);
        let network = Guard {
            names: HostNames::Any,
            open: true,
        };
        assert_eq!(refusal(&Method::GET, &named, &network), None);
        let listed = Guard {
            names: HostNames::Only(vec!["eremetic.corp.example".into()]),
            open: true,
        };
        assert_eq!(refusal(&Method::POST, &named, &listed), None);
        let upper = headers(&[("host", "EREMETIC.corp.example.")]);
        assert_eq!(refusal(&Method::GET, &upper, &listed), None);
        let other = headers(&[("host", "attacker.example")]);
        let reason = refusal(&Method::GET, &other, &listed).unwrap();
        assert!(reason.contains("allowed_hosts"), "{reason}");
        let with_credentials = Guard {
            open: false,
            ..listed.clone()
        };
        assert!(refusal(&Method::GET, &other, &with_credentials).is_some());
        let address = headers(&[("host", "10.0.0.7:8080")]);
        assert_eq!(refusal(&Method::GET, &address, &listed), None);
    }
}
