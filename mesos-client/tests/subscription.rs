//! The client against a real HTTP server on loopback that answers as a master or an agent
//! would: redirects to the leader, stream ids, RecordIO streams in either media type,
//! silence, rejected calls.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use mesos_client::{Authorization, Client, ClientConfig, ClientError};
use mesos_proto::recordio;
use mesos_proto::v1::scheduler::{event, Event};
use prost::Message;
use tokio::net::TcpListener;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// What the server saw of each request: method, path, headers of interest.
#[derive(Debug, Clone, Default)]
struct Seen {
    path: String,
    accept: Option<String>,
    content_type: Option<String>,
    authorization: Option<String>,
    stream_id: Option<String>,
}

type Handler = Arc<dyn Fn(&Seen) -> Response<Body> + Send + Sync>;

/// A server on an ephemeral loopback port; `handler` answers every request.
async fn serve(handler: Handler) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let handler = handler.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                    };
                    let seen = Seen {
                        path: request.uri().path().to_owned(),
                        accept: header("accept"),
                        content_type: header("content-type"),
                        authorization: header("authorization"),
                        stream_id: header("mesos-stream-id"),
                    };
                    log.lock().unwrap().push(seen.clone());
                    let response = handler(&seen);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    (address, seen)
}

fn full(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response<Body> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body.into()).boxed()).unwrap()
}

/// A `200` stream of `records`, then (with `hold`) a stream that stays open and silent.
fn stream(
    media_type: &str,
    stream_id: Option<&str>,
    records: Vec<Vec<u8>>,
    hold: bool,
) -> Response<Body> {
    let mut framed: Vec<Result<Frame<Bytes>, Infallible>> = records
        .into_iter()
        .map(|record| Ok(Frame::data(recordio::encode_record(&record).unwrap())))
        .collect();
    let chunks = futures::stream::iter(std::mem::take(&mut framed));
    let body: Body = if hold {
        BodyExt::boxed(StreamBody::new(chunks.chain(futures::stream::pending())))
    } else {
        BodyExt::boxed(StreamBody::new(chunks))
    };
    let mut builder = Response::builder()
        .status(200)
        .header("content-type", media_type);
    if let Some(id) = stream_id {
        builder = builder.header("mesos-stream-id", id);
    }
    builder.body(body).unwrap()
}

fn subscribed() -> Event {
    Event {
        r#type: Some(event::Type::Subscribed as i32),
        ..Default::default()
    }
}

fn heartbeat() -> Event {
    Event {
        r#type: Some(event::Type::Heartbeat as i32),
        ..Default::default()
    }
}

fn client(config: ClientConfig) -> Client {
    Client::new(config).unwrap()
}

