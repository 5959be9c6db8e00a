//! HTTP rules and plumbing shared by the fake agent and the fake master:
//! the `Rejection` answer, libprocess' Accept matching, stout's uuid check,
//! the accept loop with one task per connection, and response builders.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

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
use tokio_rustls::TlsAcceptor;

use super::codec::ContentType;
use crate::error::HarnessError;

/// Response body type of the fake servers.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A refused request: the answer, and the call when decoding got that far (so that it can
/// still be recorded). `C` is the API's `Call` type.
#[derive(Debug)]
pub(crate) struct Refusal<C> {
    pub(crate) call: Option<Box<C>>,
    pub(crate) rejection: Rejection,
}

impl<C> Refusal<C> {
    /// Refused before the body was decoded.
    pub(crate) fn before_decoding(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            call: None,
            rejection: Rejection::new(status, message),
        }
    }

    /// Refused after decoding `call`.
    pub(crate) fn of_call(call: C, status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            call: Some(Box::new(call)),
            rejection: Rejection::new(status, message),
        }
    }
}

/// A non-2xx answer of a fake server: status code and Mesos' message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status code.
    pub status: StatusCode,
    /// Response body (Mesos' reason text).
    pub message: String,
}

impl Rejection {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Rejection {
            status,
            message: message.into(),
        }
    }
}

/// stout `id::UUID::fromBytes`: exactly 16 bytes with a known version (1–5).
pub(crate) fn check_uuid_bytes(uuid: &[u8]) -> Result<(), String> {
    if uuid.len() != 16 {
        return Err(format!(
            "Not a valid UUID: expecting 16 bytes, got {}",
            uuid.len()
        ));
    }
    let version = uuid[6] >> 4;
    if !(1..=5).contains(&version) {
        return Err(format!("Not a valid UUID: unknown version {version}"));
    }
    Ok(())
}

/// Mesos' choice of stream encoding: JSON if acceptable (a missing `Accept`
/// accepts everything), else protobuf if acceptable, else none.
pub(crate) fn negotiate_stream_type(accept: Option<&[u8]>) -> Option<ContentType> {
    [ContentType::Json, ContentType::Protobuf]
        .into_iter()
        .find(|ct| accepts_media_type(accept, ct.mime()))
}

/// libprocess `Request::acceptsMediaType`: the most specific matching range
/// (exact, then `type/*`, then `*/*`) decides, and accepts iff its `q` > 0.
pub(crate) fn accepts_media_type(accept: Option<&[u8]>, media_type: &str) -> bool {
    let Some(accept) = accept else {
        return true;
    };
    let Ok(accept) = std::str::from_utf8(accept) else {
        return false;
    };
    let Some((main_type, _)) = media_type.split_once('/') else {
        return false;
    };
    let ranges: Vec<(String, f64)> = accept.split(',').filter_map(parse_media_range).collect();
    let candidates = [
        media_type.to_owned(),
        format!("{main_type}/*"),
        "*/*".to_owned(),
    ];
    for candidate in candidates {
        if let Some((_, q)) = ranges
            .iter()
            .find(|(range, _)| range.eq_ignore_ascii_case(&candidate))
        {
            return *q > 0.0;
        }
    }
    false
}

/// `"application/json; q=0.5"` → `("application/json", 0.5)`; a malformed
/// `q` makes the range unusable.
fn parse_media_range(item: &str) -> Option<(String, f64)> {
    let mut parts = item.split(';').map(str::trim);
    let range = parts.next().filter(|r| !r.is_empty())?.to_owned();
    let mut q = 1.0;
    for parameter in parts {
        if let Some((name, value)) = parameter.split_once('=') {
            if name.trim().eq_ignore_ascii_case("q") {
                q = value.trim().parse::<f64>().ok()?;
            }
        }
    }
    Some((range, q))
}

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

/// Serves `listener` with HTTP/1.1, one task per connection, answering every
/// request with `handler`.
pub(crate) fn serve<H, F>(listener: TcpListener, handler: H) -> ServerHandle
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    serve_with(listener, None, handler)
}

/// [`serve`], over TLS with `tls` when given: a client that does not trust the
/// certificate ends the handshake, and its connection is dropped.
pub(crate) fn serve_with<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
) -> ServerHandle
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    // Accept errors (e.g. EMFILE) are transient for a test server.
                    let Ok((stream, _)) = accepted else { continue };
                    let handler = handler.clone();
                    let tls = tls.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| {
                            let answer = handler(request);
                            async move { Ok::<_, Infallible>(answer.await) }
                        });
                        let http = hyper::server::conn::http1::Builder::new();
                        match tls {
                            None => {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                            Some(acceptor) => {
                                let Ok(stream) = acceptor.accept(stream).await else {
                                    return;
                                };
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
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

/// 200 whose body is the records arriving on `receiver`, ending when the
/// sender is dropped.
pub(crate) fn stream_response(
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

/// The answer to a rejected request (405 carries `Allow: POST`).
pub(crate) fn rejection_response(rejection: Rejection) -> Response<Body> {
    let status = rejection.status;
    let mut response = text_response(status, rejection.message);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// A plain-text answer (empty body when `message` is empty).
pub(crate) fn text_response(status: StatusCode, message: String) -> Response<Body> {
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

/// An answer without body.
pub(crate) fn empty_response(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()).boxed_unsync());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_accept_and_wildcards_choose_json() {
        assert_eq!(negotiate_stream_type(None), Some(ContentType::Json));
        assert_eq!(negotiate_stream_type(Some(b"*/*")), Some(ContentType::Json));
        assert_eq!(
            negotiate_stream_type(Some(b"application/*")),
            Some(ContentType::Json)
        );
    }

    #[test]
    fn protobuf_is_chosen_only_when_json_is_not_acceptable() {
        let accept = b"application/x-protobuf";
        assert_eq!(
            negotiate_stream_type(Some(accept)),
            Some(ContentType::Protobuf)
        );
        let accept = b"application/json;q=0, */*";
        assert_eq!(
            negotiate_stream_type(Some(accept)),
            Some(ContentType::Protobuf)
        );
        let accept = b"application/x-protobuf, application/json";
        assert_eq!(negotiate_stream_type(Some(accept)), Some(ContentType::Json));
    }

    #[test]
    fn accept_allowing_neither_type_negotiates_nothing() {
        assert_eq!(negotiate_stream_type(Some(b"text/plain")), None);
        assert_eq!(negotiate_stream_type(Some(b"application/*;q=0")), None);
    }

    #[test]
    fn uuid_must_be_sixteen_bytes_of_a_known_version() {
        let mut uuid = [0u8; 16];
        uuid[6] = 0x40;
        assert_eq!(check_uuid_bytes(&uuid), Ok(()));
        assert!(check_uuid_bytes(&uuid[..15]).is_err());
        uuid[6] = 0xc0;
        assert!(check_uuid_bytes(&uuid).is_err());
    }
}
