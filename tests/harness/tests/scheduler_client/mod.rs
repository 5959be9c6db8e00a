//! A minimal scheduler-side HTTP client for the fake master tests: one hyper
//! HTTP/1.1 connection per request, call builders and a RecordIO event reader.
// Test helpers: a panic is the failure report, as in the tests themselves.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mesos_harness::master::{AgentSpec, ContentType, FakeMaster, MasterSetup};
use mesos_proto::recordio::{decode_stream, RecordIoCodec};
use mesos_proto::v1::scheduler::{call, event, Call, Event};
use mesos_proto::v1::{
    framework_info, value, AgentId, CommandInfo, FrameworkId, FrameworkInfo, Offer, OfferId,
    Resource, TaskId, TaskInfo,
};
use prost::Message as _;

pub const WAIT: Duration = Duration::from_secs(5);
pub const AGENT: &str = "agent-1";

/// A master with fast timers for tests: heartbeats every 200 ms, retries
/// from 200 ms, allocation every 100 ms.
pub fn fast_setup() -> MasterSetup {
    MasterSetup {
        heartbeat_interval: Duration::from_millis(200),
        allocation_interval: Duration::from_millis(100),
        status_update_retry_min: Duration::from_millis(200),
        status_update_retry_max: Duration::from_millis(800),
        ..MasterSetup::default()
    }
}

pub async fn start() -> FakeMaster {
    FakeMaster::start(fast_setup()).await.unwrap()
}

/// A master with one agent (4 cpus, 4096 mem, 10240 disk, ports 31000-32000).
pub async fn start_with_agent() -> FakeMaster {
    let master = start().await;
    master
        .add_agent(AgentSpec::new(AGENT, "127.0.0.1"))
        .unwrap();
    master
}

/// Sends one request on a fresh connection.
pub async fn request(
    address: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", address.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    sender
        .send_request(builder.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap()
}

/// A complete (non-streaming) answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub async fn post_raw(master: &FakeMaster, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let response = request(
        master.endpoint(),
        Method::POST,
        "/api/v1/scheduler",
        headers,
        body,
    )
    .await;
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

/// POSTs a non-SUBSCRIBE call in JSON with this stream id.
pub async fn post_call(master: &FakeMaster, stream_id: &str, call: &Call) -> Answer {
    let headers = [
        ("Content-Type", "application/json"),
        ("Mesos-Stream-Id", stream_id),
    ];
    post_raw(master, &headers, encode_call(call, ContentType::Json)).await
}

type RecordStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// An open SUBSCRIBE stream.
pub struct Subscription {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub stream_id: String,
    pub content_type: ContentType,
    records: RecordStream,
}

