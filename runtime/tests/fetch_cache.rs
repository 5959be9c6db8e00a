//! The fetch cache (`UriSpec::cache`) against a real HTTP server on 127.0.0.1 that counts the
//! requests it gets, with real files and real file locks.

// Test helpers outside #[test] functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod fetch_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deimos_runtime::fetch::{fetch_all, CacheOptions, FetchError, FetchOptions, UriSpec};
use fetch_support::{gzip, tar, Member, Reply, TestServer};

fn cached(value: String) -> UriSpec {
    UriSpec {
        value,
        executable: false,
        extract: false,
        output_file: None,
        cache: true,
    }
}

fn with_cache(dir: &Path, max_size: u64) -> FetchOptions {
    FetchOptions {
        cache: Some(CacheOptions {
            dir: dir.to_owned(),
            max_size,
            setting: "[uris] cache_dir",
        }),
        ..FetchOptions::default()
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file below `dir` (relative paths, sorted), or nothing when it does not exist.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The content files of the cache (no lock files, not the cache's own lock).
fn entries(cache: &Path) -> Vec<PathBuf> {
    files_below(cache)
        .into_iter()
        .filter(|path| path.extension().is_none() && !path.ends_with(".lock"))
        .collect()
}

/// Fetches `uris` into a new sandbox under `root`, named `name`.
async fn fetch_into(
    root: &Path,
    name: &str,
    uris: &[UriSpec],
    options: &FetchOptions,
) -> Result<PathBuf, FetchError> {
    let sandbox = root.join(name);
    std::fs::create_dir(&sandbox).unwrap();
    fetch_all(uris, &sandbox, options).await.map(|_| sandbox)
}

#[tokio::test]
async fn a_cached_uri_is_downloaded_once_and_copied_into_every_sandbox() {
    let server = TestServer::start(vec![("/tool.bin", Reply::Body(b"tool".to_vec()))]).await;
    let (root, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let options = with_cache(&cache.path().join("fetch"), 1 << 20);
    let uris = [cached(server.url("/tool.bin?sig=abc"))];
    for name in ["one", "two", "three"] {
        let sandbox = fetch_into(root.path(), name, &uris, &options)
            .await
            .unwrap();
        assert_eq!(std::fs::read(sandbox.join("tool.bin")).unwrap(), b"tool");
        assert_eq!(mode(&sandbox.join("tool.bin")), 0o644);
    }
    assert_eq!(server.requests("/tool.bin"), 1);
    let kept = entries(&cache.path().join("fetch"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with("default"), "{kept:?}");
    assert!(
        !kept[0].to_string_lossy().contains("sig"),
        "the URI is not in the file name: {kept:?}"
    );
}

#[tokio::test]
async fn a_uri_without_the_cache_flag_is_fetched_every_time() {
    let server = TestServer::start(vec![("/data.txt", Reply::Body(b"data".to_vec()))]).await;
    let (root, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let options = with_cache(cache.path(), 1 << 20);
    let uris = [UriSpec {
        cache: false,
        ..cached(server.url("/data.txt"))
    }];
    for name in ["one", "two"] {
        let sandbox = fetch_into(root.path(), name, &uris, &options)
            .await
            .unwrap();
        assert_eq!(std::fs::read(sandbox.join("data.txt")).unwrap(), b"data");
    }
    assert_eq!(server.requests("/data.txt"), 2);
    assert_eq!(entries(cache.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn without_a_cache_configured_a_cached_uri_is_fetched_every_time() {
    let server = TestServer::start(vec![("/data.txt", Reply::Body(b"data".to_vec()))]).await;
    let root = tempfile::tempdir().unwrap();
    let uris = [cached(server.url("/data.txt"))];
    for name in ["one", "two"] {
        fetch_into(root.path(), name, &uris, &FetchOptions::default())
            .await
            .unwrap();
    }
    assert_eq!(server.requests("/data.txt"), 2);
}

#[tokio::test]
async fn the_least_recently_used_entry_is_evicted_at_the_size_limit() {
    let body = |byte: u8| Reply::Body(vec![byte; 400]);
    let server = TestServer::start(vec![
        ("/a", body(b'a')),
        ("/b", body(b'b')),
        ("/c", body(b'c')),
    ])
    .await;
    let (root, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Room for two entries of 400 bytes, not three.
    let options = with_cache(cache.path(), 1000);
    let fetch = |path: &str, name: &str| {
        let uris = [cached(server.url(path))];
        let (root, options) = (root.path().to_owned(), options.clone());
        let name = name.to_owned();
        async move { fetch_into(&root, &name, &uris, &options).await.unwrap() }
    };
    fetch("/a", "1").await;
    fetch("/b", "2").await;
    // `a` is used again, so `b` is now the least recently used.
    fetch("/a", "3").await;
    assert_eq!((server.requests("/a"), server.requests("/b")), (1, 1));
    let sandbox = fetch("/c", "4").await;
    assert_eq!(std::fs::read(sandbox.join("c")).unwrap(), vec![b'c'; 400]);
    assert_eq!(entries(cache.path()).len(), 2);
    fetch("/a", "5").await;
    fetch("/c", "6").await;
    assert_eq!(
        (server.requests("/a"), server.requests("/c")),
        (1, 1),
        "a and c stayed in the cache"
    );
    fetch("/b", "7").await;
    assert_eq!(server.requests("/b"), 2, "b was evicted and fetched again");
}

#[tokio::test]
async fn concurrent_fetches_of_one_uri_make_one_request() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let server = TestServer::start(vec![(
        "/big.bin",
        Reply::Held(vec![7u8; 100_000], gate.clone()),
    )])
    .await;
    let (root, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let options = with_cache(cache.path(), 1 << 20);
    let uris = [cached(server.url("/big.bin"))];
    let fetches: Vec<_> = ["one", "two", "three"]
        .into_iter()
        .map(|name| {
            let (root, uris, options) = (root.path().to_owned(), uris.clone(), options.clone());
            tokio::spawn(async move { fetch_into(&root, name, &uris, &options).await })
        })
        .collect();
    // The first download is held at the server; the others meanwhile reach the cache's lock
    // (a fetch that did not wait there would be counted as a second request below).
    while server.requests("/big.bin") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Enough for every fetch, should they all have asked.
    gate.add_permits(3);
    for fetch in fetches {
        let sandbox = fetch.await.unwrap().unwrap();
        assert_eq!(
            std::fs::read(sandbox.join("big.bin")).unwrap(),
            vec![7u8; 100_000]
        );
    }
    assert_eq!(server.requests("/big.bin"), 1);
}

#[tokio::test]
async fn a_failed_download_leaves_no_entry_and_the_next_fetch_retries() {
    let server = TestServer::start(vec![
        ("/flaky.bin", Reply::TruncatedOnce(vec![1u8; 10_000])),
        ("/missing.bin", Reply::Status(404)),
    ])
    .await;
    let (root, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let options = with_cache(cache.path(), 1 << 20);
    let uris = [cached(server.url("/flaky.bin"))];
    let error = fetch_into(root.path(), "one", &uris, &options)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Transfer { .. }), "{error}");
    let leftovers: Vec<PathBuf> = files_below(cache.path())
        .into_iter()
        .filter(|path| !path.to_string_lossy().ends_with(".lock"))
        .collect();
    assert_eq!(
        leftovers,
        Vec::<PathBuf>::new(),
        "no entry, no partial file"
    );
    assert_eq!(files_below(&root.path().join("one")), Vec::<PathBuf>::new());

    let sandbox = fetch_into(root.path(), "two", &uris, &options)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(sandbox.join("flaky.bin")).unwrap(),
        vec![1u8; 10_000]
    );
    fetch_into(root.path(), "three", &uris, &options)
        .await
        .unwrap();
    assert_eq!(
        server.requests("/flaky.bin"),
        2,
        "retried once, then cached"
    );

    let missing = [cached(server.url("/missing.bin"))];
    for name in ["four", "five"] {
        let error = fetch_into(root.path(), name, &missing, &options)
            .await
            .unwrap_err();
        assert!(
            matches!(error, FetchError::HttpStatus { status: 404, .. }),
            "{error}"
        );
    }
    assert_eq!(server.requests("/missing.bin"), 2);
    assert_eq!(entries(cache.path()).len(), 1, "only flaky.bin");
}

#[tokio::test]
async fn executable_and_extract_apply_to_the_copy_in_the_sandbox() {
    let archive = gzip(&tar(&[
        Member::Dir("app"),
        Member::File("app/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
    ]));
    let server = TestServer::start(vec![
        ("/app.tgz", Reply::Body(archive)),
        ("/run", Reply::Body(b"#!/bin/sh\n".to_vec())),
    ])
    .await;
    let (root, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let options = with_cache(cache.path(), 1 << 20);
    let first = [
        UriSpec {
            extract: true,
            ..cached(server.url("/app.tgz"))
        },
        UriSpec {
            executable: true,
            ..cached(server.url("/run"))
        },
    ];
    let sandbox = fetch_into(root.path(), "one", &first, &options)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(sandbox.join("app/run.sh")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    assert_eq!(mode(&sandbox.join("run")), 0o755);
    // The same URIs with other flags: the cached content, these flags.
    let second = [cached(server.url("/app.tgz")), cached(server.url("/run"))];
    let sandbox = fetch_into(root.path(), "two", &second, &options)
        .await
        .unwrap();
    assert!(!sandbox.join("app").exists(), "not extracted");
    assert!(sandbox.join("app.tgz").is_file());
    assert_eq!(mode(&sandbox.join("run")), 0o644);
    let third = [
        UriSpec {
            extract: true,
            ..cached(server.url("/app.tgz"))
        },
        UriSpec {
            executable: true,
            ..cached(server.url("/run"))
        },
    ];
    let sandbox = fetch_into(root.path(), "three", &third, &options)
        .await
        .unwrap();
    assert!(sandbox.join("app/run.sh").is_file());
    assert_eq!(mode(&sandbox.join("run")), 0o755);
    assert_eq!(
        (server.requests("/app.tgz"), server.requests("/run")),
        (1, 1)
    );
}

#[tokio::test]
async fn each_user_has_its_own_cached_files() {
    let server = TestServer::start(vec![("/x", Reply::Body(b"x".to_vec()))]).await;
    let (root, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let uris = [cached(server.url("/x"))];
    for (name, user) in [("1", "alice"), ("2", "1000:1000"), ("3", "alice")] {
        let options = FetchOptions {
            user: Some(user.into()),
            ..with_cache(cache.path(), 1 << 20)
        };
        fetch_into(root.path(), name, &uris, &options)
            .await
            .unwrap();
    }
    assert_eq!(server.requests("/x"), 2);
    let dirs: Vec<String> = entries(cache.path())
        .iter()
        .map(|path| path.parent().unwrap().display().to_string())
        .collect();
    assert_eq!(dirs, ["user-1000%3A1000", "user-alice"]);
}

#[tokio::test]
async fn a_file_larger_than_the_cache_is_fetched_without_being_kept() {
    let server = TestServer::start(vec![("/huge", Reply::Body(vec![0u8; 2000]))]).await;
    let (root, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let options = with_cache(cache.path(), 1000);
    let uris = [cached(server.url("/huge"))];
    for name in ["one", "two"] {
        let sandbox = fetch_into(root.path(), name, &uris, &options)
            .await
            .unwrap();
        assert_eq!(std::fs::metadata(sandbox.join("huge")).unwrap().len(), 2000);
    }
    assert_eq!(server.requests("/huge"), 2);
    assert_eq!(entries(cache.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn an_unusable_cache_directory_falls_back_to_fetching_directly() {
    let server = TestServer::start(vec![("/x", Reply::Body(b"x".to_vec()))]).await;
    let root = tempfile::tempdir().unwrap();
    let not_a_dir = root.path().join("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let options = with_cache(&not_a_dir, 1 << 20);
    let uris = [cached(server.url("/x"))];
    for name in ["one", "two"] {
        let sandbox = fetch_into(root.path(), name, &uris, &options)
            .await
            .unwrap();
        assert_eq!(std::fs::read(sandbox.join("x")).unwrap(), b"x");
    }
    assert_eq!(server.requests("/x"), 2);
}
