//! HTTP/1.1 plumbing: the accept loop, one task per connection, and the
//! handler that turns a request into the rules' and the state's answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

use super::rules::{check_request, RequestHead};
use super::state::Admission;
use super::Shared;
use crate::common::http::{
    empty_response, rejection_response, stream_response, text_response, Body, ServerHandle,
};
use crate::error::HarnessError;

/// Paths that reach the executor handler: the documented one, the one the
/// official library derives from `MESOS_SLAVE_PID`, and the latter
/// percent-encoded.
const EXECUTOR_PATHS: [&str; 3] = [
    "/api/v1/executor",
    "/slave(1)/api/v1/executor",
    "/slave%281%29/api/v1/executor",
];

/// Binds `address` with `SO_REUSEADDR`, so a restart can take the same port.
pub(crate) fn bind(address: SocketAddr) -> Result<TcpListener, HarnessError> {
    crate::common::http::bind(address)
}

/// Starts serving `listener`.
pub(crate) fn serve(listener: TcpListener, shared: Arc<Shared>) -> ServerHandle {
    crate::common::http::serve(listener, move |request| {
        handle(request, Arc::clone(&shared))
    })
}

async fn handle(request: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    if !EXECUTOR_PATHS.contains(&request.uri().path()) {
        return text_response(StatusCode::NOT_FOUND, String::new());
    }
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let message = format!("Failed to read request body: {e}");
            return text_response(StatusCode::BAD_REQUEST, message);
        }
    };
    let head = RequestHead {
        method: &parts.method,
        content_type: parts.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
        accept: parts
            .headers
            .get(hyper::header::ACCEPT)
            .map(HeaderValue::as_bytes),
    };
    let accepted_types = shared.lock().setup.accepted_content_types.clone();
    let checked = check_request(head, &body, &accepted_types);
    let (admission, heartbeat_interval) = {
        let mut state = shared.lock();
        let admission = match checked {
            Err(refusal) => {
                state.calls.extend(refusal.call.map(|call| *call));
                Err(refusal.rejection)
            }
            Ok((call, kind)) => {
                let admission = state.admit(&call, kind);
                state.calls.push(call);
                admission
            }
        };
        if let Err(rejection) = &admission {
            state.rejections.push(rejection.clone());
        }
        (admission, state.setup.heartbeat_interval)
    };
    shared.notify();
    match admission {
        Err(rejection) => rejection_response(rejection),
        Ok(Admission::Accepted) => empty_response(StatusCode::ACCEPTED),
        Ok(Admission::Stream {
            content_type,
            receiver,
            subscription_id,
        }) => {
            if let Some(id) = subscription_id {
                tokio::spawn(heartbeats(Arc::clone(&shared), id, heartbeat_interval));
            }
            stream_response(content_type, receiver)
        }
    }
}

/// Sends HEARTBEAT every `interval` while subscription `id` is live.
async fn heartbeats(shared: Arc<Shared>, id: u64, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        if !shared.lock().heartbeat(id) {
            return;
        }
    }
}
