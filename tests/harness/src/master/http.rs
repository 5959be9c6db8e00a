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

/// Name of the stream id header.
pub const MESOS_STREAM_ID: &str = "Mesos-Stream-Id";

pub(crate) async fn handle(request: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    if !SCHEDULER_PATHS.contains(&request.uri().path()) {
        return text_response(StatusCode::NOT_FOUND, String::new());
    }
    // libprocess authenticates on the route, before the handler runs.
    let principal = match authenticate(&request, &shared) {
        Authentication::Off => None,
        Authentication::Principal(principal) => Some(principal),
        Authentication::Refused => return unauthorized(),
    };
    let leadership = shared.lock().leadership;
    match leadership {
        Leadership::Leading => {}
        Leadership::Other(leader) => return redirect(&request, leader),
        Leadership::None => {
            return text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "No leader elected".to_owned(),
            )
        }
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
                state.calls.extend(refusal.call.map(|call| *call));
                Err(refusal.rejection)
            }
            Ok((call, checked)) => {
                let admission = state.admit(&call, checked, head, Instant::now());
                // Recorded after the effects, as the master logs a call once handled.
                state.calls.push(call);
                admission
            }
        };
        if let Err(rejection) = &admission {
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
    state
        .rejections
        .push(Rejection::new(StatusCode::UNAUTHORIZED, UNAUTHORIZED_BODY));
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

/// `Master::Http::redirect`: 307 to `//<leader>:<port><path>[?query]`
/// (protocol-relative: the client keeps its scheme).
fn redirect(request: &Request<Incoming>, leader: std::net::SocketAddr) -> Response<Body> {
    let path_and_query = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let location = format!("//{}:{}{}", leader.ip(), leader.port(), path_and_query);
    let mut response = empty_response(StatusCode::TEMPORARY_REDIRECT);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}
