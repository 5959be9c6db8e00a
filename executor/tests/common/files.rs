//! Files for the fetch tests: a small real HTTP/1.1 server on 127.0.0.1 (port 0) answering
//! GET requests from a fixed table, and a `.tar.gz` builder.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A server answering `GET <path>` with 200 and the path's body, 404 for other paths.
pub struct FileServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
    requests: Arc<AtomicUsize>,
}

impl FileServer {
    /// Serves `files` (path → body) until dropped.
    pub async fn start(files: Vec<(&str, Vec<u8>)>) -> FileServer {
        let files: Arc<HashMap<String, Vec<u8>>> = Arc::new(
            files
                .into_iter()
                .map(|(path, body)| (path.to_owned(), body))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the file server");
        let addr = listener.local_addr().expect("the file server's address");
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, Arc::clone(&files)));
            }
        });
        FileServer {
            addr,
            task,
            requests,
        }
    }

    /// How many connections (one request each: every answer closes it) were accepted.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The URL of a path on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, files: Arc<HashMap<String, Vec<u8>>>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match files.get(path) {
        Some(body) => ("200 OK", body.as_slice()),
        None => ("404 Not Found", &b""[..]),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}

/// A gzipped tar archive of regular files (name, content), mode 0644.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        builder
            .append_data(&mut header, name, *data)
            .expect("adding an archive member");
    }
    let mut encoder = builder.into_inner().expect("finishing the archive");
    encoder.flush().expect("flushing the archive");
    encoder.finish().expect("compressing the archive")
}
