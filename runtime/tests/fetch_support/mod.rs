//! Shared helpers for the fetch tests: a tiny real HTTP/1.1 server on 127.0.0.1 and archive
//! builders (including malicious archives the `tar` and `zip` writers would refuse to build).

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the server answers for a path.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status with an empty body.
    Status(u16),
    /// Headers announcing a body, then nothing for a long time.
    Stall,
    /// 200 with this body sent chunked (no `Content-Length` announces its size).
    Chunked(Vec<u8>),
    /// The first request gets the full `Content-Length` but only half of this body before the
    /// connection closes; later requests get all of it.
    TruncatedOnce(Vec<u8>),
    /// 200 with this body, sent once the semaphore gives a permit (which is used up).
    Held(Vec<u8>, Arc<tokio::sync::Semaphore>),
}

/// A server answering GET requests from a fixed table (the query string is ignored).
pub struct TestServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
    requests: Requests,
}

/// Requests received so far, by path.
type Requests = Arc<Mutex<HashMap<String, usize>>>;

impl TestServer {
    pub async fn start(routes: Vec<(&str, Reply)>) -> Self {
        let routes: Arc<HashMap<String, Reply>> = Arc::new(
            routes
                .into_iter()
                .map(|(path, reply)| (path.to_owned(), reply))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Requests::default();
        let counted = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, routes.clone(), counted.clone()));
            }
        });
        TestServer {
            addr,
            task,
            requests,
        }
    }

    /// How many requests for `path` (query string ignored) the server has received.
    pub fn requests(&self, path: &str) -> usize {
        let requests = self.requests.lock().unwrap();
        requests.get(path).copied().unwrap_or(0)
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    routes: Arc<HashMap<String, Reply>>,
    requests: Requests,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let target = text.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let reply = routes.get(path).cloned().unwrap_or(Reply::Status(404));
    let seen = {
        let mut requests = requests.lock().unwrap();
        let count = requests.entry(path.to_owned()).or_insert(0);
        *count += 1;
        *count
    };
    let (status, body) = match reply {
        Reply::Body(body) => (200, body),
        Reply::TruncatedOnce(body) if seen == 1 => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body[..body.len() / 2]).await;
            let _ = stream.shutdown().await;
            return;
        }
        Reply::TruncatedOnce(body) => (200, body),
        Reply::Held(body, gate) => {
            gate.acquire().await.unwrap().forget();
            (200, body)
        }
        Reply::Status(status) => (status, Vec::new()),
        Reply::Chunked(body) => {
            let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream
                .write_all(format!("{:x}\r\n", body.len()).as_bytes())
                .await;
            let _ = stream.write_all(&body).await;
            let _ = stream.write_all(b"\r\n0\r\n\r\n").await;
            let _ = stream.shutdown().await;
            return;
        }
        Reply::Stall => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
    };
    let head = format!(
        "HTTP/1.1 {status} Status\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

/// One archive member.
pub enum Member<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

/// A tar archive. Names and link targets are written raw, so that unsafe ones (`..`, absolute)
/// end up in the archive as an attacker would put them.
pub fn tar(members: &[Member<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for member in members {
        let mut header = tar::Header::new_gnu();
        let (name, data): (&str, &[u8]) = match member {
            Member::File(name, data, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                (name, data)
            }
            Member::Dir(name) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                (name, &[])
            }
            Member::Symlink(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                let slot = &mut header.as_old_mut().linkname;
                slot[..target.len()].copy_from_slice(target.as_bytes());
                (name, &[])
            }
        };
        let slot = &mut header.as_old_mut().name;
        slot[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

pub fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A zip archive; names are used as given (the writer does not check them).
pub fn zip(members: &[Member<'_>]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for member in members {
        let options = zip::write::SimpleFileOptions::default();
        match member {
            Member::File(name, data, mode) => {
                writer
                    .start_file(*name, options.unix_permissions(*mode))
                    .unwrap();
                writer.write_all(data).unwrap();
            }
            Member::Dir(name) => writer.add_directory(*name, options).unwrap(),
            Member::Symlink(name, target) => writer.add_symlink(*name, *target, options).unwrap(),
        }
    }
    writer.finish().unwrap().into_inner()
}
