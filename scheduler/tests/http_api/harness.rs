//! The server under test: the real router served by `serve` on 127.0.0.1:0, a client, and
//! small helpers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use eremetic::http::{router, serve, HttpConfig, TlsFiles};
use eremetic::metrics::Metrics;
use futures::StreamExt;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::fake::Fake;

/// Upper bound for any awaited condition; generous, it only bounds a hang.
const PATIENCE: Duration = Duration::from_secs(20);

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) fake: Arc<Fake>,
    pub(crate) metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), eremetic::http::HttpError>>,
    pub(crate) client: reqwest::Client,
}

impl Server {
    pub(crate) async fn start(config: HttpConfig) -> Server {
        Server::start_with(config, None, "http", reqwest::Client::new()).await
    }

    pub(crate) async fn start_with(
        config: HttpConfig,
        tls: Option<TlsFiles>,
        scheme: &str,
        client: reqwest::Client,
    ) -> Server {
        let fake = Fake::new();
        let metrics = Arc::new(Metrics::new());
        let app = router(fake.clone(), metrics.clone(), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app, tls, async move {
            let _ = stopped.await;
        }));
        let host = if scheme == "https" {
            "localhost"
        } else {
            "127.0.0.1"
        };
        Server {
            base: format!("{scheme}://{host}:{port}"),
            fake,
            metrics,
            stop: Some(stop),
            task,
            client,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        let bytes = body.to_string();
        self.client
            .post(self.url(path))
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        within(self.task).await.unwrap().unwrap();
    }
}

pub(crate) fn config() -> HttpConfig {
    HttpConfig {
        version: "1.2.3".into(),
        ..HttpConfig::default()
    }
}

pub(crate) async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("condition not met in time")
}

pub(crate) fn valid_v1() -> Value {
    json!({"image": "busybox", "command": "echo hi", "cpu": 0.1, "mem": 32})
}

pub(crate) async fn body_json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// Reads `stream` into `seen` until it contains `wanted`.
pub(crate) async fn read_until<S, B>(stream: &mut S, seen: &mut String, wanted: &str)
where
    S: futures::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    within(async {
        while !seen.contains(wanted) {
            let chunk = stream.next().await.expect("stream ended early").unwrap();
            seen.push_str(&String::from_utf8_lossy(chunk.as_ref()));
        }
    })
    .await;
}

pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers["content-type"] == "application/json; charset=UTF-8"
}