impl Subscription {
    /// The next event, `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Event> {
        let record = tokio::time::timeout(WAIT, self.records.next())
            .await
            .expect("no event within the wait time")?;
        let payload = record.ok()?;
        Some(match self.content_type {
            ContentType::Json => mesos_proto::json::from_slice(&payload).unwrap(),
            ContentType::Protobuf => Event::decode(payload).unwrap(),
        })
    }

    /// The next event, which must exist.
    pub async fn event(&mut self) -> Event {
        self.next().await.expect("stream ended")
    }

    /// The next event that is not a HEARTBEAT.
    pub async fn event_skipping_heartbeats(&mut self) -> Event {
        loop {
            let event = self.event().await;
            if event.r#type() != event::Type::Heartbeat {
                return event;
            }
        }
    }

    /// The next event of `event_type` (others are skipped).
    pub async fn event_of(&mut self, event_type: event::Type) -> Event {
        loop {
            let event = self.event().await;
            if event.r#type() == event_type {
                return event;
            }
        }
    }

    /// The offers of the next OFFERS event.
    pub async fn offers(&mut self) -> Vec<Offer> {
        self.event_of(event::Type::Offers)
            .await
            .offers
            .unwrap()
            .offers
    }

    /// The status of the next UPDATE event.
    pub async fn update(&mut self) -> mesos_proto::v1::TaskStatus {
        self.event_of(event::Type::Update)
            .await
            .update
            .unwrap()
            .status
    }

    /// The statuses of the UPDATE events arriving within `window` (other
    /// events are skipped).
    pub async fn updates_within(&mut self, window: Duration) -> Vec<mesos_proto::v1::TaskStatus> {
        let deadline = tokio::time::Instant::now() + window;
        let mut statuses = Vec::new();
        while let Ok(Some(record)) = tokio::time::timeout_at(deadline, self.records.next()).await {
            let payload = record.unwrap();
            let event: Event = match self.content_type {
                ContentType::Json => mesos_proto::json::from_slice(&payload).unwrap(),
                ContentType::Protobuf => Event::decode(payload).unwrap(),
            };
            statuses.extend(event.update.map(|u| u.status));
        }
        statuses
    }

    /// Asserts that no event other than HEARTBEAT arrives within `window`.
    pub async fn assert_quiet(&mut self, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            match tokio::time::timeout_at(deadline, self.records.next()).await {
                Err(_) => return,
                Ok(None) => panic!("stream ended"),
                Ok(Some(record)) => {
                    let payload = record.unwrap();
                    let event: Event = match self.content_type {
                        ContentType::Json => mesos_proto::json::from_slice(&payload).unwrap(),
                        ContentType::Protobuf => Event::decode(payload).unwrap(),
                    };
                    assert_eq!(event.r#type(), event::Type::Heartbeat, "{event:?}");
                }
            }
        }
    }
}

/// Subscribes with `Content-Type` `request_type`, `Accept` and extra headers.
pub async fn subscribe_with(
    address: SocketAddr,
    request_type: ContentType,
    accept: Option<&str>,
    extra_headers: &[(&str, &str)],
    call: &Call,
) -> Subscription {
    let mut headers = vec![("Content-Type", request_type.mime())];
    if let Some(accept) = accept {
        headers.push(("Accept", accept));
    }
    headers.extend_from_slice(extra_headers);
    let body = encode_call(call, request_type);
    let response = request(address, Method::POST, "/api/v1/scheduler", &headers, body).await;
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = match headers.get("Content-Type").map(|v| v.as_bytes()) {
        Some(b"application/x-protobuf") => ContentType::Protobuf,
        _ => ContentType::Json,
    };
    let stream_id = headers
        .get("Mesos-Stream-Id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let chunks = response.into_body().into_data_stream();
    let records = decode_stream(chunks, RecordIoCodec::new()).map(|r| r.map_err(|e| e.to_string()));
    Subscription {
        status,
        headers,
        stream_id,
        content_type,
        records: Box::pin(records),
    }
}

/// Subscribes a new framework in JSON and returns the stream positioned
/// after SUBSCRIBED, with the assigned framework id.
pub async fn subscribe_new(master: &FakeMaster, info: FrameworkInfo) -> (Subscription, String) {
    let mut subscription = subscribe_with(
        master.endpoint(),
        ContentType::Json,
        None,
        &[],
        &subscribe_call(info),
    )
    .await;
    assert_eq!(subscription.status, StatusCode::OK);
    let subscribed = subscription.event().await;
    assert_eq!(subscribed.r#type(), event::Type::Subscribed);
    let id = subscribed.subscribed.unwrap().framework_id.value;
    (subscription, id)
}

pub fn framework_info() -> FrameworkInfo {
    FrameworkInfo {
        user: "root".into(),
        name: "harness-test".into(),
        failover_timeout: Some(3600.0),
        ..Default::default()
    }
}

pub fn partition_aware_framework_info() -> FrameworkInfo {
    FrameworkInfo {
        capabilities: vec![framework_info::Capability {
            r#type: Some(framework_info::capability::Type::PartitionAware as i32),
        }],
        ..framework_info()
    }
}

pub fn subscribe_call(info: FrameworkInfo) -> Call {
    Call {
        framework_id: info.id.clone(),
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: info,
            suppressed_roles: Vec::new(),
        }),
        ..Default::default()
    }
}

