//! A minimal executor-side HTTP client for the harness tests: raw hyper
//! HTTP/1.1 connections (one per request, as the protocol wants for the
//! subscription), call builders and a RecordIO event reader.
// Test helpers: a panic is the failure report, as in the tests themselves
// (clippy.toml allows unwrap only inside #[test] functions).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mesos_harness::agent::{AgentSetup, ContentType, FakeAgent};
use mesos_proto::recordio::{decode_stream, RecordIoCodec};
use mesos_proto::v1::executor::{call, event, Call, Event};
use mesos_proto::v1::{
    task_status, AgentId, ExecutorId, FrameworkId, TaskId, TaskInfo, TaskState, TaskStatus,
};
use prost::Message as _;

pub const FRAMEWORK: &str = "fw-1";
pub const EXECUTOR: &str = "exec-1";
pub const AGENT: &str = "agent-1";
pub const CONTAINER: &str = "cont-1";
pub const WAIT: Duration = Duration::from_secs(5);

pub fn setup() -> AgentSetup {
    AgentSetup::new(FRAMEWORK, EXECUTOR, AGENT, CONTAINER)
}

pub async fn start() -> FakeAgent {
    FakeAgent::start(setup()).await.unwrap()
}

/// Sends one request on a fresh connection and returns the response head
/// with its (possibly streaming) body.
pub async fn request(
    agent: &FakeAgent,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(agent.endpoint())
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", agent.endpoint().to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    sender
        .send_request(builder.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap()
}

/// A complete (non-streaming) answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub async fn post_raw(agent: &FakeAgent, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let response = request(agent, Method::POST, "/api/v1/executor", headers, body).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub fn encode_call(call: &Call, content_type: ContentType) -> Vec<u8> {
    match content_type {
        ContentType::Json => mesos_proto::json::to_vec(call).unwrap(),
        ContentType::Protobuf => call.encode_to_vec(),
    }
}

/// POSTs a non-SUBSCRIBE call and reads the whole answer.
pub async fn post_call(agent: &FakeAgent, call: &Call, content_type: ContentType) -> Answer {
    let headers = [("Content-Type", content_type.mime())];
    post_raw(agent, &headers, encode_call(call, content_type)).await
}

type RecordStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// An open SUBSCRIBE stream.
pub struct EventStream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    content_type: ContentType,
    records: RecordStream,
}

impl EventStream {
    /// The next event, `None` when the stream ended (cleanly or not).
    pub async fn next(&mut self) -> Option<Result<Event, String>> {
        let record = tokio::time::timeout(WAIT, self.records.next())
            .await
            .expect("no event within the wait time")?;
        Some(record.map(|payload| match self.content_type {
            ContentType::Json => mesos_proto::json::from_slice(&payload).unwrap(),
            ContentType::Protobuf => Event::decode(payload).unwrap(),
        }))
    }

    /// The next event, which must exist.
    pub async fn event(&mut self) -> Event {
        self.next()
            .await
            .expect("stream ended")
            .expect("stream failed")
    }

    /// The next record's raw payload.
    pub async fn raw_record(&mut self) -> Bytes {
        tokio::time::timeout(WAIT, self.records.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    }
}

/// Subscribes with `Content-Type` `request_type` and the given `Accept`.
pub async fn subscribe_with(
    agent: &FakeAgent,
    request_type: ContentType,
    accept: Option<&str>,
    subscribe: call::Subscribe,
) -> EventStream {
    let mut headers = vec![("Content-Type", request_type.mime())];
    if let Some(accept) = accept {
        headers.push(("Accept", accept));
    }
    let body = encode_call(&subscribe_call(subscribe), request_type);
    let response = request(agent, Method::POST, "/api/v1/executor", &headers, body).await;
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = match headers.get("Content-Type").map(|v| v.as_bytes()) {
        Some(b"application/x-protobuf") => ContentType::Protobuf,
        _ => ContentType::Json,
    };
    let chunks = response.into_body().into_data_stream();
    let records = decode_stream(chunks, RecordIoCodec::new()).map(|r| r.map_err(|e| e.to_string()));
    EventStream {
        status,
        headers,
        content_type,
        records: Box::pin(records),
    }
}

/// Subscribes in JSON with no unacknowledged tasks or updates.
pub async fn subscribe(agent: &FakeAgent) -> EventStream {
    subscribe_with(agent, ContentType::Json, None, call::Subscribe::default()).await
}

pub fn envelope(call_type: call::Type) -> Call {
    Call {
        executor_id: ExecutorId {
            value: EXECUTOR.into(),
        },
        framework_id: FrameworkId {
            value: FRAMEWORK.into(),
        },
        r#type: Some(call_type as i32),
        ..Default::default()
    }
}

pub fn subscribe_call(subscribe: call::Subscribe) -> Call {
    Call {
        subscribe: Some(subscribe),
        ..envelope(call::Type::Subscribe)
    }
}

pub fn update_call(status: TaskStatus) -> Call {
    Call {
        update: Some(call::Update { status }),
        ..envelope(call::Type::Update)
    }
}

pub fn message_call(data: &[u8]) -> Call {
    Call {
        message: Some(call::Message {
            data: data.to_vec(),
        }),
        ..envelope(call::Type::Message)
    }
}

/// A random version-4 uuid as 16 raw bytes.
pub fn uuid_v4() -> Vec<u8> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).unwrap();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes.to_vec()
}

pub fn status(task: &str, state: TaskState) -> TaskStatus {
    TaskStatus {
        task_id: TaskId { value: task.into() },
        state: state as i32,
        source: Some(task_status::Source::Executor as i32),
        uuid: Some(uuid_v4()),
        ..Default::default()
    }
}

pub fn task(id: &str) -> TaskInfo {
    TaskInfo {
        name: format!("task {id}"),
        task_id: TaskId { value: id.into() },
        agent_id: AgentId {
            value: AGENT.into(),
        },
        ..Default::default()
    }
}

pub fn event_type(event: &Event) -> event::Type {
    event.r#type()
}
