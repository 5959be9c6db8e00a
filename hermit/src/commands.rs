//! The commands: each one talks to the server through the [`Client`] and prints its result.

use std::io::Write;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::cli::{Command, IdArgs, LogsArgs, LsArgs, OutputFormat, RunArgs, TaskArgs};
use super::client::Client;
use super::error::HermitError;
use super::filter::{parse_filters, select, state_query};
use super::format::{task_details, task_table};
use super::request::{request_from_flags, requests_from_file, Submission};
use super::view::{outcome, TaskDocument, TaskView};

/// Interval between two reads of a waited task.
const WAIT_POLL: Duration = Duration::from_millis(500);

/// The API path of the task collection.
const TASKS: [&str; 3] = ["api", "v1", "task"];

/// Runs a server command; returns the exit code on success (the task's own for `wait`).
/// `completions` is handled by the caller: it needs no server.
pub(super) async fn execute(client: &Client, command: Command) -> Result<u8, HermitError> {
    match command {
        Command::Run(args) => run(client, *args).await,
        Command::Task(args) => task(client, args).await.map(|()| 0),
        Command::Ls(args) => list(client, args).await.map(|()| 0),
        Command::Logs(args) => logs(client, args).await.map(|()| 0),
        Command::Kill(args) => kill(client, args).await.map(|()| 0),
        Command::Delete(args) => delete(client, args).await.map(|()| 0),
        Command::Wait(IdArgs { id }) => {
            let end = wait_for_end(client, &id).await?;
            let outcome = outcome(&end);
            print(&format!("{}\n", outcome.line))?;
            Ok(outcome.exit_code)
        }
        Command::Version => version(client).await.map(|()| 0),
        Command::Completions(_) => Ok(0),
    }
}

/// Writes `text` to standard output and flushes it.
fn print(text: &str) -> Result<(), HermitError> {
    print_bytes(text.as_bytes())
}

/// Writes `bytes` to standard output and flushes it.
pub(super) fn print_bytes(bytes: &[u8]) -> Result<(), HermitError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(HermitError::Output)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn task_path(id: &str) -> [&str; 4] {
    [TASKS[0], TASKS[1], TASKS[2], id]
}

async fn run(client: &Client, args: RunArgs) -> Result<u8, HermitError> {
    let submissions = match &args.file {
        Some(path) => {
            if !args.command.is_empty()
                || !args.arg.is_empty()
                || !args.uri.is_empty()
                || args.name.is_some()
            {
                return Err(HermitError::Usage(
                    "run -f: COMMAND, --arg, --uri and --name belong in the task file".into(),
                ));
            }
            let shown = path.display().to_string();
            let text =
                std::fs::read_to_string(path).map_err(|source| HermitError::ReadTaskFile {
                    path: shown.clone(),
                    source,
                })?;
            requests_from_file(&shown, &text, &args)?
        }
        None => vec![request_from_flags(&args)?],
    };
    let from_file = args.file.is_some();
    let mut ids = Vec::with_capacity(submissions.len());
    for Submission { label, body } in &submissions {
        let id = submit(client, body).await.map_err(|error| match label {
            Some(label) if from_file => error.context(format!("submitting {label}")),
            _ => error,
        })?;
        match label {
            Some(label) if from_file => print(&format!("{id}\t{label}\n"))?,
            _ => print(&format!("{id}\n"))?,
        }
        ids.push(id);
    }
    if !args.wait {
        return Ok(0);
    }
    let mut exit_code = 0;
    for id in &ids {
        let end = wait_for_end(client, id).await?;
        let outcome = outcome(&end);
        print(&format!("{}\n", outcome.line))?;
        if exit_code == 0 {
            exit_code = outcome.exit_code;
        }
    }
    Ok(exit_code)
}

/// `POST /api/v1/task`: the id of the accepted task.
async fn submit(client: &Client, body: &Value) -> Result<String, HermitError> {
    let answer = client
        .send(Method::POST, &TASKS, &[], Some(body), false)
        .await?;
    let what = answer.what.clone();
    match answer.json().await? {
        Value::String(id) if !id.is_empty() => Ok(id),
        other => Err(HermitError::BadResponse {
            what,
            reason: format!("expected the task id as a JSON string, got {other}"),
        }),
    }
}

