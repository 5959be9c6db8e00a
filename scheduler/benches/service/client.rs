//! A lean HTTP/1.1 client: one hyper connection per simulated client, kept alive, with
//! pre-serialized request bodies, so that the client costs the shared CPUs as little as
//! possible.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::{BenchError, Result};

/// One keep-alive connection to the service.
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    addr: SocketAddr,
}

impl Connection {
    /// Connects (with `TCP_NODELAY`, as any latency-minded client does) and runs the
    /// connection's I/O on a task of its own.
    pub(crate) async fn open(addr: SocketAddr) -> Result<Connection> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(BenchError::io(format!("connect to {addr}")))?;
        stream.set_nodelay(true).map_err(BenchError::io(format!(
            "set TCP_NODELAY on the connection to {addr}"
        )))?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(BenchError::http(format!("HTTP/1.1 handshake with {addr}")))?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; errors surface on the
            // next request through the sender.
            let _ = connection.await;
        });
        let host = HeaderValue::from_str(&addr.to_string())
            .map_err(|e| BenchError::Check(format!("{addr} is not a Host header value: {e}")))?;
        Ok(Connection { sender, host, addr })
    }

    /// The server's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends a request and returns the response with its body unread (for streams).
    pub(crate) async fn send(
        &mut self,
        method: &Method,
        uri: &Uri,
        body: Option<&Bytes>,
    ) -> Result<Response<Incoming>> {
        let what = || format!("{method} {uri}");
        self.sender
            .ready()
            .await
            .map_err(BenchError::http(what()))?;
        let mut request = Request::new(Full::new(body.cloned().unwrap_or_default()));
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        self.sender
            .send_request(request)
            .await
            .map_err(BenchError::http(what()))
    }

    /// Sends a request and reads the whole answer: status and body.
    pub(crate) async fn exchange(
        &mut self,
        method: &Method,
        uri: &Uri,
        body: Option<&Bytes>,
    ) -> Result<(u16, Bytes)> {
        let response = self.send(method, uri, body).await?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(BenchError::http(format!("read the body of {method} {uri}")))?
            .to_bytes();
        Ok((status, body))
    }

    /// `GET path`: status and body.
    pub(crate) async fn get(&mut self, path: &str) -> Result<(u16, Bytes)> {
        self.exchange(&Method::GET, &uri(path)?, None).await
    }

    /// `GET path`, which must answer 200; its body.
    pub(crate) async fn get_ok(&mut self, path: &str) -> Result<Bytes> {
        let (status, body) = self.get(path).await?;
        expect_status(&format!("GET {path}"), 200, status, &body)?;
        Ok(body)
    }

    /// `POST path` with a JSON body: status and body.
    pub(crate) async fn post(&mut self, path: &str, body: &Bytes) -> Result<(u16, Bytes)> {
        self.exchange(&Method::POST, &uri(path)?, Some(body)).await
    }
}

/// Parses a request target (`/api/v1/task`).
pub(crate) fn uri(path: &str) -> Result<Uri> {
    path.parse()
        .map_err(|e| BenchError::Check(format!("{path:?} is not a request target: {e}")))
}

/// Fails unless `status` is `expected`, quoting the body.
pub(crate) fn expect_status(what: &str, expected: u16, status: u16, body: &[u8]) -> Result<()> {
    if status == expected {
        return Ok(());
    }
    Err(BenchError::Unexpected {
        what: format!("{what} (expected {expected})"),
        status,
        body: snippet(body),
    })
}

/// The start of a body, as text, for messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(300).collect();
    if cut.len() < text.len() {
        cut.push_str("...");
    }
    cut.trim_end().to_owned()
}
