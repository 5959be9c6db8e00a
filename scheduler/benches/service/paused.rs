//! Submissions with launching paused, and memory with 100,000 stored tasks.
//!
//! The service gets one CPU; a first task takes it (and keeps it: `sleep 3600`), so every
//! later submission (half a CPU) stays queued and the measurement sees only the API, the
//! validation and the durable store. In the same run, the same clients measure
//! `GET /api/v1/version`: the ceiling of the HTTP stack on this machine. The queued tasks are
//! then topped up to 100,000 stored tasks to read the service's memory, counted through the
//! API, and counted again after a `kill -9` and a restart.

use std::time::{Duration, Instant};

use hyper::Method;

use crate::client::{uri, Connection};
use crate::error::Result;
use crate::load::{self, Load, Outcome, Stop};
use crate::server::{Server, Settings};
use crate::stats::{Row, Target};
use crate::tasks;

/// Concurrent clients, each on its own keep-alive connection.
const CLIENTS: usize = 64;
/// Unmeasured load first.
const WARM_UP: Duration = Duration::from_secs(2);
/// The measured window.
const MEASURE: Duration = Duration::from_secs(10);
/// Stored tasks for the memory measurement (the running one included).
const STORED_TASKS: u64 = 100_000;

/// Targets of the issue.
const TARGET_SUBMISSIONS_PER_SEC: f64 = 10_000.0;
const TARGET_SUBMIT_P99_MS: f64 = 20.0;
const TARGET_RSS_MIB: f64 = 150.0;

/// How long the running task may take to start (image present locally).
const START_LIMIT: Duration = Duration::from_secs(120);
/// How long the listing of 100,000 tasks may take.
const LIST_LIMIT: Duration = Duration::from_secs(120);

const MIB: f64 = 1024.0 * 1024.0;

/// Runs the measurements; returns the rows and notes.
pub(crate) async fn bench() -> Result<(Vec<Row>, Vec<String>)> {
    let mut server = Server::start(Settings {
        name: "paused",
        cpus: 1.0,
        mem_mib: 4096,
    })
    .await?;
    let addr = server.addr();
    let mut connection = Connection::open(addr).await?;
    let (mut rows, mut notes) = (Vec::new(), Vec::new());

    eprintln!("bench: taking the service's only CPU with a running task ...");
    let blocker = tasks::submit(&mut connection, &tasks::body("sleep 3600", 1.0, 32)?).await?;
    let poll = Duration::from_millis(50);
    tasks::wait_for_state(&mut connection, &blocker, "TASK_RUNNING", poll, START_LIMIT).await?;

    let timed = Stop::Timed {
        warm_up: WARM_UP,
        measure: MEASURE,
    };
    eprintln!("bench: GET /api/v1/version, {CLIENTS} clients ...");
    let version = Load {
        method: Method::GET,
        uri: uri("/api/v1/version")?,
        body: None,
        expect: 200,
    };
    let outcome = load::run(addr, CLIENTS, &version, timed).await?;
    note_errors(&mut notes, "GET /api/v1/version", &outcome);
    rows.push(
        Row::value(
            format!("GET /api/v1/version, {CLIENTS} clients"),
            outcome.measured,
            outcome.rate(),
            "/s",
        )
        .percentiles(&outcome.latencies),
    );

    eprintln!("bench: POST /api/v1/task (all queued), {CLIENTS} clients ...");
    let submit = Load {
        method: Method::POST,
        uri: uri("/api/v1/task")?,
        body: Some(tasks::body("sleep 1", 0.5, 32)?),
        expect: 202,
    };
    let submitted = load::run(addr, CLIENTS, &submit, timed).await?;
    note_errors(&mut notes, "POST /api/v1/task", &submitted);
    rows.extend(submission_rows(&submitted));
    match tasks::metric(&mut connection, "eremetic_queue_depth").await? {
        Some(depth) => rows.push(
            Row::value(
                "eremetic_queue_depth after the run = 202s",
                1,
                depth,
                "tasks",
            )
            .target(Target::Exactly(submitted.succeeded as f64)),
        ),
        None => notes.push("/metrics has no eremetic_queue_depth sample".to_owned()),
    }

    let mut queued = submitted.succeeded;
    let missing = STORED_TASKS.saturating_sub(queued + 1);
    if missing > 0 {
        eprintln!("bench: topping up to {STORED_TASKS} stored tasks ({missing} more) ...");
        let topped = load::run(addr, CLIENTS, &submit, Stop::Count(missing)).await?;
        note_errors(&mut notes, "POST /api/v1/task (top-up)", &topped);
        // For information: how the rate holds up as the queue grows.
        rows.push(
            Row::value(
                format!(
                    "POST /api/v1/task top-up, queue {queued}->{}",
                    queued + topped.succeeded
                ),
                topped.measured,
                topped.rate(),
                "/s",
            )
            .percentiles(&topped.latencies),
        );
        queued += topped.succeeded;
    }
    memory_rows(&server, &mut connection, queued, &mut rows, &mut notes).await?;

    eprintln!(
        "bench: kill -9 and restart with {} stored tasks ...",
        queued + 1
    );
    let restart = server.kill_and_restart().await?;
    rows.push(Row::value(
        format!(
            "restart after kill -9, {} tasks: until /version",
            queued + 1
        ),
        1,
        restart.as_secs_f64() * 1000.0,
        "ms",
    ));
    let mut connection = Connection::open(addr).await?;
    let all = "/api/v1/task?state=queued,active,terminated";
    let after = tasks::count_listed(&mut connection, all).await?;
    rows.push(
        Row::value(
            "tasks listed after the restart = 202s",
            1,
            after as f64,
            "tasks",
        )
        .target(Target::Exactly((queued + 1) as f64)),
    );
    Ok((rows, notes))
}

