//! Task requests and reads shared by the benchmarks: submit, read the current state, wait for
//! a state, count listed tasks, read a metric.

use std::time::{Duration, Instant};

use hyper::body::Bytes;
use serde::de::IgnoredAny;

use crate::client::{expect_status, snippet, Connection};
use crate::error::{BenchError, Result};
use crate::server::IMAGE;

/// States after which a task never changes again.
pub(crate) const TERMINAL: &[&str] = &[
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_LOST",
    "TASK_ERROR",
];

/// Whether `state` is terminal.
pub(crate) fn is_terminal(state: &str) -> bool {
    TERMINAL.contains(&state)
}

/// A pre-serialized v1 submit body for the test image.
pub(crate) fn body(command: &str, cpu: f64, mem_mib: u64) -> Result<Bytes> {
    let value = serde_json::json!({
        "image": IMAGE,
        "command": command,
        "cpu": cpu,
        "mem": mem_mib,
    });
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| BenchError::Check(format!("serialize a submit body: {e}")))
}

/// `POST /api/v1/task`, which must answer 202 with the task id as a JSON string.
pub(crate) async fn submit(connection: &mut Connection, body: &Bytes) -> Result<String> {
    let (status, answer) = connection.post("/api/v1/task", body).await?;
    expect_status("POST /api/v1/task", 202, status, &answer)?;
    serde_json::from_slice::<String>(&answer).map_err(|e| {
        BenchError::Check(format!(
            "POST /api/v1/task answered 202 with {:?}, not a JSON string task id: {e}",
            snippet(&answer)
        ))
    })
}

/// `POST /api/v1/task/{id}/kill`, which must answer with a 2xx status.
pub(crate) async fn kill(connection: &mut Connection, id: &str) -> Result<()> {
    let path = format!("/api/v1/task/{id}/kill");
    let (status, answer) = connection.post(&path, &Bytes::new()).await?;
    if !(200..300).contains(&status) {
        return Err(BenchError::Unexpected {
            what: format!("POST {path} (expected 2xx)"),
            status,
            body: snippet(&answer),
        });
    }
    Ok(())
}

/// The task's document and its current state (the last entry of its status history).
pub(crate) async fn current_state(
    connection: &mut Connection,
    id: &str,
) -> Result<(String, serde_json::Value)> {
    let path = format!("/api/v1/task/{id}");
    let body = connection.get_ok(&path).await?;
    let document: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        BenchError::Check(format!("GET {path}: not JSON ({e}): {}", snippet(&body)))
    })?;
    let state = document["status"]
        .as_array()
        .and_then(|history| history.last())
        .and_then(|entry| entry["status"].as_str())
        .ok_or_else(|| {
            BenchError::Check(format!(
                "GET {path}: no status history in {}",
                snippet(&body)
            ))
        })?
        .to_owned();
    Ok((state, document))
}

/// Polls the task every `every` until it is in `wanted`; fails when it ends in another state
/// or `limit` passes. Returns when it was seen in `wanted`.
pub(crate) async fn wait_for_state(
    connection: &mut Connection,
    id: &str,
    wanted: &str,
    every: Duration,
    limit: Duration,
) -> Result<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        let (state, document) = current_state(connection, id).await?;
        if state == wanted {
            return Ok(Instant::now());
        }
        if is_terminal(&state) {
            return Err(BenchError::Check(format!(
                "task {id} ended as {state} while waiting for {wanted}: {}",
                snippet(document.to_string().as_bytes())
            )));
        }
        if Instant::now() > deadline {
            return Err(BenchError::Timeout(format!(
                "task {id} was still {state} after {limit:?}, waiting for {wanted}"
            )));
        }
        tokio::time::sleep(every).await;
    }
}

/// The number of tasks `GET path` lists (counted without building documents).
pub(crate) async fn count_listed(connection: &mut Connection, path: &str) -> Result<u64> {
    let body = connection.get_ok(path).await?;
    let items: Vec<IgnoredAny> = serde_json::from_slice(&body).map_err(|e| {
        BenchError::Check(format!(
            "GET {path}: not a JSON array ({e}): {}",
            snippet(&body)
        ))
    })?;
    Ok(items.len() as u64)
}

/// The value of an unlabelled sample in `/metrics`, `None` when the metric is absent.
pub(crate) async fn metric(connection: &mut Connection, name: &str) -> Result<Option<f64>> {
    let body = connection.get_ok("/metrics").await?;
    let text = String::from_utf8_lossy(&body);
    Ok(text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        rest.strip_prefix(' ')?.trim().parse::<f64>().ok()
    }))
}
