//! Closed-loop load: N clients, each on its own keep-alive connection, send the same
//! pre-built request back to back and record each response's latency.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::{Method, Uri};
use tokio::task::JoinSet;

use crate::client::{snippet, Connection};
use crate::error::{BenchError, Result};

/// Error messages kept per client (every error is counted).
const SAMPLES_PER_CLIENT: usize = 3;

/// A client that fails this many times in a row gives up (the service is gone).
const MAX_CONSECUTIVE_ERRORS: u32 = 20;

/// The request every client sends.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    /// Method.
    pub(crate) method: Method,
    /// Request target.
    pub(crate) uri: Uri,
    /// Body (pre-serialized), if any.
    pub(crate) body: Option<Bytes>,
    /// The status that counts as success; any other is an error.
    pub(crate) expect: u16,
}

/// When the clients stop.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    /// After `warm_up` (not measured) and then `measure` (measured).
    Timed {
        /// Unmeasured time first (connections, caches, allocator).
        warm_up: Duration,
        /// The measured window.
        measure: Duration,
    },
    /// After this many requests in all, all measured.
    Count(u64),
}

/// What the clients saw.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Responses with the expected status, warm-up included.
    pub(crate) succeeded: u64,
    /// Responses with the expected status that completed in the measured window.
    pub(crate) measured: u64,
    /// The measured window.
    pub(crate) window: Duration,
    /// Latencies of the measured responses.
    pub(crate) latencies: Vec<Duration>,
    /// Unexpected statuses and transport errors.
    pub(crate) errors: u64,
    /// The first error messages.
    pub(crate) error_samples: Vec<String>,
}

impl Outcome {
    /// Measured successes per second.
    pub(crate) fn rate(&self) -> f64 {
        self.measured as f64 / self.window.as_secs_f64().max(f64::EPSILON)
    }
}

/// Runs `clients` clients sending `load` to `addr` until `stop`.
pub(crate) async fn run(
    addr: SocketAddr,
    clients: usize,
    load: &Load,
    stop: Stop,
) -> Result<Outcome> {
    // Every connection exists before the clock starts.
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(Connection::open(addr).await?);
    }
    let start = Instant::now();
    let plan = match stop {
        Stop::Timed { warm_up, measure } => Plan {
            window_start: start + warm_up,
            window_end: Some(start + warm_up + measure),
            remaining: None,
        },
        Stop::Count(count) => Plan {
            window_start: start,
            window_end: None,
            remaining: Some(Arc::new(AtomicU64::new(count))),
        },
    };
    let mut set = JoinSet::new();
    for connection in connections {
        set.spawn(client(connection, load.clone(), plan.clone()));
    }
    let mut outcome = Outcome::default();
    while let Some(joined) = set.join_next().await {
        let tally = joined.map_err(|e| BenchError::Check(format!("a load client failed: {e}")))?;
        outcome.succeeded += tally.succeeded;
        outcome.errors += tally.errors;
        outcome.error_samples.extend(tally.error_samples);
        outcome.latencies.extend(tally.latencies);
    }
    outcome.measured = outcome.latencies.len() as u64;
    outcome.window = match plan.window_end {
        Some(end) => end - plan.window_start,
        None => start.elapsed(),
    };
    Ok(outcome)
}

#[derive(Debug, Clone)]
struct Plan {
    window_start: Instant,
    window_end: Option<Instant>,
    remaining: Option<Arc<AtomicU64>>,
}

impl Plan {
    /// Whether another request may be sent now (claims one of a counted budget).
    fn another(&self) -> bool {
        if let Some(end) = self.window_end {
            return Instant::now() < end;
        }
        self.remaining.as_ref().is_some_and(|left| {
            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        })
    }

    /// Whether a response that completed at `done` is in the measured window.
    fn measures(&self, done: Instant) -> bool {
        done >= self.window_start && self.window_end.is_none_or(|end| done <= end)
    }
}

#[derive(Debug, Default)]
struct Tally {
    succeeded: u64,
    latencies: Vec<Duration>,
    errors: u64,
    error_samples: Vec<String>,
}

impl Tally {
    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.error_samples.len() < SAMPLES_PER_CLIENT {
            self.error_samples.push(message);
        }
    }
}

async fn client(mut connection: Connection, load: Load, plan: Plan) -> Tally {
    let mut tally = Tally::default();
    let mut consecutive_errors = 0;
    while plan.another() {
        let sent = Instant::now();
        let result = connection
            .exchange(&load.method, &load.uri, load.body.as_ref())
            .await;
        let done = Instant::now();
        match result {
            Ok((status, _)) if status == load.expect => {
                consecutive_errors = 0;
                tally.succeeded += 1;
                if plan.measures(done) {
                    tally.latencies.push(done - sent);
                }
            }
            Ok((status, body)) => {
                consecutive_errors += 1;
                tally.error(format!(
                    "{} {}: HTTP {status}: {}",
                    load.method,
                    load.uri,
                    snippet(&body)
                ));
            }
            Err(error) => {
                consecutive_errors += 1;
                tally.error(error.to_string());
                // The connection is likely dead: open another one.
                match Connection::open(connection.addr()).await {
                    Ok(fresh) => connection = fresh,
                    Err(error) => {
                        tally.error(format!("reconnecting: {error}"));
                        break;
                    }
                }
            }
        }
        if consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
            tally.error(format!(
                "{MAX_CONSECUTIVE_ERRORS} errors in a row: client stopped"
            ));
            break;
        }
    }
    tally
}
