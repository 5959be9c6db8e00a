//! `GET .../{id}/stdout` and `.../{id}/stderr`: the task's captured output, read from the
//! file the service names (instead of Eremetic's unchecked proxy to the agent, E-21), and with
//! `?follow=true` streamed while the task runs.

use std::io::{self, SeekFrom};
use std::path::Path as FilePath;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::response::{self, TEXT_CONTENT_TYPE};
use super::serve::ConnectionInfo;
use super::tasks::task_not_found;
use super::AppState;
use crate::service::{LogLocation, LogStream, TaskService};
use crate::task::TaskId;

/// How often a follower looks for new output and re-checks whether the task still runs.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Largest chunk read from the file at once.
const CHUNK_BYTES: usize = 64 * 1024;

/// Message of a 400 for bad log query parameters.
const MSG_BAD_LOG_QUERY: &str = "Unable to parse query params";

/// `GET .../{id}/stdout`.
pub(crate) async fn stdout(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectionInfo>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    logs(state, LogStream::Stdout, connection, path, query).await
}

/// `GET .../{id}/stderr`.
pub(crate) async fn stderr(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectionInfo>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    logs(state, LogStream::Stderr, connection, path, query).await
}

/// The `follow` flag; any other key, or a value other than `true`/`1`/`false`/`0`/empty, is an
/// error.
pub(crate) fn follow_query(pairs: &[(String, String)]) -> Result<bool, String> {
    let mut follow = false;
    for (key, value) in pairs {
        if key != "follow" {
            return Err(format!(
                "unknown query parameter {key:?}; only \"follow\" is accepted"
            ));
        }
        follow = match value.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" | "" => false,
            _ => return Err(format!("follow must be true or false, got {value:?}")),
        };
    }
    Ok(follow)
}

async fn logs(
    state: AppState,
    stream: LogStream,
    connection: Option<Extension<ConnectionInfo>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let follow = match query
        .map_err(|rejection| rejection.body_text())
        .and_then(|Query(pairs)| follow_query(&pairs))
    {
        Ok(follow) => follow,
        Err(error) => return response::error(StatusCode::BAD_REQUEST, error, MSG_BAD_LOG_QUERY),
    };
    let id = match path
        .map_err(|rejection| rejection.body_text())
        .and_then(|Path(raw)| TaskId::parse(&raw).map_err(|error| format!("{raw:?}: {error}")))
    {
        Ok(id) => id,
        Err(error) => return task_not_found(format!("no task with id {error}")),
    };
    let location = match state.service.log_location(&id, stream).await {
        Ok(Some(location)) => location,
        Ok(None) => return task_not_found(format!("no task with id {id}")),
        Err(error) => {
            return response::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                error.to_string(),
                "Unable to find the task's output",
            )
        }
    };
    if location == LogLocation::NotStarted && !follow {
        return StatusCode::NO_CONTENT.into_response();
    }
    let follower = Follower {
        service: Arc::clone(&state.service),
        id,
        stream,
        follow,
        location,
        offset: 0,
        connection: connection.map(|Extension(info)| info),
        failed: false,
    };
    let body = Body::from_stream(futures::stream::unfold(follower, Follower::next_chunk));
    let mut response = response::with_content_type(StatusCode::OK, TEXT_CONTENT_TYPE, body);
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Without it, browsers buffer a text stream to sniff its type.
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Reads a task's output file from an offset on; when following, waits for more while the task
/// is active and ends once it is not and the file is drained.
struct Follower {
    service: Arc<dyn TaskService>,
    id: TaskId,
    stream: LogStream,
    follow: bool,
    location: LogLocation,
    offset: u64,
    connection: Option<ConnectionInfo>,
    failed: bool,
}

impl Follower {
    async fn next_chunk(mut self) -> Option<(io::Result<Bytes>, Follower)> {
        if self.failed {
            return None;
        }
        match self.step().await {
            Ok(Some(bytes)) => Some((Ok(bytes), self)),
            Ok(None) => None,
            Err(error) => {
                // The error aborts the response; the stream ends after reporting it.
                self.failed = true;
                Some((Err(error), self))
            }
        }
    }

