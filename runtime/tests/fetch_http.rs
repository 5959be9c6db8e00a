//! `deimos_runtime::fetch` against a real HTTP server on 127.0.0.1: downloads, names, modes, errors.

// Test helpers outside #[test] functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod fetch_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use deimos_runtime::fetch::{fetch_all, FetchError, FetchOptions, UriSpec};
use fetch_support::{Reply, TestServer};

fn uri(value: String) -> UriSpec {
    UriSpec {
        value,
        executable: false,
        extract: true,
        output_file: None,
        cache: false,
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Names of the entries of a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn plain_file_is_downloaded_into_the_sandbox_readable_by_all() {
    let server =
        TestServer::start(vec![("/files/hello.txt", Reply::Body(b"hello\n".to_vec()))]).await;
    let sandbox = tempfile::tempdir().unwrap();
    let fetched = fetch_all(
        &[uri(server.url("/files/hello.txt"))],
        sandbox.path(),
        &FetchOptions::default(),
    )
    .await
    .unwrap();
    let path = sandbox.path().join("hello.txt");
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].path, path);
    assert_eq!(fetched[0].size, 6);
    assert_eq!(fetched[0].extracted, None);
    assert_eq!(std::fs::read(&path).unwrap(), b"hello\n");
    assert_eq!(mode(&path), 0o644);
    assert_eq!(
        listing(sandbox.path()),
        ["hello.txt"],
        "no temporary file is left behind"
    );
}

#[tokio::test]
async fn executable_uri_gets_mode_0755() {
    let server = TestServer::start(vec![("/run.sh", Reply::Body(b"#!/bin/sh\n".to_vec()))]).await;
    let sandbox = tempfile::tempdir().unwrap();
    let spec = UriSpec {
        executable: true,
        ..uri(server.url("/run.sh"))
    };
    fetch_all(&[spec], sandbox.path(), &FetchOptions::default())
        .await
        .unwrap();
    assert_eq!(mode(&sandbox.path().join("run.sh")), 0o755);
}

#[tokio::test]
async fn query_string_and_fragment_are_not_part_of_the_file_name() {
    let server = TestServer::start(vec![("/dl/tool", Reply::Body(b"x".to_vec()))]).await;
    let sandbox = tempfile::tempdir().unwrap();
    let url = server.url("/dl/tool?X-Signature=abc&v=2#part");
    let fetched = fetch_all(&[uri(url)], sandbox.path(), &FetchOptions::default())
        .await
        .unwrap();
    assert_eq!(listing(sandbox.path()), ["tool"]);
    assert!(
        !fetched[0].uri.contains("abc"),
        "the shown URI hides the query: {}",
        fetched[0].uri
    );
}

#[tokio::test]
async fn output_file_names_the_file_and_may_create_a_directory() {
    let server = TestServer::start(vec![("/a/b/c", Reply::Body(b"data".to_vec()))]).await;
    let sandbox = tempfile::tempdir().unwrap();
    let spec = UriSpec {
        output_file: Some("conf/app.conf".into()),
        ..uri(server.url("/a/b/c"))
    };
    fetch_all(&[spec], sandbox.path(), &FetchOptions::default())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(sandbox.path().join("conf/app.conf")).unwrap(),
        b"data"
    );
    assert_eq!(listing(sandbox.path()), ["conf"]);
}

#[tokio::test]
async fn not_found_fails_naming_the_uri_and_the_status() {
    let server = TestServer::start(vec![]).await;
    let sandbox = tempfile::tempdir().unwrap();
    let url = server.url("/missing.tar.gz");
    let error = fetch_all(
        &[uri(url.clone())],
        sandbox.path(),
        &FetchOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, FetchError::HttpStatus { status: 404, .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains(&url) && text.contains("404"), "{text}");
    assert!(
        listing(sandbox.path()).is_empty(),
        "no partial file: {:?}",
        listing(sandbox.path())
    );
}

#[tokio::test]
async fn server_error_fails_the_fetch() {
    let server = TestServer::start(vec![("/x", Reply::Status(503))]).await;
    let sandbox = tempfile::tempdir().unwrap();
    let error = fetch_all(
        &[uri(server.url("/x"))],
        sandbox.path(),
        &FetchOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("HTTP status 503 (Service Unavailable)"),
        "{error}"
    );
}

#[tokio::test]
async fn connection_refused_fails_naming_the_uri_and_the_cause() {
    // A port that was just free: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/file.bin");
    let sandbox = tempfile::tempdir().unwrap();
    let error = fetch_all(
        &[uri(url.clone())],
        sandbox.path(),
        &FetchOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, FetchError::Transfer { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&url), "{text}");
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
}

#[tokio::test]
async fn stalled_download_times_out_and_leaves_no_partial_file() {
    let server = TestServer::start(vec![("/slow.bin", Reply::Stall)]).await;
    let sandbox = tempfile::tempdir().unwrap();
    let options = FetchOptions {
        timeout: Duration::from_millis(300),
        ..FetchOptions::default()
    };
    let started = std::time::Instant::now();
    let error = fetch_all(&[uri(server.url("/slow.bin"))], sandbox.path(), &options)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(error, FetchError::TimedOut { .. }), "{error:?}");
    assert!(error.to_string().contains("slow.bin"), "{error}");
    assert!(
        listing(sandbox.path()).is_empty(),
        "{:?}",
        listing(sandbox.path())
    );
}

#[tokio::test]
async fn password_in_the_url_never_appears_in_errors() {
    let server = TestServer::start(vec![]).await;
    let sandbox = tempfile::tempdir().unwrap();
    let url = server.url("/x").replace("http://", "http://user:hunter2@");
    let error = fetch_all(&[uri(url)], sandbox.path(), &FetchOptions::default())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        !text.contains("hunter2") && text.contains("user:***@"),
        "{text}"
    );
}

#[tokio::test]
async fn invalid_uri_fails_before_anything_is_downloaded() {
    let server = TestServer::start(vec![("/ok", Reply::Body(b"ok".to_vec()))]).await;
    let sandbox = tempfile::tempdir().unwrap();
    let uris = [uri(server.url("/ok")), uri("s3://bucket/key".into())];
    let error = fetch_all(&uris, sandbox.path(), &FetchOptions::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("s3://bucket/key"), "{error}");
    assert!(listing(sandbox.path()).is_empty());
}