pub fn envelope(framework_id: &str, call_type: call::Type) -> Call {
    Call {
        framework_id: Some(FrameworkId {
            value: framework_id.into(),
        }),
        r#type: Some(call_type as i32),
        ..Default::default()
    }
}

pub fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

pub fn task_info(id: &str, agent: &str, cpus: f64, mem: f64) -> TaskInfo {
    TaskInfo {
        name: format!("task {id}"),
        task_id: TaskId { value: id.into() },
        agent_id: AgentId {
            value: agent.into(),
        },
        resources: vec![scalar("cpus", cpus), scalar("mem", mem)],
        command: Some(CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn launch_call(framework_id: &str, offer_ids: &[&OfferId], tasks: Vec<TaskInfo>) -> Call {
    Call {
        accept: Some(call::Accept {
            offer_ids: offer_ids.iter().map(|id| (*id).clone()).collect(),
            operations: vec![mesos_proto::v1::offer::Operation {
                r#type: Some(mesos_proto::v1::offer::operation::Type::Launch as i32),
                launch: Some(mesos_proto::v1::offer::operation::Launch { task_infos: tasks }),
                ..Default::default()
            }],
            filters: None,
        }),
        ..envelope(framework_id, call::Type::Accept)
    }
}

pub fn acknowledge_call(framework_id: &str, task: &str, agent: &str, uuid: Vec<u8>) -> Call {
    Call {
        acknowledge: Some(call::Acknowledge {
            agent_id: AgentId {
                value: agent.into(),
            },
            task_id: TaskId { value: task.into() },
            uuid,
        }),
        ..envelope(framework_id, call::Type::Acknowledge)
    }
}

pub fn reconcile_call(framework_id: &str, tasks: &[(&str, Option<&str>)]) -> Call {
    Call {
        reconcile: Some(call::Reconcile {
            tasks: tasks
                .iter()
                .map(|(task, agent)| call::reconcile::Task {
                    task_id: TaskId {
                        value: (*task).into(),
                    },
                    agent_id: agent.map(|a| AgentId { value: a.into() }),
                })
                .collect(),
        }),
        ..envelope(framework_id, call::Type::Reconcile)
    }
}

pub fn kill_call(framework_id: &str, task: &str) -> Call {
    Call {
        kill: Some(call::Kill {
            task_id: TaskId { value: task.into() },
            agent_id: None,
            kill_policy: None,
        }),
        ..envelope(framework_id, call::Type::Kill)
    }
}

/// Subscribes, takes the first offer and launches one task (1 cpu, 128 mem)
/// on it, without a refuse filter; returns the stream and framework id once
/// the task is STAGING.
pub async fn launch_one(master: &FakeMaster, task: &str) -> (Subscription, String) {
    launch_one_as(master, framework_info(), task).await
}

/// [`launch_one`] for a framework subscribing with `info`.
pub async fn launch_one_as(
    master: &FakeMaster,
    info: FrameworkInfo,
    task: &str,
) -> (Subscription, String) {
    let (mut subscription, framework_id) = subscribe_new(master, info).await;
    let offers = subscription.offers().await;
    let mut call = launch_call(
        &framework_id,
        &[&offers[0].id],
        vec![task_info(task, AGENT, 1.0, 128.0)],
    );
    // No refuse filter: the rest is offered again at the next allocation.
    if let Some(accept) = &mut call.accept {
        accept.filters = Some(mesos_proto::v1::Filters {
            refuse_seconds: Some(0.0),
        });
    }
    let answer = post_call(master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    master
        .wait_for_task_state(task, mesos_proto::v1::TaskState::TaskStaging, WAIT)
        .await
        .unwrap();
    (subscription, framework_id)
}
