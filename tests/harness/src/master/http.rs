//! The HTTP handler of `POST /api/v1/scheduler`: path, leadership (307 /
//! 503), then the rules (`rules.rs`) and the master's state (`state.rs`).

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use tokio::time::Instant;

use super::auth::{basic_principal, SCHEDULER_REALM, UNAUTHORIZED_BODY};
use super::rules::{check_request, RequestHead};
use super::setup::Leadership;
use super::state::Admission;
use super::Shared;
use crate::common::http::{
    empty_response, rejection_response, stream_response, text_response, Body, Rejection,
};

/// Paths of the scheduler endpoint: the documented one and the one under
/// the master's libprocess id.
const SCHEDULER_PATHS: [&str; 2] = ["/api/v1/scheduler", "/master/api/v1/scheduler"];

/// Paths of `/redirect` (top-level requests go to the master's process).
const REDIRECT_PATHS: [&str; 2] = ["/redirect", "/master/redirect"];

/// Paths of `/state`.
const STATE_PATHS: [&str; 2] = ["/state", "/master/state"];

/// Name of the stream id header.
pub const MESOS_STREAM_ID: &str = "Mesos-Stream-Id";

pub(crate) async fn handle(request: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    let path = request.uri().path();
    if path_under(path, REDIRECT_PATHS) {
        return redirect(&request, &shared);
    }
    if STATE_PATHS.contains(&path) {
        return state(&request, &shared);
    }
    if !SCHEDULER_PATHS.contains(&path) {
        return text_response(StatusCode::NOT_FOUND, String::new());
    }
    // libprocess authenticates on the route, before the handler runs.
    let principal = match authenticate(&request, &shared) {
        Authentication::Off => None,
        Authentication::Principal(principal) => Some(principal),
        Authentication::Refused => return unauthorized(),
    };
    let leadership = shared.lock().leadership.clone();
    if leadership != Leadership::Leading {
        return redirect(&request, &shared);
    }
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let message = format!("Failed to read request body: {e}");
            return text_response(StatusCode::BAD_REQUEST, message);
        }
    };
    let header = |name| parts.headers.get(name).map(HeaderValue::as_bytes);
    let head = RequestHead {
        method: &parts.method,
        content_type: header(CONTENT_TYPE.as_str()),
        accept: header(ACCEPT.as_str()),
        stream_id: header(MESOS_STREAM_ID),
        principal: principal.as_deref(),
    };
    let checked = check_request(head, &body);
    let admission = {
        let mut state = shared.lock();
        let admission = match checked {
            Err(refusal) => {
                if state.setup.record_history {
                    state.calls.extend(refusal.call.map(|call| *call));
                }
                Err(refusal.rejection)
            }
            Ok((call, checked)) => {
                let admission = state.admit(&call, checked, head, Instant::now());
                // Recorded after the effects, as the master logs a call once handled.
                if state.setup.record_history {
                    state.calls.push(call);
                }
                admission
            }
        };
        if let (Err(rejection), true) = (&admission, state.setup.record_history) {
            state.rejections.push(rejection.clone());
        }
        admission
    };
    shared.notify();
    match admission {
        Err(rejection) => rejection_response(rejection),
        Ok(Admission::Accepted) => empty_response(StatusCode::ACCEPTED),
        Ok(Admission::Stream {
            content_type,
            stream_id,
            receiver,
        }) => {
            let mut response = stream_response(content_type, receiver);
            if let Ok(value) = HeaderValue::from_str(&stream_id) {
                response.headers_mut().insert(MESOS_STREAM_ID, value);
            }
            response
        }
    }
}

/// The outcome of authenticating a request.
enum Authentication {
    /// `--authenticate_http_frameworks` is off.
    Off,
    /// Authenticated as this principal.
    Principal(String),
    /// Refused (recorded as a rejection): the answer is 401.
    Refused,
}

/// With `--authenticate_http_frameworks`, the Basic authenticator's verdict.
fn authenticate(request: &Request<Incoming>, shared: &Shared) -> Authentication {
    let mut state = shared.lock();
    let Some(credentials) = &state.setup.http_framework_credentials else {
        return Authentication::Off;
    };
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if let Some(principal) = basic_principal(credentials, authorization) {
        return Authentication::Principal(principal);
    }
    if state.setup.record_history {
        state
            .rejections
            .push(Rejection::new(StatusCode::UNAUTHORIZED, UNAUTHORIZED_BODY));
    }
    drop(state);
    shared.notify();
    Authentication::Refused
}

/// libprocess' `Unauthorized`: `WWW-Authenticate: Basic realm="<realm>"`,
/// body "401 Unauthorized.".
fn unauthorized() -> Response<Body> {
    let mut response = text_response(StatusCode::UNAUTHORIZED, UNAUTHORIZED_BODY.to_owned());
    let challenge = format!("Basic realm=\"{SCHEDULER_REALM}\"");
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// Whether libprocess routes `path` to one of `routes` (the route itself
/// or a path below it).
fn path_under(path: &str, routes: [&str; 2]) -> bool {
    routes
        .iter()
        .any(|route| path == *route || path.strip_prefix(route).is_some_and(|r| r.starts_with('/')))
}

/// `Master::Http::state`: a non-leading master redirects; the leader
/// answers with its state as JSON (`endpoints.rs`). The read-only realm's
/// authentication (`--authenticate_http_readonly`) is not simulated.
fn state(request: &Request<Incoming>, shared: &Shared) -> Response<Body> {
    let state = shared.lock();
    if state.leadership != Leadership::Leading {
        drop(state);
        return redirect(request, shared);
    }
    let body = super::endpoints::state_json(&state).to_string();
    let mut response = text_response(StatusCode::OK, body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `Master::Http::redirect`: 503 `No leader elected` without a leader,
/// else 307 to `//<leader hostname>:<port>` followed by the request's path
/// and query (protocol-relative: the client keeps its scheme) — only the
/// base for `/redirect` itself, and 404 below it (no redirect loops).
fn redirect(request: &Request<Incoming>, shared: &Shared) -> Response<Body> {
    let base = {
        let state = shared.lock();
        match &state.leadership {
            Leadership::None => {
                let message = "No leader elected".to_owned();
                return text_response(StatusCode::SERVICE_UNAVAILABLE, message);
            }
            Leadership::Leading => format!("//{}:{}", state.setup.hostname, state.address.port()),
            Leadership::Other { hostname, address } => {
                format!("//{hostname}:{}", address.port())
            }
        }
    };
    let path = request.uri().path();
    let location = if REDIRECT_PATHS.contains(&path) {
        base
    } else if path_under(path, REDIRECT_PATHS) {
        return text_response(StatusCode::NOT_FOUND, String::new());
    } else {
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or_else(|| path.to_owned(), |pq| pq.as_str().to_owned());
        format!("{base}{path_and_query}")
    };
    let mut response = empty_response(StatusCode::TEMPORARY_REDIRECT);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}
