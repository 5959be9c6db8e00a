//! HTTP/1.1 plumbing: the accept loop, one task per connection, and the
//! handler that turns a request into the rules' and the state's answer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc::UnboundedReceiver, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use super::codec::ContentType;
use super::rules::{check_request, Rejection, RequestHead};
use super::state::Admission;
use super::Shared;
use crate::error::HarnessError;

/// Response body type of the fake agent.
type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Paths that reach the executor handler: the documented one, the one the
/// official library derives from `MESOS_SLAVE_PID`, and the latter
/// percent-encoded.
const EXECUTOR_PATHS: [&str; 3] = [
    "/api/v1/executor",
    "/slave(1)/api/v1/executor",
    "/slave%281%29/api/v1/executor",
];

/// A running accept loop; `stop` closes the listener and drops every
/// connection without a clean HTTP end, as a dying process does.
/// Dropping the handle aborts the loop (and with it every connection).
#[derive(Debug)]
pub(crate) struct ServerHandle {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Stops the loop and waits until the listener and every connection are
    /// closed, so the port can be bound again.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Binds `address` with `SO_REUSEADDR`, so a restart can take the same port
/// while old connections linger in TIME_WAIT.
pub(crate) fn bind(address: SocketAddr) -> Result<TcpListener, HarnessError> {
    let bind_error = |source| HarnessError::Bind { address, source };
    let socket = TcpSocket::new_v4().map_err(bind_error)?;
    socket.set_reuseaddr(true).map_err(bind_error)?;
    socket.bind(address).map_err(bind_error)?;
    socket.listen(128).map_err(bind_error)
}

/// Starts serving `listener`.
pub(crate) fn serve(listener: TcpListener, shared: Arc<Shared>) -> ServerHandle {
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    // Accept errors (e.g. EMFILE) are transient for a test server.
                    let Ok((stream, _)) = accepted else { continue };
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        let service = service_fn(move |request| {
                            handle(request, Arc::clone(&shared))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        connections.shutdown().await;
    });
    ServerHandle {
        stop: Some(stop),
        task: Some(task),
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, Infallible> {
    if !EXECUTOR_PATHS.contains(&request.uri().path()) {
        return Ok(text_response(StatusCode::NOT_FOUND, String::new()));
    }
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let message = format!("Failed to read request body: {e}");
            return Ok(text_response(StatusCode::BAD_REQUEST, message));
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
    Ok(match admission {
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
    })
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

fn stream_response(
    content_type: ContentType,
    mut receiver: UnboundedReceiver<Bytes>,
) -> Response<Body> {
    let records = futures::stream::poll_fn(move |cx| {
        receiver
            .poll_recv(cx)
            .map(|record| record.map(|bytes| Ok::<_, Infallible>(Frame::data(bytes))))
    });
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(records)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type.mime()));
    response
}

fn rejection_response(rejection: Rejection) -> Response<Body> {
    let status = rejection.status;
    let mut response = text_response(status, rejection.message);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

fn text_response(status: StatusCode, message: String) -> Response<Body> {
    if message.is_empty() {
        return empty_response(status);
    }
    let mut response = Response::new(Full::new(Bytes::from(message)).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn empty_response(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()).boxed_unsync());
    *response.status_mut() = status;
    response
}
