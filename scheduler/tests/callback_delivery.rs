//! The callback worker against a real HTTP receiver on 127.0.0.1: bodies and headers as sent,
//! signatures that verify, retries after failures, abandonment, and per-task order.
//!
//! The outbox is an in-memory implementation of the `Outbox` contract; the receiver is a
//! minimal HTTP/1.1 responder that answers scripted status codes. Waits are on conditions with
//! generous limits, never on fixed sleeps.

// Test helpers outside `#[test]` functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use eremetic::callback::{new_callback, payload, verify, CallbackWorker};
use eremetic::metrics::{Metrics, OutcomeLabels};
use eremetic::outbox::{NewCallback, Outbox, OutboxError, PendingCallback};
use eremetic::task::{TaskId, TaskState};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// How long any awaited condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// In-memory outbox

/// What the worker did with the outbox, for assertions.
#[derive(Debug, Default)]
struct Outcomes {
    delivered: Vec<i64>,
    retried: Vec<(i64, u32, String)>,
    abandoned: Vec<(i64, String)>,
}

#[derive(Default)]
struct State {
    rows: BTreeMap<i64, PendingCallback>,
    next_id: i64,
    outcomes: Outcomes,
}

/// An outbox in memory, following the trait's contract (oldest first, one per task).
#[derive(Default)]
struct MemoryOutbox {
    state: Mutex<State>,
}

impl MemoryOutbox {
    fn enqueue(&self, callback: NewCallback) -> i64 {
        let mut state = self.state.lock().unwrap();
        state.next_id += 1;
        let id = state.next_id;
        let row = PendingCallback {
            id,
            task_id: callback.task_id,
            url: callback.url,
            body: callback.body,
            attempts: 0,
            created_at: callback.created_at,
            give_up_at: callback.give_up_at,
            next_attempt_at: callback.created_at,
        };
        state.rows.insert(id, row);
        id
    }

    fn with_outcomes<T>(&self, read: impl FnOnce(&Outcomes, usize) -> T) -> T {
        let state = self.state.lock().unwrap();
        read(&state.outcomes, state.rows.len())
    }
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn due(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PendingCallback>, OutboxError> {
        let state = self.state.lock().unwrap();
        let mut seen_tasks = Vec::new();
        let mut due = Vec::new();
        for row in state.rows.values() {
            if seen_tasks.contains(&row.task_id) {
                continue;
            }
            seen_tasks.push(row.task_id.clone());
            if row.next_attempt_at <= now && due.len() < limit {
                due.push(row.clone());
            }
        }
        Ok(due)
    }

    async fn next_due(&self) -> Result<Option<OffsetDateTime>, OutboxError> {
        let state = self.state.lock().unwrap();
        Ok(state.rows.values().map(|row| row.next_attempt_at).min())
    }

    async fn delivered(&self, id: i64) -> Result<(), OutboxError> {
        let mut state = self.state.lock().unwrap();
        state.rows.remove(&id);
        state.outcomes.delivered.push(id);
        Ok(())
    }

    async fn retry_at(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), OutboxError> {
        let mut state = self.state.lock().unwrap();
        let row = state
            .rows
            .get_mut(&id)
            .ok_or_else(|| OutboxError(format!("no callback {id}")))?;
        row.attempts = attempts;
        row.next_attempt_at = next_attempt_at;
        state
            .outcomes
            .retried
            .push((id, attempts, error.to_owned()));
        Ok(())
    }

    async fn abandon(&self, id: i64, error: &str) -> Result<(), OutboxError> {
        let mut state = self.state.lock().unwrap();
        state.rows.remove(&id);
        state.outcomes.abandoned.push((id, error.to_owned()));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP receiver

/// One request as the receiver saw it.
#[derive(Debug)]
struct Received {
    request_line: String,
    /// Header names in lowercase.
    headers: HashMap<String, String>,
    body: String,
}

/// Serves `listener`: every request is reported on the returned channel and answered with the
/// next scripted status (200 once the script is exhausted).
fn serve(listener: TcpListener, script: &[u16]) -> mpsc::UnboundedReceiver<Received> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let script = Arc::new(Mutex::new(
        script.iter().copied().collect::<VecDeque<u16>>(),
    ));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let sender = sender.clone();
            let script = Arc::clone(&script);
            tokio::spawn(async move {
                if let Some(request) = read_request(stream, &script).await {
                    let _ = sender.send(request);
                }
            });
        }
    });
    receiver
}