/// Submissions per second (target) and their p99 latency (target).
fn submission_rows(outcome: &Outcome) -> Vec<Row> {
    let p99_ms = crate::stats::p50_p99(&outcome.latencies)
        .1
        .map_or(f64::INFINITY, |p99| p99.as_secs_f64() * 1000.0);
    vec![
        Row::value(
            format!("POST /api/v1/task (202, queued), {CLIENTS} clients"),
            outcome.measured,
            outcome.rate(),
            "/s",
        )
        .percentiles(&outcome.latencies)
        .target(Target::AtLeast(TARGET_SUBMISSIONS_PER_SEC)),
        Row::value(
            "POST /api/v1/task p99 latency",
            outcome.measured,
            p99_ms,
            "ms",
        )
        .target(Target::AtMost(TARGET_SUBMIT_P99_MS)),
        Row::value(
            "POST /api/v1/task errors (non-202, transport)",
            outcome.succeeded + outcome.errors,
            outcome.errors as f64,
            "",
        )
        .target(Target::Exactly(0.0)),
    ]
}

/// RSS with the stored tasks (target), then the cost of listing them all.
async fn memory_rows(
    server: &Server,
    connection: &mut Connection,
    queued: u64,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let stored = queued + 1;
    // Let background work (WAL checkpoint, caches) settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, peak) = server.memory()?;
    rows.push(
        Row::value(
            format!("service RSS, {stored} stored tasks"),
            1,
            rss as f64 / MIB,
            "MiB",
        )
        .target(Target::AtMost(TARGET_RSS_MIB)),
    );
    rows.push(Row::value(
        "service peak RSS (VmHWM) so far",
        1,
        peak as f64 / MIB,
        "MiB",
    ));

    eprintln!("bench: listing the {queued} queued tasks ...");
    let start = Instant::now();
    let listed = tokio::time::timeout(
        LIST_LIMIT,
        tasks::count_listed(connection, "/api/v1/task?state=queued"),
    )
    .await;
    let elapsed = start.elapsed();
    let listed = match listed {
        Ok(result) => result?,
        Err(_) => {
            notes.push(format!(
                "GET /api/v1/task?state=queued did not answer within {LIST_LIMIT:?}"
            ));
            return Ok(());
        }
    };
    rows.push(
        Row::value(
            "GET ?state=queued lists every 202",
            1,
            listed as f64,
            "tasks",
        )
        .target(Target::Exactly(queued as f64)),
    );
    rows.push(Row::value(
        format!("GET ?state=queued, {listed} tasks: time"),
        1,
        elapsed.as_secs_f64() * 1000.0,
        "ms",
    ));
    let (rss_after, peak_after) = server.memory()?;
    rows.push(Row::value(
        "service RSS after that listing",
        1,
        rss_after as f64 / MIB,
        "MiB",
    ));
    if peak_after > peak {
        notes.push(format!(
            "listing {listed} tasks raised the service's peak RSS from {:.1} to {:.1} MiB",
            peak as f64 / MIB,
            peak_after as f64 / MIB
        ));
    }
    Ok(())
}

fn note_errors(notes: &mut Vec<String>, what: &str, outcome: &Outcome) {
    if outcome.errors == 0 {
        return;
    }
    notes.push(format!(
        "{what}: {} errors (non-expected statuses or transport failures), e.g.: {}",
        outcome.errors,
        outcome
            .error_samples
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ")
    ));
}