#[tokio::test]
async fn subscribe_follows_a_protocol_relative_redirect_to_the_leader() {
    let (leader, leader_seen) = serve(Arc::new(|_: &Seen| {
        stream(
            "application/x-protobuf",
            Some("stream-7"),
            vec![subscribed().encode_to_vec(), heartbeat().encode_to_vec()],
            true,
        )
    }))
    .await;
    let location = format!("//{leader}/api/v1/scheduler");
    let (follower, _) = serve(Arc::new(move |_: &Seen| {
        full(307, &[("location", &location)], "")
    }))
    .await;
    let client = client(ClientConfig::default());
    let mut subscription = client
        .subscribe::<Event>(
            &format!("http://{follower}/api/v1/scheduler"),
            "SUBSCRIBE",
            b"call".to_vec(),
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(
        subscription.endpoint(),
        format!("http://{leader}/api/v1/scheduler")
    );
    assert_eq!(subscription.require_stream_id().unwrap(), "stream-7");
    assert_eq!(subscription.next_event().await.unwrap(), subscribed());
    assert_eq!(subscription.next_event().await.unwrap(), heartbeat());
    let seen = leader_seen.lock().unwrap()[0].clone();
    assert_eq!(seen.accept.as_deref(), Some("application/x-protobuf"));
    assert_eq!(seen.content_type.as_deref(), Some("application/x-protobuf"));
}

#[tokio::test]
async fn a_silent_stream_ends_with_a_heartbeat_timeout() {
    let (agent, _) = serve(Arc::new(|_: &Seen| {
        stream(
            "application/x-protobuf",
            None,
            vec![subscribed().encode_to_vec()],
            true,
        )
    }))
    .await;
    let mut subscription = client(ClientConfig::default())
        .subscribe::<Event>(&format!("http://{agent}/api"), "SUBSCRIBE", vec![], None)
        .await
        .unwrap();
    assert_eq!(subscription.next_event().await.unwrap(), subscribed());
    subscription.set_event_timeout(Some(Duration::from_millis(200)));
    let error = subscription.next_event().await.unwrap_err();
    assert!(
        matches!(error, ClientError::HeartbeatTimeout { .. }),
        "{error}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn json_streams_are_decoded_and_a_closed_stream_ends_the_events() {
    let (agent, _) = serve(Arc::new(|_: &Seen| {
        stream(
            "application/json",
            None,
            vec![
                br#"{"type":"SUBSCRIBED"}"#.to_vec(),
                br#"{"type":"HEARTBEAT"}"#.to_vec(),
            ],
            false,
        )
    }))
    .await;
    let subscription = client(ClientConfig::default())
        .subscribe::<Event>(&format!("http://{agent}/api"), "SUBSCRIBE", vec![], None)
        .await
        .unwrap();
    assert!(subscription.stream_id().is_none());
    assert!(subscription.require_stream_id().is_err());
    let events: Vec<_> = subscription.into_events().collect().await;
    let events: Vec<Event> = events.into_iter().map(Result::unwrap).collect();
    assert_eq!(events, vec![subscribed(), heartbeat()]);
}

#[tokio::test]
async fn an_undecodable_event_is_a_permanent_error_naming_the_media_type() {
    let (agent, _) = serve(Arc::new(|_: &Seen| {
        stream("application/json", None, vec![b"{not json".to_vec()], true)
    }))
    .await;
    let mut subscription = client(ClientConfig::default())
        .subscribe::<Event>(&format!("http://{agent}/api"), "SUBSCRIBE", vec![], None)
        .await
        .unwrap();
    let error = subscription.next_event().await.unwrap_err();
    assert!(error.to_string().contains("application/json"), "{error}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_subscription_answered_with_another_media_type_is_refused() {
    let (agent, _) = serve(Arc::new(|_: &Seen| {
        full(200, &[("content-type", "text/html")], "<p>")
    }))
    .await;
    let error = client(ClientConfig::default())
        .subscribe::<Event>(&format!("http://{agent}/api"), "SUBSCRIBE", vec![], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::UnexpectedContentType { content_type, .. } if content_type == "text/html"),
        "{error}"
    );
}

#[tokio::test]
async fn endless_redirects_are_given_up() {
    let (address, _) = serve(Arc::new(|seen: &Seen| {
        let next = if seen.path == "/a" { "/b" } else { "/a" };
        full(307, &[("location", next)], "")
    }))
    .await;
    let config = ClientConfig {
        max_redirects: 3,
        ..ClientConfig::default()
    };
    let error = client(config)
        .subscribe::<Event>(&format!("http://{address}/a"), "SUBSCRIBE", vec![], None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::TooManyRedirects { hops: 3, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn calls_carry_the_stream_id_and_credentials_and_report_refusals() {
    let (master, seen) = serve(Arc::new(|seen: &Seen| match seen.path.as_str() {
        "/ok" => full(202, &[], ""),
        "/moved" => full(
            307,
            &[("location", "//elsewhere:5050/api/v1/scheduler")],
            "",
        ),
        _ => full(
            400,
            &[],
            "Failed to validate scheduler::Call: Expecting 'framework_id' to be present\n",
        ),
    }))
    .await;
    let config = ClientConfig {
        authorization: Some(Authorization::Basic {
            principal: "eremetic".into(),
            secret: "s3cret".into(),
        }),
        ..ClientConfig::default()
    };
    let client = client(config);
    let base = format!("http://{master}");
    client
        .call(&format!("{base}/ok"), "ACCEPT", vec![1], Some("stream-7"))
        .await
        .unwrap();
    let first = seen.lock().unwrap()[0].clone();
    assert_eq!(first.stream_id.as_deref(), Some("stream-7"));
    assert_eq!(
        first.authorization.as_deref(),
        Some("Basic ZXJlbWV0aWM6czNjcmV0")
    );
    let moved = client
        .call(&format!("{base}/moved"), "ACCEPT", vec![], Some("stream-7"))
        .await
        .unwrap_err();
    assert!(
        matches!(&moved, ClientError::NotLeader { location: Some(l), .. } if l == "//elsewhere:5050/api/v1/scheduler"),
        "{moved}"
    );
    assert!(moved.is_transient());
    let refused = client
        .call(&format!("{base}/bad"), "DECLINE", vec![], None)
        .await
        .unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains("DECLINE") && message.contains("400") && message.contains("framework_id"),
        "{message}"
    );
    assert!(!refused.is_transient());
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transient_connection_error_naming_the_url() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = unused.local_addr().unwrap();
    drop(unused);
    let url = format!("http://{address}/api/v1/executor");
    let error = client(ClientConfig::default())
        .call(&url, "UPDATE", vec![], None)
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Connection { .. }), "{error}");
    assert!(error.to_string().contains(&url), "{error}");
    assert!(error.is_transient());
}

#[test]
fn credentials_are_never_shown_in_debug_output() {
    let basic = Authorization::Basic {
        principal: "p".into(),
        secret: "s3cret".into(),
    };
    assert!(!format!("{basic:?}").contains("s3cret"));
    assert!(!format!("{:?}", Authorization::Bearer("tok3n".into())).contains("tok3n"));
}