/// Reads one request from `stream`, answers it and closes the connection.
async fn read_request(mut stream: TcpStream, script: &Mutex<VecDeque<u16>>) -> Option<Received> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap().to_owned();
    let headers: HashMap<String, String> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .get("content-length")
        .map_or(0, |value| value.parse().unwrap());
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    // Take the status before reporting the request, so the script follows arrival order.
    let status = script.lock().unwrap().pop_front().unwrap_or(200);
    let location = if status / 100 == 3 {
        "Location: /elsewhere\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status} Scripted\r\n{location}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let received = Received {
        request_line,
        headers,
        body: String::from_utf8(body).unwrap(),
    };
    stream.write_all(response.as_bytes()).await.ok()?;
    let _ = stream.shutdown().await;
    Some(received)
}

/// A receiver on a fresh port answering `script`, and its address.
async fn receiver(script: &[u16]) -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (address, serve(listener, script))
}

async fn next_request(requests: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(PATIENCE, requests.recv())
        .await
        .expect("the receiver got no callback in time")
        .expect("the receiver stopped")
}

// ---------------------------------------------------------------------------------------------
// Worker harness

struct Harness {
    outbox: Arc<MemoryOutbox>,
    metrics: Arc<Metrics>,
    notify: Arc<tokio::sync::Notify>,
    stop: Option<oneshot::Sender<()>>,
    worker: tokio::task::JoinHandle<()>,
}

impl Harness {
    /// A running worker with a fast backoff (10 ms doubling up to 200 ms).
    fn start(secret: Option<&[u8]>) -> Harness {
        Harness::start_with_timeout(secret, Duration::from_secs(5))
    }

    /// [`Harness::start`] with another per-attempt timeout.
    fn start_with_timeout(secret: Option<&[u8]>, attempt_timeout: Duration) -> Harness {
        let outbox = Arc::new(MemoryOutbox::default());
        let metrics = Arc::new(Metrics::new());
        let worker = CallbackWorker::new(
            outbox.clone(),
            secret.map(<[u8]>::to_vec),
            attempt_timeout,
            metrics.clone(),
        )
        .unwrap()
        .with_backoff(Duration::from_millis(10), Duration::from_millis(200));
        let notify = worker.notifier();
        let (stop, stopped) = oneshot::channel::<()>();
        let worker = tokio::spawn(worker.run(async move {
            let _ = stopped.await;
        }));
        Harness {
            outbox,
            metrics,
            notify,
            stop: Some(stop),
            worker,
        }
    }

    fn enqueue(&self, callback: NewCallback) -> i64 {
        let id = self.outbox.enqueue(callback);
        self.notify.notify_one();
        id
    }

    fn count(&self, outcome: &str) -> u64 {
        self.metrics
            .callbacks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .get()
    }

