//! `GET .../{id}/stdout` and `.../{id}/stderr`: the task's captured output, read from the
//! file the service names (instead of Eremetic's unchecked proxy to the agent, E-21), and with
//! `?follow=true` streamed while the task runs.

use std::io;
use std::path::{Path as FilePath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::header::{CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use deimos_runtime::runtime::output::{inode_at, inode_of, open_output, open_tail};
use tokio::fs::File;
use tokio::io::AsyncReadExt;

use super::error::{ApiError, Form, Internal, TaskIdPath};
use super::response::{self, TEXT_CONTENT_TYPE};
use super::serve::ConnectionInfo;
use super::AppState;
use crate::service::{LogLocation, LogStream, TaskService};
use crate::task::TaskId;

/// How often a follower looks for new output and re-checks whether the task still runs.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Largest chunk read from the file at once.
const CHUNK_BYTES: usize = 64 * 1024;

/// Response header of the log endpoints when earlier output was dropped because the task
/// exceeded `task_output_limit`: the number of bytes missing before the body.
pub(crate) const OUTPUT_TRUNCATED: HeaderName =
    HeaderName::from_static("x-eremetic-output-truncated");

/// Message of a 400 for bad log query parameters.
const MSG_BAD_LOG_QUERY: &str = "Unable to parse query params";

/// `GET .../{id}/stdout`.
pub(crate) async fn stdout(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectionInfo>>,
    path: Result<TaskIdPath, ApiError>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    logs(state, LogStream::Stdout, connection, path, query).await
}

/// `GET .../{id}/stderr`.
pub(crate) async fn stderr(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectionInfo>>,
    path: Result<TaskIdPath, ApiError>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
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
    path: Result<TaskIdPath, ApiError>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    // The query is checked before the id, so that a bad query is a 400 whatever the id.
    let follow = query
        .map_err(|rejection| rejection.body_text())
        .and_then(|Query(pairs)| follow_query(&pairs))
        .map_err(|error| ApiError::refused(StatusCode::BAD_REQUEST, error, MSG_BAD_LOG_QUERY))?;
    let TaskIdPath(id) = path?;
    let location = state
        .service
        .log_location(&id, stream)
        .await
        .map_err(|error| ApiError::internal(error, "Unable to find the task's output"))?
        .ok_or_else(|| ApiError::task_not_found(&id, Form::Document))?;
    if location == LogLocation::NotStarted && !follow {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut follower = Follower {
        service: Arc::clone(&state.service),
        id,
        stream,
        follow,
        location,
        files: None,
        agent_read: None,
        connection: connection.map(|Extension(info)| info),
        failed: false,
    };
    // Opened before the answer starts, so that its header can say what was dropped.
    let dropped = follower.open_files().await.map_err(|error| {
        ApiError::internal(
            Internal::Other(error.to_string()),
            "Unable to read the task's output",
        )
    })?;
    let body = Body::from_stream(futures::stream::unfold(follower, Follower::next_chunk));
    let mut response = response::with_content_type(StatusCode::OK, TEXT_CONTENT_TYPE, body);
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Without it, browsers buffer a text stream to sniff its type.
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if dropped > 0 {
        headers.insert(OUTPUT_TRUNCATED, HeaderValue::from(dropped));
    }
    Ok(response)
}

/// The open files of the output being read.
struct OpenFiles {
    /// The file they were opened at.
    path: PathBuf,
    /// The rotated file (`<file>.1`) still to be read before `current`.
    previous: Option<File>,
    /// The current file and its inode, once it exists.
    current: Option<(File, u64)>,
}

impl OpenFiles {
    /// The next chunk of the output: the rest of the rotated file, then the current one,
    /// following a rotation; `None` when everything written so far has been read.
    async fn read_next(&mut self) -> io::Result<Option<Bytes>> {
        let files = self;
        let path = files.path.clone();
        if let Some(previous) = &mut files.previous {
            let chunk = read_some(previous).await.map_err(|e| named(&path, e))?;
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
            files.previous = None;
        }
        // At most: read the file at hand, open the one that replaced it, read that.
        for _ in 0..3 {
            let Some((file, inode)) = &mut files.current else {
                // Not created yet: open it once it exists.
                let Some(file) = open_output(&path).await.map_err(|e| named(&path, e))? else {
                    return Ok(None);
                };
                let inode = inode_of(&file).await.map_err(|e| named(&path, e))?;
                files.current = Some((file, inode));
                continue;
            };
            let chunk = read_some(file).await.map_err(|e| named(&path, e))?;
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
            // At its end: the file at the path is another one after a rotation (or a reset
            // for a new attempt). Missing means the writer is between rename and create.
            match inode_at(&path).await.map_err(|e| named(&path, e))? {
                Some(now) if now != *inode => {
                    // The writer rotated. What it appended between our empty read and the
                    // rotation is still in the old file, which nobody writes to any more:
                    // drain it (as `previous`) before switching, or it would be lost.
                    let tail = read_some(file).await.map_err(|e| named(&path, e))?;
                    if let Some((old, _)) = files.current.take() {
                        if !tail.is_empty() {
                            files.previous = Some(old);
                            return Ok(Some(tail));
                        }
                    }
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }
}

/// Reads a task's output files; when following, waits for more while the task is active and
/// ends once it is not and the files are drained. A rotation of the output (see
/// `deimos_runtime::runtime::output`) is followed: the old file is read to its end, then the new one
/// from its start. A reader that falls more than one rotation behind continues with the
/// newest file.
struct Follower {
    service: Arc<dyn TaskService>,
    id: TaskId,
    stream: LogStream,
    follow: bool,
    location: LogLocation,
    files: Option<OpenFiles>,
    /// On a Mesos agent: the file read (agent URL and path) and how far.
    agent_read: Option<(String, String, u64)>,
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

    /// Opens the latest output at the current location (the rotated file and the current
    /// one) unless already open; returns how many bytes of the stream came before them.
    async fn open_files(&mut self) -> io::Result<u64> {
        let LogLocation::File { path, .. } = &self.location else {
            return Ok(0);
        };
        if self.files.as_ref().is_some_and(|files| &files.path == path) {
            return Ok(0);
        }
        let tail = open_tail(path).await.map_err(|error| named(path, error))?;
        let current = match tail.current {
            Some(file) => {
                let inode = inode_of(&file).await.map_err(|error| named(path, error))?;
                Some((file, inode))
            }
            None => None,
        };
        self.files = Some(OpenFiles {
            path: path.clone(),
            previous: tail.previous,
            current,
        });
        Ok(tail.dropped)
    }

    /// The next non-empty chunk, `None` at the end of the output.
    async fn step(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            match &self.location {
                LogLocation::File { active, .. } => {
                    let active = *active;
                    self.open_files().await?;
                    if let Some(chunk) = self.read_files().await? {
                        return Ok(Some(chunk));
                    }
                    // The location is re-queried after every pause and the files read again
                    // before ending, so output written before the task stopped is drained.
                    if !self.follow || !active {
                        return Ok(None);
                    }
                }
                LogLocation::NotStarted => {
                    if !self.follow || self.ended_before_starting().await? {
                        return Ok(None);
                    }
                }
                // The task runs on a Mesos agent: its output is read through the agent.
                LogLocation::Agent { active, .. } => {
                    let active = *active;
                    if let Some(chunk) = self.read_agent().await? {
                        return Ok(Some(chunk));
                    }
                    if !self.follow || !active {
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

    /// The next chunk of the open files: the rest of the rotated file, then the current one,
    /// moving to a new current file when the one being read was rotated away.
    async fn read_files(&mut self) -> io::Result<Option<Bytes>> {
        match &mut self.files {
            Some(files) => files.read_next().await,
            None => Ok(None),
        }
    }

    /// The next chunk of the output on the agent; `None` at its current end.
    async fn read_agent(&mut self) -> io::Result<Option<Bytes>> {
        let LogLocation::Agent { url, path, .. } = &self.location else {
            return Ok(None);
        };
        // A different file (a relaunch on another agent) is read from its start.
        let offset = match &self.agent_read {
            Some((read_url, read_path, offset)) if read_url == url && read_path == path => *offset,
            _ => 0,
        };
        let chunk = super::agent_files::read(url, path, offset, CHUNK_BYTES).await?;
        let read = offset + chunk.len() as u64;
        self.agent_read = Some((url.clone(), path.clone(), read));
        Ok((!chunk.is_empty()).then_some(chunk))
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
            Some(location @ (LogLocation::File { .. } | LogLocation::Agent { .. })) => {
                self.relocate(location);
                Ok(false)
            }
            _ => Ok(true),
        }
    }

    /// Moves to a newly reported location; the files of a different path (a relaunch) are
    /// opened afresh.
    fn relocate(&mut self, location: LogLocation) {
        let same_file = match (&self.files, &location) {
            (Some(files), LogLocation::File { path, .. }) => &files.path == path,
            _ => false,
        };
        if !same_file {
            self.files = None;
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

/// An I/O error naming the output file.
fn named(path: &FilePath, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("reading {}: {error}", path.display()))
}

/// Up to [`CHUNK_BYTES`] from the file's position; empty at its end.
async fn read_some(file: &mut File) -> io::Result<Bytes> {
    let mut buffer = vec![0; CHUNK_BYTES];
    let read = file.read(&mut buffer).await?;
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
    async fn read_some_continues_where_the_last_read_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        std::fs::write(&path, b"hello world").unwrap();
        let mut file = File::open(&path).await.unwrap();
        assert_eq!(
            read_some(&mut file).await.unwrap(),
            Bytes::from_static(b"hello world")
        );
        assert!(read_some(&mut file).await.unwrap().is_empty());
    }

    /// Reads every chunk available now.
    async fn drain(files: &mut OpenFiles) -> String {
        let mut text = String::new();
        while let Some(chunk) = files.read_next().await.unwrap() {
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        text
    }

    #[tokio::test]
    async fn output_appended_just_before_a_rotation_is_read_before_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        std::fs::write(&path, b"one\n").unwrap();
        let file = File::open(&path).await.unwrap();
        let inode = inode_of(&file).await.unwrap();
        let mut files = OpenFiles {
            path: path.clone(),
            previous: None,
            current: Some((file, inode)),
        };
        assert_eq!(drain(&mut files).await, "one\n");
        // The writer appends after the reader found the end, then rotates (as
        // deimos_runtime::runtime::output does: rename to `.1`, create anew) before the reader
        // looks again.
        let mut old = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut old, b"two\n").unwrap();
        std::fs::rename(&path, dir.path().join("stdout.1")).unwrap();
        std::fs::write(&path, b"three\n").unwrap();
        assert_eq!(drain(&mut files).await, "two\nthree\n");
    }
}