async fn fetch_task(client: &Client, id: &str) -> Result<TaskDocument, HermitError> {
    let path = task_path(id);
    let raw = client.get_json(&path, &[]).await?;
    TaskDocument::from_value(raw).map_err(|error| HermitError::BadResponse {
        what: format!("GET task {id}"),
        reason: format!("not a task document: {error}"),
    })
}

/// Reads the task until it is terminal.
async fn wait_for_end(client: &Client, id: &str) -> Result<TaskView, HermitError> {
    loop {
        let document = fetch_task(client, id).await?;
        if document.view.is_terminal() {
            return Ok(document.view);
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

fn pretty(value: &Value) -> Result<String, HermitError> {
    serde_json::to_string_pretty(value)
        .map(|mut text| {
            text.push('\n');
            text
        })
        .map_err(|error| HermitError::Output(std::io::Error::other(error)))
}

async fn task(client: &Client, args: TaskArgs) -> Result<(), HermitError> {
    let document = fetch_task(client, &args.id).await?;
    match args.output {
        OutputFormat::Json => print(&pretty(&document.raw)?),
        OutputFormat::Table => print(&task_details(&document.view, now())),
    }
}

async fn list(client: &Client, args: LsArgs) -> Result<(), HermitError> {
    let filters = match &args.filter {
        Some(text) => parse_filters(text)?,
        None => Vec::new(),
    };
    let state = state_query(&filters, args.all);
    let query: Vec<(&str, &str)> = state.iter().map(|s| ("state", s.as_str())).collect();
    let body = client.get_json(&TASKS, &query).await?;
    let Value::Array(items) = body else {
        return Err(HermitError::BadResponse {
            what: "GET /api/v1/task".into(),
            reason: "expected a JSON array of tasks".into(),
        });
    };
    let documents = items
        .into_iter()
        .map(TaskDocument::from_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| HermitError::BadResponse {
            what: "GET /api/v1/task".into(),
            reason: format!("not a list of task documents: {error}"),
        })?;
    let now = now();
    let selected = select(documents, &filters, args.n, now);
    if args.quiet {
        let ids: String = selected
            .iter()
            .map(|doc| format!("{}\n", doc.view.id))
            .collect();
        return print(&ids);
    }
    match args.output {
        OutputFormat::Json => {
            let raw: Vec<Value> = selected.into_iter().map(|doc| doc.raw).collect();
            print(&pretty(&Value::Array(raw))?)
        }
        OutputFormat::Table => {
            let views: Vec<TaskView> = selected.into_iter().map(|doc| doc.view).collect();
            print(&task_table(&views, now))
        }
    }
}

async fn logs(client: &Client, args: LogsArgs) -> Result<(), HermitError> {
    let path = [TASKS[0], TASKS[1], TASKS[2], &args.id, args.file.as_str()];
    let query: &[(&str, &str)] = if args.follow {
        &[("follow", "true")]
    } else {
        &[]
    };
    let mut answer = client.send(Method::GET, &path, query, None, true).await?;
    if answer.status == StatusCode::NO_CONTENT {
        return Ok(());
    }
    while let Some(chunk) = answer.chunk().await? {
        print_bytes(&chunk)?;
    }
    Ok(())
}

async fn kill(client: &Client, args: IdArgs) -> Result<(), HermitError> {
    let path = [TASKS[0], TASKS[1], TASKS[2], &args.id, "kill"];
    client.send(Method::POST, &path, &[], None, false).await?;
    print(&format!("Killed task {}\n", args.id))
}

async fn delete(client: &Client, args: IdArgs) -> Result<(), HermitError> {
    client
        .send(Method::DELETE, &task_path(&args.id), &[], None, false)
        .await?;
    print(&format!("Deleted task {}\n", args.id))
}

async fn version(client: &Client) -> Result<(), HermitError> {
    let body = client
        .send(Method::GET, &["api", "v1", "version"], &[], None, false)
        .await?
        .bytes()
        .await?;
    // The server sends the version JSON-quoted (Eremetic's format); show it unquoted.
    let server = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::String(text)) => text,
        _ => String::from_utf8_lossy(&body).trim().to_owned(),
    };
    print(&format!(
        "Client:\n Version: {}\n\nServer:\n Version: {server}\n",
        env!("CARGO_PKG_VERSION")
    ))
}