    /// Waits until `condition` holds on the outbox outcomes and the number of pending rows.
    async fn wait_for(&self, what: &str, condition: impl Fn(&Outcomes, usize) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.outbox.with_outcomes(&condition) {
            if tokio::time::Instant::now() > deadline {
                let state = self
                    .outbox
                    .with_outcomes(|o, pending| format!("{o:?}, {pending} pending"));
                panic!("timed out waiting for {what}: {state}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(PATIENCE, &mut self.worker)
            .await
            .expect("the worker did not stop on shutdown")
            .unwrap();
    }
}

fn task(name: &str) -> TaskId {
    TaskId::parse(&format!("eremetic-task.{name}")).unwrap()
}

fn callback(url: &str, task_id: &TaskId, status: TaskState) -> NewCallback {
    let time = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let mut callback = new_callback(url, task_id, status, time, Some(0), None, Duration::ZERO);
    // Far enough in the future for any number of retries the tests cause.
    callback.give_up_at = OffsetDateTime::now_utc() + time::Duration::hours(1);
    callback
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn delivers_body_with_headers_and_a_valid_signature() {
    let (address, mut requests) = receiver(&[]).await;
    let harness = Harness::start(Some(b"s3cret"));
    let task_id = task("signed");
    let time = OffsetDateTime::from_unix_timestamp(1_700_000_123).unwrap();
    let sent = new_callback(
        &format!("http://{address}/hook?source=test"),
        &task_id,
        TaskState::Failed,
        time,
        Some(3),
        Some("exited with status 3"),
        Duration::from_secs(3600),
    );
    let id = harness.enqueue(sent);

    let request = next_request(&mut requests).await;
    assert_eq!(request.request_line, "POST /hook?source=test HTTP/1.1");
    let expected = payload(
        &task_id,
        TaskState::Failed,
        time,
        Some(3),
        Some("exited with status 3"),
    );
    assert_eq!(request.body, expected);
    let signature = &request.headers["x-eremetic-signature"];
    assert!(signature.starts_with("sha256="), "{signature}");
    assert!(verify(b"s3cret", request.body.as_bytes(), signature));
    assert!(!verify(b"other", request.body.as_bytes(), signature));
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.headers["user-agent"],
        format!("eremetic/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(request.headers["x-eremetic-delivery"], id.to_string());

    harness
        .wait_for("the delivery to be recorded", |o, pending| {
            o.delivered == [id] && pending == 0
        })
        .await;
    assert_eq!(harness.count("delivered"), 1);
    assert_eq!(harness.count("retried"), 0);
    harness.stop().await;
}

#[tokio::test]
async fn sends_no_signature_header_without_a_secret() {
    let (address, mut requests) = receiver(&[]).await;
    let harness = Harness::start(None);
    let id = harness.enqueue(callback(
        &format!("http://{address}/"),
        &task("unsigned"),
        TaskState::Finished,
    ));

    let request = next_request(&mut requests).await;
    assert!(
        !request.headers.contains_key("x-eremetic-signature"),
        "{:?}",
        request.headers
    );
    assert_eq!(request.headers["x-eremetic-delivery"], id.to_string());
    harness
        .wait_for("the delivery", |o, _| o.delivered == [id])
        .await;
    harness.stop().await;
}

#[tokio::test]
async fn server_error_is_retried_and_delivered_on_the_second_attempt() {
    let (address, mut requests) = receiver(&[500]).await;
    let harness = Harness::start(Some(b"k"));
    let id = harness.enqueue(callback(
        &format!("http://{address}/"),
        &task("retry"),
        TaskState::Finished,
    ));

    let first = next_request(&mut requests).await;
    let second = next_request(&mut requests).await;
    assert_eq!(first.body, second.body, "a retry sends the same bytes");
    assert_eq!(first.headers["x-eremetic-delivery"], id.to_string());
    assert_eq!(second.headers["x-eremetic-delivery"], id.to_string());
    assert_eq!(
        first.headers["x-eremetic-signature"],
        second.headers["x-eremetic-signature"]
    );

    harness
        .wait_for("the delivery", |o, pending| {
            o.delivered == [id] && pending == 0
        })
        .await;
    harness.outbox.with_outcomes(|o, _| {
        assert_eq!(o.retried.len(), 1, "{o:?}");
        let (retried_id, attempts, reason) = &o.retried[0];
        assert_eq!((*retried_id, *attempts), (id, 1));
        assert!(reason.contains("500"), "{reason}");
        assert!(o.abandoned.is_empty(), "{o:?}");
    });
    assert_eq!(harness.count("retried"), 1);
    assert_eq!(harness.count("delivered"), 1);
    harness.stop().await;
}

#[tokio::test]
async fn callback_is_delivered_once_a_down_receiver_comes_back_up() {
    // Reserve a port, then close it: connections are refused until the receiver comes up.
    let reserved = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = reserved.local_addr().unwrap();
    drop(reserved);
    let harness = Harness::start(None);
    let id = harness.enqueue(callback(
        &format!("http://{address}/late"),
        &task("down"),
        TaskState::Killed,
    ));

    harness
        .wait_for("two failed attempts", |o, _| o.retried.len() >= 2)
        .await;
    harness.outbox.with_outcomes(|o, _| {
        let (_, _, reason) = &o.retried[0];
        assert!(reason.contains("connect"), "{reason}");
    });

    let listener = TcpListener::bind(address).await.unwrap();
    let mut requests = serve(listener, &[]);
    let request = next_request(&mut requests).await;
    assert_eq!(request.request_line, "POST /late HTTP/1.1");
    assert!(request.body.contains("\"TASK_KILLED\""), "{}", request.body);
    harness
        .wait_for("the delivery", |o, pending| {
            o.delivered == [id] && pending == 0
        })
        .await;
    assert!(harness.count("retried") >= 2);
    assert_eq!(harness.count("delivered"), 1);
    harness.stop().await;
}

#[tokio::test]
async fn failed_callback_past_its_give_up_time_is_abandoned() {
    let (address, mut requests) = receiver(&[500]).await;
    let harness = Harness::start(None);
    let mut expired = callback(
        &format!("http://{address}/"),
        &task("expired"),
        TaskState::Lost,
    );
    expired.give_up_at = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let id = harness.enqueue(expired);

    next_request(&mut requests).await;
    harness
        .wait_for("the abandonment", |o, pending| {
            o.abandoned.len() == 1 && pending == 0
        })
        .await;
    harness.outbox.with_outcomes(|o, _| {
        assert_eq!(o.abandoned[0].0, id);
        assert!(o.abandoned[0].1.contains("500"), "{:?}", o.abandoned);
        assert!(o.delivered.is_empty() && o.retried.is_empty(), "{o:?}");
    });
    assert_eq!(harness.count("abandoned"), 1);
    assert_eq!(harness.count("retried"), 0);
    assert!(
        requests.try_recv().is_err(),
        "an abandoned callback was sent again"
    );
    harness.stop().await;
}

#[tokio::test]
async fn redirect_answer_counts_as_failure_and_is_not_followed() {
    let (address, mut requests) = receiver(&[302]).await;
    let harness = Harness::start(None);
    let id = harness.enqueue(callback(
        &format!("http://{address}/hook"),
        &task("redirected"),
        TaskState::Finished,
    ));

    let first = next_request(&mut requests).await;
    let second = next_request(&mut requests).await;
    assert_eq!(first.request_line, "POST /hook HTTP/1.1");
    assert_eq!(
        second.request_line, "POST /hook HTTP/1.1",
        "the redirect target was requested"
    );
    harness
        .wait_for("the delivery", |o, _| o.delivered == [id])
        .await;
    harness.outbox.with_outcomes(|o, _| {
        assert!(o.retried[0].2.contains("302"), "{o:?}");
    });
    harness.stop().await;
}

#[tokio::test]
async fn callbacks_of_one_task_arrive_in_order_despite_a_failure() {
    let (address, mut requests) = receiver(&[500]).await;
    let harness = Harness::start(None);
    let url = format!("http://{address}/");
    let task_id = task("ordered");
    let running = callback(&url, &task_id, TaskState::Running);
    let finished = callback(&url, &task_id, TaskState::Finished);
    let (running_body, finished_body) = (running.body.clone(), finished.body.clone());
    let first = harness.enqueue(running);
    let second = harness.enqueue(finished);

    let bodies = [
        next_request(&mut requests).await.body,
        next_request(&mut requests).await.body,
        next_request(&mut requests).await.body,
    ];
    assert_eq!(bodies, [running_body.clone(), running_body, finished_body]);
    harness
        .wait_for("both deliveries", |o, pending| {
            o.delivered == [first, second] && pending == 0
        })
        .await;
    harness.stop().await;
}

#[tokio::test]
async fn receiver_that_never_answers_times_out_and_is_retried() {
    // Accepts connections and holds them open without ever answering.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            held.push(stream);
        }
    });
    let harness = Harness::start_with_timeout(None, Duration::from_millis(200));
    let id = harness.enqueue(callback(
        &format!("http://{address}/"),
        &task("silent"),
        TaskState::Finished,
    ));

    harness
        .wait_for("a timed-out attempt", |o, _| !o.retried.is_empty())
        .await;
    harness.outbox.with_outcomes(|o, pending| {
        let (retried_id, attempts, reason) = &o.retried[0];
        assert_eq!((*retried_id, *attempts), (id, 1));
        assert!(reason.contains("no answer within 0.2 s"), "{reason}");
        assert!(o.delivered.is_empty(), "{o:?}");
        assert_eq!(pending, 1);
    });
    harness.stop().await;
    silent.abort();
}

#[tokio::test]
async fn unusable_url_is_abandoned_without_retrying() {
    let harness = Harness::start(None);
    let id = harness.enqueue(callback(
        "ftp://127.0.0.1/hook",
        &task("ftp"),
        TaskState::Finished,
    ));

    harness
        .wait_for("the abandonment", |o, pending| {
            o.abandoned.len() == 1 && pending == 0
        })
        .await;
    harness.outbox.with_outcomes(|o, _| {
        assert_eq!(o.abandoned[0].0, id);
        assert!(
            o.abandoned[0].1.starts_with("invalid callback URL"),
            "{o:?}"
        );
        assert!(o.retried.is_empty(), "{o:?}");
    });
    assert_eq!(harness.count("abandoned"), 1);
    harness.stop().await;
}

#[tokio::test]
async fn a_receiver_that_hangs_does_not_hold_up_other_receivers() {
    // A receiver that accepts and never answers, with a long attempt timeout.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_address = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            held.push(stream);
        }
    });
    let harness = Harness::start_with_timeout(None, Duration::from_secs(3600));
    harness.enqueue(callback(
        &format!("http://{silent_address}/"),
        &task("hanging"),
        TaskState::Finished,
    ));
    // Let the worker start the hanging attempt, then queue a callback to a healthy receiver.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (address, mut requests) = receiver(&[200]).await;
    let healthy = harness.enqueue(callback(
        &format!("http://{address}/"),
        &task("healthy"),
        TaskState::Finished,
    ));
    next_request(&mut requests).await;
    harness
        .wait_for("the healthy callback delivered", |o, _| {
            o.delivered.contains(&healthy)
        })
        .await;
    // The hanging attempt is still open: it neither succeeded nor failed.
    harness.outbox.with_outcomes(|o, pending| {
        assert!(o.retried.is_empty() && o.abandoned.is_empty(), "{o:?}");
        assert_eq!(pending, 1);
    });
    harness.stop().await;
    silent.abort();
}
