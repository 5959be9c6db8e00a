//! `deimos_runtime::fetch` under the operator's limits, with real files, links and a real HTTP
//! server: which local files may be copied (resolved at fetch time), size caps on downloads,
//! copies and unpacked archives (nothing left behind), and the owner of fetched files.

// Test helpers outside #[test] functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod fetch_support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use deimos_runtime::fetch::{fetch_all, FetchError, FetchOptions, FileOwner, UriSpec};
use deimos_runtime::hostpath::AllowedPaths;
use fetch_support::{Member, Reply, TestServer};

fn uri(value: String) -> UriSpec {
    UriSpec {
        value,
        executable: false,
        extract: true,
        output_file: None,
        cache: false,
    }
}

/// Every path under `dir`, relative to it, sorted (hidden staging directories included).
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(base).unwrap().display().to_string());
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn allowing(dir: &Path) -> FetchOptions {
    FetchOptions {
        local_files: AllowedPaths::new([dir.to_owned()], "[uris] allowed_local_paths"),
        ..FetchOptions::default()
    }
}

#[tokio::test]
async fn local_files_are_refused_by_default_naming_the_path_and_the_setting() {
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("shadow");
    std::fs::write(&secret, b"root:$6$hash").unwrap();
    let sandbox = tempfile::tempdir().unwrap();
    for value in [
        secret.display().to_string(),
        format!("file://{}", secret.display()),
    ] {
        let error = fetch_all(
            &[uri(value.clone())],
            sandbox.path(),
            &FetchOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, FetchError::LocalFileRefused { .. }),
            "{error}"
        );
        let text = error.to_string();
        assert!(text.contains(&secret.display().to_string()), "{text}");
        assert!(
            text.contains("[uris] allowed_local_paths is empty"),
            "{text}"
        );
    }
    assert!(tree(sandbox.path()).is_empty(), "nothing was copied");
}

#[tokio::test]
async fn a_link_in_an_allowed_directory_to_a_file_outside_is_refused_when_fetched() {
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("artifacts");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(root.path().join("secret"), b"secret").unwrap();
    std::fs::write(allowed.join("tool.sh"), b"echo ok").unwrap();
    // The request is under the allowed directory as written; the file it opens is not.
    std::os::unix::fs::symlink(root.path().join("secret"), allowed.join("innocent.txt")).unwrap();
    let sandbox = tempfile::tempdir().unwrap();
    let options = allowing(&allowed);
    let error = fetch_all(
        &[uri(allowed.join("innocent.txt").display().to_string())],
        sandbox.path(),
        &options,
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, FetchError::LocalFileRefused { .. }),
        "{text}"
    );
    assert!(
        text.contains("resolves to") && text.contains("secret"),
        "{text}"
    );
    assert!(
        tree(sandbox.path()).is_empty(),
        "{:?}",
        tree(sandbox.path())
    );
    let fetched = fetch_all(
        &[uri(format!("file://{}", allowed.join("tool.sh").display()))],
        sandbox.path(),
        &options,
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&fetched[0].path).unwrap(), b"echo ok");
}

#[tokio::test]
async fn downloads_and_copies_over_the_size_limit_fail_and_leave_no_file() {
    let body = vec![b'x'; 3000];
    let server = TestServer::start(vec![
        ("/announced.bin", Reply::Body(body.clone())),
        ("/chunked.bin", Reply::Chunked(body.clone())),
        ("/small.bin", Reply::Body(vec![b'y'; 1000])),
    ])
    .await;
    let source_dir = tempfile::tempdir().unwrap();
    std::fs::write(source_dir.path().join("big.bin"), &body).unwrap();
    let options = FetchOptions {
        max_size: 1000,
        ..allowing(source_dir.path())
    };
    let local = source_dir.path().join("big.bin").display().to_string();
    for value in [
        server.url("/announced.bin"),
        server.url("/chunked.bin"),
        local,
    ] {
        let sandbox = tempfile::tempdir().unwrap();
        let error = fetch_all(&[uri(value.clone())], sandbox.path(), &options)
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, FetchError::TooLarge { limit: 1000, .. }),
            "{text}"
        );
        assert!(
            text.contains(&value) && text.contains("1000 bytes"),
            "{text}"
        );
        assert!(
            tree(sandbox.path()).is_empty(),
            "{value}: {:?}",
            tree(sandbox.path())
        );
    }
    let sandbox = tempfile::tempdir().unwrap();
    let exactly = fetch_all(&[uri(server.url("/small.bin"))], sandbox.path(), &options)
        .await
        .unwrap();
    assert_eq!(exactly[0].size, 1000, "the limit itself is allowed");
}

#[tokio::test]
async fn archives_unpacking_beyond_the_limit_fail_and_leave_only_the_archive() {
    let zeros = vec![0u8; 256 * 1024];
    let members = [
        Member::Dir("app/"),
        Member::File("app/a.txt", b"first", 0o644),
        Member::File("app/zeros.bin", &zeros, 0o644),
    ];
    let server = TestServer::start(vec![
        (
            "/bomb.tar.gz",
            Reply::Body(fetch_support::gzip(&fetch_support::tar(&members))),
        ),
        ("/bomb.zip", Reply::Body(fetch_support::zip(&members))),
    ])
    .await;
    let options = FetchOptions {
        max_extracted_size: 64 * 1024,
        ..FetchOptions::default()
    };
    for name in ["bomb.tar.gz", "bomb.zip"] {
        let sandbox = tempfile::tempdir().unwrap();
        let error = fetch_all(
            &[uri(server.url(&format!("/{name}")))],
            sandbox.path(),
            &options,
        )
        .await
        .unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, FetchError::TooLarge { .. }), "{text}");
        assert!(
            text.contains("the unpacked archive exceeds the limit of 64 KiB"),
            "{text}"
        );
        assert_eq!(tree(sandbox.path()), [name], "no partial extraction");
    }
}

#[tokio::test]
async fn fetched_files_and_unpacked_trees_belong_to_the_owner() {
    let members = [
        Member::Dir("app/"),
        Member::File("app/run.sh", b"#!/bin/sh\n", 0o755),
        Member::Symlink("app/latest", "run.sh"),
    ];
    let server = TestServer::start(vec![
        ("/plain.txt", Reply::Body(b"plain".to_vec())),
        (
            "/app.tgz",
            Reply::Body(fetch_support::gzip(&fetch_support::tar(&members))),
        ),
    ])
    .await;
    let owner = FileOwner {
        uid: 4321,
        gid: Some(8765),
    };
    let options = FetchOptions {
        owner: Some(owner),
        ..FetchOptions::default()
    };
    let sandbox = tempfile::tempdir().unwrap();
    let uris = [uri(server.url("/plain.txt")), uri(server.url("/app.tgz"))];
    let result = fetch_all(&uris, sandbox.path(), &options).await;
    if !nix::unistd::geteuid().is_root() {
        // Only root may give files away: the fetch must say so rather than pretend.
        let text = result.unwrap_err().to_string();
        assert!(text.contains("changing the owner of"), "{text}");
        return;
    }
    result.unwrap();
    let paths: Vec<PathBuf> = ["plain.txt", "app.tgz", "app", "app/run.sh", "app/latest"]
        .iter()
        .map(|p| sandbox.path().join(p))
        .collect();
    for path in &paths {
        let meta = std::fs::symlink_metadata(path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4321, 8765), "{}", path.display());
    }
}
