//! A minimal HTTP/1.1 server that records the callbacks it receives. It can answer the first
//! requests with an error, to prove the sender retries.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Largest request the receiver reads.
const MAX_REQUEST: usize = 1024 * 1024;

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request line, e.g. `POST /callback HTTP/1.1`.
    pub request_line: String,
    /// Headers with lowercased names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The whole request as received (head and body).
    pub raw: Vec<u8>,
    /// The status the receiver answered with.
    pub answered: u16,
}

impl Received {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "callback body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// The receiver: every request is recorded; the first `fail_first` get a 500.
pub struct Receiver {
    address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    accept_loop: JoinHandle<()>,
}

impl Receiver {
    /// A receiver on a free port that answers every request with 200.
    pub async fn start() -> Receiver {
        Receiver::start_on(0, 0).await
    }

    /// A receiver on `port` (0: any free port) answering the first `fail_first` requests
    /// with 500 and the others with 200.
    pub async fn start_on(port: u16, fail_first: usize) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|error| panic!("bind the callback receiver on port {port}: {error}"));
        let address = listener.local_addr().expect("receiver address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(AtomicUsize::new(fail_first));
        let record = Arc::clone(&received);
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = Arc::clone(&record);
                let failures = Arc::clone(&failures);
                tokio::spawn(async move {
                    serve(stream, &record, &failures).await;
                });
            }
        });
        Receiver {
            address,
            received,
            accept_loop,
        }
    }

    /// The callback URL to submit.
    pub fn url(&self) -> String {
        format!("http://{}/callback", self.address)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .map(|list| list.clone())
            .unwrap_or_default()
    }

    /// Waits until `done` holds for the requests received so far (at most `deadline`) and
    /// returns them; `None` on timeout.
    pub async fn wait_until(
        &self,
        deadline: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Option<Vec<Received>> {
        let started = Instant::now();
        loop {
            let received = self.received();
            if done(&received) {
                return Some(received);
            }
            if started.elapsed() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// Reads one request, records it, answers and closes the connection.
async fn serve(mut stream: TcpStream, record: &Mutex<Vec<Received>>, failures: &AtomicUsize) {
    let Some((head_len, raw)) = read_request(&mut stream).await else {
        return;
    };
    let head = String::from_utf8_lossy(&raw[..head_len]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let fail = failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    let answered = if fail { 500 } else { 200 };
    record
        .lock()
        .map(|mut list| {
            list.push(Received {
                request_line,
                headers,
                body: raw[head_len..].to_vec(),
                raw: raw.clone(),
                answered,
            });
        })
        .ok();
    let reply = if fail {
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfail"
    } else {
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    };
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads a request with a `Content-Length` body: (length of the head incl. the blank line,
/// all bytes). `None` when the peer closed before sending a whole request.
async fn read_request(stream: &mut TcpStream) -> Option<(usize, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_len = loop {
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            break end + 4;
        }
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 || raw.len() > MAX_REQUEST {
            return None;
        }
        raw.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&raw[..head_len]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while raw.len() < head_len + length && raw.len() <= MAX_REQUEST {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 {
            break;
        }
        raw.extend_from_slice(&buffer[..read]);
    }
    Some((head_len, raw))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