    /// The next non-empty chunk, `None` at the end of the output.
    async fn step(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            match &self.location {
                LogLocation::File { path, active } => {
                    let chunk = read_chunk(path, self.offset).await?;
                    if !chunk.is_empty() {
                        self.offset += chunk.len() as u64;
                        return Ok(Some(chunk));
                    }
                    // The location is re-queried after every pause and the file read again
                    // before ending, so output written before the task stopped is drained.
                    if !self.follow || !*active {
                        return Ok(None);
                    }
                }
                LogLocation::NotStarted => {
                    if !self.follow || self.ended_before_starting().await? {
                        return Ok(None);
                    }
                }
            }
            if !self.pause().await {
                return Ok(None);
            }
            match self.requery().await? {
                Some(location) => self.relocate(location),
                None => return Ok(None),
            }
        }
    }

    async fn requery(&self) -> io::Result<Option<LogLocation>> {
        self.service
            .log_location(&self.id, self.stream)
            .await
            .map_err(|error| io::Error::other(format!("log location of {}: {error}", self.id)))
    }

    /// Whether a task without output has ended (or was deleted) and has no output file now
    /// either (it may have started and ended between two polls).
    async fn ended_before_starting(&mut self) -> io::Result<bool> {
        let task = self
            .service
            .get(&self.id)
            .await
            .map_err(|error| io::Error::other(format!("reading task {}: {error}", self.id)))?;
        if task.is_some_and(|task| !task.is_terminal()) {
            return Ok(false);
        }
        match self.requery().await? {
            Some(location @ LogLocation::File { .. }) => {
                self.relocate(location);
                Ok(false)
            }
            _ => Ok(true),
        }
    }

    /// Moves to a newly reported location; a different file (a relaunch) is read from its start.
    fn relocate(&mut self, location: LogLocation) {
        let same_file = match (&self.location, &location) {
            (LogLocation::File { path: old, .. }, LogLocation::File { path: new, .. }) => {
                old == new
            }
            _ => false,
        };
        if !same_file {
            self.offset = 0;
        }
        self.location = location;
    }

    /// Waits one poll interval; `false` when the server is shutting down.
    async fn pause(&mut self) -> bool {
        match &mut self.connection {
            Some(connection) => tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => true,
                () = connection.shutting_down() => false,
            },
            None => {
                tokio::time::sleep(POLL_INTERVAL).await;
                true
            }
        }
    }
}

/// Up to [`CHUNK_BYTES`] of `path` from `offset`; empty at the end of the file or when the file
/// does not exist (yet).
async fn read_chunk(path: &FilePath, offset: u64) -> io::Result<Bytes> {
    let named = |error: io::Error| {
        io::Error::new(error.kind(), format!("reading {}: {error}", path.display()))
    };
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Bytes::new()),
        Err(error) => return Err(named(error)),
    };
    file.seek(SeekFrom::Start(offset)).await.map_err(named)?;
    let mut buffer = vec![0; CHUNK_BYTES];
    let read = file.read(&mut buffer).await.map_err(named)?;
    buffer.truncate(read);
    Ok(Bytes::from(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn follow_query_accepts_only_the_follow_flag() {
        assert_eq!(follow_query(&[]), Ok(false));
        assert_eq!(follow_query(&pairs(&[("follow", "true")])), Ok(true));
        assert_eq!(follow_query(&pairs(&[("follow", "1")])), Ok(true));
        assert_eq!(follow_query(&pairs(&[("follow", "false")])), Ok(false));
        assert!(follow_query(&pairs(&[("follow", "maybe")])).is_err());
        assert!(follow_query(&pairs(&[("tail", "10")]))
            .unwrap_err()
            .contains("tail"));
    }

    #[tokio::test]
    async fn read_chunk_of_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = read_chunk(&dir.path().join("stdout"), 0).await.unwrap();
        assert!(chunk.is_empty());
    }

    #[tokio::test]
    async fn read_chunk_starts_at_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        std::fs::write(&path, b"hello world").unwrap();
        assert_eq!(
            read_chunk(&path, 6).await.unwrap(),
            Bytes::from_static(b"world")
        );
        assert!(read_chunk(&path, 11).await.unwrap().is_empty());
    }
}
